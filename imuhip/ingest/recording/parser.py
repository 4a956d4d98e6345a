"""The general frame parser: intact frames read, damage reported and skipped.

Frames are independent: a reader that meets a damaged frame reports it (byte offset, frame
number), scans forward to the next frame whose CRC checks, reports how many bytes it skipped, and
goes on; a file cut short by a crash reads as its valid prefix plus a warning. Every reader
(:mod:`~imuhip.ingest.recording.reader`, :mod:`~imuhip.ingest.recording.arrays`,
:mod:`~imuhip.ingest.recording.stream`) words damage through :func:`_parse`, so the warnings are
the same whichever reads the file.
"""

from __future__ import annotations

import gc
import json
import logging
import mmap
import zlib
from dataclasses import dataclass
from typing import Final

from imuhip.ingest.recording.format import (
    _CRC,
    _FRAME_HDR,
    FRAME_EVENT,
    FRAME_HEADER_LEN,
    FRAME_OVERHEAD,
    FRAME_PACKET,
    MAX_PAYLOAD,
    SYNC,
    Frame,
)
from imuhip.types import RawPacket, SessionEvent

log = logging.getLogger("imuhip.ingest.recording")  # the format's one logger (FORMAT.md)

_NO_STOP: Final = (
    "recording has no stop event: the writer did not close it (crash, or still recording)"
)

SHOWN_WARNINGS: Final = 5
"""How many recording warnings the log and the CLI show one by one; the rest are summarised
(every warning stays in ``Recording.warnings``)."""


def warning_lines(
    warnings: list[str], *, skipped_bytes: int | None = None, limit: int = SHOWN_WARNINGS
) -> list[str]:
    """At most ``limit`` of ``warnings`` verbatim, then one summary line for the rest.

    Parameters
    ----------
    warnings : list of str
        ``Recording.warnings`` (or ``PacketArrays.warnings``), in file order.
    skipped_bytes : int, optional
        Bytes of the file not read as intact frames (``size_bytes - valid_bytes``); named in
        the summary line when given.
    limit : int
        Warnings shown one by one (>= 0).

    Returns
    -------
    list of str
        ``warnings`` unchanged if there are at most ``limit`` of them, else the first ``limit``
        and ``"... and K more damaged regions/warnings, N bytes skipped in total (all listed
        by imuhip info --json)"``.
    """
    if limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit}")
    if len(warnings) <= limit:
        return list(warnings)
    rest = warnings[limit:]
    n_damaged = sum(1 for w in rest if "damaged" in w)
    n_other = len(rest) - n_damaged
    parts = []
    if n_damaged:
        parts.append(f"{n_damaged} more damaged region{'s' if n_damaged != 1 else ''}")
    if n_other:
        parts.append(f"{n_other} more warning{'s' if n_other != 1 else ''}")
    tail = f"... and {' and '.join(parts)}"
    if skipped_bytes is not None:
        tail += f", {skipped_bytes} bytes skipped in total"
    return [*warnings[:limit], tail + " (all listed by imuhip info --json)"]


def _log_warnings(
    path: object, warnings: list[str], already: int = 0, *, skipped_bytes: int | None = None
) -> None:
    """Log the first :data:`SHOWN_WARNINGS` of a file's warnings (``already`` logged before)
    at WARNING and the rest at DEBUG; a summary WARNING when ``skipped_bytes`` is given (the end
    of the file) and some were held back."""
    for i, w in enumerate(warnings, start=already):
        log.log(logging.WARNING if i < SHOWN_WARNINGS else logging.DEBUG, "%s: %s", path, w)
    total = already + len(warnings)
    if skipped_bytes is not None and total > SHOWN_WARNINGS:
        log.warning(
            "%s: ... and %d more warnings (damaged regions), %d bytes skipped in total",
            path,
            total - SHOWN_WARNINGS,
            skipped_bytes,
        )


def _frame_at(buf: bytes | mmap.mmap, pos: int, end: int, eof: bool) -> int | None:
    """End offset of an intact frame at ``pos``; ``None`` if there is none; ``-1`` if undecidable.

    Undecidable means the candidate extends past ``end`` and more bytes may still come.
    """
    if pos + FRAME_HEADER_LEN > end:
        return None if eof else -1
    sync, _, _, _, n = _FRAME_HDR.unpack_from(buf, pos)
    if sync != SYNC or n > MAX_PAYLOAD:
        return None
    stop = pos + FRAME_HEADER_LEN + n
    if stop + 4 > end:
        return None if eof else -1
    if _CRC.unpack_from(buf, stop)[0] != zlib.crc32(buf[pos:stop]):
        return None
    return stop + 4


@dataclass(slots=True)
class _Parsed:
    items: list[Frame]
    pos: int  # first byte not consumed
    frame_no: int
    valid: int  # bytes of intact frames consumed
    warnings: list[str]
    need_more: bool  # stopped at an undecidable point before EOF


def _decode_event(ns: int, payload: bytes) -> SessionEvent:
    obj = json.loads(payload)
    kind, sensor, data = obj["kind"], obj.get("sensor"), obj["data"]
    if not isinstance(kind, str) or not isinstance(data, dict):
        raise TypeError("kind must be a string and data an object")
    if sensor is not None and not isinstance(sensor, str):
        raise TypeError("sensor must be a string or null")
    return SessionEvent(ns, kind, sensor, data)


def _parse(
    buf: bytes, pos: int, base: int, frame_no: int, sensors: tuple[str, ...], eof: bool
) -> _Parsed:
    """Parse the frames of ``buf[pos:]``; ``base`` is the file offset of ``buf[0]``.

    Returns at the end of ``buf`` or, when not at ``eof``, where more bytes are needed to decide.
    Frame numbers count every frame from 0, a damaged region counting as one frame.
    """
    items: list[Frame] = []
    append = items.append
    warnings: list[str] = []
    end = len(buf)
    valid = 0
    n_sensors = len(sensors)
    unpack_hdr, unpack_crc, crc32 = _FRAME_HDR.unpack_from, _CRC.unpack_from, zlib.crc32
    hlen = FRAME_HEADER_LEN
    while True:
        # ---- fast path: consecutive intact frames ----
        while pos + hlen <= end:
            sync, kind, idx, ns, n = unpack_hdr(buf, pos)
            stop = pos + hlen + n
            if sync != SYNC or n > MAX_PAYLOAD or stop + 4 > end:
                break
            if unpack_crc(buf, stop)[0] != crc32(buf[pos:stop]):
                break
            if kind == FRAME_PACKET and idx < n_sensors:
                append(RawPacket(sensors[idx], ns, buf[pos + hlen : stop]))
            elif kind == FRAME_EVENT:
                try:
                    append(_decode_event(ns, buf[pos + hlen : stop]))
                except (ValueError, KeyError, TypeError) as err:
                    warnings.append(
                        f"frame {frame_no} at byte offset {base + pos}: unreadable event "
                        f"({err}); skipped"
                    )
            else:
                what = f"unknown frame type {kind}" if kind != FRAME_PACKET else f"sensor {idx}"
                warnings.append(f"frame {frame_no} at byte offset {base + pos}: {what}; skipped")
            valid += stop + 4 - pos
            pos = stop + 4
            frame_no += 1
        if pos >= end:
            return _Parsed(items, pos, frame_no, valid, warnings, False)
        # ---- damage, or the buffer ends inside a frame ----
        here = _frame_at(buf, pos, end, eof)
        if here == -1:
            return _Parsed(items, pos, frame_no, valid, warnings, True)
        cand = pos + 1
        found: int | None = None
        while True:
            cand = buf.find(SYNC, cand)
            if cand < 0:
                if not eof:  # a sync word may straddle the end of the buffer
                    return _Parsed(items, pos, frame_no, valid, warnings, True)
                break
            r = _frame_at(buf, cand, end, eof)
            if r == -1:
                return _Parsed(items, pos, frame_no, valid, warnings, True)
            if r is not None:
                found = cand
                break
            cand += 1
        off = base + pos
        remaining = end - pos
        if found is None:
            starts_like_frame = buf[pos : pos + 2] == SYNC[: min(2, remaining)]
            claimed = hlen + unpack_hdr(buf, pos)[4] + 4 if remaining >= hlen else None
            if starts_like_frame and claimed is None:
                warnings.append(
                    f"recording truncated at byte offset {off}: frame {frame_no} is incomplete "
                    f"(only {remaining} bytes of its header); everything before it was read"
                )
            elif (
                starts_like_frame
                and claimed is not None
                and remaining < claimed <= MAX_PAYLOAD + FRAME_OVERHEAD
            ):
                warnings.append(
                    f"recording truncated at byte offset {off}: frame {frame_no} is incomplete "
                    f"({remaining} of {claimed} bytes); everything before it was read"
                )
            else:
                warnings.append(
                    f"frame {frame_no} at byte offset {off} is damaged (CRC32 or header check "
                    f"failed) and the remaining {remaining} bytes hold no intact frame; "
                    "they were skipped"
                )
            return _Parsed(items, end, frame_no + 1, valid, warnings, False)
        warnings.append(
            f"frame {frame_no} at byte offset {off} is damaged (CRC32 or header check failed): "
            f"skipped {found - pos} bytes, resumed at byte offset {base + found}"
        )
        frame_no += 1  # the damaged region counts as one frame
        pos = found


def _parse_no_gc(
    buf: bytes, pos: int, base: int, frame_no: int, sensors: tuple[str, ...], eof: bool
) -> _Parsed:
    """:func:`_parse` with the cyclic GC paused: it only allocates acyclic objects, and the
    collections triggered by ~10^5 allocations cost a third of the time."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _parse(buf, pos, base, frame_no, sensors, eof)
    finally:
        if was_enabled:
            gc.enable()
