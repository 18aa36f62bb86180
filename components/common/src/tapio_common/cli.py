"""Command-line plumbing shared by every binary: one clear error line instead of a traceback."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

import attrs

from tapio_common.config import ENV_HELP, add_common_arguments, load_common
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


class NotImplementedYetError(TapioError):
    """The component's runtime is not written yet."""


@attrs.frozen
class Flag:
    name: str
    metavar: str
    help: str


@attrs.frozen
class PendingComponent:
    """A component whose command line and configuration exist but whose runtime does not yet:
    `--help` teaches its flags, bad configuration is refused, and running it says so (exit 1)
    instead of pretending to collect or deliver anything."""

    prog: str
    component: str
    description: str
    examples: str
    flags: tuple[Flag, ...] = ()

    def build_parser(self) -> argparse.ArgumentParser:
        epilog = (
            "status: not implemented yet. This binary has its command line and configuration, but does\n"
            "not collect or deliver anything yet: it exits with an error rather than pretend to run.\n\n"
            f"examples:\n{self.examples}"
        )
        parser = make_parser(self.prog, self.description, epilog)
        for flag in self.flags:
            parser.add_argument(flag.name, metavar=flag.metavar, help=flag.help)
        add_common_arguments(parser)
        return parser

    def _main(self, argv: Sequence[str]) -> int:
        args = self.build_parser().parse_args(argv)
        load_common(args, self.component)  # validates flags, environment and the config file
        raise NotImplementedYetError(f"{self.component} is not implemented yet (configuration is valid)")

    def main(self, argv: Sequence[str] | None = None) -> int:
        return run_cli(self.prog, self._main, argv)
