"""``python -m fastmatch.registry [resolve] ...``: the resolve command on its own."""

from __future__ import annotations

import sys

from fastmatch.registry.cli import main

if __name__ == "__main__":
    sys.exit(main())
