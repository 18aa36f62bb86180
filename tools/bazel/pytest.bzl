"""py_pytest: one Bazel py_test per test file, run by pytest."""

def py_pytest(name, srcs, deps = [], data = [], sizes = {}, **kwargs):
    """Creates a test suite `name` with one py_test per file in srcs (files named test_*.py).

    `sizes`: a Bazel test size for some files (e.g. {"tests/test_views.py": "large"}: a longer
    timeout), the others the suite's `size` (medium unless given)."""
    default_size = kwargs.pop("size", "medium")
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
                size = sizes.get(src, default_size),
                **kwargs
            )
            tests.append(test_name)
    native.test_suite(name = name, tests = tests)
