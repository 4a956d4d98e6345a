"""imuhip: hip rotation and lumbar compensation from wearable IMUs."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
