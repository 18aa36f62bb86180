"""Entry point of `tapio-siem-exporter`."""

import sys

from tapio_exporters.cli import main

if __name__ == "__main__":
    sys.exit(main())
