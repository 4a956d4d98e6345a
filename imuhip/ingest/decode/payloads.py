"""Many packet payloads as slices of one byte buffer (no object per packet).

:class:`PackedPayloads` is how payloads travel on the fast paths: the recording reader
(:func:`imuhip.ingest.recording.read_packet_arrays`) hands each sensor's payloads over in one
buffer, and :func:`~imuhip.ingest.decode.session.decode_session` packs a list of
:class:`~imuhip.types.RawPacket` per sensor the same way (:func:`_pack_by_code`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, TypeVar

import numpy as np
import numpy.typing as npt

from imuhip.ingest import _decode_kernels as _kd

_T = TypeVar("_T", bound=np.generic)


class PackedPayloads(Sequence[bytes]):
    """The payloads of many packets as slices of one byte buffer (no object per packet).

    Behaves as a read-only sequence of ``bytes`` (``payloads[i]`` copies one payload out);
    :meth:`take` gathers payloads of one length into a ``(P, L)`` array at once. Used by the
    recording fast path (:func:`imuhip.ingest.recording.read_packet_arrays`) and by
    :func:`decode_session`, where each sensor's payloads lie together in one shared buffer.

    Parameters
    ----------
    data : (B,) uint8
        The buffer.
    start : (P,) int
        Offset of each payload in ``data``.
    length : (P,) int
        Length of each payload (bytes).
    """

    __slots__ = ("data", "length", "start")

    def __init__(self, data: npt.ArrayLike, start: npt.ArrayLike, length: npt.ArrayLike) -> None:
        self.data = np.asarray(data, dtype=np.uint8).reshape(-1)
        self.start = np.asarray(start, dtype=np.int64).reshape(-1)
        self.length = np.asarray(length, dtype=np.int64).reshape(-1)
        if self.start.shape != self.length.shape:
            raise ValueError(
                f"start and length must have the same shape, got {self.start.shape} "
                f"and {self.length.shape}"
            )
        if len(self.start) and (
            int(self.start.min()) < 0
            or int(self.length.min()) < 0
            or int((self.start + self.length).max()) > len(self.data)
        ):
            raise ValueError("payload ranges must lie inside data")

    @classmethod
    def from_payloads(cls, payloads: Sequence[bytes]) -> PackedPayloads:
        """Pack a list of payloads (concatenated)."""
        length = np.fromiter(map(len, payloads), np.int64, len(payloads))
        start = np.cumsum(length) - length
        return cls(np.frombuffer(b"".join(payloads), np.uint8), start, length)

    def __len__(self) -> int:
        return len(self.start)

    def __getitem__(self, i: int) -> bytes:  # type: ignore[override]
        a = int(self.start[i])
        return self.data[a : a + int(self.length[i])].tobytes()

    def take(self, idx: npt.NDArray[np.int64], length: int) -> npt.NDArray[np.uint8]:
        """Payloads ``idx`` (all of ``length`` bytes) as a ``(len(idx), length)`` array."""
        st = self.start[idx]
        if len(st) > 1 and length:
            d = np.diff(st)
            step = int(d[0])
            if step >= length and bool(np.all(d == step)):  # evenly spaced: a strided view
                a = int(st[0])
                rows = self.data[a : a + step * (len(st) - 1) + length]
                return np.lib.stride_tricks.as_strided(
                    rows, (len(st), length), (step, 1), writeable=False
                )
        if not len(st) or not length:
            return np.zeros((len(st), length), np.uint8)
        # every byte offset of the buffer as the start of a row of ``length`` bytes (a view),
        # then one row gather: no per-byte index array
        rows = np.lib.stride_tricks.as_strided(
            self.data, (len(self.data) - length + 1, length), (1, 1), writeable=False
        )
        return rows[st]


def _readonly(a: npt.NDArray[_T]) -> npt.NDArray[_T]:
    """A read-only, C-contiguous view (the kernels are compiled for one array type only)."""
    a = np.ascontiguousarray(a)
    if a.flags.writeable:
        a = a.view()
        a.flags.writeable = False
    return a


def _packed(
    payloads: Sequence[bytes],
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """``(buffer, start, length)`` of the payloads: the buffer itself for :class:`PackedPayloads`,
    else the payloads joined (the one per-packet Python step of the list path)."""
    if isinstance(payloads, PackedPayloads):
        return (
            _readonly(payloads.data),
            np.ascontiguousarray(payloads.start),
            np.ascontiguousarray(payloads.length),
        )
    length = np.fromiter(map(len, payloads), np.int64, len(payloads))
    start = np.cumsum(length) - length
    return _readonly(np.frombuffer(b"".join(payloads), np.uint8)), start, length


_PACK_CHUNK: Final = 4096  # packets joined at once: a small buffer the allocator reuses


def _pack_by_code(
    payloads: Sequence[bytes], codes: npt.NDArray[np.int64], n_codes: int
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Pack the payloads into one buffer with those of each code together (arrival order).

    Returns ``(buffer, start, length)`` per payload. The payloads are joined in arrival order a
    chunk at a time (small buffers the allocator reuses, read in memory order) and copied into
    place by :func:`imuhip.ingest._decode_kernels.gather_payloads`; codes must lie in ``[0,
    n_codes)``.
    """
    n = len(payloads)
    length = np.fromiter(map(len, payloads), np.int64, n)
    per_code = np.bincount(codes, weights=length, minlength=n_codes).astype(np.int64)
    cursor = np.cumsum(per_code) - per_code
    buf = np.empty(int(per_code.sum()), np.uint8)
    start = np.empty(n, np.int64)
    for a in range(0, n, _PACK_CHUNK):
        b = min(n, a + _PACK_CHUNK)
        chunk = np.frombuffer(b"".join(payloads[a:b]), np.uint8)
        ln, cd = length[a:b], codes[a:b]
        _kd.gather_payloads(chunk, np.cumsum(ln) - ln, ln, cd, 0, cursor, buf, start[a:b])
        cursor += np.bincount(cd, weights=ln, minlength=n_codes).astype(np.int64)
    buf.flags.writeable = False
    return buf, start, length
