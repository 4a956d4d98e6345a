"""``imuhip info REC``: what a recording holds and how healthy its data is."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from imuhip.cli.commands._common import load_recording, session_summary
from imuhip.ingest.decode import decode_session
from imuhip.ingest.recording import warning_lines

NAME = "info"
HELP = "summarise a recording: sensors, duration, rates, packet loss, gaps, errors, events"

_ROWS: tuple[tuple[str, str], ...] = (
    ("model", "model"),
    ("serial", "serial"),
    ("firmware", "firmware"),
    ("protocol", "protocol"),
    ("duration_s", "duration [s]"),
    ("samples", "samples"),
    ("nominal_rate_hz", "nominal rate [Hz]"),
    ("achieved_rate_hz", "achieved rate [Hz]"),
    ("packets_received", "packets received"),
    ("packets_lost", "packets lost"),
    ("packets_lost_pct", "packets lost [%]"),
    ("samples_lost", "samples lost"),
    ("gaps", "gaps"),
    ("longest_gap_s", "longest gap [s]"),
    ("duplicates", "duplicates"),
    ("protocol_errors_total", "protocol errors"),
    ("clock_steps", "clock steps"),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``REC [--json]``."""
    parser.add_argument("recording", metavar="REC", help="recording file (.imrec)")
    parser.add_argument("--json", action="store_true", help="machine-readable JSON on stdout")


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3f}".rstrip("0").rstrip(".") if v != int(v) else f"{v:.0f}"
    return "" if v is None else str(v)


def _dropped(counts: dict[str, int]) -> str:
    total = sum(counts.values())
    return f", {total} notifications DROPPED before recording (data lost)" if total else ""


def render(summary: dict[str, Any]) -> str:
    """The human-readable report: session lines, one column per sensor, events, warnings."""
    lines = [
        f"session   {summary['session_id']}",
        f"subject   {summary['subject']}",
        f"started   {summary['start_wall_time']}",
        f"duration  {_fmt(summary['host_duration_s'])} s (host clock), "
        f"{summary['packets']} packets, {'complete' if summary['complete'] else 'INCOMPLETE'}"
        + _dropped(summary.get("notifications_dropped", {})),
    ]
    if summary["software"]:
        lines.append(f"software  {summary['software']}")
    sensors = summary["sensors"]
    table = [["", *(s["placement"] for s in sensors)]]
    for key, label in _ROWS:
        table.append([label, *(_fmt(s[key]) for s in sensors)])
    reasons = sorted({r for s in sensors for r in s["protocol_errors"]})
    for r in reasons:
        table.append([f"  {r}", *(_fmt(s["protocol_errors"].get(r, 0)) for s in sensors)])
    widths = [max(len(row[j]) for row in table) for j in range(len(table[0]))]
    lines.append("")
    for row in table:
        cells = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        lines.append("  ".join(cells).rstrip())
    lines.append("")
    ev = summary["events"]
    lines.append("events    " + (", ".join(f"{k} {v}" for k, v in ev.items()) if ev else "none"))
    for text in summary["annotations"]:
        lines.append(f"  note: {text}")
    skipped = summary["size_bytes"] - summary["valid_bytes"]
    for w in warning_lines(summary["warnings"], skipped_bytes=skipped):
        lines.append(f"warning: {w}")
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    """Print the summary (table or JSON)."""
    rec = load_recording(args.recording)
    samples = decode_session(rec.packets, rec.meta)
    summary = session_summary(rec, samples)
    summary["file"] = str(args.recording)
    if args.json:
        sys.stdout.write(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write(render(summary))
    return 0
