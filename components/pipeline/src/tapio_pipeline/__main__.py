"""Entry point of `tapio-pipeline`."""

import sys

from tapio_pipeline.cli import main

if __name__ == "__main__":
    sys.exit(main())
