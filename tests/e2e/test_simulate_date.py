"""``imuhip simulate --date`` dates the recording; ``imuhip compare`` orders sessions by it.

Through the command line (in-process ``main``): two walks of one subject simulated in the reverse
order of their dates, analysed, compared; the comparison lists the earlier date first.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from imuhip.cli import main
from imuhip.ingest.recording import read_recording


def _simulate(out: Path, *extra: str) -> None:
    args = ["simulate", str(out), "--duration", "14", "--subject", "P01", "--quiet", *extra]
    assert main(args) == 0


def test_date_in_header_and_compare_orders_by_it(tmp_path: Path, capsys) -> None:
    _simulate(tmp_path / "later", "--date", "2025-06-01", "--seed", "1")
    _simulate(tmp_path / "earlier", "--date", "2025-01-15T14:30+01:00", "--seed", "2")
    _simulate(tmp_path / "undated", "--seed", "3")
    assert capsys.readouterr().err == ""  # --quiet: no progress lines
    assert read_recording(tmp_path / "later.imrec").meta.start_wall_time == (
        "2025-06-01T09:00:00+00:00"
    )
    assert read_recording(tmp_path / "earlier.imrec").meta.start_wall_time == (
        "2025-01-15T14:30:00+01:00"
    )
    # without --date the simulator's fixed date stays (the shipped demos depend on it)
    assert read_recording(tmp_path / "undated.imrec").meta.start_wall_time == (
        "2024-01-01T09:00:00+00:00"
    )
    for name in ("later", "earlier"):
        rec = str(tmp_path / f"{name}.imrec")
        assert main(["analyze", rec, "--out", str(tmp_path / f"r_{name}"), "--quiet"]) == 0
    out = tmp_path / "cmp"
    args = [str(tmp_path / "r_later"), str(tmp_path / "r_earlier"), "--out", str(out)]
    assert main(["compare", *args]) == 0
    doc = json.loads((out / "compare.json").read_text())
    assert [s["date"] for s in doc["sessions"]] == [
        "2025-01-15T14:30:00+01:00",
        "2025-06-01T09:00:00+00:00",
    ]
    assert [Path(s["source"]).parent.name for s in doc["sessions"]] == ["r_earlier", "r_later"]
    assert "2025-01-15T14:30:00+01:00" in capsys.readouterr().out


@pytest.mark.parametrize("bad", ["2025-13-01", "15.01.2025", "yesterday", "2025-01-15T25:00"])
def test_bad_date_is_usage_and_exit_2(tmp_path: Path, capsys, bad: str) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["simulate", str(tmp_path / "x"), "--date", bad])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: imuhip simulate")
    assert "argument --date: expected an ISO date YYYY-MM-DD" in err and repr(bad) in err
    assert not (tmp_path / "x.imrec").exists()


def test_progress_lines_on_stderr_unless_quiet(tmp_path: Path, capsys) -> None:
    assert main(["simulate", str(tmp_path / "p"), "--duration", "12", "--no-noise"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "imuhip simulate: simulating 12 s of walking, 3 sensors at 200 Hz...",
        "imuhip simulate: writing p.imrec and its ground truth...",
    ]
