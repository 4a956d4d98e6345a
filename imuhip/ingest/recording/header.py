"""The recording header: metadata JSON validated both ways, and reading the header back.

The header JSON is :func:`meta_to_json` of the :class:`~imuhip.types.SessionMeta`; a reader
refuses a file whose magic, version, header CRC or metadata does not check, with a one-line
:class:`~imuhip.errors.RecordingError` naming the file and the field.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import zlib
from dataclasses import fields
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO, Final

from imuhip.conventions import Placement
from imuhip.errors import RecordingError
from imuhip.ingest.recording.format import (
    _CRC,
    _FILE_HDR,
    _FRAME_HDR,
    FORMAT_VERSION,
    FRAME_EVENT,
    FRAME_HEADER_LEN,
    MAGIC,
    MAX_META,
    NO_SENSOR,
    SYNC,
)
from imuhip.types import SensorMeta, SessionMeta

log = logging.getLogger("imuhip.ingest.recording")  # the format's one logger (FORMAT.md)

PSEUDONYM_PATTERN: Final = r"[A-Za-z0-9_-]{1,32}"
_PSEUDONYM_RE = re.compile(PSEUDONYM_PATTERN)


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


HEADER_COPY_KIND: Final = "header_copy"
"""Kind of the event frame right after the header that repeats it (``data``: ``version``,
``meta_json``); readers take it as part of the header, never as a session event."""

_COPY_SCAN_BYTES: Final = MAX_META + (1 << 16)  # where a header copy can be: after <= MAX_META


def header_copy_frame(text: bytes) -> bytes:
    """The encoded event frame repeating the header metadata ``text`` (written after it)."""
    payload = json.dumps(
        {
            "kind": HEADER_COPY_KIND,
            "sensor": None,
            "data": {"version": FORMAT_VERSION, "meta_json": text.decode("utf-8")},
        },
        ensure_ascii=False,
        separators=(",", ":"),
    ).encode("utf-8")
    hdr = _FRAME_HDR.pack(SYNC, FRAME_EVENT, NO_SENSOR, 0, len(payload))
    return hdr + payload + _CRC.pack(zlib.crc32(payload, zlib.crc32(hdr)))


def _copy_at(buf: bytes, pos: int) -> str | None:
    """The metadata JSON of an intact header-copy frame at ``buf[pos:]``, else ``None``."""
    if pos + FRAME_HEADER_LEN > len(buf):
        return None
    sync, kind, _, _, n = _FRAME_HDR.unpack_from(buf, pos)
    stop = pos + FRAME_HEADER_LEN + n
    if sync != SYNC or kind != FRAME_EVENT or stop + _CRC.size > len(buf):
        return None
    if _CRC.unpack_from(buf, stop)[0] != zlib.crc32(buf[pos:stop]):
        return None
    try:
        obj = json.loads(buf[pos + FRAME_HEADER_LEN : stop])
        data = obj["data"]
        if obj["kind"] != HEADER_COPY_KIND or data["version"] != FORMAT_VERSION:
            return None
        text = data["meta_json"]
    except (ValueError, KeyError, TypeError):
        return None
    return text if isinstance(text, str) else None


def _read_header(f: BinaryIO, path: Path) -> tuple[SessionMeta, int]:
    """The metadata and the offset of the first frame after the header (and its copy)."""
    meta, end, _ = _read_header_warned(f, path)
    return meta, end


def _read_header_warned(f: BinaryIO, path: Path) -> tuple[SessionMeta, int, list[str]]:
    """:func:`_read_header` plus the warnings to show (a header read from its copy).

    A damaged header (any byte of magic, version, length, metadata or CRC) is read from its copy
    (the first frame, written by :class:`~imuhip.ingest.recording.RecordingWriter` since
    the copy was introduced); only a file without an intact copy is refused.
    """
    start = f.tell()
    try:
        meta, end = _read_primary(f, path)
    except _NotRecording:
        raise
    except RecordingError as err:
        size = os.fstat(f.fileno()).st_size if hasattr(f, "fileno") else _COPY_SCAN_BYTES
        f.seek(start)
        # read(n) allocates n bytes up front: no more than the file holds
        found = _find_copy(f.read(max(0, min(_COPY_SCAN_BYTES, size - start))), start)
        if found is None:
            raise RecordingError(
                f"{err}; no intact header copy found either (recordings written before imuhip "
                "kept one have none)"
            ) from err
        text, at, end = found
        try:
            meta = meta_from_json(text)
        except RecordingError as err2:
            raise RecordingError(f"{err}; its header copy is unusable too: {err2}") from err2
        what = str(err).removeprefix(f"{path}: ").removeprefix(f"{path} ")
        warning = (
            f"header damaged ({what}); the metadata was read from its copy at byte offset {at}"
        )
        log.warning("%s: %s", path, warning)
        f.seek(end)
        return meta, end, [warning]
    # the copy right after an intact header belongs to the header
    f.seek(end)
    head = f.read(FRAME_HEADER_LEN)
    if len(head) == FRAME_HEADER_LEN:
        n = _FRAME_HDR.unpack(head)[4]
        if n <= MAX_META + 4096:
            buf = head + f.read(n + _CRC.size)
            if _copy_at(buf, 0) is not None:
                end += len(buf)
    f.seek(end)
    return meta, end, []


def _find_copy(buf: bytes, base: int) -> tuple[str, int, int] | None:
    """The first intact header copy in ``buf`` (file offset ``base``): text, start, end."""
    pos = buf.find(SYNC, 1)
    while pos >= 0:
        text = _copy_at(buf, pos)
        if text is not None:
            n = _FRAME_HDR.unpack_from(buf, pos)[4]
            return text, base + pos, base + pos + FRAME_HEADER_LEN + n + _CRC.size
        pos = buf.find(SYNC, pos + 1)
    return None


def _read_primary(f: BinaryIO, path: Path) -> tuple[SessionMeta, int]:
    head = f.read(_FILE_HDR.size)
    if len(head) < _FILE_HDR.size:
        if len(head) < len(MAGIC) or not head.startswith(MAGIC):
            raise _NotRecording(f"{path} is not an imuhip recording (bad magic bytes)")
        raise RecordingError(f"{path}: corrupt header (file ends inside the header)")
    magic, version, n = _FILE_HDR.unpack(head)
    bad_magic = sum(a != b for a, b in zip(magic, MAGIC, strict=True))
    if bad_magic > 2:
        raise _NotRecording(f"{path} is not an imuhip recording (bad magic bytes)")
    if version != FORMAT_VERSION:  # a newer format, or a damaged version field
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
    if bad_magic:
        raise RecordingError(f"{path}: corrupt header (damaged magic bytes)")
    try:
        meta = meta_from_json(text)
    except RecordingError as err:
        raise RecordingError(f"{path}: corrupt header: {err}") from err
    return meta, _FILE_HDR.size + n + _CRC.size


class _NotRecording(RecordingError):
    """Not a recording at all: no copy is looked for."""
