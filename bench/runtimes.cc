// crid and containerd as private daemons for the benchmarks (see runtimes.h).
#include "bench/runtimes.h"

#include <dirent.h>
#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "base/fs.h"
#include "base/unique_fd.h"
#include "image/test_layers.h"

extern char** environ;

// Set from Bazel's $(COMPILATION_MODE) in bench/BUILD.bazel.
#ifndef CRID_COMPILATION_MODE
#define CRID_COMPILATION_MODE "unknown"
#endif

namespace crid::bench {

namespace v1 = ::runtime::v1;

const char* CompilationMode() {
#ifdef __OPTIMIZE__
  return CRID_COMPILATION_MODE " (optimized)";
#else
  return CRID_COMPILATION_MODE " (not optimized)";
#endif
}

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

std::string FindInPath(const std::string& name) {
  for (absl::string_view dir : absl::StrSplit(kPath, ':')) {
    std::string p = absl::StrCat(dir, "/", name);
    if (::access(p.c_str(), X_OK) == 0) {
      return p;
    }
  }
  return "";
}

std::string ReadTail(const std::string& path, size_t max) {
  std::string text = ReadFile(path).value_or("");
  return text.size() > max ? text.substr(text.size() - max) : text;
}

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

// ---- /proc readings ----

namespace {

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

// The number in a "Name:   123 kB" line of /proc/PID/status.
int64_t StatusField(absl::string_view line) {
  line = absl::StripAsciiWhitespace(absl::StripSuffix(absl::StripAsciiWhitespace(line), "kB"));
  int64_t value = 0;
  return absl::SimpleAtoi(line, &value) ? value : 0;
}

}  // namespace

Mem SumMem(const std::vector<pid_t>& pids) {
  Mem mem;
  for (pid_t pid : pids) {
    AddMem(pid, &mem);
  }
  return mem;
}

ProcStatus ReadProcStatus(pid_t pid) {
  ProcStatus out;
  for (absl::string_view line :
       absl::StrSplit(ReadFile(absl::StrCat("/proc/", pid, "/status")).value_or(""), '\n')) {
    if (absl::ConsumePrefix(&line, "Threads:")) {
      out.threads = static_cast<int>(StatusField(line));
    } else if (absl::ConsumePrefix(&line, "VmRSS:")) {
      out.rss_kb = StatusField(line);
    } else if (absl::ConsumePrefix(&line, "VmSize:")) {
      out.vm_size_kb = StatusField(line);
    }
  }
  out.fds = static_cast<int>(ListDir(absl::StrCat("/proc/", pid, "/fd")).size());
  // "PID (comm) STATE ..." : utime and stime are fields 14 and 15, the 12th and
  // 13th after the command name.
  std::string stat = ReadFile(absl::StrCat("/proc/", pid, "/stat")).value_or("");
  size_t close = stat.rfind(')');
  if (close != std::string::npos && close + 2 < stat.size()) {
    std::vector<absl::string_view> fields =
        absl::StrSplit(absl::string_view(stat).substr(close + 2), ' ');
    int64_t utime = 0;
    int64_t stime = 0;
    if (fields.size() > 12 && absl::SimpleAtoi(fields[11], &utime) &&
        absl::SimpleAtoi(fields[12], &stime)) {
      out.cpu_s = static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
    }
  }
  return out;
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
        if (comm.empty() || Comm(c) == comm) {
          out.push_back(c);
        }
      }
    }
  }
  return out;
}

std::vector<std::string> MountsUnder(const std::string& dir) {
  std::string mountinfo = ReadFile("/proc/self/mountinfo").value_or("");
  std::vector<std::string> points;
  for (absl::string_view line : absl::StrSplit(mountinfo, '\n', absl::SkipEmpty())) {
    std::vector<absl::string_view> f = absl::StrSplit(line, ' ');
    if (f.size() > 4 && (f[4] == dir || absl::StartsWith(f[4], dir + "/"))) {
      points.emplace_back(f[4]);
    }
  }
  return points;
}

// ---- Daemon ----

Daemon::Daemon(std::string binary, std::vector<std::string> args)
    : binary_(std::move(binary)), args_(std::move(args)) {}

Daemon::~Daemon() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
}

bool Daemon::Start(const std::string& log_path) {
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

bool Daemon::WaitForSocket(const std::string& socket_path, absl::Duration timeout) {
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

int Daemon::Wait(absl::Duration timeout) {
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

void Daemon::Signal(int sig) {
  if (pid_ > 0) {
    ::kill(pid_, sig);
  }
}

// ---- Runtime ----

std::vector<pid_t> Runtime::RuntimePids() {
  std::vector<pid_t> pids;
  if (pid_t daemon = DaemonPid(); daemon > 0) {
    pids.push_back(daemon);
  }
  for (pid_t shim : ShimPids()) {
    pids.push_back(shim);
  }
  return pids;
}

void Runtime::Connect(const std::string& socket) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  channel_ =
      grpc::CreateCustomChannel("unix://" + socket, grpc::InsecureChannelCredentials(), args);
  runtime_ = v1::RuntimeService::NewStub(channel_);
  images_ = v1::ImageService::NewStub(channel_);
}

void Runtime::RemoveAllPods() {
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

// ---- crid ----

CridRuntime::CridRuntime(const TestCniNetwork& network, CridOptions options)
    : network_(network), options_(std::move(options)) {}

CridRuntime::~CridRuntime() { Shutdown(); }

absl::Status CridRuntime::Start() {
  std::ofstream(tmp_.Sub("crid.json")) << absl::StrCat(
      R"({"cni":{"confDir":")", network_.conf_dir(), R"(","binDirs":[")", kSystemCniBinDir,
      R"("]},"pod":{"pauseBinary":")", RunfilePath("pause/crid-pause"),
      R"("},"container":{"shimBinary":")", RunfilePath("shim/crid-shim"), R"("})",
      options_.extra_config.empty() ? "" : ",", options_.extra_config, "}");
  crid_ = std::make_unique<Daemon>(
      RunfilePath("crid"),
      std::vector<std::string>{"--config", tmp_.Sub("crid.json"), "--root", root_dir(), "--state",
                               state_dir(), "--listen", "unix://" + tmp_.Sub("crid.sock"),
                               "--log-level", options_.log_level});
  if (!crid_->Start(LogPath()) || !crid_->WaitForSocket(tmp_.Sub("crid.sock"), absl::Seconds(30))) {
    return absl::InternalError(absl::StrCat("crid did not start:\n", Log()));
  }
  Connect(tmp_.Sub("crid.sock"));
  return absl::OkStatus();
}

pid_t CridRuntime::DaemonPid() const { return crid_ && crid_->running() ? crid_->pid() : 0; }

std::vector<pid_t> CridRuntime::ShimPids() {
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

std::vector<pid_t> CridRuntime::PausePids() {
  return DescendantsNamed(RuntimePids(), "crid-pause");
}

std::map<std::string, int> CridRuntime::Census() {
  std::vector<pid_t> shims = ShimPids();
  return {
      {"shims", static_cast<int>(shims.size())},
      {"processes under shims", static_cast<int>(DescendantsNamed(shims, "").size())},
      {"container dirs (root/containers)",
       static_cast<int>(ListDir(root_dir() + "/containers").size())},
      {"runc states (state/runtime/runc)",
       static_cast<int>(ListDir(state_dir() + "/runtime/runc").size())},
      {"mounts under root and state",
       static_cast<int>(MountsUnder(root_dir()).size() + MountsUnder(state_dir()).size())},
  };
}

void CridRuntime::Shutdown() {
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

// ---- containerd ----

ContainerdRuntime::ContainerdRuntime(std::string binary, const TestCniNetwork& network,
                                     std::string sandbox_image, std::string registry,
                                     std::string runc)
    : binary_(std::move(binary)),
      network_(network),
      sandbox_image_(std::move(sandbox_image)),
      registry_(std::move(registry)),
      runc_(std::move(runc)) {}

ContainerdRuntime::~ContainerdRuntime() { Shutdown(); }

absl::Status ContainerdRuntime::Start() {
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
                      "  restrict_oom_score_adj = true\n",              //
                      cri, ".containerd]\n",                            //
                      "  snapshotter = \"overlayfs\"\n",                //
                      "  default_runtime_name = \"runc\"\n",            //
                      cri, ".containerd.runtimes.runc]\n",              //
                      "  runtime_type = \"io.containerd.runc.v2\"\n",   //
                      cri, ".containerd.runtimes.runc.options]\n",      //
                      "  SystemdCgroup = false\n",                      //
                      "  BinaryName = \"", runc_, "\"\n",               //
                      "  Root = \"", tmp_.Sub("runc"), "\"\n",          //
                      cri, ".cni]\n",                                   //
                      "  bin_dir = \"", kSystemCniBinDir, "\"\n",       //
                      "  conf_dir = \"", network_.conf_dir(), "\"\n",   //
                      "  max_conf_num = 1\n",                           //
                      cri, ".registry.mirrors.\"", registry_, "\"]\n",  //
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

pid_t ContainerdRuntime::DaemonPid() const {
  return containerd_ && containerd_->running() ? containerd_->pid() : 0;
}

std::vector<pid_t> ContainerdRuntime::PausePids() { return DescendantsNamed(ShimPids(), "pause"); }

std::vector<pid_t> ContainerdRuntime::ShimPids() {
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

std::map<std::string, int> ContainerdRuntime::Census() {
  std::vector<pid_t> shims = ShimPids();
  return {
      {"shims", static_cast<int>(shims.size())},
      {"processes under shims", static_cast<int>(DescendantsNamed(shims, "").size())},
      {"task dirs (state/io.containerd.runtime.v2.task)",
       static_cast<int>(ListDir(tmp_.Sub("state/io.containerd.runtime.v2.task/k8s.io")).size())},
      {"runc states (runc/k8s.io)", static_cast<int>(ListDir(tmp_.Sub("runc/k8s.io")).size())},
      {"mounts under root and state", static_cast<int>(MountsUnder(tmp_.path()).size())},
  };
}

void ContainerdRuntime::Shutdown() {
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
      RunShell(absl::StrCat(runc_, " --root ", root, " delete --force ", id, " >/dev/null 2>&1"));
    }
  }
  std::vector<std::string> points = MountsUnder(tmp_.path());
  // Deepest (most recent) first.
  for (auto it = points.rbegin(); it != points.rend(); ++it) {
    if (::umount2(it->c_str(), MNT_DETACH) != 0) {
      std::perror(("umount " + *it).c_str());
    }
  }
  if (!had_run_containerd_) {
    // The shims' sockets live in /run/containerd/s; remove the dirs if empty.
    ::rmdir("/run/containerd/s");
    ::rmdir("/run/containerd");
  }
  shim_binary_.clear();
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

// ---- images ----

namespace {

// Busybox as bin/busybox with hard links for the applets the benchmarks run.
// The links' headers carry the target's mode, as GNU tar writes them:
// containerd applies a hard link header's mode to the shared inode.
std::string BusyboxLayer() {
  TarBuilder tar;
  tar.Dir("bin").File("bin/busybox", ReadFile("/bin/busybox").value_or(""), 0755);
  for (const char* tool : {"sh", "sleep", "true"}) {
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

}  // namespace

absl::StatusOr<BenchImages> PushBenchImages(TestRegistry& registry) {
  BenchImages images;
  TestImageSpec busybox;
  busybox.layers.push_back({BusyboxLayer(), LayerCompression::kGzip});
  if (absl::Status st = registry.PushImage("bench/busybox", "latest", busybox).status(); !st.ok()) {
    return absl::InternalError(absl::StrCat("push busybox: ", st.message()));
  }
  images.busybox = registry.host() + "/bench/busybox:latest";

  // containerd needs a sandbox image: crid-pause as /pause.
  std::string pause_binary = ReadFile(RunfilePath("pause/crid-pause")).value_or("");
  if (pause_binary.empty()) {
    return absl::NotFoundError("cannot read crid-pause");
  }
  TestImageSpec pause;
  TarBuilder pause_tar;
  pause_tar.File("pause", pause_binary, 0755);
  pause.layers.push_back({pause_tar.Finish(), LayerCompression::kGzip});
  pause.entrypoint_json = R"(["/pause"])";
  pause.cmd_json = "[]";
  pause.env_json = "[]";
  if (absl::Status st = registry.PushImage("bench/pause", "latest", pause).status(); !st.ok()) {
    return absl::InternalError(absl::StrCat("push pause: ", st.message()));
  }
  images.pause = registry.host() + "/bench/pause:latest";
  return images;
}

}  // namespace crid::bench
