"""The C reference encoder in firmware_protocol/, built with the machine's cc, vs the vectors."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from imuhip.ingest import protocol

FW = Path(__file__).resolve().parents[3] / "firmware_protocol"
VECTORS = json.loads((FW / "vectors" / "packets.json").read_text())
CFLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O2"]


def _compiler() -> str | None:
    for cc in ("cc", "gcc", "clang"):
        if shutil.which(cc):
            return cc
    return None


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cc = _compiler()
    if cc is None:
        pytest.skip("no C compiler (cc, gcc or clang) on PATH: cannot build the reference encoder")
    out = tmp_path_factory.mktemp("cbuild") / "vectors_main"
    r = subprocess.run(
        [cc, *CFLAGS, "-o", str(out), str(FW / "imuhip_protocol.c"), str(FW / "vectors_main.c")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 0, f"C build failed:\n{r.stderr}"
    return out


def _run(driver: Path, lines: list[str]) -> list[str]:
    r = subprocess.run(
        [str(driver)], input="\n".join(lines) + "\n", capture_output=True, text=True, check=True
    )
    return r.stdout.splitlines()


def test_library_builds_alone_without_stdio(tmp_path: Path) -> None:
    cc = _compiler()
    if cc is None:
        pytest.skip("no C compiler on PATH")
    src = (FW / "imuhip_protocol.c").read_text() + (FW / "imuhip_protocol.h").read_text()
    includes = [ln for ln in src.splitlines() if ln.startswith("#include")]
    assert not [i for i in includes if "stdio" in i or "stdlib" in i], includes
    assert "malloc(" not in src and "printf(" not in src
    r = subprocess.run(
        [cc, *CFLAGS, "-c", "-o", str(tmp_path / "p.o"), str(FW / "imuhip_protocol.c")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 0, r.stderr


def test_crc_check_value(driver: Path) -> None:
    assert _run(driver, ["CRC " + b"123456789".hex()]) == ["29b1"]


def test_packets_c_equals_python_equals_vector(driver: Path) -> None:
    lines = []
    for v in VECTORS["packets"]:
        flags = int(v["saturated"]) * 2 + int(v["clock_resync"]) * 4
        vals = " ".join(str(x) for row in v["raw"] for x in row)
        lines.append(f"PKT {v['seq']} {v['t_first_us']} {flags} {v['channels']} {v['n']} {vals}")
    out = _run(driver, lines)
    assert len(out) == len(VECTORS["packets"])
    for v, c_hex in zip(VECTORS["packets"], out, strict=True):
        py = protocol.encode_packet(
            v["seq"],
            v["t_first_us"],
            np.array(v["raw"]),
            saturated=v["saturated"],
            clock_resync=v["clock_resync"],
        ).hex()
        assert c_hex == py == v["hex"], v["name"]


def test_encoder_errors(driver: Path) -> None:
    out = _run(
        driver, ["PKT 0 0 0 6 0", "PKT 0 0 0 7 1 1 2 3 4 5 6 7", "PKT 0 0 8 6 1 1 2 3 4 5 6"]
    )
    assert out == ["ERR -2", "ERR -3", "ERR -5"]


def test_info_c_equals_vector(driver: Path) -> None:
    lines = []
    for v in VECTORS["info"]:
        f = v["fields"]
        lines.append(
            f"INFO {f['protocol_version']} {int(f['has_mag'])} {f['rate_hz']} {f['acc_range_g']} "
            f"{f['gyr_range_dps']} {f['samples_per_packet']} {int(f['streaming'])} "
            f"{f['model']} {f['serial']} {f['firmware']}"
        )
    assert _run(driver, lines) == [v["hex"] for v in VECTORS["info"]]


def test_samples_per_packet_c_equals_table(driver: Path) -> None:
    rows = VECTORS["samples_per_packet"]
    out = _run(driver, [f"SPP {r['att_mtu']} {r['rate_hz']} {int(r['has_mag'])}" for r in rows])
    assert out == [str(r["n"]) for r in rows]


def test_time_sync_response_c_equals_vector(driver: Path) -> None:
    rows = VECTORS["time_sync_responses"]
    out = _run(driver, [f"TSYNC {r['status']} {r['token']} {r['t_dev_us']}" for r in rows])
    assert out == [r["hex"] for r in rows]
