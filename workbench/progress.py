"""Progress bars: tqdm's notebook widget inside Jupyter, its text bar on a terminal."""

from __future__ import annotations

import sys
from typing import Any


def progress_bar(**options: Any):
    """A ``tqdm`` bar with ``options``: ``tqdm.auto`` in a Jupyter kernel, plain ``tqdm`` elsewhere.

    ``tqdm.auto`` imports asyncio and probes for IPython, which a command started from a shell
    pays for at every start.
    """
    if "ipykernel" in sys.modules:
        from tqdm.auto import tqdm
    else:
        from tqdm.std import tqdm
    return tqdm(**options)
