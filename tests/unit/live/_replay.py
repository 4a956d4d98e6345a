"""Replaying a recording through the live path, and its angles against the offline ones."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from imuhip.ingest.recording import open_recording
from imuhip.live.hips import HipUpdate
from imuhip.live.processor import LiveProcessor, _feed
from imuhip.pipeline import AnalysisConfig, SessionResult, analyze_recording

Angles = dict[str, dict[int, np.ndarray]]  # side -> grid row -> (flexion, adduction, rotation) deg


def simulated(out: Path, *args: str) -> Path:
    """``imuhip simulate --quiet ARGS OUT`` in a subprocess; the recording's path."""
    r = subprocess.run(
        [sys.executable, "-m", "imuhip", "simulate", *args, "--quiet", str(out)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    return Path(f"{out}.imrec")


def live_angles(
    path: Path,
    *,
    setup: Callable[[LiveProcessor], None] | None = None,
    after_item: Callable[[LiveProcessor], None] | None = None,
    keep: Callable[[object], bool] | None = None,
) -> tuple[LiveProcessor, Angles]:
    """Feed the recording, item by item in file order, to a :class:`LiveProcessor` with fusion;
    every hip angle it shows, per side and grid row, in degrees.

    ``setup`` may change the processor before the first item (``scripts/live_vs_offline.py``
    gives it the offline clocks); ``after_item`` is called after each item; items for which
    ``keep`` is false never reach the processor (a sensor that vanishes).
    """
    stream = open_recording(path)
    proc = LiveProcessor(stream.meta, fusion=True)
    if setup is not None:
        setup(proc)
    got: Angles = {"left": {}, "right": {}}
    show = proc._show

    def spy(updates: list[HipUpdate]) -> None:
        for u in updates:
            for k, a in zip(u.k.tolist(), np.degrees(u.angles_rad), strict=True):
                got[u.side][k] = a
        show(updates)

    proc._show = spy  # type: ignore[method-assign]
    for item in stream:
        if keep is not None and not keep(item):
            continue
        _feed(proc, [item])
        if after_item is not None:
            after_item(proc)
    proc.finish()  # the end of the session: the rows still waiting for a heading anchor
    return proc, got


def matched_rows(
    path: Path, proc: LiveProcessor, got: Angles
) -> tuple[SessionResult, dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]]:
    """The offline analysis with the same online filter, and per side the offline row index of
    each live row inside the offline grid with its live and offline angles (deg, rows x 3)."""
    res = analyze_recording(path, AnalysisConfig(method="vqf_online"))
    k0 = round(res.angles.t_s[0] * proc.rate_hz)
    m = len(res.angles.t_s)
    out = {}
    for side in ("left", "right"):
        ks = np.array(sorted(got[side]), dtype=np.int64)
        idx = ks - k0
        ks, idx = ks[(idx >= 0) & (idx < m)], idx[(idx >= 0) & (idx < m)]
        live = np.array([got[side][k] for k in ks.tolist()]).reshape(-1, 3)
        out[side] = (idx, live, np.degrees(res.angles.hip_rad[side])[idx])
    return res, out


def live_minus_offline(
    path: Path, proc: LiveProcessor, got: Angles
) -> dict[str, tuple[int, np.ndarray]]:
    """Per side: the live rows inside the offline grid, and ``|live - offline|`` (deg, rows x 3)
    on those the offline analysis with the same online filter marks valid."""
    res, rows = matched_rows(path, proc, got)
    return {
        side: (len(idx), np.abs(live - off)[res.angles.valid[idx]])
        for side, (idx, live, off) in rows.items()
    }
