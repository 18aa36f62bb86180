"""Entry point of `tapio-collector-k8s`."""

import sys

from tapio_collector_k8s.cli import main

if __name__ == "__main__":
    sys.exit(main())
