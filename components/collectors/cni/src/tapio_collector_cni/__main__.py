"""Entry point of `tapio-collector-cni`."""

import sys

from tapio_collector_cni.cli import main

if __name__ == "__main__":
    sys.exit(main())
