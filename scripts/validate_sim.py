"""End-to-end accuracy against simulated truth with hidden, randomised walker parameters.

The measuring stick of the analysis: simulate ``N`` sessions whose parameters the analysis never
sees (speed, cadence, hip IR excursion and limits, compensation, asymmetry, sensor misplacement,
packet loss, rate, heading, lumbar sensor or not), write each as a recording with its truth
sidecar (``write_simulated_recording``), analyse it through the same path as
``imuhip analyze REC --out DIR`` (``analyze_recording`` + ``report_dict``, i.e. the content of
``report.json``) and compare with the truth (``.truth.json`` / ``.truth.npz``).

Targets (issues 5 and 6):

* session mean hip rotation excursion within 1° of truth, each side;
* pelvis and lumbar ranges within 1.5°;
* a one-sided IR restriction is the flagged side (and no side is flagged without asymmetry);
* hip IR RMSE ≤ 2°, flexion RMSE ≤ 1.5° (time series, steady walking), per-stride excursion
  error ≤ 1° (analysis strides matched to true strides by initial contact);
* ≥ 98 % of true initial contacts and toe-offs found (within 150 ms), median timing error ≤ 20 ms.

Flexion is compared raw and with its session-mean offset removed: the pelvic tilt the subject
stands with is anatomical and cannot be seen by a gravity calibration; the analysis assumes the
population mean (13°, Preece et al. 2008), which is also the simulator's default
(``docs/joint_angles.md``). ``--pelvic-tilt-sd-deg`` draws each walker's standing tilt from
N(13°, SD) instead (sensitivity: absolute flexion then reads off by the subject's deviation).

Realistic mode (issue 13, default; ``--mode clean`` runs only the clean simulator, ``both`` both):
each drawn walker is also simulated with :func:`imuhip.sim.presets.realistic_params` — a 10-m
walkway session (stand, walk, 180° turn, walk back, stop) with soft-tissue artefact on the thigh
and shank sensors, Movesense datasheet sensor errors and axis misalignment, 2–4 % stride
variability, speed-dependent joint curves and foot sensors. Its targets: per-stride excursion
median |error| ≤ 1.5°, session excursion ≤ 1.5°, restricted side flagged.

Usage::

    python scripts/validate_sim.py                 # 20 walkers, seed 0, realistic and clean
    python scripts/validate_sim.py --mode clean    # the clean simulator only
    python scripts/validate_sim.py --n 5 --seed 3 --json out.json --keep /tmp/vsim
    python scripts/validate_sim.py --relative-heading magnetometer   # 9D headings as fused
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from imuhip.orientation.segment_calibration import STANDING_PELVIC_TILT_DEG
from imuhip.pipeline import AnalysisConfig, analyze_recording
from imuhip.report.writer import report_dict
from imuhip.sim.params import SimParams
from imuhip.sim.presets import REALISTIC_SENSORS, realistic_params
from imuhip.sim.realism import SENSOR_GRADES, Realism
from imuhip.sim.session import simulate_session, write_simulated_recording

HIP = ("hip_rotation_excursion_deg",)
PELVIS = ("pelvis_rotation_range_deg", "pelvis_obliquity_range_deg", "pelvis_tilt_range_deg")
LUMBAR = (
    "lumbar_rotation_range_deg",
    "lumbar_lateral_bending_range_deg",
    "lumbar_flexion_range_deg",
)
EVENT_MATCH_S = 0.15
FLAG_EXPECT_DEG = 2.5  # truth |R − L| excursion at or above which a flag is expected
FLAG_NONE_DEG = 1.5  # ... below which no restricted-side flag may appear


@dataclass(frozen=True)
class Target:
    """One pass/fail criterion over all sessions: ``max |value| <= limit`` (or ``>=``)."""

    key: str
    limit: float
    label: str
    at_least: bool = False


TARGETS = (
    Target("exc_err_deg", 1.0, "session hip rotation excursion |error| (each side)"),
    Target("pelvis_err_deg", 1.5, "pelvis ranges |error|"),
    Target("lumbar_err_deg", 1.5, "lumbar ranges |error|"),
    Target("flag_ok", 1.0, "restricted side flagged correctly", at_least=True),
    Target("ir_rmse_deg", 2.0, "hip IR RMSE (time series)"),
    Target("flex_rmse_deg", 1.5, "hip flexion RMSE (time series, raw)"),
    Target("stride_exc_err_deg", 1.0, "per-stride excursion |error| (max)"),
    Target("event_found_frac", 0.98, "true events found", at_least=True),
    Target("event_median_err_ms", 20.0, "median event timing error"),
)
TARGETS_REALISTIC = (
    Target("exc_err_deg", 1.5, "session hip rotation excursion |error| (each side)"),
    Target("stride_exc_med_deg", 1.5, "per-stride excursion median |error|"),
    Target("flag_ok", 1.0, "restricted side flagged correctly", at_least=True),
)


def realistic_walker(
    p: SimParams, realism: dict[str, Any] | None = None, shanks: bool = True
) -> SimParams:
    """The same walker on a 10-m walkway with the realistic simulator (issue 13).

    ``realism``: :class:`~imuhip.sim.realism.Realism` fields to change (ablations, e.g.
    ``{"sta_thigh_deg": 0.0}``); the preset's misalignment grade stays unless overridden.
    """
    keep = (
        "rate_hz",
        "has_mag",
        "cadence_steps_min",
        "heading_deg",
        "hip_ir_excursion_deg",
        "hip_ir_limit_deg",
        "compensation_gain",
        "asymmetry",
        "misplacement_deg",
        "pelvis_rotation_range_deg",
        "lumbar_rotation_range_deg",
        "loss_prob",
        "standing_thigh_inclination_deg",
        "pelvis_tilt_mean_deg",
    )
    sensors = REALISTIC_SENSORS + (("lumbar",) if "lumbar" in p.sensors else ())
    if not shanks:
        sensors = tuple(s for s in sensors if not s.startswith("shank"))
    real = None
    if realism:
        mis = SENSOR_GRADES["movesense"]["axis_misalignment_deg"]
        real = Realism(**{"axis_misalignment_deg": mis, **realism})
    return realistic_params(
        p.seed,
        speed_m_s=p.speed_m_s,
        sensors=sensors,
        realism=real,
        **{k: getattr(p, k) for k in keep},
    )


def draw_params(
    rng: np.random.Generator,
    duration_s: float,
    frac_6d: float,
    standing_thigh_deg: float = 0.0,
    pelvic_tilt_sd_deg: float = 0.0,
) -> SimParams:
    """Random hidden walker and sensor parameters (ranges of the issue's grader).

    ``pelvic_tilt_sd_deg > 0`` also draws the standing pelvic tilt from N(13°, SD) (one more
    draw per session, so the later sessions differ from the default draw).
    """
    speed = float(rng.uniform(0.6, 1.6))
    # cadence loosely follows speed (Grieve & Gear 1966), with individual spread
    cadence = float(np.clip(rng.normal(85.0 + 20.0 * speed, 5.0), 90.0, 130.0))
    limits: list[float | None] = [None, None]
    kind = rng.choice(["none", "left", "right"], p=[0.3, 0.35, 0.35])
    if kind != "none":
        limits[0 if kind == "left" else 1] = float(rng.uniform(0.0, 4.0))
    exc = float(rng.uniform(8.0, 13.0))
    lumbar = bool(rng.random() < 0.5)
    sensors = ("pelvis", "thigh_l", "thigh_r") + (("lumbar",) if lumbar else ())
    p = SimParams(
        seed=int(rng.integers(1, 10**6)),
        duration_s=duration_s,
        rate_hz=int(rng.choice([100, 200])),
        sensors=sensors,
        has_mag=bool(rng.random() >= frac_6d),
        speed_m_s=speed,
        cadence_steps_min=cadence,
        heading_deg=float(rng.uniform(0.0, 360.0)),
        hip_ir_excursion_deg=(exc, exc),
        hip_ir_limit_deg=(limits[0], limits[1]),
        compensation_gain=float(rng.uniform(0.0, 1.2)),
        asymmetry=float(rng.uniform(-0.15, 0.15)),
        misplacement_deg=float(rng.uniform(0.0, 15.0)),
        pelvis_rotation_range_deg=float(rng.uniform(7.0, 13.0)),
        lumbar_rotation_range_deg=float(rng.uniform(6.0, 11.0)),
        loss_prob=float(rng.uniform(0.0, 0.03)),
        standing_thigh_inclination_deg=standing_thigh_deg,
    )
    if pelvic_tilt_sd_deg > 0:
        tilt = STANDING_PELVIC_TILT_DEG + float(rng.normal(0.0, pelvic_tilt_sd_deg))
        p = dataclasses.replace(p, pelvis_tilt_mean_deg=tilt)
    return p


def _interp(t: np.ndarray, tx: np.ndarray, x: np.ndarray) -> np.ndarray:
    return np.stack([np.interp(t, tx, x[:, k]) for k in range(x.shape[1])], axis=1)


def _event_errors(true_s: np.ndarray, found_s: np.ndarray) -> tuple[int, list[float]]:
    """Number of true events with a detected one within EVENT_MATCH_S, and their errors (s)."""
    if len(found_s) == 0:
        return 0, []
    idx = np.clip(np.searchsorted(found_s, true_s), 1, len(found_s) - 1)
    near = np.where(
        np.abs(found_s[idx - 1] - true_s) < np.abs(found_s[idx] - true_s),
        found_s[idx - 1],
        found_s[idx],
    )
    if len(found_s) == 1:
        near = np.full_like(true_s, found_s[0])
    d = near - true_s
    ok = np.abs(d) <= EVENT_MATCH_S
    return int(ok.sum()), d[ok].tolist()


def evaluate(p: SimParams, workdir: Path, cfg: AnalysisConfig | None = None) -> dict[str, Any]:
    """Simulate, write, analyse one session; errors against truth."""
    t0 = time.perf_counter()
    sim = simulate_session(p)
    paths = write_simulated_recording(sim, workdir / f"sim{p.seed}.imrec")
    t_sim = time.perf_counter() - t0
    res = analyze_recording(paths["imrec"], cfg)
    rep = report_dict(res)
    t_all = time.perf_counter() - t0
    truth = json.loads(paths["truth_json"].read_text())
    npz = np.load(paths["truth_npz"])
    sm = truth["session_metrics"]
    out: dict[str, Any] = {"seed": p.seed, "sim_s": t_sim, "total_s": t_all}
    per_side = rep["metrics"]["per_side"]
    trunk = rep["metrics"]["trunk"]

    # session metrics
    exc = {}
    for side in ("left", "right"):
        est = per_side.get(side, {}).get("hip_rotation_excursion_deg", {}).get("mean")
        tru = sm["hip_rotation_excursion_deg"][side]
        exc[side] = (est, tru)
        out[f"exc_{side}"] = None if est is None else est - tru
    out["exc_err_deg"] = max(
        (abs(v) if v is not None else np.inf) for v in (out["exc_left"], out["exc_right"])
    )
    for group, names in (("pelvis", PELVIS), ("lumbar", LUMBAR)):
        errs = {}
        for k in names:
            if sm.get(k) is None:
                continue
            est = trunk.get(k, {}).get("mean")
            errs[k] = np.inf if est is None else est - sm[k]
        for k, v in errs.items():
            out[k] = v
        out[f"{group}_err_deg"] = max((abs(v) for v in errs.values()), default=None)

    # restricted-side flag
    d_true = sm["hip_rotation_excursion_deg"]["right"] - sm["hip_rotation_excursion_deg"]["left"]
    flagged = [f["side"] for f in rep["flags"] if f["code"] == "hip_rotation_restricted_side"]
    if abs(d_true) >= FLAG_EXPECT_DEG:
        want = "right" if d_true < 0 else "left"
        out["flag_ok"] = float(flagged == [want])
    elif abs(d_true) < FLAG_NONE_DEG:
        out["flag_ok"] = float(not flagged)
    else:
        out["flag_ok"] = None
    out["flag"] = ",".join(flagged) or "-"
    out["true_r_minus_l"] = d_true

    # time series vs truth (steady walking)
    t = res.angles.t_s
    steady = truth["info"]["timeline_s"]["steady"]
    walk = (t > steady[0]) & (t < steady[1]) & np.asarray(res.angles.valid, bool)
    ir, flex, flex_off = [], [], []
    for side in ("left", "right"):
        tru = _interp(t, npz["t_s"], npz[f"hip_{side}_deg"].astype(np.float64))[walk]
        est = np.rad2deg(res.angles.hip_rad[side])[walk]
        e = est - tru
        ir.append(float(np.sqrt(np.mean(e[:, 2] ** 2))))
        flex.append(float(np.sqrt(np.mean(e[:, 0] ** 2))))
        flex_off.append(float(np.std(e[:, 0])))
        out[f"ir_offset_{side}"] = float(np.mean(e[:, 2]))
    out["ir_rmse_deg"] = max(ir)
    out["flex_rmse_deg"] = max(flex)
    out["flex_rmse_offset_removed_deg"] = max(flex_off)

    # per-stride excursion on matched strides
    errs_stride = []
    est_strides = [(s, m) for s, m in zip(res.strides, res.per_stride, strict=True) if s.valid]
    for ts in truth["strides"]:
        if not ts["valid"]:
            continue
        cand = [
            m
            for s, m in est_strides
            if s.side == ts["side"]
            and abs(s.ic_s - ts["ic_s"]) < EVENT_MATCH_S
            and abs(s.next_ic_s - ts["next_ic_s"]) < EVENT_MATCH_S
        ]
        if cand:
            errs_stride.append(
                cand[0]["hip_rotation_excursion_deg"] - ts["hip_rotation_excursion_deg"]
            )
    out["n_strides_matched"] = len(errs_stride)
    out["n_strides_true"] = sum(1 for s in truth["strides"] if s["valid"])
    out["stride_exc_err_deg"] = float(np.max(np.abs(errs_stride))) if errs_stride else None
    out["stride_exc_err_mean_deg"] = float(np.mean(errs_stride)) if errs_stride else None
    out["stride_exc_med_deg"] = float(np.median(np.abs(errs_stride))) if errs_stride else None

    # events: every true IC/TO while walking
    n_true = n_found = 0
    dts: list[float] = []
    ev = rep["gait"]["events"]
    for side in ("left", "right"):
        for kind, key in (("ic", "initial_contact_s"), ("to", "toe_off_s")):
            true_s = np.asarray(truth["events"][f"{kind}_s"][side], dtype=np.float64)
            found = np.sort(np.asarray(ev.get(side, {}).get(key, []), dtype=np.float64))
            k, d = _event_errors(true_s, found)
            n_true += len(true_s)
            n_found += k
            dts += d
    out["event_found_frac"] = n_found / max(1, n_true)
    out["event_median_err_ms"] = float(np.median(np.abs(dts)) * 1e3) if dts else None
    out["event_bias_ms"] = float(np.median(dts) * 1e3) if dts else None
    out["segcal_warnings"] = list(res.segcal.warnings) if res.segcal else []
    return out


def _fmt(v: Any, w: int = 6) -> str:
    if v is None:
        return "-".rjust(w)
    if isinstance(v, str):
        return v.rjust(w)
    return f"{v:+{w}.2f}" if abs(v) < 1e4 else f"{v:{w}.0f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=20, help="number of sessions")
    ap.add_argument("--seed", type=int, default=0, help="seed of the parameter draw")
    ap.add_argument("--duration", type=float, default=60.0, help="session length, s")
    ap.add_argument("--frac-6d", type=float, default=0.0, help="fraction without magnetometer")
    ap.add_argument(
        "--standing-thigh-deg",
        type=float,
        default=0.0,
        help="femur inclination in quiet standing (sensitivity to a non-neutral standing pose)",
    )
    ap.add_argument(
        "--pelvic-tilt-sd-deg",
        type=float,
        default=0.0,
        help="draw each walker's standing pelvic tilt from N(13, SD) (population SD: 5)",
    )
    ap.add_argument(
        "--relative-heading",
        choices=("walking", "magnetometer"),
        default="walking",
        help="AnalysisConfig.relative_heading of the analysis",
    )
    ap.add_argument(
        "--mode",
        choices=("both", "realistic", "clean"),
        default="both",
        help="simulator: realistic (issue 13), clean (the analysis' own assumptions), or both",
    )
    ap.add_argument(
        "--realism",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="change a Realism field of the realistic simulator (ablation), e.g. sta_thigh_deg=0",
    )
    ap.add_argument(
        "--knee-hinge",
        action="store_true",
        help="AnalysisConfig.knee_hinge: remove the thigh soft-tissue artefact with the shanks "
        "(experimental)",
    )
    ap.add_argument(
        "--no-shanks",
        action="store_true",
        help="realistic walkers without shank sensors (pelvis, thighs, feet): no knee-hinge "
        "correction of the thigh soft-tissue artefact",
    )
    ap.add_argument("--keep", type=Path, default=None, help="keep recordings in this folder")
    ap.add_argument("--json", type=Path, default=None, help="write all numbers here")
    args = ap.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    params = [
        draw_params(
            rng, args.duration, args.frac_6d, args.standing_thigh_deg, args.pelvic_tilt_sd_deg
        )
        for _ in range(args.n)
    ]
    cfg = AnalysisConfig(relative_heading=args.relative_heading, knee_hinge=args.knee_hinge)
    overrides = _realism_overrides(args.realism, ap)
    modes = ("realistic", "clean") if args.mode == "both" else (args.mode,)
    n_fail = 0
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        for mode in modes:
            ps = (
                params
                if mode == "clean"
                else [realistic_walker(p, overrides, not args.no_shanks) for p in params]
            )
            targets = TARGETS if mode == "clean" else TARGETS_REALISTIC
            sys.stdout.write(f"\n=== {mode} simulator ({len(ps)} walkers, seed {args.seed})\n")
            rows, nf = run_mode(ps, cfg, work / mode, targets)
            n_fail += nf
            out[mode] = rows
    if args.json:
        args.json.write_text(json.dumps(out, indent=1, default=float))
    return 0 if n_fail == 0 else 1


def _realism_overrides(items: list[str], ap: argparse.ArgumentParser) -> dict[str, Any]:
    """``FIELD=VALUE`` pairs as Realism fields (numbers, booleans or strings)."""
    fields = {f.name: f.type for f in dataclasses.fields(Realism)}
    out: dict[str, Any] = {}
    for item in items:
        name, sep, raw = item.partition("=")
        if not sep or name not in fields:
            ap.error(f"--realism {item!r}: expected FIELD=VALUE with FIELD in {sorted(fields)}")
        if raw in ("true", "false"):
            out[name] = raw == "true"
        else:
            try:
                out[name] = int(raw) if name == "variability_components" else float(raw)
            except ValueError:
                out[name] = raw
    return out


def run_mode(
    params: list[SimParams], cfg: AnalysisConfig, work: Path, targets: tuple[Target, ...]
) -> tuple[list[dict[str, Any]], int]:
    """Evaluate every walker, print the per-session table and the targets; (rows, failures)."""
    work.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    cols = (
        "  seed speed Hz mag lum limit(L,R) comp misp | excL excR pelv lumb flag | "
        "irRMSE flexRMSE flexRMSE0 strideMax strideMed | evFound evMed(ms) | s"
    )
    sys.stdout.write(cols + "\n")
    for p in params:
        try:
            r = evaluate(p, work, cfg)
        except Exception as err:  # a crash is a failed session, reported and counted
            sys.stdout.write(f"{p.seed:6d} FAILED: {type(err).__name__}: {err}\n")
            rows.append({"seed": p.seed, "error": f"{type(err).__name__}: {err}"})
            continue
        r["params"] = {
            "rate_hz": p.rate_hz,
            "has_mag": p.has_mag,
            "lumbar": "lumbar" in p.sensors,
            "limit": p.hip_ir_limit_deg,
            "compensation": p.compensation_gain,
            "misplacement": p.misplacement_deg,
            "speed": p.speed_m_s,
            "cadence": p.cadence_steps_min,
            "pelvic_tilt": p.pelvis_tilt_mean_deg,
            "realistic": p.realism is not None,
        }
        rows.append(r)
        lim = ",".join("-" if x is None else f"{x:.1f}" for x in p.hip_ir_limit_deg)
        sys.stdout.write(
            f"{p.seed:6d} {p.speed_m_s:5.2f} {p.rate_hz:3d} {'9D' if p.has_mag else '6D'} "
            f"{'y' if 'lumbar' in p.sensors else 'n'} {lim:>9} {p.compensation_gain:4.2f} "
            f"{p.misplacement_deg:4.1f} |"
            f"{_fmt(r['exc_left'])}{_fmt(r['exc_right'])}{_fmt(r['pelvis_err_deg'])}"
            f"{_fmt(r['lumbar_err_deg'])} {r['flag']:>5}"
            f"{'' if r['flag_ok'] in (None, 1.0) else '!'} |"
            f"{_fmt(r['ir_rmse_deg'])}{_fmt(r['flex_rmse_deg'])}"
            f"{_fmt(r['flex_rmse_offset_removed_deg'])}{_fmt(r['stride_exc_err_deg'])}"
            f"{_fmt(r['stride_exc_med_deg'])} |"
            f"{r['event_found_frac']:7.3f}{_fmt(r['event_median_err_ms'], 8)} |"
            f"{r['total_s']:5.1f}\n"
        )
        sys.stdout.flush()
    sys.stdout.write("\nper-metric error (estimate − truth) over sessions: mean, SD, max |e|\n")
    keys = ["exc_left", "exc_right", *PELVIS, *LUMBAR, "ir_offset_left", "ir_offset_right"]
    keys += ["stride_exc_med_deg"]
    for k in keys:
        v = np.asarray([r[k] for r in rows if r.get(k) is not None], dtype=np.float64)
        if len(v):
            sys.stdout.write(
                f"  {k:33s} {v.mean():+6.2f} {v.std():5.2f} {np.max(np.abs(v)):6.2f} (n={len(v)})\n"
            )
    sys.stdout.write("\ntargets\n")
    n_fail = sum(1 for r in rows if "error" in r)
    if n_fail:
        sys.stdout.write(f"  FAIL {n_fail} session(s) could not be analysed\n")
    for tg in targets:
        v = np.asarray([r[tg.key] for r in rows if r.get(tg.key) is not None], dtype=np.float64)
        if not len(v):
            continue
        if tg.at_least:
            worst = float(v.min())
            ok = v >= tg.limit
            rel = ">="
        else:
            worst = float(np.max(np.abs(v)))
            ok = np.abs(v) <= tg.limit
            rel = "<="
        n_fail += int((~ok).sum())
        sys.stdout.write(
            f"  {'PASS' if ok.all() else 'FAIL'} {tg.label:52s} worst {worst:7.3f} "
            f"(target {rel} {tg.limit:g}); {int(ok.sum())}/{len(v)} sessions pass\n"
        )
    return rows, n_fail


if __name__ == "__main__":
    raise SystemExit(main())
