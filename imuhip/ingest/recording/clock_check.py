"""Device clocks and declared rates of a recording checked against its packets.

The imuhip decoder places every sample by its device time (``t_first_us`` of its packet plus
``k / rate_hz``), so two header faults would lose data without a trace in the packet counts:

* a device clock that **steps** (back or forward) while the packet counter runs on would put the
  following samples on times already covered (a 2 s step back at 100 Hz: 200 samples dropped)
  or open a gap of samples never lost. The decoder re-joins such a step on the counter
  (:mod:`imuhip.ingest.decode.device_time`; a forward step only if the host receive times did
  not see the time pass), and each step is named here with what the decoder did;
* a **declared rate** far from the data's (a header saying 10 Hz for 100 Hz data) crowds ten
  samples onto one slot: 90 % are discarded, or the packets are rejected as outliers.

:func:`check_clocks` reads the packet headers (version, flags, seq, ``t_first_us``, n), measures
each sensor's rate on its device clock (median over consecutive packets) and on the host clock
(samples over the host time span), and returns one warning line per fault. A declared rate off by
more than 20 % whose measured rate both clocks agree on is corrected in the returned metadata
(the line says so); if the clocks disagree, nothing is corrected and the line names all three
rates. Only sensors of the imuhip protocol are checked (Movesense packets have their own layout).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Final

import numpy as np
import numpy.typing as npt

from imuhip.ingest import protocol
from imuhip.ingest.decode.device_time import STEP_PERIODS, rejoin_clock_steps
from imuhip.types import SessionMeta

__all__ = [
    "COVERAGE_TOLERANCE_S",
    "RATE_TOLERANCE",
    "check_clocks",
    "headers_from_buffer",
    "headers_from_payloads",
]

RATE_TOLERANCE: Final = 0.2
"""Relative difference of measured and declared rate beyond which the header is wrong."""
COVERAGE_TOLERANCE_S: Final = 2.0
"""A sensor's data starting or ending this much later or earlier than the others' is named."""
_CLOCKS_AGREE: Final = 0.1  # device- and host-clock rates agree within 10 % (BLE bursts, loss)
_REJOINED: Final = (
    "the packet counter runs on (no packet missing), so the decoder re-joins the device time on "
    "the counter: no sample dropped or misplaced (about {samples} samples would have been), "
    "counted as clock steps"
)
_KEPT: Final = (
    "no packet is missing but the host receive times show the time passing, so the decoder "
    "keeps a gap of about {samples} samples (not counted as lost packets)"
)
_IMPORTED_GAP: Final = (
    "{samples} sample(s) missing from the imported file in {count} gap(s), largest {largest:.3f} "
    "s at {at:.2f} s (the file's sample counter skips them): kept as gaps, not interpolated"
)
_HDR: Final = protocol.HEADER_LEN

Headers = npt.NDArray[np.uint8]


def headers_from_payloads(payloads: Sequence[bytes]) -> Headers:
    """``(P, 9)`` header bytes of the packets long enough to hold a header."""
    rows = [p[:_HDR] for p in payloads if len(p) >= protocol.OVERHEAD]
    if not rows:
        return np.zeros((0, _HDR), np.uint8)
    return np.frombuffer(b"".join(rows), np.uint8).reshape(-1, _HDR)


def headers_from_buffer(
    buf: npt.NDArray[np.uint8], starts: npt.ArrayLike, lengths: npt.ArrayLike
) -> Headers:
    """``(P, 9)`` header bytes of packets stored at ``buf[starts[i]:starts[i] + lengths[i]]``."""
    st = np.asarray(starts, np.int64)[np.asarray(lengths, np.int64) >= protocol.OVERHEAD]
    return np.asarray(buf[st[:, None] + np.arange(_HDR)], np.uint8)


def _fields(h: Headers) -> tuple[npt.NDArray[np.int64], ...]:
    h64 = h.astype(np.int64)
    ok = h64[:, 0] == protocol.PROTOCOL_VERSION
    h64 = h64[ok]
    flags = h64[:, 1]
    seq = h64[:, 2] | (h64[:, 3] << 8)
    t_us = h64[:, 4] | (h64[:, 5] << 8) | (h64[:, 6] << 16) | (h64[:, 7] << 24)
    n = h64[:, 8]
    return flags, seq, t_us, n, np.flatnonzero(ok)


def _signed(d: npt.NDArray[np.int64], modulus: int) -> npt.NDArray[np.int64]:
    return (d + modulus // 2) % modulus - modulus // 2


def _snap(rate_hz: float) -> float:
    near = min(protocol.RATES_HZ, key=lambda r: abs(r - rate_hz))
    return float(near) if abs(near - rate_hz) <= 0.03 * near else round(rate_hz, 1)


def check_clocks(
    meta: SessionMeta, headers: Mapping[str, Headers], host_rx_ns: Mapping[str, npt.ArrayLike]
) -> tuple[SessionMeta, list[str]]:
    """Check each imuhip-protocol sensor's declared rate and device clock (module docstring).

    Parameters
    ----------
    meta : SessionMeta
    headers : dict placement -> (P, 9) uint8
        Packet header bytes in file (= receive) order (:func:`headers_from_payloads`).
    host_rx_ns : dict placement -> (P,) int64
        Host receive times of the same packets.

    Returns
    -------
    meta : SessionMeta
        ``meta`` with wrong declared rates corrected (unchanged when none was).
    warnings : list of str
        One line per fault, naming the sensor, what was found and what it does to the data.
    """
    lines: list[str] = []
    sensors = list(meta.sensors)
    for i, s in enumerate(sensors):
        h = headers.get(s.placement)
        if s.protocol != "imuhip" or h is None or len(h) < 3:
            continue
        flags, seq, t_us, n, ok = _fields(h)
        host = np.asarray(host_rx_ns[s.placement], np.int64)[ok]
        if len(seq) < 3:
            continue
        consecutive = _signed(np.diff(seq), protocol.SEQ_MODULUS) == 1
        dt_us = _signed(np.diff(t_us), protocol.TIME_MODULUS_US)
        use = consecutive & (dt_us > 0)
        rate_dev = float(np.median(n[:-1][use] / dt_us[use] * 1e6)) if use.any() else None
        span_s = (int(host[-1]) - int(host[0])) / 1e9
        rate_host = float(n[1:].sum() / span_s) if span_s > 0 else None
        rate = s.rate_hz
        if rate_dev is not None and abs(rate_dev / s.rate_hz - 1) > RATE_TOLERANCE:
            agree = rate_host is not None and abs(rate_host / rate_dev - 1) <= _CLOCKS_AGREE
            host_txt = f"{rate_host:.4g} Hz" if rate_host is not None else "unknown"
            if agree:
                rate = _snap(rate_dev)
                sensors[i] = dataclasses.replace(s, rate_hz=rate)
                lines.append(
                    f"{s.placement}: the header declares {s.rate_hz:g} Hz but the packets carry "
                    f"{rate_dev:.4g} Hz (device clock; host clock {host_txt}): decoded at "
                    f"{rate:g} Hz instead (at {s.rate_hz:g} Hz most samples would be discarded)"
                )
            else:
                lines.append(
                    f"{s.placement}: the header declares {s.rate_hz:g} Hz but the device clock "
                    f"says {rate_dev:.4g} Hz and the host clock {host_txt}; not corrected: "
                    "samples may be discarded or misplaced in time"
                )
                continue  # the step check would flag every packet at the wrong rate
        step_s = (dt_us - n[:-1] * 1e6 / rate) / 1e6
        resync = (flags[1:] & protocol.FLAG_CLOCK_RESYNC) != 0
        on_counter = consecutive & ~resync
        fault = on_counter & (np.abs(step_s) > STEP_PERIODS / rate)
        if not fault.any():
            continue
        _, rejoined, _ = rejoin_clock_steps(
            int(t_us[0]), dt_us, n, host, on_counter, rate, np.zeros(0, np.int64)
        )
        t_rel = (host[1:] - host[0]) / 1e9
        # the importer writes rows missing from a file as exactly such a kept forward step
        imported = meta.software == "imuhip import"
        for sel, word, effect in (
            (fault & rejoined & (step_s < 0), "back", _REJOINED),
            (fault & rejoined & (step_s > 0), "forward", _REJOINED),
            (fault & ~rejoined, "forward", _KEPT),
        ):
            at = np.flatnonzero(sel)
            if not len(at):
                continue
            big = at[np.argmax(np.abs(step_s[at]))]
            total = round(float(np.abs(step_s[at]).sum()) * rate)
            if imported and effect is _KEPT:
                lines.append(
                    f"{s.placement}: "
                    + _IMPORTED_GAP.format(
                        samples=total, count=len(at), largest=float(step_s[big]), at=t_rel[big]
                    )
                )
                continue
            lines.append(
                f"{s.placement}: device clock steps {word} {len(at)} time(s), largest "
                f"{abs(float(step_s[big])):.3f} s at {float(t_rel[big]):.2f} s (host clock) "
                f"between packets {int(seq[big])} and {int(seq[big + 1])}: "
                + effect.format(samples=total)
            )
    lines += _coverage_lines(host_rx_ns)
    if all(a is b for a, b in zip(sensors, meta.sensors, strict=True)):
        return meta, lines
    return dataclasses.replace(meta, sensors=tuple(sensors)), lines


def _coverage_lines(host_rx_ns: Mapping[str, npt.ArrayLike]) -> list[str]:
    """A sensor whose data start or end more than :data:`COVERAGE_TOLERANCE_S` after or before
    the others' (a battery that died, a file cut short, a sensor switched on late): one line
    saying so, in session seconds (from the first packet of any sensor)."""
    spans = {
        p: (int(h.min()), int(h.max()))
        for p, h in ((p, np.asarray(v, np.int64)) for p, v in host_rx_ns.items())
        if len(h)
    }
    if len(spans) < 2:
        return []
    first = min(a for a, _ in spans.values())
    last = max(b for _, b in spans.values())
    lines = []
    for p, (a, b) in spans.items():
        late, early = (a - first) / 1e9, (last - b) / 1e9
        if late > COVERAGE_TOLERANCE_S:
            lines.append(
                f"{p}: its data start at {late:.1f} s, {late:.1f} s after the first "
                "sensor's (no samples before that)"
            )
        if early > COVERAGE_TOLERANCE_S:
            lines.append(
                f"{p}: its data end at {(b - first) / 1e9:.1f} s, {early:.1f} s before the last "
                "sensor's (no samples after that)"
            )
    return lines
