"""End to end (CLI): a simulated walker WITH shank sensors, events and cadence against truth.

``imuhip simulate --sensors pelvis,thigh_l,thigh_r,shank_l,shank_r`` then ``imuhip analyze``; the
report's events come from the shank gyroscopes (published Aminian/Salarian rule). Found rate and
cadence are asserted, and the timing target (median |error| <= 20 ms against the simulator's
foot-contact events, ``docs/gait_events.md``).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.cli import run_cli

MATCH_S = 0.15


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(*args)


@pytest.fixture(scope="module")
def shank_session(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, dict]:
    d = tmp_path_factory.mktemp("shank")
    rec = d / "walk"
    p = _cli(
        "simulate", str(rec), "--duration", "40", "--rate", "100",
        "--sensors", "pelvis,thigh_l,thigh_r,shank_l,shank_r",
        "--speed", "1.1", "--cadence", "104", "--misplacement-deg", "10", "--seed", "21",
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    a = _cli("analyze", f"{rec}.imrec", "--out", str(d / "out"))
    assert a.returncode == 0, a.stderr
    rep = json.loads((d / "out" / "report.json").read_text())
    truth = json.loads(Path(f"{rec}.truth.json").read_text())
    return rep, truth


def _errors(rep: dict, truth: dict, kind: str) -> tuple[int, int, np.ndarray]:
    key = {"ic": "initial_contact_s", "to": "toe_off_s"}[kind]
    n = k = 0
    errs: list[float] = []
    for side in ("left", "right"):
        true_s = np.asarray(truth["events"][f"{kind}_s"][side])
        found = np.asarray(rep["gait"]["events"][side][key])
        n += len(true_s)
        for x in true_s:
            if len(found) and np.min(np.abs(found - x)) <= MATCH_S:
                k += 1
                errs.append(float(found[np.argmin(np.abs(found - x))] - x))
    return n, k, np.asarray(errs)


@pytest.mark.parametrize("kind", ["ic", "to"])
def test_shank_events_found(shank_session, kind: str) -> None:
    rep, truth = shank_session
    assert rep["quality"]["event_sources"] == {"left": "shank_gyro", "right": "shank_gyro"}
    n, k, _ = _errors(rep, truth, kind)
    assert n > 50
    assert k >= 0.98 * n


def test_shank_cadence_and_stride_time(shank_session) -> None:
    rep, truth = shank_session
    true_st = [s["next_ic_s"] - s["ic_s"] for s in truth["strides"] if s["valid"]]
    for side in ("left", "right"):
        tm = rep["gait"]["timing"][side]
        assert tm["stride_time_s"]["median"] == pytest.approx(np.median(true_st), rel=0.02)
        assert tm["cadence_steps_min"]["median"] == pytest.approx(104.0, rel=0.03)


@pytest.mark.parametrize("kind", ["ic", "to"])
def test_shank_event_timing_target(shank_session, kind: str) -> None:
    rep, truth = shank_session
    _, _, err = _errors(rep, truth, kind)
    assert np.median(np.abs(err)) <= 0.020
