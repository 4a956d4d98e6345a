"""A recording read into per-sensor arrays (:func:`read_packet_arrays`): the analysis fast path.

The same packets, events, warnings and completeness as
:func:`~imuhip.ingest.recording.reader.read_recording`, without one
:class:`~imuhip.types.RawPacket` per notification.
"""

from __future__ import annotations

import mmap
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from imuhip.ingest.recording.format import FRAME_HEADER_LEN
from imuhip.ingest.recording.loss import dropped_warnings
from imuhip.ingest.recording.parser import _NO_STOP, _log_warnings
from imuhip.ingest.recording.reader import _read_mapped, _scan_file
from imuhip.types import RawPacket, SessionEvent, SessionMeta


@dataclass(slots=True)
class PacketArrays:
    """A recording read into per-sensor arrays (no object per packet): the analysis fast path.

    Attributes
    ----------
    meta : SessionMeta
    payloads : dict of str to PackedPayloads
        Per sensor (every sensor of ``meta``), its packet payloads in file (= receive) order, as
        slices of one read-only buffer in which each sensor's payloads lie together.
    host_rx_ns : dict of str to (P,) int64
        Per sensor, the host receive times of those packets.
    events, warnings, complete, valid_bytes, size_bytes
        As in :class:`Recording`.
    """

    meta: SessionMeta
    payloads: dict[str, Any]
    host_rx_ns: dict[str, npt.NDArray[np.int64]]
    events: list[SessionEvent]
    warnings: list[str] = field(default_factory=list)
    complete: bool = False
    valid_bytes: int = 0
    size_bytes: int = 0


def read_packet_arrays(path: str | os.PathLike[str]) -> PacketArrays:
    """Read a recording into per-sensor payload arrays (see :class:`PacketArrays`).

    The same packets, events, warnings and completeness as :func:`read_recording`, without one
    :class:`~imuhip.types.RawPacket` per notification: the file is memory-mapped, consecutive
    intact packet frames are located and CRC-checked by one compiled pass, and each sensor's
    payloads are then copied together into one buffer (file order per sensor; the mapping is
    closed before returning); event frames are read one by one, and from the first damaged or
    unexpected frame on, the rest of the file is read by :func:`read_recording`'s parser (so
    damage is reported identically).

    Raises
    ------
    FileNotFoundError, RecordingError
        As :func:`read_recording`.
    """
    return _read_mapped(Path(path), _packet_arrays)


def _packet_arrays(
    p: Path, meta: SessionMeta, hdr_len: int, whole: mmap.mmap | bytes
) -> PacketArrays:
    """:func:`read_packet_arrays` on the file's bytes ``whole`` (offsets are file offsets)."""
    from imuhip.ingest import _decode_kernels as kd
    from imuhip.ingest.decode import PackedPayloads

    sensors = tuple(s.placement for s in meta.sensors)
    n_sensors = len(sensors)
    end = len(whole)
    sc = _scan_file(whole, hdr_len, sensors)
    events, tail, valid, cols = sc.events, sc.tail, sc.valid, sc.frames
    warnings: list[str] = []
    k = cols.n
    f_start, f_sensor, f_ns, f_len = cols.start[:k], cols.sensor[:k], cols.ns[:k], cols.length[:k]
    extra: list[RawPacket] = []
    if tail is not None:
        valid += tail.valid
        warnings.extend(tail.warnings)
        for it in tail.items:
            if type(it) is RawPacket:
                extra.append(it)
            else:
                events.append(it)  # type: ignore[arg-type]
    # each sensor's payloads together, file order: [frames read above..., packets after damage...]
    index = {name: i for i, name in enumerate(sensors)}
    extra_sensor = np.array([index[q.sensor] for q in extra], np.int64)
    extra_len = np.array([len(q.payload) for q in extra], np.int64)
    framed = np.bincount(f_sensor, weights=f_len, minlength=n_sensors).astype(np.int64)
    total = framed + np.bincount(extra_sensor, weights=extra_len, minlength=n_sensors).astype(
        np.int64
    )
    base = np.cumsum(total) - total
    cursor = base + framed  # where each sensor's packets read after damage go
    buf = np.empty(int(total.sum()), np.uint8)
    f_out = np.empty(k, np.int64)
    data = np.frombuffer(whole, np.uint8)
    kd.gather_payloads(data, f_start, f_len, f_sensor, FRAME_HEADER_LEN, base, buf, f_out)
    del data  # no view of the mapping outlives this function
    extra_start = np.empty(len(extra), np.int64)
    for j, q in enumerate(extra):
        s = int(extra_sensor[j])
        a = int(cursor[s])
        buf[a : a + len(q.payload)] = np.frombuffer(q.payload, np.uint8)
        extra_start[j] = a
        cursor[s] = a + len(q.payload)
    buf.flags.writeable = False
    payloads: dict[str, Any] = {}
    host: dict[str, npt.NDArray[np.int64]] = {}
    for i, name in enumerate(sensors):
        sel = np.flatnonzero(f_sensor == i)
        st, ln, hs = f_out[sel], f_len[sel], f_ns[sel]
        mine = np.flatnonzero(extra_sensor == i)
        if len(mine):
            st = np.concatenate([st, extra_start[mine]])
            ln = np.concatenate([ln, extra_len[mine]])
            hs = np.concatenate([hs, np.array([extra[j].host_rx_ns for j in mine], np.int64)])
        payloads[name] = PackedPayloads(buf, st, ln)
        host[name] = hs
    firsts = [int(h.min()) for h in host.values() if len(h)]
    warnings.extend(dropped_warnings(events, min(firsts) if firsts else None))
    meta, clock_lines = _clock_check_arrays(meta, payloads, host)
    warnings.extend(clock_lines)
    complete = any(e.kind == "stop" for e in events)
    if not complete:
        warnings.append(_NO_STOP)
    body_len = end - hdr_len
    _log_warnings(p, warnings, skipped_bytes=body_len - valid)
    return PacketArrays(
        meta=meta,
        payloads=payloads,
        host_rx_ns=host,
        events=events,
        warnings=warnings,
        complete=complete,
        valid_bytes=hdr_len + valid,
        size_bytes=end,
    )


def _clock_check_arrays(
    meta: SessionMeta, payloads: dict[str, Any], host: dict[str, npt.NDArray[np.int64]]
) -> tuple[SessionMeta, list[str]]:
    """Declared rates and device clocks against the packets (:mod:`.clock_check`)."""
    from imuhip.ingest.recording.clock_check import check_clocks, headers_from_buffer

    heads, hosts = {}, {}
    for k, pp in payloads.items():
        st, ln = pp.start, pp.length
        heads[k] = headers_from_buffer(pp.data, st, ln)
        hosts[k] = host[k][ln >= 11]
    return check_clocks(meta, heads, hosts)
