"""Gait-event accuracy against simulated truth, shank and thigh paths (issue 6).

Simulates walkers WITH shank sensors (``pelvis, thigh_l, thigh_r, shank_l, shank_r``) over a spread
of speeds, cadences, sensor noise, misplacement, packet loss and sample rates; runs the same
decode → align → fusion → segment calibration as ``imuhip analyze``; then detects initial contact
(IC) and toe-off (TO) per side twice, from the shank gyroscope (the Aminian/Salarian rule) and from
the thigh gyroscope (the fallback used when no shank sensor is worn), and compares each with the
simulator's true events.

Targets: ≥ 98 % of true events found (a detection within 150 ms), median |timing error| ≤ 20 ms.
Printed per path, event kind and side: found fraction, median signed error (bias), median and
90th percentile of |error|.

Modes (issue 13): ``realistic`` (default) draws each walker with
:func:`imuhip.sim.presets.realistic_params` (10-m walkway with a turn, starts and stops,
soft-tissue artefact, datasheet sensor errors, speed-dependent curves, foot sensors), so the foot
path (Rampp et al. 2014) is evaluated too; ``clean`` is the simulator with the analysis' own
assumptions (straight walk, rigid sensors); ``both`` runs the two and prints them separately.

Usage::

    python scripts/validate_events.py               # 12 realistic sessions, seed 0
    python scripts/validate_events.py --mode both --n 4 --seed 3 --duration 40
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from typing import Any

import numpy as np

from imuhip.gait.events import (
    EventConfig,
    config_for_segment,
    detect_foot_side_events,
    detect_gait_events,
    segment_angular_velocity,
)
from imuhip.ingest.align import AlignConfig, align_session
from imuhip.ingest.decode import decode_session
from imuhip.orientation.fusion import FuseConfig, fuse_session
from imuhip.pipeline import _calibrate
from imuhip.sim.params import SimParams
from imuhip.sim.presets import realistic_params
from imuhip.sim.session import simulate_session

MATCH_S = 0.15
SENSORS = ("pelvis", "thigh_l", "thigh_r", "shank_l", "shank_r")


def draw_params(rng: np.random.Generator, duration_s: float) -> SimParams:
    """Random walker and sensor parameters (hidden from the analysis)."""
    speed = float(rng.uniform(0.8, 1.7))
    cadence = float(np.clip(rng.normal(85.0 + 20.0 * speed, 6.0), 85.0, 135.0))
    return SimParams(
        seed=int(rng.integers(1, 10**6)),
        duration_s=duration_s,
        rate_hz=int(rng.choice([100, 200])),
        sensors=SENSORS,
        has_mag=bool(rng.random() < 0.5),
        speed_m_s=speed,
        cadence_steps_min=cadence,
        heading_deg=float(rng.uniform(0.0, 360.0)),
        hip_flexion_range_deg=float(rng.uniform(36.0, 48.0)),
        knee_flexion_range_deg=float(rng.uniform(50.0, 64.0)),
        asymmetry=float(rng.uniform(-0.15, 0.15)),
        stride_time_cv=float(rng.uniform(0.01, 0.04)),
        misplacement_deg=float(rng.uniform(0.0, 15.0)),
        gyr_noise_rad_s=float(rng.uniform(0.003, 0.02)),
        loss_prob=float(rng.uniform(0.0, 0.03)),
    )


def realistic_walker(p: SimParams) -> SimParams:
    """The same walker drawn for the realistic simulator (walkway, artefacts, feet)."""
    return realistic_params(
        p.seed,
        speed_m_s=p.speed_m_s,
        rate_hz=p.rate_hz,
        has_mag=p.has_mag,
        cadence_steps_min=p.cadence_steps_min,
        heading_deg=p.heading_deg,
        misplacement_deg=p.misplacement_deg,
        loss_prob=p.loss_prob,
    )


def match(true_s: np.ndarray, found_s: np.ndarray) -> tuple[int, list[float]]:
    """True events with a detection within ``MATCH_S``, and the signed errors (s)."""
    if len(found_s) == 0 or len(true_s) == 0:
        return 0, []
    found_s = np.sort(found_s)
    idx = np.clip(np.searchsorted(found_s, true_s), 1, max(1, len(found_s) - 1))
    cand = np.stack([found_s[np.maximum(idx - 1, 0)], found_s[np.minimum(idx, len(found_s) - 1)]])
    near = cand[np.argmin(np.abs(cand - true_s), axis=0), np.arange(len(true_s))]
    d = near - true_s
    ok = np.abs(d) <= MATCH_S
    return int(ok.sum()), d[ok].tolist()


def evaluate(p: SimParams, cfg: EventConfig | None = None) -> dict[tuple[str, str, str], Any]:
    """Per (path, kind, side): (n_true, n_found, errors) for one simulated session."""
    sim = simulate_session(p)
    samples = decode_session(sim.delivered, sim.meta)
    aligned = align_session(samples, AlignConfig())
    ori = fuse_session(aligned, FuseConfig())
    segcal = _calibrate(ori, sim.events)
    out: dict[tuple[str, str, str], Any] = {}
    for side, sfx in (("left", "l"), ("right", "r")):
        for seg in ("foot", "shank", "thigh"):
            if f"{seg}_{sfx}" not in ori.q_world_sensor:
                continue
            if seg == "foot":
                ev = detect_foot_side_events(ori, side, cfg)
            else:
                omega, _ = segment_angular_velocity(ori, segcal, f"{seg}_{sfx}")
                seg_cfg = config_for_segment(cfg or EventConfig(), segcal, f"{seg}_{sfx}")
                ev = detect_gait_events(ori.t_s, omega[:, 2], side=side, segment=seg, cfg=seg_cfg)
            for kind, found in (("ic", ev.ic_s), ("to", ev.to_s)):
                true_s = np.asarray(getattr(sim.truth, f"{kind}_s")[side], dtype=np.float64)
                k, d = match(true_s, found)
                out[(seg, kind, side)] = (len(true_s), k, d)
    return out


def summarise(rows: list[dict[tuple[str, str, str], Any]]) -> dict[tuple[str, str, str], Any]:
    """Pool the sessions: found fraction, bias, median and p90 |error| in ms."""
    acc: dict[tuple[str, str, str], list[Any]] = defaultdict(lambda: [0, 0, []])
    for r in rows:
        for key, (n, k, d) in r.items():
            a = acc[key]
            a[0] += n
            a[1] += k
            a[2] += d
    res = {}
    for key, (n, k, d) in sorted(acc.items()):
        e = np.asarray(d) * 1e3
        res[key] = {
            "n_true": n,
            "found": k / max(n, 1),
            "bias_ms": float(np.median(e)) if len(e) else float("nan"),
            "median_ms": float(np.median(np.abs(e))) if len(e) else float("nan"),
            "p90_ms": float(np.percentile(np.abs(e), 90)) if len(e) else float("nan"),
        }
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n", type=int, default=12, help="number of simulated sessions")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--duration", type=float, default=45.0, help="session length, s (clean)")
    ap.add_argument("--mode", choices=("realistic", "clean", "both"), default="realistic")
    args = ap.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    drawn = [draw_params(rng, args.duration) for _ in range(args.n)]
    ok = True
    for mode in ("realistic", "clean") if args.mode == "both" else (args.mode,):
        sys.stdout.write(f"\n=== {mode} simulator\n")
        ok &= run_mode([realistic_walker(p) for p in drawn] if mode == "realistic" else drawn)
    sys.stdout.write("all targets met\n" if ok else "some targets NOT met\n")
    return 0 if ok else 1


def run_mode(params: list[SimParams]) -> bool:
    """Evaluate and print one simulator's table; whether every target was met."""
    rows = []
    t0 = time.perf_counter()
    for i, p in enumerate(params):
        r = evaluate(p)
        rows.append(r)
        worst = max(
            (abs(np.median(d)) * 1e3 for (seg, _, _), (_, _, d) in r.items() if d), default=0.0
        )
        sys.stdout.write(
            f"session {i + 1}/{len(params)}: seed {p.seed} speed {p.speed_m_s:.2f} m/s cadence "
            f"{p.cadence_steps_min:.0f}/min rate {p.rate_hz} Hz misplacement "
            f"{p.misplacement_deg:.1f}° loss {p.loss_prob:.3f}  worst |bias| {worst:.0f} ms\n"
        )
    sys.stdout.write(f"\n{len(params)} sessions in {time.perf_counter() - t0:.0f} s\n")
    sys.stdout.write(
        f"{'path':6} {'event':5} {'side':6} {'n':>5} {'found':>7} {'bias':>7} {'median':>7} "
        f"{'p90':>7}  (ms)\n"
    )
    ok = True
    for (seg, kind, side), s in summarise(rows).items():
        passed = s["found"] >= 0.98 and s["median_ms"] <= 20.0
        ok &= passed
        sys.stdout.write(
            f"{seg:6} {kind.upper():5} {side:6} {s['n_true']:5d} {100 * s['found']:6.1f}% "
            f"{s['bias_ms']:+7.1f} {s['median_ms']:7.1f} {s['p90_ms']:7.1f}  "
            f"{'ok' if passed else 'FAIL'}\n"
        )
    return ok


if __name__ == "__main__":
    raise SystemExit(main())
