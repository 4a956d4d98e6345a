"""imuhip.ingest.protocol against the checked-in SPEC vectors
(firmware_protocol/vectors/packets.json)."""

from __future__ import annotations

import binascii
import json
from pathlib import Path

import numpy as np
import pytest

from imuhip.errors import ProtocolError
from imuhip.ingest import protocol
from imuhip.ingest.decode import decode_packet, parse_time_sync_response
from imuhip.types import SensorMeta

VECTORS = json.loads(
    (
        Path(__file__).resolve().parents[3] / "firmware_protocol" / "vectors" / "packets.json"
    ).read_text()
)


def _meta(v: dict) -> SensorMeta:
    m = v["meta"]
    return SensorMeta(
        placement="pelvis",
        rate_hz=m["rate_hz"],
        acc_lsb_m_s2=m["acc_lsb_m_s2"],
        gyr_lsb_rad_s=m["gyr_lsb_rad_s"],
        mag_lsb_ut=m["mag_lsb_ut"],
        has_mag=m["has_mag"],
    )


def test_vector_set_is_complete() -> None:
    names = [v["name"] for v in VECTORS["packets"]]
    assert len(names) >= 12
    chans = {v["channels"] for v in VECTORS["packets"]}
    assert chans == {6, 9}
    assert any(v["seq"] == 65535 for v in VECTORS["packets"])
    assert any(v["t_first_us"] > 2**32 - 100_000 for v in VECTORS["packets"])
    assert any(v["saturated"] for v in VECTORS["packets"])
    assert any(v["clock_resync"] for v in VECTORS["packets"])
    assert {v["n"] for v in VECTORS["packets"]} >= {1, 12, 19, 32}
    assert {v["reason"] for v in VECTORS["invalid"]} == {
        "crc",
        "short",
        "version",
        "flags",
        "count",
        "length",
    }


def test_crc_check_value() -> None:
    assert protocol.crc16(b"123456789") == 0x29B1
    assert VECTORS["crc_check"]["crc"] == "29b1"


@pytest.mark.parametrize("v", VECTORS["packets"], ids=lambda v: v["name"])
def test_python_encoder_matches_vector_bytes(v: dict) -> None:
    got = protocol.encode_packet(
        v["seq"],
        v["t_first_us"],
        np.array(v["raw"]),
        saturated=v["saturated"],
        clock_resync=v["clock_resync"],
    )
    assert got.hex() == v["hex"]


@pytest.mark.parametrize("v", VECTORS["packets"], ids=lambda v: v["name"])
def test_decode_packet_matches_vector_si(v: dict) -> None:
    d = decode_packet(bytes.fromhex(v["hex"]), _meta(v))
    assert d.header.seq == v["seq"]
    assert d.header.t_first_us == v["t_first_us"]
    assert d.header.n == v["n"]
    assert d.saturated == v["saturated"]
    assert d.clock_resync == v["clock_resync"]
    np.testing.assert_array_equal(d.raw, np.array(v["raw"]))
    np.testing.assert_allclose(d.acc_m_s2, v["expected"]["acc_m_s2"], rtol=1e-15, atol=0)
    np.testing.assert_allclose(d.gyr_rad_s, v["expected"]["gyr_rad_s"], rtol=1e-15, atol=0)
    if v["channels"] == 9:
        np.testing.assert_allclose(d.mag_ut, v["expected"]["mag_ut"], rtol=1e-15, atol=0)
    else:
        assert d.mag_ut is None


@pytest.mark.parametrize("v", VECTORS["invalid"], ids=lambda v: v["name"])
def test_invalid_vectors_rejected_with_reason(v: dict) -> None:
    with pytest.raises(ProtocolError) as exc:
        protocol.parse_header(bytes.fromhex(v["hex"]))
    assert exc.value.reason == v["reason"]


def test_mag_flag_disagreeing_with_meta_is_flags_error() -> None:
    v = next(v for v in VECTORS["packets"] if v["channels"] == 9)
    meta = _meta(v)
    wrong = SensorMeta("pelvis", 200.0, meta.acc_lsb_m_s2, meta.gyr_lsb_rad_s, 0.1, has_mag=False)
    with pytest.raises(ProtocolError, match="MAG flag") as exc:
        decode_packet(bytes.fromhex(v["hex"]), wrong)
    assert exc.value.reason == "flags"


@pytest.mark.parametrize("row", VECTORS["samples_per_packet"], ids=lambda r: str(tuple(r.values())))
def test_samples_per_packet_table(row: dict) -> None:
    assert protocol.samples_per_packet(row["att_mtu"], row["rate_hz"], row["has_mag"]) == row["n"]


def test_samples_fit_the_mtu() -> None:
    for mtu in (23, 27, 185, 247, 517):
        for mag in (False, True):
            n = protocol.max_samples_for_mtu(mtu, mag)
            if n:
                assert protocol.packet_len(n, mag) + protocol.ATT_HEADER_LEN <= mtu
                if n < protocol.MAX_SAMPLES:
                    assert protocol.packet_len(n + 1, mag) + protocol.ATT_HEADER_LEN > mtu
    assert protocol.max_samples_for_mtu(23, False) == 0


@pytest.mark.parametrize("v", VECTORS["info"], ids=lambda v: v["fields"]["model"])
def test_info_roundtrip_matches_vector(v: dict) -> None:
    f = v["fields"]
    info = protocol.DeviceInfo(
        protocol_version=f["protocol_version"],
        has_mag=f["has_mag"],
        rate_hz=f["rate_hz"],
        acc_range_g=f["acc_range_g"],
        gyr_range_dps=f["gyr_range_dps"],
        acc_lsb_m_s2=protocol.acc_lsb_m_s2(f["acc_range_g"]),
        gyr_lsb_rad_s=protocol.gyr_lsb_rad_s(f["gyr_range_dps"]),
        mag_lsb_ut=protocol.MAG_LSB_UT,
        samples_per_packet=f["samples_per_packet"],
        streaming=f["streaming"],
        model=f["model"],
        serial=f["serial"],
        firmware=f["firmware"],
    )
    assert info.encode().hex() == v["hex"]
    back = protocol.DeviceInfo.decode(bytes.fromhex(v["hex"]))
    assert (
        back.model == f["model"] and back.serial == f["serial"] and back.firmware == f["firmware"]
    )
    assert back.rate_hz == f["rate_hz"] and back.has_mag == f["has_mag"]
    # float32 storage: within float32 precision of the exact scale factor
    assert back.gyr_lsb_rad_s == pytest.approx(f["gyr_range_dps"] * np.pi / 180 / 32768, rel=1e-7)


def test_info_rejects_bad_records() -> None:
    good = bytes.fromhex(VECTORS["info"][0]["hex"])
    with pytest.raises(ProtocolError, match="64"):
        protocol.DeviceInfo.decode(good[:-1])
    with pytest.raises(ProtocolError, match="version"):
        protocol.DeviceInfo.decode(b"\x02" + good[1:])
    with pytest.raises(ProtocolError, match="gyroscope"):
        protocol.DeviceInfo.decode(good[:1] + b"\x01" + good[2:])


@pytest.mark.parametrize("v", VECTORS["time_sync_responses"], ids=lambda v: v["hex"])
def test_time_sync_response(v: dict) -> None:
    status, token, t_us = parse_time_sync_response(bytes.fromhex(v["hex"]))
    assert (status, token) == (v["status"], v["token"])
    if status == protocol.STATUS_OK:
        assert t_us == v["t_dev_us"]


def test_time_sync_response_malformed() -> None:
    with pytest.raises(ProtocolError):
        parse_time_sync_response(bytes.fromhex("8500"))
    with pytest.raises(ProtocolError):
        parse_time_sync_response(bytes.fromhex("8100"))  # a START response
    with pytest.raises(ProtocolError):
        parse_time_sync_response(b"\x05")


def test_commands() -> None:
    assert protocol.cmd_start() == b"\x01"
    assert protocol.cmd_stop() == b"\x02"
    assert protocol.cmd_set_rate(200) == bytes([0x03, 200, 0])
    assert protocol.cmd_set_ranges(16, 2000) == bytes([0x04, 16, 0, 0xD0, 0x07])
    assert protocol.cmd_time_sync(0x1A7) == bytes([0x05, 0xA7])
    with pytest.raises(ValueError, match="rate_hz"):
        protocol.cmd_set_rate(150)
    with pytest.raises(ValueError, match="acc_range_g"):
        protocol.cmd_set_ranges(3, 2000)
    assert protocol.parse_control_response(
        protocol.control_response(protocol.CMD_START, protocol.STATUS_MTU_TOO_SMALL)
    ) == (protocol.CMD_START, protocol.STATUS_MTU_TOO_SMALL, b"")


def test_crc_matches_binascii_and_bitwise() -> None:
    data = bytes(range(256)) * 2
    c = 0xFFFF
    for b in data:
        c ^= b << 8
        for _ in range(8):
            c = ((c << 1) ^ 0x1021) & 0xFFFF if c & 0x8000 else (c << 1) & 0xFFFF
    assert protocol.crc16(data) == c == binascii.crc_hqx(data, 0xFFFF)


SPEC = (Path(__file__).resolve().parents[3] / "firmware_protocol" / "SPEC.md").read_text()


def test_spec_scale_table_matches_protocol() -> None:
    import re

    rows = re.findall(r"^\| ±(\d+) g \| ([0-9.e-]+) \| ±(\d+) °/s \| ([0-9.e-]+) \|$", SPEC, re.M)
    assert len(rows) == 4
    for g, acc, dps, gyr in rows:
        assert float(acc) == protocol.acc_lsb_m_s2(int(g))
        assert float(gyr) == protocol.gyr_lsb_rad_s(int(dps))
    assert "0x29B1" in SPEC and protocol.SERVICE_UUID in SPEC and protocol.INFO_CHAR_UUID in SPEC


def test_spec_mtu_table_matches_protocol() -> None:
    import re

    rows = re.findall(
        r"^\| (\d+) \(.*?\) \| (\d+) \| (\d+) \| ([\d /]+) \| ([\d /]+) \|$", SPEC, re.M
    )
    assert {int(r[0]) for r in rows} == {185, 247, 517}
    for mtu, fit6, fit9, per6, per9 in rows:
        m = int(mtu)
        assert protocol.max_samples_for_mtu(m, False) == int(fit6)
        assert protocol.max_samples_for_mtu(m, True) == int(fit9)
        for rates_n, mag in ((per6, False), (per9, True)):
            want = [int(x) for x in rates_n.split("/")]
            assert [protocol.samples_per_packet(m, r, mag) for r in (50, 100, 200, 400)] == want
