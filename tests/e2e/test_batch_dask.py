"""``imuhip batch --dask``: the same table from a Dask LocalCluster (2 workers) as locally."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from imuhip.report.cohort import run_batch

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_dask_cluster_matches_local_run(tmp_path: Path) -> None:
    distributed = pytest.importorskip("dask.distributed")
    study = tmp_path / "study"
    study.mkdir()
    for name in ("typical", "with_lumbar"):
        shutil.copy(REPO / "recordings" / f"{name}.imrec", study / f"{name}.imrec")
    (study / "broken.imrec").write_bytes(b"\x00" * 64)
    local = run_batch(study, tmp_path / "local.parquet", jobs=1)
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        remote = run_batch(study, tmp_path / "dask.parquet", dask_address=cluster.scheduler_address)
    assert remote.analysed == local.analysed == ["typical.imrec", "with_lumbar.imrec"]
    assert remote.failures == local.failures
    assert [f for f, _ in remote.failures] == ["broken.imrec"]
    pd.testing.assert_frame_equal(
        pd.read_parquet(tmp_path / "dask.parquet"), pd.read_parquet(tmp_path / "local.parquet")
    )
