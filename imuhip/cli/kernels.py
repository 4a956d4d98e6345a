"""Compile the commands' numba kernels ahead of their first call, shared out over the cores.

Numba compiles one function at a time in a process (~0.2-1 s each, ~20 s for what ``analyze``
and ``info`` call), so ``imuhip warmup`` used to take the whole sum on one core. The signatures
those commands compile are listed, with how long each took to compile, in
:mod:`imuhip.cli._kernel_signatures` (written by ``scripts/kernel_signatures.py`` from a run of
:func:`imuhip.cli.commands.warmup.warm_kernels` in an empty cache;
``tests/unit/cli/test_kernel_signatures.py`` fails when the list no longer matches). Here they
are split into balanced groups (whole kernel modules where they fit, longest first, each to the
least loaded group: :func:`groups`) and compiled with
``Dispatcher.compile`` in this process and ``processes - 1`` child processes at once, into the
same on-disk cache (numba writes each index file whole, by rename). A signature the code no
longer accepts is skipped: ``warm_kernels`` runs after this and compiles whatever is missing, so
the list only decides how fast the warm-up is, never what is cached.
"""

from __future__ import annotations

import importlib
import logging
import os
import subprocess
import sys
import time
from typing import Any

__all__ = ["compile_group", "compile_parallel", "groups", "signature"]

log = logging.getLogger(__name__)

_CHILD_TIMEOUT_S = 600.0  # a group compiles in ~10 s on 2 cores


def groups(n: int) -> list[list[tuple[str, str, str]]]:
    """The listed signatures in ``n`` groups of about equal compile time: ``(module, function,
    signature repr)`` each.

    A kernel module's signatures stay together where they can: its kernels share helpers (the
    pairwise sums, the quaternion products), and a helper is compiled again in every process
    that compiles one of its callers. Whole modules are dealt out longest first, each to the
    least loaded group; a module heavier than an even share (``total / n``) is dealt out
    kernel by kernel instead, so many cores still get even work. On 2 cores the two groups
    then compile in 8.9-9.1 s wall against 9.4-9.9 s when every kernel was dealt out alone
    (empty cache, quiet machine).
    """
    from imuhip.cli._kernel_signatures import SIGNATURES

    out: list[list[tuple[str, str, str]]] = [[] for _ in range(max(1, n))]
    load = [0.0] * len(out)
    by_module: dict[str, list[tuple[str, str, str, float]]] = {}
    for entry in SIGNATURES:
        by_module.setdefault(entry[0], []).append(entry)
    share = sum(e[3] for e in SIGNATURES) / len(out)
    units: list[tuple[float, list[tuple[str, str, str]]]] = []
    for entries in by_module.values():
        seconds = sum(e[3] for e in entries)
        if seconds <= share:
            units.append((seconds, [(m, f, sig) for m, f, sig, _ in entries]))
        else:
            units += [(e[3], [(e[0], e[1], e[2])]) for e in entries]
    for seconds, unit in sorted(units, key=lambda u: -u[0]):
        k = load.index(min(load))
        out[k] += unit
        load[k] += seconds
    return out


def signature(text: str) -> tuple[Any, ...]:
    """The numba argument types of a listed signature (its ``repr``, e.g.
    ``"(Array(float64, 1, 'C', False, aligned=True), int64)"``)."""
    from numba.core import types

    names = {k: getattr(types, k) for k in dir(types) if not k.startswith("_")}
    return tuple(eval(text, {"__builtins__": {}}, names))  # our own list, numba's names only


def compile_group(index: int, n: int) -> int:
    """Compile group ``index`` of :func:`groups` ``(n)``; the number of signatures compiled."""
    done = 0
    for module, name, text in groups(n)[index]:
        try:
            dispatcher = getattr(importlib.import_module(module), name)
            dispatcher.compile(signature(text))
        except Exception as err:  # a stale entry only costs speed: warm_kernels compiles it
            log.debug("kernel %s.%s%s not compiled ahead: %s", module, name, text, err)
            continue
        done += 1
    return done


def compile_parallel(processes: int | None = None) -> float:
    """Compile every listed signature in ``processes`` processes (default: the CPUs this process
    may use); wall seconds."""
    t0 = time.perf_counter()
    if processes is None:
        processes = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
    n = max(1, processes)
    children = [
        subprocess.Popen(
            [sys.executable, "-m", "imuhip.cli.kernels", str(i), str(n)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for i in range(1, n)
    ]
    try:
        compile_group(0, n)
    finally:
        for child in children:
            try:
                child.wait(timeout=_CHILD_TIMEOUT_S)
            except subprocess.TimeoutExpired:  # a stuck child: what it missed compiles later
                child.kill()
                child.wait()
    return time.perf_counter() - t0


if __name__ == "__main__":  # a child of compile_parallel: python -m imuhip.cli.kernels I N
    compile_group(int(sys.argv[1]), int(sys.argv[2]))
