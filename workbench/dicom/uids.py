"""Names of well-known UIDs (PS3.6 Annex A), without importing all of pydicom.

pydicom's UID table is plain data in its ``_uid_dict`` module; importing the pydicom package
to read it costs about a tenth of a second, paid on every crawl. The table is loaded from its
file alone; should pydicom ever move it, the full import is the fallback.
"""

from __future__ import annotations

import importlib.util
import os
from functools import cache


@cache
def _table() -> dict[str, tuple]:
    try:
        spec = importlib.util.find_spec("pydicom")
        path = os.path.join(list(spec.submodule_search_locations)[0], "_uid_dict.py")
        module_spec = importlib.util.spec_from_file_location("_workbench_uid_dict", path)
        module = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)
        return dict(module.UID_dictionary)
    except (AttributeError, ImportError, OSError, TypeError, IndexError):
        from pydicom._uid_dict import UID_dictionary

        return dict(UID_dictionary)


def uid_name(uid: str | None) -> str | None:
    """The name of a well-known UID, e.g. 'CT Image Storage'; None when unknown or empty."""
    if not uid:
        return None
    entry = _table().get(uid)
    return entry[0] if entry else None
