"""Helpers shared by the recording commands (``info``, ``replay``, ``export``); not a command."""

from __future__ import annotations

import argparse
import math
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from imuhip.errors import ImuhipError
from imuhip.ingest.recording import Recording, dropped_notifications, read_recording
from imuhip.types import ImuSamples, SensorMeta

__all__ = [
    "load_recording",
    "positive_float",
    "prepare_output_dir",
    "prepare_output_file",
    "sensor_summary",
    "session_summary",
]


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (math.isfinite(v) and v > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return v


def load_recording(path: str) -> Recording:
    """Read ``path``; a directory or a missing file is a user error (one line, exit 1)."""
    p = Path(path)
    if p.is_dir():
        raise ImuhipError(f"{p} is a directory, not a recording (.imrec) file")
    if p.name.endswith(".imori.npz") and p.is_file():
        raise ImuhipError(
            f"{p} is an orientation session (imuhip import xsens), not a sensor recording: "
            "use `imuhip analyze` or `imuhip export` on it"
        )
    return read_recording(p)


def _probe_writable(folder: Path, what: str, target: Path) -> None:
    """Create and delete a probe file in ``folder``; an ``ImuhipError`` naming ``what`` if not."""
    import tempfile

    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".imuhip-probe-"):
            pass
    except OSError as err:
        where = f"{target}" if target == folder else f"{target}: folder {folder}"
        raise ImuhipError(f"{what} {where} is not writable ({err.strerror or err})") from None


def prepare_output_dir(path: Path, what: str = "--out") -> Path:
    """Create the output folder ``path`` (and parents) before long work; check it is writable.

    A path that exists as a file, cannot be created or is not writable is a user error
    (``ImuhipError`` naming ``what`` and the path), found before the analysis rather than after.
    """
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise ImuhipError(f"{what} {p} exists and is not a folder")
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ImuhipError(f"{what} {p}: cannot create the folder ({err.strerror or err})") from None
    _probe_writable(p, what, p)
    return p


def prepare_output_file(path: Path, what: str = "--out") -> Path:
    """Check before any long work that the file ``path`` can be written: its folder exists and is
    writable and ``path`` is not a folder (``ImuhipError`` naming ``what`` otherwise)."""
    p = Path(path)
    if p.is_dir():
        raise ImuhipError(f"{what} {p} is a folder, not a file")
    parent = p.parent
    if not parent.is_dir():
        raise ImuhipError(f"{what} {p}: folder {parent} does not exist")
    _probe_writable(parent, what, p)
    return p


def _r(x: float, nd: int = 6) -> float:
    return float(round(x, nd))


def sensor_summary(meta: SensorMeta, s: ImuSamples) -> dict[str, Any]:
    """Per-sensor numbers for ``info``/``replay``: identity, duration, rate, loss, errors.

    ``duration_s`` is the device-clock span of the received samples plus one sample period;
    ``achieved_rate_hz = samples / duration_s`` (below nominal when samples were lost);
    ``packets_lost_pct = 100 * lost / (decoded + lost)``.
    """
    st = s.stats
    n = len(s)
    rate = float(meta.rate_hz)
    duration_s = float(s.t_dev_s[-1] - s.t_dev_s[0]) + 1.0 / rate if n else 0.0
    expected_pkts = st.packets_decoded + st.lost_packets
    longest = max((g.n_samples for g in st.gaps), default=0)
    return {
        "placement": meta.placement,
        "model": meta.model,
        "serial": meta.serial,
        "firmware": meta.firmware,
        "address": meta.address,
        "protocol": f"{meta.protocol} v{meta.protocol_version}",
        "has_mag": meta.has_mag,
        "nominal_rate_hz": rate,
        "duration_s": _r(duration_s),
        "samples": n,
        "achieved_rate_hz": _r(n / duration_s if duration_s > 0 else 0.0, 4),
        "packets_received": st.packets_received,
        "packets_decoded": st.packets_decoded,
        "packets_lost": st.lost_packets,
        "packets_lost_pct": _r(
            100.0 * st.lost_packets / expected_pkts if expected_pkts else 0.0, 4
        ),
        "samples_lost": st.lost_samples,
        "gaps": len(st.gaps),
        "longest_gap_samples": longest,
        "longest_gap_s": _r(longest / rate),
        "duplicates": st.duplicates,
        "reordered": st.reordered,
        "protocol_errors": dict(sorted(st.protocol_errors.items())),
        "protocol_errors_total": int(sum(st.protocol_errors.values())),
        "saturated_samples": int(np.count_nonzero(s.saturated)),
        "clock_resyncs": getattr(st, "clock_resyncs", 0),
        "clock_steps": getattr(st, "clock_steps", 0),
    }


def session_summary(rec: Recording, samples: Mapping[str, ImuSamples]) -> dict[str, Any]:
    """Session-level summary of a recording and its decoded sensors (JSON-ready)."""
    m = rec.meta
    ns = [p.host_rx_ns for p in rec.packets]
    kinds = Counter(e.kind for e in rec.events)
    return {
        "session_id": m.session_id,
        "subject": m.subject,
        "start_wall_time": m.start_wall_time,
        "software": m.software,
        "notes": m.notes,
        "complete": rec.complete,
        "size_bytes": rec.size_bytes,
        "valid_bytes": rec.valid_bytes,
        "packets": len(rec.packets),
        "host_duration_s": _r((max(ns) - min(ns)) * 1e-9) if ns else 0.0,
        "events": dict(sorted(kinds.items())),
        "annotations": [e.data.get("text", "") for e in rec.events if e.kind == "annotation"],
        "warnings": list(rec.warnings),
        # notifications dropped by the host before recording (queue full): lost data
        "notifications_dropped": {
            k: v["count"] for k, v in dropped_notifications(rec.events).items()
        },
        "sensors": [sensor_summary(s, samples[s.placement]) for s in m.sensors],
    }
