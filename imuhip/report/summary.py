"""The report's first screen in plain words, from the report dictionary alone.

Which hip is restricted and by how much (with its 95 % CI), how sure, whether the pelvis and lumbar
spine compensate, and how good the data were; banners for damaged or partial recordings and for
low stride counts. Metric code names stay in the JSON/CSV; the page shows :data:`LABELS`.
"""

from __future__ import annotations

import html
import math
import re
from dataclasses import dataclass, field
from typing import Any, Final

from imuhip.gait.assumptions import off_site_note
from imuhip.gait.compensation import compensation_finding
from imuhip.gait.events import MAX_HIP_ROTATION_EXCURSION_DEG
from imuhip.gait.norms import ASYMMETRY_MIN_DEG, GAIT_NORMS, NORM_FLAG_MIN_STRIDES

__all__ = [
    "LABELS",
    "MIN_VALID_STRIDES",
    "FirstScreen",
    "first_screen",
    "first_screen_html",
    "flag_message",
    "label",
    "plain_note",
]

MIN_VALID_STRIDES: Final = 10
"""Fewer valid strides than this on a side gets a low-count banner (session means and bootstrap
CIs of fewer strides move by more than the typical 1–2° stride-to-stride SD of an excursion)."""

LABELS: Final = {
    "hip_rotation_excursion_deg": "Hip rotation excursion (°)",
    "hip_ir_peak_deg": "Hip internal rotation peak (°)",
    "hip_er_peak_deg": "Hip external rotation peak (°)",
    "hip_ir_at_toe_off_deg": "Hip internal rotation at toe-off (°)",
    "hip_flexion_range_deg": "Hip flexion range (°)",
    "pelvis_rotation_range_deg": "Pelvis rotation range (°)",
    "pelvis_obliquity_range_deg": "Pelvis obliquity range (°)",
    "pelvis_tilt_range_deg": "Pelvis tilt range (°)",
    "lumbar_rotation_range_deg": "Lumbar rotation range (°)",
    "lumbar_lateral_bending_range_deg": "Lumbar side-bending range (°)",
    "lumbar_flexion_range_deg": "Lumbar flexion range (°)",
    "stride_time_s": "Stride time (s)",
    "cadence_steps_min": "Cadence (steps/min)",
    "stance_pct": "Stance (% of stride)",
    "side": "Side",
    "stride": "Stride",
    "ic_s": "Initial contact (s)",
    "next_ic_s": "Next initial contact (s)",
    "toe_off_s": "Toe-off (s)",
    "valid": "Valid",
    "exclusion": "Excluded because",
    "heading_change_deg": "Heading change (°)",
    "hip_lumbar_compensation_index": "Hip–lumbar compensation index",
}


def label(code: str) -> str:
    """Human name of a metric or column code (the code itself, de-underscored, if unknown)."""
    return LABELS.get(code, code.replace("_", " "))


def flag_message(message: str, metric: str) -> str:
    """A flag's message with the metric's human name instead of its code name."""
    return message.replace(metric, label(metric).removesuffix(" (°)")) if metric else message


_RANGE_S = re.compile(r"(-?\d+(?:\.\d+)?)-(-?\d+(?:\.\d+)?) s\b")


def _num(s: str) -> str:
    v = float(s)
    return f"{abs(v) if v == 0 else v:.1f}"  # no "-0.0"


def plain_note(text: str) -> str:
    """A quality note with time ranges written ``12.0–13.5 s`` (``at 0.0 s`` for one instant)."""

    def sub(m: re.Match[str]) -> str:
        a, b = _num(m.group(1)), _num(m.group(2))
        return f"at {a} s" if a == b else f"{a}–{b} s"

    return _RANGE_S.sub(sub, text)


@dataclass(frozen=True, slots=True)
class FirstScreen:
    """Plain-language lines of the first screen (text, not HTML) and its banners."""

    headline: str
    how_sure: str
    compensation: str
    trunk: str
    data_quality: str
    banners: list[tuple[str, str]] = field(default_factory=list)  # (id, text)


def implausible_note(side: str, n: int) -> str:
    """Why ``n`` strides of ``side`` were excluded as ``implausible`` and what to check."""
    return (
        f"{side}: {n} stride(s) left out, hip rotation excursion above "
        f"{MAX_HIP_ROTATION_EXCURSION_DEG:g}° (beyond any hip's range of motion): check "
        f"thigh_{side[0]}'s strap and calibration"
    )


def _f(v: Any, nd: int = 1) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "n/a"
    return f"{v:.{nd}f}".replace("-", "−")


def _mean(d: dict[str, Any], side: str, key: str) -> float | None:
    v = d["metrics"]["per_side"].get(side, {}).get(key)
    return v["mean"] if v and v.get("n") else None


def _headline(d: dict[str, Any]) -> tuple[str, str, str | None]:
    """(headline, how sure, restricted side or None)."""
    key = "hip_rotation_excursion_deg"
    left, right = _mean(d, "left", key), _mean(d, "right", key)
    if left is None or right is None:
        have = "left" if left is not None else "right" if right is not None else None
        if have is None:
            return "No hip rotation could be measured (no valid strides).", "", None
        v = left if left is not None else right
        return (
            f"Only the {have} hip could be measured: rotation excursion {_f(v)}°.",
            "No left–right comparison is possible.",
            None,
        )
    a = d["asymmetry"].get(key) or {}
    diff, lo, hi = a.get("right_minus_left"), a.get("ci95_low"), a.get("ci95_high")
    ci = f"95 % CI {_f(lo)} to {_f(hi)}" if lo is not None and hi is not None else "no CI"
    n = f"{a.get('n_left', 0)} left and {a.get('n_right', 0)} right strides"
    norm = GAIT_NORMS[key]
    significant = bool(a.get("significant"))
    if (
        significant
        and diff is not None
        and lo is not None
        and hi is not None
        and (abs(diff) >= ASYMMETRY_MIN_DEG)
    ):
        side, other = ("right", "left") if diff < 0 else ("left", "right")
        v_s, v_o = (right, left) if side == "right" else (left, right)
        if side == "left":  # restricted minus other side, and its CI, for either side
            diff, lo, hi = -diff, -hi, -lo
            ci = f"95 % CI {_f(lo)} to {_f(hi)}"
        typical = f"{norm.low:g}–{norm.high:g}°"
        out_of = [
            f"{'below' if v < norm.low else 'above'} the typical {typical} on the {s} side"
            for s, v in ((side, v_s), (other, v_o))
            if v < norm.low or v > norm.high
        ]
        head = (
            f"{side.capitalize()} hip rotation reduced: {_f(v_s)}° vs {_f(v_o)}° on the {other} "
            f"side ({_f(diff)}°, {ci})" + "".join(f", {o}" for o in out_of) + "."
        )
        n_min = min(int(a.get("n_left", 0)), int(a.get("n_right", 0)))
        if n_min < MIN_VALID_STRIDES:
            sure = (
                f"Uncertain: the 95 % CI excludes 0, but from only {n}; repeat with a longer "
                "straight walk before acting on it."
            )
        else:
            sure = (
                f"Clear: the 95 % CI excludes 0 and the difference exceeds {ASYMMETRY_MIN_DEG:g}° "
                f"({n}). Excursions do not depend on the sensor calibration offset; IMU hip "
                "rotation has ~6° error against motion capture in absolute terms."
            )
        return head, sure, side
    low = [s for s, v in (("left", left), ("right", right)) if v < norm.low]
    if low:
        which = " and ".join(low)
        head = (
            f"Hip rotation below the typical {norm.low:g}–{norm.high:g}° on the {which} "
            f"side{'s' if len(low) > 1 else ''}: left {_f(left)}°, right {_f(right)}°; "
            f"no side clearly more restricted (right − left {_f(diff)}°, {ci})."
        )
    else:
        head = (
            f"No hip restricted: rotation excursion left {_f(left)}°, right {_f(right)}° "
            f"(right − left {_f(diff)}°, {ci}; typical {norm.low:g}–{norm.high:g}°)."
        )
    if lo is None or hi is None:
        why = "no 95 % CI without 2 strides a side"
    elif not significant:
        why = "the 95 % CI includes 0"
    else:
        why = f"the difference is below the {ASYMMETRY_MIN_DEG:g}° that is actionable"
    return head, f"No side difference to act on: {why} ({n}).", None


def _trunk(d: dict[str, Any]) -> str:
    parts = []
    for k in ("pelvis_rotation_range_deg", "lumbar_rotation_range_deg"):
        v = d["metrics"]["trunk"].get(k)
        if v and v.get("n"):
            nm = GAIT_NORMS.get(k)
            typ = f" (typical {nm.low:g}–{nm.high:g}°)" if nm else ""
            if nm and v["n"] < NORM_FLAG_MIN_STRIDES:
                typ = f" ({v['n']} stride{'s' * (v['n'] > 1)}: not compared with the typical range)"
            parts.append(f"{label(k).removesuffix(' (°)').lower()} {_f(v['mean'])}°{typ}")
    return ("Trunk: " + "; ".join(parts) + ".") if parts else "Trunk: no pelvis sensor."


def _quality(d: dict[str, Any]) -> tuple[str, list[tuple[str, str]]]:
    q = d["quality"]
    st = d["gait"]["strides"]
    valid = ", ".join(f"{s} {v['valid']} of {v['total']}" for s, v in st.items()) or "none"
    sensors = q.get("sensors", {})
    loss = max((v.get("loss_fraction", 0.0) for v in sensors.values()), default=0.0)
    gaps = sum(int(v.get("n_gaps", 0) or 0) for v in sensors.values())
    text = (
        f"Data: valid strides {valid}; packet loss up to {100 * loss:.1f} % per sensor, "
        f"{gaps} gap{'s' if gaps != 1 else ''}."
    )
    banners: list[tuple[str, str]] = []
    damage = [plain_note(str(w)) for w in q.get("recording_warnings", [])]
    if q.get("recording_complete") is False or damage:
        banners.append(
            (
                "banner-damaged",
                "Damaged or partial recording: "
                + ("; ".join(damage) if damage else "the recording is incomplete")
                + ". The numbers below come from the part that could be read.",
            )
        )
    dropped = q.get("dropped_sensors") or {}
    if dropped:
        banners.append(
            (
                "banner-dropped",
                "Sensors dropped: "
                + "; ".join(f"{p} ({v['stage']}: {v['reason']})" for p, v in dropped.items())
                + ". The analysis went on without them.",
            )
        )
    # "static window: fallback: no standing ..." -> "static window: no standing ..."
    fallbacks = [
        plain_note(str(w).replace(": fallback: ", ": ", 1))
        for w in q.get("calibration_fallbacks", [])
    ]
    if fallbacks:
        banners.append(("banner-calibration", "Calibration fallback: " + "; ".join(fallbacks)))
    bad = [
        implausible_note(side, int(v.get("excluded", {}).get("implausible", 0)))
        for side, v in st.items()
        if v.get("excluded", {}).get("implausible")
    ]
    if bad:
        banners.append(("banner-placement", "Strides left out: " + "; ".join(bad)))
    sites = [off_site_note(p, s) for p, s in (q.get("off_site_sensors") or {}).items()]
    if sites:
        banners.append(("banner-placement", "Sensor site: " + "; ".join(sites)))
    placement = [plain_note(str(w)) for w in q.get("placement_warnings", [])]
    if placement:
        banners.append(("banner-placement", "Sensor placement suspect: " + "; ".join(placement)))
    few = [f"{s} {v['valid']}" for s, v in st.items() if v["valid"] < MIN_VALID_STRIDES]
    if few:
        banners.append(
            (
                "banner-low-strides",
                f"Few valid strides ({', '.join(few)}; at least {MIN_VALID_STRIDES} per side "
                "recommended): means and confidence intervals are uncertain; record a longer "
                "straight walk.",
            )
        )
    return text, banners


def first_screen(d: dict[str, Any]) -> FirstScreen:
    """The plain-language summary of a report dictionary (:func:`report_dict`)."""
    head, sure, restricted = _headline(d)
    comp = d["compensation"]
    found = compensation_finding(
        {s: c["index"] for s, c in comp["per_side"].items() if c["index"] is not None},
        float(comp["band"]),
        restricted,
    )
    if not comp["per_side"]:
        need = comp.get("min_strides")
        comp_text = (
            "Compensation: not assessed (needs the pelvis sensor and valid strides)."
            if need is None or not any(v.get("valid") for v in d["gait"]["strides"].values())
            else f"Compensation: not assessed (needs {need} valid strides a side, walked "
            "straight, with the pelvis sensor)."
        )
    else:
        comp_text = found.message[0].upper() + found.message[1:] + "."
    quality, banners = _quality(d)
    return FirstScreen(head, sure, comp_text, _trunk(d), quality, banners)


def first_screen_html(d: dict[str, Any]) -> str:
    """The first screen as an HTML fragment (banners, then the finding)."""
    fs = first_screen(d)
    out = [f'<div class="banner" id="{i}">{html.escape(t)}</div>' for i, t in fs.banners]
    out.append('<section class="finding" id="finding">')
    out.append(f'<p class="headline">{html.escape(fs.headline)}</p><ul>')
    out += [
        f"<li>{html.escape(t)}</li>"
        for t in (fs.how_sure, fs.compensation, fs.trunk, fs.data_quality)
        if t
    ]
    out.append("</ul></section>")
    return "\n".join(out)
