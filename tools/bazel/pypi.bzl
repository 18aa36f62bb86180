"""Repository rule: the pinned, hashed requirements.lock pip-installed into an external repository.

It also provides the Python toolchain (the interpreter that ran pip) and, when Debian's
python3-bpfcc is installed, the `bcc` module, so Bazel targets see exactly what the venv sees.
"""

_BCC_DIR = "/usr/lib/python3/dist-packages/bcc"

def _find_python(rctx):
    explicit = rctx.os.environ.get("TAPIO_PYTHON", "")
    if explicit:
        return explicit
    venv = rctx.path(Label("//:WORKSPACE")).dirname.get_child(".venv").get_child("bin").get_child("python")
    if venv.exists:
        return str(venv)
    for name in ["python3.11", "python3"]:
        found = rctx.which(name)
        if found:
            return str(found)
    fail("no Python interpreter found: install python3.11 or set TAPIO_PYTHON (run `make setup`)")

def _tapio_pypi_impl(rctx):
    python = _find_python(rctx)
    lock = rctx.path(rctx.attr.requirements)
    site = rctx.path("site")
    rctx.report_progress("pip install -r %s" % lock)
    result = rctx.execute(
        [
            python,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-warn-script-location",
            "--no-deps",
            "--require-hashes",
            "--target",
            str(site),
            "-r",
            str(lock),
        ],
        timeout = 1800,
        quiet = True,
    )
    if result.return_code != 0:
        fail("pip install of %s failed:\n%s\n%s" % (lock, result.stdout, result.stderr))
    if rctx.path(_BCC_DIR).exists:
        rctx.symlink(_BCC_DIR, "site/bcc")
    result = rctx.execute(
        [python, str(rctx.path(rctx.attr._generator)), str(site), "BUILD.bazel"],
        timeout = 300,
        quiet = True,
    )
    if result.return_code != 0:
        fail("generating the pypi BUILD file failed:\n%s\n%s" % (result.stdout, result.stderr))

tapio_pypi = repository_rule(
    implementation = _tapio_pypi_impl,
    attrs = {
        "requirements": attr.label(allow_single_file = True, mandatory = True),
        "_generator": attr.label(default = Label("//tools/bazel:pypi_build.py"), allow_single_file = True),
    },
    environ = ["TAPIO_PYTHON", "PATH"],
    local = False,
)
