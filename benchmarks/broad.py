#!/usr/bin/env python3
"""BROAD accuracy benchmark of every imuhip fusion method (same as ``imuhip bench-fusion``).

Usage: ``python benchmarks/broad.py [--data DIR] [--methods vqf_offline madgwick] [--dims 9]``.
Prints total / heading / inclination RMSE (degrees) per trial and the mean per method, with
throughput in samples/s. Metric: Laidig et al. 2021, doi:10.3390/data6070072 (see
:mod:`imuhip.orientation.fusion.broad`).
"""

from __future__ import annotations

import sys

from imuhip.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench-fusion", *sys.argv[1:]]))
