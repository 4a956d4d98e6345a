"""The imuhip error hierarchy: one root, one subclass per stage.

A user error (bad file, bad option, corrupt input) is an :class:`ImuhipError`; the CLI prints its
message on one line and exits non-zero. Anything else escaping is a bug.
"""

from __future__ import annotations

__all__ = [
    "AlignmentError",
    "CalibrationError",
    "ImportFormatError",
    "ImuhipError",
    "InsufficientDataError",
    "OptionError",
    "ProtocolError",
    "RecordingError",
    "SensorConnectionError",
]


class ImuhipError(Exception):
    """Root of every error imuhip raises on purpose."""


class OptionError(ImuhipError):
    """A command-line option with a value the command cannot use (the CLI exits 2 with usage)."""


class ProtocolError(ImuhipError):
    """A packet that does not follow ``firmware_protocol/`` (length, CRC, version, counts).

    Attributes
    ----------
    reason : str
        Short machine-readable reason: ``"short"``, ``"version"``, ``"crc"``, ``"count"``,
        ``"length"``, ``"flags"``.
    """

    def __init__(self, message: str, reason: str = "invalid") -> None:
        super().__init__(message)
        self.reason = reason


class RecordingError(ImuhipError):
    """A recording file that cannot be opened or written (missing, not a recording, bad header)."""


class AlignmentError(ImuhipError):
    """Device clocks could not be mapped onto the session clock."""


class CalibrationError(ImuhipError):
    """A calibration that was rejected; the message says why (moved, too small, ambiguous)."""


class InsufficientDataError(ImuhipError):
    """Too little valid data for a meaningful result (thresholds live in the stage's config)."""


class ImportFormatError(ImuhipError):
    """A foreign file (CSV, Xsens export) that does not match its documented format."""


class SensorConnectionError(ImuhipError):
    """A BLE sensor that could not be reached, refused, or is not a protocol sensor."""
