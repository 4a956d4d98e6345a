"""Movesense firmware facts: versions, HELLO answers, path spelling, the 150-byte split."""

from __future__ import annotations

import pytest

from imuhip.errors import ProtocolError
from imuhip.sources.movesense import gsp
from imuhip.sources.movesense.firmware import (
    DEFAULT_2_3,
    SAMPLE_2_2_0,
    SAMPLE_2_2_1,
    Firmware,
    HelloInfo,
    encode_hello_info,
    parse_hello,
    parse_version,
    samples_per_message,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("2.2.1", (2, 2, 1)), ("2.3.0.8f2a", (2, 3, 0)), ("v2.3", (2, 3, 0)), ("", None), ("x", None)],
)
def test_parse_version(text: str, expected: tuple[int, int, int] | None) -> None:
    assert parse_version(text) == expected


def test_what_each_version_does() -> None:
    assert (SAMPLE_2_2_0.sends_part2, SAMPLE_2_2_1.sends_part2, DEFAULT_2_3.sends_part2) == (
        False,
        True,
        True,
    )
    assert not SAMPLE_2_2_1.answers_commands and DEFAULT_2_3.answers_commands
    assert not SAMPLE_2_2_1.timestamps_reflect_loss and DEFAULT_2_3.timestamps_reflect_loss
    with pytest.raises(ValueError, match="firmware kind"):
        Firmware("beta", "2.3.0")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="firmware version"):
        Firmware("sample", "new")


def test_hello_answers_of_both_families() -> None:
    assert parse_hello(b"Hello").kind == "sample"
    # protocol byte, then serial, product, DFU address, app name, app version, NUL-terminated
    raw = b"\x01174630000192\x00Movesense\x00AA:BB\x00Movesense\x002.3.1\x00"
    info = parse_hello(raw)
    assert info == HelloInfo(
        "default", 1, "174630000192", "Movesense", "AA:BB", "Movesense", "2.3.1"
    )
    assert encode_hello_info(info) == raw
    with pytest.raises(ProtocolError, match="HELLO"):
        parse_hello(b"\x07\x08")


@pytest.mark.parametrize(
    ("path", "rate"),
    [
        ("/Meas/IMU9/104", 104),
        ("/meas/imu9/104", 104),
        ("Meas/IMU9/52", 52),
        ("/Meas/IMU9/208\0", 208),
        ("/Meas/IMU9/100", None),
        ("/Meas/Acc/104", None),
        ("/Meas/IMU9", None),
    ],
)
def test_imu9_path_spellings(path: str, rate: int | None) -> None:
    assert gsp.parse_imu9_path(path) == rate


def test_firmware_split_is_150_value_bytes_whatever_the_mtu() -> None:
    value = bytes(range(256)) + bytes(36)  # 292 bytes: IMU9 at 104 Hz, 8 samples
    assert len(value) == 4 + 36 * samples_per_message(104)
    parts = gsp.split_firmware(99, value)
    assert [len(p) for p in parts] == [152, 144]
    assert parts[0][:2] == b"\x02\x63" and parts[1][:2] == b"\x03\x63"
    assert parts[0][2:] + parts[1][2:] == value
    assert samples_per_message(52) == 4


def test_status_byte_order_of_the_sample_firmware() -> None:
    # the sample firmware writes 507 as 01 FB; the default firmware little endian
    assert gsp.command_result(7, 507, big_endian=True) == b"\x01\x07\x01\xfb"
    assert gsp.parse_command_result(b"\x01\x07\x01\xfb")[1] == 507
    assert gsp.parse_command_result(gsp.command_result(7, 200))[1] == 200
    assert gsp.parse_command_result(b"\x01\x07Hello")[1] is None
