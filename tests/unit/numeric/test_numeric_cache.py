"""`imuhip.numeric.cache_is_cold`: the CLI says when the first run compiles the kernels."""

from __future__ import annotations

import hashlib
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
    # numba's folder there for a source dir: "<dir name>_<sha1 of its absolute path>"
    other_lib = mine / f"kernels_{hashlib.sha1(b'/elsewhere/kernels').hexdigest()}"
    other_lib.mkdir()
    (other_lib / "fast.kernel-3.py311.nbi").write_bytes(b"")
    assert kernels.cache_is_cold()
    ours = mine / f"kernels_{hashlib.sha1(str(pkg).encode()).hexdigest()}"
    ours.mkdir()
    (ours / "gait.boot_means-9.py311.nbi").write_bytes(b"")
    assert not kernels.cache_is_cold()


def test_the_installed_package_has_a_warm_cache_after_a_kernel_ran(tmp_path: Path) -> None:
    """In the in-tree cache, and in an empty NUMBA_CACHE_DIR once a kernel ran in a process
    pointed at it (numba's own layout there, not a guess of it)."""
    import os
    import subprocess
    import sys

    cache = tmp_path / "cache"
    cache.mkdir()
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache))
    code = (
        "import numpy as np; from imuhip.numeric import cache_is_cold as c; a = c(); "
        "from imuhip.ingest._units_kernels import block_means; block_means(np.zeros((8, 3)), 4);"
        " print(a, c())"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert run.stdout.split() == ["True", "False"]
    import numpy as np

    from imuhip.ingest._units_kernels import block_means

    block_means(np.zeros((8, 3)), 4)  # compiles (or loads) and caches on disk
    assert not kernels.cache_is_cold()
