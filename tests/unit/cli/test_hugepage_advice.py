"""The console script asks numpy for ordinary pages (``NUMPY_MADVISE_HUGEPAGE=0``) unless told.

Checked in fresh processes: numpy reads the variable once, when it is first imported, and
reports what it will do through ``numpy._core.multiarray._get_madvise_hugepage()``.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from imuhip.cli import main

_PROBE = (
    "import os, sys\n"
    "from imuhip.cli import main\n"
    "try:\n"
    "    main(['--version'])\n"
    "except SystemExit:\n"
    "    pass\n"
    "import numpy\n"
    "from numpy._core import multiarray\n"
    "print(os.environ.get('NUMPY_MADVISE_HUGEPAGE'), multiarray._get_madvise_hugepage())\n"
)


def _probe(env_value: str | None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "NUMPY_MADVISE_HUGEPAGE"}
    if env_value is not None:
        env["NUMPY_MADVISE_HUGEPAGE"] = env_value
    out = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, env=env, check=True
    )
    return out.stdout.strip().splitlines()[-1]


def test_console_script_turns_hugepage_advice_off() -> None:
    assert _probe(None) == "0 False"


def test_a_users_setting_is_kept() -> None:
    assert _probe("1") == "1 True"


def test_no_change_once_numpy_is_imported(monkeypatch: pytest.MonkeyPatch) -> None:
    # in a process that already uses numpy (this one), main leaves the environment alone
    monkeypatch.delenv("NUMPY_MADVISE_HUGEPAGE", raising=False)
    assert np.__name__ in sys.modules
    with pytest.raises(SystemExit):
        main(["--version"])
    assert "NUMPY_MADVISE_HUGEPAGE" not in os.environ
