"""crid_fuzz_target: a libFuzzer target built two ways.

`<name>_fuzz_test` (every build, gcc): the target linked with a replay driver
that runs each file of fuzz/corpus/<name> and deterministic mutations of them,
so the corpus is a regression test for everyone.
`<name>_fuzzer` (manual, fuzz/run.sh only): the target linked with libFuzzer;
run.sh builds it with clang in its own output base (--define=crid_fuzz=1).
"""

load("@rules_cc//cc:defs.bzl", "cc_binary", "cc_test")
load("//bazel:crid.bzl", "CRID_COPTS")

def crid_fuzz_target(name, srcs, deps, size = "medium", **kwargs):
    corpus = "fuzz/corpus/" + name
    cc_test(
        name = name + "_fuzz_test",
        size = size,
        srcs = srcs + ["//cri/streaming:fuzz_corpus_test.cc"],
        args = [corpus],
        copts = CRID_COPTS,
        data = native.glob(["corpus/" + name + "/*"]),
        deps = deps,
        **kwargs
    )
    cc_binary(
        name = name + "_fuzzer",
        srcs = srcs,
        copts = CRID_COPTS,
        linkopts = select({
            "//fuzz:libfuzzer": ["-fsanitize=fuzzer"],
            "//conditions:default": [],
        }),
        tags = ["manual"],
        deps = deps,
    )
