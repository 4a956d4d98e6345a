"""``python -m imuhip``."""

import sys

from imuhip.cli import main

sys.exit(main())
