"""`imuhip.numeric.cache_is_cold`: the CLI says when the first run compiles the kernels."""

from __future__ import annotations

from pathlib import Path

import pytest

import imuhip.numeric as kernels


def test_cache_is_cold_until_an_index_file_exists(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pkg = tmp_path / "site" / "imuhip" / "kernels"
    pkg.mkdir(parents=True)
    monkeypatch.setattr(kernels, "__file__", str(pkg / "__init__.py"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    assert kernels.cache_is_cold()
    # another library's numba cache does not make ours warm
    other = tmp_path / "home" / ".cache" / "numba" / "site" / "otherlib"
    other.mkdir(parents=True)
    (other / "fast.kernel-3.py311.nbi").write_bytes(b"")
    assert kernels.cache_is_cold()
    # numba's user-wide fallback (read-only install) counts too
    user = tmp_path / "home" / ".cache" / "numba" / "imuhip" / "kernels"
    user.mkdir(parents=True)
    (user / "align.all_finite-1.py311.nbi").write_bytes(b"")
    assert not kernels.cache_is_cold()
    (user / "align.all_finite-1.py311.nbi").unlink()
    (pkg / "__pycache__").mkdir()
    (pkg / "__pycache__" / "gait.boot_means-9.py311.nbi").write_bytes(b"")
    assert not kernels.cache_is_cold()
    # with NUMBA_CACHE_DIR set numba reads and writes only there: an empty one is cold whatever
    # the in-tree cache holds (the bench's first run points it at an empty folder)
    mine = tmp_path / "cache"
    mine.mkdir()
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(mine))
    assert kernels.cache_is_cold()
    (mine / "site" / "imuhip" / "kernels").mkdir(parents=True)
    (mine / "site" / "imuhip" / "kernels" / "gait.boot_means-9.py311.nbi").write_bytes(b"")
    assert not kernels.cache_is_cold()


def test_the_installed_package_has_a_warm_cache_after_a_kernel_ran() -> None:
    import numpy as np

    from imuhip.ingest._units_kernels import block_means

    block_means(np.zeros((8, 3)), 4)  # compiles (or loads) and caches on disk
    assert not kernels.cache_is_cold()
