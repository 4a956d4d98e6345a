"""The ROM test report: ``rom_report.json`` and ``rom_report.html`` of ``imuhip rom-test``.

Per side, the maximal internal (IR) and external rotation (ER) of every repetition of the seated
90/90 test (:mod:`imuhip.gait.rom`), each against the 30–45° passive IR norm, the measured angle
over the whole test (the trace the repetitions were read from), the right − left difference and
whether the test must be repeated: a side or a repetition is missing, or one repetition is an
outlier (it differs from the median of the side's other repetitions by more than
:attr:`RomReportConfig.outlier_deg`, 10°: twice the ≈5° goniometric measurement error,
Ellison et al. 1990, doi:10.1093/ptj/70.9.537). The page is drawn from the JSON document only,
so the two never disagree. Both files are written as one set
(:func:`imuhip.report.files.write_file_set`).
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from imuhip import __version__
from imuhip.gait.asymmetry import welch_interval
from imuhip.report.style import BASE_CSS

if TYPE_CHECKING:
    from imuhip.gait.norms import Flag
    from imuhip.gait.rom import RomSide
    from imuhip.types import SessionMeta

__all__ = [
    "ROM_FILES",
    "SCHEMA",
    "RomReportConfig",
    "json_safe",
    "render_rom_html",
    "repeat_reasons",
    "rom_asymmetry",
    "rom_report_dict",
    "write_rom_report",
]

SCHEMA: Final = "imuhip.report.rom/1"
ROM_FILES: Final = ("rom_report.html", "rom_report.json")
SIDES: Final = ("left", "right")


@dataclass(frozen=True, slots=True)
class RomReportConfig:
    """When to ask for a repeat, and the trace resolution kept in the report.

    ``repetitions``: repetitions expected per side and direction; ``outlier_deg``: a repetition
    farther than this from the median of the side's other repetitions (same direction) is an
    outlier; ``trace_rate_hz``: the angle trace is kept at about this rate (every k-th sample).
    """

    repetitions: int = 3
    outlier_deg: float = 10.0
    trace_rate_hz: float = 20.0


def json_safe(x: Any) -> Any:
    """Non-finite floats to ``None``, numpy scalars to Python, recursively (as
    :func:`imuhip.report.writer.json_ready`, without loading the analysis pipeline)."""
    if isinstance(x, dict):
        return {str(k): json_safe(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [json_safe(v) for v in x]
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def repeat_reasons(
    results: Mapping[str, RomSide],
    not_measured: Sequence[str] = (),
    cfg: RomReportConfig | None = None,
) -> list[str]:
    """Why the test must be repeated (``[]``: it need not).

    A side without a result, fewer than ``cfg.repetitions`` IR or ER repetitions, or a
    repetition more than ``cfg.outlier_deg`` from the median of the others of its side and
    direction (with two repetitions: the two differ by more than that).
    """
    cfg = cfg or RomReportConfig()
    out: list[str] = []
    for side in SIDES:
        if side not in results:
            why = [m.split(": ", 1)[-1] for m in not_measured if m.startswith(f"{side}:")]
            out.append(f"{side} side not measured" + (f" ({'; '.join(why)})" if why else ""))
            continue
        r = results[side]
        for kind, vals in (("IR", r.ir_deg), ("ER", r.er_deg)):
            if len(vals) < cfg.repetitions:
                out.append(f"{side} {kind}: {len(vals)} of {cfg.repetitions} repetitions measured")
            if len(vals) == 2 and abs(vals[0] - vals[1]) > cfg.outlier_deg:
                out.append(
                    f"{side} {kind}: the two repetitions differ by {abs(vals[0] - vals[1]):.1f}° "
                    f"(more than {cfg.outlier_deg:g}°)"
                )
                continue
            for i, v in enumerate(vals if len(vals) > 2 else ()):
                med = float(np.median([x for j, x in enumerate(vals) if j != i]))
                if abs(v - med) > cfg.outlier_deg:
                    out.append(
                        f"{side} {kind} repetition {i + 1} is an outlier: {v:.1f}° against "
                        f"{med:.1f}° (median of the others; limit ±{cfg.outlier_deg:g}°)"
                    )
    return out


def rom_asymmetry(results: Mapping[str, RomSide]) -> dict[str, dict[str, Any]]:
    """Right − left difference of mean maximal IR and ER with a Welch 95 % CI.

    The CI uses the repetitions' spread (Welch–Satterthwaite t), so it needs two or more
    repetitions per side; otherwise it is ``nan``. ``{}`` unless both sides were measured.
    """
    if not all(s in results for s in SIDES):
        return {}
    out: dict[str, dict[str, Any]] = {}
    for kind in ("ir", "er"):
        left = np.asarray(getattr(results["left"], f"{kind}_deg"), dtype=np.float64)
        right = np.asarray(getattr(results["right"], f"{kind}_deg"), dtype=np.float64)
        diff = float(np.mean(right) - np.mean(left)) if len(left) and len(right) else math.nan
        lo = hi = math.nan
        if len(left) > 1 and len(right) > 1:
            lo, hi = welch_interval(left, right)
        out[f"hip_{kind}_rom_deg"] = {
            "right_minus_left": diff,
            "ci95_low": lo,
            "ci95_high": hi,
            "n_left": len(left),
            "n_right": len(right),
            "method": "Welch t interval over repetitions",
        }
    return out


def _norm_status(v: float) -> str:
    from imuhip.gait.norms import ROM_NORMS

    n = ROM_NORMS["hip_ir_rom_deg"]
    return "below" if v < n.low else "above" if v > n.high else "within"


def _trace(r: RomSide, rate_hz: float) -> dict[str, Any]:
    if r.trace_t_s is None or r.trace_deg is None or len(r.trace_t_s) < 2:
        return {"t_s": [], "rotation_deg": []}
    t = np.asarray(r.trace_t_s, dtype=np.float64)
    step = max(1, round(1.0 / (rate_hz * float(np.median(np.diff(t))))))
    # this side's test only: from its neutral to 5 s after its last repetition
    end = max((*r.ir_t_s, *r.er_t_s, r.neutral_s[1])) + 5.0
    keep = np.flatnonzero((t >= r.neutral_s[0] - 2.0) & (t <= end))[::step]
    return {
        "t_s": np.round(t[keep], 3).tolist(),
        "rotation_deg": np.round(np.asarray(r.trace_deg)[keep], 2).tolist(),
    }


def rom_report_dict(
    results: Mapping[str, RomSide],
    flags: Sequence[Flag],
    not_measured: Sequence[str] = (),
    *,
    recording: str = "",
    meta: SessionMeta | None = None,
    sensor_calibration: Mapping[str, Any] | None = None,
    cfg: RomReportConfig | None = None,
) -> dict[str, Any]:
    """The content of ``rom_report.json`` (JSON-ready: non-finite numbers are ``None``).

    ``sensor_calibration`` is ``{"folder": ..., "sensors": [...]}`` (from
    :func:`imuhip.orientation.sensor_calibration.calibration_provenance`), or ``None`` when no
    calibration folder was given.
    """
    from imuhip.gait.norms import ROM_NORMS

    cfg = cfg or RomReportConfig()
    sides: dict[str, Any] = {}
    for side in SIDES:
        if side not in results:
            continue
        r = results[side]
        reps = []
        for kind, vals, ts in (("ir", r.ir_deg, r.ir_t_s), ("er", r.er_deg, r.er_t_s)):
            for i, v in enumerate(vals):
                reps.append(
                    {
                        "kind": kind,
                        "repetition": i + 1,
                        "deg": v,
                        "t_s": ts[i] if i < len(ts) else None,
                        "ir_norm": _norm_status(v) if kind == "ir" else None,
                    }
                )
        sides[side] = {
            **r.to_dict(),
            "ir_norm": _norm_status(r.ir_mean_deg) if r.ir_deg else None,
            "repetitions": reps,
            "trace": _trace(r, cfg.trace_rate_hz),
        }
    reasons = repeat_reasons(results, not_measured, cfg)
    d: dict[str, Any] = {
        "schema": SCHEMA,
        "generated_by": f"imuhip {__version__}",
        "test": "seated 90/90 hip internal/external rotation, degrees from neutral",
        "recording": recording,
        "session": {
            "session_id": meta.session_id if meta else None,
            "subject": meta.subject if meta else None,
            "start_wall_time": meta.start_wall_time if meta else None,
        },
        "conventions": {
            "angle": "twist of the thigh about its long axis relative to the neutral pose; "
            "+ = internal rotation on both sides (left mirrored)",
            "asymmetry": "right minus left difference of side means, Welch t 95% CI over "
            "repetitions",
            "repeat": f"a side or a repetition missing (expected {cfg.repetitions} per "
            f"direction), or a repetition more than {cfg.outlier_deg:g} deg from the median of "
            "the side's other repetitions",
        },
        "norms": {k: n.to_dict() for k, n in ROM_NORMS.items()},
        "sides": sides,
        "asymmetry": rom_asymmetry(results),
        "flags": [f.to_dict() for f in flags],
        "not_measured": list(not_measured),
        "repeat_test": bool(reasons),
        "repeat_reasons": reasons,
        "sensor_calibration": dict(sensor_calibration) if sensor_calibration else None,
    }
    return dict(json_safe(d))


# ---------------------------------------------------------------------------------------------
# HTML
# ---------------------------------------------------------------------------------------------

CSS: Final = (
    BASE_CSS
    + """
.repeat{background:#fdecea;border-left:6px solid #c62828;padding:.6em .9em;margin:.6em 0}
img{max-width:100%;height:auto}
@media print{body{max-width:none;padding:0}img{page-break-inside:avoid}}
"""
)
COLORS: Final = {"left": "#1f77b4", "right": "#d62728"}


def fmt(v: Any, nd: int = 1) -> str:
    """A number for the page (``–`` for missing), or escaped text."""
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.{nd}f}" if math.isfinite(v) else "–"
    return html.escape(str(v))


def png(fig: Any) -> str:
    """``<img>`` of a matplotlib figure as an inline PNG (the figure is closed)."""
    import base64
    import io

    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    b64 = base64.b64encode(buf.getvalue()).decode("ascii")
    return f'<img src="data:image/png;base64,{b64}" alt="plot">'


def _num(x: Any) -> float:
    return float(x) if isinstance(x, int | float) else math.nan


def _trace_plot(side: str, s: Mapping[str, Any]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from imuhip.gait.norms import ROM_NORMS

    t = np.array([_num(x) for x in s["trace"]["t_s"]])
    y = np.array([_num(x) for x in s["trace"]["rotation_deg"]])
    norm = ROM_NORMS["hip_ir_rom_deg"]
    fig, ax = plt.subplots(figsize=(10, 3.4))
    ax.axhspan(norm.low, norm.high, color="#43a047", alpha=0.15, label="IR norm 30–45°")
    ax.axhline(0.0, color="#888", lw=0.8)
    ax.plot(t, y, color=COLORS[side], lw=1.2, label=f"{side} hip rotation")
    for rep in s["repetitions"]:
        v, ts = _num(rep["deg"]), _num(rep["t_s"])
        if not (math.isfinite(v) and math.isfinite(ts)):
            continue
        yv = v if rep["kind"] == "ir" else -v
        ax.plot([ts], [yv], "o", color="k", ms=4)
        ax.annotate(
            f"{rep['kind'].upper()}{rep['repetition']} {v:.1f}°",
            (ts, yv),
            textcoords="offset points",
            xytext=(0, 6 if yv >= 0 else -13),
            ha="center",
            fontsize=8,
        )
    ax.set_xlabel("session time (s)")
    ax.set_ylabel("rotation from neutral (deg)\n+ internal, − external")
    ax.set_title(f"{side.capitalize()} hip: every repetition against the 30–45° IR norm")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    ax.grid(alpha=0.3)
    return png(fig)


def _side_rows(doc: Mapping[str, Any]) -> str:
    rows = []
    for side, s in doc["sides"].items():

        def reps(kind: str, s: Mapping[str, Any] = s) -> str:
            return ", ".join(fmt(r["deg"]) for r in s["repetitions"] if r["kind"] == kind) or "–"

        rows.append(
            f"<tr><td class=l>{side}</td><td>{fmt(s['ir_mean_deg'])} ± {fmt(s['ir_sd_deg'])}"
            f"</td><td class=l>{reps('ir')}</td><td class=l>{fmt(s['ir_norm'])}</td>"
            f"<td>{fmt(s['er_mean_deg'])} ± {fmt(s['er_sd_deg'])}</td>"
            f"<td class=l>{reps('er')}</td></tr>"
        )
    return (
        "<table><tr><th class=l>side</th><th>maximal IR (°) mean ± SD</th>"
        "<th class=l>IR repetitions (°)</th><th class=l>IR vs 30–45° norm</th>"
        "<th>maximal ER (°) mean ± SD</th><th class=l>ER repetitions (°)</th></tr>"
        + "".join(rows)
        + "</table>"
    )


def calibration_section(cal: Mapping[str, Any] | None) -> str:
    """The "sensor calibration" section: which files were applied (name, sha256, date)."""
    if not cal:
        return "<p class=muted>No sensor-calibration folder given: raw sensor data were used.</p>"
    rows = "".join(
        f"<tr><td class=l>{fmt(e.get('placement'))}</td><td class=l>{fmt(e.get('serial'))}</td>"
        + (
            f"<td class=l>{fmt(e.get('file'))}</td><td class=l><code>{fmt(e.get('sha256'))}"
            f"</code></td><td class=l>{fmt(e.get('date'))}</td>"
            if e.get("applied")
            else f"<td class=l colspan=3>not applied: {fmt(e.get('reason'))}</td>"
        )
        + "</tr>"
        for e in cal.get("sensors", [])
    )
    return (
        f"<p>Calibration folder: <code>{fmt(cal.get('folder'))}</code></p><table><tr>"
        "<th class=l>sensor</th><th class=l>serial</th><th class=l>file</th>"
        "<th class=l>sha256</th><th class=l>calibrated on</th></tr>" + rows + "</table>"
    )


def render_rom_html(doc: Mapping[str, Any]) -> str:
    """The self-contained ROM report page from a :func:`rom_report_dict` document."""
    from imuhip.gait.norms import ROM_NORMS

    ses = doc["session"]
    parts = [
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>",
        "<title>Hip rotation ROM test</title>",
        f"<style>{CSS}</style></head><body>",
        "<h1>Hip rotation ROM test (seated 90/90)</h1>",
        f"<p class=muted>Subject {fmt(ses['subject'])} · session {fmt(ses['session_id'])} · "
        f"recorded {fmt(ses['start_wall_time'])} · {fmt(doc['recording'])} · "
        f"{fmt(doc['generated_by'])}</p>",
    ]
    if doc["repeat_test"]:
        items = "".join(f"<li>{fmt(r)}</li>" for r in doc["repeat_reasons"])
        parts.append(f"<div class=repeat><b>Repeat the test.</b><ul>{items}</ul></div>")
    else:
        parts.append(
            "<div class=ok>All repetitions measured on both sides and consistent "
            "(no outlier).</div>"
        )
    parts += ["<h2>Maximal rotation from neutral</h2>", _side_rows(doc)]
    asym = doc["asymmetry"]
    if asym:
        parts.append(
            "<h2>Right − left difference</h2><table><tr><th class=l>measure</th>"
            "<th>right − left (°)</th><th>95 % CI (°)</th></tr>"
        )
        for k, a in asym.items():
            name = "maximal IR" if k.startswith("hip_ir") else "maximal ER"
            parts.append(
                f"<tr><td class=l>{name}</td><td>{fmt(a['right_minus_left'])}</td>"
                f"<td>{fmt(a['ci95_low'])} to {fmt(a['ci95_high'])}</td></tr>"
            )
        parts.append("</table>")
    parts.append("<h2>Findings</h2>")
    parts += [f"<div class=flag>{fmt(f['message'])}</div>" for f in doc["flags"]] or [
        "<div class=ok>No finding outside the norms.</div>"
    ]
    parts += [f"<p class=muted>Not measured: {fmt(m)}</p>" for m in doc["not_measured"]]
    parts.append("<h2>Repetitions over the test</h2>")
    for side, s in doc["sides"].items():
        parts.append(_trace_plot(side, s))
        parts += [f"<p class=muted>{side}: {fmt(n)}</p>" for n in s["notes"]]
    parts += ["<h2>Sensor calibration</h2>", calibration_section(doc["sensor_calibration"])]
    n = ROM_NORMS["hip_ir_rom_deg"]
    d = ROM_NORMS["hip_rom_side_difference_deg"]
    parts.append(
        f"<h2>Norms and method</h2><p class=muted>Passive IR norm {n.low:g}–{n.high:g}° "
        f"({fmt(n.source)}); side difference above {d.high:g}° flagged ({fmt(d.source)}). "
        f"Angle: {fmt(doc['conventions']['angle'])}. "
        f"Repeat rule: {fmt(doc['conventions']['repeat'])}."
        "</p></body></html>"
    )
    return "\n".join(parts)


def write_rom_report(doc: Mapping[str, Any], out_dir: str | Path) -> dict[str, Path]:
    """Write ``rom_report.html`` and ``rom_report.json`` (last) into ``out_dir``."""
    import json

    from imuhip.report.files import write_file_set

    parts = {
        "rom_report.html": render_rom_html(doc),
        "rom_report.json": json.dumps(doc, indent=1, allow_nan=False) + "\n",
    }
    paths = write_file_set(out_dir, parts, last="rom_report.json")
    return {"html": paths["rom_report.html"], "json": paths["rom_report.json"]}
