"""6D (no magnetometer) relative heading over a long walk: drift and hip rotation errors.

Simulates ~5 minutes of walking (mounting misplacement 15°, noise and gyro bias on), fuses each
sensor with vqf offline in 6D, calibrates, and compares hip rotation against the truth with and
without the walking-axis heading correction. Stride bounds are the true initial contacts.

Run: ``python benchmarks/heading_6d.py [--duration-s 300] [--seed 1]``
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from imuhip.gait.joints import JointsConfig, joint_angles
from imuhip.sim.params import SimParams
from tests.integration._sim_angles import DEG, hip_errors, run


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration-s", type=float, default=300.0)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    p = SimParams(
        seed=args.seed,
        duration_s=args.duration_s,
        misplacement_deg=15.0,
        noise=True,
        has_mag=False,
        sensors=("pelvis", "thigh_l", "thigh_r"),
    )
    t0 = time.perf_counter()
    r = run(p, use_mag=False)
    elapsed = time.perf_counter() - t0
    out = sys.stdout.write
    out(f"6D, {args.duration_s:.0f} s, seed {args.seed}, pipeline {elapsed:.1f} s\n")
    out(f"calibration: {r.segcal.method}\n")
    for n in r.ja.notes:
        out(f"  note: {n}\n")
    raw = joint_angles(r.ori, r.segcal, JointsConfig(heading_correction="never"))
    for label, ja in (("uncorrected", raw), ("walking-axis corrected", r.ja)):
        rr = type(r)(**{**r.__dict__, "ja": ja})
        out(f"\n{label}:\n")
        for side, e in hip_errors(rr).items():
            ir_err = (ja.hip_rad[side][:, 2] / DEG - r.truth_hip_deg[side][:, 2])[r.walk]
            tw = r.t_s[r.walk]
            slope = np.polyfit(tw, ir_err, 1)[0] * 60.0
            out(
                f"  {side:5s} IR RMSE {e['ir_rmse_deg']:6.2f} deg"
                f"  offset {e['ir_offset_deg']:+6.2f}  drift {slope:+6.2f} deg/min"
                f"  excursion err mean {e['ir_excursion_err_mean_deg']:.2f}"
                f" max {e['ir_excursion_err_max_deg']:.2f} deg"
                f"  flex RMSE {e['flex_rmse_deg']:.2f}  ({int(e['n_strides'])} strides)\n"
            )
    conf = r.ja.transverse_confidence
    if conf is not None:
        out(f"\ntransverse confidence during walking: mean {conf[r.walk].mean():.2f}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
