"""The skip policy of every pytest run (Bazel's pytest main and the venv's pytest load it through
`addopts` in pyproject.toml): on our machines a test that needs a tool, a privilege or a kernel
feature must run, so in a strict run (`make test`, or `CI=true`) any skip fails the session unless
its reason starts with one of:

- `not installable: ` - the tool is in no package registry we install from (Debian, PyPI); say
  where it comes from instead, e.g. `not installable: terraform (HashiCorp ships it, not Debian)`.
- `not requested: ` - the person running the tests left it out on purpose, naming how, e.g.
  `not requested: TAPIO_NATS_ENGINE=binary`.

Everything else (a tool missing that bootstrap installs, not root, no BTF in the sandbox, ...)
is listed at the end and turns the exit status to 1. Strict: `TAPIO_STRICT_SKIPS=1` or `CI=true`;
`TAPIO_STRICT_SKIPS=0` turns it off even in CI.
"""

from __future__ import annotations

import os

import pytest

NOT_INSTALLABLE = "not installable: "
NOT_REQUESTED = "not requested: "
ALLOWED_PREFIXES = (NOT_INSTALLABLE, NOT_REQUESTED)
STRICT_ENV = "TAPIO_STRICT_SKIPS"
PLUGIN_NAME = "tapio-skip-policy"


def strict(env: dict[str, str] | None = None) -> bool:
    """Whether skips other than the allowed ones fail this run."""
    env = dict(os.environ) if env is None else env
    wanted = env.get(STRICT_ENV, "").strip().lower()
    if wanted in ("0", "false", "no"):
        return False
    return wanted in ("1", "true", "yes") or env.get("CI", "").strip().lower() == "true"


def skip_not_installable(tool: str, where_it_comes_from: str) -> None:
    """Skips because `tool` cannot be installed from Debian or PyPI (allowed in strict runs)."""
    pytest.skip(f"{NOT_INSTALLABLE}{tool} ({where_it_comes_from})")


def skip_not_requested(how: str) -> None:
    """Skips because the person running the tests left this out (`how`: the variable or flag)."""
    pytest.skip(f"{NOT_REQUESTED}{how}")


def reason_of(report: pytest.CollectReport | pytest.TestReport) -> str:
    """The skip reason of a skipped report (pytest keeps it as (path, line, 'Skipped: reason'))."""
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


def allowed(reason: str) -> bool:
    return reason.startswith(ALLOWED_PREFIXES)


class SkipPolicy:
    """Collects the skips of a session that the policy does not allow, and fails a strict run."""

    def __init__(self, strict_run: bool) -> None:
        self.strict = strict_run
        self.bad: list[tuple[str, str]] = []

    def _record(self, report: pytest.CollectReport | pytest.TestReport) -> None:
        if report.skipped and not hasattr(report, "wasxfail"):
            reason = reason_of(report)
            if not allowed(reason):
                self.bad.append((report.nodeid, reason))

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self._record(report)

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        self._record(report)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if (
            self.bad
            and self.strict
            and exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED)
        ):
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if not self.bad:
            return
        verdict = "fail this run" if self.strict else f"would fail a strict run ({STRICT_ENV}=1 or CI=true)"
        terminalreporter.section("skip policy", sep="=", red=self.strict, bold=True)
        terminalreporter.line(
            f"{len(self.bad)} skip(s) for a reason that starts neither with '{NOT_INSTALLABLE.strip()}' nor "
            f"'{NOT_REQUESTED.strip()}' {verdict}. Install what is missing (tools/setup/bootstrap.sh), "
            "run as root, or say why it cannot be installed (docs/DEVELOPING.md, skip policy)."
        )
        for nodeid, reason in self.bad:
            terminalreporter.line(f"  {nodeid}: {reason}")


def pytest_configure(config: pytest.Config) -> None:
    if not config.pluginmanager.has_plugin(PLUGIN_NAME):
        config.pluginmanager.register(SkipPolicy(strict()), PLUGIN_NAME)
