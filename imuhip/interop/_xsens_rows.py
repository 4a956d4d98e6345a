"""Row order of an Xsens MT Manager export: local swaps sorted, exact duplicates dropped."""

from __future__ import annotations

from pathlib import Path
from typing import Final

import numpy as np

from imuhip.errors import ImportFormatError
from imuhip.interop._common import FloatArray, IntArray

__all__ = ["repair_row_order"]

_MAX_REORDER_SAMPLES: Final = 10
"""Out-of-order rows are put back in counter order only when each is at most this many samples
from its place (a local swap in the export); a larger step back is another recording appended
or a counter reset, which sorting would silently interleave."""


def repair_row_order(
    path: Path,
    counter: IntArray,
    blocks: tuple[FloatArray | None, ...],
    col: str,
    first_line: int,
) -> tuple[IntArray, list[str]]:
    """Row indices in counter order without exact duplicate rows, and notes on what changed.

    Raises
    ------
    ImportFormatError
        A counter that steps back by more than ``_MAX_REORDER_SAMPLES``, or one counter value on
        two rows with different values.
    """
    steps = np.diff(counter)
    notes: list[str] = []
    if np.all(steps > 0):
        return np.arange(len(counter)), notes
    back = np.flatnonzero(steps < -_MAX_REORDER_SAMPLES)
    if len(back):
        i = int(back[0]) + 1
        raise ImportFormatError(
            f"{path}: line {first_line + i}, column {col}: counter {counter[i]} jumps back from "
            f"{counter[i - 1]} (a counter reset or two recordings in one file?); expected one "
            "row per new sample in counter order: export each recording to its own file"
        )
    order = np.argsort(counter, kind="stable")
    n_moved = int(np.sum(steps < 0))
    same = np.flatnonzero(np.diff(counter[order]) == 0) + 1
    present = [b for b in blocks if b is not None]
    for k in same:
        a, b = int(order[k - 1]), int(order[k])
        if not all(np.array_equal(x[a], x[b], equal_nan=True) for x in present):
            raise ImportFormatError(
                f"{path}: lines {first_line + a} and {first_line + b}, column {col}: counter "
                f"{counter[a]} on two rows with different values; expected one row per sample"
            )
    keep = np.delete(order, same)
    if n_moved:
        notes.append(f"{path.name}: {n_moved} row(s) out of counter order: sorted by {col}")
    if len(same):
        notes.append(f"{path.name}: {len(same)} duplicated row(s) dropped")
    return keep.astype(np.int64), notes
