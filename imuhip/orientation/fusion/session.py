"""``fuse_session``: every sensor of an aligned session through one fusion method."""

from __future__ import annotations

import dataclasses
import logging
import re
from typing import Any

import numpy as np
import numpy.typing as npt

from imuhip.orientation.fusion._types import FuseConfig, canonical_method
from imuhip.orientation.fusion.core import estimate_orientation_full
from imuhip.types import AlignedSession, OrientationSession

__all__ = ["fuse_session", "fuse_session_degrading"]

log = logging.getLogger(__name__)


def fuse_session(aligned: AlignedSession, cfg: FuseConfig | None = None) -> OrientationSession:
    """Estimate ``q_world_sensor`` for every sensor of ``aligned``.

    Parameters
    ----------
    aligned : AlignedSession
        Sensors on one uniform grid with their ``valid`` masks (filled rows are refilled here
        by interpolation, or causal hold for ``vqf_online``, and stay invalid).
    cfg : FuseConfig, optional
        Method, magnetometer use and tuning (default: vqf offline, 9D where a sensor has a
        magnetometer).

    Returns
    -------
    OrientationSession
        ``source`` is the canonical method name. ``diagnostics[placement]`` holds ``(M,)``
        arrays: ``rest``, ``uses_mag`` (constant), and where available ``mag_disturbed`` and
        ``gyr_bias_x_rad_s`` / ``_y_`` / ``_z_``.
    """
    cfg = FuseConfig() if cfg is None else cfg
    if not isinstance(aligned, AlignedSession):
        raise TypeError(f"aligned must be an AlignedSession, got {type(aligned).__name__}")
    method = canonical_method(cfg.method)
    m = len(aligned.t_s)
    q: dict[str, npt.NDArray[np.float64]] = {}
    # only the magnetometer data the filter actually used: downstream stages read its presence
    # as "orientations share a magnetic heading" (9D); with use_mag=False they do not
    mag_used: dict[str, npt.NDArray[np.float64] | None] = {}
    diagnostics: dict[str, dict[str, npt.NDArray[Any]]] = {}
    for placement, s in aligned.sensors.items():
        mag = s.mag_ut if cfg.use_mag else None
        try:
            res = estimate_orientation_full(
                s.acc_m_s2,
                s.gyr_rad_s,
                mag,
                rate_hz=aligned.rate_hz,
                method=method,
                valid=s.valid,
                params=cfg.params,
            )
        except ValueError as err:
            raise ValueError(f"sensor {placement!r}: {err}") from err
        q[placement] = res.q_world_sensor
        mag_used[placement] = s.mag_ut if res.uses_mag else None
        d: dict[str, npt.NDArray[Any]] = {
            "rest": res.rest,
            "uses_mag": np.full(m, res.uses_mag, dtype=bool),
        }
        if res.mag_disturbed is not None:
            d["mag_disturbed"] = res.mag_disturbed
        if res.gyr_bias_rad_s is not None:
            for k, axis in enumerate("xyz"):
                d[f"gyr_bias_{axis}_rad_s"] = res.gyr_bias_rad_s[:, k]
        diagnostics[placement] = d
        log.info(
            "fused %s with %s (%s), %d samples, %.1f %% invalid",
            placement,
            method,
            "9D" if res.uses_mag else "6D",
            m,
            100.0 * (1.0 - float(np.mean(s.valid))) if m else 0.0,
        )
    return OrientationSession(
        t_s=aligned.t_s,
        rate_hz=aligned.rate_hz,
        q_world_sensor=q,
        acc_m_s2={k: s.acc_m_s2 for k, s in aligned.sensors.items()},
        gyr_rad_s={k: s.gyr_rad_s for k, s in aligned.sensors.items()},
        valid={k: s.valid for k, s in aligned.sensors.items()},
        source=method,
        diagnostics=diagnostics,
        mag_ut=mag_used,
    )


def fuse_session_degrading(
    aligned: AlignedSession, cfg: FuseConfig, *, required: tuple[str, ...]
) -> tuple[OrientationSession, dict[str, dict[str, str]]]:
    """:func:`fuse_session`, leaving out a sensor not in ``required`` whose fusion fails.

    Returns the orientations and ``{placement: {"stage": "fusion", "reason": ...}}`` of the
    sensors left out. A failure of a ``required`` sensor stays a ``ValueError`` naming it.
    """
    dropped: dict[str, dict[str, str]] = {}
    while True:
        try:
            return fuse_session(aligned, cfg), dropped
        except ValueError as err:
            m = re.match(r"sensor '([A-Za-z0-9_]+)': (.*)", str(err), re.DOTALL)
            if m is None or m.group(1) in required or m.group(1) not in aligned.sensors:
                raise
            placement, reason = m.group(1), m.group(2)
            dropped[placement] = {"stage": "fusion", "reason": reason}
            log.warning("%s dropped: orientation fusion failed (%s)", placement, reason)
            rest = {p: a for p, a in aligned.sensors.items() if p != placement}
            aligned = dataclasses.replace(aligned, sensors=rest)
