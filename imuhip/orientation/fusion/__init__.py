"""Orientation fusion: IMU samples → ``q_world_sensor`` (scalar-first, world ENU, z up).

Public API
----------
- :func:`estimate_orientation` → ``(N, 4)`` quaternions (the plain call);
  :func:`estimate_orientation_full` → :class:`FusionResult` with diagnostics.
- :class:`OnlineFusion`: causal vqf, chunk by chunk, chunked == batch exactly.
- :func:`fuse_session`: an :class:`~imuhip.types.AlignedSession` → an
  :class:`~imuhip.types.OrientationSession`.
- :func:`resample_to_grid`: irregular timestamps → the nominal grid plus a gap mask.
- :class:`FuseConfig`, :class:`FilterParams`, :data:`METHODS`.

Methods: ``"vqf"`` (= ``"vqf_offline"``, default), ``"vqf_online"``, ``"madgwick"``,
``"mahony"``, ``"ekf"`` (ahrs adapters, frames converted; see
:mod:`imuhip.orientation.fusion._ahrs`).
Accuracy on BROAD: :mod:`imuhip.orientation.fusion.broad` (``imuhip bench-fusion``).
"""

from __future__ import annotations

from imuhip.orientation.fusion._inputs import resample_to_grid
from imuhip.orientation.fusion._types import METHODS, FilterParams, FuseConfig, FusionResult
from imuhip.orientation.fusion.core import estimate_orientation, estimate_orientation_full
from imuhip.orientation.fusion.online import OnlineFusion
from imuhip.orientation.fusion.session import fuse_session, fuse_session_degrading

__all__ = [
    "METHODS",
    "FilterParams",
    "FuseConfig",
    "FusionResult",
    "OnlineFusion",
    "estimate_orientation",
    "estimate_orientation_full",
    "fuse_session",
    "fuse_session_degrading",
    "resample_to_grid",
]
