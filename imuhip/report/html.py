"""The self-contained clinical HTML page: inline CSS, plots as base64 PNG, no external resources.

Plots use matplotlib's Agg backend (no display needed). Everything shown comes from the report
dictionary (:func:`imuhip.report.writer.report_dict`) and the per-stride table, so the page and the
JSON
never disagree.
"""

from __future__ import annotations

import base64
import html
import io
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from imuhip.gait.norms import GAIT_NORMS

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from imuhip.pipeline import SessionResult

__all__ = ["render_html"]

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;
max-width:1100px;padding:1.5em;color:#222;line-height:1.4}
h1{margin-bottom:.2em}h2{border-bottom:2px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:.5em 0;font-size:.9em}
td,th{border:1px solid #ccc;padding:.25em .5em;text-align:right}th{background:#f3f3f3}
td.l,th.l{text-align:left}
.flag{background:#fff3cd;border-left:5px solid #e0a800;padding:.5em .8em;margin:.4em 0}
.ok{background:#e8f5e9;border-left:5px solid #43a047;padding:.5em .8em}
.muted{color:#666;font-size:.9em}
img{max-width:100%;height:auto}
.scroll{max-height:420px;overflow:auto;border:1px solid #ddd}
tr.excl td{color:#999}
"""

_COLORS = {"left": "#1f77b4", "right": "#d62728"}


def _png(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _img(b64: str, alt: str) -> str:
    return f'<img src="data:image/png;base64,{b64}" alt="{html.escape(alt)}">'


def _fmt(v: Any, nd: int = 1) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.{nd}f}" if np.isfinite(v) else "–"
    return html.escape(str(v))


def _hip_plot(res: SessionResult) -> str | None:
    from imuhip.report.curves import cycle_curves

    sides = [s for s in ("left", "right") if s in res.angles.hip_rad]
    if not sides:
        return None
    fig, axes = plt.subplots(1, len(sides), figsize=(5.2 * len(sides), 3.6), squeeze=False)
    norm = GAIT_NORMS["hip_rotation_excursion_deg"]
    x = np.linspace(0, 100, 101)
    for ax, side in zip(axes[0], sides, strict=True):
        c = np.degrees(cycle_curves(res, res.angles.hip_rad[side][:, 2], side))
        ax.set_title(f"Hip internal rotation, {side}")
        ax.set_xlabel("gait cycle (% from initial contact)")
        ax.set_ylabel("IR + / ER − (deg)")
        if not len(c):
            ax.text(50, 0, "no valid strides", ha="center")
            continue
        m, sd = c.mean(axis=0), c.std(axis=0)
        centre = 0.5 * (m.max() + m.min())
        ax.axhspan(
            centre - norm.high / 2,
            centre + norm.high / 2,
            color="#9e9e9e",
            alpha=0.15,
            label=f"norm excursion ≤ {norm.high:g}° (centred)",
        )
        ax.axhspan(
            centre - norm.low / 2,
            centre + norm.low / 2,
            color="#9e9e9e",
            alpha=0.25,
            label=f"norm excursion ≥ {norm.low:g}°",
        )
        ax.fill_between(x, m - sd, m + sd, color=_COLORS[side], alpha=0.25, label="mean ± SD")
        ax.plot(x, m, color=_COLORS[side], lw=2, label=f"mean of {len(c)} strides")
        ax.legend(fontsize=7, loc="best")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return _png(fig)


def _trunk_plot(res: SessionResult) -> str | None:
    from imuhip.report.curves import cycle_curves

    panels: list[tuple[str, np.ndarray]] = []
    if res.angles.pelvis_rad is not None:
        for i, name in enumerate(("rotation", "obliquity", "tilt")):
            panels.append((f"Pelvis {name}", res.angles.pelvis_rad[:, i]))
    if res.angles.lumbar_rad is not None:
        for i, name in ((2, "axial rotation"), (1, "lateral bending"), (0, "flexion")):
            panels.append((f"Lumbar {name}", res.angles.lumbar_rad[:, i]))
    if not panels:
        return None
    ncol = 3
    nrow = (len(panels) + ncol - 1) // ncol
    fig, axes = plt.subplots(nrow, ncol, figsize=(13, 3.0 * nrow), squeeze=False)
    x = np.linspace(0, 100, 101)
    for ax, (title, sig) in zip(axes.ravel(), panels, strict=False):
        c = np.degrees(cycle_curves(res, sig, "right"))
        ax.set_title(title + " (right strides)")
        ax.set_xlabel("% right gait cycle")
        ax.set_ylabel("deg")
        if len(c):
            m, sd = c.mean(axis=0), c.std(axis=0)
            ax.fill_between(x, m - sd, m + sd, color="#555", alpha=0.2)
            ax.plot(x, m, color="#222", lw=1.8)
        ax.grid(alpha=0.3)
    for ax in axes.ravel()[len(panels) :]:
        ax.axis("off")
    fig.tight_layout()
    return _png(fig)


def _asym_plot(d: dict[str, Any]) -> str | None:
    items = [(k, v) for k, v in d["asymmetry"].items() if k.endswith("_deg")]
    items = [(k, v) for k, v in items if v["right_minus_left"] is not None]
    if not items:
        return None
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(items) + 1.2))
    for i, (_k, v) in enumerate(items):
        lo, hi = v["ci95_low"], v["ci95_high"]
        col = "#d62728" if v["significant"] else "#555"
        if lo is not None and hi is not None:
            ax.plot([lo, hi], [i, i], color=col, lw=3, alpha=0.6)
        ax.plot(v["right_minus_left"], i, "o", color=col)
    ax.axvline(0, color="k", lw=0.8)
    ax.set_yticks(range(len(items)), [k.removesuffix("_deg") for k, _ in items], fontsize=8)
    ax.set_xlabel("right − left (deg), 95% bootstrap CI")
    ax.grid(alpha=0.3, axis="x")
    fig.tight_layout()
    return _png(fig)


def _table(rows: list[list[str]], header: list[str]) -> str:
    h = "".join(
        f'<th class="{"l" if i == 0 else ""}">{html.escape(c)}</th>' for i, c in enumerate(header)
    )
    body = "".join(
        "<tr>"
        + "".join(f'<td class="{"l" if i == 0 else ""}">{c}</td>' for i, c in enumerate(r))
        + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{h}</tr></thead><tbody>{body}</tbody></table>"


def _ms(v: dict[str, Any] | None) -> str:
    if not v or not v.get("n"):
        return "–"
    return f"{_fmt(v['mean'])} ± {_fmt(v['sd'])} (median {_fmt(v['median'])}, n={v['n']})"


def render_html(res: SessionResult, d: dict[str, Any], strides: pd.DataFrame) -> str:
    """The whole page as one string (UTF-8, no external references)."""
    ses = d["session"]
    parts: list[str] = []
    title = f"Gait report — {ses['subject']} — {ses['session_id']}"
    parts.append(f"<h1>{html.escape(title)}</h1>")
    parts.append(
        f'<p class="muted">Recorded {html.escape(str(ses["start_wall_time"]))}, '
        f"{ses['duration_s']:.1f} s, sensors: "
        + ", ".join(html.escape(s["placement"]) for s in ses["sensors"])
        + f"; orientation: {html.escape(ses['orientation_source'])}; "
        f"{html.escape(d['generated_by'])}</p>"
    )
    dropped = d["quality"].get("dropped_sensors") or {}
    if dropped:  # an optional sensor the analysis went on without: say so before any number
        parts.append(
            '<div class="flag" id="dropped-sensors"><b>Sensors dropped:</b> '
            + "; ".join(
                f"{html.escape(p)} ({html.escape(v['stage'])}: {html.escape(v['reason'])})"
                for p, v in dropped.items()
            )
            + ". The analysis went on without them.</div>"
        )
    # --- summary and flags
    parts.append("<h2>Summary</h2>")
    rows = []
    per_side = d["metrics"]["per_side"]
    for side in ("left", "right"):
        if side not in per_side:
            continue
        n = d["gait"]["strides"][side]
        comp = d["compensation"]["per_side"].get(side)
        t = d["gait"]["timing"].get(side, {})
        rows.append(
            [
                side,
                f"{n['valid']} / {n['total']}",
                _ms(per_side[side].get("hip_rotation_excursion_deg")),
                _ms(per_side[side].get("hip_ir_peak_deg")),
                _ms(t.get("cadence_steps_min")),
                _fmt(comp["index"], 2) if comp else "–",
            ]
        )
    parts.append(
        _table(
            rows,
            [
                "side",
                "valid strides",
                "hip rotation excursion (°)",
                "IR peak (°, absolute*)",
                "cadence (steps/min)",
                "compensation index",
            ],
        )
    )
    trunk_rows = [
        [
            html.escape(k),
            _ms(v),
            f"{GAIT_NORMS[k].low:g}–{GAIT_NORMS[k].high:g}" if k in GAIT_NORMS else "–",
        ]
        for k, v in d["metrics"]["trunk"].items()
    ]
    if trunk_rows:
        parts.append(_table(trunk_rows, ["pelvis / lumbar", "session value (°)", "gait norm (°)"]))
    parts.append(
        '<p class="muted">* absolute angles carry the calibration offset; compare excursions.</p>'
    )
    if d["flags"]:
        for f in d["flags"]:
            parts.append(
                f'<div class="flag"><b>{html.escape(f["message"])}</b><br>'
                f'<span class="muted">value: {_fmt(f["value"], 2)}; norm: '
                f"{html.escape(f['norm'])}; source: {html.escape(f['source'])}; caveat: "
                f"{html.escape(f['caveat'])}</span></div>"
            )
    else:
        parts.append('<div class="ok">No flags: all compared values are inside their norms.</div>')
    # --- curves
    parts.append("<h2>Hip rotation over the gait cycle</h2>")
    hip = _hip_plot(res)
    parts.append(_img(hip, "hip rotation over the gait cycle") if hip else "<p>No hip data.</p>")
    parts.append(
        '<p class="muted">Grey bands: the normative gait <i>excursion</i> '
        "(max − min), centred on the subject's mean curve; the absolute level is not "
        "normed because it depends on calibration.</p>"
    )
    trunk = _trunk_plot(res)
    if trunk:
        parts.append("<h2>Pelvis and lumbar motion</h2>")
        parts.append(_img(trunk, "pelvis and lumbar curves"))
    # --- asymmetry
    parts.append("<h2>Left–right asymmetry</h2>")
    asym_rows = [
        [
            html.escape(k),
            _fmt(v["right_minus_left"], 2),
            f"{_fmt(v['ci95_low'], 2)} to {_fmt(v['ci95_high'], 2)}",
            "yes" if v["significant"] else "no",
        ]
        for k, v in d["asymmetry"].items()
    ]
    parts.append(_table(asym_rows, ["metric", "right − left", "95% CI", "CI excludes 0"]))
    ap = _asym_plot(d)
    if ap:
        parts.append(_img(ap, "asymmetry with confidence intervals"))
    # --- compensation
    parts.append("<h2>Hip–lumbar compensation index</h2>")
    crow = [
        [
            side,
            _fmt(c["index"], 2),
            _fmt(c["ratio"], 2),
            _fmt(c["z_ratio"], 2),
            _fmt(c["phase_deg"], 1),
            _fmt(c["z_phase"], 2),
            str(c["n_strides"]),
            "yes" if c["flagged"] else "no",
        ]
        for side, c in d["compensation"]["per_side"].items()
    ]
    parts.append(
        _table(
            crow,
            [
                "side",
                "index",
                "ln(trunk/hip)",
                "z",
                "absorption phase (°)",
                "z",
                "strides",
                f"above band ({d['compensation']['band']:g})",
            ],
        )
    )
    parts.append(
        '<p class="muted">Definition and normal band: docs/compensation_index.md '
        "(imuhip's own index; no published index exists).</p>"
    )
    # --- strides
    parts.append("<h2>Strides</h2>")
    show = strides.copy()
    for col in show.columns:
        if show[col].dtype.kind == "f":
            show[col] = show[col].map(lambda v: "" if not np.isfinite(v) else f"{v:.2f}")
    parts.append(
        '<div class="scroll">' + show.to_html(index=False, border=0, escape=True) + "</div>"
    )
    # --- quality
    q = d["quality"]
    parts.append("<h2>Data quality</h2>")
    srows = [
        [
            html.escape(p),
            _fmt(100 * v.get("loss_fraction", 0.0), 2),
            str(v.get("n_gaps", "–")),
            _fmt(100 * v.get("valid_fraction", 0.0), 1),
            _fmt(v.get("clock_drift_ppm"), 1),
        ]
        for p, v in q.get("sensors", {}).items()
    ]
    parts.append(_table(srows, ["sensor", "loss (%)", "gaps", "valid (%)", "clock drift (ppm)"]))
    tc = q.get("transverse_confidence_mean")
    parts.append(
        f"<p>Transverse-plane (hip rotation) confidence: <b>{_fmt(tc, 2)}</b> "
        "(0 = relative heading unknown, 1 = well determined).</p>"
    )
    segq = q.get("segment_calibration", {})
    parts.append(
        "<p>Segment calibration: "
        + html.escape(", ".join(f"{k}: {v}" for k, v in segq.get("method", {}).items()))
        + "</p>"
    )
    notes = [
        *q.get("event_warnings", []),
        *segq.get("warnings", []),
        *q.get("angle_notes", []),
        *q.get("recording_warnings", []),
    ]
    if notes:
        parts.append("<ul>" + "".join(f"<li>{html.escape(str(n))}</li>" for n in notes) + "</ul>")
    excl = {s: v.get("excluded", {}) for s, v in d["gait"]["strides"].items()}
    parts.append(
        "<p>Excluded strides: "
        + html.escape("; ".join(f"{s}: {dict(v) or 'none'}" for s, v in excl.items()))
        + "</p>"
    )
    # --- conventions and caveats
    parts.append("<h2>Conventions and caveats</h2><ul>")
    parts += [
        f"<li><b>{html.escape(k)}</b>: {html.escape(v)}</li>" for k, v in d["conventions"].items()
    ]
    parts.append("</ul><ul>")
    parts += [f"<li>{html.escape(c)}</li>" for c in d["caveats"]]
    parts.append("</ul>")
    body = "\n".join(parts)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title>"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<style>{_CSS}</style></head><body>\n{body}\n</body></html>\n"
    )
