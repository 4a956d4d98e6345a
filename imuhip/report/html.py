"""The self-contained clinical HTML page: inline CSS and inline SVG figures, no external resources.

The first screen answers the clinical question in plain words (:mod:`imuhip.report.summary`);
figures are inline SVG drawn once each from summarised curves (:mod:`imuhip.report.plots`), so
the page costs the same for 1 minute or 1 hour of walking. Everything shown comes from the report
dictionary (:func:`imuhip.report.writer.report_dict`), the per-stride table and the summarised
curves of the result, so the page and the JSON never disagree. Human metric names on the page;
the code names stay in report.json and strides.csv. A print stylesheet lays it out for paper.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from imuhip.gait.assumptions import off_site_metrics
from imuhip.gait.norms import GAIT_NORMS, NORM_FLAG_MIN_STRIDES
from imuhip.report.plots import excursion_over_time_svg, hip_cycle_svg, trunk_svgs
from imuhip.report.style import BASE_CSS
from imuhip.report.summary import first_screen_html, flag_message, label, plain_note

if TYPE_CHECKING:
    from imuhip.pipeline import SessionResult
    from imuhip.report.stride_table import StridesTable

__all__ = ["MAX_TABLE_ROWS", "render_html"]

MAX_TABLE_ROWS: Final = 300
"""Strides shown in the page's table at most (every excluded one first); all are in strides.csv."""

_CSS = (
    BASE_CSS
    + """
.banner{background:#fdecea;border-left:6px solid #c62828;padding:.6em .9em;margin:.5em 0;
font-weight:600}
.finding{background:#f4f8fc;border:1px solid #c9d9ea;border-radius:6px;padding:.6em 1em;
margin:.6em 0}
.finding .headline{font-size:1.35em;font-weight:700;margin:.2em 0 .4em}
.finding ul{margin:.2em 0;padding-left:1.2em}
svg.chart{max-width:100%;height:auto;display:block;margin:.4em 0}
.grid{display:flex;flex-wrap:wrap;gap:.3em}
.grid svg.chart{flex:0 1 360px}
.wide{overflow-x:auto}
tr.excl td{color:#999}
@media print{
 body{max-width:none;padding:0;font-size:10pt}
 .wide{overflow:visible}
 table{font-size:8pt}
 thead{display:table-header-group}
 tr,svg.chart,.finding,.banner,.flag,li{break-inside:avoid}
 h2{break-after:avoid}
 li:last-child{break-before:avoid}
 svg.chart{max-width:100%}
}
@page{size:A4;margin:14mm}
"""
)


def _fmt(v: Any, nd: int = 1) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.{nd}f}".replace("-", "−") if np.isfinite(v) else "–"
    return html.escape(str(v))


def _table(rows: list[list[str]], header: list[str], cls: list[str] | None = None) -> str:
    h = "".join(
        f'<th class="{"l" if i == 0 else ""}">{html.escape(c)}</th>' for i, c in enumerate(header)
    )
    body = "".join(
        f'<tr class="{cls[k] if cls else ""}">'
        + "".join(f'<td class="{"l" if i == 0 else ""}">{c}</td>' for i, c in enumerate(r))
        + "</tr>"
        for k, r in enumerate(rows)
    )
    return (
        f'<div class="wide"><table><thead><tr>{h}</tr></thead><tbody>{body}</tbody></table></div>'
    )


def _ms(v: dict[str, Any] | None) -> str:
    if not v or not v.get("n"):
        return "–"
    return f"{_fmt(v['mean'])} ± {_fmt(v['sd'])} (median {_fmt(v['median'])}, n={v['n']})"


def _name(code: str) -> str:
    return html.escape(label(code).removesuffix(" (°)").removesuffix(" (s)"))


def _flag_message(f: dict[str, Any]) -> str:
    """The flag's message with the metric's human name instead of its code name."""
    return flag_message(str(f["message"]), str(f["metric"]))


def _summary(d: dict[str, Any]) -> list[str]:
    parts = ["<h2>Summary</h2>"]
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
                f"{n['valid']} of {n['total']}",
                _ms(per_side[side].get("hip_rotation_excursion_deg")),
                _ms(per_side[side].get("hip_ir_peak_deg")),
                _ms(t.get("cadence_steps_min")),
                _fmt(comp["index"], 2) if comp else "–",
            ]
        )
    head = ["side", "valid strides", "hip rotation excursion (°)", "internal rotation peak (°)*"]
    parts.append(_table(rows, [*head, "cadence (steps/min)", "compensation index"]))
    off_site = off_site_metrics(d["quality"].get("off_site_sensors") or {})
    trunk_rows = [
        [
            _name(k),
            _ms(v),
            (f"{GAIT_NORMS[k].low:g}–{GAIT_NORMS[k].high:g}" if k in GAIT_NORMS else "–")
            + (
                f" (not compared: fewer than {NORM_FLAG_MIN_STRIDES} strides)"
                if k in GAIT_NORMS and 0 < (v.get("n") or 0) < NORM_FLAG_MIN_STRIDES
                else " (not compared: sensor off site)"
                if k in GAIT_NORMS and k in off_site
                else ""
            ),
        ]
        for k, v in d["metrics"]["trunk"].items()
    ]
    if trunk_rows:
        parts.append(_table(trunk_rows, ["pelvis / lumbar", "session value (°)", "typical (°)"]))
    parts.append(
        '<p class="muted">* absolute angles carry the calibration offset; compare excursions.</p>'
    )
    for f in d["flags"]:
        parts.append(
            f'<div class="flag"><b>{html.escape(_flag_message(f))}</b><br>'
            f'<span class="muted">value: {_fmt(f["value"], 2)}; norm: '
            f"{html.escape(f['norm'])}; source: {html.escape(f['source'])}; caveat: "
            f"{html.escape(f['caveat'])}</span></div>"
        )
    if not d["flags"]:
        parts.append('<div class="ok">No flags: all compared values are inside their norms.</div>')
    return parts


def _figures(res: SessionResult) -> list[str]:
    parts = ["<h2>Hip rotation over the gait cycle</h2>"]
    hip, _ = hip_cycle_svg(res)
    parts.append(hip or "<p>No valid strides: no hip rotation curves.</p>")
    parts.append(
        '<p class="muted">Thick lines and shaded bands: mean ± SD per side; thin lines: single '
        "strides (at most 40 per side, spread over the session); dashed: mean toe-off per side. "
        "Grey bands: the typical gait <i>excursion</i> (max − min), centred on the subject's "
        "mean level; the absolute level is not normed because it depends on calibration.</p>"
    )
    exc = excursion_over_time_svg(res)
    if exc:
        parts += ["<h2>Hip rotation excursion per stride over the session</h2>", exc]
    trunk = trunk_svgs(res)
    if trunk:
        parts += ["<h2>Pelvis and lumbar motion</h2>", '<div class="grid">', *trunk, "</div>"]
        parts.append(
            '<p class="muted">Mean ± SD over the gait cycle. Pelvis: relative to the walking '
            "direction; lumbar: lumbar segment relative to the pelvis. Sign conventions are in "
            "each axis label.</p>"
        )
    return parts


def _asym_comp(d: dict[str, Any]) -> list[str]:
    parts = ["<h2>Left–right asymmetry</h2>"]
    asym_rows = [
        [
            _name(k),
            _fmt(v["right_minus_left"], 2),
            f"{_fmt(v['ci95_low'], 2)} to {_fmt(v['ci95_high'], 2)}",
            "yes" if v["significant"] else "no",
        ]
        for k, v in d["asymmetry"].items()
    ]
    parts.append(_table(asym_rows, ["metric", "right − left", "95% CI", "CI excludes 0"]))
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
    head = ["side", "index", "ln(trunk/hip)", "z", "absorption phase (°)", "z", "strides"]
    if crow:  # no header-only table when no side has an index (the note below says why)
        parts.append(_table(crow, [*head, f"above band ({d['compensation']['band']:g})"]))
    missing = [s for s in d["metrics"]["per_side"] if s not in d["compensation"]["per_side"]]
    if missing:
        parts.append(
            f'<p class="muted">No index for {" and ".join(missing)}: a side needs '
            f"{d['compensation']['min_strides']} valid strides with a toe-off and a pelvis "
            "rotation range (walked straight); one or two strides cannot stand for a "
            "walker.</p>"
        )
    parts.append(
        '<p class="muted">Compensation turns the whole trunk, so the index of the unrestricted '
        "side rises too: the finding belongs to the restricted hip (smaller excursion), not to "
        "each side above the band. Definition and normal band: docs/compensation_index.md "
        "(imuhip's own index; no published index exists).</p>"
    )
    return parts


def _strides(strides: StridesTable) -> list[str]:
    parts = ["<h2>Strides</h2>"]
    n = len(strides)
    show = strides
    if n > MAX_TABLE_ROWS:
        valid = np.array(strides.column("valid"), dtype=bool)
        keep = np.flatnonzero(~valid)[:MAX_TABLE_ROWS]
        keep = np.sort(np.concatenate([keep, np.flatnonzero(valid)[: MAX_TABLE_ROWS - len(keep)]]))
        show = strides.take(keep.tolist())
        parts.append(
            f'<p class="muted">{len(show)} of {n} strides shown (every excluded stride, then the '
            "first valid ones); strides.csv beside this page has one row per stride.</p>"
        )
    cols = list(show.columns)
    rows = []
    cls = []
    for rec in show.rows:
        cells = []
        for c, v in zip(cols, rec, strict=True):
            if isinstance(v, float | np.floating):
                cells.append(f"{v:.2f}" if np.isfinite(v) else "")
            elif c == "exclusion":
                cells.append("" if v == "none" else html.escape(str(v)))
            elif c == "valid":
                cells.append("yes" if v else "no")
            else:
                cells.append(html.escape(str(v)))
        rows.append(cells)
        cls.append("" if bool(rec[cols.index("valid")]) else "excl")
    parts.append(_table(rows, [label(c) for c in cols], cls))
    return parts


def _quality(d: dict[str, Any]) -> list[str]:
    q = d["quality"]
    parts = ["<h2>Data quality</h2>"]
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
        *q.get("recording_warnings", []),
        *q.get("event_warnings", []),
        *segq.get("warnings", []),
        *q.get("angle_notes", []),
    ]
    if notes:
        parts.append(
            "<ul>" + "".join(f"<li>{html.escape(plain_note(str(n)))}</li>" for n in notes) + "</ul>"
        )

    def excluded(v: dict[str, int]) -> str:
        return ", ".join(f"{c} {r.replace('_', ' ')}" for r, c in v.items()) or "none"

    parts.append(
        "<p>Excluded strides: "
        + html.escape(
            "; ".join(
                f"{s}: {excluded(v.get('excluded', {}))}" for s, v in d["gait"]["strides"].items()
            )
        )
        + "</p>"
    )
    return parts


def _data_and_calibration(d: dict[str, Any]) -> list[str]:
    """Which recording was analysed and which sensor-calibration files were applied.

    From report.json's ``sensor_calibration`` (:func:`imuhip.report.writer.report_dict`): per
    sensor the file name, its sha256 and the calibration date, or why none was applied.
    """
    from imuhip.report.rom import calibration_section

    ses = d["session"]
    cal = d.get("sensor_calibration")
    parts = ["<h2>Data and calibration</h2>"]
    keys = ("placement", "model", "serial", "firmware")
    rows = [
        [*(html.escape(str(s.get(k) or "–")) for k in keys), _fmt(s.get("rate_hz"), 0)]
        for s in ses["sensors"]
    ]
    if rows:
        parts.append(_table(rows, ["sensor", "model", "serial", "firmware", "rate (Hz)"]))
    if cal and not cal.get("sensors"):
        parts.append(
            f"<p>Calibration folder: <code>{html.escape(str(cal.get('folder')))}</code>: "
            f"{html.escape(str(cal.get('note', 'no sensor in it')))}.</p>"
        )
    else:
        parts.append(f'<div class="wide">{calibration_section(cal)}</div>')
    return parts


def render_html(res: SessionResult, d: dict[str, Any], strides: StridesTable) -> str:
    """The whole page as one string (UTF-8, no external references)."""
    ses = d["session"]
    title = f"Gait report — {ses['subject']} — {ses['session_id']}"
    parts = [f"<h1>{html.escape(title)}</h1>"]
    parts.append(
        f'<p class="muted">Recorded {html.escape(str(ses["start_wall_time"]))}, '
        f"{ses['duration_s']:.1f} s, sensors: "
        + ", ".join(html.escape(s["placement"]) for s in ses["sensors"])
        + f"; orientation: {html.escape(ses['orientation_source'])}; "
        f"{html.escape(d['generated_by'])}</p>"
    )
    parts.append(first_screen_html(d))
    parts += _summary(d)
    parts += _figures(res)
    parts += _asym_comp(d)
    parts += _strides(strides)
    parts += _quality(d)
    parts += _data_and_calibration(d)
    parts.append("<h2>Conventions and caveats</h2><ul>")
    parts += [f"<li><b>{_name(k)}</b>: {html.escape(v)}</li>" for k, v in d["conventions"].items()]
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
