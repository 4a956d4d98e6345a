"""Writing a recording: :class:`RecordingWriter`, append-only and crash-safe.

:class:`RecordingWriter` never blocks the caller: ``write_packet`` appends to an in-memory list and
a background thread encodes, writes and flushes it every ``flush_interval_s`` (default 0.25 s) and
``fsync``s every ``fsync_interval_s`` (default 1 s). A ``kill -9`` therefore loses at most the
last flush interval; a power cut at most the last fsync interval.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import time
import zlib
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO

import numpy as np

from imuhip.errors import RecordingError
from imuhip.ingest.recording.format import (
    _CRC,
    _FILE_HDR,
    _FRAME_HDR,
    _I64_MAX,
    _I64_MIN,
    _KIND_RE,
    FORMAT_VERSION,
    FRAME_EVENT,
    FRAME_PACKET,
    MAGIC,
    MAX_PAYLOAD,
    NO_SENSOR,
    SYNC,
)
from imuhip.ingest.recording.header import header_copy_frame, meta_to_json
from imuhip.types import RawPacket, SessionEvent, SessionMeta

log = logging.getLogger("imuhip.ingest.recording")  # the format's one logger (FORMAT.md)


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
    header_copy : bool
        Repeat the header in the first frame (default), so that one damaged header byte does
        not lose the recording. ``False`` writes the layout of the files made before the copy
        existed (the shipped demo recordings regenerate byte for byte, ``recordings/MANIFEST``).

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
        header_copy: bool = True,
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
            # the header, then its copy as the first frame (a frame of its own, with its own
            # CRC): one damaged header byte does not lose the recording (FORMAT.md)
            copy = header_copy_frame(text) if header_copy else b""
            self._file.write(MAGIC + body + _CRC.pack(zlib.crc32(body)) + copy)
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
