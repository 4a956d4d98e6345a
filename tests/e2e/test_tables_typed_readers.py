"""Exported tables load in typed readers (polars, duckdb, pandas) with the right column types."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli import run_cli

REPO = Path(__file__).resolve().parents[2]
polars = pytest.importorskip("polars")
duckdb = pytest.importorskip("duckdb")
pytestmark = pytest.mark.slow  # 9 CLI runs on the typical recording (~35 s CPU)


def _imuhip(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, cwd=cwd)


# every table imuhip writes: column -> kind ("f" float, "i" integer, "b" boolean, "s" text)
_INT_COLS = {"sample_idx", "host_rx_ns", "number", "stride", "start_idx", "stop_idx"}
_BOOL_COLS = {"valid", "saturated"}
_TEXT_COLS = {"side", "exclusion"}
TABLES = (
    "typical_angles.csv",
    "typical_angles.parquet",
    "typical_strides.csv",
    "typical_strides.parquet",
    "typical_pelvis.csv",
    "typical_thigh_l.csv",
    "typical_thigh_r.csv",
    "pq/typical_pelvis.parquet",
    "pq/typical_thigh_r.parquet",
    "rep/strides.csv",
)


def _kind(col: str) -> str:
    if col in _INT_COLS:
        return "i"
    if col in _BOOL_COLS:
        return "b"
    return "s" if col in _TEXT_COLS else "f"


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tables")
    rec = REPO / "recordings" / "typical.imrec"
    for fmt in ("angles-csv", "strides-csv", "angles-parquet", "strides-parquet", "csv"):
        cp = subprocess.run(
            [
                sys.executable,
                "-m",
                "imuhip",
                "export",
                str(rec),
                "--format",
                fmt,
                "--out",
                str(out),
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert cp.returncode == 0, cp.stderr
    cp = _imuhip("export", str(rec), "--format", "parquet", "--out", str(out / "pq"))
    assert cp.returncode == 0, cp.stderr
    cp = subprocess.run(
        [sys.executable, "-m", "imuhip", "analyze", str(rec), "--out", str(out / "rep"), "--quiet"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert cp.returncode == 0, cp.stderr
    return out


def test_angles_csv_columns_are_typed(exported: Path) -> None:
    f = exported / "typical_angles.csv"
    df = polars.read_csv(f)  # infers from the first rows: fails if a float column starts as ints
    assert df.schema["valid"] == polars.Boolean
    for name, dtype in df.schema.items():
        if name != "valid":
            assert dtype == polars.Float64, (name, dtype)
    rel = duckdb.sql(f"SELECT * FROM read_csv_auto('{f}')")
    types = dict(zip(rel.columns, (str(t) for t in rel.types), strict=True))
    assert types["valid"] == "BOOLEAN"
    assert types.get("transverse_confidence", "DOUBLE") == "DOUBLE"
    assert all(t == "DOUBLE" for k, t in types.items() if k != "valid"), types


def test_strides_csv_filters_valid_strides_in_every_reader(exported: Path) -> None:
    import pandas as pd

    f = exported / "typical_strides.csv"
    report = json.loads((exported / "rep" / "report.json").read_text())
    n_valid = sum(side["valid"] for side in report["gait"]["strides"].values())
    pdf = pd.read_csv(f)
    assert pdf["exclusion"].notna().all()  # no empty string standing for "valid"
    assert int((pdf["exclusion"] == "none").sum()) == n_valid == int(pdf["valid"].sum())
    pl = polars.read_csv(f)
    assert pl.schema["valid"] == polars.Boolean
    assert pl.filter(polars.col("exclusion") == "none").height == n_valid
    got = duckdb.sql(f"SELECT count(*) FROM read_csv_auto('{f}') WHERE valid").fetchall()
    assert got[0][0] == n_valid


@pytest.mark.parametrize("name", TABLES)
def test_every_table_has_the_same_types_in_polars_duckdb_pandas(exported: Path, name: str) -> None:
    import pandas as pd

    f = exported / name
    csv = f.suffix == ".csv"
    pl = polars.read_csv(f) if csv else polars.read_parquet(f)
    want_pl = {"f": polars.Float64, "i": polars.Int64, "b": polars.Boolean, "s": polars.String}
    assert {c: t for c, t in pl.schema.items() if t != want_pl[_kind(c)]} == {}
    rel = duckdb.sql(f"SELECT * FROM '{f}'")
    want_db = {"f": "DOUBLE", "i": "BIGINT", "b": "BOOLEAN", "s": "VARCHAR"}
    got_db = dict(zip(rel.columns, (str(t) for t in rel.types), strict=True))
    assert {c: t for c, t in got_db.items() if t != want_db[_kind(c)]} == {}
    pdf = pd.read_csv(f) if csv else pd.read_parquet(f)
    want_pd = {"f": "f", "i": "i", "b": "b", "s": "O"}
    kinds = {c: ("O" if pd.api.types.is_string_dtype(t) else t.kind) for c, t in pdf.dtypes.items()}
    assert {c: k for c, k in kinds.items() if k != want_pd[_kind(c)]} == {}
    n_db = duckdb.sql(f"SELECT count(*) FROM '{f}'").fetchall()[0][0]
    assert pl.height == len(pdf) == n_db > 0
    for c in pl.columns:  # no empty string standing for a value
        if pl.schema[c] == polars.String:
            assert pl.filter(polars.col(c) == "").height == 0, c


def test_raw_csv_of_a_quiet_sensor_reads_as_floats(tmp_path: Path) -> None:
    """A sensor lying still reads exactly 0 rad/s for seconds: written as "0", polars would infer
    an integer column from the first 100 rows and fail at the first fractional value."""
    import numpy as np

    from imuhip.interop.generic_csv import write_sensor_csv

    n = 400
    t = np.arange(n) / 100.0
    acc = np.tile([0.0, 0.0, 9.81], (n, 1))
    acc[250:, 0] = 0.37
    gyr = np.zeros((n, 3))
    gyr[250:, 2] = 0.5
    for p in ("pelvis", "thigh_l", "thigh_r"):
        write_sensor_csv(tmp_path / f"{p}.csv", t, acc, gyr, rate_hz=100.0)
    args = [f"--sensor={p}={p}.csv" for p in ("pelvis", "thigh_l", "thigh_r")]
    cp = _imuhip("import", "csv", *args, "-o", "q.imrec", cwd=tmp_path)
    assert cp.returncode == 0, cp.stderr
    cp = _imuhip("export", "q.imrec", "--format", "csv", "--out", "ex", cwd=tmp_path)
    assert cp.returncode == 0, cp.stderr
    df = polars.read_csv(tmp_path / "ex" / "q_pelvis.csv")
    assert df.schema["gyr_z_rad_s"] == polars.Float64 == df.schema["acc_x_m_s2"]
    assert df["gyr_z_rad_s"][0] == 0.0 and abs(df["gyr_z_rad_s"][-1] - 0.5) < 1e-3
