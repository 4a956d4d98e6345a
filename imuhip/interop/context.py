"""What every exporter gets (:class:`ExportContext`) and the overwrite rule (:func:`check_targets`).

An exporter is ``(ctx: ExportContext, out_dir: Path, force: bool) -> list[Path]``; it calls
:func:`check_targets` on every path it will write *before* writing any, so an export never
half-overwrites a previous one. The format registry is ``imuhip.cli.commands.export.FORMATS``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from imuhip.errors import ImuhipError
from imuhip.ingest.decode import decode_session
from imuhip.ingest.recording import Recording
from imuhip.types import ImuSamples

if TYPE_CHECKING:  # pandas is imported only when exporting (keeps ``imuhip --help`` fast)
    import pandas as pd

__all__ = ["ExportContext", "Exporter", "build_context", "check_targets"]


@dataclass(frozen=True, slots=True)
class ExportContext:
    """Everything an exporter may need, computed once.

    Attributes
    ----------
    source : Path
        The recording file.
    rec : Recording
    samples : dict placement -> ImuSamples
        Decoded, device clock.
    t_s : dict placement -> (N,) float64
        Session seconds of every decoded sample.
    time_basis : str
        ``"session_clock"`` or ``"device_clock"`` (:mod:`imuhip.report.tables`).
    t0_ns : int
        Host ``monotonic_ns`` of session time zero.
    tables : dict placement -> DataFrame
        :func:`imuhip.report.tables.sensor_table` of each sensor.
    """

    source: Path
    rec: Recording
    samples: dict[str, ImuSamples]
    t_s: dict[str, Any]
    time_basis: str
    t0_ns: int
    tables: dict[str, pd.DataFrame]


Exporter = Callable[[ExportContext, Path, bool], list[Path]]


def check_targets(paths: list[Path], force: bool) -> None:
    """Refuse (``ImuhipError``) if any target exists and ``force`` is false; nothing is written."""
    existing = [p for p in paths if p.exists()]
    if existing and not force:
        names = ", ".join(str(p) for p in existing[:3]) + (" ..." if len(existing) > 3 else "")
        raise ImuhipError(f"refusing to overwrite existing file(s): {names} (use --force)")
    for p in existing:
        if p.is_dir():
            raise ImuhipError(f"{p} is a directory; cannot write a file there")


def build_context(source: Path, rec: Recording, *, use_align: bool = True) -> ExportContext:
    """Decode ``rec``, put it on the session clock and build the per-sensor tables."""
    from imuhip.report.tables import sensor_table, session_t0_ns, session_times

    samples = decode_session(rec.packets, rec.meta)
    default_t0 = min((p.host_rx_ns for p in rec.packets), default=0)
    t0 = session_t0_ns(samples, default_t0)
    t_s, basis = session_times(samples, t0, use_align=use_align, events=rec.events)
    tables = {k: sensor_table(s, t_s[k]) for k, s in samples.items()}
    return ExportContext(source, rec, samples, t_s, basis, t0, tables)
