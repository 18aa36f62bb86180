"""py_pytest: one Bazel py_test per test file, run by pytest."""

def py_pytest(name, srcs, deps = [], data = [], **kwargs):
    """Creates a test suite `name` with one py_test per file in srcs (files named test_*.py)."""
    tests = []
    helpers = [s for s in srcs if not s.split("/")[-1].startswith("test_")]
    for src in srcs:
        if src not in helpers:
            test_name = src[:-len(".py")].replace("/", "_")
            native.py_test(
                name = test_name,
                srcs = [src, "//tools/bazel:pytest_main.py"] + helpers,
                main = "//tools/bazel:pytest_main.py",
                args = ["$(rootpath %s)" % src],
                data = data + ["//:pyproject.toml"],
                deps = deps + [
                    "@pypi//:pytest",
                    "@pypi//:pytest_timeout",
                    "@pypi//:hypothesis",
                    "//tests/support/testing:skip_policy",  # loaded by addopts in pyproject.toml
                ],
                python_version = "PY3",
                **kwargs
            )
            tests.append(test_name)
    native.test_suite(name = name, tests = tests)
