"""Rows and heading anchor knots that :class:`imuhip.live.hips.LiveHips` keeps per sensor."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

__all__ = ["Knots", "Store"]

FloatArray = npt.NDArray[np.float64]


@dataclass
class Store:
    """One sensor's fused rows on the grid, from grid index ``k0`` on."""

    k0: int | None = None
    q: FloatArray = field(default_factory=lambda: np.empty((0, 4)))
    acc: FloatArray = field(default_factory=lambda: np.empty((0, 3)))
    gyr: FloatArray = field(default_factory=lambda: np.empty((0, 3)))
    mag: FloatArray | None = None
    valid: npt.NDArray[np.bool_] = field(default_factory=lambda: np.empty(0, bool))
    epoch: npt.NDArray[np.int64] = field(default_factory=lambda: np.empty(0, np.int64))

    @property
    def k_end(self) -> int:
        """One past the last grid index held (``k0`` when empty)."""
        return (self.k0 or 0) + len(self.valid)

    def append(
        self,
        k0: int,
        q: FloatArray,
        acc: FloatArray,
        gyr: FloatArray,
        mag: FloatArray | None,
        valid: npt.NDArray[np.bool_],
        epoch: int,
    ) -> None:
        if self.k0 is None:
            self.k0 = k0
            if mag is not None:
                self.mag = np.empty((0, 3))
        end = self.k_end
        if k0 < end:  # overlap (clock model moved back): keep what is there
            cut = end - k0
            q, acc, gyr, valid = q[cut:], acc[cut:], gyr[cut:], valid[cut:]
            mag = None if mag is None else mag[cut:]
            k0 = end
        if not len(valid):
            return
        pad = k0 - end  # rows never produced (between runs): invalid, no epoch
        ep = np.full(pad + len(valid), epoch, np.int64)
        ep[:pad] = -1
        q_pad = np.tile([1.0, 0.0, 0.0, 0.0], (pad, 1))
        z = np.zeros((pad, 3))
        self.q = np.concatenate([self.q, q_pad, q])
        self.acc = np.concatenate([self.acc, z, acc])
        self.gyr = np.concatenate([self.gyr, z, gyr])
        if self.mag is not None:
            self.mag = np.concatenate([self.mag, z, np.zeros_like(acc) if mag is None else mag])
        self.valid = np.concatenate([self.valid, np.zeros(pad, bool), valid])
        self.epoch = np.concatenate([self.epoch, ep])

    def holds(self, ka: int, kb: int) -> bool:
        """Whether every grid index of ``[ka, kb)`` is held (``ka <= kb``)."""
        return self.k0 is not None and ka <= kb and self.k0 <= ka and self.k_end >= kb

    def rows(self, ka: int, kb: int) -> slice:
        """Row slice of grid indices ``[ka, kb)``."""
        base = self.k0 or 0
        return slice(ka - base, kb - base)

    def trim(self, keep_from: int) -> None:
        """Forget rows before grid index ``keep_from``."""
        if self.k0 is None or keep_from <= self.k0:
            return
        n = min(keep_from - self.k0, len(self.valid))
        self.q, self.acc, self.gyr = self.q[n:], self.acc[n:], self.gyr[n:]
        self.mag = None if self.mag is None else self.mag[n:]
        self.valid, self.epoch = self.valid[n:], self.epoch[n:]
        self.k0 += n


@dataclass
class Knots:
    """Anchor knots (window centre row, unwrapped offset) of one thigh in one epoch pair."""

    centres: list[float] = field(default_factory=list)
    offs: list[float] = field(default_factory=list)
    first_end: int = 0  # end (exclusive) of the first anchor window: re-converging before it

    def add(self, centre: float, off: float, end: int) -> None:
        if not self.centres:
            self.first_end = end
        i = int(np.searchsorted(self.centres, centre))
        if self.offs:  # unwrap against the neighbouring knot
            ref = self.offs[i - 1] if i > 0 else self.offs[0]
            off = ref + (off - ref + np.pi) % (2 * np.pi) - np.pi
        self.centres.insert(i, centre)
        self.offs.insert(i, off)

    def forget_before(self, k: int) -> None:
        """Drop knots no row from grid row ``k`` on interpolates with (all but the last one at
        or before ``k``): bounded memory over any session length."""
        i = int(np.searchsorted(self.centres, k, side="right")) - 1
        if i > 0:
            del self.centres[:i], self.offs[:i]
