"""``imuhip warmup``: compile and cache the numeric kernels once, as the last install step.

The analysis runs on numba kernels compiled on first use and cached on disk
(:mod:`imuhip.numeric`). Without a cache the first ``imuhip analyze`` of an installation spends
~25 s of CPU compiling them; ``imuhip warmup`` pays that once at install time (``pip install``
then ``imuhip warmup``; ``.ci/run`` does so), so the first real run starts warm.

It writes two short simulated sessions to a temporary folder (pelvis, thighs, lumbar and shanks:
gait events from the shanks; without shanks: the thigh rule) and runs the same calls the
commands make: ``read_recording`` + ``decode_session`` (``info``, ``replay``,
``export``) and ``analyze_recording`` with and without magnetometers (``analyze``). Kernels
compile for argument types, not values, so these cover any recording. The cache goes where
numba caches (``__pycache__`` beside each kernel module, or ``NUMBA_CACHE_DIR``).

The kernels are first compiled ahead of their calls, shared out over the cores
(:mod:`imuhip.cli.kernels`: numba compiles one function at a time per process); the run of the
commands' paths then only loads them from the cache, and compiles whatever the list missed.

It also writes the Python bytecode (``.pyc``) of imuhip and of the installed packages
(``compileall``, all cores): where ``PYTHONDONTWRITEBYTECODE`` is set (as in this project's
workplace) or pip did not compile, every process otherwise compiles every module it imports
from source, 1.5–3 s of CPU per command (``imuhip info`` of the shipped recording: 1.9 → 0.8 s
of CPU). Python reads existing ``.pyc`` files whatever that variable says.
"""

from __future__ import annotations

import argparse
import sys
import time

NAME = "warmup"
HELP = "compile and cache the numba kernels once after installing (first run then fast)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``[--quiet]``."""
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")


def compile_bytecode() -> float:
    """Write ``.pyc`` files for imuhip and the installed packages; wall seconds."""
    import compileall
    import sysconfig
    from pathlib import Path

    import imuhip

    t0 = time.perf_counter()
    roots = {Path(imuhip.__file__).parent}
    roots |= {Path(sysconfig.get_paths()[k]) for k in ("purelib", "platlib")}
    for root in sorted(roots):
        if root.is_dir():
            compileall.compile_dir(root, quiet=2, workers=0)
    return time.perf_counter() - t0


def warm_kernels(say: object = None) -> dict[str, float]:
    """Run every command's kernel path once on a simulated session; wall seconds per step."""
    import dataclasses
    import tempfile
    from pathlib import Path

    from imuhip.cli.bench_recording import make_bench_recording
    from imuhip.ingest.decode import decode_session
    from imuhip.ingest.recording import read_recording
    from imuhip.pipeline import AnalysisConfig, analyze_recording

    def step(label: str) -> None:
        if callable(say):
            say(label)

    times: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="imuhip-warmup-") as tmp:
        t0 = time.perf_counter()
        step("simulating two 40 s sessions")
        # 6 sensors: shank gait events; 4 (pelvis, thighs, lumbar): the thigh event rule
        paths = [Path(tmp) / f"warmup_{n}.imrec" for n in (6, 4)]
        for path, n in zip(paths, (6, 4), strict=True):
            make_bench_recording(path, duration_s=40.0, sensors=n, rate_hz=100, tile_s=40.0)
        times["simulate_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        step("compiling the decoder kernels")
        rec = read_recording(paths[0])
        decode_session(rec.packets, rec.meta)
        times["decode_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        step("compiling the analysis kernels")
        cfg = AnalysisConfig()
        for path in paths:
            analyze_recording(path, cfg)
            analyze_recording(path, dataclasses.replace(cfg, use_mag=False))
        times["analyze_s"] = time.perf_counter() - t0
    return times


def run(args: argparse.Namespace) -> int:
    """Compile, then print how long each step took."""

    def say(label: str) -> None:
        if not args.quiet:
            sys.stderr.write(f"imuhip warmup: {label}...\n")
            sys.stderr.flush()

    from imuhip.cli.kernels import compile_parallel

    t0 = time.perf_counter()
    say("writing Python bytecode")
    bytecode_s = compile_bytecode()
    say("compiling the numeric kernels on every core")
    parallel_s = compile_parallel()
    times = warm_kernels(say)  # what the list missed, and the check that nothing is missing
    times["parallel_s"] = parallel_s
    times["bytecode_s"] = bytecode_s
    total = time.perf_counter() - t0
    parts = ", ".join(f"{k.removesuffix('_s')} {v:.1f} s" for k, v in times.items())
    sys.stdout.write(f"kernels compiled and cached in {total:.1f} s ({parts})\n")
    return 0
