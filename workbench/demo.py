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
    montage = render_ct_montage(index, out / "ct_mpr_mip.png")
    print(f"\nwrote {montage}: axial, coronal and sagittal planes and a 30 mm coronal MIP of the CT")
    from workbench.dose.audit import run_audit
    from workbench.dose.drl import example_drl_path

    audit = run_audit(index, out / "dose", ssde=True, drl_path=example_drl_path(), quiet=quiet)
    spiral = audit.tables.events.dropna(subset=["ssde_mgy"])
    print(f"\n{audit.summary()}")
    for event in spiral.itertuples():
        name = event.acquisition_protocol or event.acquisition_type
        print(f"  {name}: CTDIvol {event.ctdivol_mgy:.2f} mGy, DLP {event.dlp_mgycm:.1f} mGy.cm, "
              f"Dw {event.dw_mean_mm:.0f} mm, SSDE {event.ssde_mgy:.2f} mGy")
    anonymized = anonymize_sample(index, out)
    files = anonymized.exported + anonymized.already_there
    verdict = "no identifying value left" if anonymized.clean else f"{len(anonymized.findings)} finding(s)!"
    print(f"\nanonymized copy (PS3.15 Annex E, modified dates): {files} files in {anonymized.out}, "
          f"verified: {verdict}")
    print(f"\nnext: workbench sql {index_dir} \"SELECT Modality, count(*) FROM instances GROUP BY 1\"")
    return 0


def anonymize_sample(index, out: Path):
    """A verified de-identified copy of the sample in ``out/anonymized`` (key in ``out/deid.key``)."""
    from workbench.deid.exporter import export, load_key

    return export(index, out / "anonymized", key=load_key(out / "deid.key"),
                  options=("retain_modified_dates",), quiet=True)


def render_ct_montage(index, path: Path) -> Path:
    """An MPR + MIP montage PNG of the sample's axial CT series.

    Returns
    -------
    Path
        ``path``.
    """
    from workbench.volume import load_series
    from workbench.volume.reformat import reformat
    from workbench.volume.render import render_montage

    uid = index.sql(
        "SELECT SeriesInstanceUID FROM series WHERE Modality = 'CT' AND plane = 'AXIAL' "
        "ORDER BY n_instances DESC LIMIT 1"
    )["SeriesInstanceUID"][0]
    volume = load_series(index, uid)
    views = [
        ("axial", reformat(volume, "axial")),
        ("coronal", reformat(volume, "coronal")),
        ("sagittal", reformat(volume, "sagittal")),
        ("coronal MIP 30 mm", reformat(volume, "coronal", slab=30.0, mode="mip")),
    ]
    return render_montage([image for _, image in views], path, titles=[t for t, _ in views],
                          columns=4, window="abdomen")
