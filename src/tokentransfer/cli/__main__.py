"""``python -m tokentransfer.cli``: the ``tokentransfer`` command."""

import sys

from . import main

sys.exit(main())
