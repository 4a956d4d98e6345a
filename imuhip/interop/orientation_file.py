"""Orientation-only sessions: vendor orientations -> :class:`~imuhip.types.OrientationSession`.

A sensor that exports its own orientation but no gyroscope (the OpenSense Xsens trial) cannot be
re-encoded as protocol packets (the protocol carries acc/gyr/mag, not orientation), so fusion is
skipped: the vendor quaternions go straight into an ``OrientationSession`` (``source`` names the
vendor, ``gyr_rad_s`` is ``None``) and analysis continues from segment calibration on.

Such a session is saved as ``NAME.imori.npz`` (numpy ``.npz``, no pickle):

=============================== ====================================================
``format``                      ``"imuhip-orientation-session"``, ``version`` 1
``meta_json``                   the :class:`~imuhip.types.SessionMeta` as recording JSON
``t_s``, ``rate_hz``, ``source`` session grid, rate, orientation source
``q_world_sensor__<p>``         (M, 4) scalar-first, world ENU, per placement ``p``
``acc_m_s2__<p>``               (M, 3) sensor frame
``valid__<p>``                  (M,) bool
``gyr_rad_s__<p>``, ``mag_ut__<p>`` (M, 3), only when present
``diag__<p>__<key>``            (M,) per-sample diagnostics, e.g. ``vendor_heading_anchored``
=============================== ====================================================
"""

from __future__ import annotations

import json
import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from imuhip.errors import ImportFormatError, ImuhipError
from imuhip.ingest.recording import meta_from_json, meta_to_json
from imuhip.interop._common import FloatArray, ImportedSensor
from imuhip.orientation.heading import VENDOR_HEADING_KEY
from imuhip.types import OrientationSession, SegmentCalibration, SessionMeta

if TYPE_CHECKING:
    from imuhip.pipeline import AnalysisConfig, Progress, SessionResult

__all__ = [
    "ORIENTATION_SUFFIX",
    "analyze_orientation_file",
    "load_orientation_segcal",
    "load_orientation_session",
    "meta_for_vendor_session",
    "orientation_session_from_imported",
    "samples_outside_common_grid",
    "save_orientation_session",
    "trim_notes",
]

ORIENTATION_SUFFIX: Final = ".imori.npz"
_FORMAT: Final = "imuhip-orientation-session"


def _fill(idx: np.ndarray, values: FloatArray, m: int) -> tuple[FloatArray, np.ndarray]:
    """Place ``values`` at ``idx`` on a grid of ``m``; holes take the nearest earlier sample."""
    out = np.full((m, values.shape[1]), np.nan)
    valid = np.zeros(m, dtype=bool)
    inside = (idx >= 0) & (idx < m)
    out[idx[inside]] = values[inside]
    valid[idx[inside]] = True
    pos = np.where(valid, np.arange(m), -1)
    pos = np.maximum.accumulate(pos)
    first = int(np.argmax(valid))
    pos[pos < 0] = first  # leading holes take the first sample
    return out[pos], valid


def samples_outside_common_grid(sensors: Sequence[ImportedSensor]) -> dict[str, int]:
    """Samples per placement that :func:`orientation_session_from_imported` leaves out.

    The common grid is sample 0 .. the last sample all sensors reach; samples of a sensor that
    started earlier (negative index) or ran longer are outside it.
    """
    if not sensors:
        return {}
    m = min(int(s.sample_idx[-1]) for s in sensors) + 1
    return {
        s.placement: int(np.count_nonzero((s.sample_idx < 0) | (s.sample_idx >= m)))
        for s in sensors
    }


def trim_notes(sensors: Sequence[ImportedSensor]) -> list[str]:
    """One note per sensor that loses samples to the common grid, with the count."""
    rate = sensors[0].rate_hz if sensors else 1.0
    return [
        f"{Path(s.source).name}: {k} sample(s) ({k / rate:.2f} s) outside the time all sensors "
        "share, not in the session"
        for s in sensors
        if (k := samples_outside_common_grid(sensors)[s.placement])
    ]


def orientation_session_from_imported(
    sensors: Sequence[ImportedSensor], *, source: str
) -> OrientationSession:
    """Put vendor-oriented sensors on one grid: sample 0 .. the last sample all sensors reach.

    Missing samples (``valid == False``) hold the previous sample's values (never report a
    number computed only from them). Sensors need ``q_world_sensor``.

    Raises
    ------
    ImportFormatError
        A sensor without orientation, or sensors that share no sample.
    """
    if not sensors:
        raise ImportFormatError("no sensors to build an orientation session from")
    for s in sensors:
        if s.q_world_sensor is None:
            raise ImportFormatError(f"{s.source}: no orientation columns (Quat_* or Mat[i][j])")
    m = min(int(s.sample_idx[-1]) for s in sensors) + 1
    if m < 2:
        raise ImportFormatError("the sensor files share fewer than 2 samples (counters disjoint)")
    rate = sensors[0].rate_hz
    q: dict[str, FloatArray] = {}
    acc: dict[str, FloatArray] = {}
    gyr: dict[str, FloatArray | None] = {}
    mag: dict[str, FloatArray | None] = {}
    valid: dict[str, np.ndarray] = {}
    diagnostics: dict[str, dict[str, np.ndarray]] = {}
    for s in sensors:
        assert s.q_world_sensor is not None
        qq, v = _fill(s.sample_idx, s.q_world_sensor, m)
        # keep the quaternion sign continuous (q and -q are the same rotation)
        flip = np.concatenate([[False], np.sum(qq[1:] * qq[:-1], axis=1) < 0])
        sign = np.where(np.logical_xor.accumulate(flip), -1.0, 1.0)
        q[s.placement] = qq * sign[:, None]
        acc[s.placement], _ = _fill(s.sample_idx, s.acc_m_s2, m)
        gyr[s.placement] = None if s.gyr_rad_s is None else _fill(s.sample_idx, s.gyr_rad_s, m)[0]
        mag[s.placement] = None if s.mag_ut is None else _fill(s.sample_idx, s.mag_ut, m)[0]
        valid[s.placement] = v
        if s.heading_reference is not None:
            # per-sample flag read by imuhip.orientation.heading: the vendor's fusion anchored the
            # heading
            diagnostics[s.placement] = {
                VENDOR_HEADING_KEY: np.full(m, s.heading_reference == "magnetometer")
            }
    return OrientationSession(
        t_s=np.arange(m) / rate,
        rate_hz=float(rate),
        q_world_sensor=q,
        acc_m_s2=acc,
        gyr_rad_s=gyr,
        valid=valid,
        source=source,
        diagnostics=diagnostics,
        mag_ut=mag,
    )


def save_orientation_session(
    path: str | Path,
    ori: OrientationSession,
    meta: SessionMeta,
    *,
    segcal: SegmentCalibration | None = None,
    overwrite: bool = False,
) -> Path:
    """Write ``ori`` and its ``meta`` as ``NAME.imori.npz`` (see the module docstring).

    ``segcal`` (e.g. the assumed-pose calibration of a vendor import) is stored as JSON in
    ``segcal_json`` so analysis reuses it.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise ImportFormatError(f"{path} already exists; refusing to overwrite")
    arrays: dict[str, Any] = {
        "format": np.array(_FORMAT),
        "version": np.array(1),
        "meta_json": np.array(meta_to_json(meta)),
        "t_s": ori.t_s,
        "rate_hz": np.array(ori.rate_hz),
        "source": np.array(ori.source),
    }
    if segcal is not None:
        from imuhip.orientation.segment_calibration import segcal_to_event_data

        arrays["segcal_json"] = np.array(json.dumps(segcal_to_event_data(segcal)))
    for p, q in ori.q_world_sensor.items():
        arrays[f"q_world_sensor__{p}"] = q
        arrays[f"acc_m_s2__{p}"] = ori.acc_m_s2[p]
        arrays[f"valid__{p}"] = ori.valid[p]
        g = ori.gyr_rad_s.get(p)
        if g is not None:
            arrays[f"gyr_rad_s__{p}"] = g
        mg = ori.mag_ut.get(p)
        if mg is not None:
            arrays[f"mag_ut__{p}"] = mg
        for key, arr in ori.diagnostics.get(p, {}).items():
            arrays[f"diag__{p}__{key}"] = np.asarray(arr)
    # np.savez appends ".npz" unless the name already ends with it
    with path.open("wb") as f:
        np.savez_compressed(f, **arrays)
    return path


def load_orientation_session(path: str | Path) -> tuple[OrientationSession, SessionMeta]:
    """Read a ``.imori.npz`` orientation session.

    Raises
    ------
    ImportFormatError
        Not an orientation-session file, or a missing array (named).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(2, "No such file", str(path))
    try:
        z = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as err:
        raise ImportFormatError(f"{path}: not an orientation session (.imori.npz): {err}") from err
    try:
        return _read_orientation_npz(path, z)
    except ImuhipError:
        raise  # already names what is wrong (missing array, bad metadata)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as err:
        # a truncated or damaged file: the zip directory or a member's data does not read back
        raise ImportFormatError(f"{path}: damaged orientation session (.imori.npz): {err}") from err


def _read_orientation_npz(path: Path, z: Any) -> tuple[OrientationSession, SessionMeta]:
    """The arrays of an opened ``.imori.npz`` (``z``, closed on return)."""
    with z:
        if "format" not in z.files or str(z["format"]) != _FORMAT:
            raise ImportFormatError(f"{path}: not an imuhip orientation session (no format tag)")
        meta = meta_from_json(str(z["meta_json"]))
        t_s = np.asarray(z["t_s"], np.float64)
        placements = [k.split("__", 1)[1] for k in z.files if k.startswith("q_world_sensor__")]
        q, acc, valid = {}, {}, {}
        gyr: dict[str, FloatArray | None] = {}
        mag: dict[str, FloatArray | None] = {}
        diagnostics: dict[str, dict[str, np.ndarray]] = {}
        for p in placements:
            for key in (f"acc_m_s2__{p}", f"valid__{p}"):
                if key not in z.files:
                    raise ImportFormatError(f"{path}: array {key} is missing")
            q[p] = np.asarray(z[f"q_world_sensor__{p}"], np.float64)
            acc[p] = np.asarray(z[f"acc_m_s2__{p}"], np.float64)
            valid[p] = np.asarray(z[f"valid__{p}"], bool)
            gyr[p] = np.asarray(z[f"gyr_rad_s__{p}"]) if f"gyr_rad_s__{p}" in z.files else None
            mag[p] = np.asarray(z[f"mag_ut__{p}"]) if f"mag_ut__{p}" in z.files else None
            pre = f"diag__{p}__"
            diag = {k[len(pre) :]: np.asarray(z[k]) for k in z.files if k.startswith(pre)}
            if diag:
                diagnostics[p] = diag
        ori = OrientationSession(
            t_s=t_s,
            rate_hz=float(z["rate_hz"]),
            q_world_sensor=q,
            acc_m_s2=acc,
            gyr_rad_s=gyr,
            valid=valid,
            source=str(z["source"]),
            diagnostics=diagnostics,
            mag_ut=mag,
        )
    return ori, meta


def load_orientation_segcal(path: str | Path) -> SegmentCalibration | None:
    """The segment calibration stored with an orientation session, or None.

    Raises
    ------
    ImportFormatError
        The file or its stored calibration does not read back (truncated or damaged).
    """
    from imuhip.orientation.segment_calibration import segcal_from_event_data

    try:
        with np.load(Path(path), allow_pickle=False) as z:
            if "segcal_json" not in z.files:
                return None
            text = str(z["segcal_json"])
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as err:
        raise ImportFormatError(f"{path}: damaged orientation session (.imori.npz): {err}") from err
    return segcal_from_event_data(json.loads(text))


def analyze_orientation_file(
    path: str | Path, cfg: AnalysisConfig | None = None, progress: Progress | None = None
) -> SessionResult:
    """Analyse a ``.imori.npz`` session with :func:`imuhip.pipeline.analyze_orientations`.

    Uses the stored segment calibration; without one, sessions without gyroscopes get the
    assumed-pose calibration (:mod:`imuhip.interop.vendor_calibration`), others the pipeline's.
    """
    from imuhip.interop.vendor_calibration import assumed_pose_calibration
    from imuhip.pipeline import analyze_orientations

    ori, meta = load_orientation_session(path)
    segcal = load_orientation_segcal(path)
    if segcal is None and all(g is None for g in ori.gyr_rad_s.values()):
        segcal = assumed_pose_calibration(ori)
    from imuhip.ingest.units_check import import_record_for_report

    imported = import_record_for_report(meta.extra.get("import", {}))
    quality = {"orientation_file": Path(path).name, "import": imported}
    return analyze_orientations(ori, meta, cfg, segcal=segcal, quality=quality, progress=progress)


def meta_for_vendor_session(
    sensors: Sequence[ImportedSensor],
    *,
    subject: str,
    session_id: str,
    start_wall_time: str,
    vendor: str,
    notes: Sequence[str] = (),
) -> SessionMeta:
    """A :class:`SessionMeta` describing vendor-oriented sensors (nominal scale factors)."""
    from imuhip.types import SensorMeta

    sensors_meta = tuple(
        SensorMeta(
            placement=s.placement,
            rate_hz=s.rate_hz,
            acc_lsb_m_s2=1e-3,  # not packet data: nominal, unused
            gyr_lsb_rad_s=1e-3,
            mag_lsb_ut=0.1,
            has_mag=s.mag_ut is not None,
            model=s.model,
            serial=s.serial,
            firmware=s.firmware,
            protocol=vendor,
        )
        for s in sensors
    )
    return SessionMeta(
        session_id=session_id,
        start_wall_time=start_wall_time,
        subject=subject,
        sensors=sensors_meta,
        software="imuhip import",
        notes="\n".join(notes),
        extra={
            "import": {
                "files": {s.placement: Path(s.source).name for s in sensors},
                "vendor": vendor,
                "notes": list(notes),
                "samples_outside_common_grid": samples_outside_common_grid(sensors),
                "source_start_time": None,  # start_wall_time is the import's
                "body_sites": {s.placement: s.body_site for s in sensors if s.body_site},
            }
        },
    )


def describe(ori: OrientationSession) -> str:
    """One line: duration, rate, sensors, valid fraction."""
    dur = len(ori.t_s) / ori.rate_hz
    parts = [f"{p} {100 * float(np.mean(v)):.1f}% valid" for p, v in ori.valid.items()]
    return (
        json.dumps({"duration_s": round(dur, 3), "rate_hz": ori.rate_hz}) + " " + ", ".join(parts)
    )
