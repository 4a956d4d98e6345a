"""Reading a whole recording into memory (:func:`read_recording`), tolerating damage.

The file is memory-mapped; runs of intact packet frames are located and CRC-checked by one
compiled pass (:func:`imuhip.ingest._decode_kernels.scan_packet_frames`), event frames are read
one by one, and from the first damaged or unexpected frame on the general parser
(:mod:`~imuhip.ingest.recording.parser`) takes over.
"""

from __future__ import annotations

import contextlib
import gc
import mmap
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Protocol, TypeVar

import numpy as np
import numpy.typing as npt

from imuhip.ingest.recording.format import (
    _FRAME_HDR,
    FRAME_EVENT,
    FRAME_HEADER_LEN,
    FRAME_OVERHEAD,
    FRAME_PACKET,
    MAX_PAYLOAD,
    SYNC,
)
from imuhip.ingest.recording.header import _read_header_warned
from imuhip.ingest.recording.loss import dropped_warnings
from imuhip.ingest.recording.parser import (
    _NO_STOP,
    _decode_event,
    _frame_at,
    _log_warnings,
    _parse_no_gc,
    _Parsed,
)
from imuhip.types import RawPacket, SessionEvent, SessionMeta


@dataclass(slots=True)
class Recording:
    """A recording read into memory.

    Attributes
    ----------
    meta : SessionMeta
    packets : list of RawPacket
        Every packet frame, verbatim, in file (= receive) order.
    events : list of SessionEvent
        Every event frame, in file order.
    warnings : list of str
        Damage found: truncation (byte offset), CRC failures (offset, frame number), skipped bytes.
    complete : bool
        The writer closed the file properly (a ``"stop"`` event is present).
    valid_bytes : int
        Bytes of the file that parsed as header or intact frames (== file size when undamaged).
    """

    meta: SessionMeta
    packets: list[RawPacket]
    events: list[SessionEvent]
    warnings: list[str] = field(default_factory=list)
    complete: bool = False
    valid_bytes: int = 0
    size_bytes: int = 0

    def packets_of(self, sensor: str) -> list[RawPacket]:
        """The packets of one sensor, in order."""
        return [p for p in self.packets if p.sensor == sensor]


def read_recording(path: str | os.PathLike[str]) -> Recording:
    """Read a whole recording into memory, tolerating damage.

    A truncated file yields its valid prefix and a warning naming the byte offset where it
    breaks; a damaged frame (CRC mismatch) yields a warning naming its offset and frame number
    (0-based, counted from the first frame after the header), and reading resumes at the next
    intact frame, with the number of skipped bytes in the warning.

    Runs of intact packet frames are located and CRC-checked by one compiled pass over the
    memory-mapped file (as in :func:`read_packet_arrays`); the general frame-by-frame parser reads
    from the first damaged or unexpected frame on.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    RecordingError
        Not a recording (bad magic), unsupported version, or a corrupt header/metadata.
    """
    return _read_mapped(Path(path), _recording)


def _recording(p: Path, meta: SessionMeta, hdr_len: int, whole: mmap.mmap | bytes) -> Recording:
    """:func:`read_recording` on the file's bytes ``whole`` (offsets are file offsets)."""
    sensors = tuple(s.placement for s in meta.sensors)
    sc = _scan_file(whole, hdr_len, sensors)
    k = sc.frames.n
    start = (sc.frames.start[:k] + FRAME_HEADER_LEN).tolist()
    stop = (sc.frames.start[:k] + FRAME_HEADER_LEN + sc.frames.length[:k]).tolist()
    names = np.array(sensors, dtype=object)[sc.frames.sensor[:k]].tolist() if k else []
    was_enabled = gc.isenabled()
    gc.disable()  # only acyclic objects are made here (see _parse_no_gc)
    try:
        payloads = [whole[a:b] for a, b in zip(start, stop, strict=True)]
        packets: list[RawPacket] = list(map(RawPacket, names, sc.frames.ns[:k].tolist(), payloads))
    finally:
        if was_enabled:
            gc.enable()
    del payloads
    events, valid, warnings = sc.events, sc.valid, []
    if sc.tail is not None:
        valid += sc.tail.valid
        warnings = sc.tail.warnings
        for it in sc.tail.items:
            if type(it) is RawPacket:
                packets.append(it)
            else:
                events.append(it)  # type: ignore[arg-type]
    t0 = min((q.host_rx_ns for q in packets[k:]), default=None)
    if k:
        t0 = min(int(sc.frames.ns[:k].min()), t0 if t0 is not None else 1 << 62)
    warnings.extend(dropped_warnings(events, t0))
    meta, clock_lines = _clock_check(meta, packets)
    warnings.extend(clock_lines)
    complete = any(e.kind == "stop" for e in events)
    if not complete:
        warnings.append(_NO_STOP)
    _log_warnings(p, warnings, skipped_bytes=len(whole) - hdr_len - valid)
    return Recording(
        meta=meta,
        packets=packets,
        events=events,
        warnings=warnings,
        complete=complete,
        valid_bytes=hdr_len + valid,
        size_bytes=len(whole),
    )


def _clock_check(meta: SessionMeta, packets: list[RawPacket]) -> tuple[SessionMeta, list[str]]:
    """Declared rates and device clocks against the packets (:mod:`.clock_check`)."""
    from imuhip.ingest.recording.clock_check import check_clocks, headers_from_payloads

    by_sensor: dict[str, list[RawPacket]] = {}
    for q in packets:
        by_sensor.setdefault(q.sensor, []).append(q)
    heads = {k: headers_from_payloads([q.payload for q in v]) for k, v in by_sensor.items()}
    host = {
        k: np.array([q.host_rx_ns for q in v if len(q.payload) >= 11], np.int64)
        for k, v in by_sensor.items()
    }
    return check_clocks(meta, heads, host)


def _scan_frames(data: npt.NDArray[np.uint8], pos: int, n_sensors: int, acc: _FrameCols) -> int:
    """Append the consecutive intact packet frames from ``pos`` to ``acc``; where they stop.

    One compiled pass (:func:`imuhip.ingest._decode_kernels.scan_packet_frames`: sync word, type,
    sensor
    index, length and CRC-32 of each frame); the outputs grow by doubling when full.
    """
    from imuhip.ingest import _decode_kernels as kd

    while True:
        k, stop = kd.scan_packet_frames(
            data,
            pos,
            n_sensors,
            MAX_PAYLOAD,
            kd.CRC32_TABLES,
            acc.start[acc.n :],
            acc.sensor[acc.n :],
            acc.ns[acc.n :],
            acc.length[acc.n :],
        )
        acc.n += int(k)
        pos = int(stop)
        if acc.n < len(acc.start):
            return pos
        acc.grow()


@dataclass(slots=True)
class _FrameCols:
    """Packet frames found so far, file order (preallocated, ``n`` used)."""

    start: npt.NDArray[np.int64]
    sensor: npt.NDArray[np.int64]
    ns: npt.NDArray[np.int64]
    length: npt.NDArray[np.int64]
    n: int = 0

    @classmethod
    def empty(cls, cap: int) -> _FrameCols:
        size = max(cap, 16)
        e = np.empty
        return cls(e(size, np.int64), e(size, np.int64), e(size, np.int64), e(size, np.int64))

    def grow(self) -> None:
        cap = 2 * len(self.start)
        for name in ("start", "sensor", "ns", "length"):
            old = getattr(self, name)
            new = np.empty(cap, np.int64)
            new[: self.n] = old[: self.n]
            setattr(self, name, new)


def _map_file(f: BinaryIO) -> mmap.mmap | bytes:
    """The whole file, memory-mapped read-only (no copy of the page cache), else read."""
    try:
        return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError):  # not a regular file (pipe, ...), or empty
        f.seek(0)
        return f.read()


class _HasWarnings(Protocol):
    warnings: list[str]


_T = TypeVar("_T", bound=_HasWarnings)


def _read_mapped(p: Path, parse: Callable[[Path, SessionMeta, int, mmap.mmap | bytes], _T]) -> _T:
    """Read the header of ``p``, map the whole file, ``parse`` it, and close the mapping."""
    with p.open("rb") as f:
        meta, hdr_len, hdr_warnings = _read_header_warned(f, p)
        whole = _map_file(f)
    try:
        out = parse(p, meta, hdr_len, whole)
        out.warnings[:0] = hdr_warnings
        return out
    finally:
        if isinstance(whole, mmap.mmap):
            # the parsers copy what they keep; a view can only escape on an error path, and the
            # GC then closes the mapping
            with contextlib.suppress(BufferError):
                whole.close()


@dataclass(slots=True)
class _Scanned:
    """A recording body read by :func:`_scan_file`."""

    frames: _FrameCols  # intact packet frames before ``tail``, file order
    events: list[SessionEvent]  # event frames before ``tail``
    tail: _Parsed | None  # the general parser's result from the first other frame on
    valid: int  # bytes of intact frames before ``tail``


def _scan_file(whole: mmap.mmap | bytes, hdr_len: int, sensors: tuple[str, ...]) -> _Scanned:
    """Read the frames of ``whole[hdr_len:]``: runs of packet frames by the compiled scan, event
    frames one by one, and from the first damaged or unexpected frame on the general parser."""
    n_sensors = len(sensors)
    data = np.frombuffer(whole, np.uint8)
    end = len(whole)
    events: list[SessionEvent] = []
    pos = hdr_len
    frame_no = 0
    valid = 0
    unpack_hdr = _FRAME_HDR.unpack_from
    cols: _FrameCols | None = None
    while pos < end:
        if pos + FRAME_HEADER_LEN > end:
            break  # the general parser words the truncation
        sync, kind, idx, ns, n = unpack_hdr(whole, pos)
        if kind == FRAME_PACKET and sync == SYNC and idx < n_sensors and n <= MAX_PAYLOAD:
            if cols is None:  # sized for frames like this first one
                cols = _FrameCols.empty((end - pos) // (n + FRAME_OVERHEAD) + 1)
            before = cols.n
            stop = _scan_frames(data, pos, n_sensors, cols)
            if cols.n > before:
                valid += stop - pos
                frame_no += cols.n - before
                pos = stop
                continue
        elif kind == FRAME_EVENT and _frame_at(whole, pos, end, True) is not None:
            stop = pos + FRAME_HEADER_LEN + n
            try:
                ev = _decode_event(ns, whole[pos + FRAME_HEADER_LEN : stop])
            except (ValueError, KeyError, TypeError):
                pass  # the general parser words the warning
            else:
                events.append(ev)
                valid += stop + 4 - pos
                pos = stop + 4
                frame_no += 1
                continue
        break  # damage or an unexpected frame: the general parser takes over from here
    del data  # no view of the mapping outlives this function
    tail = _parse_no_gc(whole[pos:], 0, pos, frame_no, sensors, True) if pos < end else None
    return _Scanned(cols if cols is not None else _FrameCols.empty(0), events, tail, valid)
