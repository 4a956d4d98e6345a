"""Decoding whole sensors and sessions, dispatched per protocol (:data:`DECODERS`).

Packets are grouped by ``RawPacket.sensor``; each sensor of the session metadata is decoded by
the batch decoder registered for its ``SensorMeta.protocol`` (imuhip's own:
:func:`decode_sensor_packets`, a single :meth:`StreamDecoder.push`; other protocol packages
register theirs when imported). Packets of sensors not in the metadata are counted and logged.
"""

from __future__ import annotations

import dataclasses
import logging
import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Final

import numpy as np
import numpy.typing as npt

from imuhip.errors import ProtocolError
from imuhip.ingest.decode.payloads import PackedPayloads, _pack_by_code
from imuhip.ingest.decode.stream import _HOST, _PAYLOAD, StreamDecoder
from imuhip.ingest.parallel import THREAD_MIN_ROWS, map_sensors
from imuhip.types import ImuSamples, RawPacket, SensorMeta, SessionMeta

_LOG = logging.getLogger("imuhip.ingest.decode")  # the stage's documented logger name


def decode_sensor_packets(packets: Sequence[RawPacket], meta: SensorMeta) -> ImuSamples:
    """Decode all packets of ONE sensor (any arrival order) into samples on its device clock.

    Parameters
    ----------
    packets : sequence of RawPacket
        This sensor's notifications in arrival order (``packet.sensor`` is not checked).
    meta : SensorMeta
        Scale factors, nominal ``rate_hz``, ``has_mag``.

    Returns
    -------
    ImuSamples
        Sorted by ``sample_idx``; malformed, duplicate and lost packets are in ``stats``. Never
        raises for bad packet contents.
    """
    dec = StreamDecoder(meta)
    return _finished(dec, dec.push(packets))


def decode_sensor_arrays(
    payloads: PackedPayloads, host_rx_ns: npt.ArrayLike, meta: SensorMeta
) -> ImuSamples:
    """:func:`decode_sensor` for packets given as arrays (no :class:`RawPacket` per packet).

    Parameters
    ----------
    payloads : PackedPayloads
        ONE sensor's payloads in arrival order.
    host_rx_ns : (P,) int
        Their host receive times, ns.
    meta : SensorMeta

    Returns
    -------
    ImuSamples
        Equal to :func:`decode_sensor` of the same packets. Sensors of another protocol than
        ``"imuhip"`` are decoded through their registered packet decoder.
    """
    if meta.protocol == "imuhip":
        dec = StreamDecoder(meta)
        return _finished(dec, dec.push_arrays(payloads, host_rx_ns))
    host = np.asarray(host_rx_ns, dtype=np.int64).reshape(-1)
    if len(host) != len(payloads):
        raise ValueError(f"host_rx_ns has {len(host)} entries for {len(payloads)} payloads")
    packets = [RawPacket(meta.placement, int(h), payloads[i]) for i, h in enumerate(host.tolist())]
    return decode_sensor(packets, meta)


DECODERS: dict[str, Callable[[Sequence[RawPacket], SensorMeta], ImuSamples]] = {
    "imuhip": decode_sensor_packets,
}
"""Batch decoder per ``SensorMeta.protocol``; other protocol modules register themselves here."""

STREAM_DECODERS: dict[str, Callable[[SensorMeta], StreamDecoder]] = {"imuhip": StreamDecoder}
"""Streaming decoder class per protocol (``push(packets) -> ImuSamples``, ``stats``), same rule."""

_PROTOCOL_PACKAGES: Final = {"movesense": "imuhip.sources.movesense"}
"""Packages that register their protocol's decoders when imported (loaded on first use)."""


def _load_protocol(name: str) -> None:
    """Import the package of protocol ``name`` so it registers its decoders (no-op if unknown)."""
    module = _PROTOCOL_PACKAGES.get(name)
    if module is not None and name not in DECODERS:
        import importlib

        importlib.import_module(module)


def stream_decoder_for(meta: SensorMeta) -> StreamDecoder:
    """A fresh streaming decoder for ``meta.protocol`` (``ProtocolError`` if none is known)."""
    _load_protocol(meta.protocol)
    factory = STREAM_DECODERS.get(meta.protocol)
    if factory is None:
        raise ProtocolError(
            f"sensor {meta.placement!r} speaks protocol {meta.protocol!r}; no stream decoder "
            f"registered (known: {', '.join(sorted(STREAM_DECODERS))})",
            "protocol",
        )
    return factory(meta)


def decode_sensor(packets: Sequence[RawPacket], meta: SensorMeta) -> ImuSamples:
    """Decode all packets of one sensor with the batch decoder of ``meta.protocol``.

    Raises
    ------
    ProtocolError
        ``reason="protocol"`` if no decoder is registered for ``meta.protocol``.
    """
    _load_protocol(meta.protocol)
    decoder = DECODERS.get(meta.protocol)
    if decoder is None:
        raise ProtocolError(
            f"sensor {meta.placement!r} speaks protocol {meta.protocol!r}; no decoder "
            f"registered (known: {', '.join(sorted(DECODERS))})",
            "protocol",
        )
    return decoder(packets, meta)


_THREAD_MIN_PACKETS: Final = THREAD_MIN_ROWS // 10
"""Packets per sensor from which the sensors are decoded in threads (~10 samples a packet)."""


def decode_session_arrays(
    payloads: Mapping[str, PackedPayloads],
    host_rx_ns: Mapping[str, npt.ArrayLike],
    meta: SessionMeta,
) -> dict[str, ImuSamples]:
    """:func:`decode_session` for packets already grouped per sensor as arrays.

    Parameters
    ----------
    payloads : mapping of placement to PackedPayloads
        Each sensor's payloads in arrival order (e.g.
        :attr:`imuhip.ingest.recording.PacketArrays.payloads`); a sensor of ``meta`` missing here
        has
        no packets.
    host_rx_ns : mapping of placement to (P,) int
    meta : SessionMeta

    Returns
    -------
    dict of str to ImuSamples
        Equal to :func:`decode_session` of the same packets. Entries for placements not in
        ``meta`` are counted and logged (warning), never fatal.
    """
    known = {s.placement for s in meta.sensors}
    unknown = {k: len(v) for k, v in payloads.items() if k not in known and len(v)}
    if unknown:
        _LOG.warning(
            "ignored packets of sensors not in the session metadata: %s",
            ", ".join(f"{k!r} ({v})" for k, v in sorted(unknown.items())),
        )
    empty = PackedPayloads(np.zeros(0, np.uint8), np.zeros(0, np.int64), np.zeros(0, np.int64))

    def decode(s: SensorMeta) -> ImuSamples:
        return decode_sensor_arrays(
            payloads.get(s.placement, empty), host_rx_ns.get(s.placement, np.zeros(0, np.int64)), s
        )

    sensors = list(meta.sensors)
    rows = max(map(len, payloads.values()), default=0)
    decoded = map_sensors(decode, sensors, rows, _THREAD_MIN_PACKETS)  # independent sensors
    return {s.placement: d for s, d in zip(sensors, decoded, strict=True)}


class _SensorCodes(dict[str, int]):
    """Sensor name -> index in the session; -1 for a name not in the session."""

    def __missing__(self, key: str) -> int:
        return -1


_SENSOR: Final = operator.attrgetter("sensor")


def decode_session(packets: Iterable[RawPacket], meta: SessionMeta) -> dict[str, ImuSamples]:
    """Decode a whole session: group packets by ``RawPacket.sensor`` and dispatch per protocol.

    Packets of sensors absent from ``meta`` are counted and logged (warning), never fatal.
    Every sensor of ``meta`` gets an entry, empty if nothing of it was decodable. Sensors of the
    imuhip protocol are decoded from their payloads packed into one buffer
    (:meth:`StreamDecoder.push_arrays`, equal to :func:`decode_sensor_packets`): the only
    per-packet Python work is taking the three fields of each packet.

    Raises
    ------
    ProtocolError
        ``reason="protocol"`` if a sensor declares a protocol no decoder is registered for.
    """
    pk = packets if isinstance(packets, list | tuple) else list(packets)
    codes_of = _SensorCodes()
    for s in meta.sensors:
        codes_of.setdefault(s.placement, len(codes_of))
    n = len(pk)
    codes = np.fromiter(map(codes_of.__getitem__, map(_SENSOR, pk)), np.int64, n)
    bad = np.flatnonzero(codes < 0)
    if len(bad):
        unknown: dict[str, int] = {}
        for j in bad.tolist():
            unknown[pk[j].sensor] = unknown.get(pk[j].sensor, 0) + 1
        _LOG.warning(
            "ignored packets of sensors not in the session metadata: %s",
            ", ".join(f"{k!r} ({v})" for k, v in sorted(unknown.items())),
        )
    # the payloads of all packets packed per sensor, and the host times, taken once (only if an
    # imuhip sensor needs them)
    packed: tuple[PackedPayloads, npt.NDArray[np.int64]] | None = None
    out: dict[str, ImuSamples] = {}
    for s in meta.sensors:
        mine = np.flatnonzero(codes == codes_of[s.placement])
        _load_protocol(s.protocol)
        if DECODERS.get(s.protocol) is decode_sensor_packets:  # imuhip: the array path
            if packed is None:
                sink = np.where(codes < 0, len(codes_of), codes)  # unknown sensors: not decoded
                buf, start, length = _pack_by_code(list(map(_PAYLOAD, pk)), sink, len(codes_of) + 1)
                packed = (
                    PackedPayloads(buf, start, length),
                    np.fromiter(map(_HOST, pk), np.int64, n),
                )
            allp, host = packed
            dec = StreamDecoder(s)
            out[s.placement] = _finished(
                dec,
                dec.push_arrays(
                    PackedPayloads(allp.data, allp.start[mine], allp.length[mine]), host[mine]
                ),
            )
        else:
            out[s.placement] = decode_sensor([pk[j] for j in mine.tolist()], s)
    return out


def _finished(dec: StreamDecoder, smp: ImuSamples) -> ImuSamples:
    """``smp`` with the packets the decoder still holds at the end counted, not silently lost.

    A batch has no later packet to confirm a jump of its last one or two packets (or to show them
    as outliers): they are counted as ``protocol_errors["unconfirmed_jump"]``.
    """
    n = dec.held_packets
    if not n:
        return smp
    errors = dict(smp.stats.protocol_errors)
    errors["unconfirmed_jump"] = errors.get("unconfirmed_jump", 0) + n
    stats = dataclasses.replace(smp.stats, protocol_errors=dict(sorted(errors.items())))
    return dataclasses.replace(smp, stats=stats)
