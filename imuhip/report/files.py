"""Writing a set of report files so that a reader never sees old and new files mixed.

:func:`write_file_set` serves ``analyze`` (report.json, strides.csv, report.html, report.pdf), the
ROM report and the follow-up comparison.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

__all__ = ["write_file_set"]


def write_file_set(
    out_dir: str | Path,
    parts: Mapping[str, str | Callable[[Path], object]],
    last: str,
    *,
    goes_with_last: Sequence[str] = (),
) -> dict[str, Path]:
    """Write ``{file name: text or writer}`` into ``out_dir`` (created) as one set.

    A writer is called with a temporary path to write its file to (e.g. a PDF printed from the
    HTML). Every file is first written under a temporary name in ``out_dir``; then ``last`` is
    removed (and, if there was an earlier ``last``, the files ``goes_with_last`` of that earlier
    set) and the new files are renamed into place in ``parts`` order, ``last`` at the end. A
    folder holding ``last`` therefore holds a complete set of one run, whatever moment the
    process was killed at (at most a subset of the new files without ``last``, never old and
    new mixed). Files get the permissions a plain ``open()`` would give.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tmp: dict[str, Path] = {}
    umask = os.umask(0)
    os.umask(umask)
    try:
        for name, part in parts.items():
            fd, path = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=out)
            tmp[name] = Path(path)
            if isinstance(part, str):
                os.fchmod(fd, 0o666 & ~umask)
                with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
                    f.write(part)
            else:
                os.close(fd)
                part(tmp[name])
                tmp[name].chmod(0o666 & ~umask)
        earlier_set = (out / last).exists()
        (out / last).unlink(missing_ok=True)  # from here on the set is not complete
        if earlier_set:  # files of the earlier set that this one may not replace
            for name in goes_with_last:
                (out / name).unlink(missing_ok=True)
        for name in [n for n in parts if n != last] + [last]:
            tmp.pop(name).replace(out / name)
    finally:
        for p in tmp.values():
            p.unlink(missing_ok=True)
    return {name: out / name for name in parts}
