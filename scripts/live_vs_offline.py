"""Live hip angles against the offline analysis of the same recording (issue 14).

Replays a recording packet by packet through :class:`imuhip.live.processor.LiveProcessor` (what
``imuhip live`` ran while recording) and compares every live hip angle with
``analyze_recording(method="vqf_online")`` on the rows the offline analysis marks valid::

    python scripts/live_vs_offline.py REC.imrec [REC2.imrec ...]

Make a 10-minute 4-sensor session with faults first, e.g. under load::

    imuhip live --simulate --faults --duration 600 --speed 20 --no-view --no-analysis --out ten

``--offline-clock`` gives the live path the offline clocks (each sensor's clock over the whole
recording as ``align_session`` fits it: ``session_clocks``) instead of its online ones: what is
left of the difference then is not the clock.

Prints per side and angle (flexion / adduction / rotation) the max, 99th percentile and median
|live - offline| in degrees, the live delay behind the newest data, and the offline-valid rows
that have no live angle.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from imuhip.ingest.recording import open_recording
from imuhip.live.processor import LiveProcessor, _feed
from imuhip.pipeline import AnalysisConfig, analyze_recording


class _FixedClock:
    """A clock tracker that always gives one model (the offline fit)."""

    def __init__(self, model: object) -> None:
        self.model = model
        self.reanchors = 0

    def update(self, *_args: object) -> None:
        pass

    def reanchor(self) -> None:
        pass


def _offline_clocks(path: Path) -> dict[str, object]:
    from imuhip.ingest.align import session_clocks, session_t0_ns
    from imuhip.ingest.decode import decode_session
    from imuhip.ingest.recording import read_recording

    rec = read_recording(path)
    samples = decode_session(rec.packets, rec.meta)
    return dict(session_clocks(samples, session_t0_ns(samples), rec.events))


def live_angles(
    path: Path, *, offline_clock: bool = False
) -> tuple[LiveProcessor, dict[str, dict[int, np.ndarray]], float]:
    """Replay ``path``; live hip angles (deg) per side and grid index, and the largest delay (s)
    between the newest grid row and the newest row with a live angle."""
    stream = open_recording(path)
    proc = LiveProcessor(stream.meta, fusion=True)
    if offline_clock:
        for p, model in _offline_clocks(path).items():
            proc.sensors[p].clock = _FixedClock(model)  # type: ignore[assignment]
        proc._clock_model = lambda st: st.clock.model  # type: ignore[method-assign,assignment,return-value]
    got: dict[str, dict[int, np.ndarray]] = {"left": {}, "right": {}}
    show = proc._show
    worst = [0.0]

    def spy(updates: list) -> None:  # type: ignore[type-arg]
        for u in updates:
            for k, a in zip(u.k.tolist(), np.degrees(u.angles_rad), strict=True):
                got[u.side][k] = a
        show(updates)

    proc._show = spy  # type: ignore[method-assign]
    for item in stream:
        _feed(proc, [item])
        hips = proc.hips
        if hips is not None and hips.k_done is not None and hips.k_final is not None:
            worst[0] = max(worst[0], (hips.k_done - hips.k_final) / proc.rate_hz)
    proc.finish()
    return proc, got, worst[0]


def compare(path: Path, *, offline_clock: bool = False) -> dict[str, dict[str, float]]:
    proc, got, delay_s = live_angles(path, offline_clock=offline_clock)
    res = analyze_recording(path, AnalysisConfig(method="vqf_online"))
    k0 = round(res.angles.t_s[0] * proc.rate_hz)
    m = len(res.angles.t_s)
    out = {}
    for side in ("left", "right"):
        ks = np.array(sorted(got[side]), dtype=np.int64)
        idx = ks - k0
        inside = (idx >= 0) & (idx < m)
        ks, idx = ks[inside], idx[inside]
        live = np.array([got[side][k] for k in ks.tolist()])
        off = np.degrees(res.angles.hip_rad[side])[idx]
        ok = res.angles.valid[idx]
        d = np.abs(live - off)[ok]
        have = np.zeros(m, bool)
        have[idx] = True
        missing = res.angles.valid & ~have & (np.arange(m) >= (idx[0] if len(idx) else m))
        out[side] = {
            "rows": float(ok.sum()),
            "max_flex": float(d[:, 0].max()),
            "max_add": float(d[:, 1].max()),
            "max_rot": float(d[:, 2].max()),
            "p99_rot": float(np.percentile(d[:, 2], 99)),
            "median_rot": float(np.median(d[:, 2])),
            "missing": float(missing.sum()),
            "delay_s": delay_s,
        }
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("recordings", nargs="+", type=Path)
    ap.add_argument(
        "--offline-clock", action="store_true", help="live path with the offline clock fits"
    )
    args = ap.parse_args(argv)
    out = sys.stdout.write
    out("recording side rows max|d| flex/add/rot  p99 rot  median rot  missing  max delay s\n")
    for path in args.recordings:
        for side, r in compare(path, offline_clock=args.offline_clock).items():
            out(
                f"{path.name} {side:5s} {r['rows']:7.0f} "
                f"{r['max_flex']:5.2f}/{r['max_add']:5.2f}/{r['max_rot']:5.2f} "
                f"{r['p99_rot']:8.2f} {r['median_rot']:10.2f} {r['missing']:8.0f} "
                f"{r['delay_s']:6.2f}\n"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
