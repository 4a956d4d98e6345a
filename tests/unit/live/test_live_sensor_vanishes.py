"""A thigh sensor that vanishes for good mid-session stops only its own side: the other side's
live hip angles and strides go on, equal to a run where nothing vanished (issue 14)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from imuhip.ingest.recording import open_recording
from imuhip.live.hips import SILENT_S, HipUpdate
from imuhip.live.processor import LiveProcessor, _feed
from imuhip.types import RawPacket


def _replay(path: Path, vanish_after_s: float | None) -> tuple[LiveProcessor, dict[str, dict]]:
    stream = open_recording(path)
    items = list(stream)
    t0 = min(it.host_rx_ns for it in items if isinstance(it, RawPacket))
    proc = LiveProcessor(stream.meta, fusion=True)
    got: dict[str, dict[int, np.ndarray]] = {"left": {}, "right": {}}
    show = proc._show

    def spy(updates: list[HipUpdate]) -> None:
        for u in updates:
            got[u.side].update(zip(u.k.tolist(), np.degrees(u.angles_rad), strict=True))
        show(updates)

    proc._show = spy  # type: ignore[method-assign]
    for it in items:
        gone = vanish_after_s is not None and (it.host_rx_ns - t0) * 1e-9 > vanish_after_s
        if isinstance(it, RawPacket) and it.sensor == "thigh_l" and gone:
            continue
        _feed(proc, [it])
    proc.finish()
    return proc, got


@pytest.mark.slow
def test_a_vanished_thigh_stops_only_its_side(tmp_path: Path) -> None:
    out = tmp_path / "walk"
    r = subprocess.run(
        [sys.executable, "-m", "imuhip", "simulate", "--duration", "30", "--no-mag",
         "--sensors", "pelvis,thigh_l,thigh_r", "--seed", "3", "--quiet", str(out)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    path = Path(f"{out}.imrec")
    full, ref = _replay(path, None)
    cut, got = _replay(path, 15.0)
    rate = full.rate_hz
    # the left side ends where its sensor went; before, both sides froze there
    assert max(got["left"]) / rate < 15.5
    assert max(got["right"]) / rate > 29.0
    # the right side is the same as without the loss, row for row
    assert set(got["right"]) == set(ref["right"])
    right = np.array([got["right"][k] for k in sorted(ref["right"])])
    right_ref = np.array([ref["right"][k] for k in sorted(ref["right"])])
    assert np.abs(right - right_ref).max() < 1e-9
    assert full.strides is not None and cut.strides is not None
    assert cut.strides.sides["right"].valid == full.strides.sides["right"].valid > 10
    assert cut.strides.sides["left"].valid < full.strides.sides["left"].valid
    assert "left" not in cut.hip_deg  # no stale number for the vanished side
    assert SILENT_S <= 2.0  # the other side waited at most this long
