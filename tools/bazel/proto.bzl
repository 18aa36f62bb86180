"""py_proto_library: Python protobuf modules generated at build time with grpc_tools.protoc."""

def py_proto_library(name, srcs, deps = [], **kwargs):
    """Generates <x>_pb2.py and <x>_pb2.pyi for each .proto in srcs (paths relative to this package).

    The package directory is the proto import root, so `tapio/events/v1/events.proto` becomes
    the Python module `tapio.events.v1.events_pb2`.
    """
    outs = []
    for src in srcs:
        stem = src[:-len(".proto")]
        outs += [stem + "_pb2.py", stem + "_pb2.pyi"]
    native.genrule(
        name = name + "_gen",
        srcs = srcs,
        outs = outs,
        tools = ["//tools/bazel:protoc"],
        cmd = "$(execpath //tools/bazel:protoc) --proto_path=%s --python_out=$(RULEDIR) --pyi_out=$(RULEDIR) $(SRCS)" % (
            native.package_name() or ".",
        ),
    )
    native.py_library(
        name = name,
        srcs = [o for o in outs if o.endswith(".py")],
        data = [o for o in outs if o.endswith(".pyi")],
        imports = ["."],
        deps = deps + ["@pypi//:protobuf"],
        **kwargs
    )
