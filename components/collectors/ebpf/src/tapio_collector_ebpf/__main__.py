"""Entry point of `tapio-collector-ebpf`."""

import sys

from tapio_collector_ebpf.cli import main

if __name__ == "__main__":
    sys.exit(main())
