"""Batch analysis of a study folder (``imuhip batch``) and bounded-memory analysis of long sessions.

``run_batch(folder, out)`` analyses every ``.imrec`` under ``folder`` with
:func:`imuhip.pipeline.analyze_recording` and writes one table row per session and side (session
metrics, asymmetry, compensation index and quality) to a Parquet file. Sessions are keyed by the
sha256 of the recording file: a manifest next to the output (``<out stem>.done.json``) remembers
what was analysed with which configuration, so a re-run only analyses new or changed files.
A recording that cannot be analysed is listed with its reason and the others carry on.

Work runs on all local cores (:class:`concurrent.futures.ProcessPoolExecutor`) or, with a
scheduler address, on a Dask distributed cluster (the workers must see the same file paths).

:func:`~imuhip.report.chunked.analyze_recording_chunked` (re-exported here) analyses a recording
of any length in windows of fixed length (plus overlap for the filters to settle), streaming the
file, so memory does not grow with the session length; strides are assigned to the window holding
their initial contact and the session statistics are computed over all strides at the end.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from imuhip.pipeline import AnalysisConfig
from imuhip.report.chunked import ChunkedResult, analyze_recording_chunked
from imuhip.report.chunked import segcal_placements as segcal_placements

__all__ = [
    "BatchResult",
    "ChunkedResult",
    "analyze_one",
    "analyze_recording_chunked",
    "find_recordings",
    "result_rows",
    "run_batch",
    "sha256_file",
]

log = logging.getLogger(__name__)

MANIFEST_VERSION = 1
CHUNK_ABOVE_BYTES = 150 * 2**20
"""Recordings larger than this (about 2.5 h of 4 sensors at 200 Hz) are analysed in windows."""
_LEAD_COLUMNS = (
    "file",
    "side",
    "sha256",
    "session_id",
    "subject",
    "session_date",
    "n_strides",
    "n_valid_strides",
)


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes, read in chunks."""
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def find_recordings(folder: str | os.PathLike[str]) -> list[Path]:
    """Every ``*.imrec`` under ``folder`` (recursively), sorted by path."""
    root = Path(folder)
    if not root.is_dir():
        raise NotADirectoryError(20, "not a folder", str(root))
    return sorted(p for p in root.rglob("*.imrec") if p.is_file())


def _num(x: Any) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return float("nan")
    return v


def result_rows(res: Any, file: str, sha256: str) -> list[dict[str, Any]]:
    """One row per side of an analysed session (a ``SessionResult`` or :class:`ChunkedResult`).

    Columns: ``file``, ``sha256``, ``session_id``, ``subject``, ``session_date`` (the
    recording's start, ISO 8601 UTC, from its header), ``side``, stride counts, per-side
    hip and timing metrics (``<metric>`` = mean over valid strides, ``<metric>_sd``), trunk
    (pelvis/lumbar) means (both sides' strides), right − left asymmetry with its 95 % CI,
    compensation index of the side, gait flags of the side and quality figures.
    """
    ses = res.session
    q = res.quality
    sensors = q.get("sensors", {})
    loss = [_num(s.get("loss_fraction")) for s in sensors.values() if "loss_fraction" in s]
    rows: list[dict[str, Any]] = []
    for side in ("left", "right"):
        if side not in ses.per_side:
            continue
        n = ses.n_strides.get(side, {})
        row: dict[str, Any] = {
            "file": file,
            "sha256": sha256,
            "session_id": res.meta.session_id,
            "subject": res.meta.subject,
            "session_date": res.meta.start_wall_time,
            "side": side,
            "n_strides": int(_num(n.get("total", 0))),
            "n_valid_strides": int(_num(n.get("valid", 0))),
        }
        for k, m in ses.per_side[side].items():
            row[k] = _num(m.mean)
            row[f"{k}_sd"] = _num(m.sd)
        for k, m in ses.trunk.items():
            row[k] = _num(m.mean)
        for k, a in ses.asymmetry.items():
            row[f"{k}_asym_r_minus_l"] = _num(a.right_minus_left)
            row[f"{k}_asym_ci95_low"] = _num(a.ci95_low)
            row[f"{k}_asym_ci95_high"] = _num(a.ci95_high)
        comp = res.compensation.get(side)
        row["compensation_index"] = _num(comp.index) if comp is not None else float("nan")
        row["compensation_flagged"] = bool(comp.flagged) if comp is not None else False
        row["flags"] = ";".join(
            sorted(
                str(getattr(f, "code", f))
                for f in res.flags
                if getattr(f, "side", None) in (side, None)
            )
        )
        row["transverse_confidence_mean"] = _num(q.get("transverse_confidence_mean"))
        row["valid_fraction_angles"] = _num(q.get("valid_fraction_angles"))
        row["max_loss_fraction"] = max(loss) if loss else float("nan")
        row["recording_complete"] = bool(q.get("recording_complete", True))
        row["n_recording_warnings"] = len(q.get("recording_warnings", []))
        row["n_calibration_warnings"] = len(q.get("segment_calibration", {}).get("warnings", []))
        rows.append(row)
    return rows


def analyze_one(
    path: str,
    cfg: AnalysisConfig | None = None,
    *,
    root: str | None = None,
    sha256: str = "",
    chunk_bytes: int | None = CHUNK_ABOVE_BYTES,
) -> dict[str, Any]:
    """Analyse one recording for the batch; never raises for a bad recording.

    Recordings larger than ``chunk_bytes`` (``None``: never) are analysed with
    :func:`analyze_recording_chunked` so that a worker's memory stays bounded.

    Returns
    -------
    dict
        ``file`` (relative to ``root`` if given), ``sha256``, ``ok``, ``rows`` (list of dict) and
        ``error`` (``"ExceptionType: message"`` or ``None``).
    """
    from imuhip.pipeline import analyze_recording

    rel = os.path.relpath(path, root) if root else str(path)
    try:
        digest = sha256 or sha256_file(path)
        if chunk_bytes is not None and Path(path).stat().st_size > chunk_bytes:
            res: Any = analyze_recording_chunked(path, cfg)
        else:
            res = analyze_recording(path, cfg)
        rows = result_rows(res, rel, digest)
    except Exception as err:  # the batch boundary: record the reason, keep going
        return {
            "file": rel,
            "sha256": sha256,
            "ok": False,
            "rows": [],
            # the public error class (a private subclass such as _NotRecording is an
            # implementation detail): RecordingError, ValueError, ...
            "error": f"{_public_name(err)}: {err}",
        }
    return {"file": rel, "sha256": digest, "ok": True, "rows": rows, "error": None}


@dataclass(frozen=True)
class BatchResult:
    """What a batch run did.

    ``table`` is the full output table (previous rows of unchanged files included).
    """

    out: Path
    manifest: Path
    analysed: list[str]
    skipped: list[str]
    failures: list[tuple[str, str]]
    table: Any = field(repr=False)


def _config_key(cfg: AnalysisConfig) -> str:
    return json.dumps(asdict(cfg), sort_keys=True, default=str)


def _atomic_write(path: Path, write: Any) -> None:
    """``write(tmp)`` a temporary sibling, then rename it onto ``path`` (never half-written)."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def manifest_path(out: Path) -> Path:
    """The done-cache manifest ``<out stem>.done.json`` written next to the batch table ``out``."""
    name = out.name[: -len(out.suffix)] if out.suffix else out.name
    return out.with_name(f"{name}.done.json")


def _load_previous(out: Path, manifest: Path, cfg_key: str) -> tuple[dict[str, Any], Any]:
    import pandas as pd

    if not (manifest.exists() and out.exists()):
        return {}, None
    try:
        doc = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        log.warning("unreadable manifest %s: analysing everything again", manifest)
        return {}, None
    if doc.get("config") != cfg_key:
        log.info("analysis configuration changed: analysing everything again")
        return {}, None
    return dict(doc.get("done", {})), pd.read_parquet(out)


def run_batch(
    folder: str | os.PathLike[str],
    out: str | os.PathLike[str],
    cfg: AnalysisConfig | None = None,
    *,
    jobs: int | None = None,
    dask_address: str | None = None,
    progress: bool = False,
) -> BatchResult:
    """Analyse every recording of ``folder`` into one table (``out``, Parquet).

    Parameters
    ----------
    folder : path-like
        Searched recursively for ``*.imrec``.
    out : path-like
        Output Parquet file; the manifest ``<stem>.done.json`` is written next to it.
    cfg : AnalysisConfig, optional
    jobs : int, optional
        Local worker processes (default: all cores; ``1`` runs in this process).
    dask_address : str, optional
        Address of a Dask distributed scheduler (``tcp://host:8786``) to run the work on.
    progress : bool
        Show a progress bar on stderr (rich).

    Returns
    -------
    BatchResult
        Rows are sorted by ``file`` and ``side``; files whose content hash was already analysed
        with the same configuration are skipped, failed ones are tried again next time.
    """
    import pandas as pd

    cfg = cfg or AnalysisConfig()
    root = Path(folder)
    out_path = Path(out)
    manifest = manifest_path(out_path)
    files = find_recordings(root)
    cfg_key = _config_key(cfg)
    done, previous = _load_previous(out_path, manifest, cfg_key)
    hashes = {str(p): sha256_file(p) for p in files}
    todo = [p for p in files if hashes[str(p)] not in done]
    skipped = [os.path.relpath(p, root) for p in files if hashes[str(p)] in done]
    results = list(_execute(todo, cfg, root, hashes, jobs, dask_address, progress))

    rows: list[dict[str, Any]] = [r for res in results for r in res["rows"]]
    frames = []
    keep = set(hashes.values())
    if previous is not None and len(previous):
        # only rows the manifest vouches for: a table written by a run that died before its
        # manifest must not duplicate the rows analysed again now
        frames.append(previous[previous["sha256"].isin(keep & set(done))])
    if rows:
        frames.append(pd.DataFrame(rows))
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(rows)
    if len(table):
        # canonical layout whatever the completion order: id columns, then the rest by name
        lead = [c for c in _LEAD_COLUMNS if c in table.columns]
        table = table[lead + sorted(c for c in table.columns if c not in lead)]
        table = table.sort_values(["file", "side"], kind="stable").reset_index(drop=True)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(out_path, lambda tmp: table.to_parquet(tmp, index=False))
    new_done = {h: v for h, v in done.items() if h in keep}
    for res in results:
        if res["ok"]:
            new_done[res["sha256"]] = {"file": res["file"]}
    failures = sorted((r["file"], r["error"]) for r in results if not r["ok"])
    doc = (
        json.dumps(
            {
                "format": "imuhip-batch-manifest",
                "version": MANIFEST_VERSION,
                "config": cfg_key,
                "done": new_done,
                "failures": [{"file": f, "reason": e} for f, e in failures],
            },
            indent=1,
        )
        + "\n"
    )
    _atomic_write(manifest, lambda tmp: tmp.write_text(doc, encoding="utf-8"))
    return BatchResult(
        out=out_path,
        manifest=manifest,
        analysed=sorted(r["file"] for r in results if r["ok"]),
        skipped=sorted(skipped),
        failures=failures,
        table=table,
    )


def _execute(
    todo: Sequence[Path],
    cfg: AnalysisConfig,
    root: Path,
    hashes: dict[str, str],
    jobs: int | None,
    dask_address: str | None,
    show: bool,
) -> Iterable[dict[str, Any]]:
    """Run :func:`analyze_one` over ``todo`` locally or on Dask, yielding results as they finish."""
    if not todo:
        return
    with _progress(show, len(todo)) as advance:
        if dask_address is not None:
            from dask.distributed import Client, as_completed

            with Client(dask_address) as client:
                futures = [
                    client.submit(
                        analyze_one,
                        str(p),
                        cfg,
                        root=str(root),
                        sha256=hashes[str(p)],
                        pure=False,
                    )
                    for p in todo
                ]
                for fut in as_completed(futures):
                    res = fut.result()
                    advance(res["file"])
                    yield res
            return
        n_jobs = jobs if jobs is not None else (os.cpu_count() or 1)
        if n_jobs <= 1 or len(todo) == 1:
            for p in todo:
                res = analyze_one(str(p), cfg, root=str(root), sha256=hashes[str(p)])
                advance(res["file"])
                yield res
            return
        import concurrent.futures as cf

        with cf.ProcessPoolExecutor(max_workers=min(n_jobs, len(todo))) as pool:
            futs = [
                pool.submit(analyze_one, str(p), cfg, root=str(root), sha256=hashes[str(p)])
                for p in todo
            ]
            for fut in cf.as_completed(futs):
                res = fut.result()
                advance(res["file"])
                yield res


class _progress:
    """A rich progress bar on stderr (or nothing), as a context manager returning ``advance``."""

    def __init__(self, show: bool, total: int) -> None:
        self.show = show
        self.total = total
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> Callable[[str], None]:
        if not self.show:
            return lambda _: None
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        console = Console(stderr=True)
        if not console.is_terminal:  # a log file or CI: rich would draw the bar only at the end
            done = [0]

            def line(name: str) -> None:
                done[0] += 1
                sys.stderr.write(f"analysed {done[0]}/{self.total}: {name}\n")
                sys.stderr.flush()

            return line
        self._bar = Progress(
            TextColumn("analysing"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.description}"),
            console=console,
            transient=False,
        )
        self._bar.__enter__()
        self._task = self._bar.add_task("", total=self.total)

        def advance(name: str) -> None:
            self._bar.update(self._task, advance=1, description=name)

        return advance

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)


def _public_name(err: BaseException) -> str:
    """Name of the first class of ``err``'s type that is not private (``_...``)."""
    return next(c.__name__ for c in type(err).__mro__ if not c.__name__.startswith("_"))
