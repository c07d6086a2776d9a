"""``python -m fastmatch``: the ``fastmatch`` command."""

import sys

from fastmatch.cli import main

sys.exit(main())
