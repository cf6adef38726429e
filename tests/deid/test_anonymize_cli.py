"""``workbench anonymize`` as a user runs it: export, verification, and the errors."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pydicom
import pytest

import workbench

sys.path.insert(0, str(Path(__file__).parent))
from phi_planting import (  # noqa: E402
    PATIENT_ID,
    PATIENT_NAME,
    PRIVATE_CREATOR,
    make_planted_patient,
    sample_with_burned_in_cr,
)


def run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "workbench", "anonymize", *args], capture_output=True,
                          text=True, env=env, timeout=600)


@pytest.fixture(scope="module")
def planted_index(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    patient = make_planted_patient(root / "src")
    return patient, workbench.crawl(root / "src", index=root / "index", quiet=True), root


def test_export_verifies_clean_and_zips(planted_index, tmp_path, run_env) -> None:
    _, index, _ = planted_index
    out = tmp_path / "export"
    result = run(str(index.directory), "--out", str(out), "--option", "retain_modified_dates",
                 "--map", str(tmp_path / "map.parquet"), "--zip", "--quiet", env=run_env)
    assert result.returncode == 0, result.stderr
    assert "verification: no identifying value found" in result.stdout
    assert (tmp_path / "export.zip").exists() and (tmp_path / "map.parquet").exists()
    assert (index.directory / "deid.key").stat().st_mode & 0o077 == 0  # the key is private to its owner
    again = run(str(index.directory), "--out", str(out), "--option", "retain_modified_dates", "--quiet",
                env=run_env)
    assert again.returncode == 0 and "exported 0 file(s)" in again.stdout


def test_verify_finds_phi_in_an_unanonymized_copy_without_printing_it(planted_index, tmp_path,
                                                                      run_env) -> None:
    patient, index, _ = planted_index
    fake_export = tmp_path / "not-anonymized"
    shutil.copytree(patient.folder, fake_export)
    result = run("--verify", str(fake_export), "--index", str(index.directory), env=run_env)
    assert result.returncode == 1
    assert "identifying value(s) found" in result.stderr
    assert "PatientName" in result.stderr and "PatientID" in result.stderr
    assert PATIENT_NAME not in result.stderr + result.stdout
    assert PATIENT_ID not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--option", "retain_everything"], "unknown de-identification option"),
        (["--option", "retain_full_dates", "--option", "retain_modified_dates"], "exclude each other"),
        (["--where", "NoSuchColumn = 1"], "NoSuchColumn"),
    ],
)
def test_usage_errors(planted_index, tmp_path, run_env, args, message) -> None:
    _, index, _ = planted_index
    result = run(str(index.directory), "--out", str(tmp_path / "x"), *args, env=run_env)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr


def test_the_map_inside_the_export_is_refused(planted_index, tmp_path, run_env) -> None:
    _, index, _ = planted_index
    out = tmp_path / "x"
    result = run(str(index.directory), "--out", str(out), "--map", str(out / "map.parquet"), env=run_env)
    assert result.returncode == 2 and "must not be inside the export" in result.stderr


def test_verify_needs_the_index(tmp_path, run_env) -> None:
    result = run("--verify", str(tmp_path), env=run_env)
    assert result.returncode == 2 and "--index" in result.stderr


def test_safe_private_keeps_only_the_named_private_elements(planted_index, tmp_path, run_env) -> None:
    _, index, _ = planted_index
    out = tmp_path / "export"
    result = run(str(index.directory), "--out", str(out), "--option", "retain_safe_private",
                 "--safe-private", f"{PRIVATE_CREATOR}:11", "--quiet", env=run_env)
    assert result.returncode == 0, result.stderr  # verified clean
    for path in sorted(out.rglob("*.dcm")):
        ds = pydicom.dcmread(path)
        block = [e for e in ds if e.tag.group == 0x0029]
        if not block:
            continue  # the SR has no private block
        assert [int(e.tag) & 0xFFFF for e in block] == [0x0010, 0x1011]  # the creator and the named element
        assert PATIENT_NAME not in str(ds[0x00291011].value[0].PatientName)
    nothing_named = run(str(index.directory), "--out", str(tmp_path / "plain"), "--option",
                        "retain_safe_private", "--quiet", env=run_env)
    assert nothing_named.returncode == 0, nothing_named.stderr
    assert "retain_safe_private without --safe-private keeps no private element" in nothing_named.stderr
    kept = [e for p in (tmp_path / "plain").rglob("*.dcm") for e in pydicom.dcmread(p) if e.tag.is_private]
    assert kept == []


@pytest.mark.parametrize("pair", ["ACME 1.1", "ACME 1.1:0x10", "ACME 1.1:1010", ":10", "ACME 1.1:05"])
def test_a_malformed_safe_private_pair_is_one_clear_error(planted_index, tmp_path, run_env, pair) -> None:
    _, index, _ = planted_index
    result = run(str(index.directory), "--out", str(tmp_path / "x"), "--option", "retain_safe_private",
                 "--safe-private", pair, env=run_env)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert f"--safe-private {pair!r} is not CREATOR:EE" in result.stderr
    assert not (tmp_path / "x").exists()


def test_blanking_rules_from_a_file_paint_over_burned_in_text(tmp_path, run_env) -> None:
    import json

    sample_with_burned_in_cr(tmp_path / "src")
    index = workbench.crawl(tmp_path / "src", index=tmp_path / "index", quiet=True)
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps([{"modality": "CR", "rectangles": [[0, 0, 40, 20], [10, 30, 20, 35]]}]))
    out = tmp_path / "export"
    result = run(str(index.directory), "--out", str(out), "--where", "Modality = 'CR'",
                 "--blanking", str(rules), "--quiet", env=run_env)
    assert result.returncode == 0, result.stderr
    assert "0 held back" in result.stdout
    exported = pydicom.dcmread(next(out.rglob("*.dcm")))
    pixels = exported.pixel_array
    assert (pixels[:20, :40] == pixels.min()).all() and (pixels[30:35, 10:20] == pixels.min()).all()
    assert pixels[20:30, 40:].std() > 0 and exported.BurnedInAnnotation == "NO"
    held = run(str(index.directory), "--out", str(tmp_path / "held"), "--where", "Modality = 'CR'", "--quiet",
               env=run_env)
    assert "1 held back" in held.stdout  # without the rules, the image stays home


@pytest.mark.parametrize(("content", "message"), [
    ("{not json", "are not JSON"),
    ('{"modality": "CR"}', "must be a JSON list of rules"),
    ('[{"modality": "CR"}]', "rule 1: 'rectangles' must be a non-empty list"),
    ('[{"rectangles": [[0, 0, 10, 10]]}, {"rectangles": [[5, 0, 2, 10]]}]',
     "rule 2: the rectangle [5, 0, 2, 10]"),
    ('[{"rectangles": [[0, 0, 10, 10]], "colour": "black"}]', "rule 1: expected an object with"),
])
def test_malformed_blanking_rules_are_one_clear_error(planted_index, tmp_path, run_env, content, message):
    _, index, _ = planted_index
    rules = tmp_path / "rules.json"
    rules.write_text(content)
    result = run(str(index.directory), "--out", str(tmp_path / "x"), "--blanking", str(rules), env=run_env)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert str(rules) in result.stderr and message in result.stderr
    assert not (tmp_path / "x").exists()
