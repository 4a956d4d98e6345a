"""The gaittoolbox trial's sensor ids for the scripts: the tests' table (``tests/real_data.py``)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository, for tests.*

from tests.real_data import GAITTOOLBOX_IDS as IDS

TRIAL = "S02-Trial-Walk-1"
__all__ = ["IDS", "TRIAL"]
