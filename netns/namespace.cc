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
#include <sys/wait.h>
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
    case NamespaceType::kUser:
      return "user";
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
    case NamespaceType::kUser:
      return CLONE_NEWUSER;
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

// A forked child that runs `setup` (it reports the errno of its failure or 0
// through a pipe) and then waits until the parent closes its end of a second
// pipe, so its namespaces stay alive while the parent pins them.
class NamespaceHolder {
 public:
  // `setup` returns 0 or an errno; `message` says what failed.
  absl::Status Start(const std::function<int(std::string*)>& setup) {
    int ready[2];
    int hold[2];
    if (pipe2(ready, O_CLOEXEC) != 0) {
      return ErrnoError(errno, "pipe");
    }
    if (pipe2(hold, O_CLOEXEC) != 0) {
      int err = errno;
      close(ready[0]);
      close(ready[1]);
      return ErrnoError(err, "pipe");
    }
    UniqueFd ready_read(ready[0]), ready_write(ready[1]);
    UniqueFd hold_read(hold[0]);
    hold_write_.reset(hold[1]);
    pid_ = fork();
    if (pid_ < 0) {
      return ErrnoError(errno, "fork");
    }
    if (pid_ == 0) {
      hold_write_.reset();
      std::string message;
      int err = setup(&message);
      // errno, then what failed.
      (void)!write(ready_write.get(), &err, sizeof(err));
      (void)!write(ready_write.get(), message.data(), message.size());
      ready_write.reset();
      char byte;
      (void)!read(hold_read.get(), &byte, 1);
      _exit(0);
    }
    ready_write.reset();
    int err = 0;
    char text[512];
    ssize_t n = read(ready_read.get(), &err, sizeof(err));
    if (n != sizeof(err)) {
      return absl::InternalError("namespace helper process died before reporting");
    }
    if (err != 0) {
      ssize_t len = read(ready_read.get(), text, sizeof(text));
      return ErrnoError(err, std::string(text, len > 0 ? static_cast<size_t>(len) : 0));
    }
    return absl::OkStatus();
  }

  pid_t pid() const { return pid_; }

  ~NamespaceHolder() {
    hold_write_.reset();
    if (pid_ > 0) {
      while (waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
      }
    }
  }

 private:
  pid_t pid_ = -1;
  UniqueFd hold_write_;
};

absl::Status CreateMountPointFile(const std::string& path) {
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444));
  if (!fd.valid()) {
    return ErrnoError(errno, "create ", path);
  }
  return absl::OkStatus();
}

absl::Status PinFromProcess(pid_t pid, NamespaceType type, const std::string& path) {
  std::string source = absl::StrCat("/proc/", pid, "/ns/", NamespaceName(type));
  if (mount(source.c_str(), path.c_str(), nullptr, MS_BIND, nullptr) != 0) {
    return ErrnoError(errno, "bind mount ", source, " on ", path);
  }
  return absl::OkStatus();
}

std::string MapText(const std::vector<IdMapping>& mappings) {
  std::string text;
  for (const IdMapping& m : mappings) {
    absl::StrAppend(&text, m.container_id, " ", m.host_id, " ", m.length, "\n");
  }
  return text;
}

absl::Status WriteProcFile(const std::string& path, const std::string& text) {
  UniqueFd fd(open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd.valid()) {
    return ErrnoError(errno, "open ", path);
  }
  // One write: the kernel takes a map only whole.
  if (write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
    return ErrnoError(errno, "write ", path);
  }
  return absl::OkStatus();
}

// CreatePinnedNamespace for a namespace owned by a pod's user namespace.
absl::Status CreateInUserNamespace(NamespaceType type, const std::string& path,
                                   const NamespaceInit& init, const std::string& userns_path) {
  UniqueFd userns(open(userns_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!userns.valid()) {
    return ErrnoError(errno, "open user namespace ", userns_path);
  }
  NamespaceHolder holder;
  absl::Status st = holder.Start([&](std::string* message) -> int {
    if (setns(userns.get(), CLONE_NEWUSER) != 0) {
      *message = "setns user namespace";
      return errno;
    }
    if (unshare(NamespaceCloneFlag(type)) != 0) {
      *message = absl::StrCat("unshare ", NamespaceName(type), " namespace");
      return errno;
    }
    if (init) {
      absl::Status init_status = init();
      if (!init_status.ok()) {
        *message = std::string(init_status.message());
        return EIO;
      }
    }
    return 0;
  });
  if (st.ok()) {
    st = PinFromProcess(holder.pid(), type, path);
  }
  return st;
}

}  // namespace

absl::Status WriteIdMappings(pid_t pid, const std::vector<IdMapping>& uids,
                             const std::vector<IdMapping>& gids) {
  CRID_RETURN_IF_ERROR(WriteProcFile(absl::StrCat("/proc/", pid, "/uid_map"), MapText(uids)));
  return WriteProcFile(absl::StrCat("/proc/", pid, "/gid_map"), MapText(gids));
}

absl::Status PinProcessNamespace(pid_t pid, NamespaceType type, const std::string& path) {
  CRID_RETURN_IF_ERROR(CreateMountPointFile(path));
  absl::Status st = PinFromProcess(pid, type, path);
  if (!st.ok()) {
    unlink(path.c_str());
  }
  return st;
}

absl::Status CreatePinnedUserNamespace(const std::string& path, const std::vector<IdMapping>& uids,
                                       const std::vector<IdMapping>& gids) {
  CRID_RETURN_IF_ERROR(CreateMountPointFile(path));
  absl::Status st;
  {
    NamespaceHolder holder;
    st = holder.Start([](std::string* message) -> int {
      if (unshare(CLONE_NEWUSER) != 0) {
        *message = "unshare user namespace";
        return errno;
      }
      return 0;
    });
    if (st.ok()) {
      st = WriteIdMappings(holder.pid(), uids, gids);
    }
    if (st.ok()) {
      st = PinFromProcess(holder.pid(), NamespaceType::kUser, path);
    }
  }
  if (!st.ok()) {
    umount2(path.c_str(), MNT_DETACH);
    unlink(path.c_str());
  }
  return st;
}

absl::Status CreatePinnedNamespace(NamespaceType type, const std::string& path,
                                   const NamespaceInit& init, const std::string& userns_path) {
  if (type == NamespaceType::kPid) {
    return absl::InvalidArgumentError("a PID namespace cannot be pinned without a process in it");
  }
  if (type == NamespaceType::kUser) {
    return absl::InvalidArgumentError("user namespaces are pinned by CreatePinnedUserNamespace");
  }
  // The mount point: an empty file.
  CRID_RETURN_IF_ERROR(CreateMountPointFile(path));
  if (!userns_path.empty()) {
    absl::Status st = CreateInUserNamespace(type, path, init, userns_path);
    if (!st.ok()) {
      umount2(path.c_str(), MNT_DETACH);
      unlink(path.c_str());
    }
    return st;
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
