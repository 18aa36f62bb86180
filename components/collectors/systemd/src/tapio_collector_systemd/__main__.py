"""Entry point of `tapio-collector-systemd`."""

import sys

from tapio_collector_systemd.cli import main

if __name__ == "__main__":
    sys.exit(main())
