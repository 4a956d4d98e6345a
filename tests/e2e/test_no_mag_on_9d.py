"""A 9D recording analysed with ``use_mag=False`` must behave as a 6D session.

Regression: the orientation hand-off carried the magnetometer data even when the filter had not
used it, so calibration and heading stages took the sensors' headings as magnetically shared
(9D) and hip rotation excursion came out 2-3 deg too large.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from imuhip.orientation.fusion import FuseConfig, fuse_session
from imuhip.pipeline import AnalysisConfig, analyze_recording

ROOT = Path(__file__).resolve().parents[2]
REC = ROOT / "recordings" / "typical.imrec"


def test_fuse_session_without_mag_hands_over_no_mag() -> None:
    from imuhip.ingest.align import align_session
    from imuhip.ingest.decode import decode_session
    from imuhip.ingest.recording import read_recording

    rec = read_recording(REC)
    aligned = align_session(decode_session(rec.packets, rec.meta))
    assert all(s.mag_ut is not None for s in aligned.sensors.values())
    ori6 = fuse_session(aligned, FuseConfig(use_mag=False))
    assert all(m is None for m in ori6.mag_ut.values())
    assert not any(bool(d["uses_mag"].any()) for d in ori6.diagnostics.values())
    ori9 = fuse_session(aligned, FuseConfig())
    assert all(m is not None for m in ori9.mag_ut.values())


@pytest.mark.parametrize("use_mag", [True, False])
def test_excursion_matches_truth_with_and_without_mag(use_mag: bool) -> None:
    truth = json.loads(REC.with_suffix("").with_suffix(".truth.json").read_text())
    want = truth["session_metrics"]["hip_rotation_excursion_deg"]
    res = analyze_recording(REC, AnalysisConfig(use_mag=use_mag))
    for side in ("left", "right"):
        got = res.session.per_side[side]["hip_rotation_excursion_deg"].mean
        assert np.isfinite(got)
        assert abs(got - want[side]) <= 1.0, (side, got, want[side])
