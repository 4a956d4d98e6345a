"""Write ``imuhip/cli/_kernel_signatures.py``: the kernels ``imuhip warmup`` compiles, timed.

Run after changing a numba kernel's arguments (``tests/unit/cli/test_kernel_signatures.py``
says when)::

    python scripts/kernel_signatures.py

1. In a child process with an empty numba cache, ``warm_kernels`` (the warm-up's own run of
   every command's kernel path) compiles what the commands use; every compiled signature of an
   ``imuhip`` kernel is listed (but those with literal arguments: a kernel called by another
   with a constant, compiled with its caller).
2. In another child with another empty cache, each is compiled alone with
   ``Dispatcher.compile`` in the listed order and timed (kernels a kernel calls count towards
   the first caller), for :func:`imuhip.cli.kernels.groups` to balance the groups.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "imuhip" / "cli" / "_kernel_signatures.py"

LIST = """
import json, sys
from imuhip.cli.commands.warmup import warm_kernels
warm_kernels()
from numba.core.registry import CPUDispatcher
out = []
for name, mod in sorted(sys.modules.items()):
    if not name.startswith("imuhip"):
        continue
    for k, v in sorted(vars(mod).items()):
        if isinstance(v, CPUDispatcher) and v.__module__ == name:
            # literal arguments are a kernel calling a kernel: compiled with their caller
            out += [[name, k, repr(s)] for s in v.signatures if "Literal" not in repr(s)]
print(json.dumps(out))
"""

TIME = """
import importlib, json, sys, time
from imuhip.cli.kernels import signature
out = []
for module, name, text in json.loads(sys.stdin.read()):
    d = getattr(importlib.import_module(module), name)
    t = time.perf_counter()
    d.compile(signature(text))
    out.append([module, name, text, round(time.perf_counter() - t, 3)])
print(json.dumps(out))
"""


def _child(code: str, stdin: str = "") -> str:
    with tempfile.TemporaryDirectory(prefix="imuhip-kernels-") as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        run = subprocess.run(
            [sys.executable, "-c", code], input=stdin, capture_output=True, text=True, env=env,
            cwd=ROOT, check=True,
        )  # fmt: skip
    return run.stdout.strip().splitlines()[-1]


def main() -> int:
    listed = _child(LIST)
    timed = json.loads(_child(TIME, listed))
    lines = [
        "# ruff: noqa: E501",
        '"""The numba kernel signatures the commands compile, and how long each took to compile',
        "(seconds, one core). Written by ``scripts/kernel_signatures.py``; do not edit by hand.",
        '"""',
        "",
        "SIGNATURES: tuple[tuple[str, str, str, float], ...] = (",
        *(f"    ({m!r}, {n!r}, {s!r}, {t!r})," for m, n, s, t in timed),
        ")",
        "",
    ]
    OUT.write_text("\n".join(lines), encoding="utf-8")
    subprocess.run([sys.executable, "-m", "ruff", "format", "-q", str(OUT)], check=False)
    total = sum(e[3] for e in timed)
    sys.stdout.write(f"{OUT.relative_to(ROOT)}: {len(timed)} signatures, {total:.1f} s\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
