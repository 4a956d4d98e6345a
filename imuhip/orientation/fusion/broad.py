"""BROAD orientation-estimation benchmark: data loading, the authors' error metric, a runner.

BROAD (Laidig, Caruso, Cereatti, Seel 2021, "BROAD — A Benchmark for Robust Inertial Orientation
Estimation", Data 6(7):72, doi:10.3390/data6070072) provides IMU data with optical ground truth
``opt_quat`` already expressed w.r.t. ENU and time-synchronised and aligned to the IMU frame.

Error metric, exactly as in the authors' ``example_code/broad_utils.py`` (``calculateRMSE``):
the error quaternion in the global frame ``q_diff = q_est ⊗ q_ref⁻¹``; total error
``2·acos(|w|)``, heading error ``2·atan(|z / w|)``, inclination error ``2·acos(√(w² + z²))``;
RMSE over the samples flagged ``movement`` (NaN reference samples ignored via ``nanmean``). The
authors' code removes no heading offset and no sensor-to-body misalignment (the published data
is already aligned) and skips no initial seconds beyond what ``movement`` excludes.

Extension (not in the authors' code, used here for 6D only, where the world heading is
arbitrary): ``remove_heading_offset=True`` first removes the constant heading offset, the
circular mean over the movement samples of the signed heading error ``2·atan2(z, w)``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from imuhip.conventions import quat_conj, quat_mul
from imuhip.orientation.fusion._types import canonical_method
from imuhip.orientation.fusion.core import estimate_orientation

__all__ = [
    "BenchRow",
    "BroadErrors",
    "BroadTrial",
    "broad_errors",
    "default_broad_folder",
    "format_benchmark",
    "list_broad_trials",
    "load_broad_trial",
    "run_broad_benchmark",
]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

BENCH_METHODS = ("vqf_offline", "vqf_online", "madgwick", "mahony", "ekf")


def default_broad_folder() -> Path:
    """``../shared/data/broad`` next to the project checkout."""
    # imuhip/orientation/fusion/broad.py: parents[3] is the checkout, parents[4] holds shared/
    return Path(__file__).resolve().parents[4] / "shared" / "data" / "broad"


@dataclass(frozen=True, slots=True)
class BroadTrial:
    """One BROAD trial: IMU data (sensor frame) and the optical reference ``q_world_sensor``."""

    name: str
    rate_hz: float
    acc_m_s2: FloatArray  # (N, 3)
    gyr_rad_s: FloatArray  # (N, 3)
    mag_ut: FloatArray  # (N, 3)
    q_ref: FloatArray  # (N, 4), ENU, NaN where the optical system lost the body
    movement: BoolArray  # (N,)


def list_broad_trials(folder: str | Path) -> list[Path]:
    """The ``*.hdf5`` trials in ``folder``, sorted; ``FileNotFoundError`` if none."""
    f = Path(folder)
    if not f.is_dir():
        raise FileNotFoundError(2, "BROAD folder not found", str(f))
    paths = sorted(f.glob("*.hdf5"))
    if not paths:
        raise FileNotFoundError(2, "no BROAD *.hdf5 trials in folder", str(f))
    return paths


def load_broad_trial(path: str | Path) -> BroadTrial:
    """Read one BROAD HDF5 trial (``imu_acc``, ``imu_gyr``, ``imu_mag``, ``opt_quat``, ...)."""
    import h5py

    p = Path(path)
    with h5py.File(p, "r") as h:
        return BroadTrial(
            name=p.stem,
            rate_hz=float(h.attrs["sampling_rate"]),
            acc_m_s2=np.ascontiguousarray(h["imu_acc"][()], dtype=np.float64),
            gyr_rad_s=np.ascontiguousarray(h["imu_gyr"][()], dtype=np.float64),
            mag_ut=np.ascontiguousarray(h["imu_mag"][()], dtype=np.float64),
            q_ref=np.asarray(h["opt_quat"][()], dtype=np.float64),
            movement=np.asarray(h["movement"][()]).astype(bool).reshape(-1),
        )


@dataclass(frozen=True, slots=True)
class BroadErrors:
    """RMSE in degrees over the movement phase."""

    total_rmse_deg: float
    heading_rmse_deg: float
    inclination_rmse_deg: float


def broad_errors(
    q_est: npt.ArrayLike,
    q_ref: npt.ArrayLike,
    movement: npt.ArrayLike,
    *,
    remove_heading_offset: bool = False,
) -> BroadErrors:
    """BROAD total / heading / inclination RMSE (degrees) of ``q_est`` against ``q_ref``.

    Parameters
    ----------
    q_est, q_ref : array_like, (N, 4)
        ``q_world_sensor``, scalar-first, same world frame (ENU); NaN rows of ``q_ref`` are
        ignored.
    movement : array_like of bool, (N,)
        Samples that count.
    remove_heading_offset : bool
        Remove the constant heading offset first (for 6D estimates; see the module docstring).
    """
    qe = np.asarray(q_est, dtype=np.float64)
    qr = np.asarray(q_ref, dtype=np.float64)
    mv = np.asarray(movement)
    if qe.ndim != 2 or qe.shape[1] != 4:
        raise ValueError(f"q_est must have shape (N, 4), got {qe.shape}")
    if qr.shape != qe.shape:
        raise ValueError(f"q_ref must have shape {qe.shape}, got {qr.shape}")
    if mv.dtype != np.bool_ or mv.shape != (len(qe),):
        raise ValueError(f"movement must be a bool array of shape ({len(qe)},)")
    qe = qe / np.linalg.norm(qe, axis=1, keepdims=True)
    qr = qr / np.linalg.norm(qr, axis=1, keepdims=True)
    d = quat_mul(qe, quat_conj(qr))
    d = d / np.linalg.norm(d, axis=1, keepdims=True)
    if remove_heading_offset:
        psi = 2.0 * np.arctan2(d[:, 3], d[:, 0])
        sel = mv & np.isfinite(psi)
        off = float(np.arctan2(np.mean(np.sin(psi[sel])), np.mean(np.cos(psi[sel]))))
        q_off = np.array([np.cos(-off / 2), 0.0, 0.0, np.sin(-off / 2)])
        d = quat_mul(q_off, d)
    w, z = d[:, 0], d[:, 3]
    with np.errstate(invalid="ignore", divide="ignore"):
        total = 2.0 * np.arccos(np.clip(np.abs(w), 0.0, 1.0))
        heading = 2.0 * np.arctan(np.abs(z / w))
        incl = 2.0 * np.arccos(np.clip(np.sqrt(w**2 + z**2), 0.0, 1.0))

    def rmse(e: FloatArray) -> float:
        return float(np.degrees(np.sqrt(np.nanmean(e[mv] ** 2))))

    return BroadErrors(rmse(total), rmse(heading), rmse(incl))


@dataclass(frozen=True, slots=True)
class BenchRow:
    """One method on one trial."""

    trial: str
    method: str
    dims: int  # 6 or 9
    errors: BroadErrors
    samples_per_s: float


def run_broad_benchmark(
    folder: str | Path | None = None,
    methods: Sequence[str] = BENCH_METHODS,
    dims: Sequence[int] = (9, 6),
    trials: Sequence[str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[BenchRow]:
    """Run ``methods`` × ``dims`` on every trial of ``folder`` (default: the shared BROAD data).

    ``trials`` restricts to trial names (file stems) containing one of the given strings.
    9D is scored with the authors' metric; 6D with the constant heading offset removed.
    ``progress`` gets one line per trial loaded and per method × dimension finished.
    """
    say = progress or (lambda _: None)
    paths = list_broad_trials(default_broad_folder() if folder is None else folder)
    if trials:
        paths = [p for p in paths if any(t in p.stem for t in trials)]
        if not paths:
            raise FileNotFoundError(2, "no BROAD trial matches", ", ".join(trials))
    canon = [canonical_method(m) for m in methods]
    for d in dims:
        if d not in (6, 9):
            raise ValueError(f"dims must be 6 or 9, got {d}")
    rows: list[BenchRow] = []
    n_runs = len(canon) * len(dims)
    for k, path in enumerate(paths, 1):
        say(f"trial {k}/{len(paths)} {path.stem}: loading")
        tr = load_broad_trial(path)
        say(f"trial {k}/{len(paths)} {path.stem}: {len(tr.acc_m_s2)} samples at {tr.rate_hz:g} Hz")
        for m in canon:
            for d in dims:
                t0 = time.perf_counter()
                q = estimate_orientation(
                    tr.acc_m_s2,
                    tr.gyr_rad_s,
                    tr.mag_ut if d == 9 else None,
                    rate_hz=tr.rate_hz,
                    method=m,
                )
                dt = time.perf_counter() - t0
                err = broad_errors(q, tr.q_ref, tr.movement, remove_heading_offset=d == 6)
                rows.append(BenchRow(tr.name, m, d, err, len(q) / dt if dt > 0 else float("inf")))
                say(
                    f"trial {k}/{len(paths)} {path.stem}: {m} {d}D done "
                    f"({len(rows) - (k - 1) * n_runs}/{n_runs}), total RMSE "
                    f"{err.total_rmse_deg:.2f} deg"
                )
    return rows


def summarize(rows: Sequence[BenchRow]) -> dict[tuple[str, int], BroadErrors]:
    """Mean errors per (method, dims) over trials."""
    out: dict[tuple[str, int], BroadErrors] = {}
    keys = sorted({(r.method, r.dims) for r in rows}, key=lambda k: (-k[1], k[0]))
    for k in keys:
        sel = [r.errors for r in rows if (r.method, r.dims) == k]
        out[k] = BroadErrors(
            float(np.mean([e.total_rmse_deg for e in sel])),
            float(np.mean([e.heading_rmse_deg for e in sel])),
            float(np.mean([e.inclination_rmse_deg for e in sel])),
        )
    return out


def format_benchmark(rows: Sequence[BenchRow]) -> str:
    """Plain-text table: per trial, then the mean per method and dimension, plus throughput."""
    lines = [
        "BROAD RMSE in degrees (Laidig et al. 2021, doi:10.3390/data6070072); "
        "6D with constant heading offset removed",
        f"{'trial':40s} {'method':12s} {'dim':>3s} {'total':>7s} {'heading':>8s} {'incl':>7s} "
        f"{'samples/s':>11s}",
    ]
    for r in rows:
        e = r.errors
        lines.append(
            f"{r.trial:40s} {r.method:12s} {r.dims:>2d}D {e.total_rmse_deg:7.2f} "
            f"{e.heading_rmse_deg:8.2f} {e.inclination_rmse_deg:7.2f} {r.samples_per_s:11.0f}"
        )
    lines.append("")
    n_trials = len({r.trial for r in rows})
    lines.append(f"mean over {n_trials} trials")
    for (m, d), e in summarize(rows).items():
        sps = float(np.median([r.samples_per_s for r in rows if (r.method, r.dims) == (m, d)]))
        lines.append(
            f"{'MEAN':40s} {m:12s} {d:>2d}D {e.total_rmse_deg:7.2f} {e.heading_rmse_deg:8.2f} "
            f"{e.inclination_rmse_deg:7.2f} {sps:11.0f}"
        )
    return "\n".join(lines)


def rows_to_json(rows: Sequence[BenchRow]) -> str:
    """Machine-readable results (per trial and mean)."""
    return json.dumps(
        {
            "trials": [
                {
                    "trial": r.trial,
                    "method": r.method,
                    "dims": r.dims,
                    "total_rmse_deg": r.errors.total_rmse_deg,
                    "heading_rmse_deg": r.errors.heading_rmse_deg,
                    "inclination_rmse_deg": r.errors.inclination_rmse_deg,
                    "samples_per_s": r.samples_per_s,
                }
                for r in rows
            ],
            "mean": [
                {
                    "method": m,
                    "dims": d,
                    "total_rmse_deg": e.total_rmse_deg,
                    "heading_rmse_deg": e.heading_rmse_deg,
                    "inclination_rmse_deg": e.inclination_rmse_deg,
                }
                for (m, d), e in summarize(rows).items()
            ],
        },
        indent=2,
    )
