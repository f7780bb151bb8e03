// Runs an OCI runtime binary (runc, crun) for one container operation at a time:
// create, start, exec, state, kill, delete, update, checkpoint, restore. Each call is a child
// process; its error output becomes the status message, so a runtime failure
// reaches kubelet with the runtime's own words.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace crid {

struct OciRuntimeConfig {
  std::string name;    // handler name, for messages ("runc")
  std::string binary;  // absolute path
  std::string root;    // the runtime's state directory (--root)
  bool systemd_cgroup = false;
  absl::Duration timeout = absl::Minutes(2);
};

struct OciState {
  std::string status;  // "created", "running", "paused", "stopped"
  pid_t pid = 0;
};

// The stdio of a container's first process, as file descriptors the caller
// keeps open (pipes held by the shim); -1 means /dev/null.
struct OciStdio {
  int in = -1;
  int out = -1;
  int err = -1;
  // Set for create: these fds (or /dev/null) become the container's stdio.
  bool for_container = false;
  // Create/Exec with a terminal: the runtime connects to this unix socket and
  // sends the pty master over it (SCM_RIGHTS); in/out/err are then unused.
  std::string console_socket;
};

// Collects the exit status of the runtime processes OciRuntime starts. By
// default OciRuntime calls waitpid itself; a process that reaps every child
// with waitpid(-1) (the shim, a subreaper) must instead hand the status over,
// or the two would race for it.
class ChildWaiter {
 public:
  virtual ~ChildWaiter() = default;
  // Blocks until the child `pid` has exited; returns its wait(2) status.
  virtual int WaitChild(pid_t pid) = 0;
};

class OciRuntime {
 public:
  // `waiter` (not owned, may be null) must outlive the runtime.
  explicit OciRuntime(OciRuntimeConfig config, ChildWaiter* waiter = nullptr)
      : config_(std::move(config)), waiter_(waiter) {}

  // `runc create`: the container's process waits for Start. Its pid is returned.
  absl::StatusOr<pid_t> Create(const std::string& id, const std::string& bundle,
                               const OciStdio& stdio) const;
  // `runc exec --detach`: starts `args` in the running container with the
  // container's own user, environment, capabilities and working directory and
  // returns its pid without waiting for it (the caller, a subreaper, reaps
  // it). `scratch` is a path prefix for the runtime's pid and log files, which
  // are removed again.
  absl::StatusOr<pid_t> Exec(const std::string& id, const std::vector<std::string>& args, bool tty,
                             const OciStdio& stdio, const std::string& scratch) const;
  absl::Status Start(const std::string& id) const;
  absl::StatusOr<OciState> State(const std::string& id) const;
  // Signals the container's init (or every process with `all`).
  absl::Status Kill(const std::string& id, int signal, bool all = false) const;
  // Removes the runtime's record; `force` kills a running container first.
  // A container the runtime does not know is success.
  absl::Status Delete(const std::string& id, bool force) const;
  // Applies new resources (a linux.resources JSON object) to a running container.
  absl::Status Update(const std::string& id, const std::string& resources_json) const;
  // `runc checkpoint --leave-running`: CRIU writes the container's process
  // images into `image_path` and its dump.log and stats-dump into `work_path`;
  // the container keeps running (kubelet's checkpoint is forensic).
  absl::Status Checkpoint(const std::string& id, const std::string& image_path,
                          const std::string& work_path) const;
  // `runc restore --detach`: the container `id` is recreated from the bundle
  // and the CRIU images of a Checkpoint (`image_path`, logs in `work_path`) and
  // runs at once. Its stdio are `stdio`'s descriptors, as for Create. Its pid
  // is returned.
  absl::StatusOr<pid_t> Restore(const std::string& id, const std::string& bundle,
                                const std::string& image_path, const std::string& work_path,
                                const OciStdio& stdio) const;

  // The mount options `<runtime> features` lists (OCI runtime features,
  // runc 1.1.3+). A runtime without the command (crun before 1.9) is an error:
  // the caller assumes no optional option then.
  absl::StatusOr<std::vector<std::string>> FeatureMountOptions() const;

  const OciRuntimeConfig& config() const { return config_; }

 private:
  struct Result {
    int exit_code = -1;
    std::string out;
    std::string err;
  };
  absl::StatusOr<Result> Run(const std::vector<std::string>& args, const OciStdio& stdio,
                             const std::string& stdin_data = "") const;
  absl::Status RunOk(const std::string& what, const std::string& id,
                     const std::vector<std::string>& args,
                     const std::string& stdin_data = "") const;
  // `<runtime> --log ... <verb> <verb_args> --bundle B --pid-file P [--console-socket S] ID`
  // for the verbs that leave a container's init waiting (create, restore): its pid.
  absl::StatusOr<pid_t> RunInit(const std::string& verb, const std::vector<std::string>& verb_args,
                                const std::string& id, const std::string& bundle,
                                const OciStdio& stdio) const;

  int WaitChild(pid_t pid) const;

  OciRuntimeConfig config_;
  ChildWaiter* waiter_;
};

// The runtime's message from its error output: runc/crun print either plain text
// or JSON log lines ({"level":"error","msg":"..."}); the last error wins.
std::string RuntimeErrorMessage(const std::string& stderr_text);

}  // namespace crid
