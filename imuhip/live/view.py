"""Terminal view of a live session (rich), plain status lines, and the end-of-session summary.

Per sensor: connection state, battery, achieved rate, loss, clock drift and jitter; per side the
current hip internal rotation and its excursion over the last seconds; elapsed time. Degrees
appear here only (the display edge).
"""

from __future__ import annotations

from typing import IO, Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from imuhip.live.processor import LiveProcessor
from imuhip.live.session import LiveResult, LiveSnapshot
from imuhip.live.strides import MIN_VALID_STRIDES_PER_SIDE

__all__ = ["LiveView", "render", "status_line", "stride_status", "summary_text"]

_STATE_STYLE = {
    "streaming": "green",
    "connecting": "yellow",
    "reconnecting": "yellow",
    "lost": "red",
    "failed": "bold red",
    "stopped": "dim",
}


def _fmt(v: float | None, spec: str, unit: str = "") -> str:
    return "–" if v is None else f"{v:{spec}}{unit}"


def _sensor_rows(snap: LiveSnapshot) -> list[dict[str, Any]]:
    metrics = snap.processor.metrics() if snap.processor is not None else {}
    rows = []
    for name, link in snap.links.items():
        m = metrics.get(name, {})
        rows.append(
            {
                "sensor": name,
                "state": link.state,
                "battery": link.battery_pct,
                "rate": m.get("achieved_rate_hz"),
                "loss": m.get("loss_fraction"),
                "lost": m.get("lost_packets"),
                "gaps": len(m.get("gaps", [])),
                "drift": m.get("clock_drift_ppm"),
                "jitter": m.get("clock_jitter_ms"),
                "drops": link.queue_drops + link.oversized,
                "errors": sum(m.get("protocol_errors", {}).values()),
                "reconnects": link.reconnects,
                "error": link.error or snap.failed.get(name),
            }
        )
    return rows


def _remaining(snap: LiveSnapshot) -> str:
    r = snap.remaining_s
    return "" if r is None else f", {max(r, 0.0):.0f} s remaining"


def stride_status(proc: LiveProcessor | None) -> tuple[str, bool]:
    """One line on the strides so far: valid per side and whether the report will be meaningful.

    Returns the text and whether both sides have enough valid strides
    (:data:`imuhip.live.strides.MIN_VALID_STRIDES_PER_SIDE`).
    """
    st = None if proc is None else proc.strides
    if st is None:
        return "strides: not counted (no fusion)", False
    n = {side: s.valid for side, s in st.sides.items()}
    counts = ", ".join(f"{side} {v}" for side, v in n.items())
    if st.enough:
        return f"valid strides: {counts} — enough data for the report", True
    need = ", ".join(
        f"{side} {MIN_VALID_STRIDES_PER_SIDE - v}"
        for side, v in n.items()
        if v < MIN_VALID_STRIDES_PER_SIDE
    )
    return (
        f"valid strides: {counts} — not enough yet (need {MIN_VALID_STRIDES_PER_SIDE} per "
        f"side; {need} more)",
        False,
    )


def render(snap: LiveSnapshot) -> Group:
    """The live view for one snapshot."""
    t = Table(title=f"imuhip live — {snap.elapsed_s:6.1f} s{_remaining(snap)}", expand=False)
    for col in (
        "sensor",
        "state",
        "battery",
        "rate",
        "loss",
        "gaps",
        "drift",
        "jitter",
        "dropped",
        "bad pkts",
        "reconn.",
    ):
        t.add_column(col, justify="left" if col in ("sensor", "state") else "right")
    notes = []
    for r in _sensor_rows(snap):
        t.add_row(
            r["sensor"],
            Text(r["state"], style=_STATE_STYLE.get(r["state"], "")),
            _fmt(r["battery"], "d", " %"),
            _fmt(r["rate"], ".0f", " Hz"),
            _fmt(None if r["loss"] is None else 100 * r["loss"], ".2f", " %"),
            str(r["gaps"]),
            _fmt(r["drift"], "+.0f", " ppm"),
            _fmt(r["jitter"], ".1f", " ms"),
            Text(str(r["drops"]), style="bold red" if r["drops"] else ""),
            str(r["errors"]),
            str(r["reconnects"]),
        )
        if r["error"] and r["state"] in ("failed", "lost", "reconnecting"):
            notes.append(Text(f"{r['sensor']}: {r['error']}", style="red"))
    hip = Table(title="hip internal rotation (+ internal)", expand=False)
    hip.add_column("side")
    # angles are final (the offline analysis's) 4-6 s after the data: the heading anchor after
    # them must be known (imuhip.live.hips); shown 6 s behind so the number moves steadily
    hip.add_column("6 s ago", justify="right")
    hip.add_column("excursion (5 s)", justify="right")
    hip.add_column("flexion", justify="right")
    hip.add_column("valid strides", justify="right")
    hip.add_column("stride excursion last / mean", justify="right")
    proc = snap.processor
    for side in ("left", "right"):
        deg = proc.hip_deg.get(side) if proc is not None else None
        exc = proc.hip_ir_excursion_deg(side) if proc is not None else None
        ss = proc.strides.sides[side] if proc is not None and proc.strides is not None else None
        n_txt = "–" if ss is None else f"{ss.valid} of {ss.total}"
        s_txt = (
            "–"
            if ss is None or ss.last_excursion_deg is None
            else f"{ss.last_excursion_deg:.1f}° / {_fmt(ss.mean_excursion_deg, '.1f', '°')}"
        )
        if deg is None:
            label = "calibrating…" if proc is not None and proc.sensors else "–"
            if proc is not None and side in proc.reconverging:
                label = "re-converging…"
            hip.add_row(side, label, "–", "–", n_txt, s_txt)
        else:
            hip.add_row(
                side, f"{deg[2]:+6.1f}°", _fmt(exc, ".1f", "°"), f"{deg[0]:+6.1f}°", n_txt, s_txt
            )
    text, ok = stride_status(proc)
    status = Text(text, style="bold green" if ok else "yellow")
    return Group(t, hip, status, *notes)


def status_line(snap: LiveSnapshot) -> str:
    """One plain line for non-TTY output."""
    parts = [f"t={snap.elapsed_s:6.1f}s"]
    if snap.remaining_s is not None:
        parts.append(f"remaining={max(snap.remaining_s, 0.0):.0f}s")
    for r in _sensor_rows(snap):
        loss = "–" if r["loss"] is None else f"{100 * r['loss']:.1f}%"
        rate = "–" if r["rate"] is None else f"{r['rate']:.0f}Hz"
        parts.append(f"{r['sensor']}:{r['state']} {rate} loss={loss} drops={r['drops']}")
    proc = snap.processor
    if proc is not None:
        for side in ("left", "right"):
            deg = proc.hip_deg.get(side)
            if deg is not None:
                parts.append(f"hip_ir_{side}={deg[2]:+.1f}deg")
            elif side in proc.reconverging:
                parts.append(f"hip_ir_{side}=re-converging")
        if proc.strides is not None:
            for side, ss in proc.strides.sides.items():
                exc = _fmt(ss.mean_excursion_deg, ".1f", "deg")
                parts.append(f"strides_{side}={ss.valid}/{ss.total} excursion_{side}={exc}")
            parts.append("enough_data=" + ("yes" if proc.strides.enough else "no"))
    return " | ".join(parts)


class LiveView:
    """A rich live display (``enabled=False``: periodic plain lines instead)."""

    def __init__(self, *, enabled: bool, stream: IO[str], plain_every_s: float = 2.0) -> None:
        self.enabled = enabled
        self.stream = stream
        self.plain_every_s = plain_every_s
        self._live: Live | None = None
        self._last_plain = -1e9

    def __enter__(self) -> LiveView:
        if self.enabled:
            self._live = Live(console=Console(file=self.stream), refresh_per_second=4)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.__exit__(None, None, None)
            self._live = None

    def update(self, snap: LiveSnapshot) -> None:
        """Show one snapshot."""
        if self._live is not None:
            self._live.update(render(snap))
        elif snap.elapsed_s - self._last_plain >= self.plain_every_s:
            self._last_plain = snap.elapsed_s
            self.stream.write(status_line(snap) + "\n")
            self.stream.flush()


def summary_text(res: LiveResult) -> str:
    """End-of-session summary: recording path, packets, loss, gaps, clock per sensor."""
    lines = [f"recording: {res.path}", f"duration: {res.duration_s:.1f} s (session time)"]
    lines.append(f"packets recorded: {res.packets_recorded}")
    for p, m in res.metrics.items():
        link = res.links.get(p, {})
        gaps = m["gaps"]
        gap_txt = ", ".join(f"{g[0]}+{g[1]}" for g in gaps[:6]) + (" …" if len(gaps) > 6 else "")
        drift = m["clock_drift_ppm"]
        jitter = m["clock_jitter_ms"]
        lines.append(
            f"  {p}: {m['packets_decoded']} packets, {m['samples_decoded']} samples, "
            f"lost {m['lost_packets']} packets / {m['lost_samples']} samples "
            f"({100 * m['loss_fraction']:.2f} %), {len(gaps)} gap(s) [{gap_txt}], "
            f"duplicates {m['duplicates']}, reordered {m['reordered']}, "
            f"bad packets {sum(m['protocol_errors'].values())}, "
            f"dropped {link.get('queue_drops', 0) + link.get('oversized', 0)}, "
            f"reconnects {link.get('reconnects', 0)}, "
            f"clock drift {_fmt(drift, '+.1f', ' ppm')}, jitter {_fmt(jitter, '.2f', ' ms')}"
        )
    for p, err in res.failed.items():
        lines.append(f"  {p}: NOT RECORDED / FAILED: {err}")
    if res.strides:
        parts = [
            f"{side} {s['valid']} valid of {s['total']}"
            + (
                ""
                if s["mean_excursion_deg"] is None
                else f" (hip rotation excursion {s['mean_excursion_deg']:.1f}°)"
            )
            for side, s in res.strides.items()
        ]
        lines.append("strides counted live (after the calibration period): " + ", ".join(parts))
    if res.latency_ms:
        lines.append(
            f"notification -> hip angle latency: p50 {res.latency_ms['p50']:.2f} ms, "
            f"p99 {res.latency_ms['p99']:.2f} ms"
        )
    return "\n".join(lines)
