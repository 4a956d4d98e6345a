"""Faults a virtual sensor injects (:class:`Faults`) and its packet log (:class:`SentRecord`)."""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["Faults", "SentRecord"]


@dataclass(frozen=True, slots=True)
class Faults:
    """Faults a virtual sensor injects.

    Parameters
    ----------
    disconnects : tuple of (start_s, down_s)
        At virtual ``start_s`` (seconds since the sensor's first START, i.e. at a fixed sample
        index) the sensor drops the link (from its side, like a sensor walking out of range)
        and stays unreachable for ``down_s`` virtual seconds; it keeps sampling. Then it
        advertises and holds the fleet's :class:`~imuhip.sources.virtual.clock.VirtualClock` until
        the
        host has started it again, so exactly the packets due in ``[start_s, start_s + down_s)``
        are lost to the outage. Windows must be sorted and must not overlap.
    loss_prob : float
        Probability that a packet is lost over the air (seeded, reproducible).
    burst_interval_s : float or None
        Connection-interval bursts: packets are held and released together at multiples of
        this interval (real links: 7.5-100 ms; bursts of 4+ packets are common).
    max_mtu : int
        Largest ATT MTU the sensor negotiates (23 means: no room for samples).
    refuse_connect : bool
        The sensor drops every connection immediately (never usable).
    garbage_every : int
        After every ``garbage_every``-th packet, send one garbage notification (0: never).
    flood : int
        Garbage notifications sent per real packet (a misbehaving peer), 0: none.
    bad_info : bool
        The info characteristic does not hold a protocol v1 record.
    seed : int
        Seed of the loss and garbage generators.
    """

    disconnects: tuple[tuple[float, float], ...] = ()
    loss_prob: float = 0.0
    burst_interval_s: float | None = None
    max_mtu: int = 247
    refuse_connect: bool = False
    garbage_every: int = 0
    flood: int = 0
    bad_info: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0.0 <= self.loss_prob < 1.0:
            raise ValueError(f"loss_prob must be in [0, 1), got {self.loss_prob}")
        if not 23 <= self.max_mtu <= 517:
            raise ValueError(f"max_mtu must be in 23..517, got {self.max_mtu}")
        end_prev = -math.inf
        for start_s, down_s in self.disconnects:
            if not (start_s >= 0 and down_s > 0):
                raise ValueError(f"disconnect ({start_s}, {down_s}) needs start >= 0, down > 0")
            if start_s <= end_prev:
                raise ValueError(
                    f"disconnect ({start_s}, {down_s}) starts before the previous outage ends "
                    f"at {end_prev} s: windows must be sorted and must not overlap"
                )
            end_prev = start_s + down_s


@dataclass(frozen=True, slots=True)
class SentRecord:
    """One packet the device produced; ``status``: ``sent``, ``lost``, ``down`` or ``idle``."""

    seq: int  # unwrapped packet counter
    first_idx: int
    n: int
    t_virtual_s: float
    status: str
    payload: bytes = b""
