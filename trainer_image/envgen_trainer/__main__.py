"""``python -m envgen_trainer --task task.json``."""

import sys

from .cli import main

sys.exit(main())
