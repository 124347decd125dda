"""``python -m bpcourse``: the same as the ``bpcourse`` command."""

import sys

from bpcourse.cli import main

if __name__ == "__main__":
    sys.exit(main())
