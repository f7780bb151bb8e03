"""Tests against the real crid through container_e2e_fixture.h."""

load("//bazel:crid.bzl", "crid_cc_test")

def container_e2e_test(name, srcs, deps = [], **kwargs):
    """A large test that runs crid, runc and CNI for real: root, one at a time, unsandboxed."""
    crid_cc_test(
        name = name,
        size = "large",
        srcs = srcs,
        tags = [
            "exclusive",
            "no-sandbox",
        ],
        deps = deps + [":container_e2e_fixture"],
        **kwargs
    )
