// Runs inside the systemd fixture's namespaces (started by
// systemd_cgroup_test): crid's systemd cgroup driver against a real systemd,
// with slices created the way kubelet creates them.
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "base/fs.h"
#include "base/temp_dir.h"
#include "cgroups/manager.h"
#include "cgroups/systemd_bus.h"
#include "gtest/gtest.h"
#include "proto/cri_api.grpc.pb.h"
#include "tests/crid_process.h"

namespace crid {
namespace {

constexpr char kPodUid[] = "8f3c1a2e-55b0-4f0d-9d7e-1c2b3a4d5e6f";
constexpr char kPodSlicePath[] =
    "/kubepods.slice/kubepods-burstable.slice/"
    "kubepods-burstable-pod8f3c1a2e_55b0_4f0d_9d7e_1c2b3a4d5e6f.slice";

bool IsDir(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::string Read(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFile(path);
  return text.ok() ? std::string(absl::StripAsciiWhitespace(*text)) : "<" + path + " missing>";
}

pid_t StartSleep() {
  pid_t pid = ::fork();
  if (pid == 0) {
    ::execl("/bin/sleep", "sleep", "1000", nullptr);
    ::_exit(127);
  }
  return pid;
}

// Reaps a child the scope stop killed (or kills it).
int Reap(pid_t pid) {
  int status = 0;
  if (::waitpid(pid, &status, WNOHANG) == 0) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
  }
  return status;
}

// Runs a command, returns its exit code and (if `out`) its stdout.
int RunCommand(const std::string& command, std::string* out = nullptr) {
  FILE* p = ::popen(command.c_str(), "r");
  if (p == nullptr) {
    return -1;
  }
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), p)) > 0) {
    if (out != nullptr) {
      out->append(buf, n);
    }
  }
  int status = ::pclose(p);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

class SystemdDriver : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(::access("/run/systemd/private", F_OK), 0)
        << "not inside the systemd fixture's mount namespace";
    auto bus = SystemdBus::Connect(SystemdBus::kPrivateAddress);
    ASSERT_TRUE(bus.ok()) << bus.status();
    bus_ = std::move(*bus);
    auto layout = CgroupLayout::Detect();
    ASSERT_TRUE(layout.ok()) << layout.status();
    layout_ = *layout;
    CgroupManagerOptions options;
    options.driver = CgroupDriver::kSystemd;
    options.layout = layout_;
    options.systemd_bus_address = SystemdBus::kPrivateAddress;
    auto m = NewCgroupManager(options);
    ASSERT_TRUE(m.ok()) << m.status();
    manager_ = std::move(*m);
    // kubelet creates the QoS and pod slices as transient units, outermost first.
    std::string pod_slice = absl::StrCat("kubepods-burstable-pod",
                                         absl::StrReplaceAll(kPodUid, {{"-", "_"}}), ".slice");
    for (const std::string& slice :
         {std::string("kubepods.slice"), std::string("kubepods-burstable.slice"), pod_slice}) {
      absl::Status st = bus_->StartTransientUnit(
          slice, "replace",
          {UnitProperty::String("Description", "test " + slice),
           UnitProperty::Bool("MemoryAccounting", true), UnitProperty::Bool("CPUAccounting", true),
           UnitProperty::Bool("TasksAccounting", true)},
          absl::Seconds(30));
      ASSERT_TRUE(st.ok() || absl::IsAlreadyExists(st)) << st;
    }
    auto group = bus_->ControlGroup(pod_slice);
    ASSERT_TRUE(group.ok()) << group.status();
    ASSERT_EQ(*group, kPodSlicePath);
  }

  std::string V1Dir(const char* controller, const std::string& path) {
    return layout_.controllers.at(controller) + path;
  }

  std::unique_ptr<SystemdBus> bus_;
  CgroupLayout layout_;
  std::unique_ptr<CgroupManager> manager_;
};

TEST_F(SystemdDriver, OciPathsForKubeletsSlice) {
  EXPECT_EQ(*manager_->ContainerCgroupsPath(kPodSlicePath, "c1"),
            "kubepods-burstable-pod8f3c1a2e_55b0_4f0d_9d7e_1c2b3a4d5e6f.slice:crid:c1");
  EXPECT_EQ(*manager_->ContainerCgroupDir(kPodSlicePath, "c1"),
            absl::StrCat(kPodSlicePath, "/crid-c1.scope"));
  EXPECT_EQ(*manager_->PodCgroupDir(kPodSlicePath), kPodSlicePath);
  EXPECT_EQ(
      *manager_->PodCgroupDir("kubepods-burstable-pod8f3c1a2e_55b0_4f0d_9d7e_1c2b3a4d5e6f.slice"),
      kPodSlicePath);
  EXPECT_EQ(manager_->ContainerCgroupsPath("/kubepods/burstable/pod1", "c1").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(SystemdDriver, PlaceProcessMakesAScopeWithLimitsAndRemoveStopsIt) {
  pid_t pid = StartSleep();
  ASSERT_GT(pid, 0);
  CgroupResources r;
  r.memory_limit_bytes = 64 << 20;
  r.cpu_shares = 512;
  r.cpu_quota_us = 20000;
  r.cpu_period_us = 100000;
  r.pids_limit = 30;
  absl::StatusOr<std::string> path = manager_->PlaceProcess("shim-pod1", kPodSlicePath, pid, r);
  ASSERT_TRUE(path.ok()) << path.status();
  EXPECT_EQ(*path, absl::StrCat(kPodSlicePath, "/crid-shim-pod1.scope"));
  EXPECT_EQ(*bus_->ActiveState("crid-shim-pod1.scope"), "active");
  EXPECT_EQ(*bus_->ControlGroup("crid-shim-pod1.scope"), *path);
  if (layout_.unified) {
    std::string dir = layout_.unified_mount + *path;
    EXPECT_EQ(Read(dir + "/memory.max"), "67108864");
    EXPECT_EQ(Read(dir + "/cpu.weight"), "20");
    EXPECT_EQ(Read(dir + "/pids.max"), "30");
    EXPECT_TRUE(absl::StrContains(Read(dir + "/cgroup.procs"), absl::StrCat(pid)));
  } else {
    EXPECT_EQ(Read(V1Dir("memory", *path) + "/memory.limit_in_bytes"), "67108864");
    EXPECT_EQ(Read(V1Dir("cpu", *path) + "/cpu.shares"), "512");
    EXPECT_EQ(Read(V1Dir("cpu", *path) + "/cpu.cfs_quota_us"), "20000");
    EXPECT_EQ(Read(V1Dir("pids", *path) + "/pids.max"), "30");
    EXPECT_TRUE(
        absl::StrContains(Read(V1Dir("memory", *path) + "/cgroup.procs"), absl::StrCat(pid)));
    EXPECT_TRUE(absl::StrContains(Read("/sys/fs/cgroup/systemd" + *path + "/cgroup.procs"),
                                  absl::StrCat(pid)));
  }
  absl::StatusOr<CgroupUsage> usage = manager_->Stats(*path);
  ASSERT_TRUE(usage.ok()) << usage.status();
  EXPECT_EQ(usage->stats.memory_limit_bytes, 64u << 20);
  EXPECT_GE(usage->stats.pids_current, 1u);
  // The pod slice's usage counts its scopes (PodSandboxStats).
  absl::StatusOr<CgroupUsage> pod = manager_->Stats(*manager_->PodCgroupDir(kPodSlicePath));
  ASSERT_TRUE(pod.ok()) << pod.status();
  EXPECT_GE(pod->stats.pids_current, usage->stats.pids_current);

  // Placing a second process under the same name (crid restarted) joins it.
  pid_t second = StartSleep();
  absl::StatusOr<std::string> again = manager_->PlaceProcess("shim-pod1", kPodSlicePath, second, r);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(*again, *path);
  std::string procs = Read((layout_.unified ? layout_.unified_mount : V1Dir("memory", "")) + *path +
                           "/cgroup.procs");
  EXPECT_TRUE(absl::StrContains(procs, absl::StrCat(second))) << procs;

  absl::StatusOr<std::vector<std::string>> listed = manager_->ListCgroups(kPodSlicePath);
  ASSERT_TRUE(listed.ok()) << listed.status();
  EXPECT_EQ(*listed, std::vector<std::string>{"shim-pod1"});

  ASSERT_TRUE(manager_->RemoveCgroup("shim-pod1", kPodSlicePath).ok());
  EXPECT_TRUE(manager_->ListCgroups(kPodSlicePath)->empty());
  absl::StatusOr<std::string> state = bus_->ActiveState("crid-shim-pod1.scope");
  EXPECT_TRUE(absl::IsNotFound(state.status()) || *state == "inactive")
      << (state.ok() ? *state : state.status().ToString());
  if (layout_.unified) {
    EXPECT_FALSE(IsDir(layout_.unified_mount + *path));
  } else {
    for (const char* c : {"memory", "cpu", "cpuacct", "pids"}) {
      EXPECT_FALSE(IsDir(V1Dir(c, *path))) << c << " cgroup left";
    }
    EXPECT_FALSE(IsDir("/sys/fs/cgroup/systemd" + *path));
  }
  // Stopping the scope ended its processes.
  int status = Reap(pid);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM) << status;
  Reap(second);
  // Removing what is gone is fine.
  EXPECT_TRUE(manager_->RemoveCgroup("shim-pod1", kPodSlicePath).ok());
}

TEST_F(SystemdDriver, BadParentAndFailedStartLeaveNoUnit) {
  pid_t pid = StartSleep();
  absl::StatusOr<std::string> path =
      manager_->PlaceProcess("bad", "/kubepods/burstable/pod1", pid, CgroupResources());
  EXPECT_EQ(path.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(path.status().message(), "linux.cgroup_parent")) << path.status();
  // A pid that does not exist: systemd refuses the unit, nothing stays loaded.
  path = manager_->PlaceProcess("nopid", kPodSlicePath, 999999, CgroupResources());
  EXPECT_FALSE(path.ok());
  absl::StatusOr<std::string> state = bus_->ActiveState("crid-nopid.scope");
  EXPECT_TRUE(absl::IsNotFound(state.status()) || *state == "inactive")
      << (state.ok() ? *state : state.status().ToString());
  Reap(pid);
}

// runc with --systemd-cgroup takes the cgroupsPath crid gives it and makes the
// container's scope where ContainerCgroupDir says it is.
TEST_F(SystemdDriver, RuncPutsTheContainerWhereTheManagerSays) {
  ASSERT_EQ(::access("/usr/sbin/runc", X_OK), 0) << "runc is not installed";
  ASSERT_EQ(::access("/bin/busybox", R_OK), 0) << "busybox-static is not installed";
  TempDir tmp;
  std::string rootfs = tmp.Sub("bundle/rootfs");
  for (const char* d : {"/bin", "/proc", "/dev"}) {
    ASSERT_TRUE(MakeDirs(rootfs + d, 0755).ok());
  }
  ASSERT_EQ(RunCommand(absl::StrCat("cp /bin/busybox ", rootfs, "/bin/busybox")), 0);
  ASSERT_EQ(::symlink("busybox", (rootfs + "/bin/sleep").c_str()), 0);
  std::string id = absl::StrCat("runc-", ::getpid());
  absl::StatusOr<std::string> cgroups_path = manager_->ContainerCgroupsPath(kPodSlicePath, id);
  ASSERT_TRUE(cgroups_path.ok()) << cgroups_path.status();
  absl::StatusOr<std::string> dir = manager_->ContainerCgroupDir(kPodSlicePath, id);
  ASSERT_TRUE(dir.ok()) << dir.status();
  std::string config = absl::StrCat(R"({
  "ociVersion": "1.0.2",
  "process": {"terminal": false, "user": {"uid": 0, "gid": 0},
              "args": ["/bin/sleep", "1000"], "env": ["PATH=/bin"], "cwd": "/"},
  "root": {"path": "rootfs", "readonly": true},
  "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"},
             {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
              "options": ["nosuid", "mode=755"]}],
  "linux": {
    "namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "ipc"}, {"type": "uts"}],
    "cgroupsPath": ")",
                                    *cgroups_path, R"(",
    "resources": {"memory": {"limit": 33554432}, "cpu": {"shares": 256}}
  }
})");
  ASSERT_TRUE(WriteFileAtomic(tmp.Sub("bundle/config.json"), config, 0644).ok());
  std::string runc =
      absl::StrCat("/usr/sbin/runc --root ", tmp.Sub("runc-root"), " --systemd-cgroup ");
  std::string unit = absl::StrCat("crid-", id, ".scope");
  ASSERT_EQ(RunCommand(absl::StrCat(runc, "run -d --bundle ", tmp.Sub("bundle"), " ", id,
                                    " </dev/null >/dev/null 2>", tmp.Sub("runc.err"))),
            0)
      << Read(tmp.Sub("runc.err"));
  std::string state;
  EXPECT_EQ(RunCommand(absl::StrCat(runc, "state ", id), &state), 0);
  EXPECT_EQ(*bus_->ActiveState(unit), "active");
  EXPECT_EQ(*bus_->ControlGroup(unit), *dir);
  if (layout_.unified) {
    EXPECT_EQ(Read(layout_.unified_mount + *dir + "/memory.max"), "33554432");
  } else {
    EXPECT_EQ(Read(V1Dir("memory", *dir) + "/memory.limit_in_bytes"), "33554432");
    EXPECT_EQ(Read(V1Dir("cpu", *dir) + "/cpu.shares"), "256");
  }
  absl::StatusOr<CgroupUsage> usage = manager_->Stats(*dir);
  ASSERT_TRUE(usage.ok()) << usage.status();
  EXPECT_EQ(usage->stats.memory_limit_bytes, 32u << 20);
  EXPECT_GE(usage->stats.pids_current, 1u) << state;

  // A live update through the manager lands in the container's scope.
  runtime::v1::LinuxContainerResources update;
  update.set_memory_limit_in_bytes(48 << 20);
  absl::Status updated = manager_->ApplyResources(*dir, update);
  ASSERT_TRUE(updated.ok()) << updated;
  EXPECT_EQ(manager_->Stats(*dir)->stats.memory_limit_bytes, 48u << 20);
  // systemd re-applies unit properties on reload: the update must be one.
  ASSERT_EQ(RunCommand("systemctl daemon-reload"), 0);
  EXPECT_EQ(manager_->Stats(*dir)->stats.memory_limit_bytes, 48u << 20)
      << "daemon-reload put the old limit back";

  EXPECT_EQ(RunCommand(absl::StrCat(runc, "delete -f ", id)), 0);
  absl::StatusOr<std::string> after = bus_->ActiveState(unit);
  EXPECT_TRUE(absl::IsNotFound(after.status()) || *after == "inactive")
      << (after.ok() ? *after : after.status().ToString());
  EXPECT_FALSE(IsDir(layout_.unified ? layout_.unified_mount + *dir : V1Dir("memory", *dir)));
}

// systemd re-executing itself (as on upgrades) drops every D-Bus connection;
// the manager connects again instead of failing from then on.
TEST_F(SystemdDriver, KeepsWorkingAfterSystemdReexecutes) {
  pid_t first = StartSleep();
  absl::StatusOr<std::string> path =
      manager_->PlaceProcess("before-reexec", kPodSlicePath, first, CgroupResources());
  ASSERT_TRUE(path.ok()) << path.status();
  ASSERT_EQ(RunCommand("systemctl daemon-reexec"), 0);
  pid_t second = StartSleep();
  absl::StatusOr<std::string> again =
      manager_->PlaceProcess("after-reexec", kPodSlicePath, second, CgroupResources());
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(*bus_->ActiveState("crid-after-reexec.scope"), "active");
  EXPECT_TRUE(manager_->RemoveCgroup("before-reexec", kPodSlicePath).ok());
  EXPECT_TRUE(manager_->RemoveCgroup("after-reexec", kPodSlicePath).ok());
  Reap(first);
  Reap(second);
}

// systemd leaves cpuset alone on v1; the manager makes and removes that
// cgroup itself, as runc does.
TEST_F(SystemdDriver, CpusetOnV1IsWrittenBesideTheScope) {
  pid_t pid = StartSleep();
  CgroupResources r;
  r.cpuset_cpus = "0";
  absl::StatusOr<std::string> path = manager_->PlaceProcess("cpuset", kPodSlicePath, pid, r);
  ASSERT_TRUE(path.ok()) << path.status();
  std::string dir = layout_.unified ? layout_.unified_mount + *path : V1Dir("cpuset", *path);
  EXPECT_EQ(Read(dir + "/cpuset.cpus"), "0");
  EXPECT_TRUE(absl::StrContains(Read(dir + "/cgroup.procs"), absl::StrCat(pid)));
  EXPECT_TRUE(
      absl::StrContains(Read(absl::StrCat("/proc/", pid, "/status")), "Cpus_allowed_list:\t0\n"));
  ASSERT_TRUE(manager_->RemoveCgroup("cpuset", kPodSlicePath).ok());
  EXPECT_FALSE(IsDir(dir));
  Reap(pid);
}

// The whole crid with the systemd driver, as kubelet runs it: the outer test
// passes the binaries and an image in a registry on the host's loopback.
TEST_F(SystemdDriver, CridRunsPodsAndContainersAsScopesInKubeletsSlice) {
  const char* crid_binary = std::getenv("CRID_BINARY");
  const char* image = std::getenv("CRID_TEST_IMAGE");
  if (crid_binary == nullptr || image == nullptr) {
    GTEST_SKIP() << "run by systemd_cgroup_test, which passes CRID_BINARY and CRID_TEST_IMAGE";
  }
  TempDir tmp;
  ASSERT_TRUE(MakeDirs(tmp.Sub("cni"), 0755).ok());
  std::ofstream(tmp.Sub("crid.json"))
      << absl::StrCat(R"({"cgroupDriver":"systemd","cni":{"confDir":")", tmp.Sub("cni"),
                      R"("},"pod":{"pauseBinary":")", std::getenv("CRID_PAUSE"),
                      R"("},"container":{"shimBinary":")", std::getenv("CRID_SHIM"), R"("}})");
  CridProcess crid(crid_binary, {"--config", tmp.Sub("crid.json"), "--root", tmp.Sub("root"),
                                 "--state", tmp.Sub("state"), "--listen",
                                 "unix://" + tmp.Sub("crid.sock"), "--log-level", "debug"});
  crid.Start(tmp.Sub("crid.log"));
  auto log = [&] {
    std::string shim_logs;
    RunCommand(absl::StrCat("tail -n 30 ", tmp.Sub("state/shims"),
                            "/*/shim.log; ps -eo pid,ppid,stat,cmd"),
               &shim_logs);
    return ReadFile(tmp.Sub("crid.log")).value_or("") + "\n" + shim_logs;
  };
  ASSERT_TRUE(crid.WaitForSocket(tmp.Sub("crid.sock"), absl::Seconds(30))) << log();
  auto channel =
      grpc::CreateChannel("unix://" + tmp.Sub("crid.sock"), grpc::InsecureChannelCredentials());
  auto runtime = runtime::v1::RuntimeService::NewStub(channel);
  auto images = runtime::v1::ImageService::NewStub(channel);
  {
    grpc::ClientContext ctx;
    runtime::v1::RuntimeConfigResponse config;
    ASSERT_TRUE(runtime->RuntimeConfig(&ctx, {}, &config).ok());
    EXPECT_EQ(config.linux().cgroup_driver(), runtime::v1::SYSTEMD);
    grpc::ClientContext pull_ctx;
    runtime::v1::PullImageRequest pull;
    pull.mutable_image()->set_image(image);
    runtime::v1::PullImageResponse pulled;
    grpc::Status st = images->PullImage(&pull_ctx, pull, &pulled);
    ASSERT_TRUE(st.ok()) << st.error_message() << "\n" << log();
  }

  runtime::v1::PodSandboxConfig pod_config;
  pod_config.mutable_metadata()->set_name("systemd-pod");
  pod_config.mutable_metadata()->set_namespace_("default");
  pod_config.mutable_metadata()->set_uid(kPodUid);
  pod_config.mutable_linux()->set_cgroup_parent(kPodSlicePath);
  auto* ns = pod_config.mutable_linux()->mutable_security_context()->mutable_namespace_options();
  ns->set_network(runtime::v1::NODE);  // no CNI in here
  ns->set_pid(runtime::v1::POD);       // so crid-pause runs
  std::string pod;
  {
    grpc::ClientContext ctx;
    runtime::v1::RunPodSandboxRequest req;
    *req.mutable_config() = pod_config;
    runtime::v1::RunPodSandboxResponse resp;
    grpc::Status st = runtime->RunPodSandbox(&ctx, req, &resp);
    ASSERT_TRUE(st.ok()) << st.error_message() << "\n" << log();
    pod = resp.pod_sandbox_id();
  }
  auto run_container = [&](const std::string& name, int64_t memory_limit) -> std::string {
    grpc::ClientContext ctx;
    runtime::v1::CreateContainerRequest req;
    req.set_pod_sandbox_id(pod);
    *req.mutable_sandbox_config() = pod_config;
    auto* c = req.mutable_config();
    c->mutable_metadata()->set_name(name);
    c->mutable_image()->set_image(image);
    c->add_command("/bin/sleep");
    c->add_args("1000");
    if (memory_limit != 0) {
      c->mutable_linux()->mutable_resources()->set_memory_limit_in_bytes(memory_limit);
    }
    c->mutable_linux()->mutable_resources()->set_cpu_shares(300);
    c->mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_pid(ns->pid());
    runtime::v1::CreateContainerResponse resp;
    grpc::Status st = runtime->CreateContainer(&ctx, req, &resp);
    EXPECT_TRUE(st.ok()) << name << ": " << st.error_message() << "\n" << log();
    if (!st.ok()) {
      return "";
    }
    grpc::ClientContext start_ctx;
    runtime::v1::StartContainerRequest start;
    start.set_container_id(resp.container_id());
    runtime::v1::StartContainerResponse started;
    st = runtime->StartContainer(&start_ctx, start, &started);
    EXPECT_TRUE(st.ok()) << name << ": " << st.error_message() << "\n" << log();
    return st.ok() ? resp.container_id() : "";
  };
  auto remove_container = [&](const std::string& id) {
    grpc::ClientContext ctx;
    runtime::v1::StopContainerRequest stop;
    stop.set_container_id(id);
    stop.set_timeout(0);
    runtime::v1::StopContainerResponse stopped;
    grpc::Status st = runtime->StopContainer(&ctx, stop, &stopped);
    EXPECT_TRUE(st.ok()) << st.error_message();
    grpc::ClientContext rm_ctx;
    runtime::v1::RemoveContainerRequest rm;
    rm.set_container_id(id);
    runtime::v1::RemoveContainerResponse removed;
    st = runtime->RemoveContainer(&rm_ctx, rm, &removed);
    EXPECT_TRUE(st.ok()) << st.error_message();
  };
  // Every process of the container's scope is in that scope in every v1
  // hierarchy (/proc/<pid>/cgroup): systemd moves a process of a delegated
  // scope up into the pod slice's devices cgroup (allow all) when the scope is
  // the slice's first unit with device rules, as runc's Set makes it.
  const std::string slice = kPodSlicePath;
  auto expect_in_own_cgroups = [&](const std::string& id, const std::string& what) {
    const std::string dir = absl::StrCat(slice, "/crid-", id, ".scope");
    const std::string procs_file =
        (layout_.unified ? layout_.unified_mount : "/sys/fs/cgroup/systemd") + dir +
        "/cgroup.procs";
    std::string procs = Read(procs_file);
    EXPECT_FALSE(procs.empty() || absl::StartsWith(procs, "<"))
        << what << ": no process in " << dir;
    for (absl::string_view pid : absl::StrSplit(procs, '\n', absl::SkipEmpty())) {
      std::string cgroups = Read(absl::StrCat("/proc/", pid, "/cgroup"));
      int hierarchies = 0;
      for (absl::string_view line : absl::StrSplit(cgroups, '\n', absl::SkipEmpty())) {
        std::vector<absl::string_view> f = absl::StrSplit(line, absl::MaxSplits(':', 2));
        ASSERT_EQ(f.size(), 3u) << line;
        if (!layout_.unified && f[0] == "0") {
          continue;  // the hybrid layout's cgroup2 mount: systemd's, not the container's
        }
        ++hierarchies;
        EXPECT_EQ(f[2], dir) << what << ": pid " << pid << " in " << f[1] << "\n" << cgroups;
      }
      EXPECT_GT(hierarchies, 0) << what << ": pid " << pid << "\n" << cgroups;
    }
  };
  // Several containers, the first (the slice's first unit with device rules)
  // and the third with a memory limit.
  std::vector<std::string> containers;
  for (const auto& [name, limit] : std::vector<std::pair<std::string, int64_t>>{
           {"main", 48 << 20}, {"second", 0}, {"third", 40 << 20}}) {
    containers.push_back(run_container(name, limit));
    ASSERT_FALSE(containers.back().empty()) << name;
  }
  const std::string container = containers[0];
  // Every unit of the pod is a scope in kubelet's pod slice.
  std::vector<std::string> scopes = {absl::StrCat("crid-shim-", pod, ".scope"),
                                     absl::StrCat("crid-pause-", pod, ".scope")};
  for (const std::string& id : containers) {
    scopes.push_back(absl::StrCat("crid-", id, ".scope"));
  }
  for (const std::string& scope : scopes) {
    const std::string unit_path = absl::StrCat(slice, "/", scope);
    EXPECT_TRUE(IsDir(absl::StrCat("/sys/fs/cgroup/systemd", unit_path)) ||
                IsDir(layout_.unified_mount + unit_path))
        << scope << " is not in " << slice << "\n"
        << log();
    auto group = bus_->ControlGroup(scope);
    EXPECT_TRUE(group.ok() && *group == unit_path) << scope << ": " << group.status();
  }
  for (size_t i = 0; i < containers.size(); ++i) {
    expect_in_own_cgroups(containers[i], absl::StrCat("container ", i + 1));
  }
  std::string container_dir = absl::StrCat(slice, "/crid-", container, ".scope");
  if (layout_.unified) {
    EXPECT_EQ(Read(layout_.unified_mount + container_dir + "/memory.max"), "50331648");
  } else {
    EXPECT_EQ(Read(V1Dir("memory", container_dir) + "/memory.limit_in_bytes"), "50331648");
    EXPECT_EQ(Read(V1Dir("cpu", container_dir) + "/cpu.shares"), "300");
    // The container's own device rules, not the slice's allow-all.
    EXPECT_NE(Read(V1Dir("devices", container_dir) + "/devices.list"), "a *:* rwm");
  }
  // With every container gone the slice has no unit with device rules again:
  // the next container is again the first.
  for (const std::string& id : containers) {
    remove_container(id);
  }
  std::string again = run_container("again", 32 << 20);
  ASSERT_FALSE(again.empty());
  expect_in_own_cgroups(again, "the container after the others were removed");
  scopes.push_back(absl::StrCat("crid-", again, ".scope"));

  // Teardown removes every scope.
  {
    grpc::ClientContext ctx;
    runtime::v1::StopPodSandboxRequest stop;
    stop.set_pod_sandbox_id(pod);
    runtime::v1::StopPodSandboxResponse stopped;
    grpc::Status st = runtime->StopPodSandbox(&ctx, stop, &stopped);
    ASSERT_TRUE(st.ok()) << st.error_message() << "\n" << log();
    grpc::ClientContext rm_ctx;
    runtime::v1::RemovePodSandboxRequest rm;
    rm.set_pod_sandbox_id(pod);
    runtime::v1::RemovePodSandboxResponse removed;
    st = runtime->RemovePodSandbox(&rm_ctx, rm, &removed);
    ASSERT_TRUE(st.ok()) << st.error_message() << "\n" << log();
  }
  for (const std::string& scope : scopes) {
    const std::string unit_path = absl::StrCat(slice, "/", scope);
    const std::string systemd_dir = absl::StrCat("/sys/fs/cgroup/systemd", unit_path);
    absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (IsDir(systemd_dir) && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(50));
    }
    EXPECT_FALSE(IsDir(systemd_dir)) << scope << " left";
    if (!layout_.unified) {
      EXPECT_FALSE(IsDir(V1Dir("memory", unit_path))) << scope << " left";
    }
  }
  crid.Signal(SIGTERM);
  EXPECT_EQ(crid.Wait(absl::Seconds(30)), 0) << log();
}

}  // namespace
}  // namespace crid
