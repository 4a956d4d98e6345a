"""Export formats added to ``imuhip export``: ``sto``, ``bids``, joint-angle and stride tables.

Each exporter follows :mod:`imuhip.cli.commands.export`'s contract ``(ctx, out_dir, force) ->
list[Path]`` (targets checked before anything is written). They run the pipeline's stages on the
recording (decode -> align -> fuse for orientations; the full analysis for angles and strides),
so the numbers are exactly those ``imuhip analyze`` reports. ``.imori.npz`` orientation sessions
(vendor imports) are exported by :func:`export_orientation_file` with the same formats.

Tables (units in the column names, degrees at this edge):

``<stem>_angles.csv|parquet``
    ``t_s, valid, hip_flexion_l_deg, hip_adduction_l_deg, hip_internal_rotation_l_deg`` (and
    ``_r``), ``pelvis_rotation_deg, pelvis_obliquity_deg, pelvis_tilt_deg``, ``lumbar_flexion_deg,
    lumbar_lateral_bending_deg, lumbar_axial_rotation_deg`` (with a lumbar sensor),
    ``transverse_confidence``.
``<stem>_strides.csv|parquet``
    one row per stride: ``side, number, start_idx, stop_idx, ic_s, next_ic_s, to_s,
    heading_change_deg, valid, exclusion`` (``none`` = valid) and the per-stride metrics
    (``hip_rotation_excursion_deg``, ... see ``docs/architecture.md``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from imuhip.errors import ImuhipError
from imuhip.interop.context import ExportContext, check_targets
from imuhip.interop.motion_bids import bids_session_fields, motion_channels, write_motion_bids
from imuhip.interop.opensim_session import write_session_sto
from imuhip.types import OrientationSession, SegmentCalibration, SessionMeta

if TYPE_CHECKING:
    import pandas as pd

    from imuhip.pipeline import SessionResult

__all__ = [
    "FORMATS",
    "angles_table",
    "export_orientation_file",
    "strides_table",
]

log = logging.getLogger(__name__)

_HIP = ("flexion", "adduction", "internal_rotation")
_PELVIS = ("rotation", "obliquity", "tilt")
_LUMBAR = ("flexion", "lateral_bending", "axial_rotation")


def angles_table(result: SessionResult) -> pd.DataFrame:
    """Joint angles on the session grid, degrees, one row per sample (see module docstring)."""
    a = result.angles
    cols: dict[str, Any] = {"t_s": a.t_s, "valid": np.asarray(a.valid, bool)}
    for side in ("left", "right"):
        if side in a.hip_rad:
            deg = np.degrees(a.hip_rad[side])
            for j, n in enumerate(_HIP):
                cols[f"hip_{n}_{side[0]}_deg"] = deg[:, j]
    if a.pelvis_rad is not None:
        deg = np.degrees(a.pelvis_rad)
        for j, n in enumerate(_PELVIS):
            cols[f"pelvis_{n}_deg"] = deg[:, j]
    if a.lumbar_rad is not None:
        deg = np.degrees(a.lumbar_rad)
        for j, n in enumerate(_LUMBAR):
            cols[f"lumbar_{n}_deg"] = deg[:, j]
    if a.transverse_confidence is not None:
        cols["transverse_confidence"] = a.transverse_confidence
    import pandas as pd

    return pd.DataFrame(cols)


def strides_table(result: SessionResult) -> pd.DataFrame:
    """One row per stride with its events, exclusion and per-stride metrics."""
    rows = []
    for s, m in zip(result.strides, result.per_stride, strict=True):
        rows.append(
            {
                "side": s.side,
                "number": s.number,
                "start_idx": s.start_idx,
                "stop_idx": s.stop_idx,
                "ic_s": s.ic_s,
                "next_ic_s": s.next_ic_s,
                "to_s": np.nan if s.to_s is None else s.to_s,
                "heading_change_deg": s.heading_change_deg,
                "valid": s.exclusion is None,
                "exclusion": s.exclusion or "none",
                **m,
            }
        )
    import pandas as pd

    return pd.DataFrame(rows)


def _typed_float(x: object) -> str:
    """``x`` with 10 significant digits that a CSV reader cannot take for an integer."""
    text = f"{float(x):.10g}"  # type: ignore[arg-type]
    return text if any(c in text for c in ".en") else text + ".0"


def _check(paths: list[Path], force: bool) -> None:
    check_targets(paths, force)


def _orientations(ctx: ExportContext) -> OrientationSession:
    from imuhip.ingest.align import AlignConfig, align_session
    from imuhip.ingest.units_check import check_session_gyro_units
    from imuhip.orientation.fusion import FuseConfig, fuse_session

    aligned = align_session(ctx.samples, AlignConfig(), t0_ns=ctx.t0_ns, events=ctx.rec.events)
    for w in check_session_gyro_units(aligned)["warnings"]:  # a clear unit mistake raises
        log.warning("gyroscope unit: %s", w)
    return fuse_session(aligned, FuseConfig())


def _analysis(ctx: ExportContext) -> SessionResult:
    from imuhip.pipeline import analyze_recording

    return analyze_recording(ctx.source)


def _write_sto(
    ori: OrientationSession,
    out_dir: Path,
    stem: str,
    force: bool,
    meta: SessionMeta | None = None,
    segcal: SegmentCalibration | None = None,
) -> list[Path]:
    target = out_dir / f"{stem}_orientations.sto"
    _check([target], force)
    return [write_session_sto(target, ori, meta, segcal)]


def _bids_label(text: str) -> str:
    label = "".join(ch for ch in text if ch.isalnum())
    return label or "imported"


def _write_bids(
    ori: OrientationSession,
    meta: SessionMeta,
    result: SessionResult | None,
    out_dir: Path,
    force: bool,
) -> list[Path]:
    sub = _bids_label(meta.subject)
    mdir = out_dir / f"sub-{sub}" / "motion"
    base = f"sub-{sub}_task-walking_tracksys-imu"
    targets = [mdir / f"{base}_{s}" for s in ("motion.tsv", "channels.tsv", "motion.json")]
    _check(targets, force)
    dev = bids_session_fields(meta)  # import time is no acquisition time: acq_time n/a
    angles = result.angles if result is not None else None
    data, chans = motion_channels(ori, angles, body_sites=dev["body_sites"])
    events: list[tuple[float, float, str]] = []
    if result is not None:
        t0 = float(ori.t_s[0])
        for side, ev in result.events.items():
            events += [(float(t) - t0, 0.0, f"initial_contact_{side}") for t in ev.ic_s]
            events += [(float(t) - t0, 0.0, f"toe_off_{side}") for t in ev.to_s]
    files = write_motion_bids(
        out_dir,
        data,
        chans,
        rate_hz=ori.rate_hz,
        subject=sub,
        acq_time=dev["acq_time"],
        task_description="gait (imuhip session " + meta.session_id + ")",
        manufacturer=dev["manufacturer"],
        model=dev["model"],
        serials=dev["serials"],
        firmware=dev["firmware"],
        events=events,
    )
    out = [files.motion_tsv, files.channels_tsv, files.channels_json, files.motion_json]
    return out + ([files.events_tsv] if files.events_tsv else [])


def _write_table(df: pd.DataFrame, target: Path, fmt: str, force: bool) -> list[Path]:
    _check([target], force)
    if fmt == "csv":
        # typed readers (polars, duckdb) infer a column's type from its first rows: every float
        # carries a decimal point or exponent ("1.0", not "1"), booleans are true/false
        df.to_csv(target, index=False, float_format=_typed_float)
    else:
        df.to_parquet(target, index=False, engine="pyarrow")
    return [target]


def export_sto(ctx: ExportContext, out_dir: Path, force: bool) -> list[Path]:
    """``<stem>_orientations.sto``: fused orientations as an OpenSense quaternion table."""
    ori = _orientations(ctx)
    segcal = None
    try:  # the pelvis sensor's forward axis for the header (OpenSense's base_heading_axis)
        segcal = _analysis(ctx).segcal
    except ImuhipError as err:
        log.warning("OpenSim .sto without a base heading axis (no segment calibration): %s", err)
    return _write_sto(ori, out_dir, ctx.source.stem, force, ctx.rec.meta, segcal)


def export_bids(ctx: ExportContext, out_dir: Path, force: bool) -> list[Path]:
    """A Motion-BIDS dataset in ``out_dir``: raw channels, orientations, joint angles, events.

    Joint angles and events need the full analysis; if it refuses (no static pose, ...), raw
    channels and orientations are still exported and the reason is logged.
    """
    ori = _orientations(ctx)
    result: SessionResult | None
    try:
        result = _analysis(ctx)
    except ImuhipError as err:
        log.warning("Motion-BIDS export without joint angles: %s", err)
        result = None
    return _write_bids(ori, ctx.rec.meta, result, out_dir, force)


def _table_exporter(what: str, fmt: str) -> Any:
    def exporter(ctx: ExportContext, out_dir: Path, force: bool) -> list[Path]:
        target = out_dir / f"{ctx.source.stem}_{what}.{fmt}"
        _check([target], force)
        res = _analysis(ctx)
        df = angles_table(res) if what == "angles" else strides_table(res)
        return _write_table(df, target, fmt, force)

    exporter.__doc__ = f"``<stem>_{what}.{fmt}``: {what} table from the full analysis."
    return exporter


FORMATS: dict[str, Any] = {
    "sto": export_sto,
    "bids": export_bids,
    "angles-csv": _table_exporter("angles", "csv"),
    "angles-parquet": _table_exporter("angles", "parquet"),
    "strides-csv": _table_exporter("strides", "csv"),
    "strides-parquet": _table_exporter("strides", "parquet"),
}
"""The formats this module adds to :data:`imuhip.cli.commands.export.FORMATS`."""


def export_orientation_file(path: Path, fmt: str, out_dir: Path, force: bool) -> list[Path]:
    """Export a ``.imori.npz`` orientation session (vendor import) as ``fmt``.

    ``sto``, ``bids`` and the angle/stride tables are available; raw ``csv``/``parquet`` sample
    tables are not (there are no packets), use the original vendor files.
    """
    from imuhip.interop.orientation_file import (
        analyze_orientation_file,
        load_orientation_segcal,
        load_orientation_session,
    )

    ori, meta = load_orientation_session(path)
    stem = path.name.removesuffix(".imori.npz")
    out_dir.mkdir(parents=True, exist_ok=True)
    if fmt == "sto":
        return _write_sto(ori, out_dir, stem, force, meta, load_orientation_segcal(path))
    if fmt not in FORMATS:
        raise ImuhipError(
            f"{path}: format {fmt!r} is not available for orientation sessions "
            f"(available: {', '.join(FORMATS)})"
        )
    result = analyze_orientation_file(path)
    if fmt == "bids":
        return _write_bids(ori, meta, result, out_dir, force)
    what, ext = fmt.split("-")
    df = angles_table(result) if what == "angles" else strides_table(result)
    return _write_table(df, out_dir / f"{stem}_{what}.{ext}", ext, force)
