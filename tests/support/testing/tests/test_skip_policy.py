"""The skip policy: in a strict run (`make test`, CI=true) a skip fails the session unless its
reason says the tool is not installable from our registries, or that it was left out on purpose."""

from __future__ import annotations

import pytest

from tapio_testing.skip_policy import NOT_INSTALLABLE, NOT_REQUESTED, strict

SUITE = """
import pytest

def test_runs():
    assert True

def test_missing_tool():
    pytest.skip("kubectl is not installed")

@pytest.mark.skipif(True, reason="not installable: terraform (HashiCorp ships it)")
def test_terraform():
    pass

def test_engine():
    pytest.skip("not requested: TAPIO_NATS_ENGINE=binary")
"""

ALLOWED_ONLY = """
import pytest

pytestmark = pytest.mark.skipif(True, reason="not installable: vendor driver (no registry has it)")

def test_a():
    pass
"""

MODULE_SKIP = """
import pytest

pytest.skip("needs root", allow_module_level=True)
"""


def run(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, source: str, **env: str
) -> pytest.RunResult:
    for var in ("CI", "TAPIO_STRICT_SKIPS"):
        monkeypatch.delenv(var, raising=False)
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    pytester.makepyfile(test_suite=source)
    return pytester.runpytest_subprocess("-p", "tapio_testing.skip_policy", "-p", "no:cacheprovider")


def test_a_plain_skip_fails_a_strict_run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    result = run(pytester, monkeypatch, SUITE, TAPIO_STRICT_SKIPS="1")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        ["*skip policy*", "*1 skip(s)*fail this run*", "*test_missing_tool: kubectl is not installed"]
    )
    assert "test_terraform:" not in result.stdout.str()
    assert "test_engine:" not in result.stdout.str()


def test_ci_is_strict_and_a_module_level_skip_counts(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = run(pytester, monkeypatch, MODULE_SKIP, CI="true")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*test_suite.py: needs root"])


def test_allowed_reasons_pass_a_strict_run(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = run(pytester, monkeypatch, ALLOWED_ONLY, CI="true")
    assert result.ret == pytest.ExitCode.OK
    assert "skip policy" not in result.stdout.str()


def test_a_developer_run_only_warns(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    result = run(pytester, monkeypatch, SUITE)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["*would fail a strict run*"])
    result = run(pytester, monkeypatch, SUITE, CI="true", TAPIO_STRICT_SKIPS="0")
    assert result.ret == pytest.ExitCode.OK


def test_strictness_from_the_environment() -> None:
    assert strict({"TAPIO_STRICT_SKIPS": "1"})
    assert strict({"CI": "true"})
    assert not strict({"CI": "true", "TAPIO_STRICT_SKIPS": "0"})
    assert not strict({})
    assert NOT_INSTALLABLE.endswith(": ")
    assert NOT_REQUESTED.endswith(": ")
