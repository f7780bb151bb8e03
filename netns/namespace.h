// Pinned Linux namespaces: a network, IPC or UTS namespace created by a
// short-lived thread and kept alive by a bind mount of its nsfs file, so it
// outlives every process in it (and crid itself). Network namespaces are pinned
// under /run/netns so `ip netns` lists them.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace crid {

enum class NamespaceType { kNet, kIpc, kUts, kPid, kUser };

// "net", "ipc", "uts", "pid": the name under /proc/<pid>/ns/.
const char* NamespaceName(NamespaceType type);
// CLONE_NEWNET and friends.
int NamespaceCloneFlag(NamespaceType type);

// What to do inside a namespace right after it is created (while the creating
// thread is still its only member), e.g. set the hostname or bring up `lo`.
using NamespaceInit = std::function<absl::Status()>;

// Creates a new namespace of `type` and pins it at `path` (an empty file is
// created there; its directory must exist). `init` runs inside the new namespace
// before it is pinned. On any failure nothing is left at `path`.
//
// With `userns_path` (a pinned user namespace) the new namespace is owned by
// that user namespace, so the pod's root there has capabilities over it (and
// a container that joins the user namespace first may still join it). Only a
// single-threaded process may enter a user namespace, so a forked child does
// the work then; `init` runs in that child and may use only what is safe after
// fork in a multi-threaded program (system calls, no locks).
absl::Status CreatePinnedNamespace(NamespaceType type, const std::string& path,
                                   const NamespaceInit& init = nullptr,
                                   const std::string& userns_path = "");

// One line of a user namespace's uid_map or gid_map.
struct IdMapping {
  uint32_t container_id = 0;
  uint32_t host_id = 0;
  uint32_t length = 0;
};

// Creates a user namespace with these uid and gid mappings (written by crid,
// root in the initial namespace, so setgroups stays allowed) and pins it at
// `path`. On any failure nothing is left at `path`.
absl::Status CreatePinnedUserNamespace(const std::string& path, const std::vector<IdMapping>& uids,
                                       const std::vector<IdMapping>& gids);

// Writes the uid_map and gid_map of `pid`'s (new, unmapped) user namespace.
absl::Status WriteIdMappings(pid_t pid, const std::vector<IdMapping>& uids,
                             const std::vector<IdMapping>& gids);

// Pins the `type` namespace of process `pid` at `path` (an empty file is
// created there). On failure nothing is left at `path`.
absl::Status PinProcessNamespace(pid_t pid, NamespaceType type, const std::string& path);

// Unpins and deletes `path` (lazy unmount, then unlink). A missing path is OK.
absl::Status RemovePinnedNamespace(const std::string& path);

// True when `path` is a bind-mounted namespace file (nsfs).
bool IsPinnedNamespace(const std::string& path);

// One namespace to enter: its type and the path of a namespace file
// (/run/netns/x, /proc/<pid>/ns/net, ...).
struct NamespacePath {
  NamespaceType type;
  std::string path;
};

// Runs `fn` on a dedicated thread that first joins every namespace in
// `namespaces` (setns); the calling thread's namespaces never change. The
// thread exits afterwards, so no other work ever runs in those namespaces by
// accident. Returns setns' error or fn's status.
absl::Status RunInNamespaces(const std::vector<NamespacePath>& namespaces,
                             const std::function<absl::Status()>& fn);

// Sets the administrative state of the loopback interface to up in the
// current thread's network namespace.
absl::Status BringUpLoopback();

}  // namespace crid
