"""Runs grpc_tools' bundled protoc with the well-known types on the include path."""

import sys
from importlib import resources

from grpc_tools import protoc


def main() -> int:
    include = str(resources.files("grpc_tools") / "_proto")
    return int(protoc.main(["protoc", f"--proto_path={include}", *sys.argv[1:]]))


if __name__ == "__main__":
    sys.exit(main())
