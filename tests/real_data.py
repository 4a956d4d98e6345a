"""Where the real recordings of ``../shared/data`` are, and the gaittoolbox trial's sensor ids
(its README: placement -> Xsens sensor id)."""

from __future__ import annotations

from pathlib import Path

from tests.cli import run_cli as run_cli

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
GAITTOOLBOX_IMU = SHARED_DATA / "gaittoolbox" / "imu"
GAITTOOLBOX_TRIAL = "S02-Trial-Walk-1-000"
GAITTOOLBOX_IDS = {
    "pelvis": "00B40B91",
    "thigh_l": "00B40C45",
    "thigh_r": "00B40C3C",
    "shank_l": "00B40BA5",
    "shank_r": "00B40C35",
    "foot_l": "00B40C55",
    "foot_r": "00B40C48",
}
