"""The stored per-serial calibration: dataclass, JSON files, application on load."""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, TypeVar

import numpy as np
import numpy.typing as npt

from imuhip.errors import CalibrationError
from imuhip.orientation.sensor_calibration._fits import AccFit, GyroBiasFit, MagFit
from imuhip.types import AlignedSensor, AlignedSession, ImuSamples, SessionMeta

__all__ = [
    "SCHEMA_VERSION",
    "SensorCalibration",
    "apply_calibration",
    "apply_sensor_calibrations",
    "calibration_path",
    "calibration_provenance",
    "load_calibration",
    "load_for_sensor",
    "save_calibration",
]

log = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]

SCHEMA_VERSION: Final = 1
_SERIAL_RE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")

# ---------------------------------------------------------------------------------------------
# The stored calibration
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SensorCalibration:
    """Everything known about one sensor's intrinsic errors; any part may be missing (``None``).

    Parameters
    ----------
    serial : str
        The sensor's serial number (the file name key).
    date : str
        ISO 8601 UTC time of the last change.
    gyr_bias_rad_s : (3,) or None
    acc_matrix : (3, 3) or None
    acc_offset_m_s2 : (3,) or None
    mag_soft_iron : (3, 3) or None
    mag_hard_iron_ut : (3,) or None
    residuals : dict
        Fit residuals (``gyr_noise_rad_s``, ``acc_residual_rms_m_s2``, ``mag_residual_rms_ut``).
    quality : dict
        Per part: ``"good"``, ``"fair"`` or ``"poor"`` plus the numbers behind it.
    dates : dict
        Per part (``"gyro"``, ``"acc"``, ``"mag"``), when it was fitted.
    """

    serial: str
    date: str
    gyr_bias_rad_s: FloatArray | None = None
    acc_matrix: FloatArray | None = None
    acc_offset_m_s2: FloatArray | None = None
    mag_soft_iron: FloatArray | None = None
    mag_hard_iron_ut: FloatArray | None = None
    residuals: dict[str, Any] = field(default_factory=dict)
    quality: dict[str, Any] = field(default_factory=dict)
    dates: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_serial(self.serial)
        shapes = {
            "gyr_bias_rad_s": (3,),
            "acc_matrix": (3, 3),
            "acc_offset_m_s2": (3,),
            "mag_soft_iron": (3, 3),
            "mag_hard_iron_ut": (3,),
        }
        for name, shape in shapes.items():
            v = getattr(self, name)
            if v is None:
                continue
            arr = np.asarray(v, dtype=np.float64)
            if arr.shape != shape or not np.isfinite(arr).all():
                raise ValueError(f"{name} must be a finite array of shape {shape}, got {arr.shape}")
            object.__setattr__(self, name, arr)
        if (self.acc_matrix is None) != (self.acc_offset_m_s2 is None):
            raise ValueError("acc_matrix and acc_offset_m_s2 must be given together")
        if (self.mag_soft_iron is None) != (self.mag_hard_iron_ut is None):
            raise ValueError("mag_soft_iron and mag_hard_iron_ut must be given together")

    @classmethod
    def empty(cls, serial: str) -> SensorCalibration:
        """A calibration with no parts (identity), dated now."""
        return cls(serial=serial, date=_now())

    def with_gyro(self, fit: GyroBiasFit) -> SensorCalibration:
        """A copy with the gyroscope part replaced by ``fit``."""
        noise = float(np.max(fit.noise_rad_s))
        q = _grade(noise, 0.01, 0.03)
        return self._replace(
            "gyro",
            gyr_bias_rad_s=fit.bias_rad_s,
            residuals={"gyr_noise_rad_s": noise, "gyr_still_s": fit.still_s},
            quality={"gyro": q},
        )

    def with_acc(self, fit: AccFit) -> SensorCalibration:
        """A copy with the accelerometer part replaced by ``fit``."""
        q = _grade(fit.residual_rms_m_s2, 0.05, 0.15)
        return self._replace(
            "acc",
            acc_matrix=fit.matrix,
            acc_offset_m_s2=fit.offset_m_s2,
            residuals={"acc_residual_rms_m_s2": fit.residual_rms_m_s2},
            quality={"acc": q},
        )

    def with_mag(self, fit: MagFit) -> SensorCalibration:
        """A copy with the magnetometer part replaced by ``fit``."""
        rel = fit.residual_rms_ut / fit.field_ut
        q = _grade(rel, 0.01, 0.03)
        if fit.coverage < 0.1 and q == "good":
            q = "fair"
        return self._replace(
            "mag",
            mag_soft_iron=fit.soft_iron,
            mag_hard_iron_ut=fit.hard_iron_ut,
            residuals={
                "mag_residual_rms_ut": fit.residual_rms_ut,
                "mag_field_ut": fit.field_ut,
                "mag_coverage": fit.coverage,
            },
            quality={"mag": q},
        )

    def _replace(
        self, part: str, residuals: dict[str, Any], quality: dict[str, Any], **arrays: Any
    ) -> SensorCalibration:
        now = _now()
        return dataclasses.replace(
            self,
            date=now,
            residuals={**self.residuals, **residuals},
            quality={**self.quality, **quality},
            dates={**self.dates, part: now},
            **arrays,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (schema :data:`SCHEMA_VERSION`)."""

        def lst(a: FloatArray | None) -> Any:
            return None if a is None else np.asarray(a).tolist()

        return {
            "schema_version": SCHEMA_VERSION,
            "serial": self.serial,
            "date": self.date,
            "gyro": None
            if self.gyr_bias_rad_s is None
            else {"bias_rad_s": lst(self.gyr_bias_rad_s), "date": self.dates.get("gyro")},
            "acc": None
            if self.acc_matrix is None
            else {
                "matrix": lst(self.acc_matrix),
                "offset_m_s2": lst(self.acc_offset_m_s2),
                "date": self.dates.get("acc"),
            },
            "mag": None
            if self.mag_soft_iron is None
            else {
                "soft_iron": lst(self.mag_soft_iron),
                "hard_iron_ut": lst(self.mag_hard_iron_ut),
                "date": self.dates.get("mag"),
            },
            "residuals": self.residuals,
            "quality": self.quality,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SensorCalibration:
        """Inverse of :meth:`to_dict`; ``ValueError`` naming the problem on a bad document."""
        if not isinstance(d, dict):
            raise ValueError("calibration document must be a JSON object")
        version = d.get("schema_version")
        if version != SCHEMA_VERSION:
            raise ValueError(
                f"calibration schema_version {version!r} is not supported (this imuhip reads "
                f"{SCHEMA_VERSION})"
            )
        try:
            gyro, acc, mag = d.get("gyro"), d.get("acc"), d.get("mag")
            dates = {
                k: part["date"]
                for k, part in (("gyro", gyro), ("acc", acc), ("mag", mag))
                if part and part.get("date")
            }
            return cls(
                serial=str(d["serial"]),
                date=str(d["date"]),
                gyr_bias_rad_s=None if not gyro else np.asarray(gyro["bias_rad_s"], float),
                acc_matrix=None if not acc else np.asarray(acc["matrix"], float),
                acc_offset_m_s2=None if not acc else np.asarray(acc["offset_m_s2"], float),
                mag_soft_iron=None if not mag else np.asarray(mag["soft_iron"], float),
                mag_hard_iron_ut=None if not mag else np.asarray(mag["hard_iron_ut"], float),
                residuals=dict(d.get("residuals") or {}),
                quality=dict(d.get("quality") or {}),
                dates=dates,
            )
        except (KeyError, TypeError) as err:
            raise ValueError(f"calibration document is missing or mistypes {err}") from err


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _grade(value: float, good: float, fair: float) -> str:
    return "good" if value <= good else "fair" if value <= fair else "poor"


def _check_serial(serial: str) -> None:
    if not isinstance(serial, str) or not _SERIAL_RE.match(serial):
        raise ValueError(
            f"sensor serial {serial!r} cannot name a calibration file "
            "(letters, digits, '.', '_', '-'; at most 64 characters)"
        )


def apply_calibration(
    cal: SensorCalibration,
    *,
    acc_m_s2: npt.ArrayLike | None = None,
    gyr_rad_s: npt.ArrayLike | None = None,
    mag_ut: npt.ArrayLike | None = None,
) -> tuple[FloatArray | None, FloatArray | None, FloatArray | None]:
    """Apply the parts of ``cal`` that exist; returns ``(acc, gyr, mag)`` (None passes through).

    Arrays are ``(N, 3)`` in the sensor frame; missing parts leave their signal unchanged.
    """

    def arr(name: str, x: npt.ArrayLike | None) -> FloatArray | None:
        if x is None:
            return None
        a = np.asarray(x, dtype=np.float64)
        if a.ndim != 2 or a.shape[1] != 3:
            raise ValueError(f"{name} must have shape (N, 3), got {a.shape}")
        return a

    acc, gyr, mag = arr("acc_m_s2", acc_m_s2), arr("gyr_rad_s", gyr_rad_s), arr("mag_ut", mag_ut)
    if acc is not None and cal.acc_matrix is not None and cal.acc_offset_m_s2 is not None:
        acc = (acc - cal.acc_offset_m_s2) @ cal.acc_matrix.T
    if gyr is not None and cal.gyr_bias_rad_s is not None:
        gyr = gyr - cal.gyr_bias_rad_s
    if mag is not None and cal.mag_soft_iron is not None and cal.mag_hard_iron_ut is not None:
        mag = (mag - cal.mag_hard_iron_ut) @ cal.mag_soft_iron.T
    return acc, gyr, mag


def calibration_path(serial: str, folder: str | Path) -> Path:
    """``<folder>/<serial>.json`` (the serial is checked to be a safe file name)."""
    _check_serial(serial)
    return Path(folder) / f"{serial}.json"


def save_calibration(cal: SensorCalibration, folder: str | Path) -> Path:
    """Write ``cal`` to ``<folder>/<serial>.json`` (atomically); returns the path."""
    path = calibration_path(cal.serial, folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(cal.to_dict(), indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def load_calibration(path: str | Path) -> SensorCalibration:
    """Read one calibration file; ``CalibrationError`` naming the file if it is not valid."""
    p = Path(path)
    text = p.read_text(encoding="utf-8")  # FileNotFoundError propagates with the name
    try:
        return SensorCalibration.from_dict(json.loads(text))
    except (ValueError, json.JSONDecodeError) as err:
        raise CalibrationError(f"{p}: not a valid sensor calibration: {err}") from err


def load_for_sensor(serial: str, folder: str | Path) -> SensorCalibration | None:
    """The stored calibration of ``serial`` in ``folder``, or ``None`` if there is none."""
    if not serial:
        return None
    path = calibration_path(serial, folder)
    if not path.is_file():
        return None
    cal = load_calibration(path)
    if cal.serial != serial:
        raise CalibrationError(f"{path}: file is for serial {cal.serial!r}, expected {serial!r}")
    return cal


T = TypeVar("T", AlignedSession, dict[str, ImuSamples])


def apply_sensor_calibrations(data: T, meta: SessionMeta, folder: str | Path) -> T:
    """Apply each sensor's stored calibration (by serial) to a session; returns the same type.

    Parameters
    ----------
    data : dict[str, ImuSamples] or AlignedSession
        Keyed by placement, as decoded or aligned.
    meta : SessionMeta
        Gives each placement's serial.
    folder : path
        The calibration folder (``calibration/`` of the project or the user's).

    Returns
    -------
    The same kind of object with calibrated ``acc_m_s2``, ``gyr_rad_s`` and ``mag_ut``.
    Sensors without serial or without a file are passed through unchanged (logged).
    """
    items = data.sensors if isinstance(data, AlignedSession) else data
    if not isinstance(items, dict):
        raise TypeError(
            f"data must be dict[str, ImuSamples] or AlignedSession, got {type(data).__name__}"
        )
    out: dict[str, Any] = {}
    for placement, s in items.items():
        if not isinstance(s, ImuSamples | AlignedSensor):
            raise TypeError(f"data[{placement!r}] must be ImuSamples or AlignedSensor")
        try:
            serial = meta.sensor(placement).serial
        except KeyError:
            serial = ""
        cal = load_for_sensor(serial, folder) if serial else None
        if cal is None:
            log.info("no sensor calibration for %s (serial %r); using raw data", placement, serial)
            out[placement] = s
            continue
        acc, gyr, mag = apply_calibration(
            cal, acc_m_s2=s.acc_m_s2, gyr_rad_s=s.gyr_rad_s, mag_ut=s.mag_ut
        )
        log.info("applied sensor calibration %s (%s) to %s", serial, cal.date, placement)
        out[placement] = dataclasses.replace(
            s,
            acc_m_s2=s.acc_m_s2 if acc is None else acc,
            gyr_rad_s=s.gyr_rad_s if gyr is None else gyr,
            mag_ut=mag,
        )
    if isinstance(data, AlignedSession):
        return dataclasses.replace(data, sensors=out)  # type: ignore[return-value]
    return out  # type: ignore[return-value]


def calibration_provenance(meta: SessionMeta, folder: str | Path) -> list[dict[str, Any]]:
    """Which stored calibration :func:`apply_sensor_calibrations` applies to each sensor.

    One entry per sensor of ``meta``: ``placement``, ``serial``, ``applied`` and, when a file
    applies, ``file`` (name), ``path``, ``sha256`` (of the file's bytes), ``date`` (the
    calibration's last change, ISO 8601 UTC) and ``parts`` (``gyro``/``acc``/``mag`` present);
    otherwise ``reason``. The same lookup as :func:`load_for_sensor` (``<folder>/<serial>.json``).
    """
    import hashlib

    out: list[dict[str, Any]] = []
    for s in meta.sensors:
        entry: dict[str, Any] = {"placement": s.placement, "serial": s.serial, "applied": False}
        try:
            path = calibration_path(s.serial, folder) if s.serial else None
        except CalibrationError as err:
            path, entry["reason"] = None, str(err)
        if path is None:
            entry.setdefault("reason", "the sensor reports no serial number")
        elif not path.is_file():
            entry["reason"] = f"no calibration file {path.name} in {folder}"
        else:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            cal = load_calibration(path)
            parts = [
                name
                for name, v in (
                    ("gyro", cal.gyr_bias_rad_s),
                    ("acc", cal.acc_matrix),
                    ("mag", cal.mag_soft_iron),
                )
                if v is not None
            ]
            entry.update(
                applied=True,
                file=path.name,
                path=str(path),
                sha256=digest,
                date=cal.date,
                parts=parts,
            )
        out.append(entry)
    return out
