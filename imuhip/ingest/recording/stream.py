"""Reading a recording frame by frame with bounded memory (:func:`open_recording`)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from imuhip.ingest.recording.format import Frame
from imuhip.ingest.recording.header import _read_header_warned
from imuhip.ingest.recording.parser import (
    _NO_STOP,
    SHOWN_WARNINGS,
    _log_warnings,
    _parse_no_gc,
)
from imuhip.types import SessionEvent


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
            self.meta, self._hdr_len, hdr_warnings = _read_header_warned(f, self.path)
        self._chunk = chunk_bytes
        self.warnings: list[str] = hdr_warnings
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
