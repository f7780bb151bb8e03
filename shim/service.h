// The shim's containers and the handling of each request of proto/shim.proto.
// Containers live only in this process's memory; what must outlive it (a
// container's exit) is also written to <dir>/exits/<id>.json.
//
// A container's status moves CREATED -> RUNNING -> EXITED, or CREATED ->
// EXITED when it is killed before Start. It becomes EXITED once its init has
// been reaped and the output it wrote has reached the log, so a caller that
// saw the exit also sees the last log line.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "base/unique_fd.h"
#include "cgroups/stats.h"
#include "oci/native_exec.h"
#include "oci/oci_runtime.h"
#include "proto/shim.pb.h"
#include "shim/cri_log.h"
#include "shim/io_pump.h"
#include "shim/reaper.h"

namespace crid::shim {

// The shim's protocol version, answered by Ping.
inline constexpr char kShimVersion[] = "1";

class ShimService {
 public:
  // `dir` is the shim's directory (exit records, console sockets, scratch files).
  ShimService(std::string dir, Reaper* reaper, IoPump* pump, CgroupLayout layout);

  // `fds` are the descriptors passed with the request (PassedFdCount of
  // them); `conn_fd` is the request's connection, watched by the calls that
  // end early when the caller goes away (ExecStream, Attach).
  Response Handle(const Request& request, std::vector<UniqueFd> fds = {}, int conn_fd = -1);
  // How many descriptors follow `request` on its connection.
  static size_t PassedFdCount(const Request& request);
  // Serves a Subscribe request on `conn_fd` until the peer goes away or the
  // shim shuts down: a snapshot of every container, then each exit as it
  // happens (see proto/shim.proto).
  void Subscribe(int conn_fd);
  // Removes every container from the runtime (Shutdown, or the shim's
  // directory is gone and nobody can reach them any more).
  void DeleteAll();
  bool shutdown_requested() const;

  // The exit record of a container: <dir>/exits/<id>.json, a JSON object with
  // id, pid, exit_code, oom_killed, created_at_ns, started_at_ns,
  // finished_at_ns and log_path. Written atomically when the container exits
  // and removed by Delete, so crid can learn an exit the shim saw before it
  // died.
  std::string ExitRecordPath(const std::string& id) const;

 private:
  struct Container {
    std::string id;
    uint64_t generation = 0;  // tells a re-created container from its predecessor
    OciRuntimeConfig runtime;
    bool runtime_exec_only = false;
    std::string bundle;
    std::string log_path;
    bool tty = false;
    bool busy = false;  // a create, start or delete is running
    pid_t pid = 0;
    ContainerState::Status status = ContainerState::UNKNOWN;
    int64_t created_ns = 0;
    int64_t started_ns = 0;
    int64_t finished_ns = 0;
    int exit_code = 0;
    bool oom_killed = false;
    std::string memory_cgroup;
    std::optional<uint64_t> oom_kills_at_create;
    // The write end of the container's stdin (non-blocking), kept for
    // attach; shared with running attaches.
    std::shared_ptr<UniqueFd> stdin_fd;
    bool stdin_once = false;
    // The container's terminal (a pty master), kept for Resize.
    UniqueFd console_fd;
    // The init's pidfd, for signals that must reach it and nothing else.
    UniqueFd pidfd;
    // An eventfd written once the container has exited (or was deleted).
    std::shared_ptr<UniqueFd> exited;
    std::shared_ptr<CriLogWriter> log;
    // How execs start, decided at the first one (see UseNativeExec): the
    // parsed process spec and the init's cgroups, or null for the runtime.
    bool exec_path_decided = false;
    std::shared_ptr<const NativeExecSpec> native_exec;
    std::vector<std::string> exec_cgroup_procs;

    std::string pump_key() const;
  };

  absl::Status Create(const CreateRequest& request, CreateResponse* response);
  absl::Status Start(const StartRequest& request);
  absl::Status Kill(const KillRequest& request);
  absl::Status Wait(const WaitRequest& request, ContainerState* state);
  absl::Status Delete(const std::string& id);
  absl::Status State(const StateRequest& request, Response* response);
  absl::Status Exec(const ExecRequest& request, ExecResponse* response);
  // Starts `args` in the running container `id` for Exec and ExecStream:
  // natively when its config allows (see UseNativeExec), else through the
  // runtime's exec. The caller reaps the returned pid.
  absl::StatusOr<pid_t> StartExec(const std::string& id, const std::vector<std::string>& args,
                                  bool tty, const OciStdio& stdio);
  absl::Status ReopenLog(const ReopenLogRequest& request);
  absl::Status Update(const UpdateRequest& request);
  absl::Status ExecStream(const ExecStreamRequest& request, std::vector<UniqueFd> fds, int conn_fd,
                          ExecStreamResponse* response);
  absl::Status Attach(const AttachRequest& request, std::vector<UniqueFd> fds, int conn_fd);
  absl::Status Resize(const ResizeRequest& request);
  // Closes the container's stdin (stdin_once after its first attach).
  void CloseStdin(const std::string& id, uint64_t generation);

  void OnInitExit(const std::string& id, uint64_t generation, int status);
  void Finish(const std::string& id, uint64_t generation, bool oom_killed);
  void WriteExitRecord(const Container& c) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  static void SignalExited(const Container& c);
  // Appends `c`'s state to the event log read by Subscribe streams.
  void AppendEvent(const Container& c) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  static void FillState(const Container& c, ContainerState* state);
  // The container, or NOT_FOUND naming it.
  absl::StatusOr<Container*> Find(const std::string& id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string dir_;
  Reaper* const reaper_;
  IoPump* const pump_;
  const CgroupLayout layout_;

  mutable absl::Mutex mu_;
  // Held (before mu_) while a container's exec path is decided (StartExec).
  absl::Mutex exec_decide_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  absl::CondVar changed_;  // a container exited or was removed
  std::map<std::string, std::unique_ptr<Container>> containers_ ABSL_GUARDED_BY(mu_);
  uint64_t next_generation_ ABSL_GUARDED_BY(mu_) = 1;
  uint64_t next_exec_ ABSL_GUARDED_BY(mu_) = 1;
  bool shutdown_ ABSL_GUARDED_BY(mu_) = false;
  // Exits in the order they happened, numbered from 1, for Subscribe streams;
  // only the newest kEventBacklog are kept.
  std::deque<std::pair<uint64_t, ContainerState>> events_ ABSL_GUARDED_BY(mu_);
  uint64_t last_event_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t next_attach_ ABSL_GUARDED_BY(mu_) = 1;

  // Exec sessions with a terminal, by "<container id>/<session id>": the
  // terminal once made, and a size that arrived before it.
  struct Session {
    std::shared_ptr<UniqueFd> terminal;
    uint16_t width = 0;
    uint16_t height = 0;
    bool running = false;  // claimed by its ExecStream
    absl::Time touched;
  };
  absl::Mutex sessions_mu_;
  std::map<std::string, Session> sessions_ ABSL_GUARDED_BY(sessions_mu_);
};

// Container IDs name files: 1-128 of [A-Za-z0-9_.-], not "." or "..".
absl::Status ValidateContainerId(const std::string& id, absl::string_view field);

}  // namespace crid::shim
