"""Project macros: one place for copts, warnings and test defaults."""

load("@rules_cc//cc:defs.bzl", "cc_binary", "cc_library", "cc_test")

CRID_COPTS = [
    # Strict dialect: GNU dialects define `linux` as a macro, which breaks the
    # generated CRI code for fields named `linux`.
    "-std=c++17",
    "-Wall",
    "-Wextra",
    "-Werror",
    "-Wno-unused-parameter",
    "-Wno-missing-field-initializers",
]

def crid_cc_library(name, copts = [], **kwargs):
    cc_library(name = name, copts = CRID_COPTS + copts, **kwargs)

def crid_cc_binary(name, copts = [], **kwargs):
    cc_binary(name = name, copts = CRID_COPTS + copts, **kwargs)

def crid_cc_test(name, copts = [], deps = [], size = "small", **kwargs):
    cc_test(
        name = name,
        copts = CRID_COPTS + copts,
        size = size,
        deps = deps + ["@system//:gtest", "@system//:gmock", "@system//:gtest_main"],
        **kwargs
    )
