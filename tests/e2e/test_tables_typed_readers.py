"""Exported tables load in typed readers (polars, duckdb, pandas) with the right column types."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
polars = pytest.importorskip("polars")
duckdb = pytest.importorskip("duckdb")


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tables")
    rec = REPO / "recordings" / "typical.imrec"
    for fmt in ("angles-csv", "strides-csv"):
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
