"""Imported samples -> a native ``.imrec`` recording, re-encoded in the imuhip packet protocol.

The faithful route: the samples are quantised to int16 with scale factors chosen from the data
(full scale = 1.001 x the largest magnitude per quantity, never below ±2 g, ±250 °/s, ±100 µT),
packed into protocol-v1 packets exactly as a sensor would send them, and written with
:class:`~imuhip.ingest.recording.RecordingWriter`. Analysis then runs on the file exactly as on a
native session (decode -> align -> fuse -> ...). The quantisation error is at most half a count:
``lsb / 2`` per channel (for a walking trial with peaks of 4 g and 10 rad/s: 0.6 mm/s² and
0.15 mrad/s), and is stored in the metadata (``extra["import"]["quantisation"]``).

Every imported sample is written. Packets follow the sensor's grid blocks of ``n`` samples; a
block with missing samples (rows the importer treated as missing, or skipped time stamps) is
sent as shorter packets of its consecutive samples, each with the device time of its first
sample, so the decoder places every sample at its index and reports exactly the missing ones as
a gap (``DecodeStats.gaps``, ``lost_samples``). No packet is lost on air (``seq`` is
contiguous).
"""

from __future__ import annotations

import logging
import math
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import numpy as np

from imuhip.conventions import GRAVITY_M_S2
from imuhip.errors import ImportFormatError
from imuhip.ingest import protocol
from imuhip.ingest.recording import RecordingWriter
from imuhip.interop._common import FloatArray, ImportedSensor
from imuhip.interop.plausibility import quarantine_impossible
from imuhip.types import RawPacket, SensorMeta, SessionEvent, SessionMeta

__all__ = ["choose_lsb", "quantise", "write_native_recording"]

log = logging.getLogger(__name__)

HOST_BASE_NS: Final = 1_000_000_000
"""Host receive time of the session's first sample (arbitrary, positive)."""
LATENCY_S: Final = 0.005
"""Delay between a packet's last sample and its (simulated) host receive time."""
ATT_MTU: Final = 247

_FLOOR: Final = {"acc": 2.0 * GRAVITY_M_S2, "gyr": 250.0 * math.pi / 180.0, "mag": 100.0}


def choose_lsb(values: FloatArray | None, quantity: str) -> float:
    """Scale factor (SI per count) so the largest magnitude fits int16 with 0.1 % headroom.

    Parameters
    ----------
    values : (N, 3) float64 or None
    quantity : {"acc", "gyr", "mag"}
    """
    floor = _FLOOR[quantity]
    peak = 0.0 if values is None or values.size == 0 else float(np.nanmax(np.abs(values)))
    return max(peak * 1.001, floor) / 32767.0


def quantise(values: FloatArray, lsb: float) -> np.ndarray:
    """Round to int16 counts (``values / lsb``), shape preserved."""
    counts = np.rint(values / lsb)
    if counts.size and (counts.min() < -32768 or counts.max() > 32767):
        raise ValueError("values exceed the int16 range for this lsb")
    return counts.astype(np.int16)


def _counts(sensor: ImportedSensor, meta: SensorMeta) -> np.ndarray:
    """(N, 6 or 9) int16 counts: acc, gyr[, mag], quantised with the scale factors of ``meta``."""
    assert sensor.gyr_rad_s is not None
    parts = [
        quantise(sensor.acc_m_s2, meta.acc_lsb_m_s2),
        quantise(sensor.gyr_rad_s, meta.gyr_lsb_rad_s),
    ]
    if sensor.mag_ut is not None:
        parts.append(quantise(sensor.mag_ut, meta.mag_lsb_ut))
    return np.concatenate(parts, axis=1)


def _packetise(sensor: ImportedSensor, counts: np.ndarray, t0_s: float, n: int) -> list[RawPacket]:
    """Every sample in packets of at most ``n``: grid blocks, split where a sample is missing."""
    idx = sensor.sample_idx
    out: list[RawPacket] = []
    if len(idx) == 0:
        return out
    # a packet holds consecutive samples of one grid block [k n, (k + 1) n): it ends at a block
    # boundary (so complete data gives the same packets as a sensor) or where a sample is missing
    cut = np.flatnonzero((np.diff(idx) != 1) | (idx[1:] % n == 0)) + 1
    starts = np.concatenate([[0], cut])
    stops = np.concatenate([cut, [len(idx)]])
    t_rel_us = np.rint((sensor.t_s - t0_s) * 1e6).astype(np.int64)
    host_ns = HOST_BASE_NS + np.rint((sensor.t_s - t0_s + LATENCY_S) * 1e9).astype(np.int64)
    for seq, (a, b) in enumerate(zip(starts.tolist(), stops.tolist(), strict=True)):
        # every packet is sent (seq + 1 each): a missing sample is a jump of the device time
        # between packets, which the decoder turns into a gap of exactly the missing samples
        payload = protocol.encode_packet(seq, int(t_rel_us[a]), counts[a:b])
        out.append(RawPacket(sensor.placement, int(host_ns[b - 1]), payload))
    return out


def _round_trip_ok(
    packets: list[RawPacket], meta: SensorMeta, sensor: ImportedSensor, counts: np.ndarray
) -> bool:
    """Decode ``packets`` and check every sample comes back at its index with its counts."""
    from imuhip.ingest.decode import decode_sensor_packets

    dec = decode_sensor_packets(packets, meta)
    want_idx = sensor.sample_idx - sensor.sample_idx[0]
    if not np.array_equal(dec.sample_idx - dec.sample_idx[0], want_idx):
        return False
    got = np.rint(dec.gyr_rad_s / meta.gyr_lsb_rad_s)
    return bool(np.array_equal(got, counts[:, 3:6]))


def _packets(sensor: ImportedSensor, meta: SensorMeta, t0_s: float) -> list[RawPacket]:
    """All samples of ``sensor`` as protocol-v1 packets, checked by decoding them again.

    Raises
    ------
    ImportFormatError
        If the decoded samples differ from the imported ones (never written silently).
    """
    counts = _counts(sensor, meta)
    n = protocol.samples_per_packet(ATT_MTU, sensor.rate_hz, sensor.mag_ut is not None)
    packets = _packetise(sensor, counts, t0_s, n)
    if len(packets) == 0 or _round_trip_ok(packets, meta, sensor, counts):
        return packets
    # packets of different lengths are the only difference from the layout a sensor always
    # sends; one sample per packet has one length and is still the protocol
    log.info(
        "%s: packets of mixed length did not decode to the imported samples (decoder); "
        "writing one sample per packet",
        sensor.source,
    )
    packets = _packetise(sensor, counts, t0_s, 1)
    if not _round_trip_ok(packets, meta, sensor, counts):
        raise ImportFormatError(
            f"{sensor.source}: the re-encoded samples do not decode to the imported ones "
            f"({len(sensor)} samples); nothing was written"
        )
    return packets


def write_native_recording(
    sensors: Sequence[ImportedSensor],
    path: str | Path,
    *,
    subject: str = "imported",
    session_id: str | None = None,
    start_wall_time: str | None = None,
    notes: str = "",
    source_format: str = "generic_csv",
    overwrite: bool = False,
) -> SessionMeta:
    """Re-encode imported sensors as protocol-v1 packets and write a ``.imrec`` recording.

    Parameters
    ----------
    sensors : sequence of ImportedSensor
        Each with a gyroscope (the orientation-only path does not go through here). All files
        share one time base (their ``t_s`` columns), and one rate.
    path : str or Path
        The recording to create.
    subject : str
        Pseudonym (never a name).

    Returns
    -------
    SessionMeta
        The header written.

    Raises
    ------
    ImportFormatError
        A sensor without gyroscope, duplicated placements, mixed rates, or sensors whose times
        do not overlap.
    """
    if not sensors:
        raise ImportFormatError("nothing to import: no sensor files given")
    # the int16 scale is chosen from the data: an impossible row must never set it (no-op for
    # sensors the importer already checked)
    sensors = [quarantine_impossible(s) for s in sensors]
    seen: dict[str, str] = {}
    for s in sensors:
        if s.gyr_rad_s is None:
            raise ImportFormatError(
                f"{s.source}: no gyroscope columns (gyr_x_rad_s ...): a native recording needs "
                "them; orientation-only data goes through the vendor-orientation path"
            )
        if s.placement in seen:
            raise ImportFormatError(
                f"{s.source}: placement {s.placement!r} already given by {seen[s.placement]}"
            )
        seen[s.placement] = s.source
    rates = {Path(s.source).name: s.rate_hz for s in sensors}
    r0 = sensors[0].rate_hz
    for s in sensors[1:]:
        if abs(s.rate_hz - r0) > 0.01 * r0:
            raise ImportFormatError(
                f"{s.source}: rate {s.rate_hz:.6g} Hz differs from {sensors[0].source} "
                f"({r0:.6g} Hz): mixed rates; expected one rate for all sensor files"
            )
    t_start = max(float(s.t_s[0]) for s in sensors)
    t_end = min(float(s.t_s[-1]) for s in sensors)
    if t_end <= t_start:
        raise ImportFormatError(
            "the sensor files do not overlap in time (their t_s columns share no interval): "
            + ", ".join(f"{s.source} {s.t_s[0]:.3f}-{s.t_s[-1]:.3f} s" for s in sensors)
        )
    t0 = min(float(s.t_s[0]) for s in sensors)
    metas: list[SensorMeta] = []
    quant: dict[str, dict[str, float]] = {}
    for s in sensors:
        acc_lsb = choose_lsb(s.acc_m_s2, "acc")
        gyr_lsb = choose_lsb(s.gyr_rad_s, "gyr")
        mag_lsb = choose_lsb(s.mag_ut, "mag") if s.mag_ut is not None else protocol.MAG_LSB_UT
        metas.append(
            SensorMeta(
                placement=s.placement,
                rate_hz=float(s.rate_hz),
                acc_lsb_m_s2=acc_lsb,
                gyr_lsb_rad_s=gyr_lsb,
                mag_lsb_ut=mag_lsb,
                has_mag=s.mag_ut is not None,
                model=s.model or f"imported:{source_format}",
                serial=s.serial,
                firmware=s.firmware,
                protocol="imuhip",
                acc_range_g=acc_lsb * 32768.0 / GRAVITY_M_S2,
                gyr_range_dps=gyr_lsb * 32768.0 * 180.0 / math.pi,
            )
        )
        quant[s.placement] = {
            "acc_max_error_m_s2": acc_lsb / 2,
            "gyr_max_error_rad_s": gyr_lsb / 2,
            **({"mag_max_error_ut": mag_lsb / 2} if s.mag_ut is not None else {}),
        }
    extra: dict[str, Any] = {
        "import": {
            "format": source_format,
            # file names only: folders often carry the patient's name (subjects are pseudonyms)
            "files": {s.placement: Path(s.source).name for s in sensors},
            "rates_hz": rates,
            "quantisation": quant,
            "notes": [n for s in sensors for n in s.notes],
            # the files carry no start time: start_wall_time below is the import's, not the
            # recording's (Motion-BIDS writes acq_time n/a for it)
            "source_start_time": None,
            "body_sites": {s.placement: s.body_site for s in sensors if s.body_site},
        }
    }
    meta = SessionMeta(
        session_id=session_id or f"import-{uuid.uuid4().hex[:12]}",
        start_wall_time=start_wall_time or datetime.now(UTC).isoformat(timespec="seconds"),
        subject=subject,
        sensors=tuple(metas),
        software="imuhip import",
        notes=notes,
        extra=extra,
    )
    packets = [p for s, m in zip(sensors, metas, strict=True) for p in _packets(s, m, t0)]
    packets.sort(key=lambda p: p.host_rx_ns)
    with RecordingWriter(path, meta, overwrite=overwrite) as w:
        for s in sensors:
            w.write_event(
                SessionEvent(
                    HOST_BASE_NS - 1, "connect", s.placement, {"imported_from": Path(s.source).name}
                )
            )
        for p in packets:
            w.write_packet(p)
        log.info("wrote %d packets of %d sensors to %s", len(packets), len(sensors), path)
    return meta
