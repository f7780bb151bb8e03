// The real crid-shim, launched through ShimClient, runs containers with the
// real runc: exit codes, CRI log lines, signals, waits, exec, log reopening,
// OOM kills, detachment from its launcher, shutdown and hostile input.
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "base/fs.h"
#include "base/temp_dir.h"
#include "base/unique_fd.h"
#include "container/oci_spec.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "shim/client.h"
#include "shim/frame.h"

namespace crid::shim {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
namespace v1 = ::runtime::v1;

constexpr char kRunc[] = "/usr/sbin/runc";
constexpr char kBusybox[] = "/bin/busybox";
constexpr char kCgroupParent[] = "/crid-shim-test";

std::string Runfile(const std::string& path) {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  const char* workspace = std::getenv("TEST_WORKSPACE");
  return absl::StrCat(srcdir != nullptr ? srcdir : ".", "/",
                      workspace != nullptr ? workspace : "crid", "/", path);
}

std::string ShimBinary() { return Runfile("shim/crid-shim"); }

// Fields of /proc/<pid>/stat after the command name: state, ppid, pgrp, session.
std::vector<std::string> ProcStat(pid_t pid) {
  std::string stat = ReadFile(absl::StrCat("/proc/", pid, "/stat")).value_or("");
  size_t paren = stat.rfind(')');
  if (paren == std::string::npos) {
    return {};
  }
  return absl::StrSplit(stat.substr(paren + 2), ' ');
}

bool Gone(pid_t pid) {
  std::vector<std::string> stat = ProcStat(pid);
  return stat.empty() || stat[0] == "Z";
}

// Polls `path` until it contains `text`.
bool WaitForFileText(const std::string& path, const std::string& text,
                     absl::Duration timeout = absl::Seconds(10)) {
  absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (absl::StrContains(ReadFile(path).value_or(""), text)) {
      return true;
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  return false;
}

struct Options {
  bool host_pid = false;
  bool tty = false;
  int64_t memory_limit = 0;
  // Execs only through `runc exec` (the shim's native exec path off).
  bool runtime_exec_only = false;
  // Further changes to the container's CRI config.
  std::function<void(v1::ContainerConfig*)> customize;
  // Changes to the generated config.json.
  std::function<void(nlohmann::json*)> edit_spec;
};

// True when `log` has a line "<RFC 3339 UTC time with nanoseconds> <rest>".
bool HasRecord(const std::string& log, absl::string_view rest) {
  for (absl::string_view line : absl::StrSplit(log, '\n')) {
    if (!absl::ConsumeSuffix(&line, rest) || !absl::ConsumeSuffix(&line, " ")) {
      continue;
    }
    absl::Time time;
    std::string error;
    // 2016-10-06T00:17:09.669794202Z
    if (line.size() == 30 && line[19] == '.' &&
        absl::ParseTime("%Y-%m-%dT%H:%M:%E*SZ", line, &time, &error) &&
        absl::Now() - time < absl::Minutes(5)) {
      return true;
    }
  }
  return false;
}

class ShimTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::access(kRunc, X_OK) != 0 || ::access(kBusybox, R_OK) != 0) {
      GTEST_SKIP() << "needs runc and busybox-static (tools/install-deps.sh installs them)";
    }
    std::string rootfs = tmp_.Sub("rootfs");
    ASSERT_TRUE(MakeDirs(rootfs + "/bin", 0755).ok());
    ASSERT_TRUE(MakeDirs(rootfs + "/etc", 0755).ok());
    ASSERT_TRUE(MakeDirs(rootfs + "/tmp", 01777).ok());
    {
      std::ifstream in(kBusybox, std::ios::binary);
      std::ofstream out(rootfs + "/bin/busybox", std::ios::binary);
      out << in.rdbuf();
    }
    ASSERT_EQ(::chmod((rootfs + "/bin/busybox").c_str(), 0755), 0);
    {
      std::ifstream in(Runfile("shim/syscall_probe"), std::ios::binary);
      std::ofstream out(rootfs + "/bin/syscall_probe", std::ios::binary);
      out << in.rdbuf();
    }
    ASSERT_EQ(::chmod((rootfs + "/bin/syscall_probe").c_str(), 0755), 0);
    for (const char* applet : {"sh", "sleep", "cat", "echo", "head", "tr", "true", "tty", "stty",
                               "grep", "env", "sort", "ls", "readlink"}) {
      ASSERT_EQ(::symlink("busybox", (rootfs + "/bin/" + applet).c_str()), 0);
    }
    std::ofstream(rootfs + "/etc/passwd") << "root:x:0:0:root:/root:/bin/sh\n";
    std::ofstream(rootfs + "/etc/group") << "root:x:0:\n";

    LaunchOptions options;
    options.binary = ShimBinary();
    options.pod_id = absl::StrCat("pod-", ::getpid());
    options.dir = tmp_.Sub("shim");
    absl::StatusOr<std::unique_ptr<ShimClient>> client = ShimClient::Launch(options);
    ASSERT_TRUE(client.ok()) << client.status();
    client_ = std::move(*client);
  }

  void TearDown() override {
    if (client_ != nullptr) {
      EXPECT_TRUE(client_->Shutdown().ok());
    }
    for (const char* controller : {"cpu", "cpuacct", "cpuset", "memory", "devices", "freezer",
                                   "blkio", "pids", "systemd", "unified"}) {
      std::string parent = absl::StrCat("/sys/fs/cgroup/", controller, kCgroupParent);
      for (const std::string& id : ids_) {
        ::rmdir(absl::StrCat(parent, "/crid-", id).c_str());
      }
      ::rmdir(parent.c_str());
    }
  }

  // Writes a bundle running `sh -c script` and returns the CreateRequest for it.
  CreateRequest Bundle(const std::string& name, const std::string& script, const Options& opts) {
    std::string id = absl::StrCat("shim-test-", ::getpid(), "-", name);
    ids_.push_back(id);
    v1::ContainerConfig config;
    config.mutable_metadata()->set_name(name);
    config.add_command("/bin/sh");
    config.add_command("-c");
    config.add_command(script);
    config.set_tty(opts.tty);
    auto* ns = config.mutable_linux()->mutable_security_context()->mutable_namespace_options();
    ns->set_network(v1::NODE);
    ns->set_ipc(v1::NODE);
    ns->set_pid(opts.host_pid ? v1::NODE : v1::CONTAINER);
    if (opts.memory_limit > 0) {
      config.mutable_linux()->mutable_resources()->set_memory_limit_in_bytes(opts.memory_limit);
    }
    SandboxSpecInfo sandbox;
    sandbox.cgroup_parent = kCgroupParent;
    if (opts.customize) {
      opts.customize(&config);
      if (config.linux().security_context().privileged()) {
        sandbox.linux.mutable_security_context()->set_privileged(true);
      }
    }
    SpecOptions spec_options;
    spec_options.container_id = id;
    spec_options.rootfs = tmp_.Sub("rootfs");
    absl::StatusOr<nlohmann::json> spec = BuildOciSpec(config, {}, sandbox, spec_options);
    EXPECT_TRUE(spec.ok()) << spec.status();
    if (spec.ok() && opts.edit_spec) {
      opts.edit_spec(&*spec);
    }
    std::string bundle = tmp_.Sub("bundle-" + name);
    EXPECT_TRUE(MakeDirs(bundle, 0700).ok());
    if (spec.ok()) {
      EXPECT_TRUE(WriteFileAtomic(bundle + "/config.json", spec->dump(), 0644).ok());
    }
    CreateRequest request;
    request.set_id(id);
    request.set_bundle(bundle);
    request.mutable_runtime()->set_name("runc");
    request.mutable_runtime()->set_binary(kRunc);
    request.mutable_runtime()->set_root(tmp_.Sub("runc"));
    request.mutable_runtime()->set_runtime_exec_only(opts.runtime_exec_only);
    request.set_log_path(tmp_.Sub("logs/" + name + ".log"));
    request.set_tty(opts.tty);
    return request;
  }

  // Creates and starts; returns the container's ID ("" on failure).
  std::string Run(const std::string& name, const std::string& script, const Options& opts = {}) {
    CreateRequest request = Bundle(name, script, opts);
    absl::StatusOr<pid_t> pid = client_->Create(request);
    EXPECT_TRUE(pid.ok()) << pid.status();
    if (!pid.ok()) {
      return "";
    }
    absl::Status st = client_->Start(request.id());
    EXPECT_TRUE(st.ok()) << st;
    return request.id();
  }

  TempDir tmp_;
  std::unique_ptr<ShimClient> client_;
  std::vector<std::string> ids_;
};

TEST_F(ShimTest, ExitCodesAndStateAfterExit) {
  std::string ok = Run("ok", "true");
  std::string three = Run("three", "exit 3");
  absl::StatusOr<ContainerState> s0 = client_->Wait(ok, absl::Seconds(20));
  absl::StatusOr<ContainerState> s3 = client_->Wait(three, absl::Seconds(20));
  ASSERT_TRUE(s0.ok()) << s0.status();
  ASSERT_TRUE(s3.ok()) << s3.status();
  EXPECT_EQ(s0->exit_code(), 0);
  EXPECT_EQ(s3->exit_code(), 3);
  EXPECT_EQ(s3->status(), ContainerState::EXITED);
  EXPECT_FALSE(s3->oom_killed());
  EXPECT_GT(s3->created_at_ns(), 0);
  EXPECT_GE(s3->started_at_ns(), s3->created_at_ns());
  EXPECT_GE(s3->finished_at_ns(), s3->started_at_ns());

  absl::StatusOr<ContainerState> state = client_->State(three);
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->status(), ContainerState::EXITED);
  absl::StatusOr<std::vector<ContainerState>> all = client_->List();
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_EQ(all->size(), 2u);

  // The exit survives in the shim's directory until Delete.
  std::string record = ReadFile(client_->dir() + "/exits/" + three + ".json").value_or("");
  EXPECT_THAT(record, HasSubstr("\"exit_code\":3"));
  absl::StatusOr<ContainerState> recorded = ShimClient::ReadExitRecord(client_->dir(), three);
  ASSERT_TRUE(recorded.ok()) << recorded.status();
  EXPECT_EQ(recorded->exit_code(), 3);
  EXPECT_EQ(recorded->status(), ContainerState::EXITED);
  EXPECT_EQ(recorded->finished_at_ns(), s3->finished_at_ns());
  EXPECT_EQ(recorded->pid(), s3->pid());
  ASSERT_TRUE(client_->Delete(three).ok());
  EXPECT_EQ(ShimClient::ReadExitRecord(client_->dir(), three).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(client_->State(three).status().code(), absl::StatusCode::kNotFound);
}

// The event stream: a snapshot of what the shim has, then each exit as it
// happens, with its final exit code; closing the stream leaves the shim be.
TEST_F(ShimTest, SubscribeStreamsASnapshotThenEachExit) {
  std::string before = Run("before", "exit 4");
  ASSERT_TRUE(client_->Wait(before, absl::Seconds(20)).ok());
  absl::StatusOr<UniqueFd> stream = client_->Subscribe();
  ASSERT_TRUE(stream.ok()) << stream.status();
  Response snapshot;
  ASSERT_TRUE(ReadFrame(stream->get(), &snapshot, absl::Now() + absl::Seconds(10)).ok());
  ASSERT_TRUE(snapshot.has_states());
  ASSERT_EQ(snapshot.states().containers_size(), 1);
  EXPECT_EQ(snapshot.states().containers(0).id(), before);
  EXPECT_EQ(snapshot.states().containers(0).exit_code(), 4);

  std::string later = Run("later", "sleep 0.2; exit 5");
  Response event;
  ASSERT_TRUE(ReadFrame(stream->get(), &event, absl::Now() + absl::Seconds(20)).ok());
  ASSERT_TRUE(event.has_event());
  EXPECT_EQ(event.event().state().id(), later);
  EXPECT_EQ(event.event().state().status(), ContainerState::EXITED);
  EXPECT_EQ(event.event().state().exit_code(), 5);

  // Read in small pieces, as crid's event loop may get them, FrameReader
  // puts the frames together again.
  std::string third = Run("third", "exit 6");
  std::string bytes;
  char buf[64];
  FrameReader reader;
  Response pieced;
  absl::Time deadline = absl::Now() + absl::Seconds(20);
  bool got = false;
  while (!got && absl::Now() < deadline) {
    ssize_t n = ::recv(stream->get(), buf, 7, MSG_DONTWAIT);  // small pieces on purpose
    if (n > 0) {
      reader.Append(buf, static_cast<size_t>(n));
      absl::StatusOr<bool> next = reader.Next(&pieced);
      ASSERT_TRUE(next.ok()) << next.status();
      got = *next;
    } else {
      absl::SleepFor(absl::Milliseconds(5));
    }
  }
  ASSERT_TRUE(got);
  EXPECT_EQ(pieced.event().state().id(), third);
  EXPECT_EQ(pieced.event().state().exit_code(), 6);

  stream->reset();
  EXPECT_TRUE(client_->Ping().ok());
}

TEST_F(ShimTest, LogHasCriRecordsForStdoutAndStderr) {
  std::string id = Run("log", "echo hello; echo oops >&2; printf partial");
  ASSERT_TRUE(client_->Wait(id, absl::Seconds(20)).ok());
  std::string log = ReadFile(tmp_.Sub("logs/log.log")).value_or("");
  EXPECT_TRUE(HasRecord(log, "stdout F hello")) << log;
  EXPECT_TRUE(HasRecord(log, "stderr F oops")) << log;
  // What is left without a newline when the stream ends is a partial record.
  EXPECT_TRUE(HasRecord(log, "stdout P partial")) << log;
}

TEST_F(ShimTest, TerminalOutputIsLoggedAsStdout) {
  Options opts;
  opts.tty = true;
  std::string id = Run("tty", "tty; echo from-terminal", opts);
  absl::StatusOr<ContainerState> state = client_->Wait(id, absl::Seconds(20));
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->exit_code(), 0);
  std::string log = ReadFile(tmp_.Sub("logs/tty.log")).value_or("");
  EXPECT_THAT(log, HasSubstr(" stdout F from-terminal\n"));
  EXPECT_THAT(log, HasSubstr(" stdout F /dev/pts/"));
}

TEST_F(ShimTest, StdinStaysOpenForStdinContainers) {
  // Without stdin, cat reads /dev/null and ends at once.
  std::string closed = Run("no-stdin", "exec cat");
  absl::StatusOr<ContainerState> state = client_->Wait(closed, absl::Seconds(20));
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->exit_code(), 0);
  // With stdin, the shim holds the pipe's other end, so cat keeps waiting.
  CreateRequest request = Bundle("stdin", "exec cat", {});
  request.set_stdin(true);
  request.set_stdin_once(true);
  ASSERT_TRUE(client_->Create(request).ok());
  ASSERT_TRUE(client_->Start(request.id()).ok());
  EXPECT_EQ(client_->Wait(request.id(), absl::Milliseconds(500)).status().code(),
            absl::StatusCode::kDeadlineExceeded);
  ASSERT_TRUE(client_->Kill(request.id(), SIGKILL).ok());
  state = client_->Wait(request.id(), absl::Seconds(20));
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->exit_code(), 137);
}

TEST_F(ShimTest, SigtermKillGives143) {
  Options opts;
  // Outside a PID namespace, so sleep is not a PID 1 that ignores SIGTERM.
  opts.host_pid = true;
  std::string id = Run("term", "exec sleep 1000", opts);
  ASSERT_TRUE(client_->Kill(id, SIGTERM).ok());
  absl::StatusOr<ContainerState> state = client_->Wait(id, absl::Seconds(20));
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->exit_code(), 143);
  // Killing an exited container is fine.
  EXPECT_TRUE(client_->Kill(id, SIGKILL).ok());
}

TEST_F(ShimTest, WaitTimesOutWhileRunning) {
  std::string id = Run("sleeper", "exec sleep 1000");
  absl::Time start = absl::Now();
  absl::StatusOr<ContainerState> state = client_->Wait(id, absl::Milliseconds(300));
  EXPECT_EQ(state.status().code(), absl::StatusCode::kDeadlineExceeded) << state.status();
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(300));
  absl::StatusOr<ContainerState> running = client_->State(id);
  ASSERT_TRUE(running.ok());
  EXPECT_EQ(running->status(), ContainerState::RUNNING);
  ASSERT_TRUE(client_->Kill(id, SIGKILL).ok());
  state = client_->Wait(id, absl::Seconds(20));
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->exit_code(), 137);
}

// runc's view of a container: `runc state`'s status, and whether its exec
// FIFO (which `runc start` removes) is still there.
std::string RuncStatus(const std::string& root, const std::string& id) {
  std::string out;
  std::string cmd = absl::StrCat(kRunc, " --root ", root, " state ", id, " 2>&1");
  if (FILE* p = ::popen(cmd.c_str(), "r"); p != nullptr) {
    char buf[4096];
    size_t n = 0;
    while ((n = ::fread(buf, 1, sizeof(buf), p)) > 0) {
      out.append(buf, n);
    }
    ::pclose(p);
  }
  nlohmann::json j = nlohmann::json::parse(out, nullptr, /*allow_exceptions=*/false);
  return j.is_object() ? j.value("status", "") : out;
}

TEST_F(ShimTest, NativeStartLeavesWhatRuncStartLeaves) {
  Options runc_opts;
  runc_opts.runtime_exec_only = true;
  const std::string root = tmp_.Sub("runc");
  for (const Options& opts : {Options{}, runc_opts}) {
    const std::string name = opts.runtime_exec_only ? "start-runc" : "start-native";
    CreateRequest request = Bundle(name, "echo started; exec sleep 1000", opts);
    absl::StatusOr<pid_t> pid = client_->Create(request);
    ASSERT_TRUE(pid.ok()) << pid.status();
    const std::string fifo = absl::StrCat(root, "/", request.id(), "/exec.fifo");
    EXPECT_EQ(RuncStatus(root, request.id()), "created");
    EXPECT_EQ(::access(fifo.c_str(), F_OK), 0);
    ASSERT_TRUE(client_->Start(request.id()).ok()) << name;
    EXPECT_EQ(RuncStatus(root, request.id()), "running") << name;
    EXPECT_NE(::access(fifo.c_str(), F_OK), 0) << name << ": the exec fifo is left";
    // The init has exec'd the container's process, which runs and writes.
    std::string log;
    for (int i = 0; i < 100 && !absl::StrContains(log, "started"); ++i) {
      absl::SleepFor(absl::Milliseconds(20));
      log = ReadFile(request.log_path()).value_or("");
    }
    EXPECT_TRUE(HasRecord(log, "stdout F started")) << name << ": " << log;
    absl::StatusOr<ContainerState> state = client_->State(request.id());
    ASSERT_TRUE(state.ok());
    EXPECT_EQ(state->status(), ContainerState::RUNNING) << name;
    EXPECT_FALSE(client_->Start(request.id()).ok()) << name << ": started twice";
    ASSERT_TRUE(client_->Kill(request.id(), SIGKILL).ok());
    state = client_->Wait(request.id(), absl::Seconds(20));
    ASSERT_TRUE(state.ok()) << state.status();
    EXPECT_EQ(state->exit_code(), 137);
  }
}

TEST_F(ShimTest, NativeStartOfADeadInitFails) {
  CreateRequest request = Bundle("start-dead", "exec sleep 1000", {});
  absl::StatusOr<pid_t> pid = client_->Create(request);
  ASSERT_TRUE(pid.ok()) << pid.status();
  // Killed while it waits to be started: whether the shim has reaped it
  // before Start comes or the start finds it dead, the start fails the same.
  ASSERT_EQ(::kill(*pid, SIGKILL), 0);
  absl::Status st = client_->Start(request.id());
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition) << st;
  absl::StatusOr<ContainerState> state = client_->Wait(request.id(), absl::Seconds(20));
  ASSERT_TRUE(state.ok()) << state.status();
  state = client_->State(request.id());
  ASSERT_TRUE(state.ok());
  EXPECT_EQ(state->status(), ContainerState::EXITED);
}

TEST_F(ShimTest, ExecCollectsOutputAndExitCode) {
  std::string id = Run("exec", "exec sleep 1000");
  ExecRequest request;
  request.set_id(id);
  for (const char* arg : {"sh", "-c", "echo out; echo err >&2; exit 5"}) {
    request.add_args(arg);
  }
  absl::StatusOr<ExecResponse> r = client_->Exec(request);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code(), 5);
  EXPECT_EQ(r->stdout(), "out\n");
  EXPECT_EQ(r->stderr(), "err\n");
  EXPECT_FALSE(r->timed_out());
  EXPECT_FALSE(r->truncated());

  ExecRequest with_stdin;
  with_stdin.set_id(id);
  with_stdin.add_args("cat");
  with_stdin.set_stdin("fed through stdin");
  r = client_->Exec(with_stdin);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->stdout(), "fed through stdin");
  EXPECT_EQ(r->exit_code(), 0);

  ExecRequest tty;
  tty.set_id(id);
  tty.set_tty(true);
  for (const char* arg : {"sh", "-c", "tty; echo on-terminal"}) {
    tty.add_args(arg);
  }
  r = client_->Exec(tty);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(r->stdout(), HasSubstr("/dev/pts/"));
  EXPECT_THAT(r->stdout(), HasSubstr("on-terminal"));

  ExecRequest missing;
  missing.set_id(id);
  missing.add_args("/no/such/binary");
  r = client_->Exec(missing);
  EXPECT_FALSE(r.ok() && r->exit_code() == 0);
}

// What an exec'd process is made of, as seen from inside: its credentials,
// capabilities and seccomp state, cwd, environment, umask, limits, OOM score
// and open descriptors (ls's own directory fd is 3).
constexpr char kProcessProbe[] =
    "grep -E '^(Uid|Gid|Groups|CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp|"
    "Seccomp_filters|SigBlk|SigIgn):' /proc/self/status; "
    "echo cwd=$(pwd); env | sort; echo umask=$(umask); "
    "echo nofile=$(ulimit -n)/$(ulimit -Hn); echo oom=$(cat /proc/self/oom_score_adj); "
    "echo fds=$(ls /proc/self/fd | sort | tr '\\n' ' ')";
// Its namespaces and cgroups next to the container init's (pid 1).
constexpr char kPlacementProbe[] =
    "for ns in cgroup ipc mnt net pid uts; do "
    "echo $ns $(readlink /proc/self/ns/$ns) $(readlink /proc/1/ns/$ns); done; "
    "if [ \"$(cat /proc/self/cgroup)\" = \"$(cat /proc/1/cgroup)\" ]; then echo cgroups same; "
    "else echo cgroups differ; cat /proc/self/cgroup /proc/1/cgroup; fi";

// The native exec path and `runc exec` make the same process: the same
// container config runs twice, one container with each path, and each exec
// sits in its own container's namespaces and cgroups.
class NativeExecTest : public ShimTest,
                       public ::testing::WithParamInterface<
                           std::pair<const char*, std::function<void(v1::ContainerConfig*)>>> {
 protected:
  absl::StatusOr<ExecResponse> Exec(const std::string& id, const std::string& script) {
    ExecRequest request;
    request.set_id(id);
    for (const std::string& arg : {std::string("sh"), std::string("-c"), script}) {
      request.add_args(arg);
    }
    return client_->Exec(request);
  }
};

TEST_P(NativeExecTest, MatchesRuncExec) {
  Options native_opts;
  native_opts.customize = GetParam().second;
  Options runc_opts = native_opts;
  runc_opts.runtime_exec_only = true;
  std::string name = GetParam().first;
  std::string native = Run(name + "-native", "exec sleep 1000", native_opts);
  std::string runc = Run(name + "-runc", "exec sleep 1000", runc_opts);
  ASSERT_FALSE(native.empty());
  ASSERT_FALSE(runc.empty());

  absl::StatusOr<ExecResponse> native_process = Exec(native, kProcessProbe);
  absl::StatusOr<ExecResponse> runc_process = Exec(runc, kProcessProbe);
  ASSERT_TRUE(native_process.ok()) << native_process.status();
  ASSERT_TRUE(runc_process.ok()) << runc_process.status();
  EXPECT_EQ(native_process->exit_code(), 0) << native_process->stderr();
  EXPECT_EQ(native_process->stdout(), runc_process->stdout());
  EXPECT_EQ(native_process->stderr(), runc_process->stderr());
  EXPECT_THAT(native_process->stdout(), HasSubstr("fds=0 1 2 3\n"));
  // The shim logs why a container's execs leave the native path.
  std::string shim_log = ReadFile(client_->dir() + "/shim.log").value_or("");
  EXPECT_THAT(shim_log, Not(HasSubstr(absl::StrCat("container ", native, ": execs run through"))));
  EXPECT_THAT(shim_log, HasSubstr(absl::StrCat("container ", runc, ": execs run through")));

  for (const std::string& id : {native, runc}) {
    absl::StatusOr<ExecResponse> placement = Exec(id, kPlacementProbe);
    ASSERT_TRUE(placement.ok()) << placement.status();
    EXPECT_THAT(placement->stdout(), HasSubstr("cgroups same")) << id;
    for (absl::string_view line : absl::StrSplit(placement->stdout(), '\n', absl::SkipEmpty())) {
      std::vector<std::string> fields = absl::StrSplit(line, ' ');
      if (fields.size() == 3) {
        EXPECT_EQ(fields[1], fields[2]) << id << ": " << line;
        EXPECT_THAT(fields[1], HasSubstr("[")) << id << ": " << line;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Containers, NativeExecTest,
    ::testing::Values(
        std::make_pair("default", std::function<void(v1::ContainerConfig*)>()),
        std::make_pair("user",
                       std::function<void(v1::ContainerConfig*)>([](v1::ContainerConfig* c) {
                         auto* sc = c->mutable_linux()->mutable_security_context();
                         sc->mutable_run_as_user()->set_value(1000);
                         sc->mutable_run_as_group()->set_value(2000);
                         sc->add_supplemental_groups(3000);
                         sc->add_supplemental_groups(3001);
                         sc->set_no_new_privs(true);
                         c->set_working_dir("/tmp");
                         c->add_envs()->set_key("PROBE");
                         c->mutable_envs(0)->set_value("a b");
                       })),
        std::make_pair("privileged",
                       std::function<void(v1::ContainerConfig*)>([](v1::ContainerConfig* c) {
                         c->mutable_linux()->mutable_security_context()->set_privileged(true);
                       })),
        std::make_pair(
            "seccomp", std::function<void(v1::ContainerConfig*)>([](v1::ContainerConfig* c) {
              c->mutable_linux()->mutable_security_context()->mutable_seccomp()->set_profile_type(
                  v1::SecurityProfile::RuntimeDefault);
            })),
        // With no_new_privs the filter is loaded last, after the user switch.
        std::make_pair("seccomp_nnp",
                       std::function<void(v1::ContainerConfig*)>([](v1::ContainerConfig* c) {
                         auto* sc = c->mutable_linux()->mutable_security_context();
                         sc->mutable_seccomp()->set_profile_type(
                             v1::SecurityProfile::RuntimeDefault);
                         sc->mutable_run_as_user()->set_value(1000);
                         sc->set_no_new_privs(true);
                       }))),
    [](const auto& info) { return std::string(info.param.first); });

// The container's seccomp filter answers the same natively as through runc
// exec: a syscall the profile denies, one it allows, and one newer than the
// profile (runc's stub answers ENOSYS, not the default action's EPERM). The
// container's init runs on untraced after its filter was copied.
TEST_F(ShimTest, NativeExecSeccompAnswersAsRunc) {
#ifdef CRID_SANITIZED
  GTEST_SKIP() << "the syscall probe must be static to run in the test container, and "
                  "sanitizer runtimes cannot be linked statically";
#endif
  Options native_opts;
  native_opts.customize = [](v1::ContainerConfig* c) {
    c->mutable_linux()->mutable_security_context()->mutable_seccomp()->set_profile_type(
        v1::SecurityProfile::RuntimeDefault);
  };
  // mkdir and mkdirat denied with EACCES instead of allowed.
  native_opts.edit_spec = [](nlohmann::json* spec) {
    nlohmann::json& seccomp = (*spec)["linux"]["seccomp"];
    for (nlohmann::json& rule : seccomp["syscalls"]) {
      nlohmann::json names = nlohmann::json::array();
      for (const nlohmann::json& name : rule["names"]) {
        if (name != "mkdir" && name != "mkdirat") {
          names.push_back(name);
        }
      }
      rule["names"] = names;
    }
    seccomp["syscalls"].push_back(
        {{"names", {"mkdir", "mkdirat"}}, {"action", "SCMP_ACT_ERRNO"}, {"errnoRet", EACCES}});
  };
  Options runc_opts = native_opts;
  runc_opts.runtime_exec_only = true;
  std::string native = Run("seccomp-native", "exec sleep 1000", native_opts);
  std::string runc = Run("seccomp-runc", "exec sleep 1000", runc_opts);
  ASSERT_FALSE(native.empty());
  ASSERT_FALSE(runc.empty());

  // x86_64 numbers: mkdir and mkdirat (83, 258: denied), getpid (39:
  // allowed), mseal (462: newer than every syscall of the profile; a raw
  // libseccomp filter would answer the default action's EPERM) and 1000 (no
  // syscall).
  ExecRequest request;
  for (const char* arg : {"syscall_probe", "83", "258", "39", "462", "1000"}) {
    request.add_args(arg);
  }
  request.set_id(native);
  absl::StatusOr<ExecResponse> from_native = client_->Exec(request);
  request.set_id(runc);
  absl::StatusOr<ExecResponse> from_runc = client_->Exec(request);
  ASSERT_TRUE(from_native.ok()) << from_native.status();
  ASSERT_TRUE(from_runc.ok()) << from_runc.status();
  // getpid's answer is a PID in the container's namespace, which depends on
  // how many threads runc's Go init made there; only that it is allowed is
  // compared (below).
  auto without_pid = [](const std::string& out) {
    std::vector<std::string> lines = absl::StrSplit(out, '\n');
    for (std::string& line : lines) {
      if (absl::StartsWith(line, "syscall 39: rc=") &&
          !absl::StartsWith(line, "syscall 39: rc=-")) {
        line = "syscall 39: rc=PID errno=0";
      }
    }
    return absl::StrJoin(lines, "\n");
  };
  EXPECT_EQ(without_pid(from_native->stdout()), without_pid(from_runc->stdout()));
  EXPECT_THAT(from_native->stdout(), HasSubstr(absl::StrCat("syscall 83: rc=-1 errno=", EACCES)));
  EXPECT_THAT(from_native->stdout(), HasSubstr(absl::StrCat("syscall 462: rc=-1 errno=", ENOSYS)));
  EXPECT_THAT(from_native->stdout(), HasSubstr("syscall 39: rc="));
  EXPECT_THAT(from_native->stdout(), Not(HasSubstr("syscall 39: rc=-1")));
  // The same through the shell's own mkdir.
  for (const std::string& id : {native, runc}) {
    ExecRequest mkdir;
    mkdir.set_id(id);
    for (const char* arg : {"sh", "-c", "mkdir /tmp/denied; echo rc=$?"}) {
      mkdir.add_args(arg);
    }
    absl::StatusOr<ExecResponse> r = client_->Exec(mkdir);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_THAT(r->stdout(), HasSubstr("rc=1")) << id;
    EXPECT_THAT(r->stderr(), HasSubstr("Permission denied")) << id;
  }
  std::string shim_log = ReadFile(client_->dir() + "/shim.log").value_or("");
  EXPECT_THAT(shim_log, Not(HasSubstr(absl::StrCat("container ", native, ": execs run through"))));

  // The init was stopped and traced only while its filter was copied.
  absl::StatusOr<ContainerState> state = client_->State(native);
  ASSERT_TRUE(state.ok()) << state.status();
  std::string status = ReadFile(absl::StrCat("/proc/", state->pid(), "/status")).value_or("");
  EXPECT_THAT(status, HasSubstr("TracerPid:\t0\n"));
  EXPECT_THAT(status, Not(HasSubstr("State:\tt")));
  EXPECT_THAT(status, Not(HasSubstr("State:\tT")));
  ExecRequest alive;
  alive.set_id(native);
  alive.add_args("true");
  absl::StatusOr<ExecResponse> again = client_->Exec(alive);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->exit_code(), 0);
  ASSERT_TRUE(client_->Kill(native, SIGKILL).ok());
  absl::StatusOr<ContainerState> exited = client_->Wait(native, absl::Seconds(10));
  ASSERT_TRUE(exited.ok()) << exited.status();
  EXPECT_EQ(exited->exit_code(), 137);
}

// Failures and the plumbing around the process, on the native path.
TEST_F(ShimTest, NativeExecFailuresAndReaping) {
  std::string native = Run("exec-native-errors", "exec sleep 1000");
  Options runc_opts;
  runc_opts.runtime_exec_only = true;
  std::string runc = Run("exec-runc-errors", "exec sleep 1000", runc_opts);
  ASSERT_FALSE(native.empty());
  ASSERT_FALSE(runc.empty());
  // A missing binary is the same INTERNAL error runc exec gives, both forms.
  for (const char* binary : {"no-such-binary", "/no/such/binary"}) {
    ExecRequest request;
    request.add_args(binary);
    request.set_id(native);
    absl::StatusOr<ExecResponse> from_native = client_->Exec(request);
    request.set_id(runc);
    absl::StatusOr<ExecResponse> from_runc = client_->Exec(request);
    ASSERT_FALSE(from_native.ok());
    ASSERT_FALSE(from_runc.ok());
    EXPECT_EQ(from_native.status().code(), from_runc.status().code());
    std::string native_message(from_native.status().message());
    std::string runc_message(from_runc.status().message());
    absl::StrReplaceAll({{native, "ID"}}, &native_message);
    absl::StrReplaceAll({{runc, "ID"}}, &runc_message);
    EXPECT_EQ(native_message, runc_message);
  }
  // Each exec'd process is reaped: the container holds only its init.
  for (int i = 0; i < 5; ++i) {
    ExecRequest request;
    request.set_id(native);
    request.add_args("true");
    absl::StatusOr<ExecResponse> r = client_->Exec(request);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->exit_code(), 0);
  }
  ExecRequest list;
  list.set_id(native);
  for (const char* arg : {"sh", "-c", "ls /proc | grep -E '^[0-9]+$' | sort -n | tr '\\n' ' '"}) {
    list.add_args(arg);
  }
  absl::StatusOr<ExecResponse> r = client_->Exec(list);
  ASSERT_TRUE(r.ok()) << r.status();
  // init, sh, ls, grep, sort, tr: nothing left from the earlier execs, not
  // even a zombie (it would keep its /proc entry).
  std::vector<std::string> pids = absl::StrSplit(r->stdout(), ' ', absl::SkipEmpty());
  EXPECT_LE(pids.size(), 6u) << r->stdout();

  // A stopped container takes no exec.
  ASSERT_TRUE(client_->Kill(native, SIGKILL).ok());
  ASSERT_TRUE(client_->Wait(native, absl::Seconds(10)).ok());
  ExecRequest late;
  late.set_id(native);
  late.add_args("true");
  EXPECT_EQ(client_->Exec(late).status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(ShimTest, ExecTimeoutKillsTheProcess) {
  std::string id = Run("exec-timeout", "exec sleep 1000");
  ExecRequest request;
  request.set_id(id);
  request.add_args("sleep");
  request.add_args("60");
  request.set_timeout_ms(500);
  absl::Time start = absl::Now();
  absl::StatusOr<ExecResponse> r = client_->Exec(request);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->timed_out());
  EXPECT_EQ(r->exit_code(), 137);
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
}

TEST_F(ShimTest, ExecOutputIsTruncatedAtTheLimit) {
  std::string id = Run("exec-big", "exec sleep 1000");
  ExecRequest request;
  request.set_id(id);
  for (const char* arg : {"sh", "-c", "head -c 300000 /dev/zero; echo done >&2"}) {
    request.add_args(arg);
  }
  request.set_max_output_bytes(1000);
  absl::StatusOr<ExecResponse> r = client_->Exec(request);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->stdout().size(), 1000u);
  EXPECT_EQ(r->stderr(), "done\n");
  EXPECT_TRUE(r->truncated());
  // The process was not blocked by the dropped output: it finished normally.
  EXPECT_EQ(r->exit_code(), 0);
}

TEST_F(ShimTest, ReopenLogWritesToTheNewFile) {
  std::string id = Run("rotate", "echo before; exec sleep 1000");
  std::string log = tmp_.Sub("logs/rotate.log");
  ASSERT_TRUE(WaitForFileText(log, "stdout F before"));
  ASSERT_EQ(::rename(log.c_str(), (log + ".1").c_str()), 0);
  ASSERT_TRUE(client_->ReopenLog(id).ok());
  // Write through the container's own stdout (its init's fd 1).
  ExecRequest request;
  request.set_id(id);
  for (const char* arg : {"sh", "-c", "echo after >/proc/1/fd/1"}) {
    request.add_args(arg);
  }
  absl::StatusOr<ExecResponse> r = client_->Exec(request);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->exit_code(), 0) << r->stderr();
  EXPECT_TRUE(WaitForFileText(log, "stdout F after"));
  std::string rotated = ReadFile(log + ".1").value_or("");
  EXPECT_THAT(rotated, HasSubstr("before"));
  EXPECT_THAT(rotated, Not(HasSubstr("after")));
}

TEST_F(ShimTest, OomKillIsReported) {
  Options opts;
  opts.memory_limit = 8 << 20;
  // The shell holds all 64 MB of the command's output in one variable.
  std::string id = Run("oom", "x=$(head -c 64000000 /dev/zero | tr '\\0' a); echo ${#x}", opts);
  absl::StatusOr<ContainerState> state = client_->Wait(id, absl::Seconds(60));
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_TRUE(state->oom_killed());
  EXPECT_EQ(state->exit_code(), 137);
}

TEST_F(ShimTest, UpdateChangesTheMemoryLimit) {
  std::string id = Run("update", "exec sleep 1000");
  ASSERT_TRUE(client_->Update(id, R"({"memory": {"limit": 33554432}})").ok());
  std::string limit = ReadFile(absl::StrCat("/sys/fs/cgroup/memory", kCgroupParent, "/crid-", id,
                                            "/memory.limit_in_bytes"))
                          .value_or("");
  EXPECT_EQ(limit, "33554432\n");
  EXPECT_EQ(client_->Update(id, "not json").code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(ShimTest, ShimIsDetachedAndFoundAgain) {
  pid_t pid = client_->pid();
  ASSERT_GT(pid, 0);
  std::vector<std::string> stat = ProcStat(pid);
  ASSERT_GE(stat.size(), 4u);
  pid_t ppid = 0;
  ASSERT_TRUE(absl::SimpleAtoi(stat[1], &ppid));
  EXPECT_NE(ppid, ::getpid()) << "the launcher is not the shim's parent";
  EXPECT_NE(stat[2], absl::StrCat(::getpgrp())) << "own process group";
  EXPECT_NE(stat[3], absl::StrCat(::getsid(0))) << "own session";
  EXPECT_EQ(ReadFile(client_->dir() + "/shim.pid").value_or(""), absl::StrCat(pid, "\n"));
  struct stat st = {};
  ASSERT_EQ(::stat((client_->dir() + "/shim.sock").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  LaunchOptions options;
  options.binary = ShimBinary();
  options.pod_id = "again";
  options.dir = client_->dir();
  absl::StatusOr<std::unique_ptr<ShimClient>> again = ShimClient::Launch(options);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ((*again)->pid(), pid);
}

// A shim binary that cannot be executed is reported at once, by name, not
// after the start timeout as a shim that never answered.
TEST(ShimLaunch, UnexecutableBinaryFailsAtOnceNamingIt) {
  TempDir tmp;
  LaunchOptions options;
  options.binary = tmp.Sub("no-such-crid-shim");
  options.pod_id = "missing";
  options.dir = tmp.Sub("shim");
  absl::Time start = absl::Now();
  absl::StatusOr<std::unique_ptr<ShimClient>> client = ShimClient::Launch(options);
  ASSERT_FALSE(client.ok());
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  EXPECT_EQ(client.status().code(), absl::StatusCode::kNotFound) << client.status();
  EXPECT_THAT(std::string(client.status().message()), HasSubstr(options.binary));
}

// A shim that exits before it listens is reported at once with the end of
// its log, not after the start timeout: the launcher waits on the shim's
// ready pipe, which closes when it exits.
TEST(ShimLaunch, ShimExitingBeforeItListensFailsAtOnceWithItsLog) {
  TempDir tmp;
  const std::string binary = tmp.Sub("failing-shim");
  // Called as: --pod-id ID --dir DIR --ready-fd N.
  std::ofstream(binary) << "#!/bin/sh\necho 'cannot serve: disk full' >>\"$4/shim.log\"\nexit 1\n";
  ASSERT_EQ(::chmod(binary.c_str(), 0755), 0);
  LaunchOptions options;
  options.binary = binary;
  options.pod_id = "failing";
  options.dir = tmp.Sub("shim");
  options.start_timeout = absl::Seconds(30);
  absl::Time start = absl::Now();
  absl::StatusOr<std::unique_ptr<ShimClient>> client = ShimClient::Launch(options);
  ASSERT_FALSE(client.ok());
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
  EXPECT_EQ(client.status().code(), absl::StatusCode::kUnavailable) << client.status();
  EXPECT_THAT(std::string(client.status().message()), HasSubstr("cannot serve: disk full"));
}

// The launcher connects as soon as the shim says it listens (its ready pipe),
// and a second launch finds the same shim without starting another.
TEST_F(ShimTest, LaunchConnectsOnceTheShimSaysItListens) {
  LaunchOptions options;
  options.binary = ShimBinary();
  options.pod_id = "ready";
  options.dir = tmp_.Sub("ready-shim");
  absl::StatusOr<std::unique_ptr<ShimClient>> client = ShimClient::Launch(options);
  ASSERT_TRUE(client.ok()) << client.status();
  std::string log = ReadFile(options.dir + "/shim.log").value_or("");
  EXPECT_THAT(log, HasSubstr("serving pod ready"));
  absl::StatusOr<std::unique_ptr<ShimClient>> again = ShimClient::Launch(options);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ((*again)->pid(), (*client)->pid());
  EXPECT_TRUE((*client)->Shutdown().ok());
}

TEST_F(ShimTest, ShimOutlivesItsKilledLauncher) {
  std::string dir = tmp_.Sub("orphan-shim");
  pid_t launcher = ::fork();
  ASSERT_GE(launcher, 0);
  if (launcher == 0) {
    LaunchOptions options;
    options.binary = ShimBinary();
    options.pod_id = "orphan";
    options.dir = dir;
    ::_exit(ShimClient::Launch(options).ok() ? 0 : 1);
  }
  absl::StatusOr<std::unique_ptr<ShimClient>> client;
  for (absl::Time deadline = absl::Now() + absl::Seconds(20); absl::Now() < deadline;) {
    client = ShimClient::Connect(dir);
    if (client.ok()) {
      break;
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  ASSERT_TRUE(client.ok()) << client.status();
  // As crid would be: killed without a chance to clean up.
  ::kill(launcher, SIGKILL);
  ::waitpid(launcher, nullptr, 0);
  absl::SleepFor(absl::Milliseconds(100));
  absl::StatusOr<PingResponse> ping = (*client)->Ping();
  ASSERT_TRUE(ping.ok()) << ping.status();
  EXPECT_EQ(ping->pid(), (*client)->pid());
  EXPECT_TRUE((*client)->Shutdown().ok());
  EXPECT_TRUE(Gone(ping->pid()));
}

TEST_F(ShimTest, IdleShimWithAContainerIsSmall) {
  std::string id = Run("idle", "exec sleep 1000");
  ASSERT_TRUE(client_->State(id).ok());
  absl::SleepFor(absl::Milliseconds(200));
  std::string status = ReadFile(absl::StrCat("/proc/", client_->pid(), "/status")).value_or("");
  int64_t rss_kb = -1;
  for (absl::string_view line : absl::StrSplit(status, '\n')) {
    if (absl::ConsumePrefix(&line, "VmRSS:")) {
      absl::ConsumeSuffix(&line, " kB");
      ASSERT_TRUE(absl::SimpleAtoi(line, &rss_kb)) << line;
    }
  }
  ASSERT_GT(rss_kb, 0) << status;
  std::cout << "crid-shim RSS with one idle container: " << rss_kb << " kB\n";
  RecordProperty("shim_rss_kb", static_cast<int>(rss_kb));
#if !defined(__SANITIZE_ADDRESS__)
  EXPECT_LT(rss_kb, 16 * 1024);
#endif
}

TEST_F(ShimTest, ShutdownDeletesContainersAndExits) {
  std::string id = Run("shutdown", "exec sleep 1000");
  absl::StatusOr<ContainerState> state = client_->State(id);
  ASSERT_TRUE(state.ok());
  pid_t container_pid = state->pid();
  pid_t shim_pid = client_->pid();
  ASSERT_TRUE(client_->Shutdown().ok());
  EXPECT_TRUE(Gone(shim_pid));
  EXPECT_TRUE(Gone(container_pid));
  EXPECT_NE(::access((client_->dir() + "/shim.sock").c_str(), F_OK), 0);
  EXPECT_NE(::access(tmp_.Sub("runc/" + id).c_str(), F_OK), 0) << "runc's record is gone";
  EXPECT_EQ(ShimClient::Connect(client_->dir()).status().code(), absl::StatusCode::kUnavailable);
  // A second shutdown of a shim that is gone is fine.
  EXPECT_TRUE(client_->Shutdown().ok());
}

TEST_F(ShimTest, UnknownContainers) {
  EXPECT_TRUE(client_->Delete("no-such-container").ok());
  EXPECT_EQ(client_->State("no-such-container").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(client_->Start("no-such-container").code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(client_->Kill("no-such-container", SIGKILL).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(client_->Wait("no-such-container", absl::Seconds(1)).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(client_->ReopenLog("no-such-container").code(), absl::StatusCode::kNotFound);
}

TEST_F(ShimTest, InvalidRequestsNameTheField) {
  CreateRequest request = Bundle("invalid", "true", {});
  request.set_id("../escape");
  absl::Status st = client_->Create(request).status();
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(st.message()), HasSubstr("id"));
  request = Bundle("invalid2", "true", {});
  request.mutable_runtime()->set_binary("runc");
  st = client_->Create(request).status();
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(st.message()), HasSubstr("runtime.binary"));
  EXPECT_EQ(client_->Kill("x", 0).code(), absl::StatusCode::kInvalidArgument);
  // A runtime failure carries the runtime's words and leaves nothing behind.
  request = Bundle("broken", "true", {});
  request.set_bundle(tmp_.Sub("no-such-bundle"));
  st = client_->Create(request).status();
  EXPECT_FALSE(st.ok());
  EXPECT_EQ(client_->State(request.id()).status().code(), absl::StatusCode::kNotFound);
  // The same ID can be created once the first is deleted.
  std::string id = Run("twice", "true");
  ASSERT_TRUE(client_->Wait(id, absl::Seconds(20)).ok());
  EXPECT_EQ(client_->Create(Bundle("twice", "true", {})).status().code(),
            absl::StatusCode::kAlreadyExists);
  ASSERT_TRUE(client_->Delete(id).ok());
  EXPECT_TRUE(client_->Create(Bundle("twice", "exit 4", {})).ok());
  ASSERT_TRUE(client_->Start(id).ok());
  absl::StatusOr<ContainerState> state = client_->Wait(id, absl::Seconds(20));
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->exit_code(), 4);
}

// Create with checkpoint_dir runs `runtime restore` instead of create. CRIU
// images that do not restore (here: none at all) fail the call with the
// runtime's words and leave nothing: the ID is free again.
TEST_F(ShimTest, RestoreFromACheckpointDirFailsCleanly) {
  CreateRequest request = Bundle("restore", "sleep 100", {});
  request.set_checkpoint_dir("relative/dir");
  absl::Status st = client_->Create(request).status();
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(st.message()), HasSubstr("checkpoint_dir"));

  std::string checkpoint = tmp_.Sub("checkpoint-restore");
  ASSERT_TRUE(MakeDirs(checkpoint + "/checkpoint", 0700).ok());
  request.set_checkpoint_dir(checkpoint);
  st = client_->Create(request).status();
  EXPECT_FALSE(st.ok());
  EXPECT_THAT(std::string(st.message()), HasSubstr("restore"));
  EXPECT_EQ(client_->State(request.id()).status().code(), absl::StatusCode::kNotFound);
  request.clear_checkpoint_dir();
  EXPECT_TRUE(client_->Create(request).ok()) << "the ID is free again";
}

// Sends raw bytes to the shim's socket and closes.
void SendRaw(const std::string& dir, const std::string& bytes) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  struct sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  std::string path = dir + "/shim.sock";
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  ASSERT_EQ(::connect(fd.get(), reinterpret_cast<struct sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(::send(fd.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(bytes.size()));
  ::shutdown(fd.get(), SHUT_WR);
  // Read whatever answer comes (or EOF), so the shim finished with us.
  char buf[256];
  while (::recv(fd.get(), buf, sizeof(buf), 0) > 0) {
  }
}

TEST_F(ShimTest, GarbageOnTheSocketDoesNotHurt) {
  pid_t pid = client_->pid();
  SendRaw(client_->dir(), std::string("\x00\x00\x00\x08garbage!", 12));
  SendRaw(client_->dir(), std::string("\x7f\xff\xff\xff", 4));  // 2 GiB announced
  SendRaw(client_->dir(), std::string("\x00\x00\x00\x00", 4));  // empty request
  SendRaw(client_->dir(), "xy");                                // half a header
  absl::StatusOr<PingResponse> ping = client_->Ping();
  ASSERT_TRUE(ping.ok()) << ping.status();
  EXPECT_EQ(ping->pid(), pid);
}

// A pipe whose ends the test hands to the shim as a session's stdio.
struct TestPipe {
  UniqueFd read_end;
  UniqueFd write_end;
  TestPipe() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) == 0) {
      read_end.reset(fds[0]);
      write_end.reset(fds[1]);
    }
  }
};

// Everything readable from `fd` until EOF.
std::string Drain(int fd) {
  std::string data;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof(buf))) > 0) {
    data.append(buf, static_cast<size_t>(n));
  }
  return data;
}

TEST_F(ShimTest, ExecStreamUsesThePassedDescriptors) {
  std::string id = Run("session", "sleep 1000", {});
  TestPipe in, out, err;
  int cancel[2];
  ASSERT_EQ(::pipe2(cancel, O_CLOEXEC), 0);
  UniqueFd cancel_read(cancel[0]), cancel_write(cancel[1]);
  ExecStreamRequest request;
  request.set_id(id);
  request.add_args("/bin/sh");
  request.add_args("-c");
  request.add_args("tr a-z A-Z; echo to-stderr >&2; exit 5");
  request.set_stdin(true);
  request.set_stdout(true);
  request.set_stderr(true);
  request.set_session_id("one");
  ASSERT_EQ(::write(in.write_end.get(), "piped\n", 6), 6);
  in.write_end.reset();
  absl::StatusOr<int> code = client_->ExecStream(
      request, {in.read_end.get(), out.write_end.get(), err.write_end.get()}, cancel_read.get());
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 5);
  out.write_end.reset();
  err.write_end.reset();
  EXPECT_EQ(Drain(out.read_end.get()), "PIPED\n");
  EXPECT_EQ(Drain(err.read_end.get()), "to-stderr\n");

  // The count of descriptors must match what the request asks for.
  TestPipe lone;
  request.set_stderr(false);
  request.set_stdin(false);
  absl::Status st = client_->ExecStream(request, {}, cancel_read.get()).status();
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << st;
  EXPECT_THAT(std::string(st.message()), HasSubstr("descriptors"));
  request.set_tty(true);
  request.set_stderr(true);
  st = client_->ExecStream(request, {lone.write_end.get(), lone.write_end.get()}, cancel_read.get())
           .status();
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(st.message()), HasSubstr("stderr"));
}

TEST_F(ShimTest, CancelledExecStreamKillsTheProcess) {
  std::string id = Run("cancel", "sleep 1000", {});
  TestPipe out;
  int cancel[2];
  ASSERT_EQ(::pipe2(cancel, O_CLOEXEC), 0);
  UniqueFd cancel_read(cancel[0]), cancel_write(cancel[1]);
  ExecStreamRequest request;
  request.set_id(id);
  request.add_args("/bin/sh");
  request.add_args("-c");
  request.add_args("echo started; exec sleep 4343");
  request.set_stdout(true);
  request.set_session_id("cancel");
  std::thread canceller([&] {
    char buf[16];
    (void)!::read(out.read_end.get(), buf, sizeof(buf));  // "started"
    cancel_write.reset();                                 // EOF: readable
  });
  absl::StatusOr<int> code = client_->ExecStream(request, {out.write_end.get()}, cancel_read.get());
  canceller.join();
  EXPECT_EQ(code.status().code(), absl::StatusCode::kCancelled);
  out.write_end.reset();
  // Once the shim killed it, nothing holds the pipe: EOF comes promptly.
  absl::Time start = absl::Now();
  Drain(out.read_end.get());
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
}

TEST_F(ShimTest, AttachFansOutAndDropsAClientThatFallsBehind) {
  CreateRequest create = Bundle("attach", "exec sh", {});
  create.set_stdin(true);
  create.set_stdin_once(true);
  ASSERT_TRUE(client_->Create(create).ok());
  ASSERT_TRUE(client_->Start(create.id()).ok());
  int cancel[2];
  ASSERT_EQ(::pipe2(cancel, O_CLOEXEC), 0);
  UniqueFd cancel_read(cancel[0]), cancel_write(cancel[1]);

  // A client that never reads: once its pipe is full it is dropped, and the
  // container goes on.
  TestPipe stuck;
  AttachRequest quiet;
  quiet.set_id(create.id());
  quiet.set_stdout(true);
  absl::Status stuck_result;
  std::thread stuck_attach(
      [&] { stuck_result = client_->Attach(quiet, {stuck.write_end.get()}, cancel_read.get()); });

  TestPipe in, out;
  AttachRequest typing;
  typing.set_id(create.id());
  typing.set_stdin(true);
  typing.set_stdout(true);
  absl::Status typing_result;
  std::thread typing_attach([&] {
    typing_result =
        client_->Attach(typing, {in.read_end.get(), out.write_end.get()}, cancel_read.get());
  });
  std::string seen;
  std::thread reader([&] {
    char buf[65536];
    while (!absl::StrContains(seen, "done-writing")) {
      ssize_t n = ::read(out.read_end.get(), buf, sizeof(buf));
      if (n <= 0) {
        break;
      }
      seen.append(buf, static_cast<size_t>(n));
    }
  });
  absl::SleepFor(absl::Milliseconds(300));
  // About 2 MiB of output: more than any pipe holds.
  std::string script = "head -c 2000000 /dev/zero | tr '\\0' x; echo; echo done-writing\n";
  ASSERT_EQ(::write(in.write_end.get(), script.data(), script.size()),
            static_cast<ssize_t>(script.size()));
  stuck_attach.join();
  EXPECT_TRUE(stuck_result.ok()) << stuck_result;
  // The reading client saw everything.
  reader.join();
  EXPECT_GE(seen.size(), 2000000u);
  EXPECT_THAT(seen, HasSubstr("done-writing"));
  // stdin_once: the first attach's stdin closing ends the shell.
  in.write_end.reset();
  absl::StatusOr<ContainerState> state = client_->Wait(create.id(), absl::Seconds(20));
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->exit_code(), 0);
  typing_attach.join();
  EXPECT_TRUE(typing_result.ok()) << typing_result;
  // Attaching to an exited container is refused.
  TestPipe late;
  EXPECT_EQ(client_->Attach(quiet, {late.write_end.get()}, cancel_read.get()).code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(ShimTest, ResizeReachesTheContainerTerminal) {
  Options opts;
  opts.tty = true;
  CreateRequest create = Bundle("resize", "sleep 1; exec sh -c 'stty size'", opts);
  ASSERT_TRUE(client_->Create(create).ok());
  ASSERT_TRUE(client_->Resize(create.id(), "", 93, 27).ok());
  ASSERT_TRUE(client_->Start(create.id()).ok());
  ASSERT_TRUE(client_->Wait(create.id(), absl::Seconds(20)).ok());
  EXPECT_TRUE(WaitForFileText(create.log_path(), "27 93"))
      << ReadFile(create.log_path()).value_or("");
  // No terminal, no resize; unknown containers are NOT_FOUND.
  std::string plain = Run("plain", "true", {});
  EXPECT_EQ(client_->Resize(plain, "", 80, 24).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(client_->Resize("nope", "", 80, 24).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(client_->Resize(plain, "../x", 80, 24).code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace crid::shim
