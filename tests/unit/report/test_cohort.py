"""Batch analysis of a study folder: rows, failures, skip by content hash, local parallel."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from imuhip.pipeline import analyze_recording
from imuhip.report.cohort import find_recordings, run_batch, sha256_file

REPO = Path(__file__).resolve().parents[3]
GOOD = ("typical", "with_lumbar")


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two good recordings (one in a sub-folder), a garbage file and a truncated recording."""
    d = tmp_path_factory.mktemp("study")
    shutil.copy(REPO / "recordings" / "typical.imrec", d / "typical.imrec")
    (d / "site_b").mkdir()
    shutil.copy(REPO / "recordings" / "with_lumbar.imrec", d / "site_b" / "with_lumbar.imrec")
    (d / "garbage.imrec").write_bytes(b"definitely not a recording" * 40)
    data = (REPO / "recordings" / "typical.imrec").read_bytes()
    (d / "truncated.imrec").write_bytes(data[:200])
    (d / "notes.txt").write_text("not a recording, ignored")
    return d


@pytest.fixture(scope="module")
def first_run(study: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    out = tmp_path_factory.mktemp("out") / "cohort.parquet"
    return out, run_batch(study, out, jobs=1)


def test_sha256_file_matches_hashlib(tmp_path: Path) -> None:
    import hashlib

    p = tmp_path / "x.bin"
    p.write_bytes(b"abc" * 1_000_000)
    assert sha256_file(p, chunk=4096) == hashlib.sha256(b"abc" * 1_000_000).hexdigest()


def test_find_recordings_recursive_sorted(study: Path) -> None:
    names = [p.relative_to(study).as_posix() for p in find_recordings(study)]
    assert names == [
        "garbage.imrec",
        "site_b/with_lumbar.imrec",
        "truncated.imrec",
        "typical.imrec",
    ]
    with pytest.raises(NotADirectoryError):
        find_recordings(study / "typical.imrec")


def test_rows_per_session_and_side(first_run: tuple[Path, object]) -> None:
    out, res = first_run
    table = pd.read_parquet(out)
    assert sorted(zip(table["file"], table["side"], strict=True)) == [
        ("site_b/with_lumbar.imrec", "left"),
        ("site_b/with_lumbar.imrec", "right"),
        ("typical.imrec", "left"),
        ("typical.imrec", "right"),
    ]
    assert res.analysed == ["site_b/with_lumbar.imrec", "typical.imrec"]  # type: ignore[attr-defined]
    for col in ("sha256", "hip_rotation_excursion_deg", "compensation_index", "max_loss_fraction"):
        assert col in table.columns
    # lumbar metrics only exist for the session with a lumbar sensor
    lum = table.set_index("file")["lumbar_rotation_range_deg"]
    assert lum.loc["site_b/with_lumbar.imrec"].notna().all()
    assert lum.loc["typical.imrec"].isna().all()


def test_row_values_equal_the_pipeline(study: Path, first_run: tuple[Path, object]) -> None:
    out, _ = first_run
    table = pd.read_parquet(out)
    res = analyze_recording(study / "typical.imrec")
    row = table[(table["file"] == "typical.imrec") & (table["side"] == "right")].iloc[0]
    for k, m in res.session.per_side["right"].items():
        assert row[k] == pytest.approx(m.mean, nan_ok=True)
    assert row["n_valid_strides"] == res.session.n_strides["right"]["valid"]
    assert row["compensation_index"] == pytest.approx(res.compensation["right"].index)
    assert row["sha256"] == sha256_file(study / "typical.imrec")


def test_failures_listed_with_reason(first_run: tuple[Path, object]) -> None:
    out, res = first_run
    fails = dict(res.failures)  # type: ignore[attr-defined]
    assert set(fails) == {"garbage.imrec", "truncated.imrec"}
    assert "magic" in fails["garbage.imrec"]
    assert "RecordingError" in fails["truncated.imrec"]
    doc = json.loads(out.with_name("cohort.done.json").read_text())
    assert {f["file"] for f in doc["failures"]} == set(fails)
    assert len(doc["done"]) == 2


def test_rerun_skips_done_sessions(study: Path, first_run: tuple[Path, object]) -> None:
    out, _ = first_run
    before = pd.read_parquet(out)
    again = run_batch(study, out, jobs=1)
    assert again.analysed == []
    assert again.skipped == ["site_b/with_lumbar.imrec", "typical.imrec"]
    assert len(again.failures) == 2  # bad files are tried again (and fail again)
    pd.testing.assert_frame_equal(pd.read_parquet(out), before)


def test_changed_file_is_analysed_again(study: Path, tmp_path: Path) -> None:
    d = tmp_path / "s"
    d.mkdir()
    shutil.copy(study / "typical.imrec", d / "a.imrec")
    out = tmp_path / "c.parquet"
    assert run_batch(d, out, jobs=1).analysed == ["a.imrec"]
    shutil.copy(study / "site_b" / "with_lumbar.imrec", d / "a.imrec")  # same name, new content
    res = run_batch(d, out, jobs=1)
    assert res.analysed == ["a.imrec"]
    table = pd.read_parquet(out)
    assert set(table["session_id"]) == {"sim-103"}  # the stale rows are gone
    assert len(table) == 2


def test_table_newer_than_manifest_gives_no_duplicate_rows(study: Path, tmp_path: Path) -> None:
    """A run that died between writing the table and its manifest: the next run re-analyses the
    unvouched session and the table holds it once, not twice."""
    d = tmp_path / "s"
    d.mkdir()
    shutil.copy(study / "typical.imrec", d / "a.imrec")
    out = tmp_path / "c.parquet"
    run_batch(d, out, jobs=1)
    n_rows = len(pd.read_parquet(out))
    assert n_rows == 2
    from imuhip.report.cohort import manifest_path

    m = manifest_path(out)
    doc = json.loads(m.read_text(encoding="utf-8"))
    doc["done"] = {}  # the manifest of before the crash
    m.write_text(json.dumps(doc), encoding="utf-8")
    res = run_batch(d, out, jobs=1)
    assert res.analysed == ["a.imrec"]
    assert len(pd.read_parquet(out)) == n_rows
    assert not list(tmp_path.glob(".*tmp*"))  # no temporary files left behind


@pytest.mark.slow
def test_cli_parallel_equals_serial(
    study: Path, first_run: tuple[Path, object], tmp_path: Path
) -> None:
    out = tmp_path / "par.parquet"
    proc = subprocess.run(
        [sys.executable, "-m", "imuhip", "batch", str(study), "--out", str(out), "--jobs", "2"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 1, proc.stderr  # two bad files
    assert "2 analysed, 0 already done, 2 failed" in proc.stdout
    assert "garbage.imrec: RecordingError" in proc.stdout
    # stderr is no terminal: one progress line per recording instead of a bar drawn at the end
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("analysed ")]
    assert [ln.split(": ")[0] for ln in lines] == [f"analysed {k}/4" for k in range(1, 5)]
    assert any(ln.endswith(": garbage.imrec") for ln in lines), lines
    pd.testing.assert_frame_equal(pd.read_parquet(out), pd.read_parquet(first_run[0]))


def test_cli_user_errors(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "imuhip", "batch", str(tmp_path / "nope"), "--out", "x.parquet"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1
    assert "is not a folder" in proc.stderr


# --- long sessions in bounded memory ---------------------------------------------------------
@pytest.fixture(scope="module")
def four_minutes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from imuhip.cli.bench import make_bench_recording

    path = tmp_path_factory.mktemp("long") / "four_min.imrec"
    make_bench_recording(path, 240.0, 4, 100, tile_s=120.0)
    return path


def test_chunked_analysis_matches_one_piece(four_minutes: Path) -> None:
    from imuhip.report.cohort import analyze_recording_chunked

    parts = analyze_recording_chunked(four_minutes, window_s=60.0, overlap_s=15.0)
    # the chunked analysis calibrates on its first window; the one-piece reference gets the
    # same calibration, so what is compared is the chunking alone (a calibration on all four
    # minutes may move a contact by a sample)
    whole = analyze_recording(four_minutes, segcal=parts.segcal)
    assert parts.windows == 4
    # every stride once, at the same time (windows overlap but a stride belongs to one)
    ics = [s.ic_s for s in parts.strides]
    assert len(ics) == len(set(ics))
    assert len(parts.strides) == len(whole.strides)
    for a, b in zip(whole.strides, parts.strides, strict=True):
        assert (a.side, a.valid) == (b.side, b.valid)
        assert b.ic_s == pytest.approx(a.ic_s, abs=0.005)
    assert [s.number for s in parts.strides if s.side == "left"] == list(
        range(1, 1 + sum(s.side == "left" for s in parts.strides))
    )
    for side in ("left", "right"):
        w, p = whole.session.per_side[side], parts.session.per_side[side]
        assert p["hip_rotation_excursion_deg"].n == w["hip_rotation_excursion_deg"].n
        assert p["hip_rotation_excursion_deg"].mean == pytest.approx(
            w["hip_rotation_excursion_deg"].mean, abs=0.3
        )
        assert p["hip_flexion_range_deg"].mean == pytest.approx(
            w["hip_flexion_range_deg"].mean, abs=0.3
        )
        assert p["stride_time_s"].mean == pytest.approx(w["stride_time_s"].mean, abs=0.002)
        assert parts.compensation[side].index == pytest.approx(
            whole.compensation[side].index, abs=0.2
        )
        assert parts.compensation[side].n_strides == whole.compensation[side].n_strides
    for k, v in whole.session.trunk.items():
        assert parts.session.trunk[k].mean == pytest.approx(v.mean, abs=0.3), k
    # the batch row builder takes either result
    rows = result_rows_of(parts)
    assert [r["side"] for r in rows] == ["left", "right"]


def result_rows_of(res: object) -> list[dict]:
    from imuhip.report.cohort import result_rows

    return result_rows(res, "x.imrec", "0" * 64)


def test_chunked_rejects_bad_windows(four_minutes: Path) -> None:
    from imuhip.report.cohort import analyze_recording_chunked

    with pytest.raises(ValueError, match="window_s"):
        analyze_recording_chunked(four_minutes, window_s=5.0)
    with pytest.raises(ValueError, match="overlap_s"):
        analyze_recording_chunked(four_minutes, window_s=60.0, overlap_s=1.0)


def test_large_recordings_go_through_the_chunked_path(four_minutes: Path) -> None:
    from imuhip.report.cohort import analyze_one

    small = analyze_one(str(four_minutes), chunk_bytes=None)
    big = analyze_one(str(four_minutes), chunk_bytes=0)  # every file counts as large
    assert small["ok"] and big["ok"], (small["error"], big["error"])
    assert [r["side"] for r in big["rows"]] == ["left", "right"]
    for a, b in zip(small["rows"], big["rows"], strict=True):
        assert a["n_valid_strides"] == b["n_valid_strides"]
        assert b["hip_rotation_excursion_deg"] == pytest.approx(
            a["hip_rotation_excursion_deg"], abs=0.3
        )
