#include "cmd/check_command.h"

#include <stdlib.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/errors.h"
#include "base/fs.h"
#include "cgroups/driver.h"
#include "cgroups/manager.h"
#include "cmd/binaries.h"
#include "cni/config.h"
#include "cni/exec.h"

namespace crid {
namespace {

class Report {
 public:
  void Ok(const std::string& what, const std::string& detail) {
    std::printf("ok   %s: %s\n", what.c_str(), detail.c_str());
  }
  void Fail(const std::string& what, absl::string_view detail) {
    std::printf("FAIL %s: %s\n", what.c_str(), std::string(detail).c_str());
    ++failures_;
  }
  int failures() const { return failures_; }

 private:
  int failures_ = 0;
};

// An executable regular file, or why not.
absl::Status CheckExecutable(const std::string& path) {
  if (path.empty()) {
    return absl::NotFoundError("no binary configured");
  }
  struct stat st = {};
  if (stat(path.c_str(), &st) != 0) {
    return ErrnoError(errno, "stat ", path);
  }
  if (!S_ISREG(st.st_mode) || access(path.c_str(), X_OK) != 0) {
    return absl::FailedPreconditionError(absl::StrCat(path, " is not an executable file"));
  }
  return absl::OkStatus();
}

// A directory crid can create files in (made when missing, as crid does).
absl::Status CheckWritableDir(const std::string& dir) {
  if (absl::Status st = MakeDirs(dir, 0711); !st.ok()) {
    return st;
  }
  std::string probe = absl::StrCat(dir, "/.crid-check-", getpid());
  if (absl::Status st = WriteFileAtomic(probe, "", 0600); !st.ok()) {
    return st;
  }
  unlink(probe.c_str());
  return absl::OkStatus();
}

// Mounts a small overlay below `root` the way container root filesystems are
// mounted, so both the kernel's overlayfs and the root's filesystem (as upper
// directory) are tested.
absl::Status CheckOverlay(const std::string& root) {
  std::string dir = absl::StrCat(root, "/.crid-check-overlay-XXXXXX");
  if (mkdtemp(dir.data()) == nullptr) {
    return ErrnoError(errno, "mkdtemp ", dir);
  }
  absl::Status result = absl::OkStatus();
  for (const char* sub : {"/lower", "/upper", "/work", "/merged"}) {
    if (mkdir((dir + sub).c_str(), 0700) != 0) {
      result = ErrnoError(errno, "mkdir ", dir + sub);
    }
  }
  if (result.ok()) {
    std::string options =
        absl::StrCat("lowerdir=", dir, "/lower,upperdir=", dir, "/upper,workdir=", dir, "/work");
    std::string merged = dir + "/merged";
    if (mount("overlay", merged.c_str(), "overlay", 0, options.c_str()) != 0) {
      result = ErrnoError(errno, "mount overlay on ", merged);
    } else {
      umount2(merged.c_str(), MNT_DETACH);
    }
  }
  (void)RemoveTree(dir);
  return result;
}

void CheckCgroups(const config::Config& config, Report* report) {
  absl::StatusOr<CgroupLayout> layout = CgroupLayout::Detect();
  if (!layout.ok()) {
    report->Fail("cgroups", layout.status().message());
    return;
  }
  std::string version = layout->unified ? "v2 (unified)"
                        : layout->unified_mount.empty()
                            ? "v1"
                            : "v1 with a v2 hierarchy at " + layout->unified_mount + " (hybrid)";
  report->Ok("cgroups", version);
  absl::StatusOr<CgroupDriver> driver = ResolveCgroupDriver(config.cgroup_driver());
  if (!driver.ok()) {
    report->Fail("cgroup driver", driver.status().message());
    return;
  }
  CgroupManagerOptions options;
  options.driver = *driver;
  options.layout = *layout;
  absl::StatusOr<std::unique_ptr<CgroupManager>> manager = NewCgroupManager(std::move(options));
  if (!manager.ok()) {
    report->Fail("cgroup driver",
                 absl::StrCat(CgroupDriverName(*driver), ": ", manager.status().message()));
    return;
  }
  report->Ok("cgroup driver", CgroupDriverName(*driver));
}

void CheckRuntimeHandlers(const config::Config& config, Report* report) {
  for (const auto& [name, handler] : RuntimeHandlerBinaries(config)) {
    const std::string what = absl::StrCat("runtime handler ", name);
    absl::Status st = CheckExecutable(handler.binary);
    const bool needed = handler.configured || name == config.container().default_handler();
    if (st.ok()) {
      report->Ok(what, handler.binary);
    } else if (needed) {
      report->Fail(what, st.message());
    } else {
      // A built-in handler nobody asked for: pods naming it are refused.
      report->Ok(what, absl::StrCat("not installed (", handler.binary,
                                    "); pods asking for it will be refused"));
    }
  }
}

void CheckCni(const config::Config& config, Report* report) {
  const std::string& dir = config.cni().conf_dir();
  absl::StatusOr<cni::NetworkConfigList> list = cni::LoadFirstNetworkConfig(dir);
  if (!list.ok()) {
    report->Fail("CNI config", absl::StrCat(dir, ": ", list.status().message()));
    return;
  }
  report->Ok("CNI config", absl::StrCat("network \"", list->name, "\" from ", list->source));
  std::vector<std::string> bin_dirs(config.cni().bin_dirs().begin(), config.cni().bin_dirs().end());
  for (const Json& plugin : list->plugins) {
    std::string type = plugin.value("type", "");
    absl::StatusOr<std::string> path = cni::FindPlugin(type, bin_dirs);
    if (path.ok()) {
      report->Ok(absl::StrCat("CNI plugin ", type), *path);
    } else {
      report->Fail(absl::StrCat("CNI plugin ", type), path.status().message());
    }
  }
}

}  // namespace

int RunCheckCommand(const absl::StatusOr<config::Config>& config) {
  Report report;
  if (!config.ok()) {
    report.Fail("config", config.status().message());
    return 1;
  }
  report.Ok("config", "valid");
  if (geteuid() != 0) {
    report.Fail("privileges", "crid runs as root (mounts, namespaces, cgroups)");
  }
  for (const auto& [what, dir] :
       {std::pair<std::string, std::string>{"root", config->root()}, {"state", config->state()}}) {
    if (absl::Status st = CheckWritableDir(dir); st.ok()) {
      report.Ok(what, absl::StrCat(dir, " is writable"));
    } else {
      report.Fail(what, st.message());
    }
  }
  if (absl::Status st = CheckOverlay(config->root()); st.ok()) {
    report.Ok("overlayfs", absl::StrCat("mounts with its upper directory in ", config->root()));
  } else {
    report.Fail("overlayfs", st.message());
  }
  CheckCgroups(*config, &report);
  CheckRuntimeHandlers(*config, &report);
  for (const auto& [name, build_dir] :
       {std::pair<std::string, std::string>{"crid-shim", "shim"}, {"crid-pause", "pause"}}) {
    bool configured = name == "crid-shim" ? !config->container().shim_binary().empty()
                                          : !config->pod().pause_binary().empty();
    std::string path =
        name == "crid-shim" ? config->container().shim_binary() : config->pod().pause_binary();
    if (!configured) {
      path = FindCompanionBinary(name, build_dir);
    }
    if (absl::Status st = CheckExecutable(path); st.ok()) {
      report.Ok(name, path);
    } else {
      report.Fail(name, path.empty() ? "not found next to crid, in /usr/local/bin or /usr/bin"
                                     : std::string(st.message()));
    }
  }
  CheckCni(*config, &report);
  if (report.failures() > 0) {
    std::printf("%d problem%s found\n", report.failures(), report.failures() == 1 ? "" : "s");
    return 1;
  }
  return 0;
}

}  // namespace crid
