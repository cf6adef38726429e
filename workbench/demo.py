"""``workbench demo``: the whole journey on the bundled sample data, into a fresh folder."""

from __future__ import annotations

import shutil
from pathlib import Path

from workbench.index import crawl

#: The bundled sample data (made by data/make_sample.py).
SAMPLE_DIR = Path(__file__).resolve().parent.parent / "data" / "sample"


def run_demo(out: str | Path, quiet: bool = False) -> int:
    """Crawl the sample data into ``out/index`` and print what a newcomer should see.

    Returns
    -------
    int
        The exit code: 0, or 1 when the sample data is missing.
    """
    from workbench.cli import _print_frame, print_status

    if not SAMPLE_DIR.is_dir():
        print(f"workbench demo: the sample data folder {SAMPLE_DIR} is missing; "
              "run it from a clone of the repository (pip install -e .)")
        return 1
    out = Path(out)
    index_dir = out / "index"
    if index_dir.exists():
        shutil.rmtree(index_dir)
    print(f"crawling {SAMPLE_DIR} into {index_dir}\n")
    index = crawl([SAMPLE_DIR], index=index_dir, quiet=quiet)
    print_status(str(index_dir))
    print("\nseries:")
    _print_frame(index.sql(
        "SELECT PatientID, Modality, SeriesNumber, SeriesDescription, n_instances, plane, "
        "round(slice_spacing, 2) AS slice_spacing, spacing_uniform FROM series "
        "ORDER BY PatientID, SeriesNumber"
    ))
    print(f"\nnext: workbench sql {index_dir} \"SELECT Modality, count(*) FROM instances GROUP BY 1\"")
    return 0
