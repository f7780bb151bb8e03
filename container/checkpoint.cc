#include "container/checkpoint.h"

#include <fcntl.h>
#include <ftw.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "base/errors.h"
#include "base/fs.h"
#include "base/json.h"
#include "base/spawn.h"
#include "base/unique_fd.h"
#include "image/unpack.h"

namespace crid::container {

namespace {

std::string GoTime(int64_t ns) {
  // Go's time.Time JSON form (RFC 3339 with nanoseconds), which checkpointctl parses.
  return absl::FormatTime("%Y-%m-%d%ET%H:%M:%E*SZ", absl::FromUnixNanos(ns), absl::UTCTimeZone());
}

int64_t ParseGoTime(const std::string& text) {
  absl::Time t;
  std::string err;
  if (text.empty() || !absl::ParseTime(absl::RFC3339_full, text, &t, &err)) {
    return 0;
  }
  return absl::ToUnixNanos(t);
}

// The first executable `name` on PATH, then in /usr/sbin and /sbin (root's
// PATH has them; a daemon's may not). Empty when there is none.
std::string FindBinary(const std::string& name) {
  const char* env_path = std::getenv("PATH");
  std::vector<std::string> dirs;
  if (env_path != nullptr) {
    dirs = absl::StrSplit(env_path, ':', absl::SkipEmpty());
  }
  dirs.emplace_back("/usr/sbin");
  dirs.emplace_back("/sbin");
  for (const std::string& dir : dirs) {
    std::string path = absl::StrCat(dir, "/", name);
    if (::access(path.c_str(), X_OK) == 0) {
      return path;
    }
  }
  return "";
}

struct ToolResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

// Runs a short helper (criu check, tar) and collects its output.
absl::StatusOr<ToolResult> RunTool(const std::vector<std::string>& argv) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    return ErrnoError(errno, "pipe");
  }
  UniqueFd read_end(fds[0]);
  UniqueFd write_end(fds[1]);
  SpawnOptions options;
  options.argv = argv;
  options.stdout_fd = write_end.get();
  options.stderr_fd = write_end.get();
  CRID_ASSIGN_OR_RETURN(SpawnedProcess child, Spawn(options));
  write_end.reset();
  ToolResult result;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(read_end.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      break;
    }
    // Enough to explain a failure; a chatty tool cannot fill crid's memory.
    if (result.output.size() < (size_t{64} << 10)) {
      result.output.append(buf, static_cast<size_t>(n));
    }
  }
  int status = WaitForExit(child.pid);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

std::atomic<bool> criu_ok{false};

// Collected by WriteRootfsDiff's walk (nftw takes no closure).
struct DiffWalk {
  std::string root;
  std::vector<std::string> members;
  std::vector<std::string> deleted;
};
thread_local DiffWalk* diff_walk = nullptr;

int VisitUpper(const char* path, const struct stat* st, int /*type*/, struct FTW* /*ftw*/) {
  absl::string_view rel(path);
  if (!absl::ConsumePrefix(&rel, diff_walk->root) || rel.empty()) {
    return 0;  // the root itself
  }
  absl::ConsumePrefix(&rel, "/");
  // overlayfs records a deleted lower file as a 0:0 character device.
  if (S_ISCHR(st->st_mode) && st->st_rdev == makedev(0, 0)) {
    diff_walk->deleted.push_back(absl::StrCat("/", rel));
    return 0;
  }
  diff_walk->members.emplace_back(rel);
  return 0;
}

}  // namespace

std::string ConfigDumpJson(const CheckpointConfig& config) {
  Json j = {
      {"id", config.id},
      {"name", config.name},
      {"rootfsImage", config.rootfs_image},
      {"rootfsImageRef", config.rootfs_image_ref},
      {"rootfsImageName", config.rootfs_image_name},
      {"runtime", config.runtime},
      {"createdTime", GoTime(config.created_ns)},
      {"checkpointedTime", GoTime(config.checkpointed_ns)},
  };
  return j.dump(2);
}

absl::StatusOr<CheckpointConfig> ParseConfigDump(const std::string& text) {
  CRID_ASSIGN_OR_RETURN(Json j, ParseJsonObject(text, kConfigDumpFile));
  CheckpointConfig config;
  config.id = JsonString(j, "id");
  config.name = JsonString(j, "name");
  config.rootfs_image = JsonString(j, "rootfsImage");
  config.rootfs_image_ref = JsonString(j, "rootfsImageRef");
  config.rootfs_image_name = JsonString(j, "rootfsImageName");
  config.runtime = JsonString(j, "runtime");
  config.created_ns = ParseGoTime(JsonString(j, "createdTime"));
  config.checkpointed_ns = ParseGoTime(JsonString(j, "checkpointedTime"));
  if (config.rootfs_image_name.empty() && config.rootfs_image_ref.empty() &&
      config.rootfs_image.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(kConfigDumpFile, ": names no image the checkpoint's rootfs is based on"));
  }
  return config;
}

std::string CriuLogErrors(const std::string& log_text, size_t max_lines) {
  std::vector<std::string> errors;
  for (absl::string_view line : absl::StrSplit(log_text, '\n')) {
    size_t at = line.find("Error (");
    if (at != absl::string_view::npos) {
      errors.emplace_back(line.substr(at));
    }
  }
  if (errors.size() > max_lines) {
    errors.erase(errors.begin(), errors.end() - static_cast<ptrdiff_t>(max_lines));
  }
  return absl::StrJoin(errors, "; ");
}

absl::Status CheckCriu() {
  if (criu_ok.load()) {
    return absl::OkStatus();
  }
  std::string criu = FindBinary("criu");
  if (criu.empty()) {
    return absl::FailedPreconditionError(
        "CRIU binary not found or too old: checkpoint/restore needs criu on PATH");
  }
  CRID_ASSIGN_OR_RETURN(ToolResult r, RunTool({criu, "check"}));
  if (r.exit_code != 0) {
    std::string why = CriuLogErrors(r.output);
    return absl::FailedPreconditionError(
        absl::StrCat("CRIU cannot checkpoint on this host (", criu,
                     " check failed: ", why.empty() ? r.output : why, ")"));
  }
  criu_ok.store(true);
  return absl::OkStatus();
}

absl::Status WriteRootfsDiff(const std::string& upper, const std::string& dir) {
  DiffWalk walk;
  walk.root = upper;
  diff_walk = &walk;
  int rc = ::nftw(upper.c_str(), VisitUpper, 64, FTW_PHYS | FTW_MOUNT);
  int walk_errno = errno;
  diff_walk = nullptr;
  if (rc != 0) {
    return ErrnoError(walk_errno, "walking the writable layer ", upper);
  }
  Json deleted = walk.deleted;
  CRID_RETURN_IF_ERROR(
      WriteFileAtomic(absl::StrCat(dir, "/", kDeletedFilesFile), deleted.dump(), 0600));
  // Member names go to tar NUL-separated from a file: any byte but NUL may be
  // in a file name, and the list may be long.
  std::string list_path = absl::StrCat(dir, "/.rootfs-diff.list");
  std::string list;
  for (const std::string& m : walk.members) {
    list.append(m);
    list.push_back('\0');
  }
  CRID_RETURN_IF_ERROR(WriteFileAtomic(list_path, list, 0600));
  absl::Cleanup remove_list = [&] { ::unlink(list_path.c_str()); };
  // Directories are listed one by one, so --no-recursion keeps tar from adding
  // their whiteouts back.
  CRID_ASSIGN_OR_RETURN(
      ToolResult r,
      RunTool({"/bin/tar", "--create", "--file", absl::StrCat(dir, "/", kRootfsDiffTar),
               "--directory", upper, "--no-recursion", "--numeric-owner", "--xattrs",
               "--xattrs-include=*", "--null", "--files-from", list_path}));
  if (r.exit_code != 0) {
    return absl::InternalError(absl::StrCat("tar of the writable layer ", upper, ": ", r.output));
  }
  return absl::OkStatus();
}

absl::Status ApplyRootfsDiff(const std::string& dir, const std::string& upper) {
  std::string diff = absl::StrCat(dir, "/", kRootfsDiffTar);
  struct stat st;
  if (::stat(diff.c_str(), &st) == 0) {
    CRID_RETURN_IF_ERROR(
        Annotate(UnpackLayer(diff, upper).status(), "unpacking the checkpoint's rootfs-diff.tar"));
  }
  absl::StatusOr<std::string> text = ReadFile(absl::StrCat(dir, "/", kDeletedFilesFile));
  if (!text.ok()) {
    return absl::OkStatus();  // an archive without deletions may lack the file
  }
  CRID_ASSIGN_OR_RETURN(Json deleted, ParseJson(*text, kDeletedFilesFile));
  if (!deleted.is_array()) {
    return absl::InvalidArgumentError(absl::StrCat(kDeletedFilesFile, ": not a list of paths"));
  }
  UniqueFd root(::open(upper.c_str(), O_DIRECTORY | O_PATH | O_CLOEXEC));
  if (!root.valid()) {
    return ErrnoError(errno, "open ", upper);
  }
  for (const Json& entry : deleted) {
    if (!entry.is_string()) {
      return absl::InvalidArgumentError(absl::StrCat(kDeletedFilesFile, ": not a list of paths"));
    }
    std::string path(absl::StripPrefix(entry.get<std::string>(), "/"));
    std::vector<std::string> parts = absl::StrSplit(path, '/', absl::SkipEmpty());
    if (parts.empty()) {
      continue;
    }
    // Each parent is opened from the last without following links, so a
    // hostile list cannot place a whiteout outside the layer.
    UniqueFd at(::fcntl(root.get(), F_DUPFD_CLOEXEC, 0));
    bool skip = false;
    for (size_t i = 0; i + 1 < parts.size(); ++i) {
      if (parts[i] == ".." || parts[i] == ".") {
        return absl::InvalidArgumentError(
            absl::StrCat(kDeletedFilesFile, ": path \"", path, "\" leaves the rootfs"));
      }
      if (::mkdirat(at.get(), parts[i].c_str(), 0755) != 0 && errno != EEXIST) {
        return ErrnoError(errno, "mkdir ", parts[i], " in the writable layer");
      }
      UniqueFd next(::openat(at.get(), parts[i].c_str(), O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!next.valid()) {
        skip = true;  // a file of the diff stands where the parent was
        break;
      }
      at = std::move(next);
    }
    const std::string& leaf = parts.back();
    if (leaf == ".." || leaf == ".") {
      return absl::InvalidArgumentError(
          absl::StrCat(kDeletedFilesFile, ": path \"", path, "\" leaves the rootfs"));
    }
    if (skip) {
      continue;
    }
    if (::mknodat(at.get(), leaf.c_str(), S_IFCHR | 0, makedev(0, 0)) != 0 && errno != EEXIST) {
      return ErrnoError(errno, "mknod whiteout ", path);
    }
  }
  return absl::OkStatus();
}

absl::Status WriteCheckpointArchive(const std::string& dir, const std::string& location) {
  CRID_ASSIGN_OR_RETURN(std::vector<std::string> entries, ListDir(dir));
  entries.erase(std::remove_if(entries.begin(), entries.end(),
                               [](const std::string& name) { return name[0] == '.'; }),
                entries.end());
  std::sort(entries.begin(), entries.end());
  std::string tmp = absl::StrCat(location, ".crid-tmp");
  std::vector<std::string> argv = {"/bin/tar",    "--create", "--file",          tmp,
                                   "--directory", dir,        "--numeric-owner", "--owner=0",
                                   "--group=0",   "--"};
  argv.insert(argv.end(), entries.begin(), entries.end());
  absl::StatusOr<ToolResult> r = RunTool(argv);
  if (!r.ok() || r->exit_code != 0) {
    ::unlink(tmp.c_str());
    return r.ok() ? absl::InternalError(absl::StrCat("writing ", location, ": ", r->output))
                  : Annotate(r.status(), absl::StrCat("writing ", location));
  }
  {
    UniqueFd fd(::open(tmp.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid() || ::fsync(fd.get()) != 0 || ::chmod(tmp.c_str(), 0600) != 0) {
      int err = errno;
      ::unlink(tmp.c_str());
      return ErrnoError(err, "fsync ", tmp);
    }
  }
  if (::rename(tmp.c_str(), location.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return ErrnoError(err, "rename ", tmp, " to ", location);
  }
  return absl::OkStatus();
}

absl::Status UnpackCheckpointArchive(const std::string& archive, const std::string& dest) {
  CRID_RETURN_IF_ERROR(
      Annotate(UnpackLayer(archive, dest).status(), absl::StrCat("checkpoint archive ", archive)));
  // The restore opens these files: anything but plain files and directories
  // (links, devices, fifos) is refused, as containerd does.
  DiffWalk walk;
  walk.root = dest;
  diff_walk = &walk;
  int rc = ::nftw(
      dest.c_str(),
      [](const char* path, const struct stat* st, int /*type*/, struct FTW* /*ftw*/) {
        if (!S_ISREG(st->st_mode) && !S_ISDIR(st->st_mode)) {
          diff_walk->deleted.emplace_back(path);
          return 1;
        }
        return 0;
      },
      64, FTW_PHYS | FTW_MOUNT);
  diff_walk = nullptr;
  if (rc < 0) {
    return ErrnoError(errno, "walking the unpacked checkpoint ", dest);
  }
  if (!walk.deleted.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("checkpoint archive ", archive, ": ",
                                                   walk.deleted.front(),
                                                   " is not a regular file or directory"));
  }
  for (const char* required : {kConfigDumpFile, kSpecDumpFile}) {
    struct stat st;
    if (::stat(absl::StrCat(dest, "/", required).c_str(), &st) != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("checkpoint archive ", archive, ": has no ", required));
    }
  }
  return absl::OkStatus();
}

bool IsCheckpointArchive(const std::string& path) {
  struct stat st;
  return !path.empty() && path[0] == '/' && ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

}  // namespace crid::container
