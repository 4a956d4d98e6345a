"""Batch analysis of a study folder (``imuhip batch``) and bounded-memory analysis of long sessions.

``run_batch(folder, out)`` analyses every ``.imrec`` under ``folder`` with
:func:`imuhip.pipeline.analyze_recording` and writes one table row per session and side (session
metrics, asymmetry, compensation index and quality) to a Parquet file. Sessions are keyed by the
sha256 of the recording file: a manifest next to the output (``<out stem>.done.json``) remembers
what was analysed with which configuration, so a re-run only analyses new or changed files.
A recording that cannot be analysed is listed with its reason and the others carry on.

Work runs on all local cores (:class:`concurrent.futures.ProcessPoolExecutor`) or, with a
scheduler address, on a Dask distributed cluster (the workers must see the same file paths).

:func:`analyze_recording_chunked` analyses a recording of any length in windows of fixed length
(plus overlap for the filters to settle), streaming the file, so memory does not grow with the
session length; strides are assigned to the window holding their initial contact and the session
statistics are computed over all strides at the end.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from imuhip.pipeline import AnalysisConfig

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

    Columns: ``file``, ``sha256``, ``session_id``, ``subject``, ``side``, stride counts, per-side
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
            "error": f"{type(err).__name__}: {err}",
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

        self._bar = Progress(
            TextColumn("analysing"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.description}"),
            console=Console(stderr=True),
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


# ---------------------------------------------------------------------------------------------
# Long sessions in bounded memory
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ChunkedResult:
    """Session-level result of :func:`analyze_recording_chunked` (no full-length time series).

    Same attribute names as :class:`imuhip.pipeline.SessionResult` for ``meta``, ``strides``,
    ``per_stride``, ``session``, ``compensation``, ``flags`` and ``quality`` (so
    :func:`result_rows` takes either). Stride ``start_idx``/``stop_idx`` index the whole
    session's grid; times are session seconds.
    """

    meta: Any
    strides: list[Any]
    per_stride: list[dict[str, float]]
    session: Any
    compensation: dict[str, Any]
    flags: list[Any]
    quality: dict[str, Any]
    windows: int
    window_s: float
    overlap_s: float


def _window_frames(
    path: str | os.PathLike[str], window_s: float, overlap_s: float
) -> Iterable[tuple[int, float, list[Any], list[Any], int]]:
    """Stream a recording; yield ``(k, core_start_s, packets, events_so_far, t0_ns)`` per window.

    Window ``k`` holds the packets received in ``[k W - O, (k + 1) W + O)`` session seconds.
    """
    from imuhip.ingest.recording import open_recording
    from imuhip.types import RawPacket

    stream = open_recording(path)
    w_ns, o_ns = int(window_s * 1e9), int(overlap_s * 1e9)
    t0: int | None = None
    buf: list[Any] = []
    events: list[Any] = []
    k = 0
    for fr in stream:
        if type(fr) is not RawPacket:
            events.append(fr)
            continue
        if t0 is None:
            t0 = fr.host_rx_ns
        while fr.host_rx_ns >= t0 + (k + 1) * w_ns + o_ns:
            lo = t0 + k * w_ns - o_ns
            yield k, k * window_s, [p for p in buf if p.host_rx_ns >= lo], events, t0
            k += 1
            keep_from = t0 + k * w_ns - o_ns
            buf = [p for p in buf if p.host_rx_ns >= keep_from]
        buf.append(fr)
    if t0 is not None and buf:
        lo = t0 + k * w_ns - o_ns
        yield k, k * window_s, [p for p in buf if p.host_rx_ns >= lo], events, t0
    _window_frames.last_warnings = list(stream.warnings)  # type: ignore[attr-defined]
    _window_frames.last_complete = bool(stream.complete)  # type: ignore[attr-defined]


def analyze_recording_chunked(
    path: str | os.PathLike[str],
    cfg: AnalysisConfig | None = None,
    *,
    window_s: float = 600.0,
    overlap_s: float = 30.0,
    progress: Callable[[str], None] | None = None,
) -> ChunkedResult:
    """Analyse a recording of any length in windows, with memory bounded by the window length.

    Each window (``window_s`` plus ``overlap_s`` on both sides, so the orientation filters
    settle before the window's own part starts) goes through the same stages as
    :func:`imuhip.pipeline.analyze_packets` on the one session clock of the whole recording
    (:func:`imuhip.ingest.align.align_session` with the recording's ``t0_ns``); the segment
    calibration
    is computed once, in the first window (or taken from the recording), and reused. A stride
    belongs to the window whose own part holds its initial contact, so none is counted twice.
    Session statistics, asymmetry (bootstrap) and the compensation index are computed over all
    strides at the end, as in the one-piece analysis.

    Parameters
    ----------
    path : path-like
    cfg : AnalysisConfig, optional
    window_s, overlap_s : float
        Window length and overlap on each side, seconds (overlap >= 10 s, well above a stride).
    progress : callable, optional
        Called with a label per window.

    Raises
    ------
    ValueError
        Bad window parameters.
    InsufficientDataError, CalibrationError, RecordingError
        As :func:`imuhip.pipeline.analyze_recording`.
    """
    from imuhip.gait.compensation import absorption_phase_deg
    from imuhip.gait.metrics import session_metrics
    from imuhip.gait.norms import gait_flags
    from imuhip.ingest.align import AlignConfig, align_session
    from imuhip.ingest.decode import decode_session
    from imuhip.ingest.units_check import check_session_gyro_units
    from imuhip.orientation.fusion import FuseConfig, fuse_session
    from imuhip.orientation.segment_calibration import calibrate_segments
    from imuhip.pipeline import _recorded_segcal, analyze_orientations

    if not (window_s >= 60.0 and np.isfinite(window_s)):
        raise ValueError(f"window_s must be >= 60, got {window_s}")
    if not 10.0 <= overlap_s <= window_s:
        raise ValueError(f"overlap_s must be in [10, window_s], got {overlap_s}")
    cfg = cfg or AnalysisConfig()
    say = progress or (lambda _: None)
    meta = None
    segcal = None
    strides: list[Any] = []
    per_stride: list[dict[str, float]] = []
    phases: list[tuple[str, float]] = []
    sensors_q: dict[str, dict[str, float]] = {}
    conf_sum, conf_n, valid_sum, n_grid = 0.0, 0, 0.0, 0
    n_windows = 0
    notes: list[str] = []
    seg_quality: dict[str, Any] = {}
    for k, core0, packets, events, t0 in _window_frames(path, window_s, overlap_s):
        say(f"window {k + 1} ({core0:.0f}-{core0 + window_s:.0f} s)")
        from imuhip.ingest.recording import open_recording

        if meta is None:
            meta = open_recording(path).meta
        samples = decode_session(packets, meta)
        if not any(len(s) for s in samples.values()):
            continue
        aligned = align_session(samples, AlignConfig(), t0_ns=t0)
        del samples
        if cfg.calibration_folder is not None:
            from imuhip.orientation.sensor_calibration import apply_sensor_calibrations

            aligned = apply_sensor_calibrations(aligned, meta, cfg.calibration_folder)
        check_session_gyro_units(aligned)  # a gyroscope off by 57.3 is refused
        ori = fuse_session(aligned, FuseConfig(method=cfg.method, use_mag=cfg.use_mag))
        for pl, sensor in aligned.sensors.items():
            q = sensors_q.setdefault(pl, {"loss_fraction": 0.0, "n_gaps": 0})
            q["loss_fraction"] = max(q["loss_fraction"], float(sensor.stats.loss_fraction))
            q["n_gaps"] += len(sensor.stats.gaps)
        del aligned
        if segcal is None:
            segcal = _recorded_segcal(events) or calibrate_segments(
                ori, cfg.segment_calibration_config()
            )
        res = analyze_orientations(ori, meta, cfg, segcal=segcal)
        n_windows += 1
        grid0 = round(float(ori.t_s[0]) * ori.rate_hz)
        del ori
        core1 = core0 + window_s
        ang = res.angles
        for s, m in zip(res.strides, res.per_stride, strict=True):
            if not core0 <= s.ic_s < core1:
                continue
            if s.valid and s.to_s is not None and ang.pelvis_rad is not None:
                hip = ang.hip_rad.get(s.side)
                if hip is not None:
                    sl = slice(s.start_idx, s.stop_idx)
                    ph = absorption_phase_deg(
                        ang.pelvis_rad[sl, 0], hip[sl, 2], s.side, ang.t_s[sl] < s.to_s
                    )
                    phases.append((s.side, ph))
            strides.append(replace(s, start_idx=s.start_idx + grid0, stop_idx=s.stop_idx + grid0))
            per_stride.append(m)
        inside = (ang.t_s >= core0) & (ang.t_s < core1)
        if ang.transverse_confidence is not None and (ang.valid & inside).any():
            conf_sum += float(np.sum(ang.transverse_confidence[ang.valid & inside]))
            conf_n += int(np.sum(ang.valid & inside))
        valid_sum += float(np.sum(ang.valid[inside]))
        n_grid += int(np.sum(inside))
        notes = list(dict.fromkeys([*notes, *ang.notes]))
        seg_quality = res.quality.get("segment_calibration", seg_quality)
        del res, ang
    if meta is None or (not strides and n_windows == 0):
        from imuhip.errors import InsufficientDataError

        raise InsufficientDataError(f"{path}: no decodable sensor data")
    order = sorted(range(len(strides)), key=lambda i: (strides[i].ic_s, strides[i].side))
    strides = [strides[i] for i in order]
    per_stride = [per_stride[i] for i in order]
    counters: dict[str, int] = {}
    renumbered = []
    for s in strides:
        counters[s.side] = counters.get(s.side, 0) + 1
        renumbered.append(replace(s, number=counters[s.side]))
    strides = renumbered
    session = session_metrics(strides, per_stride, seed=cfg.bootstrap_seed)
    comp = _compensation(strides, per_stride, phases, cfg, "lumbar" in segcal_placements(meta))
    conf_mean = conf_sum / conf_n if conf_n else None
    flags = gait_flags(
        {s: {k: v.mean for k, v in m.items()} for s, m in session.per_side.items()},
        {k: v.mean for k, v in session.trunk.items()},
        {k: (a.right_minus_left, a.ci95_low, a.ci95_high) for k, a in session.asymmetry.items()},
        {s: (c.index, cfg.compensation.band) for s, c in comp.items()},
        conf_mean,
    )
    quality = {
        "recording_warnings": list(getattr(_window_frames, "last_warnings", [])),
        "recording_complete": bool(getattr(_window_frames, "last_complete", True)),
        "sensors": sensors_q,
        "segment_calibration": seg_quality,
        "transverse_confidence_mean": conf_mean,
        "angle_notes": notes,
        "valid_fraction_angles": valid_sum / n_grid if n_grid else 0.0,
        "chunked": {"windows": n_windows, "window_s": window_s, "overlap_s": overlap_s},
    }
    return ChunkedResult(
        meta, strides, per_stride, session, comp, flags, quality, n_windows, window_s, overlap_s
    )


def segcal_placements(meta: Any) -> set[str]:
    """Placements of a session's sensors."""
    return {s.placement for s in meta.sensors}


def _compensation(
    strides: Sequence[Any],
    per_stride: Sequence[dict[str, float]],
    phases: Sequence[tuple[str, float]],
    cfg: AnalysisConfig,
    with_lumbar: bool,
) -> dict[str, Any]:
    """:func:`imuhip.gait.compensation.compensation_index` from per-stride ingredients.

    The stance absorption phases were computed per stride inside each window (they need the
    angle time series); ratio, medians and z-scores follow ``compensation_index`` exactly.
    """
    from imuhip.gait.compensation import side_index, stride_log_ratio

    out: dict[str, Any] = {}
    for side in ("left", "right"):
        ratios = [
            r
            for s, m in zip(strides, per_stride, strict=True)
            if s.side == side and s.valid and s.to_s is not None
            if (r := stride_log_ratio(m, with_lumbar)) is not None
        ]
        res = side_index(
            side, ratios, [p for sd, p in phases if sd == side], with_lumbar, cfg.compensation
        )
        if res is not None:
            out[side] = res
    return out
