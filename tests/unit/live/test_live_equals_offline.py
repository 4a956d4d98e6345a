"""Live hip angles (LiveProcessor, packet by packet) equal the offline analysis run with the same
online filter, 6D and 9D, after the calibration period (issue 14)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from imuhip.ingest.recording import open_recording
from imuhip.live.hips import HipUpdate
from imuhip.live.processor import LiveProcessor, _feed
from imuhip.pipeline import AnalysisConfig, analyze_recording


def _simulate(out: Path, *extra: str) -> Path:
    r = subprocess.run(
        [sys.executable, "-m", "imuhip", "simulate", "--duration", "30",
         "--sensors", "pelvis,thigh_l,thigh_r", "--seed", "3", *extra, str(out)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    return Path(f"{out}.imrec")


def _live_angles(path: Path) -> tuple[LiveProcessor, dict[str, dict[int, np.ndarray]]]:
    stream = open_recording(path)
    proc = LiveProcessor(stream.meta, fusion=True)
    got: dict[str, dict[int, np.ndarray]] = {"left": {}, "right": {}}
    show = proc._show

    def spy(updates: list[HipUpdate]) -> None:
        for u in updates:
            for k, a in zip(u.k.tolist(), np.degrees(u.angles_rad), strict=True):
                got[u.side][k] = a
        show(updates)

    proc._show = spy  # type: ignore[method-assign]
    _feed(proc, stream)
    proc.finish()  # the end of the session: the rows still waiting for a heading anchor
    return proc, got


@pytest.mark.slow
@pytest.mark.parametrize("mag", [False, True], ids=["6D", "9D"])
def test_every_live_hip_angle_equals_the_offline_one(tmp_path: Path, mag: bool) -> None:
    path = _simulate(tmp_path / "walk", *([] if mag else ["--no-mag"]))
    proc, got = _live_angles(path)
    assert proc.calibrated and proc.segcal is not None
    # the calibration period: still standing (4 s), then walking until the segment calibration
    # succeeded and the first 8 s heading window is complete (measured: 9.96 s)
    assert proc.hips is not None and proc.hips.calibrated_at_k is not None
    t_cal = min(min(g) for g in got.values()) / proc.rate_hz
    assert t_cal < 11.0, t_cal
    res = analyze_recording(path, AnalysisConfig(method="vqf_online"))
    k0 = round(res.angles.t_s[0] * proc.rate_hz)
    for side in ("left", "right"):
        ks = np.array(sorted(got[side]))
        # every grid point after the calibration period has a live angle
        assert ks[0] / proc.rate_hz <= t_cal + 0.01
        assert np.all(np.diff(ks) == 1)
        assert (ks[-1] - ks[0]) / proc.rate_hz > 29.0 - t_cal
        live = np.array([got[side][k] for k in ks])
        off = np.degrees(res.angles.hip_rad[side])[ks - k0]
        diff = np.abs(live - off)[res.angles.valid[ks - k0]]
        # measured: 6D max 0.56 / 0.36 / 0.11 deg (flexion / adduction / rotation), 9D 0.03 /
        # 0.13 / 0.04 deg (before the offline interpolation of the heading anchors was used
        # live: rotation 0.64 / 0.60 deg); the rest is the online clock fit
        assert diff.max() < 1.0, (side, diff.max(axis=0))
        # not swapped: the flexion range is the offline one (42 deg vs 12 deg before issue 14)
        assert abs(np.ptp(live[:, 0]) - np.ptp(off[:, 0])) < 1.0
