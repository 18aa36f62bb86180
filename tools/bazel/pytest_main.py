"""Entry point of every Bazel py_test: runs pytest on the files given as arguments."""

import os
import sys

import pytest

if __name__ == "__main__":
    args = ["-c", "pyproject.toml", "--rootdir", ".", "-p", "no:cacheprovider", *sys.argv[1:]]
    xml = os.environ.get("XML_OUTPUT_FILE")
    if xml:
        args.append(f"--junitxml={xml}")
    sys.exit(pytest.main(args))
