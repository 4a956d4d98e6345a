"""``imuhip export`` shows progress on stderr for big recordings only (small ones stay silent)."""

from __future__ import annotations

from pathlib import Path

import pytest

import imuhip.cli.commands.export as export_cmd
from imuhip.cli import main

TYPICAL = Path(__file__).resolve().parents[3] / "recordings" / "typical.imrec"


def test_big_recording_shows_stages_small_one_and_quiet_do_not(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert TYPICAL.stat().st_size < export_cmd.PROGRESS_MIN_BYTES
    assert main(["export", str(TYPICAL), "--format", "csv", "--out", str(tmp_path / "a")]) == 0
    assert capsys.readouterr().err == ""
    # the same file counted as big (the threshold is a file size, not a time)
    monkeypatch.setattr(export_cmd, "PROGRESS_MIN_BYTES", TYPICAL.stat().st_size)
    assert main(["export", str(TYPICAL), "--format", "csv", "--out", str(tmp_path / "b")]) == 0
    assert capsys.readouterr().err.splitlines() == [
        "imuhip export: reading typical.imrec...",
        "imuhip export: decoding and aligning the sensor streams...",
        f"imuhip export: writing csv to {tmp_path / 'b'}...",
    ]
    out = ["--out", str(tmp_path / "c"), "--quiet"]
    assert main(["export", str(TYPICAL), "--format", "csv", *out]) == 0
    assert capsys.readouterr().err == ""
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "b").iterdir())
    assert "typical_pelvis.csv" in names
