"""C++ code generation for crid's .proto files with Debian's protoc and grpc_cpp_plugin."""

load("@rules_cc//cc:defs.bzl", "cc_library")

def crid_proto_library(name, src, grpc = False, deps = [], visibility = None):
    """Generates <src>.pb.{h,cc} (and .grpc.pb.{h,cc} when grpc) into a cc_library.

    Args:
      name: the cc_library's name.
      src: one .proto file in this package.
      grpc: also generate gRPC service code.
      deps: other crid_proto_library targets this one imports.
      visibility: visibility of the cc_library.
    """
    base = src[:-len(".proto")]
    outs = [base + ".pb.h", base + ".pb.cc"]
    plugin_args = ""
    tools = ["@system//:bin/protoc"]
    if grpc:
        outs += [base + ".grpc.pb.h", base + ".grpc.pb.cc"]
        tools.append("@system//:bin/grpc_cpp_plugin")
        plugin_args = ("--plugin=protoc-gen-grpc=$(location @system//:bin/grpc_cpp_plugin) " +
                       "--grpc_out=$(GENDIR) ")
    native.genrule(
        name = name + "_gen",
        srcs = [src] + [d + "_srcs" for d in deps],
        outs = outs,
        tools = tools,
        cmd = ("$(location @system//:bin/protoc) --proto_path=. --cpp_out=$(GENDIR) " +
               plugin_args + "$(location " + src + ")"),
    )
    native.filegroup(name = name + "_srcs", srcs = [src], visibility = visibility)
    cc_library(
        name = name,
        srcs = [o for o in outs if o.endswith(".cc")],
        hdrs = [o for o in outs if o.endswith(".h")],
        copts = ["-std=c++17", "-Wno-unused-parameter"],
        deps = deps + ["@system//:protobuf"] + (["@system//:grpc++"] if grpc else []),
        visibility = visibility,
    )
