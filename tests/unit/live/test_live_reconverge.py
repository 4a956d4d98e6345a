"""After a sensor gap (a reconnect) the live processor restarts that filter, withholds the side's
hip angle ("re-converging") and re-anchors its heading; no angle outside physiological bounds."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from imuhip.ingest.recording import open_recording
from imuhip.live.hips import HipUpdate
from imuhip.live.processor import LiveProcessor, _feed
from imuhip.types import RawPacket


@pytest.mark.slow
def test_faulted_replay_stays_physiological_and_flags_reconverging(tmp_path: Path) -> None:
    out = tmp_path / "faulted"
    r = subprocess.run(
        [sys.executable, "-m", "imuhip", "simulate", "--duration", "40", "--no-mag",
         "--sensors", "pelvis,thigh_l,thigh_r", "--seed", "5", "--loss", "0.01",
         "--disconnect", "thigh_r:14:1.5", "--disconnect", "pelvis:26:1.0",
         "--disconnect", "thigh_l:32:2.0", str(out)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    stream = open_recording(Path(f"{out}.imrec"))
    proc = LiveProcessor(stream.meta, fusion=True)
    items = list(stream)
    t0 = min(it.host_rx_ns for it in items if isinstance(it, RawPacket))
    shown: list[tuple[float, str, np.ndarray | None, bool]] = []
    rows: dict[str, list[int]] = {"left": [], "right": []}  # grid rows given an angle
    show = proc._show

    def spy(updates: list[HipUpdate]) -> None:
        for u in updates:
            rows[u.side] += u.k.tolist()
        show(updates)

    proc._show = spy  # type: ignore[method-assign]
    for it in items:
        _feed(proc, [it])
        if isinstance(it, RawPacket):
            t = (it.host_rx_ns - t0) * 1e-9
            for side in ("left", "right"):
                shown.append((t, side, proc.hip_deg.get(side), side in proc.reconverging))
    proc.finish()
    assert {p: s.resets for p, s in proc.sensors.items()} == {
        "pelvis": 1,
        "thigh_l": 1,
        "thigh_r": 1,
    }
    values = np.array([d for _t, _s, d, _b in shown if d is not None])
    assert len(values) > 500
    # no number it cannot stand behind: every angle shown is physiological
    assert np.all(np.abs(values[:, 2]) < 60.0), np.abs(values[:, 2]).max()
    assert np.all((values[:, 0] > -30.0) & (values[:, 0] < 120.0))
    for t_end, sides in ((15.5, ["right"]), (27.0, ["left", "right"]), (34.0, ["left"])):
        for side in sides:
            # right after each gap the affected side is flagged and shows no angle
            near = [(d, b) for t, s, d, b in shown if s == side and t_end + 0.1 <= t < t_end + 2.5]
            assert near and all(d is None and b for d, b in near), (t_end, side)
            # no angle for the rows of the gap and the re-convergence (HeadingConfig.
            # reanchor_window_s = 4.75 s of walking after the restart; the gap ends ~0.1 s
            # before t_end on the session grid) ...
            t_rows = np.array(rows[side]) / proc.rate_hz
            bad = t_rows[(t_rows > t_end - 0.4) & (t_rows < t_end + 4.5)]
            assert not len(bad), (t_end, side, bad.min(), bad.max(), len(bad))
            # ... and angles again after it (the last gap's ones at the end of the session)
            assert np.any((t_rows >= t_end + 4.75) & (t_rows < t_end + 6.0)), (t_end, side)
