// End-to-end container benchmark over the CRI socket: for N pods, one after
// another, RunPodSandbox -> CreateContainer (busybox `sleep 3600`) ->
// StartContainer ("started"), then with all N running StopContainer (timeout 0)
// -> RemoveContainer -> StopPodSandbox -> RemovePodSandbox ("removed"). Reports
// p50/p99 latencies and the RSS/PSS of the runtime (daemon plus its per-pod
// shims) idle and with N pods up.
//
// The real crid binary runs with crid-shim and runc, pulling from a local
// docker-registry on 127.0.0.1, pods on a private CNI bridge (no masquerade,
// no route off the machine). Where `containerd` is installed, a private
// containerd (own root, state and socket under a temporary directory, the same
// CNI network, a pause image built from crid-pause in the same registry) is
// driven through its CRI socket by the same client code in the same run.
//
//   bazel run //bench:container_bench -- --pods 50
//
// With --pull_layers N it times PullImage instead: an image of N gzip layers
// (--pull_layer_mb each, uncompressed) through each runtime, cold on a fresh
// daemon and warm (already present), --pull_rounds fresh daemons each.
//
//   bazel run //bench:container_bench -- --pull_layers 8
//
// --sandboxes_only times pods alone (RunPodSandbox; StopPodSandbox +
// RemovePodSandbox) on the same bridge network.
#include <dirent.h>
#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "base/errors.h"
#include "base/fs.h"
#include "base/temp_dir.h"
#include "base/unique_fd.h"
#include "bench/bench_layers.h"
#include "image/test_layers.h"
#include "proto/cri_api.grpc.pb.h"
#include "tests/cni_fixture.h"
#include "tests/image_registry_fixture.h"

ABSL_FLAG(int, pods, 50, "pods to run (one container each), then stop and remove");
ABSL_FLAG(bool, containerd, true, "also measure containerd when it is installed");
ABSL_FLAG(bool, sandboxes_only, false,
          "pods without containers: RunPodSandbox, then StopPodSandbox+RemovePodSandbox");
ABSL_FLAG(int, pull_layers, 0,
          "instead of pods: time PullImage of an image with this many gzip layers, cold (fresh "
          "daemon) and warm (already present), through crid and containerd");
ABSL_FLAG(int, pull_layer_mb, 25, "uncompressed MB per layer for --pull_layers");
ABSL_FLAG(int, pull_rounds, 3, "fresh daemons per runtime for --pull_layers");
ABSL_FLAG(std::string, containerd_binary, "", "containerd to run (default: found in PATH)");
ABSL_FLAG(std::string, containerd_runc, "/usr/sbin/runc", "runc binary containerd's shims run");

extern char** environ;

namespace crid {
namespace {

namespace v1 = ::runtime::v1;

constexpr char kPath[] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) {
    return 0;
  }
  std::sort(v.begin(), v.end());
  auto i = static_cast<size_t>(std::lround(p * static_cast<double>(v.size() - 1)));
  return v[std::min(i, v.size() - 1)];
}

// Path of a file in this binary's runfiles (its `data`).
std::string RunfilePath(const std::string& workspace_relative) {
  const char* dir = std::getenv("RUNFILES_DIR");
  std::string base = dir != nullptr ? dir : "";
  if (base.empty()) {
    char buf[4096];
    ssize_t n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
    base = absl::StrCat(n > 0 ? std::string(buf, static_cast<size_t>(n)) : "", ".runfiles");
  }
  return absl::StrCat(base, "/crid/", workspace_relative);
}

// Busybox as bin/busybox with bin/sh and bin/sleep hard links. The links'
// headers carry the target's mode, as GNU tar writes them: containerd applies a
// hard link header's mode to the shared inode.
std::string BusyboxLayer() {
  TarBuilder tar;
  tar.Dir("bin").File("bin/busybox", ReadFile("/bin/busybox").value_or(""), 0755);
  for (const char* tool : {"sh", "sleep"}) {
    TarMember link;
    link.name = absl::StrCat("bin/", tool);
    link.type = '1';
    link.linkname = "bin/busybox";
    link.mode = 0755;
    tar.Add(link);
  }
  tar.Dir("tmp", 01777);
  return tar.Finish();
}

// ---- /proc helpers ----

struct Mem {
  int64_t rss_kb = 0;
  int64_t pss_kb = 0;
  int procs = 0;
};

// Adds Rss and Pss of `pid` from /proc/PID/smaps_rollup.
void AddMem(pid_t pid, Mem* mem) {
  absl::StatusOr<std::string> text = ReadFile(absl::StrCat("/proc/", pid, "/smaps_rollup"));
  if (!text.ok()) {
    return;
  }
  bool seen = false;
  for (absl::string_view line : absl::StrSplit(*text, '\n')) {
    int64_t* field = nullptr;
    if (absl::ConsumePrefix(&line, "Rss:")) {
      field = &mem->rss_kb;
    } else if (absl::ConsumePrefix(&line, "Pss:")) {
      field = &mem->pss_kb;
    } else {
      continue;
    }
    line = absl::StripAsciiWhitespace(absl::StripSuffix(absl::StripAsciiWhitespace(line), "kB"));
    int64_t kb = 0;
    if (absl::SimpleAtoi(line, &kb)) {
      *field += kb;
      seen = true;
    }
  }
  if (seen) {
    ++mem->procs;
  }
}

Mem SumMem(const std::vector<pid_t>& pids) {
  Mem mem;
  for (pid_t pid : pids) {
    AddMem(pid, &mem);
  }
  return mem;
}

// Entry names of `dir` (without . and ..); empty when it cannot be read.
std::vector<std::string> ListDir(const std::string& dir) {
  std::vector<std::string> names;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) {
    return names;
  }
  while (struct dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name != "." && name != "..") {
      names.push_back(name);
    }
  }
  ::closedir(d);
  return names;
}

std::vector<pid_t> AllPids() {
  std::vector<pid_t> pids;
  for (const std::string& name : ListDir("/proc")) {
    int pid = 0;
    if (absl::SimpleAtoi(name, &pid) && pid > 0) {
      pids.push_back(pid);
    }
  }
  return pids;
}

pid_t ParentOf(pid_t pid) {
  absl::StatusOr<std::string> stat = ReadFile(absl::StrCat("/proc/", pid, "/stat"));
  if (!stat.ok()) {
    return -1;
  }
  // "PID (comm) STATE PPID ..."; comm may hold spaces and parentheses.
  size_t close = stat->rfind(')');
  if (close == std::string::npos) {
    return -1;
  }
  std::vector<absl::string_view> fields =
      absl::StrSplit(absl::string_view(*stat).substr(close + 2), ' ');
  int ppid = -1;
  if (fields.size() < 2 || !absl::SimpleAtoi(fields[1], &ppid)) {
    return -1;
  }
  return ppid;
}

std::string Comm(pid_t pid) {
  return std::string(
      absl::StripSuffix(ReadFile(absl::StrCat("/proc/", pid, "/comm")).value_or(""), "\n"));
}

std::string Exe(pid_t pid) {
  char buf[4096];
  std::string link = absl::StrCat("/proc/", pid, "/exe");
  ssize_t n = ::readlink(link.c_str(), buf, sizeof(buf) - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
}

std::vector<std::string> Cmdline(pid_t pid) {
  std::string raw = ReadFile(absl::StrCat("/proc/", pid, "/cmdline")).value_or("");
  return absl::StrSplit(raw, '\0', absl::SkipEmpty());
}

// Every process below `roots` (not the roots themselves) whose comm is `comm`.
std::vector<pid_t> DescendantsNamed(const std::vector<pid_t>& roots, const std::string& comm) {
  std::map<pid_t, std::vector<pid_t>> children;
  for (pid_t pid : AllPids()) {
    children[ParentOf(pid)].push_back(pid);
  }
  std::vector<pid_t> out;
  std::vector<pid_t> todo = roots;
  std::set<pid_t> seen(roots.begin(), roots.end());
  while (!todo.empty()) {
    pid_t p = todo.back();
    todo.pop_back();
    for (pid_t c : children[p]) {
      if (seen.insert(c).second) {
        todo.push_back(c);
        if (Comm(c) == comm) {
          out.push_back(c);
        }
      }
    }
  }
  return out;
}

std::string ReadTail(const std::string& path, size_t max = 4000) {
  std::string text = ReadFile(path).value_or("");
  return text.size() > max ? text.substr(text.size() - max) : text;
}

std::string FindInPath(const std::string& name) {
  for (absl::string_view dir : absl::StrSplit(kPath, ':')) {
    std::string p = absl::StrCat(dir, "/", name);
    if (::access(p.c_str(), X_OK) == 0) {
      return p;
    }
  }
  return "";
}

// ---- a daemon child process ----

// Runs `binary` with `args` (PATH set to kPath), stdout and stderr to a log
// file; stopped by its PID only.
class Daemon {
 public:
  Daemon(std::string binary, std::vector<std::string> args)
      : binary_(std::move(binary)), args_(std::move(args)) {}
  ~Daemon() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  bool Start(const std::string& log_path) {
    std::vector<std::string> env;
    for (char** e = environ; *e != nullptr; ++e) {
      if (!absl::StartsWith(*e, "PATH=")) {
        env.emplace_back(*e);
      }
    }
    env.push_back(absl::StrCat("PATH=", kPath));
    std::vector<char*> envp;
    envp.reserve(env.size() + 1);
    for (std::string& e : env) {
      envp.push_back(e.data());
    }
    envp.push_back(nullptr);
    std::vector<char*> argv{binary_.data()};
    argv.reserve(args_.size() + 2);
    for (std::string& a : args_) {
      argv.push_back(a.data());
    }
    argv.push_back(nullptr);
    pid_ = ::fork();
    if (pid_ == 0) {
      int fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
      if (fd >= 0) {
        ::dup2(fd, 1);
        ::dup2(fd, 2);
      }
      ::execve(binary_.c_str(), argv.data(), envp.data());
      ::_exit(127);
    }
    return pid_ > 0;
  }

  // Polls until `socket_path` accepts connections; false when the process exits first.
  bool WaitForSocket(const std::string& socket_path, absl::Duration timeout) {
    absl::Time deadline = absl::Now() + timeout;
    while (absl::Now() < deadline && pid_ > 0) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return false;
      }
      UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
      struct sockaddr_un addr = {};
      addr.sun_family = AF_UNIX;
      std::strncpy(addr.sun_path, socket_path.c_str(), sizeof(addr.sun_path) - 1);
      if (::connect(fd.get(), reinterpret_cast<struct sockaddr*>(&addr), sizeof(addr)) == 0) {
        return true;
      }
      absl::SleepFor(absl::Milliseconds(20));
    }
    return false;
  }

  // Exit code, 128+signal, or -1 when it is still running after `timeout`.
  int Wait(absl::Duration timeout) {
    absl::Time deadline = absl::Now() + timeout;
    while (pid_ > 0) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      if (absl::Now() > deadline) {
        return -1;
      }
      absl::SleepFor(absl::Milliseconds(10));
    }
    return -1;
  }

  void Signal(int sig) {
    if (pid_ > 0) {
      ::kill(pid_, sig);
    }
  }
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
  // The daemon and its per-pod shims.
  virtual std::vector<pid_t> RuntimePids() = 0;
  // The pods' pause processes (not part of RuntimePids).
  virtual std::vector<pid_t> PausePids() = 0;
  virtual std::string Log() const = 0;
  // Removes every pod left, stops the daemon, cleans up.
  virtual void Shutdown() = 0;

  v1::RuntimeService::Stub* runtime() { return runtime_.get(); }
  v1::ImageService::Stub* images() { return images_.get(); }

 protected:
  void Connect(const std::string& socket) {
    auto channel = grpc::CreateChannel("unix://" + socket, grpc::InsecureChannelCredentials());
    runtime_ = v1::RuntimeService::NewStub(channel);
    images_ = v1::ImageService::NewStub(channel);
  }

  // Stops and removes every pod the daemon still lists.
  void RemoveAllPods() {
    if (!runtime_) {
      return;
    }
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    v1::ListPodSandboxResponse list;
    if (!runtime_->ListPodSandbox(&ctx, {}, &list).ok()) {
      return;
    }
    for (const auto& pod : list.items()) {
      grpc::ClientContext c1;
      v1::StopPodSandboxRequest stop;
      stop.set_pod_sandbox_id(pod.id());
      v1::StopPodSandboxResponse r1;
      (void)runtime_->StopPodSandbox(&c1, stop, &r1);
      grpc::ClientContext c2;
      v1::RemovePodSandboxRequest rm;
      rm.set_pod_sandbox_id(pod.id());
      v1::RemovePodSandboxResponse r2;
      grpc::Status st = runtime_->RemovePodSandbox(&c2, rm, &r2);
      if (!st.ok()) {
        std::fprintf(stderr, "%s: RemovePodSandbox %s: %s\n", name().c_str(), pod.id().c_str(),
                     st.error_message().c_str());
      }
    }
  }

  std::unique_ptr<v1::RuntimeService::Stub> runtime_;
  std::unique_ptr<v1::ImageService::Stub> images_;
};

class CridRuntime : public Runtime {
 public:
  CridRuntime(const TestCniNetwork& network) : network_(network) {}
  ~CridRuntime() override { Shutdown(); }

  std::string name() const override { return "crid"; }

  absl::Status Start() override {
    std::ofstream(tmp_.Sub("crid.json")) << absl::StrCat(
        R"({"cni":{"confDir":")", network_.conf_dir(), R"(","binDirs":[")", kSystemCniBinDir,
        R"("]},"pod":{"pauseBinary":")", RunfilePath("pause/crid-pause"),
        R"("},"container":{"shimBinary":")", RunfilePath("shim/crid-shim"), R"("}})");
    crid_ = std::make_unique<Daemon>(
        RunfilePath("crid"),
        std::vector<std::string>{"--config", tmp_.Sub("crid.json"), "--root", tmp_.Sub("root"),
                                 "--state", tmp_.Sub("state"), "--listen",
                                 "unix://" + tmp_.Sub("crid.sock"), "--log-level", "info"});
    if (!crid_->Start(tmp_.Sub("crid.log")) ||
        !crid_->WaitForSocket(tmp_.Sub("crid.sock"), absl::Seconds(30))) {
      return absl::InternalError(absl::StrCat("crid did not start:\n", Log()));
    }
    Connect(tmp_.Sub("crid.sock"));
    return absl::OkStatus();
  }

  std::vector<pid_t> RuntimePids() override {
    std::vector<pid_t> pids;
    if (crid_ && crid_->running()) {
      pids.push_back(crid_->pid());
    }
    for (pid_t shim : ShimPids()) {
      pids.push_back(shim);
    }
    return pids;
  }

  std::vector<pid_t> PausePids() override { return DescendantsNamed(RuntimePids(), "crid-pause"); }

  std::string Log() const override { return ReadTail(tmp_.Sub("crid.log")); }

  void Shutdown() override {
    if (!crid_ || !crid_->running()) {
      return;
    }
    RemoveAllPods();
    crid_->Signal(SIGTERM);
    if (crid_->Wait(absl::Seconds(30)) != 0) {
      std::fprintf(stderr, "crid did not exit cleanly:\n%s\n", Log().c_str());
    }
    crid_.reset();
  }

 private:
  std::vector<pid_t> ShimPids() {
    std::vector<pid_t> pids;
    for (const std::string& d : ListDir(tmp_.Sub("state/shims"))) {
      std::string text =
          ReadFile(tmp_.Sub(absl::StrCat("state/shims/", d, "/shim.pid"))).value_or("");
      int pid = 0;
      if (absl::SimpleAtoi(absl::StripAsciiWhitespace(text), &pid) && pid > 0 &&
          ::kill(pid, 0) == 0) {
        pids.push_back(pid);
      }
    }
    return pids;
  }

  const TestCniNetwork& network_;
  TempDir tmp_;
  std::unique_ptr<Daemon> crid_;
};

class ContainerdRuntime : public Runtime {
 public:
  ContainerdRuntime(std::string binary, const TestCniNetwork& network, std::string sandbox_image,
                    std::string registry)
      : binary_(std::move(binary)),
        network_(network),
        sandbox_image_(std::move(sandbox_image)),
        registry_(std::move(registry)) {}
  ~ContainerdRuntime() override { Shutdown(); }

  std::string name() const override { return "containerd"; }

  absl::Status Start() override {
    shim_binary_ = FindInPath("containerd-shim-runc-v2");
    if (shim_binary_.empty()) {
      return absl::NotFoundError("containerd-shim-runc-v2 is not installed");
    }
    had_run_containerd_ = ::access("/run/containerd", F_OK) == 0;
    socket_ = tmp_.Sub("containerd.sock");
    const std::string cri = R"([plugins."io.containerd.grpc.v1.cri")";
    std::ofstream(tmp_.Sub("config.toml"))
        << absl::StrCat("version = 2\n",                                               //
                        "root = \"", tmp_.Sub("root"), "\"\n",                         //
                        "state = \"", tmp_.Sub("state"), "\"\n",                       //
                        "disabled_plugins = [\"io.containerd.snapshotter.v1.aufs\", "  //
                        "\"io.containerd.snapshotter.v1.btrfs\", "                     //
                        "\"io.containerd.snapshotter.v1.zfs\", "                       //
                        "\"io.containerd.snapshotter.v1.devmapper\", "                 //
                        "\"io.containerd.tracing.processor.v1.otlp\"]\n",              //
                        "[grpc]\n  address = \"", socket_, "\"\n",                     //
                        "[ttrpc]\n  address = \"", socket_, ".ttrpc\"\n",              //
                        "[plugins.\"io.containerd.internal.v1.opt\"]\n",               //
                        "  path = \"", tmp_.Sub("opt"), "\"\n",                        //
                        cri, "]\n",                                                    //
                        "  sandbox_image = \"", sandbox_image_, "\"\n",                //
                        "  stream_server_address = \"127.0.0.1\"\n",                   //
                        "  stream_server_port = \"0\"\n",
                        // Without CAP_SYS_RESOURCE the sandbox's oom_score_adj -998 is refused.
                        "  restrict_oom_score_adj = true\n",                                //
                        cri, ".containerd]\n",                                              //
                        "  snapshotter = \"overlayfs\"\n",                                  //
                        "  default_runtime_name = \"runc\"\n",                              //
                        cri, ".containerd.runtimes.runc]\n",                                //
                        "  runtime_type = \"io.containerd.runc.v2\"\n",                     //
                        cri, ".containerd.runtimes.runc.options]\n",                        //
                        "  SystemdCgroup = false\n",                                        //
                        "  BinaryName = \"", absl::GetFlag(FLAGS_containerd_runc), "\"\n",  //
                        "  Root = \"", tmp_.Sub("runc"), "\"\n",                            //
                        cri, ".cni]\n",                                                     //
                        "  bin_dir = \"", kSystemCniBinDir, "\"\n",                         //
                        "  conf_dir = \"", network_.conf_dir(), "\"\n",                     //
                        "  max_conf_num = 1\n",                                             //
                        cri, ".registry.mirrors.\"", registry_, "\"]\n",                    //
                        "  endpoint = [\"http://", registry_, "\"]\n");
    containerd_ = std::make_unique<Daemon>(
        binary_, std::vector<std::string>{"--config", tmp_.Sub("config.toml")});
    if (!containerd_->Start(tmp_.Sub("containerd.log")) ||
        !containerd_->WaitForSocket(socket_, absl::Seconds(60))) {
      return absl::InternalError(absl::StrCat("containerd did not start:\n", Log()));
    }
    Connect(socket_);
    // The CRI plugin initializes after the socket is up: wait until it answers.
    absl::Time deadline = absl::Now() + absl::Seconds(30);
    for (;;) {
      grpc::ClientContext ctx;
      v1::VersionRequest req;
      v1::VersionResponse resp;
      grpc::Status st = runtime_->Version(&ctx, req, &resp);
      if (st.ok()) {
        version_ = resp.runtime_version();
        break;
      }
      if (absl::Now() > deadline) {
        return absl::InternalError(
            absl::StrCat("containerd CRI not ready: ", st.error_message(), "\n", Log()));
      }
      absl::SleepFor(absl::Milliseconds(100));
    }
    return absl::OkStatus();
  }

  const std::string& version() const { return version_; }

  std::vector<pid_t> RuntimePids() override {
    std::vector<pid_t> pids;
    if (containerd_ && containerd_->running()) {
      pids.push_back(containerd_->pid());
    }
    for (pid_t shim : ShimPids()) {
      pids.push_back(shim);
    }
    return pids;
  }

  std::vector<pid_t> PausePids() override { return DescendantsNamed(ShimPids(), "pause"); }

  std::string Log() const override { return ReadTail(tmp_.Sub("containerd.log")); }

  // Shims of this containerd: containerd-shim-runc-v2 processes (reparented
  // away from containerd once started) whose -address is our socket.
  std::vector<pid_t> ShimPids() {
    std::vector<pid_t> pids;
    if (shim_binary_.empty()) {
      return pids;
    }
    for (pid_t pid : AllPids()) {
      if (Exe(pid) != shim_binary_) {
        continue;
      }
      std::vector<std::string> args = Cmdline(pid);
      for (size_t i = 0; i + 1 < args.size(); ++i) {
        if (args[i] == "-address" && args[i + 1] == socket_) {
          pids.push_back(pid);
          break;
        }
      }
    }
    return pids;
  }

  void Shutdown() override {
    if (containerd_ && containerd_->running()) {
      RemoveAllPods();
      containerd_->Signal(SIGTERM);
      if (containerd_->Wait(absl::Seconds(30)) < 0) {
        std::fprintf(stderr, "containerd did not exit on SIGTERM; killing it\n");
      }
      containerd_.reset();  // SIGKILL if still running
    }
    if (shim_binary_.empty()) {
      return;
    }
    // Anything a failed run left: shims, runc containers, mounts.
    for (pid_t shim : ShimPids()) {
      std::fprintf(stderr, "containerd shim %d left behind; killing it\n", shim);
      ::kill(shim, SIGKILL);
    }
    // The shim keeps runc's state in Root/<namespace>/<id>.
    for (const std::string& ns : ListDir(tmp_.Sub("runc"))) {
      const std::string root = tmp_.Sub("runc/" + ns);
      for (const std::string& id : ListDir(root)) {
        std::fprintf(stderr, "runc container %s left behind; deleting it\n", id.c_str());
        RunShell(absl::StrCat("/usr/sbin/runc --root ", root, " delete --force ", id,
                              " >/dev/null 2>&1"));
      }
    }
    UnmountUnder(tmp_.path());
    if (!had_run_containerd_) {
      // The shims' sockets live in /run/containerd/s; remove the dirs if empty.
      ::rmdir("/run/containerd/s");
      ::rmdir("/run/containerd");
    }
    shim_binary_.clear();
  }

 private:
  static void UnmountUnder(const std::string& dir) {
    std::string mountinfo = ReadFile("/proc/self/mountinfo").value_or("");
    std::vector<std::string> points;
    for (absl::string_view line : absl::StrSplit(mountinfo, '\n', absl::SkipEmpty())) {
      std::vector<absl::string_view> f = absl::StrSplit(line, ' ');
      if (f.size() > 4 && (f[4] == dir || absl::StartsWith(f[4], dir + "/"))) {
        points.emplace_back(f[4]);
      }
    }
    // Deepest (most recent) first.
    for (auto it = points.rbegin(); it != points.rend(); ++it) {
      if (::umount2(it->c_str(), MNT_DETACH) != 0) {
        std::perror(("umount " + *it).c_str());
      }
    }
  }

  std::string binary_;
  const TestCniNetwork& network_;
  std::string sandbox_image_;
  std::string registry_;
  TempDir tmp_;
  std::string socket_;
  std::string shim_binary_;
  std::string version_;
  bool had_run_containerd_ = true;
  std::unique_ptr<Daemon> containerd_;
};

// ---- the measured sequence ----

struct Result {
  std::string runtime;
  int pods = 0;
  std::vector<double> start_ms;
  std::vector<double> teardown_ms;
  std::vector<double> total_ms;
  double start_wall_s = 0;
  double teardown_wall_s = 0;
  Mem idle;
  Mem full;
  Mem after;
  Mem pause_full;
  int leftover_shims = 0;
};

grpc::Status Pull(Runtime& rt, const std::string& image) {
  grpc::ClientContext ctx;
  v1::PullImageRequest req;
  req.mutable_image()->set_image(image);
  v1::PullImageResponse resp;
  return rt.images()->PullImage(&ctx, req, &resp);
}

// Samples memory after a short settle, so lazily freed memory has gone.
Mem Measure(Runtime& rt) {
  absl::SleepFor(absl::Seconds(2));
  return SumMem(rt.RuntimePids());
}

absl::Status Run(Runtime& rt, const std::vector<std::string>& pulls, const std::string& image,
                 int n, const std::string& log_root, Result* r) {
  r->runtime = rt.name();
  for (const std::string& ref : pulls) {
    grpc::Status st = Pull(rt, ref);
    if (!st.ok()) {
      return absl::InternalError(
          absl::StrCat(rt.name(), ": PullImage ", ref, ": ", st.error_message(), "\n", rt.Log()));
    }
  }
  r->idle = Measure(rt);

  struct Pod {
    std::string pod_id;
    std::string container_id;
  };
  std::vector<Pod> pods;
  absl::Time phase = absl::Now();
  for (int i = 0; i < n; ++i) {
    v1::PodSandboxConfig config;
    std::string name = absl::StrCat("bench-", i);
    config.mutable_metadata()->set_name(name);
    config.mutable_metadata()->set_namespace_("bench");
    config.mutable_metadata()->set_uid(name + "-uid");
    config.set_hostname(name);
    config.set_log_directory(absl::StrCat(log_root, "/", rt.name(), "/", name));
    // kubelet's default: a PID namespace per container.
    config.mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_pid(
        v1::CONTAINER);

    absl::Time t0 = absl::Now();
    Pod pod;
    {
      grpc::ClientContext ctx;
      v1::RunPodSandboxRequest req;
      *req.mutable_config() = config;
      v1::RunPodSandboxResponse resp;
      grpc::Status st = rt.runtime()->RunPodSandbox(&ctx, req, &resp);
      if (!st.ok()) {
        return absl::InternalError(
            absl::StrCat(rt.name(), ": RunPodSandbox: ", st.error_message(), "\n", rt.Log()));
      }
      pod.pod_id = resp.pod_sandbox_id();
    }
    if (absl::GetFlag(FLAGS_sandboxes_only)) {
      r->start_ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - t0));
      pods.push_back(pod);
      continue;
    }
    {
      grpc::ClientContext ctx;
      v1::CreateContainerRequest req;
      req.set_pod_sandbox_id(pod.pod_id);
      v1::ContainerConfig* c = req.mutable_config();
      c->mutable_metadata()->set_name("sleep");
      c->mutable_image()->set_image(image);
      c->add_command("/bin/sleep");
      c->add_args("3600");
      c->set_log_path("sleep.log");
      c->mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_pid(
          v1::CONTAINER);
      *req.mutable_sandbox_config() = config;
      v1::CreateContainerResponse resp;
      grpc::Status st = rt.runtime()->CreateContainer(&ctx, req, &resp);
      if (!st.ok()) {
        return absl::InternalError(
            absl::StrCat(rt.name(), ": CreateContainer: ", st.error_message(), "\n", rt.Log()));
      }
      pod.container_id = resp.container_id();
    }
    {
      grpc::ClientContext ctx;
      v1::StartContainerRequest req;
      req.set_container_id(pod.container_id);
      v1::StartContainerResponse resp;
      grpc::Status st = rt.runtime()->StartContainer(&ctx, req, &resp);
      if (!st.ok()) {
        return absl::InternalError(
            absl::StrCat(rt.name(), ": StartContainer: ", st.error_message(), "\n", rt.Log()));
      }
    }
    r->start_ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - t0));
    pods.push_back(pod);
  }
  r->start_wall_s = absl::ToDoubleSeconds(absl::Now() - phase);

  // All N up: every pod ready, every container running.
  {
    grpc::ClientContext ctx;
    v1::ListPodSandboxRequest req;
    req.mutable_filter()->mutable_state()->set_state(v1::SANDBOX_READY);
    v1::ListPodSandboxResponse resp;
    grpc::Status st = rt.runtime()->ListPodSandbox(&ctx, req, &resp);
    if (!st.ok() || resp.items_size() != n) {
      return absl::InternalError(absl::StrCat(rt.name(), ": ", resp.items_size(), " of ", n,
                                              " pods ready ", st.error_message()));
    }
  }
  if (!absl::GetFlag(FLAGS_sandboxes_only)) {
    grpc::ClientContext ctx;
    v1::ListContainersRequest req;
    req.mutable_filter()->mutable_state()->set_state(v1::CONTAINER_RUNNING);
    v1::ListContainersResponse resp;
    grpc::Status st = rt.runtime()->ListContainers(&ctx, req, &resp);
    if (!st.ok() || resp.containers_size() != n) {
      return absl::InternalError(absl::StrCat(rt.name(), ": ", resp.containers_size(), " of ", n,
                                              " containers running ", st.error_message()));
    }
  }
  r->full = Measure(rt);
  r->pause_full = SumMem(rt.PausePids());

  phase = absl::Now();
  for (size_t i = 0; i < pods.size(); ++i) {
    const Pod& pod = pods[i];
    absl::Time t0 = absl::Now();
    grpc::Status st;
    if (!pod.container_id.empty()) {
      grpc::ClientContext ctx;
      v1::StopContainerRequest req;
      req.set_container_id(pod.container_id);
      req.set_timeout(0);
      v1::StopContainerResponse resp;
      st = rt.runtime()->StopContainer(&ctx, req, &resp);
    }
    if (st.ok() && !pod.container_id.empty()) {
      grpc::ClientContext ctx;
      v1::RemoveContainerRequest req;
      req.set_container_id(pod.container_id);
      v1::RemoveContainerResponse resp;
      st = rt.runtime()->RemoveContainer(&ctx, req, &resp);
    }
    if (st.ok()) {
      grpc::ClientContext ctx;
      v1::StopPodSandboxRequest req;
      req.set_pod_sandbox_id(pod.pod_id);
      v1::StopPodSandboxResponse resp;
      st = rt.runtime()->StopPodSandbox(&ctx, req, &resp);
    }
    if (st.ok()) {
      grpc::ClientContext ctx;
      v1::RemovePodSandboxRequest req;
      req.set_pod_sandbox_id(pod.pod_id);
      v1::RemovePodSandboxResponse resp;
      st = rt.runtime()->RemovePodSandbox(&ctx, req, &resp);
    }
    if (!st.ok()) {
      return absl::InternalError(
          absl::StrCat(rt.name(), ": teardown: ", st.error_message(), "\n", rt.Log()));
    }
    r->teardown_ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - t0));
    r->total_ms.push_back(r->start_ms[i] + r->teardown_ms.back());
  }
  r->teardown_wall_s = absl::ToDoubleSeconds(absl::Now() - phase);
  r->pods = n;
  // Every shim must be gone once its pod is removed.
  absl::Time deadline = absl::Now() + absl::Seconds(10);
  do {
    r->after = SumMem(rt.RuntimePids());
    r->leftover_shims = r->after.procs - 1;
    if (r->leftover_shims <= 0) {
      break;
    }
    absl::SleepFor(absl::Milliseconds(100));
  } while (absl::Now() < deadline);
  return absl::OkStatus();
}

// ---- report ----

double PerPod(int64_t full, int64_t idle, int n) {
  return n > 0 ? static_cast<double>(full - idle) / n : 0;
}

void PrintOne(const Result& r) {
  std::printf("\n%s: %d pods\n", r.runtime.c_str(), r.pods);
  const bool pods_only = absl::GetFlag(FLAGS_sandboxes_only);
  std::printf(pods_only
                  ? "  start    (RunPodSandbox)                     p50 %8.1f ms  p99 %8.1f ms\n"
                  : "  start    (RunPodSandbox..StartContainer)     p50 %8.1f ms  p99 %8.1f ms\n",
              Percentile(r.start_ms, 0.5), Percentile(r.start_ms, 0.99));
  std::printf(pods_only
                  ? "  teardown (StopPodSandbox..RemovePodSandbox)  p50 %8.1f ms  p99 %8.1f ms\n"
                  : "  teardown (StopContainer..RemovePodSandbox)   p50 %8.1f ms  p99 %8.1f ms\n",
              Percentile(r.teardown_ms, 0.5), Percentile(r.teardown_ms, 0.99));
  std::printf("  total    (start + teardown per pod)          p50 %8.1f ms  p99 %8.1f ms\n",
              Percentile(r.total_ms, 0.5), Percentile(r.total_ms, 0.99));
  std::printf("  wall: %d pods started in %.2f s, removed in %.2f s\n", r.pods, r.start_wall_s,
              r.teardown_wall_s);
  std::printf("  memory, daemon + shims   idle: RSS %7.1f MiB PSS %7.1f MiB (%d procs)\n",
              r.idle.rss_kb / 1024.0, r.idle.pss_kb / 1024.0, r.idle.procs);
  std::printf("                       %3d pods: RSS %7.1f MiB PSS %7.1f MiB (%d procs)\n", r.pods,
              r.full.rss_kb / 1024.0, r.full.pss_kb / 1024.0, r.full.procs);
  std::printf("                        per pod: RSS %7.1f KiB PSS %7.1f KiB\n",
              PerPod(r.full.rss_kb, r.idle.rss_kb, r.pods),
              PerPod(r.full.pss_kb, r.idle.pss_kb, r.pods));
  std::printf("  pause processes (not counted above): %d, RSS %.1f KiB PSS %.1f KiB per pod\n",
              r.pause_full.procs,
              r.pods > 0 ? static_cast<double>(r.pause_full.rss_kb) / r.pods : 0,
              r.pods > 0 ? static_cast<double>(r.pause_full.pss_kb) / r.pods : 0);
  std::printf("  after removing all pods: %d shim(s) left, daemon RSS %.1f MiB PSS %.1f MiB\n",
              std::max(r.leftover_shims, 0), r.after.rss_kb / 1024.0, r.after.pss_kb / 1024.0);
}

void PrintComparison(const Result& c, const Result& d) {
  auto row = [](const char* what, double crid, double other, const char* unit) {
    std::printf("  %-26s %10.1f %-4s %10.1f %-4s %8.2f\n", what, crid, unit, other, unit,
                crid > 0 ? other / crid : 0);
  };
  std::printf("\n%-28s %15s %15s %8s\n", "latency", "crid", "containerd", "cd/crid");
  row("start p50", Percentile(c.start_ms, 0.5), Percentile(d.start_ms, 0.5), "ms");
  row("start p99", Percentile(c.start_ms, 0.99), Percentile(d.start_ms, 0.99), "ms");
  row("teardown p50", Percentile(c.teardown_ms, 0.5), Percentile(d.teardown_ms, 0.5), "ms");
  row("teardown p99", Percentile(c.teardown_ms, 0.99), Percentile(d.teardown_ms, 0.99), "ms");
  row("total p50", Percentile(c.total_ms, 0.5), Percentile(d.total_ms, 0.5), "ms");
  row("total p99", Percentile(c.total_ms, 0.99), Percentile(d.total_ms, 0.99), "ms");
  row("wall, all pods up+down", c.start_wall_s + c.teardown_wall_s,
      d.start_wall_s + d.teardown_wall_s, "s");

  auto mem_row = [](const char* what, double crid, double other, const char* unit) {
    std::printf("  %-26s %10.1f %-4s %10.1f %-4s %8.2f\n", what, crid, unit, other, unit,
                other > 0 ? crid / other : 0);
  };
  std::printf("\n%-28s %15s %15s %8s\n", "memory (daemon + shims)", "crid", "containerd",
              "crid/cd");
  mem_row("idle RSS", c.idle.rss_kb / 1024.0, d.idle.rss_kb / 1024.0, "MiB");
  mem_row("idle PSS", c.idle.pss_kb / 1024.0, d.idle.pss_kb / 1024.0, "MiB");
  std::string full_rss = absl::StrCat(c.pods, " pods RSS");
  std::string full_pss = absl::StrCat(c.pods, " pods PSS");
  mem_row(full_rss.c_str(), c.full.rss_kb / 1024.0, d.full.rss_kb / 1024.0, "MiB");
  mem_row(full_pss.c_str(), c.full.pss_kb / 1024.0, d.full.pss_kb / 1024.0, "MiB");
  mem_row("per pod RSS", PerPod(c.full.rss_kb, c.idle.rss_kb, c.pods),
          PerPod(d.full.rss_kb, d.idle.rss_kb, d.pods), "KiB");
  mem_row("per pod PSS", PerPod(c.full.pss_kb, c.idle.pss_kb, c.pods),
          PerPod(d.full.pss_kb, d.idle.pss_kb, d.pods), "KiB");
  mem_row("per pod PSS incl. pause",
          PerPod(c.full.pss_kb + c.pause_full.pss_kb, c.idle.pss_kb, c.pods),
          PerPod(d.full.pss_kb + d.pause_full.pss_kb, d.idle.pss_kb, d.pods), "KiB");
  std::printf("\n  cd/crid > 1: crid is faster; crid/cd < 1: crid uses less memory per pod.\n");
}

std::string ContainerdVersion(const std::string& binary) {
  std::string out;
  FILE* p = ::popen((binary + " --version 2>/dev/null").c_str(), "r");
  if (p == nullptr) {
    return out;
  }
  char buf[256];
  while (std::fgets(buf, sizeof(buf), p) != nullptr) {
    out += buf;
  }
  ::pclose(p);
  return std::string(absl::StripAsciiWhitespace(out));
}

struct PullTimes {
  std::vector<double> cold;  // seconds
  std::vector<double> warm;
};

// Each round starts a fresh daemon (empty store), pulls `image` (cold), pulls
// it again (warm) and shuts the daemon down.
template <typename MakeRuntime>
absl::Status TimePulls(MakeRuntime make, const std::string& image, int rounds, PullTimes* times) {
  for (int i = 0; i < rounds; ++i) {
    std::unique_ptr<Runtime> rt = make();
    CRID_RETURN_IF_ERROR(rt->Start());
    for (std::vector<double>* into : {&times->cold, &times->warm}) {
      absl::Time start = absl::Now();
      grpc::Status st = Pull(*rt, image);
      if (!st.ok()) {
        std::string log = rt->Log();
        rt->Shutdown();
        return absl::InternalError(
            absl::StrCat(rt->name(), ": PullImage: ", st.error_message(), "\n", log));
      }
      into->push_back(absl::ToDoubleSeconds(absl::Now() - start));
    }
    rt->Shutdown();
  }
  return absl::OkStatus();
}

int PullMain(TestRegistry& registry, const TestCniNetwork& network,
             const std::string& containerd_binary) {
  const int layers = absl::GetFlag(FLAGS_pull_layers);
  const int mb = absl::GetFlag(FLAGS_pull_layer_mb);
  const int rounds = std::max(1, absl::GetFlag(FLAGS_pull_rounds));
  TestImageSpec spec;
  uint64_t total = 0;
  for (int i = 0; i < layers; ++i) {
    spec.layers.push_back({BenchLayerTar(i, size_t(mb) << 20), LayerCompression::kGzip});
    total += spec.layers.back().tar.size();
  }
  if (absl::Status st = registry.PushImage("bench/big", "1", spec).status(); !st.ok()) {
    std::fprintf(stderr, "push: %s\n", std::string(st.message()).c_str());
    return 1;
  }
  const std::string image = registry.host() + "/bench/big:1";
  std::printf("pull: %d gzip layers, %.1f MB uncompressed, %d fresh daemon(s) per runtime\n",
              layers, total / 1e6, rounds);
  PullTimes crid_times;
  absl::Status st =
      TimePulls([&] { return std::make_unique<CridRuntime>(network); }, image, rounds, &crid_times);
  if (!st.ok()) {
    std::fprintf(stderr, "crid: %s\n", std::string(st.message()).c_str());
    return 1;
  }
  auto row = [](const char* what, double crid, double cd) {
    if (cd > 0) {
      std::printf("  %-26s %9.3f s %11.3f s %8.2f\n", what, crid, cd, cd / crid);
    } else {
      std::printf("  %-26s %9.3f s\n", what, crid);
    }
  };
  PullTimes cd_times;
  bool compare = absl::GetFlag(FLAGS_containerd) && !containerd_binary.empty();
  if (compare) {
    st = TimePulls(
        [&] {
          return std::make_unique<ContainerdRuntime>(containerd_binary, network, image,
                                                     registry.host());
        },
        image, rounds, &cd_times);
    if (!st.ok()) {
      std::fprintf(stderr, "containerd: %s\n", std::string(st.message()).c_str());
      return 1;
    }
    std::printf("\ncrid vs %s\n\n", ContainerdVersion(containerd_binary).c_str());
  } else {
    std::printf("\ncontainerd: comparison SKIPPED (not installed, or --nocontainerd)\n\n");
  }
  std::printf("  %-26s %11s %13s %8s\n", "PullImage", "crid", "containerd", "cd/crid");
  auto p50 = [](const std::vector<double>& v) { return v.empty() ? 0.0 : Percentile(v, 50); };
  auto best = [](const std::vector<double>& v) {
    return v.empty() ? 0.0 : *std::min_element(v.begin(), v.end());
  };
  row("cold p50", p50(crid_times.cold), p50(cd_times.cold));
  row("cold best", best(crid_times.cold), best(cd_times.cold));
  row("warm p50", p50(crid_times.warm), p50(cd_times.warm));
  std::printf("  cold MB/s (uncompressed)   %9.1f %13.1f\n", total / 1e6 / p50(crid_times.cold),
              compare ? total / 1e6 / p50(cd_times.cold) : 0.0);
  std::printf("\n  cd/crid > 1: crid is faster.\n");
  return 0;
}

int Main() {
  const int n = absl::GetFlag(FLAGS_pods);
  if (n <= 0) {
    std::fprintf(stderr, "--pods must be positive\n");
    return 2;
  }
  if (::access("/usr/sbin/runc", X_OK) != 0) {
    std::fprintf(stderr, "runc is required (tools/install-deps.sh)\n");
    return 1;
  }
  TestRegistry registry;
  if (absl::Status st = registry.Start(); !st.ok()) {
    std::fprintf(stderr, "registry: %s\n", std::string(st.message()).c_str());
    return 1;
  }
  TestImageSpec busybox;
  busybox.layers.push_back({BusyboxLayer(), LayerCompression::kGzip});
  if (absl::Status st = registry.PushImage("bench/busybox", "latest", busybox).status(); !st.ok()) {
    std::fprintf(stderr, "push busybox: %s\n", std::string(st.message()).c_str());
    return 1;
  }
  const std::string image = registry.host() + "/bench/busybox:latest";

  TestCniNetwork network;
  if (absl::GetFlag(FLAGS_pull_layers) > 0) {
    std::string containerd_binary = absl::GetFlag(FLAGS_containerd_binary);
    return PullMain(registry, network,
                    containerd_binary.empty() ? FindInPath("containerd") : containerd_binary);
  }
  TempDir logs;
  std::printf(absl::GetFlag(FLAGS_sandboxes_only)
                  ? "container_bench: %d pods without containers, one at a time\n"
                  : "container_bench: %d pods, one `sleep 3600` busybox container each, one at a "
                    "time\n",
              n);
  std::printf("network: CNI bridge %s + host-local %s (no masquerade), registry %s\n",
              network.bridge().c_str(), network.subnet().c_str(), registry.host().c_str());

  Result crid_result;
  {
    CridRuntime crid(network);
    absl::Status st = crid.Start();
    if (st.ok()) {
      st = Run(crid, {image}, image, n, logs.path(), &crid_result);
    }
    crid.Shutdown();
    if (!st.ok()) {
      std::fprintf(stderr, "crid run failed: %s\n", std::string(st.message()).c_str());
      return 1;
    }
  }
  PrintOne(crid_result);

  std::string containerd_binary = absl::GetFlag(FLAGS_containerd_binary);
  if (containerd_binary.empty()) {
    containerd_binary = FindInPath("containerd");
  }
  if (!absl::GetFlag(FLAGS_containerd)) {
    std::printf("\ncontainerd: comparison skipped (--nocontainerd)\n");
    return 0;
  }
  if (containerd_binary.empty()) {
    std::printf(
        "\ncontainerd: comparison SKIPPED: no containerd in %s "
        "(Debian: apt-get install containerd)\n",
        kPath);
    return 0;
  }

  // containerd needs a sandbox image: crid-pause as /pause.
  std::string pause_binary = ReadFile(RunfilePath("pause/crid-pause")).value_or("");
  if (pause_binary.empty()) {
    std::fprintf(stderr, "cannot read crid-pause\n");
    return 1;
  }
  TestImageSpec pause;
  TarBuilder pause_tar;
  pause_tar.File("pause", pause_binary, 0755);
  pause.layers.push_back({pause_tar.Finish(), LayerCompression::kGzip});
  pause.entrypoint_json = R"(["/pause"])";
  pause.cmd_json = "[]";
  pause.env_json = "[]";
  if (absl::Status st = registry.PushImage("bench/pause", "latest", pause).status(); !st.ok()) {
    std::fprintf(stderr, "push pause: %s\n", std::string(st.message()).c_str());
    return 1;
  }
  const std::string pause_image = registry.host() + "/bench/pause:latest";

  Result cd_result;
  std::string version = ContainerdVersion(containerd_binary);
  {
    ContainerdRuntime containerd(containerd_binary, network, pause_image, registry.host());
    absl::Status st = containerd.Start();
    if (st.ok()) {
      st = Run(containerd, {pause_image, image}, image, n, logs.path(), &cd_result);
    }
    containerd.Shutdown();
    if (!st.ok()) {
      std::fprintf(stderr, "containerd run failed: %s\n", std::string(st.message()).c_str());
      std::printf("\ncontainerd: comparison FAILED (see above)\n");
      return 1;
    }
  }
  cd_result.runtime = "containerd";
  PrintOne(cd_result);
  std::printf("\ncrid vs %s (runc %s)\n", version.c_str(), "/usr/sbin/runc");
  PrintComparison(crid_result, cd_result);
  return 0;
}

}  // namespace
}  // namespace crid

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return crid::Main();
}
