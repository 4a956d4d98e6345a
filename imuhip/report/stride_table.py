"""``strides.csv`` in memory, without pandas (:func:`imuhip.report.writer.strides_table`)."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["StridesTable"]


@dataclass(frozen=True, slots=True)
class StridesTable:
    """``strides.csv`` in memory: column names and one tuple per stride (a missing value is NaN)."""

    columns: list[str]
    rows: list[tuple[Any, ...]]

    def __len__(self) -> int:
        return len(self.rows)

    def column(self, name: str) -> list[Any]:
        """The values of one column, in row order."""
        j = self.columns.index(name)
        return [r[j] for r in self.rows]

    def take(self, keep: Sequence[int]) -> StridesTable:
        """The rows at ``keep``, in that order."""
        return StridesTable(self.columns, [self.rows[k] for k in keep])

    def to_csv(self, float_format: str = "%.4f") -> str:
        """CSV text as ``pandas.DataFrame.to_csv(index=False, float_format=...)`` writes it: floats
        with ``float_format``, NaN as an empty field, booleans as ``True`` / ``False``."""
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(self.columns)
        # column by column: a column of plain floats (most of them) in one comprehension
        cols = [_csv_column(list(c), float_format) for c in zip(*self.rows, strict=True)]
        w.writerows(zip(*cols, strict=True))
        return buf.getvalue()


def _csv_column(col: list[Any], float_format: str) -> list[Any]:
    """:func:`_csv_cell` of every value of one column."""
    if all(type(v) is float for v in col):
        return ["" if v != v else float_format % v for v in col]  # v != v: NaN
    return [_csv_cell(v, float_format) for v in col]


def _csv_cell(v: Any, float_format: str) -> Any:
    if type(v) is float:  # most cells: the exact type first, before the isinstance checks
        return "" if v != v else float_format % v  # v != v: NaN
    if isinstance(v, bool | np.bool_):
        return "True" if v else "False"
    if isinstance(v, float | np.floating):
        return "" if math.isnan(v) else float_format % v  # inf stays "inf", as in pandas
    if isinstance(v, np.integer):
        return int(v)
    return "" if v is None else v
