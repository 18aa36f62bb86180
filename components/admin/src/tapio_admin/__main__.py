"""Entry point of `tapio-admin`."""

import sys

from tapio_admin.cli import main

if __name__ == "__main__":
    sys.exit(main())
