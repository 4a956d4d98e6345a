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

from imuhip.live.processor import LiveProcessor

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository, for tests.*
from tests.unit.live._replay import live_angles, matched_rows


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


def compare(path: Path, *, offline_clock: bool = False) -> dict[str, dict[str, float]]:
    worst = [0.0]

    def setup(proc: LiveProcessor) -> None:
        if offline_clock:
            for p, model in _offline_clocks(path).items():
                proc.sensors[p].clock = _FixedClock(model)  # type: ignore[assignment]
            proc._clock_model = lambda st: st.clock.model  # type: ignore[method-assign,assignment,return-value]

    def delay(proc: LiveProcessor) -> None:
        # the newest grid row against the newest row with a live angle
        hips = proc.hips
        if hips is not None and hips.k_done is not None and hips.k_final is not None:
            worst[0] = max(worst[0], (hips.k_done - hips.k_final) / proc.rate_hz)

    proc, got = live_angles(path, setup=setup, after_item=delay)
    res, rows = matched_rows(path, proc, got)
    m = len(res.angles.t_s)
    out = {}
    for side, (idx, live, off) in rows.items():
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
            "delay_s": worst[0],
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
