"""Movesense messages are sanity-checked before they move the counters (issue 14 item 5)."""

from __future__ import annotations

import numpy as np

from imuhip.sources.movesense import MovesenseStreamDecoder, decode_movesense_packets
from imuhip.types import ImuSamples, RawPacket
from tests.unit.sources.test_movesense import META, RATE, N, imu9_value, notifications, rows_for

N_MSGS = 200


def _ts(m: int, ts0: int = 1000) -> int:
    return ts0 + round(m * N * 1000 / RATE)


def _packets(msgs: list[tuple[int, bytes]]) -> list[RawPacket]:
    out, host = [], 1_000_000_000
    for ref, value in msgs:
        for part in notifications(ref, value):
            host += 1_000_000
            out.append(RawPacket("pelvis", host, part))
    return out


def _good(m: int) -> tuple[int, bytes]:
    return 99, imu9_value(_ts(m), rows_for(m * N))


def _live(pk: list[RawPacket], size: int = 1) -> tuple[MovesenseStreamDecoder, list[ImuSamples]]:
    dec = MovesenseStreamDecoder(META)
    parts = [dec.push(pk[i : i + size]) for i in range(0, len(pk), size)]
    return dec, [*parts, dec.flush()]


def _cat(parts: list[ImuSamples], name: str) -> np.ndarray:
    return np.concatenate([getattr(p, name) for p in parts])


def test_short_first_message_does_not_fix_the_count() -> None:
    # a first message of 2 samples (ts 2 samples before message 0), then 200 messages of 8
    first = (99, imu9_value(_ts(0) - round(2 * 1000 / RATE), rows_for(0, 2)))
    pk = _packets([first] + [_good(m) for m in range(N_MSGS)])
    batch = decode_movesense_packets(pk, META)
    assert len(batch) == N_MSGS * N == 1600  # all 8-sample messages kept, the 2 samples lost
    assert batch.stats.protocol_errors == {"count": 1}
    for size in (1, 7):
        dec, parts = _live(pk, size)
        assert sum(len(p) for p in parts) == 1600
        np.testing.assert_array_equal(_cat(parts, "sample_idx"), batch.sample_idx)
        np.testing.assert_array_equal(_cat(parts, "acc_m_s2")[:, 0], np.arange(1600))
        assert dec.stats == batch.stats


def test_garbage_timestamp_is_an_outlier_not_a_gap() -> None:
    msgs = [_good(m) for m in range(N_MSGS)]
    # message 100 garbled: its timestamp 2.07e9 ms ahead (a 215-million-sample gap if believed)
    msgs[100] = (99, imu9_value(_ts(100) + 2_070_000_000, rows_for(100 * N)))
    pk = _packets(msgs)
    batch = decode_movesense_packets(pk, META)
    assert batch.stats.protocol_errors == {"outlier": 1}
    assert len(batch) == (N_MSGS - 1) * N == 1592  # 8 samples lost, nothing else
    assert batch.stats.lost_samples == N and batch.stats.gaps[0].start_idx == 100 * N
    np.testing.assert_array_equal(batch.acc_m_s2[:, 0], batch.sample_idx)
    assert batch.sample_idx[-1] == N_MSGS * N - 1
    for size in (1, 5):
        dec, parts = _live(pk, size)
        np.testing.assert_array_equal(_cat(parts, "sample_idx"), batch.sample_idx)
        assert dec.stats == batch.stats


def test_absurd_values_are_skipped() -> None:
    msgs = [_good(m) for m in range(20)]
    rows = rows_for(10 * N)
    rows[3] = (3e30, *rows[3][1:])  # finite float32, but no accelerometer measures this
    msgs[10] = (99, imu9_value(_ts(10), rows))
    s = decode_movesense_packets(_packets(msgs), META)
    assert s.stats.protocol_errors == {"value": 1}
    assert len(s) == 19 * N and s.stats.lost_samples == N


def test_real_dropout_is_accepted_after_confirmation() -> None:
    # 60 s without messages, then the stream goes on on the same clock: a gap, not outliers
    jump = round(60 * RATE / N)
    msgs = [_good(m) for m in range(50)] + [_good(m) for m in range(50 + jump, 100 + jump)]
    pk = _packets(msgs)
    batch = decode_movesense_packets(pk, META)
    assert batch.stats.protocol_errors == {}
    assert len(batch) == 100 * N
    (gap,) = batch.stats.gaps
    assert gap.start_idx == 50 * N and gap.stop_idx == (50 + jump) * N
    dec, parts = _live(pk, 1)
    np.testing.assert_array_equal(_cat(parts, "sample_idx"), batch.sample_idx)
    assert dec.stats == batch.stats


def test_two_garbled_messages_in_a_row_are_both_outliers() -> None:
    msgs = [_good(m) for m in range(30)]
    for m, off in ((10, 5_000_000), (11, -7_000_000)):
        msgs[m] = (99, imu9_value(_ts(m) + off, rows_for(m * N)))
    s = decode_movesense_packets(_packets(msgs), META)
    assert s.stats.protocol_errors == {"outlier": 2}
    assert len(s) == 28 * N
