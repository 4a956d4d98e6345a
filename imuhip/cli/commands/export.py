"""``imuhip export REC --format csv|parquet --out DIR``: one table per sensor plus ``meta.json``.

Formats are pluggable: :data:`FORMATS` maps a format name to an exporter
``(ctx: ExportContext, out_dir: Path, force: bool) -> list[Path]``. An exporter must call
:func:`check_targets` on every path it will write *before* writing any, so an export never
half-overwrites a previous one. Another module adds a format with
``FORMATS["sto"] = export_sto`` (imported before the parser is built, e.g. at the bottom of this
module).

Tables (see :mod:`imuhip.report.tables`): ``t_s, t_dev_s, sample_idx, valid, saturated, host_rx_ns,
acc_[xyz]_m_s2, gyr_[xyz]_rad_s[, mag_[xyz]_ut]``, one row per device sample index, lost samples
as ``valid == False`` rows with NaN values. ``meta.json`` holds the session metadata, the time
basis of ``t_s`` (``session_clock`` = align's fitted clock model, ``device_clock`` = fallback),
the clock models, decode statistics and any reader warning.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import sys
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from imuhip import __version__
from imuhip.cli.commands._common import load_recording
from imuhip.errors import ImuhipError
from imuhip.ingest.recording import warning_lines
from imuhip.interop.context import ExportContext, Exporter, build_context, check_targets
from imuhip.types import SensorMeta

if TYPE_CHECKING:  # pandas is imported only when exporting (keeps ``imuhip --help`` fast)
    pass

NAME = "export"
HELP = "export a recording: per-sensor csv/parquet sample tables + meta.json, or other formats"

__all__ = ["FORMATS", "ExportContext", "Exporter", "build_context", "check_targets"]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _sensor_meta(s: SensorMeta) -> dict[str, Any]:
    return {f.name: getattr(s, f.name) for f in fields(SensorMeta)}


def meta_document(ctx: ExportContext, fmt: str, files: dict[str, str]) -> dict[str, Any]:
    """The ``meta.json`` content (JSON-ready)."""
    from imuhip.report.tables import stats_dict

    m = ctx.rec.meta
    clocks: dict[str, Any] = {}
    if ctx.time_basis == "session_clock":
        from imuhip.ingest import align

        fits = align.session_clocks(
            ctx.samples, ctx.t0_ns, ctx.rec.events, window_s=align.AlignConfig().clock_window_s
        )
        for k, c in fits.items():
            clocks[k] = {
                "offset_s": c.offset_s,
                "drift_ppm": c.drift_ppm,
                "residual_jitter_s": c.residual_jitter_s,
                "n_anchors": c.n_anchors,
            }
    units = {
        "t_s": "s",
        "t_dev_s": "s",
        "sample_idx": "1",
        "valid": "bool",
        "saturated": "bool",
        "host_rx_ns": "ns",
    }
    units.update(dict.fromkeys(("acc_x_m_s2", "acc_y_m_s2", "acc_z_m_s2"), "m/s^2"))
    units.update(dict.fromkeys(("gyr_x_rad_s", "gyr_y_rad_s", "gyr_z_rad_s"), "rad/s"))
    units.update(dict.fromkeys(("mag_x_ut", "mag_y_ut", "mag_z_ut"), "uT"))
    return {
        "format": fmt,
        "exported_by": f"imuhip {__version__}",
        "source": {
            "file": ctx.source.name,
            "sha256": _sha256(ctx.source),
            "complete": ctx.rec.complete,
            "warnings": list(ctx.rec.warnings),
        },
        "session": {
            "session_id": m.session_id,
            "start_wall_time": m.start_wall_time,
            "subject": m.subject,
            "software": m.software,
            "notes": m.notes,
            "extra": m.extra,
        },
        "time_basis": ctx.time_basis,
        "time_basis_note": (
            "t_s = device clock mapped onto the session clock by imuhip.ingest.align's fitted "
            "offset+drift model; seconds from t0_host_ns"
            if ctx.time_basis == "session_clock"
            else "t_s = the sensor's own device clock, placed at its first packet's arrival "
            "(latency and drift not corrected); seconds from t0_host_ns"
        ),
        "t0_host_ns": ctx.t0_ns,
        "clock_models": clocks,
        "frames": "sensor frame (acc, gyr, mag as measured, after scale factors, no calibration)",
        "columns_units": units,
        "rows": "one row per device sample index; valid=false rows are lost samples (values NaN,"
        " times linear in sample_idx)",
        "sensors": [
            {
                **_sensor_meta(s),
                "file": files.get(s.placement),
                "rows": len(ctx.tables[s.placement]),
                "decode_stats": stats_dict(ctx.samples[s.placement].stats),
            }
            for s in m.sensors
        ],
        "events": [
            {
                "t_s": (e.host_rx_ns - ctx.t0_ns) * 1e-9,
                "kind": e.kind,
                "sensor": e.sensor,
                "data": e.data,
            }
            for e in ctx.rec.events
        ],
    }


def _write_meta(ctx: ExportContext, out_dir: Path, fmt: str, files: dict[str, str]) -> Path:
    p = out_dir / "meta.json"
    doc = meta_document(ctx, fmt, files)
    p.write_text(json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False) + "\n")
    return p


def _stem(ctx: ExportContext) -> str:
    return ctx.source.stem


def _full_float(x: object) -> str:
    """Full precision, always with a decimal point or exponent: typed readers (polars, duckdb)
    infer a column from its first rows and must not take a float column for integers."""
    text = f"{float(x):.17g}"  # type: ignore[arg-type]
    return text if any(c in text for c in ".en") else text + ".0"


def export_csv(ctx: ExportContext, out_dir: Path, force: bool) -> list[Path]:
    """``<stem>_<placement>.csv`` per sensor (full float precision, empty cells for NaN/NA)."""
    targets = {k: out_dir / f"{_stem(ctx)}_{k}.csv" for k in ctx.tables}
    check_targets([*targets.values(), out_dir / "meta.json"], force)
    for k, df in ctx.tables.items():
        df.to_csv(targets[k], index=False, float_format=_full_float)
    meta = _write_meta(ctx, out_dir, "csv", {k: p.name for k, p in targets.items()})
    return [*targets.values(), meta]


def export_parquet(ctx: ExportContext, out_dir: Path, force: bool) -> list[Path]:
    """``<stem>_<placement>.parquet`` per sensor (pyarrow), time basis in the schema metadata."""
    targets = {k: out_dir / f"{_stem(ctx)}_{k}.parquet" for k in ctx.tables}
    check_targets([*targets.values(), out_dir / "meta.json"], force)
    for k, df in ctx.tables.items():
        df = df.copy()
        df.attrs = {"time_basis": ctx.time_basis, "placement": k}
        df.to_parquet(targets[k], index=False, engine="pyarrow")
    meta = _write_meta(ctx, out_dir, "parquet", {k: p.name for k, p in targets.items()})
    return [*targets.values(), meta]


FORMATS: dict[str, Exporter] = {
    "csv": export_csv,
    "parquet": export_parquet,
}
"""Format name -> exporter. Add formats here (``sto``, ``bids``); the CLI lists them all."""


def _register_plugin_formats() -> None:
    """Add the formats of :mod:`imuhip.interop.exporters` (sto, bids, angle/stride tables)."""
    try:
        from imuhip.interop import exporters
    except ImportError as err:  # optional module
        logging.getLogger(__name__).debug("no extra export formats: %s", err)
        return
    for name, fn in exporters.FORMATS.items():
        FORMATS.setdefault(name, fn)


_register_plugin_formats()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``REC --format F --out DIR [--force] [--device-clock]``."""
    parser.add_argument(
        "recording",
        metavar="REC",
        help="recording file (.imrec) or orientation session (.imori.npz)",
    )
    parser.add_argument("--format", required=True, choices=sorted(FORMATS), help="output format")
    parser.add_argument("--out", required=True, metavar="DIR", help="output directory (created)")
    parser.add_argument("--force", action="store_true", help="overwrite existing output files")
    parser.add_argument(
        "--device-clock",
        action="store_true",
        help="t_s from each sensor's own clock instead of the fitted session clock",
    )
    parser.add_argument(
        "--quiet",
        action="store_true",
        help="no progress lines on stderr (shown for recordings of 4 MB or more)",
    )


PROGRESS_MIN_BYTES = 4_000_000
"""Recordings this big (about 5 min of 3 sensors at 200 Hz) get progress lines on stderr; a
20-min recording takes ~15 s to export as CSV. Smaller ones stay silent (one line per error)."""


def _say(args: argparse.Namespace, text: str) -> None:
    """A progress line on stderr for a big recording (unless ``--quiet``)."""
    src = Path(args.recording)
    if (
        not getattr(args, "quiet", False)
        and src.is_file()
        and src.stat().st_size >= PROGRESS_MIN_BYTES
    ):
        sys.stderr.write(f"imuhip export: {text}...\n")
        sys.stderr.flush()


def run(args: argparse.Namespace) -> int:
    """Export and list the files written."""
    src = Path(args.recording)
    if src.name.endswith(".imori.npz"):  # orientation-only session (vendor import)
        from imuhip.interop.exporters import export_orientation_file

        _say(args, f"exporting {src.name} as {args.format}")
        done = export_orientation_file(src, args.format, Path(args.out), bool(args.force))
        sys.stdout.write(f"exported {src.name} ({args.format}) to {args.out}:\n")
        sys.stdout.write("".join(f"  {p.name}\n" for p in done))
        return 0
    _say(args, f"reading {src.name}")
    rec = load_recording(args.recording)
    out_dir = Path(args.out)
    if out_dir.exists() and not out_dir.is_dir():
        raise ImuhipError(f"--out {out_dir} exists and is not a directory")
    exporter = FORMATS.get(args.format)
    if exporter is None:  # FORMATS changed after the parser was built
        raise ImuhipError(f"unknown format {args.format!r} (known: {', '.join(sorted(FORMATS))})")
    _say(args, "decoding and aligning the sensor streams")
    ctx = build_context(src, rec, use_align=not args.device_clock)
    out_dir.mkdir(parents=True, exist_ok=True)
    _say(args, f"writing {args.format} to {out_dir}")
    written = exporter(ctx, out_dir, bool(args.force))
    for w in warning_lines(rec.warnings, skipped_bytes=rec.size_bytes - rec.valid_bytes):
        sys.stderr.write(f"imuhip export: warning: {w}\n")
    sys.stdout.write(
        f"exported {args.format} (t_s on the {ctx.time_basis.replace('_', ' ')}) to {out_dir}:\n"
    )
    for p in written:
        sys.stdout.write(f"  {p.name}\n")
    return 0
