"""A ``live --simulate --faults`` recording replayed through the live path, live hip angles
against the offline analysis of the same file (issue 14: within 1 deg).

Known gap (measured on 60 s and 120 s faulted sessions): the two paths handle the reconnect gaps
differently. The live processor restarts a sensor's filter after a gap > 0.5 s and re-anchors
its heading (``imuhip.live.hips``); the offline analysis fills gaps up to 1 s and runs its filter
on through them (after a 1 s gap its 6D flexion was 25 deg off for ~3 s, adduction 3 deg for
~9 s), and its heading windows span the gaps. Median |live - offline| was 0.4-0.5 deg, but the
maximum 17-58 deg right after gaps, and 1-3 deg constant offsets for tens of seconds after them;
before any gap 1 deg (IR, the causal heading anchor against the interpolated one). The test is a
strict xfail: it fails as soon as the two agree, so the marker must then go.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from imuhip.pipeline import AnalysisConfig, analyze_recording
from tests.unit.live.test_live_equals_offline import _live_angles


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.xfail(
    strict=True,
    reason="live restarts filters after reconnect gaps, offline fills and runs on (see module)",
)
def test_faulted_live_recording_replays_to_the_offline_angles(tmp_path: Path) -> None:
    out = tmp_path / "faulted"
    r = subprocess.run(
        [sys.executable, "-m", "imuhip", "live", "--simulate", "--faults", "--duration", "40",
         "--speed", "20", "--no-view", "--no-analysis", "--out", str(out)],
        capture_output=True, text=True, check=False, timeout=240,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    path = Path(f"{out}.imrec")
    proc, got = _live_angles(path)
    assert sum(s.resets for s in proc.sensors.values()) >= 3  # the reconnects were replayed
    res = analyze_recording(path, AnalysisConfig(method="vqf_online"))
    k0 = round(res.angles.t_s[0] * proc.rate_hz)
    for side in ("left", "right"):
        ks = np.array(sorted(got[side]))
        assert len(ks) / proc.rate_hz > 15.0  # live angles after the calibration period
        idx = ks - k0
        ok = (idx >= 0) & (idx < len(res.angles.t_s))
        live = np.array([got[side][k] for k in ks])[ok]
        off = np.degrees(res.angles.hip_rad[side])[idx[ok]]
        diff = np.abs(live - off)[res.angles.valid[idx[ok]]]
        assert diff.max() <= 1.0, (side, diff.max(axis=0))
