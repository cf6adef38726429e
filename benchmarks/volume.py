"""Benchmark loading a CT series (`workbench.volume.load_series`) and reformatting/rendering it.

Run by hand, not by CI::

    python benchmarks/volume.py [--slices 300] [--size 512] [--workdir DIR] [--keep] [--repeat 5]
                                [--load-runs 3]

A CT series of N single-frame CT Image Storage files (explicit VR little endian, int16, rescale
intercept -1024) is generated deterministically (numpy seeded) in ``DIR/ct/`` under shuffled
file names, and crawled into ``DIR/index``. With a warm page cache, three loaders each run in a
fresh interpreter: ``load_series`` on the index, SimpleITK's ``ImageSeriesReader`` (GDCM names +
``Execute``) and the serial pydicom loop a user would write. Each child times its own call and
reports its RSS after imports and its peak RSS; their arrays and geometry are checked to agree.
Then, in this process, axial/coronal/sagittal 20 mm MIPs, an oblique reslice and a windowed PNG
render are timed (median of ``--repeat`` runs) against numpy/SimpleITK/matplotlib baselines.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing import Pool
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import SimpleITK as sitk
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian
from report import Report, machine, version, work_directory

SEED = 20240611
CORPUS_VERSION = 1  # bump when the generated files change, so a reused --workdir is rebuilt
UID_ROOT = "1.2.826.0.1.3680043.8.498.7.3"  # crawl.py uses .1 and .2 under the same root
REPO = Path(__file__).resolve().parents[1]
MARKER = "volume-ct.json"
FOV_MM = 384.0  # in-plane field of view, whatever --size is
SLICE_MM = 1.0  # slice spacing (and thickness)
SLAB_MM = 20.0
OBLIQUE = (0.3, 0.2, 1.0)
WINDOW = "abdomen"

TARGET_LOAD_RATIO = 1.5  # ImageSeriesReader time / load_series time
TARGET_MEMORY_RATIO = 2.0  # load_series peak RSS - RSS after imports, over the volume's bytes
TARGET_MIP_MS = 50.0
TARGET_OBLIQUE_MS = 60.0
TARGET_RENDER_MS = 30.0

# The children: each prints one JSON line as the last line of its output. Memory comes from
# /proc/self/status. ``getrusage().ru_maxrss`` cannot be used: on Linux a child's maxrss starts at
# the RSS of the parent it was forked from (the old address space's high-water mark is kept across
# exec), so every child would report at least this process' size. ``mark()``, right after the
# imports, reads VmRSS and VmHWM and resets VmHWM to the current RSS (``clear_refs`` 5); ``done()``
# reads VmHWM right after the timed call (the peak of the call), then saves the array when a path
# is given, for the agreement check, outside the timed part.
CHILD_PRELUDE = """
import json, os, sys, time
import numpy as np


def status_bytes(key):
    with open("/proc/self/status") as f:
        line = next(line for line in f if line.startswith(key + ":"))
    return int(line.split()[1]) * 1024


def mark():
    rss, peak = status_bytes("VmRSS"), status_bytes("VmHWM")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    return {"rss_imports": rss, "peak_imports": peak}


def done(seconds, marked, array, z, save, **extra):
    peak = status_bytes("VmHWM")
    if save != "-":
        np.save(save, array)
    out = {"seconds": seconds, **marked, "peak_call": peak, "shape": list(array.shape),
           "dtype": str(array.dtype), "z": [float(v) for v in z], **extra}
    print(json.dumps(out))


def image_z(image):
    origin, spacing, direction = image.GetOrigin(), image.GetSpacing(), image.GetDirection()
    return [origin[2] + k * spacing[2] * direction[8] for k in range(image.GetSize()[2])]


def geometry(image):
    return {"origin": list(image.GetOrigin()), "spacing": list(image.GetSpacing()),
            "direction": list(image.GetDirection()), "pixel_type": image.GetPixelIDTypeAsString()}
"""

LOAD_CHILD = CHILD_PRELUDE + """
import duckdb, pandas, pyarrow  # noqa: F401 - used lazily by the index; imported outside the timing
import SimpleITK as sitk
import workbench
from workbench.volume import load_series

index_dir, series_uid, save = sys.argv[1], sys.argv[2], sys.argv[3]
marked = mark()
start = time.perf_counter()
image = load_series(workbench.open_index(index_dir), series_uid)
seconds = time.perf_counter() - start
done(seconds, marked, sitk.GetArrayViewFromImage(image), image_z(image), save, **geometry(image))
"""

SITK_CHILD = CHILD_PRELUDE + """
import SimpleITK as sitk

folder, save = sys.argv[1], sys.argv[3]
marked = mark()
start = time.perf_counter()
names = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(folder)
reader = sitk.ImageSeriesReader()
reader.SetFileNames(names)
image = reader.Execute()
seconds = time.perf_counter() - start
done(seconds, marked, sitk.GetArrayViewFromImage(image), image_z(image), save, **geometry(image))
"""

PYDICOM_CHILD = CHILD_PRELUDE + """
import pydicom
from pydicom.pixels import apply_modality_lut

folder, save = sys.argv[1], sys.argv[3]
marked = mark()
start = time.perf_counter()
slices = [pydicom.dcmread(os.path.join(folder, name)) for name in os.listdir(folder)]
slices.sort(key=lambda ds: float(ds.ImagePositionPatient[2]))
volume = np.stack([apply_modality_lut(ds.pixel_array, ds) for ds in slices])
seconds = time.perf_counter() - start
done(seconds, marked, volume, [float(ds.ImagePositionPatient[2]) for ds in slices], save)
"""


# --------------------------------------------------------------------------- the series


@dataclass(frozen=True)
class Shape:
    """The generated series: slice count and matrix size; the geometry follows from them."""

    slices: int
    size: int

    @property
    def pixel_mm(self) -> float:
        return FOV_MM / self.size

    @property
    def volume_bytes(self) -> int:
        """Bytes of the volume as int16 (what load_series returns for this data)."""
        return self.slices * self.size * self.size * 2

    def z(self, i: int) -> float:
        """z (mm) of slice i: slice 0 is the most superior."""
        return -SLICE_MM * i


SERIES_UID = f"{UID_ROOT}.2.1"


def file_name(i: int) -> str:
    """A deterministic, shuffled-looking name for slice i (name order is not slice order)."""
    return hashlib.sha1(f"{SEED}-{i}".encode()).hexdigest()[:16] + ".dcm"


def nodules() -> np.ndarray:
    """Seeded spheres (x, y, t, radius mm) in the lungs: t is the fraction down the series."""
    rng = np.random.default_rng([SEED, 7])
    side = rng.choice([-1.0, 1.0], 12)
    return np.column_stack(
        [side * rng.uniform(45, 95, 12), rng.uniform(-45, 25, 12), rng.uniform(0.05, 0.38, 12),
         rng.uniform(3, 9, 12)]
    )


def ellipse(x: np.ndarray, y: np.ndarray, cx: float, cy: float, a: float, b: float) -> np.ndarray:
    """Mask of an axis-aligned ellipse."""
    return ((x - cx) / a) ** 2 + ((y - cy) / b) ** 2 <= 1.0


def phantom_slice(shape: Shape, i: int) -> np.ndarray:
    """Stored values (HU + 1024, int16) of slice i of a torso-like phantom with noise.

    Lungs with nodules (upper 40%), liver and kidneys (middle), a contrast-filled aorta that
    wanders along z, a spine whose discs repeat every 30 mm, ribs every 25 mm, a fat layer.
    """
    t = i / max(shape.slices - 1, 1)
    z = shape.z(i)
    coords = (np.arange(shape.size) + 0.5) * shape.pixel_mm - FOV_MM / 2
    x, y = coords[np.newaxis, :], coords[:, np.newaxis]
    a, b = 150 + 15 * math.sin(math.pi * t), 105 + 10 * math.sin(math.pi * t)
    hu = np.full((shape.size, shape.size), -1000.0)
    hu[ellipse(x, y, 0, 10, a, b)] = -100.0  # fat
    hu[ellipse(x, y, 0, 10, a - 12, b - 12)] = 40.0  # soft tissue
    if t < 0.45:
        grow = math.sin(math.pi * min(t / 0.45, 1.0)) ** 0.5
        for side in (-1, 1):
            hu[ellipse(x, y, side * 70, -5, 50 * grow + 1, 65 * grow + 1)] = -850.0
        for nx, ny, nt, radius in nodules():
            dz = (t - nt) * (shape.slices - 1) * SLICE_MM
            if abs(dz) < radius:
                hu[ellipse(x, y, nx, ny, math.sqrt(radius**2 - dz**2), math.sqrt(radius**2 - dz**2))] = 60.0
    if 0.35 < t < 0.7:
        hu[ellipse(x, y, -60, 0, 80 * math.sin(math.pi * (t - 0.35) / 0.35), 60)] = 65.0  # liver
    if 0.55 < t < 0.8:
        for side in (-1, 1):
            hu[ellipse(x, y, side * 65, 55, 25, 35)] = 150.0  # kidneys, enhancing
    aorta_x = 20 + 10 * math.sin(2 * math.pi * t)
    hu[ellipse(x, y, aorta_x, 50, 12, 12)] = 250.0
    disc = (-z % 30.0) < 6.0
    hu[ellipse(x, y, 0, 80, 20, 18)] = 80.0 if disc else 1100.0  # vertebral body (cortex)
    if not disc:
        hu[ellipse(x, y, 0, 80, 16, 14)] = 300.0  # cancellous bone
    if t < 0.5 and (-z % 25.0) < 10.0:
        ring = ellipse(x, y, 0, 10, a - 14, b - 14) & ~ellipse(x, y, 0, 10, a - 22, b - 22)
        hu[ring & (np.abs(x) > 25)] = 900.0
    hu += np.random.default_rng([SEED, i]).normal(0.0, 12.0, hu.shape)
    return np.clip(np.rint(hu + 1024), -32768, 32767).astype("<i2")


def template(shape: Shape) -> Dataset:
    """The header shared by every slice; per-slice values are set by write_slice."""
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SOPClassUID = CTImageStorage
    ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = "20240611"
    ds.StudyTime, ds.SeriesTime = "090000", "090100"
    ds.AccessionNumber = "VOL0001"
    ds.Modality = "CT"
    ds.Manufacturer = "ACME Medical"
    ds.ManufacturerModelName = "Tomograph 128"
    ds.StudyDescription = "CT ABDOMEN PELVIS W CONTRAST"
    ds.SeriesDescription = f"Abdomen {SLICE_MM:g} Br40"
    ds.PatientName = "Synthetic^Volume"
    ds.PatientID = "VOL000001"
    ds.PatientBirthDate = "19600101"
    ds.PatientSex = "O"
    ds.BodyPartExamined = "ABDOMEN"
    ds.SliceThickness = f"{SLICE_MM:g}"
    ds.KVP = "120"
    ds.ConvolutionKernel = "Br40"
    ds.PatientPosition = "HFS"
    ds.StudyInstanceUID = f"{UID_ROOT}.1.1"
    ds.SeriesInstanceUID = SERIES_UID
    ds.FrameOfReferenceUID = f"{UID_ROOT}.4.1"
    ds.StudyID, ds.SeriesNumber, ds.AcquisitionNumber = "1", 2, 1
    ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
    ds.PositionReferenceIndicator = ""
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = ds.Columns = shape.size
    ds.PixelSpacing = [f"{shape.pixel_mm:.6g}"] * 2
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    ds.WindowCenter, ds.WindowWidth = "40", "400"
    ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = "-1024", "1", "HU"
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = f"{UID_ROOT}.9"
    ds.file_meta = meta
    return ds


def write_slice(job: tuple[Shape, str, int]) -> int:
    """Write slice i as its own file."""
    shape, root, i = job
    ds = template(shape)
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = f"{UID_ROOT}.3.{i + 1}"
    ds.InstanceNumber = i + 1
    half = FOV_MM / 2 - shape.pixel_mm / 2
    ds.ImagePositionPatient = [f"{-half:.6g}", f"{-half:.6g}", f"{shape.z(i):.6g}"]
    ds.SliceLocation = f"{shape.z(i):.6g}"
    ds.PixelData = phantom_slice(shape, i).tobytes()
    ds["PixelData"].VR = "OW"
    pydicom.dcmwrite(os.path.join(root, file_name(i)), ds, enforce_file_format=True)
    return i


def ensure_series(workdir: Path, shape: Shape) -> Path:
    """Generate ``workdir/ct`` unless the marker says this exact series is there."""
    root = workdir / "ct"
    marker = workdir / MARKER
    wanted = {"slices": shape.slices, "size": shape.size, "seed": SEED, "version": CORPUS_VERSION}
    if marker.exists() and root.is_dir() and json.loads(marker.read_text()) == wanted:
        if len(os.listdir(root)) == shape.slices:
            print(f"reusing the series: {shape.slices} files in {root}")
            return root
    marker.unlink(missing_ok=True)
    (workdir / "ct.json").unlink(missing_ok=True)  # crawl.py's marker for a corpus in the same folder
    shutil.rmtree(root, ignore_errors=True)
    shutil.rmtree(workdir / "index", ignore_errors=True)
    root.mkdir(parents=True)
    start = time.perf_counter()
    with Pool(os.cpu_count()) as pool:
        for _ in pool.imap_unordered(write_slice, [(shape, str(root), i) for i in range(shape.slices)], 8):
            pass
    print(f"generated {shape.slices} slices in {time.perf_counter() - start:.1f} s: {root}")
    marker.write_text(json.dumps(wanted))
    return root


def read_all(root: Path) -> tuple[float, int]:
    """Read every file whole; return (seconds, bytes)."""
    start, size = time.perf_counter(), 0
    for entry in os.scandir(root):
        with open(entry.path, "rb") as f:
            size += len(f.read())
    return time.perf_counter() - start, size


# --------------------------------------------------------------------------- loading in children


@dataclass
class ChildRun:
    """One loader run in a fresh interpreter."""

    wall: float  # the whole command, start-up and imports included
    result: dict[str, Any]  # what the child printed: seconds, rss_imports, peak_call, geometry, ...

    @property
    def seconds(self) -> float:
        return float(self.result["seconds"])

    @property
    def peak_process(self) -> int:
        """Peak RSS of the child up to the end of the call, imports included."""
        return max(int(self.result["peak_imports"]), int(self.result["peak_call"]))

    @property
    def load_bytes(self) -> int:
        """Peak RSS up to the end of the call, minus the RSS right after imports."""
        return int(self.result["peak_call"]) - int(self.result["rss_imports"])


def run_child(code: str, args: list[str], log: Path) -> ChildRun:
    """Run a child script in a fresh interpreter (cwd = the repository), timed whole."""
    with open(log, "w+b") as out:
        start = time.perf_counter()
        child = subprocess.run([sys.executable, "-c", code, *args], cwd=REPO, stdout=out,
                               stderr=subprocess.STDOUT)
        wall = time.perf_counter() - start
        out.seek(0)
        lines = out.read().decode(errors="replace").splitlines()
    if child.returncode != 0 or not lines or not lines[-1].startswith("{"):
        tail = "\n".join(lines[-15:])
        raise RuntimeError(f"{log.name}: exit code {child.returncode}\n{tail}")
    return ChildRun(wall, json.loads(lines[-1]))


@dataclass
class Contender:
    """A loader: its label, its child script, what it reads (the index or the folder), its runs."""

    name: str
    label: str
    code: str
    source: Path
    log: Path
    check: ChildRun | None = None  # the untimed first run, which saved the array
    runs: list[ChildRun] = field(default_factory=list)
    error: str = ""

    def run(self, save: Path | None) -> ChildRun | None:
        """One run in a fresh interpreter; on failure, keep the error and return None."""
        try:
            return run_child(self.code, [str(self.source), SERIES_UID, str(save or "-")], self.log)
        except RuntimeError as exc:
            self.error = str(exc)
            print(f"{self.name} failed:\n{exc}")
            return None

    def median(self, attribute: str) -> float:
        return statistics.median(getattr(run, attribute) for run in self.runs)


def compare_arrays(paths: dict[str, Path], checks: dict[str, ChildRun]) -> tuple[bool, str]:
    """Equal values slice by slice after sorting each array by its slices' z."""
    arrays = {name: np.load(path, mmap_mode="r") for name, path in paths.items()}
    orders = {name: np.argsort(checks[name].result["z"], kind="stable") for name in paths}
    zs = {name: np.asarray(checks[name].result["z"])[orders[name]] for name in paths}
    names = list(paths)
    first = names[0]
    problems = []
    for other in names[1:]:
        if arrays[other].shape != arrays[first].shape:
            problems.append(f"{other} shape {arrays[other].shape} != {arrays[first].shape}")
            continue
        if not np.allclose(zs[other], zs[first], atol=1e-3):
            problems.append(f"{other}: slice z positions differ")
        bad = sum(
            not np.array_equal(arrays[first][orders[first][k]], arrays[other][orders[other][k]])
            for k in range(arrays[first].shape[0])
        )
        if bad:
            problems.append(f"{other}: {bad} slices differ from {first}")
    if problems:
        return False, "; ".join(problems)
    dtypes = ", ".join(f"{checks[n].result['dtype']}" for n in names)
    return True, f"equal ({dtypes})"


def compare_geometry(a: dict[str, Any], b: dict[str, Any]) -> tuple[bool, str]:
    """Origin, spacing and direction equal within 1e-4."""
    diffs = [key for key in ("origin", "spacing", "direction")
             if not np.allclose(a[key], b[key], atol=1e-4)]
    if diffs:
        detail = "; ".join(f"{k} {np.round(a[k], 4).tolist()} vs {np.round(b[k], 4).tolist()}" for k in diffs)
        return False, detail
    origin, spacing = (", ".join(f"{v:g}" for v in a[key]) for key in ("origin", "spacing"))
    return True, f"equal: origin {origin}, spacing {spacing}"


# --------------------------------------------------------------------------- report


MB = 1024 * 1024


def bench_load(workdir: Path, root: Path, shape: Shape, runs: int) -> tuple[Report, Any]:
    """Warm the cache, crawl, run the three loaders in fresh interpreters and check they agree."""
    import workbench

    report = Report(f"load: {shape.slices} slices of {shape.size}x{shape.size} int16, "
                    f"{shape.volume_bytes / MB:,.0f} MB volume, one flat folder, shuffled names")
    index_dir = workdir / "index"
    start = time.perf_counter()
    index = workbench.crawl(root, index=index_dir, quiet=True)
    crawl_s = time.perf_counter() - start
    series = index.series
    found = series[series["SeriesInstanceUID"] == SERIES_UID]
    if len(found) != 1 or int(found["n_instances"].iloc[0]) != shape.slices:
        raise RuntimeError(f"the index has no series {SERIES_UID} of {shape.slices} instances:\n{series}")
    print(f"crawled {root} into {index_dir} in {crawl_s:.2f} s")

    print("warm-up: reading every file whole")
    read_all(root)
    read_s, size = read_all(root)
    report.add("I/O bound: read() every file whole, warm", f"{read_s:.3f} s ({size / MB / read_s:,.0f} MB/s)")

    contenders = [
        Contender("load_series", "load_series(open_index(DIR), uid)", LOAD_CHILD, index_dir,
                  workdir / "load_series.log"),
        Contender("ImageSeriesReader", "ImageSeriesReader: GDCM names + Execute()", SITK_CHILD, root,
                  workdir / "ImageSeriesReader.log"),
        Contender("pydicom loop", "pydicom loop: dcmread, sort, modality LUT", PYDICOM_CHILD, root,
                  workdir / "pydicom.log"),
    ]
    saved = {c.name: workdir / f"array-{c.name.split()[0]}.npy" for c in contenders}
    for c in contenders:  # an untimed first run per loader, which also saves its array for the check
        print(f"{c.name}: check run (saves the array)")
        c.check = c.run(saved[c.name])
    for r in range(runs):  # interleaved, so drift of the machine spreads over all of them
        for c in contenders:
            if not c.error:
                print(f"{c.name}: run {r + 1} of {runs}")
                c.runs.extend(run for run in [c.run(None)] if run is not None)

    load, itk, loop = contenders
    for c in contenders:
        if c.error:
            report.add(f"{c.name}", "error (see above)", "runs", False)
            continue
        times = [run.seconds for run in c.runs]
        value = f"{c.median('seconds'):.3f} s ({min(times):.3f}-{max(times):.3f}; whole command "
        report.add(c.label, value + f"{c.median('wall'):.2f} s)")
    if not load.error and not itk.error:
        ratio = itk.median("seconds") / load.median("seconds")
        report.add("ratio ImageSeriesReader / load_series", f"{ratio:.2f}x", f">= {TARGET_LOAD_RATIO:g}x",
                   ratio >= TARGET_LOAD_RATIO)
        wall_ratio = itk.median("wall") / load.median("wall")
        report.add("ratio, whole commands", f"{wall_ratio:.2f}x")
    if not load.error and not loop.error:
        loop_ratio = loop.median("seconds") / load.median("seconds")
        report.add("ratio pydicom loop / load_series", f"{loop_ratio:.2f}x")
    for c in contenders:
        if c.error:
            continue
        load_bytes = max(run.load_bytes for run in c.runs)
        relative = load_bytes / shape.volume_bytes
        target, ok = ("", None)
        if c is load:
            target, ok = f"< {TARGET_MEMORY_RATIO:g}x", relative < TARGET_MEMORY_RATIO
        value = f"{load_bytes / MB:,.0f} MB = {relative:.2f}x volume"
        report.add(f"{c.name}: peak RSS - RSS after imports", value, target, ok)
    for c in contenders:
        if not c.error:
            peak = max(run.peak_process for run in c.runs)
            report.add(f"{c.name}: peak RSS of the child (VmHWM)", f"{peak / MB:,.0f} MB")
    checks = {c.name: c.check for c in contenders if c.check is not None}
    if len(checks) >= 2:
        ok, detail = compare_arrays({n: saved[n] for n in checks}, checks)
        report.add("arrays (sorted by z): " + " = ".join(checks), detail, "equal", ok)
    if load.check is not None and itk.check is not None:
        ok, detail = compare_geometry(load.check.result, itk.check.result)
        report.add("geometry: load_series vs ImageSeriesReader", detail, "equal", ok)
    for path in saved.values():
        path.unlink(missing_ok=True)
    return report, index


# --------------------------------------------------------------------------- reformat and render


def median_ms(fn: Callable[[], object], repeat: int) -> float:
    """Median wall time of ``repeat`` calls in ms, after one untimed warm-up call."""
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def slab_range(count: int, spacing: float, slab: float) -> tuple[int, int]:
    """Indices [j0, j1] of the samples within slab/2 of the middle one (as reformat picks them)."""
    t = (count - 1) // 2
    half = slab / 2 / spacing
    return max(math.ceil(t - half - 1e-6), 0), min(math.floor(t + half + 1e-6), count - 1)


def bench_views(workdir: Path, index: Any, repeat: int) -> Report:
    """MIPs along the three axes, an oblique reslice and a PNG render, in this process."""
    from workbench.volume import load_series

    report = Report(f"reformat and render (in one process; median of {repeat} runs after one warm-up)")
    try:
        from workbench.volume.reformat import reformat
        from workbench.volume.render import render_png
        from workbench.volume.window import resolve_window
    except ImportError as exc:
        error = f"{type(exc).__name__}: {exc}"
        report.add("import workbench.volume.reformat, render", error, "imports", False)
        return report
    volume = load_series(index, SERIES_UID)
    array = sitk.GetArrayViewFromImage(volume)  # (z, y, x)
    spacing = volume.GetSpacing()
    # each plane's normal runs along this axis of the (z, y, x) array; its spacing is spacing[2 - axis]
    planes = {"axial": 0, "coronal": 1, "sagittal": 2}
    for plane, axis in planes.items():
        out = reformat(volume, plane, slab=SLAB_MM, mode="mip")
        ms = median_ms(lambda p=plane: reformat(volume, p, slab=SLAB_MM, mode="mip"), repeat)
        j0, j1 = slab_range(array.shape[axis], spacing[2 - axis], SLAB_MM)
        block = array[(slice(None),) * axis + (slice(j0, j1 + 1),)]
        floor_ms = median_ms(lambda b=block, a=axis: b.max(axis=a), repeat)
        expected = block.max(axis=axis)
        if axis > 0:
            expected = expected[::-1]  # coronal and sagittal: superior at the top, volume z goes up
        same = np.array_equal(sitk.GetArrayViewFromImage(out), expected)
        size = "x".join(map(str, out.GetSize()))
        report.add(f"{plane} MIP, {SLAB_MM:g} mm slab ({j1 - j0 + 1} slices, {size})", f"{ms:.1f} ms",
                   f"< {TARGET_MIP_MS:g} ms", ms < TARGET_MIP_MS)
        code = ["arr[z0:z1].max(axis=0)", "arr[:, y0:y1].max(axis=1)", "arr[:, :, x0:x1].max(axis=2)"][axis]
        report.add(f"  numpy floor: {code}", f"{floor_ms:.1f} ms", "same values", same)

    oblique = reformat(volume, OBLIQUE)
    size = "x".join(map(str, oblique.GetSize()))
    ms = median_ms(lambda: reformat(volume, OBLIQUE), repeat)
    angle = math.degrees(math.acos(OBLIQUE[2] / math.hypot(*OBLIQUE)))
    report.add(f"oblique reslice, normal {OBLIQUE} ({angle:.0f} deg, {size})", f"{ms:.1f} ms",
               f"< {TARGET_OBLIQUE_MS:g} ms", ms < TARGET_OBLIQUE_MS)
    floor_ms = resample_floor_ms(volume, oblique, repeat)
    report.add("  SimpleITK floor: Resample onto the same grid", f"{floor_ms:.1f} ms")
    per_pixel = ms / (oblique.GetSize()[0] * oblique.GetSize()[1]) * 512 * 512
    report.add("  the same, scaled to 512x512 pixels", f"{per_pixel:.1f} ms")

    axial = reformat(volume, "axial")
    png = workdir / "axial.png"
    ms = median_ms(lambda: render_png(axial, png, WINDOW), repeat)
    size = "x".join(map(str, axial.GetSize()))
    report.add(f"render_png(axial {size}, '{WINDOW}')", f"{ms:.1f} ms", f"< {TARGET_RENDER_MS:g} ms",
               ms < TARGET_RENDER_MS)
    report.add("  baseline: matplotlib.image.imsave(vmin, vmax)",
               f"{imsave_ms(axial, workdir / 'axial-mpl.png', resolve_window(WINDOW), repeat):.1f} ms")
    return report


def resample_floor_ms(volume: sitk.Image, plane: sitk.Image, repeat: int) -> float:
    """sitk.Resample of the volume onto the reslice's own 2D grid (one sample thick), float32 linear."""
    origin = [float(v) for v in plane.GetMetaData("workbench:plane_origin").split()]
    row = np.array([float(v) for v in plane.GetMetaData("workbench:plane_row").split()])
    column = np.array([float(v) for v in plane.GetMetaData("workbench:plane_column").split()])
    normal = np.cross(row, column)
    direction = tuple(float(v) for v in np.column_stack([row, column, normal]).ravel())
    spacing = plane.GetSpacing()
    size = [*plane.GetSize(), 1]

    def resample() -> sitk.Image:
        return sitk.Resample(volume, size, sitk.Transform(), sitk.sitkLinear, origin, (*spacing, spacing[0]),
                             direction, -1024.0, sitk.sitkFloat32)

    return median_ms(resample, repeat)


def imsave_ms(image: sitk.Image, path: Path, window: tuple[float, float], repeat: int) -> float:
    """What a user would write to save a windowed slice: matplotlib's imsave with vmin/vmax."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import image as mpimage

    center, width = window
    array = sitk.GetArrayViewFromImage(image)
    low, high = center - width / 2, center + width / 2
    return median_ms(lambda: mpimage.imsave(path, array, cmap="gray", vmin=low, vmax=high), repeat)


# --------------------------------------------------------------------------- main


def main() -> int:
    """Parse arguments, build or reuse the series, run the benchmarks and print the report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slices", type=int, default=300, metavar="N", help="slices (default: 300)")
    parser.add_argument("--size", type=int, default=512, metavar="S", help="rows = columns (default: 512)")
    parser.add_argument("--workdir", type=Path, help="reuse/keep the series here (default: temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary work directory")
    parser.add_argument("--repeat", type=int, default=5, metavar="R",
                        help="timed runs per reformat/render measurement, median reported (default: 5)")
    parser.add_argument("--load-runs", type=int, default=3, metavar="L",
                        help="timed fresh-interpreter runs per loader, median reported (default: 3)")
    args = parser.parse_args()
    if args.slices < 2 or args.size < 16 or args.repeat < 1 or args.load_runs < 1:
        parser.error("--slices must be >= 2, --size >= 16, --repeat and --load-runs >= 1")

    shape = Shape(args.slices, args.size)
    with work_directory(args.workdir, "wb-volume-bench-", keep=args.keep) as workdir:
        print(machine())
        print(
            f"python {platform.python_version()}, numpy {np.__version__}, pydicom {pydicom.__version__}, "
            f"SimpleITK {sitk.Version.VersionString()}, pillow {version('pillow')}, "
            f"matplotlib {version('matplotlib')}, workbench {version('workbench')} "
            f"(children run with cwd {REPO})"
        )
        print(f"workdir: {workdir}")
        reports = []
        root = ensure_series(workdir, shape)
        report, index = bench_load(workdir, root, shape, args.load_runs)
        reports.append(report)
        try:
            reports.append(bench_views(workdir, index, args.repeat))
        except Exception as exc:  # noqa: BLE001 - code under test; report it and keep the load table
            traceback.print_exc()
            failed_views = Report("reformat and render")
            failed_views.add("reformat and render", f"{type(exc).__name__}: {exc}"[:100], "runs", False)
            reports.append(failed_views)
    for report in reports:
        report.print()
    print(f"\nmemory: MB = 2^20 bytes; the load's memory is the child's peak RSS (VmHWM, right after "
          f"the call) minus its RSS right after imports; the volume is {shape.volume_bytes / MB:,.0f} MB.")
    if (args.slices, args.size) != (300, 512):
        print("note: the targets are defined for 300 slices of 512x512.")
    failed = [r.title.split(":")[0].split(" (")[0] for r in reports if r.failed]
    print(f"\noverall: {'FAIL (' + ', '.join(failed) + ')' if failed else 'PASS'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
