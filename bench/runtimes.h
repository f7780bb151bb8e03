// The runtimes the end-to-end benchmarks drive over CRI, each private to the
// run (root, state and socket in a temporary directory): the real crid binary
// with crid-shim and runc, and, where it is installed, containerd 1.6 with its
// runc v2 shims. Also the /proc readings the benchmarks report (memory, threads,
// descriptors) and the test images they pull from the local registry.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/temp_dir.h"
#include "proto/cri_api.grpc.pb.h"
#include "tests/cni_fixture.h"
#include "tests/image_registry_fixture.h"

namespace crid::bench {

// PATH for the daemons and the binaries looked up here.
inline constexpr char kPath[] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

// Path of a file in this binary's runfiles (its `data`).
std::string RunfilePath(const std::string& workspace_relative);
// `name` in kPath, or "" when it is not installed.
std::string FindInPath(const std::string& name);
// The last `max` bytes of a file (a daemon's log for error messages).
std::string ReadTail(const std::string& path, size_t max = 4000);
// Entry names of `dir` (without . and ..); empty when it cannot be read.
std::vector<std::string> ListDir(const std::string& dir);

// ---- /proc readings ----

struct Mem {
  int64_t rss_kb = 0;
  int64_t pss_kb = 0;
  int procs = 0;
};
// Rss and Pss summed over `pids` from /proc/PID/smaps_rollup.
Mem SumMem(const std::vector<pid_t>& pids);

// One process's Threads, VmRSS and VmSize (/proc/PID/status), open
// descriptors and CPU time used so far (user + system, /proc/PID/stat).
struct ProcStatus {
  int threads = 0;
  int64_t rss_kb = 0;
  int64_t vm_size_kb = 0;
  int fds = 0;
  double cpu_s = 0;
};
ProcStatus ReadProcStatus(pid_t pid);

std::vector<pid_t> AllPids();
pid_t ParentOf(pid_t pid);
std::string Comm(pid_t pid);
std::string Exe(pid_t pid);
std::vector<std::string> Cmdline(pid_t pid);
// Every process below `roots` (not the roots themselves) whose comm is `comm`,
// or every one when `comm` is empty.
std::vector<pid_t> DescendantsNamed(const std::vector<pid_t>& roots, const std::string& comm);
// Mount points at or below `dir` in this process's mount namespace.
std::vector<std::string> MountsUnder(const std::string& dir);

// ---- a daemon child process ----

// Runs `binary` with `args` (PATH set to kPath), stdout and stderr to a log
// file; stopped by its PID only.
class Daemon {
 public:
  Daemon(std::string binary, std::vector<std::string> args);
  ~Daemon();  // SIGKILL if still running
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  bool Start(const std::string& log_path);
  // Polls until `socket_path` accepts connections; false when the process exits first.
  bool WaitForSocket(const std::string& socket_path, absl::Duration timeout);
  // Exit code, 128+signal, or -1 when it is still running after `timeout`.
  int Wait(absl::Duration timeout);
  void Signal(int sig);
  pid_t pid() const { return pid_; }
  bool running() const { return pid_ > 0; }

 private:
  std::string binary_;
  std::vector<std::string> args_;
  pid_t pid_ = -1;
};

// ---- runtimes ----

class Runtime {
 public:
  virtual ~Runtime() = default;
  virtual std::string name() const = 0;
  virtual absl::Status Start() = 0;
  // The daemon alone (0 when it is not running).
  virtual pid_t DaemonPid() const = 0;
  // The daemon's per-pod shims.
  virtual std::vector<pid_t> ShimPids() = 0;
  // The pods' pause processes (not part of RuntimePids).
  virtual std::vector<pid_t> PausePids() = 0;
  // What the runtime keeps per container, counted by kind ("container dirs",
  // "runc states", "mounts", ...): compared before and after a run to find leaks.
  virtual std::map<std::string, int> Census() = 0;
  // The daemon's stdout and stderr.
  virtual std::string LogPath() const = 0;
  // Removes every pod left, stops the daemon, cleans up.
  virtual void Shutdown() = 0;

  // The daemon and its per-pod shims.
  std::vector<pid_t> RuntimePids();
  // The tail of the daemon's log, for error messages.
  std::string Log() const { return ReadTail(LogPath()); }

  ::runtime::v1::RuntimeService::Stub* runtime() { return runtime_.get(); }
  ::runtime::v1::ImageService::Stub* images() { return images_.get(); }
  // The channel both stubs use, for calls that take the answer as bytes.
  const std::shared_ptr<grpc::Channel>& channel() const { return channel_; }

 protected:
  void Connect(const std::string& socket);
  // Stops and removes every pod the daemon still lists.
  void RemoveAllPods();

  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<::runtime::v1::RuntimeService::Stub> runtime_;
  std::unique_ptr<::runtime::v1::ImageService::Stub> images_;
};

struct CridOptions {
  std::string log_level = "info";
  // Extra members of the config's top-level JSON object, e.g. `"x":{...}`; empty for none.
  std::string extra_config;
};

class CridRuntime : public Runtime {
 public:
  explicit CridRuntime(const TestCniNetwork& network, CridOptions options = {});
  ~CridRuntime() override;

  std::string name() const override { return "crid"; }
  absl::Status Start() override;
  pid_t DaemonPid() const override;
  std::vector<pid_t> ShimPids() override;
  std::vector<pid_t> PausePids() override;
  std::map<std::string, int> Census() override;
  std::string LogPath() const override { return tmp_.Sub("crid.log"); }
  void Shutdown() override;

  std::string root_dir() const { return tmp_.Sub("root"); }
  std::string state_dir() const { return tmp_.Sub("state"); }

 private:
  const TestCniNetwork& network_;
  CridOptions options_;
  TempDir tmp_;
  std::unique_ptr<Daemon> crid_;
};

class ContainerdRuntime : public Runtime {
 public:
  ContainerdRuntime(std::string binary, const TestCniNetwork& network, std::string sandbox_image,
                    std::string registry, std::string runc = "/usr/sbin/runc");
  ~ContainerdRuntime() override;

  std::string name() const override { return "containerd"; }
  absl::Status Start() override;
  pid_t DaemonPid() const override;
  // containerd-shim-runc-v2 processes (reparented away from containerd once
  // started) whose -address is this containerd's socket.
  std::vector<pid_t> ShimPids() override;
  std::vector<pid_t> PausePids() override;
  std::map<std::string, int> Census() override;
  std::string LogPath() const override { return tmp_.Sub("containerd.log"); }
  void Shutdown() override;

 private:
  std::string binary_;
  const TestCniNetwork& network_;
  std::string sandbox_image_;
  std::string registry_;
  std::string runc_;
  TempDir tmp_;
  std::string socket_;
  std::string shim_binary_;
  bool had_run_containerd_ = true;
  std::unique_ptr<Daemon> containerd_;
};

// `containerd --version`, one line.
std::string ContainerdVersion(const std::string& binary);

// ---- images ----

// The busybox image every benchmark container runs (busybox with sh, sleep and
// true) and containerd's sandbox image (crid-pause as /pause), pushed to
// `registry`.
struct BenchImages {
  std::string busybox;
  std::string pause;
};
absl::StatusOr<BenchImages> PushBenchImages(TestRegistry& registry);

// How the binaries were compiled (Bazel's --compilation_mode), for the reports.
const char* CompilationMode();

}  // namespace crid::bench
