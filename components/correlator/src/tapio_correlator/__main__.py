"""Entry point of `tapio-correlator` (also `python -m tapio_correlator`)."""

import sys

from tapio_correlator.cli import main

if __name__ == "__main__":
    sys.exit(main())
