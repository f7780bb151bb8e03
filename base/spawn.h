// Starts every process crid and crid-shim run (CNI plugins, the OCI runtime,
// crid-shim, crid-pause) the same way: default signal dispositions, an empty
// signal mask, only the descriptors asked for, and an exec failure returned to
// the caller as an error naming the binary, never a child exiting 127.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "base/unique_fd.h"

namespace crid {

// One of the caller's descriptors, given to the child under another number.
struct FdMapping {
  int parent_fd = -1;
  int child_fd = -1;
};

// A namespace the child joins with setns(2) before exec.
struct NamespaceJoin {
  int fd = -1;     // an open /proc/<pid>/ns/<type> file or a pin of one
  int nstype = 0;  // CLONE_NEWNET, CLONE_NEWIPC, CLONE_NEWUTS, ...
};

struct SpawnOptions {
  // argv[0] is the path executed, as given (no PATH search), unless
  // exec_fd is set.
  std::vector<std::string> argv;
  // When set, the program executed is this open executable file
  // (execveat(exec_fd, "", ..., AT_EMPTY_PATH)) and argv[0] only names it, as
  // the child's argv[0] and in errors. The child sees the descriptor only
  // while it execs: it is close-on-exec there, so it must be a binary, not a
  // script. crid-shim is started from a sealed memfd this way.
  int exec_fd = -1;
  // The child's environment; unset means crid's own.
  std::optional<std::vector<std::string>> env;
  // The child's working directory; empty means crid's.
  std::string cwd;
  // The child's descriptors 0, 1 and 2: the caller's descriptors, or -1 for
  // /dev/null.
  int stdin_fd = -1;
  int stdout_fd = -1;
  int stderr_fd = -1;
  // More descriptors the child keeps (child_fd > 2, each at most once).
  // Every descriptor not named here or above is closed in the child.
  std::vector<FdMapping> extra_fds;
  // setsid(2): a new session and process group, no controlling terminal.
  bool new_session = false;
  // setpgid(0, 0): a new process group in crid's session, so the child and
  // everything it starts can be signalled together (kill(-pid, ...)).
  bool new_process_group = false;
  // Joined in order before exec. A user namespace cannot be joined (the
  // child shares crid's memory until it execs).
  std::vector<NamespaceJoin> join_namespaces;
  // The child is PID 1 of a new PID namespace.
  bool new_pid_namespace = false;
  // The child starts in a new user namespace (its uid_map and gid_map are the
  // caller's to write); a new PID namespace then belongs to it. Not with
  // join_namespaces, which would be entered from inside it.
  bool new_user_namespace = false;
  // The child is started through an intermediate process that exits at once,
  // so it is re-parented to init (or the nearest subreaper): it survives
  // crid, never becomes crid's zombie, and gets no pidfd. With new_session the
  // intermediate process leads the new session, so the child is in it without
  // leading it and can never acquire a controlling terminal.
  bool detach = false;
};

struct SpawnedProcess {
  pid_t pid = 0;
  // Readable once the process exits (CLONE_PIDFD); invalid for a detached
  // process. The caller reaps the process (waitpid) unless it is detached.
  UniqueFd pidfd;
};

// Starts `options.argv` and returns once it has exec'd. Fails, with the
// errno and the binary's path in the message, when anything before exec
// (descriptors, namespaces, setsid, chdir) or the exec itself fails; the
// failed child is reaped by then.
absl::StatusOr<SpawnedProcess> Spawn(const SpawnOptions& options);

// waitpid(pid) retried on EINTR; returns the wait(2) status, or -1 (errno set)
// when `pid` is not a child any more.
int WaitForExit(pid_t pid);

}  // namespace crid
