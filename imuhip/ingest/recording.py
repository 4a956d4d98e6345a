"""The ``.imrec`` recording format: append-only, crash-safe, lossless (``recordings/FORMAT.md``).

A recording stores every :class:`~imuhip.types.RawPacket` verbatim, *before* decoding, plus
:class:`~imuhip.types.SessionEvent` records (connect, disconnect, calibration markers, ...), so a
replay re-runs the identical decode. Layout (little-endian)::

    header  magic b"\\x89IMREC\\r\\n" (8) | u16 format version | u32 json_len | json | u32 crc32
    frame   b"\\xa5\\x5a" | u8 type | u8 sensor | i64 host_rx_ns | u32 len | payload | u32 crc32

The header JSON is :func:`meta_to_json` of the :class:`~imuhip.types.SessionMeta`; the header CRC
covers everything from the version field to the end of the JSON, a frame CRC covers the frame from
its sync word to the end of the payload. Frames are independent: a reader that meets a damaged
frame reports it (byte offset, frame number), scans forward to the next frame whose CRC checks,
reports how many bytes it skipped, and goes on; a file cut short by a crash reads as its valid
prefix plus a warning.

:class:`RecordingWriter` never blocks the caller: ``write_packet`` appends to an in-memory list and
a background thread encodes, writes and flushes it every ``flush_interval_s`` (default 0.25 s) and
``fsync``s every ``fsync_interval_s`` (default 1 s). A ``kill -9`` therefore loses at most the
last flush interval; a power cut at most the last fsync interval.
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import math
import mmap
import os
import re
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO, Final, TypeVar

import numpy as np
import numpy.typing as npt

from imuhip.conventions import Placement
from imuhip.errors import RecordingError
from imuhip.types import RawPacket, SensorMeta, SessionEvent, SessionMeta

__all__ = [
    "FORMAT_VERSION",
    "MAGIC",
    "PSEUDONYM_PATTERN",
    "PacketArrays",
    "Recording",
    "RecordingStream",
    "RecordingWriter",
    "iter_frames",
    "meta_from_json",
    "meta_to_json",
    "open_recording",
    "read_packet_arrays",
    "read_recording",
    "warning_lines",
]

log = logging.getLogger(__name__)

MAGIC: Final = b"\x89IMREC\r\n"
FORMAT_VERSION: Final = 1
SYNC: Final = b"\xa5\x5a"
FRAME_PACKET: Final = 1
FRAME_EVENT: Final = 2
NO_SENSOR: Final = 0xFF
MAX_PAYLOAD: Final = 1 << 24  # 16 MiB: anything longer is a damaged length field
MAX_META: Final = 1 << 24
PSEUDONYM_PATTERN: Final = r"[A-Za-z0-9_-]{1,32}"
EVENT_KINDS: Final = (
    "connect",
    "disconnect",
    "reconnect",
    "calibration_start",
    "calibration_end",
    "annotation",
    "sensor_info",
    "time_sync",
    "stop",
)
"""Event kinds the package writes (readers accept any ``[a-z0-9_]+`` kind)."""

_PSEUDONYM_RE = re.compile(PSEUDONYM_PATTERN)
_KIND_RE = re.compile(r"[a-z0-9_]{1,64}")
_FILE_HDR = struct.Struct("<8sHI")  # magic, version, json length
_FRAME_HDR = struct.Struct("<2sBBqI")  # sync, type, sensor index, host_rx_ns, payload length
_CRC = struct.Struct("<I")
FRAME_HEADER_LEN: Final = _FRAME_HDR.size  # 16
FRAME_OVERHEAD: Final = FRAME_HEADER_LEN + _CRC.size  # 20
_I64_MIN, _I64_MAX = -(1 << 63), (1 << 63) - 1

Frame = RawPacket | SessionEvent
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


# ---------------------------------------------------------------------------------------------
# Metadata <-> JSON
# ---------------------------------------------------------------------------------------------

_SESSION_TYPES: Final[dict[str, tuple[type, ...]]] = {
    "session_id": (str,),
    "start_wall_time": (str,),
    "subject": (str,),
    "sensors": (list,),
    "software": (str,),
    "notes": (str,),
    "extra": (dict,),
}
_SESSION_REQUIRED: Final = ("session_id", "start_wall_time", "subject", "sensors")
_NUM = (int, float)
_SENSOR_TYPES: Final[dict[str, tuple[type, ...]]] = {
    "placement": (str,),
    "rate_hz": _NUM,
    "acc_lsb_m_s2": _NUM,
    "gyr_lsb_rad_s": _NUM,
    "mag_lsb_ut": _NUM,
    "has_mag": (bool,),
    "address": (str,),
    "model": (str,),
    "serial": (str,),
    "firmware": (str,),
    "protocol": (str,),
    "protocol_version": (int,),
    "acc_range_g": _NUM,
    "gyr_range_dps": _NUM,
    "calibration": (dict, type(None)),
}
_SENSOR_REQUIRED: Final = (
    "placement",
    "rate_hz",
    "acc_lsb_m_s2",
    "gyr_lsb_rad_s",
    "mag_lsb_ut",
    "has_mag",
)
assert set(_SENSOR_TYPES) == {f.name for f in fields(SensorMeta)}
assert set(_SESSION_TYPES) == {f.name for f in fields(SessionMeta)}


def _check_type(where: str, name: str, value: Any, types: tuple[type, ...]) -> None:
    ok = isinstance(value, types)
    if ok and bool not in types and isinstance(value, bool):
        ok = False  # JSON true is not a number
    if not ok:
        want = " or ".join("null" if t is type(None) else t.__name__ for t in types)
        raise RecordingError(f"metadata field {where}{name} must be {want}, got {value!r}")


def check_pseudonym(subject: str) -> str:
    """Return ``subject`` if it looks like a pseudonym, else raise ``RecordingError``.

    A pseudonym is 1–32 characters of ``A-Z a-z 0-9 _ -`` (``"S07"``, ``"pilot-3"``): no spaces,
    so a ``"First Last"`` name is refused. This cannot prove that a code is not a name; the
    operator is responsible for never entering one (see ``recordings/FORMAT.md``).
    """
    if not isinstance(subject, str) or not _PSEUDONYM_RE.fullmatch(subject):
        raise RecordingError(
            f"metadata field subject must be a pseudonym matching {PSEUDONYM_PATTERN} "
            f"(letters, digits, '_' or '-', no spaces; never a name), got {subject!r}"
        )
    return subject


def _sensor_from_dict(i: int, d: Any) -> SensorMeta:
    where = f"sensors[{i}]."
    if not isinstance(d, dict):
        raise RecordingError(f"metadata field sensors[{i}] must be an object, got {d!r}")
    for name in _SENSOR_REQUIRED:
        if name not in d:
            raise RecordingError(f"metadata field {where}{name} is missing")
    kwargs: dict[str, Any] = {}
    for name, value in d.items():
        if name not in _SENSOR_TYPES:
            log.warning("recording metadata: ignoring unknown field %s%s", where, name)
            continue
        _check_type(where, name, value, _SENSOR_TYPES[name])
        if isinstance(value, float) and not math.isfinite(value):
            raise RecordingError(f"metadata field {where}{name} must be finite, got {value!r}")
        kwargs[name] = value
    if kwargs["placement"] not in {p.value for p in Placement}:
        known = ", ".join(p.value for p in Placement)
        raise RecordingError(
            f"metadata field {where}placement: unknown placement {kwargs['placement']!r} "
            f"(known: {known})"
        )
    for name in ("rate_hz", "acc_lsb_m_s2", "gyr_lsb_rad_s", "mag_lsb_ut"):
        kwargs[name] = float(kwargs[name])
    for name in ("acc_range_g", "gyr_range_dps"):
        if name in kwargs:
            kwargs[name] = float(kwargs[name])
    try:
        return SensorMeta(**kwargs)
    except (TypeError, ValueError) as err:
        raise RecordingError(f"metadata field {where[:-1]}: {err}") from err


def _meta_from_obj(obj: Any) -> SessionMeta:
    if not isinstance(obj, dict):
        raise RecordingError("metadata must be a JSON object")
    for name in _SESSION_REQUIRED:
        if name not in obj:
            raise RecordingError(f"metadata field {name} is missing")
    kwargs: dict[str, Any] = {}
    for name, value in obj.items():
        if name == "format":
            continue
        if name not in _SESSION_TYPES:
            log.warning("recording metadata: ignoring unknown field %s", name)
            continue
        _check_type("", name, value, _SESSION_TYPES[name])
        kwargs[name] = value
    if not kwargs["session_id"]:
        raise RecordingError("metadata field session_id must not be empty")
    check_pseudonym(kwargs["subject"])
    try:
        t = datetime.fromisoformat(kwargs["start_wall_time"])
    except ValueError:
        t = None
    if t is None or t.tzinfo is None:
        raise RecordingError(
            "metadata field start_wall_time must be an ISO 8601 time with a UTC offset "
            f"(e.g. 2024-05-01T09:30:00+00:00), got {kwargs['start_wall_time']!r}"
        )
    sensors = tuple(_sensor_from_dict(i, d) for i, d in enumerate(kwargs["sensors"]))
    if not sensors:
        raise RecordingError("metadata field sensors must list at least one sensor")
    seen: set[str] = set()
    for i, s in enumerate(sensors):
        if s.placement in seen:
            raise RecordingError(
                f"metadata field sensors[{i}].placement: placement {s.placement!r} appears twice"
            )
        seen.add(s.placement)
    kwargs["sensors"] = sensors
    return SessionMeta(**kwargs)


def meta_to_json(meta: SessionMeta) -> str:
    """Serialise ``meta`` to the header JSON, validating it as a reader would.

    Raises
    ------
    RecordingError
        Naming the offending field (unknown placement, subject not a pseudonym, bad type, ...).
    """
    if not isinstance(meta, SessionMeta):
        raise TypeError(f"meta must be a SessionMeta, got {type(meta).__name__}")
    obj: dict[str, Any] = {"format": "imrec"}
    for f in fields(SessionMeta):
        v = getattr(meta, f.name)
        if f.name == "sensors":
            if not isinstance(v, tuple | list):
                raise RecordingError(f"metadata field sensors must be a tuple, got {v!r}")
            v = [{g.name: getattr(s, g.name) for g in fields(SensorMeta)} for s in v]
        obj[f.name] = v
    try:
        text = json.dumps(obj, ensure_ascii=False, allow_nan=False, sort_keys=False)
    except (TypeError, ValueError) as err:
        raise RecordingError(f"metadata is not JSON-serialisable: {err}") from err
    _meta_from_obj(json.loads(text))  # validate exactly what a reader will see
    return text


def meta_from_json(text: str | bytes) -> SessionMeta:
    """Parse and validate header JSON (the inverse of :func:`meta_to_json`).

    Raises
    ------
    RecordingError
        Not JSON, a required field missing, a wrong type, an unknown placement, a subject that is
        not a pseudonym; the message names the field.
    """
    try:
        obj = json.loads(text)
    except (ValueError, UnicodeDecodeError) as err:
        raise RecordingError(f"metadata is not valid JSON: {err}") from err
    return _meta_from_obj(obj)


# ---------------------------------------------------------------------------------------------
# Writer
# ---------------------------------------------------------------------------------------------


def _event_payload(ev: SessionEvent) -> bytes:
    if not isinstance(ev, SessionEvent):
        raise TypeError(f"expected a SessionEvent, got {type(ev).__name__}")
    if not isinstance(ev.kind, str) or not _KIND_RE.fullmatch(ev.kind):
        raise ValueError(f"event kind must match [a-z0-9_]{{1,64}}, got {ev.kind!r}")
    if ev.sensor is not None and not isinstance(ev.sensor, str):
        raise TypeError(f"event sensor must be a str or None, got {ev.sensor!r}")
    if not isinstance(ev.data, dict):
        raise TypeError(f"event data must be a dict, got {type(ev.data).__name__}")
    try:
        text = json.dumps(
            {"kind": ev.kind, "sensor": ev.sensor, "data": ev.data},
            ensure_ascii=False,
            allow_nan=False,
            separators=(",", ":"),
        )
    except (TypeError, ValueError) as err:
        raise ValueError(f"event data of {ev.kind!r} is not JSON-serialisable: {err}") from err
    return text.encode("utf-8")


def _check_ns(host_rx_ns: Any) -> int:
    if isinstance(host_rx_ns, bool) or not isinstance(host_rx_ns, int | np.integer):
        raise TypeError(f"host_rx_ns must be an int, got {type(host_rx_ns).__name__}")
    ns = int(host_rx_ns)
    if not _I64_MIN <= ns <= _I64_MAX:
        raise ValueError(f"host_rx_ns {ns} does not fit int64")
    return ns


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class RecordingWriter:
    """Append-only ``.imrec`` writer that never blocks its caller.

    Parameters
    ----------
    path : str or Path
        Final file name (written in place, append-only, so a crash leaves a readable file).
    meta : SessionMeta
        The header; validated (pseudonym subject, known placements) before anything is created.
    flush_interval_s : float
        The background thread writes and flushes buffered frames at least this often.
    fsync_interval_s : float
        ... and ``fsync``s the file at least this often.
    overwrite : bool
        Replace an existing file; by default an existing file is refused.

    Notes
    -----
    The constructor creates the file and writes + fsyncs the header synchronously (once, before
    streaming starts). :meth:`write_packet` and :meth:`write_event` only append to a list under a
    lock held for O(1) time; they are safe to call from an asyncio event loop or any thread.
    An error in the background thread (disk full) is raised as :class:`RecordingError` from the
    next ``write_*`` or :meth:`close` call; frames buffered after the failure are not written and
    the message says how many. :meth:`close` appends a ``"stop"`` event, which marks the file
    complete.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        meta: SessionMeta,
        *,
        flush_interval_s: float = 0.25,
        fsync_interval_s: float = 1.0,
        overwrite: bool = False,
    ) -> None:
        if not (flush_interval_s > 0 and math.isfinite(flush_interval_s)):
            raise ValueError(f"flush_interval_s must be > 0, got {flush_interval_s}")
        if not (fsync_interval_s > 0 and math.isfinite(fsync_interval_s)):
            raise ValueError(f"fsync_interval_s must be > 0, got {fsync_interval_s}")
        text = meta_to_json(meta).encode("utf-8")
        self.path = Path(path)
        self.meta = meta
        self._index = {s.placement: i for i, s in enumerate(meta.sensors)}
        self._flush_interval_s = float(flush_interval_s)
        self._fsync_interval_s = float(fsync_interval_s)
        try:
            self._file: BinaryIO = self.path.open("wb" if overwrite else "xb")
        except FileExistsError as err:
            raise RecordingError(
                f"{self.path} already exists; refusing to overwrite a recording"
            ) from err
        try:
            body = _FILE_HDR.pack(MAGIC, FORMAT_VERSION, len(text))[8:] + text
            self._file.write(MAGIC + body + _CRC.pack(zlib.crc32(body)))
            self._file.flush()
            os.fsync(self._file.fileno())
        except OSError as err:
            self._file.close()
            raise RecordingError(f"cannot write recording header to {self.path}: {err}") from err
        _fsync_dir(self.path.resolve().parent)
        self._lock = threading.Lock()
        self._buf: list[tuple[int, int, int, bytes]] = []
        self._error: BaseException | None = None
        self._dropped = 0
        self._closed = False
        self._stop = threading.Event()
        self.frames_written = 0
        self.bytes_written = self._file.tell()
        self._thread = threading.Thread(
            target=self._run, name=f"imrec-writer:{self.path.name}", daemon=True
        )
        self._thread.start()

    # -- caller side -------------------------------------------------------------------------
    def _raise_if_unusable(self) -> None:
        if self._error is not None:
            raise RecordingError(
                f"writing {self.path} failed: {self._error}; "
                f"{self._dropped} buffered frame(s) could not be written"
            ) from self._error
        if self._closed:
            raise RecordingError(f"recording {self.path} is closed")

    def write_packet(self, pkt: RawPacket) -> None:
        """Queue one raw packet (verbatim payload). O(1), never waits for I/O.

        Raises
        ------
        ValueError
            ``pkt.sensor`` is not a placement of this session's metadata.
        RecordingError
            The writer is closed or its background thread failed.
        """
        if self._error is not None or self._closed:
            self._raise_if_unusable()
        idx = self._index.get(pkt.sensor)
        if idx is None:
            raise ValueError(
                f"packet from sensor {pkt.sensor!r}, which is not in the recording's metadata "
                f"(known: {', '.join(self._index)})"
            )
        payload = pkt.payload
        if type(payload) is not bytes:
            payload = bytes(payload)
        if len(payload) > MAX_PAYLOAD:
            raise ValueError(f"packet payload of {len(payload)} bytes exceeds {MAX_PAYLOAD}")
        ns = pkt.host_rx_ns
        if type(ns) is not int or not _I64_MIN <= ns <= _I64_MAX:
            ns = _check_ns(ns)
        with self._lock:
            self._buf.append((FRAME_PACKET, idx, ns, payload))

    def write_event(self, ev: SessionEvent) -> None:
        """Queue one session event (JSON-encoded now, so a bad ``data`` fails here)."""
        if self._error is not None or self._closed:
            self._raise_if_unusable()
        ns = _check_ns(ev.host_rx_ns)
        payload = _event_payload(ev)
        idx = self._index.get(ev.sensor, NO_SENSOR) if ev.sensor is not None else NO_SENSOR
        with self._lock:
            self._buf.append((FRAME_EVENT, idx, ns, payload))

    def close(self, *, stop_data: dict[str, Any] | None = None) -> None:
        """Append the ``"stop"`` event, write everything, fsync and close. Idempotent.

        Raises
        ------
        RecordingError
            If any write failed (also when the failure happened in the background thread).
        """
        if self._closed:
            return
        if self._error is None:
            self.write_event(SessionEvent(time.monotonic_ns(), "stop", None, stop_data or {}))
        self._closed = True
        self._stop.set()
        self._thread.join()
        try:
            self._file.close()
        except OSError as err:
            if self._error is None:
                self._error = err
        if self._error is not None:
            self._closed = False  # so _raise_if_unusable reports the error, not "closed"
            try:
                self._raise_if_unusable()
            finally:
                self._closed = True

    def __enter__(self) -> RecordingWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
            return
        try:  # keep the original exception; still make the file complete and durable
            self.close(stop_data={"reason": f"error: {exc_type.__name__}"})
        except RecordingError as err:
            log.error("%s", err)

    # -- background thread -------------------------------------------------------------------
    def _drain(self) -> None:
        with self._lock:
            buf, self._buf = self._buf, []
        if not buf:
            return
        pack, crc32, pack_crc = _FRAME_HDR.pack, zlib.crc32, _CRC.pack
        parts: list[bytes] = []
        append = parts.append
        for kind, idx, ns, payload in buf:
            hdr = pack(SYNC, kind, idx, ns, len(payload))
            append(hdr)
            append(payload)
            append(pack_crc(crc32(payload, crc32(hdr))))
        data = b"".join(parts)
        try:
            self._file.write(data)
            self._file.flush()
        except BaseException:
            self._dropped += len(buf)
            raise
        self.frames_written += len(buf)
        self.bytes_written += len(data)

    def _run(self) -> None:
        last_fsync = time.monotonic()
        try:
            while True:
                stopping = self._stop.wait(self._flush_interval_s)
                self._drain()
                now = time.monotonic()
                if stopping or now - last_fsync >= self._fsync_interval_s:
                    os.fsync(self._file.fileno())
                    last_fsync = now
                if stopping:
                    self._drain()  # anything queued between the wake-up and now
                    os.fsync(self._file.fileno())
                    return
        except BaseException as err:  # surfaced on the next write/close
            self._error = err
            with self._lock:
                self._dropped += len(self._buf)
                self._buf = []
            log.error("recording writer for %s failed: %s", self.path, err)


# ---------------------------------------------------------------------------------------------
# Reader
# ---------------------------------------------------------------------------------------------


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


def _read_header(f: BinaryIO, path: Path) -> tuple[SessionMeta, int]:
    head = f.read(_FILE_HDR.size)
    if len(head) < len(MAGIC) or not head.startswith(MAGIC):
        raise RecordingError(f"{path} is not an imuhip recording (bad magic bytes)")
    if len(head) < _FILE_HDR.size:
        raise RecordingError(f"{path}: corrupt header (file ends inside the header)")
    _, version, n = _FILE_HDR.unpack(head)
    if version != FORMAT_VERSION:
        raise RecordingError(
            f"{path}: recording format version {version} is not supported "
            f"(this imuhip reads version {FORMAT_VERSION})"
        )
    if n > MAX_META:
        raise RecordingError(f"{path}: corrupt header (metadata length {n} is implausible)")
    text = f.read(n)
    crc = f.read(_CRC.size)
    if len(text) < n or len(crc) < _CRC.size:
        raise RecordingError(f"{path}: corrupt header (file ends inside the metadata)")
    if _CRC.unpack(crc)[0] != zlib.crc32(head[8:] + text):
        raise RecordingError(f"{path}: corrupt header (metadata CRC32 mismatch)")
    try:
        meta = meta_from_json(text)
    except RecordingError as err:
        raise RecordingError(f"{path}: corrupt header: {err}") from err
    return meta, _FILE_HDR.size + n + _CRC.size


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


_T = TypeVar("_T")


def _read_mapped(p: Path, parse: Callable[[Path, SessionMeta, int, mmap.mmap | bytes], _T]) -> _T:
    """Read the header of ``p``, map the whole file, ``parse`` it, and close the mapping."""
    with p.open("rb") as f:
        meta, hdr_len = _read_header(f, p)
        whole = _map_file(f)
    try:
        return parse(p, meta, hdr_len, whole)
    finally:
        if isinstance(whole, mmap.mmap):
            # the parsers copy what they keep; a view can only escape on an error path, and the
            # GC then closes the mapping
            with contextlib.suppress(BufferError):
                whole.close()


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


class RecordingStream:
    """A recording read frame by frame with bounded memory (see :func:`open_recording`).

    ``meta`` is available at once; ``warnings``, ``complete`` and ``valid_bytes`` fill in while
    iterating and are final when the iteration ends.
    """

    def __init__(self, path: str | os.PathLike[str], *, chunk_bytes: int = 1 << 22) -> None:
        if chunk_bytes < 1024:
            raise ValueError(f"chunk_bytes must be >= 1024, got {chunk_bytes}")
        self.path = Path(path)
        with self.path.open("rb") as f:
            self.meta, self._hdr_len = _read_header(f, self.path)
        self._chunk = chunk_bytes
        self.warnings: list[str] = []
        self.complete = False
        self.valid_bytes = self._hdr_len

    def __iter__(self) -> Iterator[Frame]:
        sensors = tuple(s.placement for s in self.meta.sensors)
        frame_no = 0
        with self.path.open("rb") as f:
            f.seek(self._hdr_len)
            base = self._hdr_len
            buf = b""
            eof = False
            while True:
                if not eof:
                    more = f.read(self._chunk)
                    eof = len(more) < self._chunk
                    buf += more
                parsed = _parse_no_gc(buf, 0, base, frame_no, sensors, eof)
                frame_no = parsed.frame_no
                self.valid_bytes += parsed.valid
                _log_warnings(self.path, parsed.warnings, len(self.warnings))
                self.warnings.extend(parsed.warnings)
                for it in parsed.items:
                    if type(it) is SessionEvent and it.kind == "stop":
                        self.complete = True
                    yield it
                base += parsed.pos
                buf = buf[parsed.pos :]
                if eof and not parsed.need_more:
                    break
        if not self.complete:
            self.warnings.append(_NO_STOP)
        if len(self.warnings) > SHOWN_WARNINGS:
            size = self.path.stat().st_size
            _log_warnings(self.path, [], len(self.warnings), skipped_bytes=size - self.valid_bytes)


def open_recording(path: str | os.PathLike[str]) -> RecordingStream:
    """Open a recording for streaming; header errors raise at once (like :func:`read_recording`)."""
    return RecordingStream(path)


def iter_frames(path: str | os.PathLike[str]) -> Iterator[Frame]:
    """Yield the packets and events of a recording in file order, with bounded memory.

    Damage is handled as in :func:`read_recording`; warnings go to the ``imuhip.ingest.recording``
    logger (use :func:`open_recording` to collect them).
    """
    yield from open_recording(path)
