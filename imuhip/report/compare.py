"""Follow-up: sessions of one subject side by side over time (``imuhip compare``).

Reads gait reports (``report.json`` of ``imuhip analyze``) and ROM reports (``rom_report.json``
of ``imuhip rom-test``), orders the sessions by their recording date (``start_wall_time``, the
recording's own clock; ties keep the order given) and puts the numbers a follow-up needs in one
table with their uncertainty:

- per side hip rotation excursion (mean over valid strides, 95 % CI of the mean: t interval
  from the report's SD and n), valid strides, compensation index (no CI: a single index);
- right − left asymmetry of the excursion with the report's 95 % CI;
- pelvis / lumbar rotation range (both sides' strides, t interval);
- ROM: maximal IR and ER per side (t interval over repetitions) and their right − left
  difference (the report's Welch CI).

The change of each measure from the first session that has it comes with an approximate 95 % CI
``±sqrt(h1² + h2²)`` from the two CIs' half-widths (independent sessions, normal approximation),
``significant`` when it excludes 0. Sessions of different subject pseudonyms are refused
(:class:`SubjectMismatchError`) unless ``force``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np

from imuhip import __version__
from imuhip.errors import ImuhipError
from imuhip.gait.asymmetry import t_quantile_975
from imuhip.report.files import write_file_set
from imuhip.report.rom import CSS, fmt, json_safe, png

__all__ = [
    "MEASURES",
    "SCHEMA",
    "SubjectMismatchError",
    "change_lines",
    "compare_dict",
    "compare_lines",
    "load_reports",
    "render_compare_html",
    "session_entry",
    "write_compare",
]

SCHEMA: Final = "imuhip.report.compare/1"
GAIT_SCHEMA: Final = "imuhip.report.writer/"
ROM_SCHEMA: Final = "imuhip.report.rom/"

MEASURES: Final = {
    "hip_rotation_excursion_deg.left": "Hip rotation excursion, left (°)",
    "hip_rotation_excursion_deg.right": "Hip rotation excursion, right (°)",
    "hip_rotation_excursion_deg.asymmetry": "Excursion asymmetry, right − left (°)",
    "valid_strides.left": "Valid strides, left",
    "valid_strides.right": "Valid strides, right",
    "compensation_index.left": "Compensation index, left",
    "compensation_index.right": "Compensation index, right",
    "pelvis_rotation_range_deg": "Pelvis rotation range (°)",
    "lumbar_rotation_range_deg": "Lumbar rotation range (°)",
    "hip_ir_rom_deg.left": "ROM maximal IR, left (°)",
    "hip_ir_rom_deg.right": "ROM maximal IR, right (°)",
    "hip_ir_rom_deg.asymmetry": "ROM maximal IR, right − left (°)",
    "hip_er_rom_deg.left": "ROM maximal ER, left (°)",
    "hip_er_rom_deg.right": "ROM maximal ER, right (°)",
    "hip_er_rom_deg.asymmetry": "ROM maximal ER, right − left (°)",
}
"""Compared measures: key (code name, kept in JSON) → label shown in the table and page."""


class SubjectMismatchError(ImuhipError):
    """The sessions belong to different subject pseudonyms."""


def load_reports(paths: Sequence[str | Path]) -> list[tuple[str, dict[str, Any]]]:
    """``(source, document)`` of every report named: a ``report.json``/``rom_report.json`` file,
    or a folder holding one or both. Anything else is an :class:`ImuhipError` naming it."""
    out: list[tuple[str, dict[str, Any]]] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            files = [p / n for n in ("report.json", "rom_report.json") if (p / n).is_file()]
            if not files:
                raise ImuhipError(f"{p}: no report.json or rom_report.json in this folder")
        elif p.exists():
            files = [p]
        else:
            raise FileNotFoundError(2, "no such file", str(p))
        for f in files:
            try:
                doc = json.loads(f.read_text(encoding="utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as err:
                raise ImuhipError(f"{f}: not a JSON report ({err})") from None
            schema = str(doc.get("schema", "")) if isinstance(doc, dict) else ""
            if not schema.startswith((GAIT_SCHEMA, ROM_SCHEMA)):
                raise ImuhipError(
                    f"{f}: not an imuhip gait or ROM report (schema {schema or 'missing'!r})"
                )
            out.append((str(f), doc))
    return out


def _f(x: Any) -> float:
    return float(x) if isinstance(x, int | float) and not isinstance(x, bool) else math.nan


def _t_ci(mean: Any, sd: Any, n: Any) -> dict[str, Any]:
    """Value with a 95 % t interval of the mean from its SD and n (nan bounds if n < 2)."""
    m, s, k = _f(mean), _f(sd), _f(n)
    lo = hi = math.nan
    if math.isfinite(m) and math.isfinite(s) and k >= 2:
        h = t_quantile_975(k - 1) * s / math.sqrt(k)
        lo, hi = m - h, m + h
    return {"value": m, "ci95_low": lo, "ci95_high": hi, "sd": s, "n": int(k) if k >= 0 else 0}


def _given_ci(a: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "value": _f(a.get("right_minus_left")),
        "ci95_low": _f(a.get("ci95_low")),
        "ci95_high": _f(a.get("ci95_high")),
    }


def session_entry(source: str, doc: Mapping[str, Any]) -> dict[str, Any]:
    """One session's identity, date and measures (keys of :data:`MEASURES`) from a report."""
    ses = doc.get("session", {})
    values: dict[str, dict[str, Any]] = {}
    rom = str(doc.get("schema", "")).startswith(ROM_SCHEMA)
    if rom:
        for side, s in doc.get("sides", {}).items():
            for kind in ("ir", "er"):
                reps = [_f(x) for x in s.get(f"{kind}_deg", [])]
                values[f"hip_{kind}_rom_deg.{side}"] = _t_ci(
                    s.get(f"{kind}_mean_deg"), s.get(f"{kind}_sd_deg"), len(reps)
                )
        for k, a in doc.get("asymmetry", {}).items():
            values[f"{k}.asymmetry"] = _given_ci(a)
    else:
        per_side = doc.get("metrics", {}).get("per_side", {})
        strides = doc.get("gait", {}).get("strides", {})
        comp = doc.get("compensation", {}).get("per_side", {})
        for side in ("left", "right"):
            m = per_side.get(side, {}).get("hip_rotation_excursion_deg")
            if m:
                values[f"hip_rotation_excursion_deg.{side}"] = _t_ci(m["mean"], m["sd"], m["n"])
            if side in strides:
                values[f"valid_strides.{side}"] = {"value": _f(strides[side].get("valid"))}
            if side in comp:
                values[f"compensation_index.{side}"] = {
                    "value": _f(comp[side].get("index")),
                    "flagged": bool(comp[side].get("flagged")),
                }
        a = doc.get("asymmetry", {}).get("hip_rotation_excursion_deg")
        if a:
            values["hip_rotation_excursion_deg.asymmetry"] = _given_ci(a)
        for k in ("pelvis_rotation_range_deg", "lumbar_rotation_range_deg"):
            m = doc.get("metrics", {}).get("trunk", {}).get(k)
            if m:
                values[k] = _t_ci(m["mean"], m["sd"], m["n"])
    return {
        "source": source,
        "kind": "rom" if rom else "gait",
        "subject": ses.get("subject"),
        "session_id": ses.get("session_id"),
        "date": ses.get("start_wall_time"),
        "values": values,
        "flags": [f.get("code") for f in doc.get("flags", [])],
        "repeat_test": doc.get("repeat_test") if rom else None,
    }


def _change(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    """``b − a`` with an approximate 95 % CI from the two CIs' half-widths."""
    d = _f(b.get("value")) - _f(a.get("value"))
    ha = (_f(a.get("ci95_high")) - _f(a.get("ci95_low"))) / 2
    hb = (_f(b.get("ci95_high")) - _f(b.get("ci95_low"))) / 2
    h = math.hypot(ha, hb)
    lo, hi = d - h, d + h
    return {
        "change": d,
        "ci95_low": lo,
        "ci95_high": hi,
        "significant": bool(math.isfinite(h) and (lo > 0 or hi < 0)),
    }


def compare_dict(
    reports: Sequence[tuple[str, Mapping[str, Any]]], *, force: bool = False
) -> dict[str, Any]:
    """The content of ``compare.json``: sessions by date, measures and changes from the first.

    Raises
    ------
    SubjectMismatchError
        Different subject pseudonyms and not ``force``.
    """
    sessions = [session_entry(src, doc) for src, doc in reports]
    subjects = sorted({str(s["subject"]) for s in sessions})
    if len(subjects) > 1 and not force:
        who = "; ".join(
            f"{sub}: {', '.join(s['source'] for s in sessions if str(s['subject']) == sub)}"
            for sub in subjects
        )
        raise SubjectMismatchError(
            f"the reports belong to different subjects ({who}); compare one subject's sessions, "
            "or pass --force to put them side by side anyway"
        )
    order = sorted(
        range(len(sessions)),
        key=lambda i: (sessions[i]["date"] is None, str(sessions[i]["date"] or ""), i),
    )
    sessions = [sessions[i] for i in order]
    for i, s in enumerate(sessions):
        s["label"] = f"S{i + 1}"
    changes: dict[str, list[dict[str, Any]]] = {}
    for key in MEASURES:
        have = [(s["label"], s["values"][key]) for s in sessions if key in s["values"]]
        if len(have) >= 2:
            first = have[0][1]
            changes[key] = [
                {"session": lab, "from": have[0][0], **_change(first, v)} for lab, v in have[1:]
            ]
    d = {
        "schema": SCHEMA,
        "generated_by": f"imuhip {__version__}",
        "subjects": subjects,
        "forced": bool(force and len(subjects) > 1),
        "measures": dict(MEASURES),
        "sessions": sessions,
        "changes_from_first": changes,
        "method": "Values: mean with 95% CI of the mean (t interval from SD and n) or the "
        "report's own CI (asymmetries); change: later minus first session, approximate 95% CI "
        "sqrt(h1^2 + h2^2) of the two half-widths",
    }
    return dict(json_safe(d))


def _cell(v: Mapping[str, Any] | None, nd: int = 1) -> str:
    if v is None:
        return "–"
    s = fmt(v.get("value"), nd if "ci95_low" in v or "flagged" in v else 0)
    if v.get("ci95_low") is not None and v.get("ci95_high") is not None:
        s += f" [{fmt(v['ci95_low'], nd)}, {fmt(v['ci95_high'], nd)}]"
    if v.get("flagged"):
        s += " flagged"
    return s


def _rows(doc: Mapping[str, Any]) -> list[tuple[str, list[str], str]]:
    """``(label, cells per session, change last − first)`` of every measure present."""
    out = []
    for key, label in doc["measures"].items():
        cells = [s["values"].get(key) for s in doc["sessions"]]
        if not any(cells):
            continue
        ch = doc["changes_from_first"].get(key)
        nd = 2 if key.startswith("compensation") else 0 if key.startswith("valid") else 1
        c = "–"
        if ch:
            last = ch[-1]
            c = f"{last['change']:+.{nd}f}" if last["change"] is not None else "–"
            if last["ci95_low"] is not None and last["ci95_high"] is not None:
                c += f" [{fmt(last['ci95_low'], nd)}, {fmt(last['ci95_high'], nd)}]"
            c += " *" if last["significant"] else ""
        out.append((label, [_cell(v, nd) for v in cells], c))
    return out


def compare_lines(doc: Mapping[str, Any]) -> list[str]:
    """The comparison as a plain-text table (one line per measure) for the terminal."""
    ses = doc["sessions"]
    head = [
        f"{s['label']}: {s['date'] or 'date unknown'}  {s['kind']}  subject {s['subject']}  "
        f"session {s['session_id']}  ({s['source']})"
        for s in ses
    ]
    rows = _rows(doc)
    w0 = max([len("measure"), *(len(r[0]) for r in rows)])
    widths = [max([len(s["label"]), *(len(r[1][i]) for r in rows)]) for i, s in enumerate(ses)]
    cols = [s["label"].rjust(w) for s, w in zip(ses, widths, strict=True)]
    lines = [*head, "", "  ".join(["measure".ljust(w0), *cols, "change from first"])]
    for label, cells, c in rows:
        vals = [x.rjust(w) for x, w in zip(cells, widths, strict=True)]
        lines.append("  ".join([label.ljust(w0), *vals, c]))
    lines.append("values: mean [95% CI]; change [approx. 95% CI], * = CI excludes 0")
    lines += change_lines(doc)
    return lines


def change_lines(doc: Mapping[str, Any]) -> list[str]:
    """Plain sentences for every change whose approximate 95 % CI excludes 0."""
    out = []
    for key, chs in doc["changes_from_first"].items():
        for ch in chs:
            if ch["significant"]:
                out.append(
                    f"{ch['session']} vs {ch['from']}: {doc['measures'][key]} changed by "
                    f"{ch['change']:+.1f} (95% CI {ch['ci95_low']:+.1f} to {ch['ci95_high']:+.1f})"
                )
    return out


def _plot(doc: Mapping[str, Any]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [
        ("Hip rotation excursion in gait (°)", "hip_rotation_excursion_deg"),
        ("ROM maximal IR (°)", "hip_ir_rom_deg"),
    ]
    ses = doc["sessions"]
    present = [
        (t, k)
        for t, k in panels
        if any(f"{k}.{side}" in s["values"] for s in ses for side in ("left", "right"))
    ]
    if not present:
        return ""
    fig, axes = plt.subplots(1, len(present), figsize=(5.5 * len(present), 3.6), squeeze=False)
    x = np.arange(len(ses))
    for ax, (title, key) in zip(axes[0], present, strict=True):
        for dx, side, color in ((-0.06, "left", "#1f77b4"), (0.06, "right", "#d62728")):
            v = [s["values"].get(f"{key}.{side}") or {} for s in ses]
            y = np.array([_f(e.get("value")) for e in v])
            lo = np.array([_f(e.get("ci95_low")) for e in v])
            hi = np.array([_f(e.get("ci95_high")) for e in v])
            err = np.vstack([np.nan_to_num(y - lo), np.nan_to_num(hi - y)])
            ok = np.isfinite(y)
            if ok.any():
                ax.errorbar(x[ok] + dx, y[ok], yerr=err[:, ok], fmt="o-", color=color,
                            capsize=4, label=side)  # fmt: skip
        if key == "hip_ir_rom_deg":
            ax.axhspan(30, 45, color="#43a047", alpha=0.15, label="IR norm 30–45°")
        ax.set_xticks(x, [f"{s['label']}\n{str(s['date'] or '')[:10]}" for s in ses])
        ax.set_xlim(-0.5, len(ses) - 0.5)
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return png(fig)


def render_compare_html(doc: Mapping[str, Any]) -> str:
    """The self-contained comparison page from a :func:`compare_dict` document."""
    ses = doc["sessions"]
    parts = [
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>",
        "<title>Follow-up comparison</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>Follow-up: subject {fmt(', '.join(doc['subjects']))}</h1>",
        f"<p class=muted>{len(ses)} sessions ordered by recording date · "
        f"{fmt(doc['generated_by'])}</p>",
    ]
    if doc["forced"]:
        parts.append(
            "<div class=repeat><b>Different subjects</b> compared on request (--force): "
            "differences are between people, not over time.</div>"
        )
    parts.append(
        "<h2>Sessions</h2><table><tr><th class=l>session</th><th class=l>recorded</th>"
        "<th class=l>kind</th><th class=l>id</th><th class=l>report</th></tr>"
    )
    parts += [
        f"<tr><td class=l>{s['label']}</td><td class=l>{fmt(s['date'])}</td>"
        f"<td class=l>{fmt(s['kind'])}</td><td class=l>{fmt(s['session_id'])}</td>"
        f"<td class=l>{fmt(s['source'])}</td></tr>"
        for s in ses
    ]
    parts.append("</table><h2>Measures over time</h2>")
    head = "".join(f"<th>{s['label']}</th>" for s in ses)
    parts.append(
        f"<table><tr><th class=l>measure</th>{head}<th>change from first</th></tr>"
        + "".join(
            f"<tr><td class=l>{fmt(label)}</td>"
            + "".join(f"<td>{c}</td>" for c in cells)
            + f"<td>{c}</td></tr>"
            for label, cells, c in _rows(doc)
        )
        + "</table>"
    )
    parts.append(f"<p class=muted>* = the CI of the change excludes 0. {fmt(doc['method'])}.</p>")
    found = change_lines(doc)
    parts.append("<h2>Changes whose CI excludes 0</h2>")
    parts += [f"<div class=flag>{fmt(x)}</div>" for x in found] or [
        "<div class=ok>No change whose 95 % CI excludes 0.</div>"
    ]
    plot = _plot(doc)
    if plot:
        parts += ["<h2>Side by side over time (95 % CI)</h2>", plot]
    for s in ses:
        if s["repeat_test"]:
            parts.append(f"<div class=flag>{s['label']}: the ROM report asks to repeat the test"
                         "</div>")  # fmt: skip
    parts.append("</body></html>")
    return "\n".join(parts)


def write_compare(doc: Mapping[str, Any], out_dir: str | Path) -> dict[str, Path]:
    """Write ``compare.html`` and ``compare.json`` (last) into ``out_dir`` as one set."""
    parts = {
        "compare.html": render_compare_html(doc),
        "compare.json": json.dumps(doc, indent=1, allow_nan=False) + "\n",
    }
    paths = write_file_set(out_dir, parts, last="compare.json")
    return {"html": paths["compare.html"], "json": paths["compare.json"]}
