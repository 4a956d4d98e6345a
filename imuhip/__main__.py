"""``python -m imuhip``."""

import sys

from imuhip._launch import main

sys.exit(main())
