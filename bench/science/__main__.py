"""``python -m bench.science``."""

import sys

from .cli import main

sys.exit(main())
