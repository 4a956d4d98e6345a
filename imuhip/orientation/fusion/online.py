"""Causal vqf for live sessions: one state object, fed chunk by chunk.

Processing a recording in chunks gives exactly (bit for bit) the result of one call on the whole
recording, because vqf's update loop is per sample and all state lives in the ``VQF`` object;
gap filling here is causal (hold the last valid row) for the same reason.

Reference: Laidig & Seel 2023, doi:10.1016/j.inffus.2022.10.014.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from imuhip.orientation.fusion._inputs import check_inputs, fill_invalid
from imuhip.orientation.fusion._types import FilterParams, FusionResult, vqf_params

__all__ = ["OnlineFusion"]

FloatArray = npt.NDArray[np.float64]

_MIN_CHUNK_FOR_UNIT_CHECK = 50


class OnlineFusion:
    """vqf online filter with state: ``update(chunk)`` returns that chunk's orientations.

    Parameters
    ----------
    rate_hz : float
        Fixed sampling rate of every chunk.
    use_mag : bool
        9D: every chunk must then carry ``mag_ut``; 6D: ``mag_ut`` must be omitted.
    params : FilterParams, optional

    Examples
    --------
    >>> f = OnlineFusion(rate_hz=200.0, use_mag=False)
    >>> res = f.update(acc_chunk, gyr_chunk)      # doctest: +SKIP
    >>> res.q_world_sensor.shape                  # doctest: +SKIP
    (len(acc_chunk), 4)
    """

    def __init__(
        self, *, rate_hz: float, use_mag: bool = False, params: FilterParams | None = None
    ) -> None:
        from vqf import VQF

        if not (np.isfinite(rate_hz) and rate_hz > 0):
            raise ValueError(f"rate_hz must be a finite number > 0, got {rate_hz}")
        self.rate_hz = float(rate_hz)
        self.use_mag = bool(use_mag)
        self.params = FilterParams() if params is None else params
        self._vqf = VQF(1.0 / self.rate_hz, **vqf_params(self.params))
        self._last: dict[str, FloatArray | None] = {"acc": None, "gyr": None, "mag": None}
        self.n_samples = 0

    def restart(self) -> None:
        """Forget the orientation after a gap (:data:`~imuhip.orientation.fusion.session.
        RESET_GAP_S`), keep the gyroscope bias estimate and its uncertainty.

        After seconds without data nothing is known about the orientation, but the bias of the
        same gyroscope has not changed: a filter restarted with a zero bias turned the 6D
        heading by the bias (up to 0.5 deg/s) until it had estimated it again.
        """
        bias, sigma = self._vqf.getBiasEstimate()
        self._vqf.resetState()
        self._vqf.setBiasEstimate(np.asarray(bias, dtype=np.float64), float(sigma))
        self._last = {"acc": None, "gyr": None, "mag": None}

    def update(
        self,
        acc_m_s2: npt.ArrayLike,
        gyr_rad_s: npt.ArrayLike,
        mag_ut: npt.ArrayLike | None = None,
        *,
        valid: npt.ArrayLike | None = None,
    ) -> FusionResult:
        """Filter one chunk (any length ≥ 1) and advance the state.

        Parameters
        ----------
        acc_m_s2, gyr_rad_s : array_like, (K, 3), sensor frame
        mag_ut : array_like, (K, 3), or None (must match ``use_mag``)
        valid : array_like of bool, (K,), optional
            Invalid rows are replaced by the last valid row (causal hold).

        Returns
        -------
        FusionResult for the K samples of this chunk (``method == "vqf_online"``).
        """
        if self.use_mag and mag_ut is None:
            raise ValueError("mag_ut is required: this OnlineFusion was created with use_mag=True")
        if not self.use_mag and mag_ut is not None:
            raise ValueError("mag_ut given but this OnlineFusion was created with use_mag=False")
        n_rows = np.shape(acc_m_s2)[0] if np.ndim(acc_m_s2) == 2 else 0
        acc, gyr, mag, mask = check_inputs(
            acc_m_s2,
            gyr_rad_s,
            mag_ut,
            self.rate_hz,
            valid,
            check_units=n_rows >= _MIN_CHUNK_FOR_UNIT_CHECK,
        )
        if mask is None:
            mask = np.ones(len(acc), dtype=bool)
        else:
            acc = fill_invalid(acc, mask, "hold", self._last["acc"])
            gyr = fill_invalid(gyr, mask, "hold", self._last["gyr"])
            if mag is not None:
                mag = fill_invalid(mag, mask, "hold", self._last["mag"])
        self._last = {"acc": acc[-1].copy(), "gyr": gyr[-1].copy()}
        self._last["mag"] = None if mag is None else mag[-1].copy()

        out = self._vqf.updateBatch(
            np.ascontiguousarray(gyr),
            np.ascontiguousarray(acc),
            None if mag is None else np.ascontiguousarray(mag),
        )
        self.n_samples += len(acc)
        q = np.asarray(out["quat9D"] if self.use_mag else out["quat6D"], dtype=np.float64)
        q = q / np.linalg.norm(q, axis=1, keepdims=True)
        return FusionResult(
            q_world_sensor=q,
            valid=mask,
            rest=np.asarray(out["restDetected"], dtype=bool),
            mag_disturbed=np.asarray(out["magDistDetected"], dtype=bool) if self.use_mag else None,
            gyr_bias_rad_s=np.asarray(out["bias"], dtype=np.float64),
            method="vqf_online",
            uses_mag=self.use_mag,
        )
