"""Report files of an analysis: ``report.json``, ``strides.csv`` and ``report.html``.

The only module that builds the report's tables and files (with :mod:`imuhip.report.html` for the
page). No pandas here: a report is written on every ``analyze``, and importing pandas alone took
0.2 s of the ~1.5 s a warm ``analyze`` of a 50-s recording waits; the stride table is small rows
of numbers (:class:`~imuhip.report.stride_table.StridesTable`, written with the standard ``csv``
module).
The JSON schema is documented in ``docs/report_schema.md``; bump :data:`SCHEMA` on any breaking
change.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any, Final, cast

import numpy as np
import numpy.typing as npt

from imuhip import __version__
from imuhip.gait.assumptions import off_site_metrics, off_site_note
from imuhip.gait.asymmetry import BOOTSTRAP_MIN_STRIDES
from imuhip.gait.compensation import COMPENSATION_MIN_STRIDES
from imuhip.gait.events import EXCLUSION_WORDS
from imuhip.gait.metrics import HIP_METRICS, LUMBAR_METRICS, PELVIS_METRICS, TIMING_METRICS
from imuhip.gait.norms import GAIT_NORMS, NORM_FLAG_MIN_STRIDES
from imuhip.pipeline import SessionResult
from imuhip.report.curves import cycle_curves
from imuhip.report.stride_table import StridesTable
from imuhip.report.summary import MIN_VALID_STRIDES, flag_message, implausible_note

__all__ = [
    "SCHEMA",
    "StridesTable",
    "cycle_curves",
    "json_ready",
    "report_dict",
    "strides_table",
    "summary_lines",
    "write_report",
]

SCHEMA: Final = "imuhip.report.writer/1"

CONVENTIONS: Final = {
    "units": "degrees for angles, seconds for times; per-stride values over [IC, next IC)",
    "frames": "ISB segment frames (Wu et al. 2002): X anterior, Y superior, Z right; world ENU",
    "hip": "thigh relative to pelvis, Cardan Z-X'-Y'': flexion +, adduction +, internal "
    "rotation +; left side mirrored so + is the same anatomical motion on both sides",
    "pelvis": "relative to the walking direction, rotation-obliquity-tilt (Baker 2001); "
    "rotation + = counter-clockwise seen from above",
    "lumbar": "lumbar sensor segment relative to pelvis: flexion, lateral bending, axial rotation",
    "stride": "initial contact to the next initial contact of the same side, half-open",
    "hip_er_peak_deg": "external rotation peak = -min(hip IR), + = external",
    "hip_rotation_per_stride": "on hip rotation low-passed at 6 Hz; excursion = max - min "
    "after removing the line between the stride's two contacts",
    "asymmetry": "right minus left difference of side means, 95% CI: percentile bootstrap "
    f"(2000 resamples of strides within side), Welch's t below {BOOTSTRAP_MIN_STRIDES} strides "
    "a side",
}

CAVEATS: Final = (
    "Hip rotation excursion (max - min per stride) is robust to the sensor-to-segment "
    "calibration offset; absolute IR/ER peaks are not (between-subject offset SD 10-15 deg).",
    "Gait norms are level-walking excursions; the 30-45 deg IR norm is passive ROM (rom-test), "
    "not a gait value.",
    "IMU hip rotation has ~6 deg RMSE against optical motion capture (McGrath & Stirling 2022).",
    "The hip-lumbar compensation index is defined by imuhip (docs/compensation_index.md); its "
    "normal band is provisional and not clinically validated.",
)

FloatArray = npt.NDArray[np.float64]


def json_ready(x: Any) -> Any:
    """Replace non-finite floats by ``None`` and numpy scalars by Python ones, recursively."""
    if isinstance(x, dict):
        return {str(k): json_ready(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [json_ready(v) for v in x]
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def strides_table(res: SessionResult) -> StridesTable:
    """One row per stride (valid or not), unit-suffixed columns; ``exclusion`` says why."""
    records = []
    for s, m in zip(res.strides, res.per_stride, strict=True):
        row: dict[str, Any] = {
            "side": s.side,
            "stride": s.number,
            "ic_s": s.ic_s,
            "next_ic_s": s.next_ic_s,
            "toe_off_s": s.to_s if s.to_s is not None else math.nan,
            "valid": s.valid,
            "exclusion": s.exclusion or "none",  # never an empty string (typed readers: NaN)
            "heading_change_deg": s.heading_change_deg,
        }
        for k in (*TIMING_METRICS, *HIP_METRICS, *PELVIS_METRICS, *LUMBAR_METRICS):
            if k in m:
                row[k] = m[k]
        records.append(row)
    cols = ["side", "stride", "ic_s", "next_ic_s", "toe_off_s", "valid", "exclusion"]
    if records:  # every key in the order first met (a metric a stride lacks is NaN there)
        cols = list(dict.fromkeys(k for r in records for k in r))
    rows = [tuple(r.get(c, math.nan) for c in cols) for r in records]
    return StridesTable(cols, rows)


def report_dict(res: SessionResult) -> dict[str, Any]:
    """The content of ``report.json`` (schema in ``docs/report_schema.md``)."""
    meta = res.meta
    t = res.angles.t_s
    ses = res.session
    timing = {
        side: {
            k: ses.per_side[side][k].to_dict() for k in TIMING_METRICS if k in ses.per_side[side]
        }
        for side in ses.per_side
    }
    per_side = {
        side: {k: ses.per_side[side][k].to_dict() for k in HIP_METRICS if k in ses.per_side[side]}
        for side in ses.per_side
    }
    d: dict[str, Any] = {
        "schema": SCHEMA,
        "generated_by": f"imuhip {__version__}",
        "session": {
            "session_id": meta.session_id,
            "subject": meta.subject,
            "start_wall_time": meta.start_wall_time,
            "sensors": [
                {
                    "placement": s.placement,
                    "rate_hz": s.rate_hz,
                    "has_mag": s.has_mag,
                    "model": s.model,
                    "serial": s.serial,
                    "firmware": s.firmware,
                }
                for s in meta.sensors
            ],
            "duration_s": float(t[-1] - t[0]) if len(t) > 1 else 0.0,
            "orientation_source": res.orientation_source,
        },
        "conventions": dict(CONVENTIONS),
        "config": {
            "method": res.config.method,
            "use_mag": res.config.use_mag,
            "events": asdict(res.config.events),
            "compensation_reference": asdict(res.config.compensation),
            "standing_pelvic_tilt_deg": res.config.standing_pelvic_tilt_deg,
            "relative_heading": res.config.relative_heading,
        },
        "gait": {
            "events": {
                side: {
                    "source": e.source,
                    "n_initial_contacts": len(e.ic_s),
                    "n_toe_offs": len(e.to_s),
                    "initial_contact_s": e.ic_s.tolist(),
                    "toe_off_s": e.to_s.tolist(),
                }
                for side, e in res.events.items()
            },
            "strides": ses.n_strides,
            "timing": timing,
        },
        "metrics": {
            "per_side": per_side,
            "trunk": {k: v.to_dict() for k, v in ses.trunk.items()},
        },
        "asymmetry": {
            k: {
                "right_minus_left": a.right_minus_left,
                "ci95_low": a.ci95_low,
                "ci95_high": a.ci95_high,
                "significant": a.significant,
                "n_left": a.n_left,
                "n_right": a.n_right,
                "ci_method": a.ci_method,
            }
            for k, a in ses.asymmetry.items()
        },
        "compensation": {
            "definition": "docs/compensation_index.md",
            "band": res.config.compensation.band,
            "min_strides": COMPENSATION_MIN_STRIDES,
            "per_side": {side: asdict(c) for side, c in res.compensation.items()},
        },
        "norms": {k: n.to_dict() for k, n in GAIT_NORMS.items()},
        "flags": [f.to_dict() for f in res.flags],
        "quality": res.quality,
        "sensor_calibration": _sensor_calibration(res),
        "caveats": list(CAVEATS)
        + list(res.quality.get("angle_assumptions", {}).get("statements", [])),
    }
    return dict(json_ready(d))


def _sensor_calibration(res: SessionResult) -> dict[str, Any] | None:
    """Which calibration files (name, sha256, date) the analysis applied; ``None``: none given."""
    folder = res.config.calibration_folder
    if folder is None:
        return None
    if "gyro_units" not in res.quality:  # orientation-only session: no sensor data to calibrate
        return {"folder": str(folder), "sensors": [], "note": "not applied: no sensor samples"}
    from imuhip.orientation.sensor_calibration import calibration_provenance

    return {"folder": str(folder), "sensors": calibration_provenance(res.meta, folder)}


def summary_lines(res: SessionResult) -> list[str]:
    """A few plain lines for the terminal: strides, excursions, asymmetry, trunk, index, flags."""
    ses = res.session
    lines = []
    for side in ("left", "right"):
        if side not in ses.per_side:
            continue
        n = ses.n_strides[side]
        exc = ses.per_side[side].get("hip_rotation_excursion_deg")
        exc_s = "n/a"
        if exc and exc.n:
            exc_s = (
                f"{exc.mean:.1f} ± {exc.sd:.1f}°" if exc.n > 1 else f"{exc.mean:.1f}° (1 stride)"
            )
        comp = res.compensation.get(side)
        comp_s = f", compensation index {comp.index:+.2f}" if comp else ""
        if comp is None and n["valid"]:
            comp_s = f", compensation index – (needs {COMPENSATION_MIN_STRIDES} usable strides)"
        excl = cast(dict[str, int], n.get("excluded") or {})
        why = ", ".join(f"{v} {EXCLUSION_WORDS.get(k, k)}" for k, v in excl.items() if v)
        lines.append(
            f"{side:>5}: {n['valid']}/{n['total']} valid strides"
            + (f" (excluded: {why})" if why else "")
            + f", hip rotation excursion {exc_s}{comp_s}"
        )
    lines += _quality_lines(res)
    a = ses.asymmetry.get("hip_rotation_excursion_deg")
    if a is not None:
        ci = (
            f"[95% CI {a.ci95_low:+.1f}, {a.ci95_high:+.1f}]"
            if np.isfinite(a.ci95_low) and np.isfinite(a.ci95_high)
            else "[95% CI – (needs 2 strides a side)]"
        )
        lines.append(f"asymmetry (right − left) {a.right_minus_left:+.1f}° {ci}")
    off_site = off_site_metrics(res.quality.get("off_site_sensors") or {})
    trunk = ", ".join(
        f"{k.removesuffix('_range_deg').replace('_', ' ')} "
        + (f"{v.mean:.1f}°" if v.n else "– (no stride walked straight enough)")
        + (
            f" ({v.n} stride{'s' * (v.n > 1)}: not compared with the norm)"
            if 0 < v.n < NORM_FLAG_MIN_STRIDES
            else " (sensor off site: not compared with the norm)"
            if v.n and k in off_site
            else ""
        )
        for k, v in ses.trunk.items()
        if k
        in ("pelvis_rotation_range_deg", "pelvis_obliquity_range_deg", "lumbar_rotation_range_deg")
    )
    if trunk:
        lines.append(f"ranges: {trunk}")
    if res.flags:
        lines += [f"FLAG: {flag_message(f.message, f.metric)}" for f in res.flags]
    else:
        lines.append("no flags")
    few = [
        f"{side} {n['valid']}"
        for side, n in ses.n_strides.items()
        if side in ses.per_side and cast(int, n["valid"]) < MIN_VALID_STRIDES
    ]
    if few:  # as the report's first screen: the flags stand on too few strides to act on
        lines.append(
            f"UNCERTAIN: few valid strides ({', '.join(few)}; at least {MIN_VALID_STRIDES} per "
            "side recommended): means, confidence intervals and flags are uncertain; record a "
            "longer straight walk before acting on them"
        )
    return lines


def _quality_lines(res: SessionResult) -> list[str]:
    """Summary lines on what the analysis left out: turning strides, dropped sensors, fallbacks."""
    q = res.quality
    lines = []
    n_turn = int(q.get("turning_strides", 0))
    if n_turn:
        lines.append(
            f"turning: {n_turn} stride(s) excluded (pelvis heading changed by more than "
            f"{res.config.events.turn_max_deg:g}° within the stride)"
        )
    for side in ("left", "right"):
        n_bad = sum(1 for s in res.strides if s.side == side and s.exclusion == "implausible")
        if n_bad:
            lines.append(f"IMPLAUSIBLE: {implausible_note(side, n_bad)}")
    for p, v in (q.get("dropped_sensors") or {}).items():
        lines.append(f"DROPPED {p} ({v['stage']}): {v['reason']}")
    lines += [f"SITE: {off_site_note(p, s)}" for p, s in (q.get("off_site_sensors") or {}).items()]
    lines += [f"CALIBRATION: {w}" for w in q.get("calibration_fallbacks", [])]
    lines += [f"PLACEMENT: {w}" for w in q.get("placement_warnings", [])]
    return lines


def write_report(res: SessionResult, out_dir: str | Path, *, pdf: bool = False) -> dict[str, Path]:
    """Write ``report.json``, ``strides.csv`` and ``report.html`` into ``out_dir`` (created).

    With ``pdf``, also ``report.pdf``: the page printed by headless Chromium
    (:func:`imuhip.report.pdf.html_to_pdf`; an :class:`~imuhip.errors.ImuhipError` without it).
    A ``report.pdf`` beside an earlier ``report.json`` is removed with that set.

    The set is replaced as a whole: every file is first written under a temporary name in
    ``out_dir``; then the previous set is removed and the new files are renamed into place,
    ``report.json`` last. A folder that holds ``report.json`` therefore holds a complete report
    of one run, whatever moment the process was killed at (at most a subset of the new files
    without ``report.json``, never old and new mixed).

    Returns
    -------
    dict
        ``{"json": path, "csv": path, "html": path}`` (and ``"pdf"``).
    """
    from imuhip.report.files import write_file_set
    from imuhip.report.html import render_html

    d = report_dict(res)
    table = strides_table(res)
    page = render_html(res, d, table)
    parts: dict[str, str | Callable[[Path], object]] = {
        "strides.csv": table.to_csv(float_format="%.4f"),
        "report.html": page,
    }
    if pdf:
        from imuhip.report.pdf import html_to_pdf

        parts["report.pdf"] = lambda path: html_to_pdf(page, path)
    parts["report.json"] = json.dumps(d, indent=2, allow_nan=False)  # the last one
    # an earlier set's PDF goes with it (a PDF beside no report is kept)
    paths = write_file_set(out_dir, parts, "report.json", goes_with_last=("report.pdf",))
    keys = {"strides.csv": "csv", "report.html": "html", "report.pdf": "pdf", "report.json": "json"}
    return {keys[name]: path for name, path in paths.items()}
