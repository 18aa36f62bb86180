"""Command-line plumbing shared by every binary: one clear error line instead of a traceback."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from tapio_common.config import ENV_HELP
from tapio_common.errors import ConfigError, TapioError

EXIT_ERROR = 1
EXIT_CONFIG = 2
EXIT_INTERRUPTED = 130


def make_parser(prog: str, description: str, epilog: str = "") -> argparse.ArgumentParser:
    """An ArgumentParser whose --help keeps the layout of the description and examples."""
    return argparse.ArgumentParser(
        prog=prog,
        description=description,
        epilog=(epilog.rstrip() + "\n\n" if epilog else "") + ENV_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def run_cli(prog: str, main: Callable[[Sequence[str]], int | None], argv: Sequence[str] | None = None) -> int:
    """Runs `main(argv)`; a TapioError becomes `prog: error: message` on stderr and a non-zero exit.

    Set TAPIO_TRACEBACK=1 to see the full traceback of an error.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        return int(main(args) or 0)
    except TapioError as e:
        if os.environ.get("TAPIO_TRACEBACK"):
            raise
        print(f"{prog}: error: {e}", file=sys.stderr)
        return EXIT_CONFIG if isinstance(e, ConfigError) else EXIT_ERROR
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
