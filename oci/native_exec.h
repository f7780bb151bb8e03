// Starts a process in a running container without the OCI runtime binary, as
// `runc exec --detach` would: the process of the bundle's config.json with
// other args, in the namespaces and cgroups of the container's init. Saves the
// runtime's start-up (a Go binary that re-executes itself to enter the
// namespaces) on every exec; kubelet's exec probes are the common caller.
//
// Only what this file reproduces exactly is done natively; anything else in a
// container's config makes LoadNativeExecSpec answer UNIMPLEMENTED, and the
// caller runs the runtime binary instead.
#pragma once

#include <linux/filter.h>
#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "oci/oci_runtime.h"

namespace crid {

// The part of config.json an exec'd process is made of.
struct NativeExecSpec {
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::vector<uint32_t> additional_gids;
  std::optional<uint32_t> umask;
  std::vector<std::string> env;
  std::string cwd;
  // Capability sets as bit masks (bit N: capability N).
  uint64_t bounding = 0;
  uint64_t effective = 0;
  uint64_t inheritable = 0;
  uint64_t permitted = 0;
  uint64_t ambient = 0;
  bool no_new_privileges = false;
  struct Rlimit {
    int resource = 0;
    uint64_t soft = 0;
    uint64_t hard = 0;
  };
  std::vector<Rlimit> rlimits;
  std::optional<int> oom_score_adj;
  // linux.seccomp is set: the process gets the filter the container's init
  // got from runc, taken from the kernel (ReadInitSeccompFilter) and loaded
  // with these seccomp(2) flags at the point runc loads it.
  bool seccomp = false;
  unsigned int seccomp_flags = 0;
  std::vector<struct sock_filter> seccomp_filter;  // filled by the caller
};

// Parses a bundle's config.json text. UNIMPLEMENTED (its message says why)
// when the container uses something the native path does not reproduce:
// a user namespace, a seccomp profile with user notification (listenerPath,
// SCMP_ACT_NOTIFY) or flags runc does not know, AppArmor, SELinux, unknown process fields,
// capabilities or rlimits this file does not know, no HOME in the
// environment (runc would look it up in the container's /etc/passwd).
// INVALID_ARGUMENT when the JSON is not a runtime spec.
absl::StatusOr<NativeExecSpec> ParseNativeExecSpec(const std::string& config_json);

// `<bundle>/config.json`, parsed (see ParseNativeExecSpec).
absl::StatusOr<NativeExecSpec> LoadNativeExecSpec(const std::string& bundle);

// The paths execve is tried with for `arg0`, in order, as Go's exec.LookPath
// (which runc uses) searches: `arg0` itself when it holds a '/', otherwise
// each directory of PATH in `env` (an empty element is the working
// directory), none when `env` has no PATH.
std::vector<std::string> ExecCandidates(const std::string& arg0,
                                        const std::vector<std::string>& env);

// The cgroup.procs files of the cgroups a process is in, from its
// /proc/<pid>/cgroup text: v1 hierarchies under `v1_mounts` (controller or
// "name=..." -> mount point), the v2 one under `unified_mount` (may be empty).
// Hierarchies without a known mount are left out.
std::vector<std::string> CgroupProcsFiles(const std::string& proc_cgroup,
                                          const std::map<std::string, std::string>& v1_mounts,
                                          const std::string& unified_mount);

// The BPF program of the container's seccomp profile as the kernel holds it
// for the container's init `pid` (whose pidfd is `pidfd`): runc 1.1 loads
// libseccomp's filter patched with a stub that answers ENOSYS for syscalls
// newer than the profile, so the program is copied rather than rebuilt. The
// init is ptrace-stopped for the copy by a short-lived helper process;
// `waiter` collects the helper's exit (null: waitpid). UNIMPLEMENTED when the
// program cannot be taken (the init is traced already, has no filter, ...):
// the caller runs the runtime instead.
absl::StatusOr<std::vector<struct sock_filter>> ReadInitSeccompFilter(pid_t pid, int pidfd,
                                                                      ChildWaiter* waiter);

struct NativeExecRequest {
  std::string container_id;  // names the session keyring, as runc does
  std::string runtime_name;  // for messages ("runc")
  int init_pidfd = -1;       // the container's init; its namespaces are joined
  std::vector<std::string> args;
  // The cgroup.procs files the process is written into before it runs.
  std::vector<std::string> cgroup_procs;
  OciStdio stdio;  // in/out/err only (-1: /dev/null); no terminal
};

// Starts `request.args` in the container and returns the pid (a child of the
// caller, who must reap it). An exec that fails (binary not found, not
// executable) is an INTERNAL error worded as runc words it, and leaves no
// process behind. `waiter` collects the exit of the helper process (and of a
// process whose exec failed); null: waitpid.
absl::StatusOr<pid_t> NativeExec(const NativeExecSpec& spec, const NativeExecRequest& request,
                                 ChildWaiter* waiter);

}  // namespace crid
