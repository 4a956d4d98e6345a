"""Bytes a real Movesense sent, decoded to the values the sensor's own logger wrote."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from imuhip.sources.movesense import decode_movesense_packets, gsp, movesense_meta
from imuhip.sources.movesense.firmware import PART1_VALUE_BYTES
from imuhip.types import RawPacket

FIXTURE = Path(__file__).parent / "fixtures" / "movesense_imu9_52hz_sensein.json"


def _load() -> dict:  # type: ignore[type-arg]
    return json.loads(FIXTURE.read_text())


def test_captured_imu9_52hz_decodes_to_the_logged_values() -> None:
    fx = _load()
    value = bytes.fromhex(fx["value_hex"])
    # 4 samples: 4 + 36 * 4 = 148 value bytes, one DATA notification on every firmware
    assert len(value) == 148 <= PART1_VALUE_BYTES
    assert gsp.parse_imu9_path(fx["path"]) == 52
    note = bytes([gsp.RESP_DATA, fx["reference"]]) + value
    s = decode_movesense_packets([RawPacket("thigh_r", 1, note)], movesense_meta("thigh_r", 52))
    logged = fx["logged"]
    assert len(s) == 4 and s.stats.protocol_errors == {}
    # the JSON holds the float32 values widened to double: equality, not a tolerance
    np.testing.assert_array_equal(s.acc_m_s2, np.array(logged["ArrayAcc"]))
    np.testing.assert_array_equal(s.mag_ut, np.array(logged["ArrayMagn"]))
    np.testing.assert_allclose(
        s.gyr_rad_s, np.array(logged["ArrayGyro"]) * math.pi / 180, rtol=1e-15, atol=0
    )
    # Timestamp is the device time (ms) of the first sample; the others follow at 52 Hz
    np.testing.assert_allclose(
        s.t_dev_s, logged["Timestamp"] / 1000 + np.arange(4) / 52, rtol=0, atol=1e-9
    )


def test_captured_value_parses_and_reencodes_byte_for_byte() -> None:
    value = bytes.fromhex(_load()["value_hex"])
    m = gsp.parse_imu9(value)
    assert (m.timestamp_ms, m.n) == (172460, 4)
    assert gsp.encode_imu9(m.timestamp_ms, m.acc_m_s2, m.gyr_dps, m.mag_ut) == value
    # the firmware split (150 value bytes in DATA) leaves a 148-byte value whole
    assert gsp.split_firmware(42, value) == [bytes([2, 42]) + value]
