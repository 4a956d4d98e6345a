"""What a decode counts: packets, samples, protocol errors by reason, duplicates, losses, gaps.

:class:`_Totals` accumulates the counts of one push and of a whole stream and freezes them into
the :class:`~imuhip.types.DecodeStats` carried by every :class:`~imuhip.types.ImuSamples`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

import numpy as np

from imuhip.types import DecodeStats, Gap, ImuSamples, SensorMeta

MAX_ERROR_LOG: Final = 20
"""How many protocol-error messages :class:`DecodeStats` keeps (the counts are always complete)."""


@dataclass(slots=True)
class _Totals:
    packets_received: int = 0
    packets_decoded: int = 0
    samples_decoded: int = 0
    protocol_errors: dict[str, int] = field(default_factory=dict)
    duplicates: int = 0
    reordered: int = 0
    lost_packets: int = 0
    lost_samples: int = 0
    gaps: list[Gap] = field(default_factory=list)
    overlapping_samples: int = 0
    clock_resyncs: int = 0
    clock_steps: int = 0
    late_packets: int = 0
    error_log: list[str] = field(default_factory=list)

    def freeze(self) -> DecodeStats:
        return DecodeStats(
            packets_received=self.packets_received,
            packets_decoded=self.packets_decoded,
            samples_decoded=self.samples_decoded,
            protocol_errors=dict(sorted(self.protocol_errors.items())),
            duplicates=self.duplicates,
            reordered=self.reordered,
            lost_packets=self.lost_packets,
            lost_samples=self.lost_samples,
            gaps=tuple(self.gaps),
            overlapping_samples=self.overlapping_samples,
            clock_resyncs=self.clock_resyncs,
            clock_steps=self.clock_steps,
            late_packets=self.late_packets,
            error_log=tuple(self.error_log),
        )

    def add(self, other: _Totals) -> None:
        for name in (
            "packets_received",
            "packets_decoded",
            "samples_decoded",
            "duplicates",
            "reordered",
            "lost_packets",
            "lost_samples",
            "overlapping_samples",
            "clock_resyncs",
            "clock_steps",
            "late_packets",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for k, v in other.protocol_errors.items():
            self.protocol_errors[k] = self.protocol_errors.get(k, 0) + v
        self.gaps.extend(other.gaps)
        self.error_log.extend(other.error_log[: MAX_ERROR_LOG - len(self.error_log)])


def empty_samples(meta: SensorMeta, stats: DecodeStats | None = None) -> ImuSamples:
    """An :class:`ImuSamples` with no samples (a sensor that sent nothing decodable)."""
    z3 = np.zeros((0, 3), np.float64)
    return ImuSamples(
        placement=meta.placement,
        rate_hz=float(meta.rate_hz),
        sample_idx=np.zeros(0, np.int64),
        t_dev_s=np.zeros(0, np.float64),
        host_rx_ns=np.zeros(0, np.int64),
        acc_m_s2=z3,
        gyr_rad_s=z3.copy(),
        mag_ut=z3.copy() if meta.has_mag else None,
        saturated=np.zeros(0, np.bool_),
        stats=stats if stats is not None else _Totals().freeze(),
    )
