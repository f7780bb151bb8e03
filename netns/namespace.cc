#include "netns/namespace.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>
#include <thread>

#include "absl/strings/str_cat.h"
#include "base/errors.h"
#include "base/unique_fd.h"

namespace crid {

const char* NamespaceName(NamespaceType type) {
  switch (type) {
    case NamespaceType::kNet:
      return "net";
    case NamespaceType::kIpc:
      return "ipc";
    case NamespaceType::kUts:
      return "uts";
    case NamespaceType::kPid:
      return "pid";
  }
  return "?";
}

int NamespaceCloneFlag(NamespaceType type) {
  switch (type) {
    case NamespaceType::kNet:
      return CLONE_NEWNET;
    case NamespaceType::kIpc:
      return CLONE_NEWIPC;
    case NamespaceType::kUts:
      return CLONE_NEWUTS;
    case NamespaceType::kPid:
      return CLONE_NEWPID;
  }
  return 0;
}

namespace {

// Runs `fn` on a fresh thread and returns its status. Namespaces are per
// thread, so unshare/setns there leaves the rest of crid untouched.
absl::Status RunOnThread(const std::function<absl::Status()>& fn) {
  absl::Status result;
  std::thread worker([&] { result = fn(); });
  worker.join();
  return result;
}

}  // namespace

absl::Status CreatePinnedNamespace(NamespaceType type, const std::string& path,
                                   const NamespaceInit& init) {
  if (type == NamespaceType::kPid) {
    return absl::InvalidArgumentError("a PID namespace cannot be pinned without a process in it");
  }
  // The mount point: an empty file.
  {
    UniqueFd fd(open(path.c_str(), O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444));
    if (!fd.valid()) {
      return ErrnoError(errno, "create ", path);
    }
  }
  absl::Status st = RunOnThread([&]() -> absl::Status {
    if (unshare(NamespaceCloneFlag(type)) != 0) {
      return ErrnoError(errno, "unshare ", NamespaceName(type), " namespace");
    }
    if (init) {
      CRID_RETURN_IF_ERROR(init());
    }
    std::string self =
        absl::StrCat("/proc/self/task/", syscall(SYS_gettid), "/ns/", NamespaceName(type));
    if (mount(self.c_str(), path.c_str(), nullptr, MS_BIND, nullptr) != 0) {
      return ErrnoError(errno, "bind mount ", self, " on ", path);
    }
    return absl::OkStatus();
  });
  if (!st.ok()) {
    umount2(path.c_str(), MNT_DETACH);
    unlink(path.c_str());
  }
  return st;
}

absl::Status RemovePinnedNamespace(const std::string& path) {
  if (umount2(path.c_str(), MNT_DETACH) != 0 && errno != EINVAL && errno != ENOENT) {
    return ErrnoError(errno, "unmount ", path);
  }
  if (unlink(path.c_str()) != 0 && errno != ENOENT) {
    return ErrnoError(errno, "remove ", path);
  }
  return absl::OkStatus();
}

bool IsPinnedNamespace(const std::string& path) {
  struct statfs fs;
  if (statfs(path.c_str(), &fs) != 0) {
    return false;
  }
  return fs.f_type == NSFS_MAGIC;
}

absl::Status RunInNamespaces(const std::vector<NamespacePath>& namespaces,
                             const std::function<absl::Status()>& fn) {
  // Open every file first so a missing one fails before anything is joined.
  std::vector<UniqueFd> fds;
  for (const NamespacePath& ns : namespaces) {
    UniqueFd fd(open(ns.path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) {
      return ErrnoError(errno, "open ", NamespaceName(ns.type), " namespace ", ns.path);
    }
    fds.push_back(std::move(fd));
  }
  return RunOnThread([&]() -> absl::Status {
    for (size_t i = 0; i < namespaces.size(); ++i) {
      if (setns(fds[i].get(), NamespaceCloneFlag(namespaces[i].type)) != 0) {
        return ErrnoError(errno, "setns ", namespaces[i].path);
      }
    }
    return fn();
  });
}

absl::Status BringUpLoopback() {
  UniqueFd sock(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!sock.valid()) {
    return ErrnoError(errno, "socket");
  }
  struct ifreq req;
  std::memset(&req, 0, sizeof(req));
  std::strncpy(req.ifr_name, "lo", IFNAMSIZ - 1);
  if (ioctl(sock.get(), SIOCGIFFLAGS, &req) != 0) {
    return ErrnoError(errno, "get flags of lo");
  }
  req.ifr_flags |= IFF_UP;
  if (ioctl(sock.get(), SIOCSIFFLAGS, &req) != 0) {
    return ErrnoError(errno, "bring up lo");
  }
  return absl::OkStatus();
}

}  // namespace crid
