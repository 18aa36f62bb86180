"""Entry point: `python -m tapio_scenariogen` (and the Bazel binary) runs the scenariogen command."""

import sys

from tapio_common.cli import run_cli
from tapio_scenariogen.cli import PROG, main

if __name__ == "__main__":
    sys.exit(run_cli(PROG, main))
