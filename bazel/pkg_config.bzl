"""A repository rule that turns pkg-config modules into cc_library targets.

System libraries come from Debian -dev packages; their headers are already on the
compiler's default include path, so each target only carries the module's
preprocessor defines and link flags. A missing module fails the build with the
name of the package to install.
"""

_DEBIAN_PACKAGES = {
    "grpc++": "libgrpc++-dev",
    "protobuf": "libprotobuf-dev",
    "spdlog": "libspdlog-dev",
    "fmt": "libfmt-dev",
    "libseccomp": "libseccomp-dev",
    "libsystemd": "libsystemd-dev",
    "sqlite3": "libsqlite3-dev",
    "yaml-0.1": "libyaml-dev",
    "prometheus-cpp-core": "prometheus-cpp-dev",
    "prometheus-cpp-pull": "prometheus-cpp-dev",
    "gtest": "libgtest-dev",
    "gtest_main": "libgtest-dev",
    "gmock": "libgmock-dev",
    "gmock_main": "libgmock-dev",
    "protoc": "protobuf-compiler",
    "grpc_cpp_plugin": "protobuf-compiler-grpc",
}

def _package_hint(module):
    if module.startswith("absl_"):
        return "libabsl-dev"
    return _DEBIAN_PACKAGES.get(module, "the -dev package providing " + module)

def _pkg_config(ctx, args, module):
    result = ctx.execute(["pkg-config"] + args + [module])
    if result.return_code != 0:
        fail("pkg-config cannot find '%s' (install %s): %s" %
             (module, _package_hint(module), result.stderr))
    return [f for f in result.stdout.strip().split(" ") if f]

def _dedupe(flags):
    seen = {}
    out = []
    for flag in flags:
        if flag not in seen:
            seen[flag] = True
            out.append(flag)
    return out

def _dedupe_keep_last(flags):
    # Static archives are searched once, in order: an archive must come after
    # every one that needs it, which keeping each flag's last mention preserves.
    return reversed(_dedupe(reversed(flags)))

def _static_archive(ctx, lib):
    """The path of lib's static archive when lib is one to link statically."""
    if not any([lib == s or (s.endswith("*") and lib.startswith(s[:-1])) for s in ctx.attr.static]):
        return None
    result = ctx.execute(["gcc", "-print-file-name=lib%s.a" % lib])
    path = result.stdout.strip()
    if result.return_code != 0 or not path.startswith("/") or not ctx.path(path).exists:
        fail("static archive lib%s.a not found (install its -dev package)" % lib)
    return path

def _static_linkopts(ctx, modules):
    """Link flags with the libraries named in `static` taken from their archives
    (with what those need privately, pkg-config's --static list), or None when
    none of the modules' libraries is one of them."""
    flags = []
    archives = 0
    for module in modules:
        for flag in _pkg_config(ctx, ["--libs", "--static"], module):
            archive = _static_archive(ctx, flag[2:]) if flag.startswith("-l") else None
            if archive:
                archives += 1
                flags.append("-l:" + archive.split("/")[-1])
            else:
                flags.append(flag)
    if archives == 0:
        return None
    return [f for f in _dedupe_keep_last(flags)]

def _pkg_config_libraries_impl(ctx):
    if not ctx.which("pkg-config"):
        fail("pkg-config is not installed (apt-get install pkg-config)")
    build = ['package(default_visibility = ["//visibility:public"])', ""]
    for name, modules in ctx.attr.libraries.items():
        defines = []
        linkopts = []
        for module in modules:
            for flag in _pkg_config(ctx, ["--cflags"], module):
                if flag.startswith("-D"):
                    defines.append(flag[2:])
                elif flag.startswith("-I"):
                    # Headers outside /usr/include would need to be linked into
                    # the repository; no module we use needs that today.
                    if flag[2:] not in ["/usr/include", "/usr/include/x86_64-linux-gnu"]:
                        fail("pkg-config module %s wants include dir %s" % (module, flag))
                else:
                    fail("pkg-config module %s has unsupported cflag %s" % (module, flag))
            linkopts.extend(_pkg_config(ctx, ["--libs"], module))
        build.append("cc_library(")
        build.append('    name = "%s",' % name)
        build.append("    defines = %s," % repr(_dedupe(defines)))
        # Later duplicates are kept out; shared libraries do not depend on link order.
        dynamic = _dedupe(linkopts)
        static = _static_linkopts(ctx, modules)
        if static == None:
            build.append("    linkopts = %s," % repr(dynamic))
        else:
            build.append("    linkopts = select({")
            build.append('        "@crid//bazel:static_deps": %s,' % repr(static))
            build.append('        "//conditions:default": %s,' % repr(dynamic))
            build.append("    }),")
        build.append(")")
        build.append("")
    for name, binary in ctx.attr.tools.items():
        path = ctx.which(binary)
        if not path:
            fail("%s is not installed (install %s)" % (binary, _package_hint(binary)))
        ctx.symlink(path, "bin/" + name)
        build.append('exports_files(["bin/%s"])' % name)
        build.append("")
    ctx.file("WORKSPACE", 'workspace(name = "%s")\n' % ctx.name)
    ctx.file("BUILD.bazel", "\n".join(build))

pkg_config_libraries = repository_rule(
    implementation = _pkg_config_libraries_impl,
    attrs = {
        "libraries": attr.string_list_dict(mandatory = True),
        # Libraries (as in -lNAME; a trailing * matches a prefix) that builds
        # with --define=crid_deps=static link from their .a archives.
        "static": attr.string_list(),
        "tools": attr.string_dict(),
    },
    environ = ["PKG_CONFIG_PATH"],
    local = True,
)
