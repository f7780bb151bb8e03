// End to end: the real crid binary pulls a busybox image from a real registry,
// runs pods on a private CNI bridge and containers in them through crid-shim
// and runc, over its socket; crid is killed with SIGKILL and restarted midway.
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <thread>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "base/fs.h"
#include "base/temp_dir.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/cri_api.grpc.pb.h"
#include "tests/cni_fixture.h"
#include "tests/container_e2e_fixture.h"
#include "tests/crid_process.h"
#include "tests/image_registry_fixture.h"
#include "tests/leak_census.h"
#include "tests/streaming_client.h"

namespace crid {
namespace {

using ::crid::streaming_test::SpdyClient;
using ::testing::ContainsRegex;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
namespace v1 = ::runtime::v1;

using container_e2e::ContainerEndToEndTest;

TEST_F(ContainerEndToEndTest, LifecycleExitCodeLogsAndRemoval) {
  std::string pod = RunPod(PodConfig("life"));
  v1::ContainerConfig config = ShellContainer("c1", "echo out; echo err >&2; exit 3");
  (*config.mutable_labels())["app"] = "life";
  (*config.mutable_annotations())["note"] = "kept";
  std::string id = CreateOk(pod, config);
  ASSERT_EQ(id.size(), 64u);
  v1::ContainerStatusResponse created = Status(id, true);
  EXPECT_EQ(created.status().state(), v1::CONTAINER_CREATED);
  EXPECT_EQ(created.status().metadata().name(), "c1");
  EXPECT_EQ(created.status().image().image(), image_);
  EXPECT_THAT(created.status().image_ref(), HasSubstr("sha256:"));
  EXPECT_EQ(created.status().log_path(), tmp_.Sub("logs/life/c1.log"));
  EXPECT_EQ(created.status().labels().at("app"), "life");
  EXPECT_EQ(created.status().annotations().at("note"), "kept");
  EXPECT_GT(created.status().created_at(), 0);
  EXPECT_THAT(created.info().at("info"), HasSubstr("runtimeSpec"));

  ASSERT_TRUE(Start(id).ok()) << Log();
  v1::ContainerStatus exited = WaitExited(id, absl::Seconds(20));
  EXPECT_EQ(exited.exit_code(), 3);
  EXPECT_EQ(exited.reason(), "Error");
  EXPECT_GE(exited.finished_at(), exited.started_at());
  EXPECT_GE(exited.started_at(), exited.created_at());
  std::string log = ReadLog("life", "c1");
  EXPECT_THAT(log,
              ContainsRegex("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}\\.[0-9]{9}Z stdout F out\n"));
  EXPECT_THAT(log, HasSubstr(" stderr F err\n"));

  // Start again is refused; list filters see it.
  EXPECT_EQ(Start(id).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  {
    grpc::ClientContext ctx;
    v1::ListContainersRequest req;
    (*req.mutable_filter()->mutable_label_selector())["app"] = "life";
    req.mutable_filter()->mutable_state()->set_state(v1::CONTAINER_EXITED);
    v1::ListContainersResponse resp;
    ASSERT_TRUE(stub_->ListContainers(&ctx, req, &resp).ok());
    ASSERT_EQ(resp.containers_size(), 1);
    EXPECT_EQ(resp.containers(0).id(), id);
    EXPECT_EQ(resp.containers(0).pod_sandbox_id(), pod);
  }
  {
    grpc::ClientContext ctx;
    v1::ListContainersRequest req;
    req.mutable_filter()->mutable_state()->set_state(v1::CONTAINER_RUNNING);
    v1::ListContainersResponse resp;
    ASSERT_TRUE(stub_->ListContainers(&ctx, req, &resp).ok());
    EXPECT_EQ(resp.containers_size(), 0);
  }
  ASSERT_TRUE(Remove(id).ok());
  EXPECT_TRUE(Remove(id).ok()) << "removing twice is fine";
  EXPECT_NE(::access(tmp_.Sub("root/containers/" + id).c_str(), F_OK), 0);
  std::string mountinfo = ReadFile("/proc/self/mountinfo").value_or("");
  EXPECT_THAT(mountinfo, Not(HasSubstr(id)));
  grpc::ClientContext ctx;
  v1::ContainerStatusRequest req;
  req.set_container_id(id);
  v1::ContainerStatusResponse resp;
  EXPECT_EQ(stub_->ContainerStatus(&ctx, req, &resp).error_code(), grpc::StatusCode::NOT_FOUND);
}

// kubelet creates containers by image ID with the pod spec's name in
// user_specified_image; the status reports that name (kubelet's pod status and
// its image-update checks compare it with the spec).
TEST_F(ContainerEndToEndTest, StatusReportsTheImageNameTheUserGave) {
  std::string pod = RunPod(PodConfig("imgname"));
  ASSERT_THAT(image_id_, HasSubstr("sha256:"));
  v1::ContainerConfig by_id = ShellContainer("byid", "true");
  by_id.mutable_image()->set_image(image_id_);
  by_id.mutable_image()->set_user_specified_image("example.test/busybox:alias");
  v1::ContainerStatusResponse status = Status(CreateOk(pod, by_id), false);
  EXPECT_EQ(status.status().image().image(), "example.test/busybox:alias");
  EXPECT_EQ(status.status().image_id(), image_id_);
  EXPECT_THAT(status.status().image_ref(), HasSubstr("@sha256:"));

  // Without it, an ID is reported as the image's tag; a name as given.
  v1::ContainerConfig bare_id = ShellContainer("bareid", "true");
  bare_id.mutable_image()->set_image(image_id_);
  EXPECT_EQ(Status(CreateOk(pod, bare_id), false).status().image().image(), image_);
  v1::ContainerConfig by_name = ShellContainer("byname", "true");
  EXPECT_EQ(Status(CreateOk(pod, by_name), false).status().image().image(), image_);
}

TEST_F(ContainerEndToEndTest, ImageDefaultsEnvAndLongLines) {
  std::string pod = RunPod(PodConfig("defaults"));
  v1::ContainerConfig config;
  config.mutable_metadata()->set_name("img");
  config.mutable_image()->set_image(image_);
  config.set_log_path("img.log");
  std::string id = RunContainer(pod, config);
  EXPECT_EQ(WaitExited(id, absl::Seconds(20)).exit_code(), 0);
  EXPECT_THAT(ReadLog("defaults", "img"), HasSubstr(" stdout F image-cmd\n"));

  v1::ContainerConfig env = ShellContainer(
      "env", "echo \"$FROM_IMAGE $OVERRIDE $PWD\"; head -c 40000 /dev/zero | tr '\\0' x; echo");
  auto* kv = env.add_envs();
  kv->set_key("OVERRIDE");
  kv->set_value("pod");
  id = RunContainer(pod, env);
  EXPECT_EQ(WaitExited(id, absl::Seconds(20)).exit_code(), 0);
  std::string log = ReadLog("defaults", "env");
  EXPECT_THAT(log, HasSubstr(" stdout F yes pod /tmp\n"));
  // 40000 bytes in one line: two 16 KiB partial records and a full one.
  EXPECT_THAT(log,
              ContainsRegex(" stdout P x{16384}\n.* stdout P x{16384}\n.* stdout F x{7232}\n"));
}

TEST_F(ContainerEndToEndTest, StopUsesImageStopSignalThenKills) {
  std::string pod = RunPod(PodConfig("stop"));
  // Traps the image's STOPSIGNAL (SIGUSR1) and exits cleanly.
  std::string graceful = RunContainer(
      pod, ShellContainer("graceful",
                          "trap 'echo got-usr1; exit 0' USR1; echo ready; while true; do sleep "
                          "0.1; done"));
  // The trap is set once it says so.
  ASSERT_TRUE(WaitFor([&] {
    return absl::StrContains(ReadLog("stop", "graceful"), " stdout F ready\n");
  })) << Log();
  absl::Time t0 = absl::Now();
  ASSERT_TRUE(Stop(graceful, 10).ok()) << Log();
  EXPECT_LT(absl::Now() - t0, absl::Seconds(5));
  v1::ContainerStatus st = Status(graceful).status();
  EXPECT_EQ(st.state(), v1::CONTAINER_EXITED);
  EXPECT_EQ(st.exit_code(), 0);
  EXPECT_EQ(st.reason(), "Completed");
  EXPECT_THAT(ReadLog("stop", "graceful"), HasSubstr("got-usr1"));

  // Ignores the stop signal: killed once the timeout passes.
  std::string stubborn = RunContainer(
      pod,
      ShellContainer("stubborn", "trap '' USR1 TERM; echo ready; while true; do sleep 0.1; done"));
  ASSERT_TRUE(WaitFor([&] {
    return absl::StrContains(ReadLog("stop", "stubborn"), " stdout F ready\n");
  })) << Log();
  t0 = absl::Now();
  ASSERT_TRUE(Stop(stubborn, 2).ok()) << Log();
  absl::Duration took = absl::Now() - t0;
  EXPECT_GE(took, absl::Seconds(2));
  EXPECT_LT(took, absl::Seconds(10));
  EXPECT_EQ(Status(stubborn).status().exit_code(), 137);
  EXPECT_TRUE(Stop(stubborn, 2).ok()) << "stopping an exited container is fine";

  // Timeout 0 kills at once.
  std::string quick = RunContainer(pod, ShellContainer("quick", "sleep 1000"));
  t0 = absl::Now();
  ASSERT_TRUE(Stop(quick, 0).ok());
  EXPECT_LT(absl::Now() - t0, absl::Seconds(3));
  EXPECT_EQ(Status(quick).status().exit_code(), 137);

  // Remove of a running container kills it.
  std::string running = RunContainer(pod, ShellContainer("running", "sleep 1000"));
  ASSERT_TRUE(Remove(running).ok()) << Log();
  EXPECT_NE(::access(tmp_.Sub("root/containers/" + running).c_str(), F_OK), 0);
}

TEST_F(ContainerEndToEndTest, ExecSyncOutputExitCodeAndTimeout) {
  std::string pod = RunPod(PodConfig("exec"));
  std::string id = RunContainer(pod, ShellContainer("svc", "sleep 1000"));
  int code = -1;
  EXPECT_EQ(ExecOut(id, "echo hello; echo oops >&2; exit 4", &code), "hello\n");
  EXPECT_EQ(code, 4);
  EXPECT_EQ(ExecOut(id, "hostname"), "exec\n");
  EXPECT_EQ(ExecOut(id, "cat /etc/hostname"), "exec\n");
  EXPECT_THAT(ExecOut(id, "cat /etc/resolv.conf"), HasSubstr("nameserver"));

  absl::Time t0 = absl::Now();
  v1::ExecSyncResponse resp;
  grpc::Status st = Exec(id, {"/bin/sleep", "30"}, 1, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED) << st.error_message();
  EXPECT_LT(absl::Now() - t0, absl::Seconds(10));
  // The timed-out process was killed, not left behind.
  EXPECT_THAT(ExecOut(id, "ps -o comm | grep -c '^sleep$'"), "1\n");

  st = Exec(id, {"/bin/no-such-binary"}, 5, &resp);
  EXPECT_TRUE(!st.ok() || resp.exit_code() != 0);
  st = Exec(id, {}, 5, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(), HasSubstr("cmd"));

  ASSERT_TRUE(Stop(id, 0).ok());
  st = Exec(id, {"/bin/true"}, 5, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
}

TEST_F(ContainerEndToEndTest, OomKilledUnderMemoryLimit) {
  std::string pod = RunPod(PodConfig("oom"));
  v1::ContainerConfig config =
      ShellContainer("hog", "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo ${#x}");
  config.mutable_linux()->mutable_resources()->set_memory_limit_in_bytes(32 << 20);
  std::string id = RunContainer(pod, config);
  v1::ContainerStatus st = WaitExited(id, absl::Seconds(60));
  EXPECT_EQ(st.reason(), "OOMKilled") << st.exit_code();
  EXPECT_EQ(st.exit_code(), 137);
  EXPECT_EQ(st.resources().linux().memory_limit_in_bytes(), 32 << 20);
}

TEST_F(ContainerEndToEndTest, SecurityContextIsEnforced) {
  std::string pod = RunPod(PodConfig("sec"));
  // Read-only rootfs and a numeric user.
  v1::ContainerConfig ro = ShellContainer("ro", "sleep 1000");
  ro.mutable_linux()->mutable_security_context()->set_readonly_rootfs(true);
  ro.mutable_linux()->mutable_security_context()->mutable_run_as_user()->set_value(65534);
  std::string id = RunContainer(pod, ro);
  int code = 0;
  ExecOut(id, "touch /newfile", &code);
  EXPECT_NE(code, 0) << "the rootfs is read-only";
  EXPECT_EQ(ExecOut(id, "id -u; id -g"), "65534\n65534\n");
  v1::ContainerStatus status = Status(id).status();
  EXPECT_EQ(status.user().linux().uid(), 65534);

  // A user name from the image's /etc/passwd, with its groups.
  v1::ContainerConfig named = ShellContainer("named", "sleep 1000");
  named.mutable_linux()->mutable_security_context()->set_run_as_username("app");
  id = RunContainer(pod, named);
  EXPECT_EQ(ExecOut(id, "id -u; id -g"), "1000\n1000\n");
  EXPECT_THAT(ExecOut(id, "id -G"), HasSubstr("2000"));
  // ContainerStatus.user lists the process's whole group list, like `id -G`.
  v1::LinuxContainerUser app_user = Status(id).status().user().linux();
  EXPECT_EQ(app_user.uid(), 1000);
  EXPECT_EQ(app_user.gid(), 1000);
  EXPECT_THAT(std::vector<int64_t>(app_user.supplemental_groups().begin(),
                                   app_user.supplemental_groups().end()),
              ::testing::UnorderedElementsAre(1000, 2000));

  // Capabilities: without NET_ADMIN the loopback cannot be reconfigured.
  v1::ContainerConfig nocap = ShellContainer("nocap", "sleep 1000");
  id = RunContainer(pod, nocap);
  ExecOut(id, "ip link set lo mtu 1400", &code);
  EXPECT_NE(code, 0);
  v1::ContainerConfig cap = ShellContainer("cap", "sleep 1000");
  cap.mutable_linux()->mutable_security_context()->mutable_capabilities()->add_add_capabilities(
      "NET_ADMIN");
  id = RunContainer(pod, cap);
  ExecOut(id, "ip link set lo mtu 1500", &code);
  EXPECT_EQ(code, 0);

  // Seccomp: a Localhost profile that fails mkdir with EPERM.
  std::ofstream(tmp_.Sub("deny-mkdir.json"))
      << R"({"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],)"
      << R"("action":"SCMP_ACT_ERRNO","errnoRet":1}]})";
  v1::ContainerConfig sec = ShellContainer("seccomp", "sleep 1000");
  auto* profile = sec.mutable_linux()->mutable_security_context()->mutable_seccomp();
  profile->set_profile_type(v1::SecurityProfile::Localhost);
  profile->set_localhost_ref(tmp_.Sub("deny-mkdir.json"));
  id = RunContainer(pod, sec);
  ExecOut(id, "mkdir /tmp/blocked", &code);
  EXPECT_NE(code, 0) << "mkdir must be blocked by the profile";
  ExecOut(id, "touch /tmp/allowed", &code);
  EXPECT_EQ(code, 0);
}

TEST_F(ContainerEndToEndTest, HostIpcPodSeesTheHostsShm) {
  // A file only the host's /dev/shm holds; unique, and removed whatever happens.
  const std::string name =
      absl::StrCat("crid-e2e-shm-", getpid(), "-", absl::ToUnixNanos(absl::Now()));
  const std::string host_file = "/dev/shm/" + name;
  const std::string from_container = host_file + "-from-container";
  absl::Cleanup remove = [&] {
    unlink(host_file.c_str());
    unlink(from_container.c_str());
  };
  std::ofstream(host_file) << "host-shm\n";

  // As kubelet sends it: the pod and its container both say NODE.
  v1::PodSandboxConfig host_ipc = PodConfig("hostipc");
  host_ipc.mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_ipc(
      v1::NODE);
  std::string pod = RunPod(host_ipc);
  v1::ContainerConfig config = ShellContainer("shm", "sleep 1000");
  config.mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_ipc(
      v1::NODE);
  std::string id = RunContainer(pod, config);
  EXPECT_EQ(ExecOut(id, "cat /dev/shm/" + name), "host-shm\n");
  int code = 0;
  ExecOut(id, absl::StrCat("echo back > /dev/shm/", name, "-from-container"), &code);
  EXPECT_EQ(code, 0);
  EXPECT_EQ(ReadFile(from_container).value_or(""), "back\n") << "the same /dev/shm, both ways";

  // A pod of its own IPC namespace has its own /dev/shm.
  std::string own = RunPod(PodConfig("ownipc"));
  id = RunContainer(own, ShellContainer("shm", "sleep 1000"));
  ExecOut(id, "test -e /dev/shm/" + name, &code);
  EXPECT_NE(code, 0) << "a normal pod must not see the host's /dev/shm";
  EXPECT_EQ(ExecOut(id, "touch /dev/shm/private && ls /dev/shm"), "private\n");
}

TEST_F(ContainerEndToEndTest, WebServerServesOnThePodIp) {
  std::string pod = RunPod(PodConfig("web"));
  std::string id = RunContainer(pod, ShellContainer("httpd", "httpd -f -p 8080 -h /www"));
  grpc::ClientContext ctx;
  v1::PodSandboxStatusRequest req;
  req.set_pod_sandbox_id(pod);
  v1::PodSandboxStatusResponse resp;
  ASSERT_TRUE(stub_->PodSandboxStatus(&ctx, req, &resp).ok());
  std::string ip = resp.status().network().ip();
  ASSERT_FALSE(ip.empty());
  // A client in a second pod on the same bridge (the test network has no
  // gateway on the host, so nothing leaves the bridge).
  std::string client_pod = RunPod(PodConfig("client"));
  std::string client = RunContainer(client_pod, ShellContainer("wget", "sleep 1000"));
  std::string body;
  absl::Time deadline = absl::Now() + absl::Seconds(15);
  while (absl::Now() < deadline && !absl::StrContains(body, "hello from crid")) {
    // busybox's nc with a numeric address (its static wget crashes in glibc's
    // resolver without NSS modules).
    body = ExecOut(client, absl::StrCat("printf 'GET /index.html HTTP/1.0\\r\\n\\r\\n' | nc -w 2 ",
                                        ip, " 8080"));
    if (body.empty()) {
      absl::SleepFor(absl::Milliseconds(200));
    }
  }
  v1::ExecSyncResponse last;
  (void)Exec(client, {"/bin/sh", "-c", absl::StrCat("nc -w 2 ", ip, " 8080 </dev/null")}, 10,
             &last);
  EXPECT_THAT(body, HasSubstr("200 OK"));
  EXPECT_THAT(body, HasSubstr("\r\n\r\nhello from crid\n"))
      << "nc: " << last.exit_code() << " " << last.stderr();
  EXPECT_EQ(Status(id).status().state(), v1::CONTAINER_RUNNING);
}

TEST_F(ContainerEndToEndTest, SurvivesSigkillOfCrid) {
  std::string pod = RunPod(PodConfig("restart"));
  std::string runner = RunContainer(pod, ShellContainer("runner", "sleep 1000"));
  std::string later = RunContainer(pod, ShellContainer("later", "sleep 3; exit 7"));
  std::string created = CreateOk(pod, ShellContainer("created", "echo late-start"));
  const pid_t later_pid =
      nlohmann::json::parse(Status(later, true).info().at("info"))["pid"].get<pid_t>();
  ASSERT_GT(later_pid, 0);
  crid_->Signal(SIGKILL);
  crid_->Wait(absl::Seconds(10));
  // `later` exits (and its shim reaps it) while crid is down.
  EXPECT_TRUE(WaitFor([&] { return ::kill(later_pid, 0) != 0; })) << "pid " << later_pid;
  crid_ = StartCrid();
  EXPECT_EQ(Status(runner).status().state(), v1::CONTAINER_RUNNING) << Log();
  v1::ContainerStatus st = Status(later).status();
  EXPECT_EQ(st.state(), v1::CONTAINER_EXITED) << Log();
  EXPECT_EQ(st.exit_code(), 7);
  EXPECT_EQ(Status(created).status().state(), v1::CONTAINER_CREATED);
  EXPECT_EQ(ExecOut(runner, "echo still-here"), "still-here\n");
  ASSERT_TRUE(Start(created).ok()) << Log();
  EXPECT_EQ(WaitExited(created, absl::Seconds(20)).exit_code(), 0);
  ASSERT_TRUE(Stop(runner, 0).ok());
  EXPECT_EQ(Status(runner).status().exit_code(), 137);
}

TEST_F(ContainerEndToEndTest, BadRequestsAreRefusedAndLeaveNothing) {
  std::string pod = RunPod(PodConfig("bad"));
  std::string id;
  EXPECT_EQ(Create("no-such-pod", ShellContainer("x", "true"), &id).error_code(),
            grpc::StatusCode::NOT_FOUND);
  v1::ContainerConfig no_name = ShellContainer("", "true");
  grpc::Status st = Create(pod, no_name, &id);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(), HasSubstr("metadata.name"));
  v1::ContainerConfig missing_image = ShellContainer("img", "true");
  missing_image.mutable_image()->set_image(registry_->host() + "/test/absent:1");
  st = Create(pod, missing_image, &id);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(st.error_message(), HasSubstr("image"));
  v1::ContainerConfig escape = ShellContainer("esc", "true");
  escape.set_log_path("../../etc/evil.log");
  st = Create(pod, escape, &id);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(), HasSubstr("log_path"));
  // A spec the runtime refuses (a working dir that is not absolute) is
  // refused before anything is made.
  v1::ContainerConfig bad_cwd = ShellContainer("cwd", "true");
  bad_cwd.set_working_dir("relative");
  st = Create(pod, bad_cwd, &id);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  // A command that does not exist fails at start; nothing is left mounted.
  v1::ContainerConfig missing_cmd;
  missing_cmd.mutable_metadata()->set_name("nocmd");
  missing_cmd.mutable_image()->set_image(image_);
  missing_cmd.add_command("/bin/not-there");
  grpc::Status create_st = Create(pod, missing_cmd, &id);
  if (create_st.ok()) {
    EXPECT_FALSE(Start(id).ok());
    EXPECT_EQ(Status(id).status().state(), v1::CONTAINER_EXITED);
    EXPECT_TRUE(Remove(id).ok());
  }
  std::vector<std::string> left;
  absl::StatusOr<std::string> mountinfo = ReadFile("/proc/self/mountinfo");
  EXPECT_THAT(*mountinfo, Not(HasSubstr(tmp_.Sub("root/containers"))));
  grpc::ClientContext ctx;
  v1::ListContainersResponse list;
  ASSERT_TRUE(stub_->ListContainers(&ctx, {}, &list).ok());
  EXPECT_EQ(list.containers_size(), 0);
  EXPECT_EQ(Start("").error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Start("0123456789abcdef").error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_TRUE(Remove("0123456789abcdef").ok());
  // Unknown runtime handler for a pod.
  grpc::ClientContext ctx2;
  v1::RunPodSandboxRequest run;
  *run.mutable_config() = PodConfig("handler");
  run.set_runtime_handler("no-such-runtime");
  v1::RunPodSandboxResponse run_resp;
  st = stub_->RunPodSandbox(&ctx2, run, &run_resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(), HasSubstr("runtime_handler"));
}

TEST_F(ContainerEndToEndTest, PodStopAndRemoveTakeContainersAndShim) {
  std::string pod = RunPod(PodConfig("teardown"));
  std::string a = RunContainer(pod, ShellContainer("a", "sleep 1000"));
  std::string b = RunContainer(pod, ShellContainer("b", "sleep 1000"));
  std::string shim_pid_file = tmp_.Sub("state/shims/" + pod.substr(0, 32) + "/shim.pid");
  absl::StatusOr<std::string> shim_pid_text = ReadFile(shim_pid_file);
  ASSERT_TRUE(shim_pid_text.ok()) << shim_pid_text.status();
  pid_t shim_pid = std::stoi(*shim_pid_text);
  EXPECT_EQ(::kill(shim_pid, 0), 0);
  {
    grpc::ClientContext ctx;
    v1::StopPodSandboxRequest req;
    req.set_pod_sandbox_id(pod);
    v1::StopPodSandboxResponse resp;
    ASSERT_TRUE(stub_->StopPodSandbox(&ctx, req, &resp).ok()) << Log();
  }
  EXPECT_EQ(Status(a).status().state(), v1::CONTAINER_EXITED);
  EXPECT_EQ(Status(b).status().state(), v1::CONTAINER_EXITED);
  {
    grpc::ClientContext ctx;
    v1::RemovePodSandboxRequest req;
    req.set_pod_sandbox_id(pod);
    v1::RemovePodSandboxResponse resp;
    ASSERT_TRUE(stub_->RemovePodSandbox(&ctx, req, &resp).ok()) << Log();
  }
  grpc::ClientContext ctx;
  v1::ListContainersResponse list;
  ASSERT_TRUE(stub_->ListContainers(&ctx, {}, &list).ok());
  EXPECT_EQ(list.containers_size(), 0);
  absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (::kill(shim_pid, 0) == 0 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_NE(::kill(shim_pid, 0), 0) << "the pod's shim exits with the pod";
  EXPECT_NE(::access(tmp_.Sub("state/shims/" + pod.substr(0, 32)).c_str(), F_OK), 0);
  EXPECT_NE(::access(tmp_.Sub("root/containers/" + a).c_str(), F_OK), 0);
}

// The cgroup (v1 memory hierarchy, or the v2 tree) a process is in.
std::string MemoryCgroupOf(pid_t pid) {
  std::string text = ReadFile(absl::StrCat("/proc/", pid, "/cgroup")).value_or("");
  std::string unified;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    std::vector<absl::string_view> parts = absl::StrSplit(line, absl::MaxSplits(':', 2));
    if (parts.size() != 3) {
      continue;
    }
    for (absl::string_view controller : absl::StrSplit(parts[1], ',')) {
      if (controller == "memory") {
        return std::string(parts[2]);
      }
    }
    if (parts[0] == "0") {
      unified = std::string(parts[2]);
    }
  }
  return unified;
}

TEST_F(ContainerEndToEndTest, ShimAndPauseLiveInThePodCgroup) {
  // This host has no systemd as PID 1, so crid uses cgroupfs and kubelet's
  // cgroup_parent is a plain path.
  const std::string parent = absl::StrCat("/crid-e2e-pod-", ::getpid());
  v1::PodSandboxConfig config = PodConfig("placed");
  config.mutable_linux()->set_cgroup_parent(parent);
  config.mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_pid(v1::POD);
  std::string pod = RunPod(config);
  RunContainer(pod, ShellContainer("main", "sleep 1000"));
  pid_t shim_pid =
      std::stoi(ReadFile(tmp_.Sub("state/shims/" + pod.substr(0, 32) + "/shim.pid")).value_or("0"));
  grpc::ClientContext ctx;
  v1::PodSandboxStatusRequest req;
  req.set_pod_sandbox_id(pod);
  req.set_verbose(true);
  v1::PodSandboxStatusResponse status;
  ASSERT_TRUE(stub_->PodSandboxStatus(&ctx, req, &status).ok());
  pid_t pause_pid = nlohmann::json::parse(status.info().at("info"))["pid"].get<int>();
  ASSERT_GT(shim_pid, 0);
  ASSERT_GT(pause_pid, 0);
  EXPECT_EQ(MemoryCgroupOf(shim_pid), parent + "/crid-shim-" + pod);
  EXPECT_EQ(MemoryCgroupOf(pause_pid), parent + "/crid-pause-" + pod);

  std::string memory_root =
      ::access("/sys/fs/cgroup/memory", F_OK) == 0 ? "/sys/fs/cgroup/memory" : "/sys/fs/cgroup";
  EXPECT_EQ(::access((memory_root + parent + "/crid-shim-" + pod).c_str(), F_OK), 0);
  grpc::ClientContext stop_ctx;
  v1::StopPodSandboxRequest stop;
  stop.set_pod_sandbox_id(pod);
  v1::StopPodSandboxResponse stop_resp;
  ASSERT_TRUE(stub_->StopPodSandbox(&stop_ctx, stop, &stop_resp).ok()) << Log();
  EXPECT_NE(::access((memory_root + parent + "/crid-pause-" + pod).c_str(), F_OK), 0);
  grpc::ClientContext rm_ctx;
  v1::RemovePodSandboxRequest rm;
  rm.set_pod_sandbox_id(pod);
  v1::RemovePodSandboxResponse rm_resp;
  ASSERT_TRUE(stub_->RemovePodSandbox(&rm_ctx, rm, &rm_resp).ok()) << Log();
  EXPECT_NE(::access((memory_root + parent + "/crid-shim-" + pod).c_str(), F_OK), 0);
  // kubelet would remove the pod cgroup itself; the test made it, the test removes it.
  for (const char* hierarchy : {"cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio",
                                "pids", "hugetlb", "net_cls", "perf_event", "systemd", "unified"}) {
    ::rmdir(absl::StrCat("/sys/fs/cgroup/", hierarchy, parent).c_str());
  }
  ::rmdir(absl::StrCat("/sys/fs/cgroup", parent).c_str());
}

// The pod's crid-shim starts with the pod, before any container: running,
// from its sealed copy, in the pod's cgroup; a pod without containers takes
// it along when removed, and a pod whose creation fails leaves none.
TEST_F(ContainerEndToEndTest, ShimStartsWithThePodAndGoesWithIt) {
  const std::string parent = absl::StrCat("/crid-e2e-early-", ::getpid());
  v1::PodSandboxConfig config = PodConfig("early");
  config.mutable_linux()->set_cgroup_parent(parent);
  std::string pod = RunPod(config);
  const std::string shim_dir = tmp_.Sub("state/shims/" + pod.substr(0, 32));
  pid_t shim_pid = std::stoi(ReadFile(shim_dir + "/shim.pid").value_or("0"));
  ASSERT_GT(shim_pid, 0) << Log();
  EXPECT_EQ(::kill(shim_pid, 0), 0);
  EXPECT_EQ(MemoryCgroupOf(shim_pid), parent + "/crid-shim-" + pod);
  char exe[256] = {};
  ASSERT_GT(::readlink(absl::StrCat("/proc/", shim_pid, "/exe").c_str(), exe, sizeof(exe) - 1), 0);
  EXPECT_THAT(std::string(exe), ::testing::StartsWith("/memfd:crid-shim"));
  std::string memory_root =
      ::access("/sys/fs/cgroup/memory", F_OK) == 0 ? "/sys/fs/cgroup/memory" : "/sys/fs/cgroup";
  {
    grpc::ClientContext ctx;
    v1::RemovePodSandboxRequest req;
    req.set_pod_sandbox_id(pod);
    v1::RemovePodSandboxResponse resp;
    ASSERT_TRUE(stub_->RemovePodSandbox(&ctx, req, &resp).ok()) << Log();
  }
  EXPECT_TRUE(WaitFor([&] { return ::kill(shim_pid, 0) != 0; })) << "the shim outlived its pod";
  EXPECT_NE(::access(shim_dir.c_str(), F_OK), 0);
  EXPECT_NE(::access((memory_root + parent + "/crid-shim-" + pod).c_str(), F_OK), 0);

  // Fails after the shim was started: the sysctl is written once the pod's
  // network namespace exists.
  v1::PodSandboxConfig failing = PodConfig("early-failing");
  (*failing.mutable_linux()->mutable_sysctls())["net.core.somaxconn"] = "not-a-number";
  grpc::ClientContext ctx;
  v1::RunPodSandboxRequest req;
  *req.mutable_config() = failing;
  v1::RunPodSandboxResponse resp;
  ASSERT_FALSE(stub_->RunPodSandbox(&ctx, req, &resp).ok());
  absl::StatusOr<std::vector<std::string>> shims = ListDir(tmp_.Sub("state/shims"));
  EXPECT_THAT(shims.value_or(std::vector<std::string>{}), IsEmpty()) << Log();
  for (const char* hierarchy : {"cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio",
                                "pids", "hugetlb", "net_cls", "perf_event", "systemd", "unified"}) {
    ::rmdir(absl::StrCat("/sys/fs/cgroup/", hierarchy, parent).c_str());
  }
  ::rmdir(absl::StrCat("/sys/fs/cgroup", parent).c_str());
}

// crid killed inside RunPodSandbox, after the pod's shim was spawned: the
// restarted crid removes the half-made pod and stops its shim.
TEST_F(ContainerEndToEndTest, KilledInsideRunPodSandboxLeavesNoShimAfterRestart) {
  crid_->Signal(SIGTERM);
  ASSERT_EQ(crid_->Wait(absl::Seconds(30)), 0) << Log();
  ::setenv("CRID_TEST_CRASH_AT", "sandbox-run-before-ready", 1);
  crid_ = StartCrid();
  ::unsetenv("CRID_TEST_CRASH_AT");
  {
    grpc::ClientContext ctx;
    v1::RunPodSandboxRequest req;
    *req.mutable_config() = PodConfig("crashed");
    v1::RunPodSandboxResponse resp;
    EXPECT_FALSE(stub_->RunPodSandbox(&ctx, req, &resp).ok());
  }
  ASSERT_EQ(crid_->Wait(absl::Seconds(20)), 128 + SIGKILL) << Log();
  std::vector<std::string> shims =
      ListDir(tmp_.Sub("state/shims")).value_or(std::vector<std::string>{});
  ASSERT_EQ(shims.size(), 1u) << Log();
  pid_t shim_pid =
      std::stoi(ReadFile(tmp_.Sub("state/shims/" + shims[0] + "/shim.pid")).value_or("0"));
  ASSERT_GT(shim_pid, 0);
  EXPECT_EQ(::kill(shim_pid, 0), 0) << "the crash left the pod's shim running";

  crid_ = StartCrid();
  grpc::ClientContext ctx;
  v1::ListPodSandboxResponse list;
  ASSERT_TRUE(stub_->ListPodSandbox(&ctx, {}, &list).ok());
  EXPECT_EQ(list.items_size(), 0);
  EXPECT_TRUE(WaitFor([&] { return ::kill(shim_pid, 0) != 0; })) << "the shim survived recovery";
  EXPECT_THAT(ListDir(tmp_.Sub("state/shims")).value_or(std::vector<std::string>{}), IsEmpty());
}

TEST_F(ContainerEndToEndTest, UpdateResourcesAndReopenLog) {
  std::string pod = RunPod(PodConfig("update"));
  std::string id =
      RunContainer(pod, ShellContainer("u", "while true; do echo tick; sleep 0.2; done"));
  v1::LinuxContainerResources res;
  res.set_memory_limit_in_bytes(64 << 20);
  res.set_cpu_shares(512);
  {
    grpc::ClientContext ctx;
    v1::UpdateContainerResourcesRequest req;
    req.set_container_id(id);
    *req.mutable_linux() = res;
    v1::UpdateContainerResourcesResponse resp;
    grpc::Status st = stub_->UpdateContainerResources(&ctx, req, &resp);
    ASSERT_TRUE(st.ok()) << st.error_message();
  }
  EXPECT_EQ(Status(id).status().resources().linux().memory_limit_in_bytes(), 64 << 20);
  std::string limit = ExecOut(id,
                              "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || "
                              "cat /sys/fs/cgroup/memory.max");
  EXPECT_EQ(limit, absl::StrCat(64 << 20, "\n"));

  // kubelet's rotation: rename, then ReopenContainerLog.
  std::string log = tmp_.Sub("logs/update/u.log");
  ASSERT_EQ(::rename(log.c_str(), (log + ".1").c_str()), 0);
  {
    grpc::ClientContext ctx;
    v1::ReopenContainerLogRequest req;
    req.set_container_id(id);
    v1::ReopenContainerLogResponse resp;
    ASSERT_TRUE(stub_->ReopenContainerLog(&ctx, req, &resp).ok());
  }
  EXPECT_TRUE(WaitFor([&] {
    return absl::StrContains(ReadFile(log).value_or(""), " stdout F tick\n");
  })) << "nothing written to the reopened "
      << log;
}

TEST_F(ContainerEndToEndTest, StatsFromCgroupsLayerAndNetwork) {
  std::string pod = RunPod(PodConfig("stats"));
  v1::ContainerConfig busy =
      ShellContainer("busy", "head -c 20000000 /dev/zero > /tmp/blob; while true; do :; done");
  (*busy.mutable_labels())["role"] = "busy";
  std::string id = RunContainer(pod, busy);
  std::string idle = RunContainer(pod, ShellContainer("idle", "sleep 1000"));
  auto container_stats = [&](const std::string& cid) {
    grpc::ClientContext ctx;
    v1::ContainerStatsRequest req;
    req.set_container_id(cid);
    v1::ContainerStatsResponse resp;
    grpc::Status st = stub_->ContainerStats(&ctx, req, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return resp.stats();
  };
  // The busy loop runs once the blob is written.
  EXPECT_TRUE(WaitFor([&] {
    return container_stats(id).writable_layer().used_bytes().value() >= 20000000u;
  })) << Log();
  v1::ContainerStats first = container_stats(id);
  absl::SleepFor(absl::Seconds(1));  // the window the CPU rate is measured over
  v1::ContainerStats second = container_stats(id);
  EXPECT_EQ(second.attributes().id(), id);
  EXPECT_EQ(second.attributes().labels().at("role"), "busy");
  EXPECT_GT(second.cpu().usage_core_nano_seconds().value(),
            first.cpu().usage_core_nano_seconds().value());
  // A busy loop: well over a tenth of a core between the two samples.
  EXPECT_GT(second.cpu().usage_nano_cores().value(), 100000000u);
  EXPECT_GT(second.memory().working_set_bytes().value(), 0u);
  EXPECT_GE(second.writable_layer().used_bytes().value(), 20000000u);
  EXPECT_GT(second.writable_layer().inodes_used().value(), 0u);
  {
    grpc::ClientContext ctx;
    v1::ListContainerStatsRequest req;
    (*req.mutable_filter()->mutable_label_selector())["role"] = "busy";
    v1::ListContainerStatsResponse resp;
    ASSERT_TRUE(stub_->ListContainerStats(&ctx, req, &resp).ok());
    ASSERT_EQ(resp.stats_size(), 1);
    EXPECT_EQ(resp.stats(0).attributes().id(), id);
  }
  {
    grpc::ClientContext ctx;
    v1::ListContainerStatsRequest req;
    req.mutable_filter()->set_pod_sandbox_id(pod);
    v1::ListContainerStatsResponse resp;
    ASSERT_TRUE(stub_->ListContainerStats(&ctx, req, &resp).ok());
    EXPECT_EQ(resp.stats_size(), 2);
  }
  grpc::ClientContext ctx;
  v1::PodSandboxStatsRequest req;
  req.set_pod_sandbox_id(pod);
  v1::PodSandboxStatsResponse resp;
  grpc::Status st = stub_->PodSandboxStats(&ctx, req, &resp);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(resp.stats().attributes().id(), pod);
  EXPECT_EQ(resp.stats().linux().containers_size(), 2);
  EXPECT_GT(resp.stats().linux().cpu().usage_core_nano_seconds().value(), 0u);
  EXPECT_EQ(resp.stats().linux().network().default_interface().name(), "eth0");
  ASSERT_TRUE(Stop(id, 0).ok());
  EXPECT_TRUE(Status(idle).status().state() == v1::CONTAINER_RUNNING);
}

TEST_F(ContainerEndToEndTest, RunsOnCrunWhereTheHostAllowsIt) {
  ASSERT_EQ(::access("/usr/bin/crun", X_OK), 0) << "crun is required (tools/install-deps.sh)";
  grpc::ClientContext ctx;
  v1::RunPodSandboxRequest run;
  *run.mutable_config() = PodConfig("crun");
  run.set_runtime_handler("crun");
  v1::RunPodSandboxResponse resp;
  grpc::Status pod_st = stub_->RunPodSandbox(&ctx, run, &resp);
  ASSERT_TRUE(pod_st.ok()) << pod_st.error_message();
  std::string pod = resp.pod_sandbox_id();
  pod_configs_[pod] = run.config();
  std::string id;
  grpc::Status st = Create(pod, ShellContainer("c", "echo on-crun; exit 5"), &id);
  if (st.ok()) {
    st = Start(id);
  }
  if (!st.ok() && absl::StrContains(st.error_message(), "hybrid mode not supported")) {
    GTEST_SKIP() << "SKIPPED LOUDLY: crun cannot run containers on this host: "
                 << st.error_message();
  }
  ASSERT_TRUE(st.ok()) << st.error_message() << "\n" << Log();
  v1::ContainerStatus status = WaitExited(id, absl::Seconds(20));
  EXPECT_EQ(status.exit_code(), 5);
  EXPECT_THAT(ReadLog("crun", "c"), HasSubstr(" stdout F on-crun\n"));
}

// The exit code a session's error stream reports: 0 for Success.
int SessionExitCode(const std::string& status_json) {
  nlohmann::json status = nlohmann::json::parse(status_json, nullptr, false);
  if (!status.is_object()) {
    return -1;
  }
  if (status.value("status", "") == "Success") {
    return 0;
  }
  if (status.value("reason", "") != "NonZeroExitCode") {
    return -2;
  }
  return std::stoi(status["details"]["causes"][0]["message"].get<std::string>());
}

TEST_F(ContainerEndToEndTest, ExecStreamsOutputStdinAndExitCode) {
  std::string pod = RunPod(PodConfig("iexec"));
  std::string id = RunContainer(pod, ShellContainer("main", "sleep 1000"));

  Session s =
      OpenSession(SessionUrl(id, {"/bin/sh", "-c", "echo out; echo err >&2; exit 7"}, false, false),
                  false, false);
  ASSERT_NE(s.client, nullptr);
  EXPECT_EQ(s.client->ReadAll(s.out).value_or("?"), "out\n");
  EXPECT_EQ(s.client->ReadAll(s.err).value_or("?"), "err\n");
  EXPECT_EQ(SessionExitCode(s.client->ReadAll(s.error).value_or("")), 7) << Log();

  // stdin reaches the process, and closing it is EOF.
  Session cat =
      OpenSession(SessionUrl(id, {"/bin/sh", "-c", "tr a-z A-Z"}, true, false), true, false);
  ASSERT_NE(cat.client, nullptr);
  ASSERT_TRUE(cat.client->Write(cat.in, "typed input\n").ok());
  ASSERT_TRUE(cat.client->CloseStream(cat.in).ok());
  EXPECT_EQ(cat.client->ReadAll(cat.out).value_or("?"), "TYPED INPUT\n");
  EXPECT_EQ(SessionExitCode(cat.client->ReadAll(cat.error).value_or("")), 0);
}

TEST_F(ContainerEndToEndTest, ExecWithTerminalFollowsResize) {
  std::string pod = RunPod(PodConfig("ttyexec"));
  std::string id = RunContainer(pod, ShellContainer("main", "sleep 1000"));
  Session s = OpenSession(SessionUrl(id, {"/bin/sh"}, true, true), true, true);
  ASSERT_NE(s.client, nullptr);
  ASSERT_TRUE(s.client->Write(s.resize, R"({"Width":77,"Height":22})").ok());
  std::string out = AskUntil(s, "busybox stty size\n", "22 77");
  ASSERT_TRUE(s.client->Write(s.in, "busybox tty; exit 3\n").ok());
  out += s.client->ReadAll(s.out).value_or("");
  EXPECT_THAT(out, HasSubstr("22 77"));
  EXPECT_THAT(out, HasSubstr("/dev/pts/"));
  EXPECT_EQ(SessionExitCode(s.client->ReadAll(s.error).value_or("")), 3) << out;

  // A second size mid-session reaches the terminal too.
  Session again = OpenSession(SessionUrl(id, {"/bin/sh"}, true, true), true, true);
  ASSERT_NE(again.client, nullptr);
  ASSERT_TRUE(again.client->Write(again.in, "busybox stty size\n").ok());
  ReadUntil(again.client.get(), again.out, "\n");
  ASSERT_TRUE(again.client->Write(again.resize, R"({"Width":132,"Height":41})").ok());
  std::string seen = AskUntil(again, "busybox stty size\n", "41 132");
  ASSERT_TRUE(again.client->Write(again.in, "exit\n").ok());
  seen += again.client->ReadAll(again.out).value_or("");
  EXPECT_THAT(seen, HasSubstr("41 132"));
}

TEST_F(ContainerEndToEndTest, AbandonedExecIsKilled) {
  std::string pod = RunPod(PodConfig("abandon"));
  std::string id = RunContainer(pod, ShellContainer("main", "sleep 1000"));
  Session s = OpenSession(SessionUrl(id, {"/bin/sleep", "4242"}, false, false), false, false);
  ASSERT_NE(s.client, nullptr);
  absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (!absl::StrContains(ExecOut(id, "ps"), "4242") && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  ASSERT_THAT(ExecOut(id, "ps"), HasSubstr("sleep 4242"));
  s.client->Close();
  deadline = absl::Now() + absl::Seconds(15);
  while (absl::StrContains(ExecOut(id, "ps"), "4242") && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_THAT(ExecOut(id, "ps"), Not(HasSubstr("sleep 4242"))) << Log();
}

TEST_F(ContainerEndToEndTest, AttachSharesOutputAndStdinOnceEndsTheContainer) {
  std::string pod = RunPod(PodConfig("attach"));
  v1::ContainerConfig config = ShellContainer("main", "");
  config.clear_args();  // a shell reading commands from stdin
  config.set_stdin(true);
  config.set_stdin_once(true);
  std::string id = RunContainer(pod, config);

  Session watcher = OpenSession(SessionUrl(id, {}, false, false), false, false);
  Session typist = OpenSession(SessionUrl(id, {}, true, false), true, false);
  ASSERT_NE(watcher.client, nullptr);
  ASSERT_NE(typist.client, nullptr);
  // Both attaches get the shell's output once subscribed: echo until both see it.
  std::string watched, typed;
  ASSERT_TRUE(WaitFor([&] {
    EXPECT_TRUE(typist.client->Write(typist.in, "echo subscribed\n").ok());
    watched += ReadUntil(watcher.client.get(), watcher.out, "subscribed", absl::Milliseconds(200));
    typed += ReadUntil(typist.client.get(), typist.out, "subscribed", absl::Milliseconds(200));
    return absl::StrContains(watched, "subscribed") && absl::StrContains(typed, "subscribed");
  })) << "watcher: "
      << watched << ", typist: " << typed;
  ASSERT_TRUE(typist.client->Write(typist.in, "echo hi-from-attach; echo oops >&2\n").ok());
  EXPECT_THAT(ReadUntil(typist.client.get(), typist.out, "hi-from-attach"),
              HasSubstr("hi-from-attach"));
  EXPECT_THAT(ReadUntil(typist.client.get(), typist.err, "oops"), HasSubstr("oops"));
  EXPECT_THAT(ReadUntil(watcher.client.get(), watcher.out, "hi-from-attach"),
              HasSubstr("hi-from-attach"));

  // stdin_once: closing the attach's stdin closes the container's, so the
  // shell reads EOF and the container completes; both attaches end cleanly.
  ASSERT_TRUE(typist.client->CloseStream(typist.in).ok());
  v1::ContainerStatus status = WaitExited(id, absl::Seconds(20));
  EXPECT_EQ(status.exit_code(), 0);
  EXPECT_EQ(SessionExitCode(typist.client->ReadAll(typist.error).value_or("")), 0);
  EXPECT_EQ(SessionExitCode(watcher.client->ReadAll(watcher.error).value_or("")), 0);
  EXPECT_THAT(ReadLog("attach", "main"), HasSubstr("stdout F hi-from-attach"));

  // Nothing to attach to once it exited.
  Session late = OpenSession(SessionUrl(id, {}, false, false), false, false);
  ASSERT_NE(late.client, nullptr);
  EXPECT_THAT(late.client->ReadAll(late.error).value_or(""), HasSubstr("not running"));
}

TEST_F(ContainerEndToEndTest, AttachToTerminalFollowsResize) {
  std::string pod = RunPod(PodConfig("ttyattach"));
  v1::ContainerConfig config = ShellContainer("main", "");
  config.clear_args();
  config.set_stdin(true);
  config.set_tty(true);
  std::string id = RunContainer(pod, config);
  Session s = OpenSession(SessionUrl(id, {}, true, true), true, true);
  ASSERT_NE(s.client, nullptr);
  ASSERT_TRUE(s.client->Write(s.resize, R"({"Width":120,"Height":50})").ok());
  EXPECT_THAT(AskUntil(s, "busybox stty size\n", "50 120"), HasSubstr("50 120")) << Log();
  // Detaching leaves the container running.
  s.client->Close();
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_EQ(Status(id).status().state(), v1::CONTAINER_RUNNING);
}

TEST_F(ContainerEndToEndTest, MetricsUseCadvisorNames) {
  // A pod cgroup as kubelet would make it (cgroupfs on this host), for the
  // pod-level cgroup families.
  const std::string parent = absl::StrCat("/crid-e2e-metrics-", ::getpid());
  v1::PodSandboxConfig config = PodConfig("metrics");
  config.mutable_linux()->set_cgroup_parent(parent);
  std::string pod = RunPod(config);
  absl::Cleanup remove_pod_cgroup = [&] {
    grpc::ClientContext stop_ctx;
    v1::StopPodSandboxRequest stop;
    stop.set_pod_sandbox_id(pod);
    v1::StopPodSandboxResponse stop_resp;
    (void)stub_->StopPodSandbox(&stop_ctx, stop, &stop_resp);
    grpc::ClientContext rm_ctx;
    v1::RemovePodSandboxRequest rm;
    rm.set_pod_sandbox_id(pod);
    v1::RemovePodSandboxResponse rm_resp;
    (void)stub_->RemovePodSandbox(&rm_ctx, rm, &rm_resp);
    for (const char* hierarchy :
         {"cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids", "hugetlb",
          "net_cls", "perf_event", "systemd", "unified"}) {
      ::rmdir(absl::StrCat("/sys/fs/cgroup/", hierarchy, parent).c_str());
    }
    ::rmdir(absl::StrCat("/sys/fs/cgroup", parent).c_str());
  };
  std::string busy = RunContainer(pod, ShellContainer("busy", "while true; do :; done"));
  std::string done = RunContainer(pod, ShellContainer("done", "true"));
  // A stopped pod is left out.
  std::string stopped_pod = RunPod(PodConfig("metrics-stopped"));
  {
    grpc::ClientContext ctx;
    v1::StopPodSandboxRequest req;
    req.set_pod_sandbox_id(stopped_pod);
    v1::StopPodSandboxResponse resp;
    ASSERT_TRUE(stub_->StopPodSandbox(&ctx, req, &resp).ok()) << Log();
  }

  std::map<std::string, v1::MetricDescriptor> descriptors;
  {
    grpc::ClientContext ctx;
    v1::ListMetricDescriptorsResponse resp;
    grpc::Status st = stub_->ListMetricDescriptors(&ctx, {}, &resp);
    ASSERT_TRUE(st.ok()) << st.error_message();
    for (const v1::MetricDescriptor& d : resp.descriptors()) {
      EXPECT_TRUE(descriptors.emplace(d.name(), d).second) << "duplicate " << d.name();
      EXPECT_FALSE(d.help().empty()) << d.name();
    }
  }
  for (const char* name :
       {"container_cpu_usage_seconds_total", "container_memory_working_set_bytes",
        "container_memory_usage_bytes", "container_memory_rss", "container_spec_memory_limit_bytes",
        "container_oom_events_total", "container_start_time_seconds", "container_last_seen",
        "container_network_receive_bytes_total", "container_network_transmit_bytes_total"}) {
    ASSERT_EQ(descriptors.count(name), 1u) << name;
  }

  // The value of label `key` in `m`, by its descriptor.
  auto label = [&](const v1::Metric& m, const std::string& key) -> std::string {
    const v1::MetricDescriptor& d = descriptors.at(m.name());
    for (int i = 0; i < d.label_keys_size() && i < m.label_values_size(); ++i) {
      if (d.label_keys(i) == key) {
        return m.label_values(i);
      }
    }
    return "<no label " + key + ">";
  };
  auto list = [&]() {
    grpc::ClientContext ctx;
    v1::ListPodSandboxMetricsResponse resp;
    grpc::Status st = stub_->ListPodSandboxMetrics(&ctx, {}, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return resp;
  };
  auto find = [](const v1::PodSandboxMetrics& pm, const std::string& container_id,
                 const std::string& name) -> const v1::Metric* {
    const google::protobuf::RepeatedPtrField<v1::Metric>* metrics = &pm.metrics();
    if (!container_id.empty()) {
      metrics = nullptr;
      for (const v1::ContainerMetrics& cm : pm.container_metrics()) {
        if (cm.container_id() == container_id) {
          metrics = &cm.metrics();
        }
      }
    }
    if (metrics != nullptr) {
      for (const v1::Metric& m : *metrics) {
        if (m.name() == name) {
          return &m;
        }
      }
    }
    return nullptr;
  };

  // A busy loop reaches a whole second of CPU (the unit of the counter) soon.
  v1::PodSandboxMetrics ours;
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (true) {
    v1::ListPodSandboxMetricsResponse resp = list();
    ours.Clear();
    for (const v1::PodSandboxMetrics& pm : resp.pod_metrics()) {
      EXPECT_NE(pm.pod_sandbox_id(), stopped_pod) << "only ready pods";
      if (pm.pod_sandbox_id() == pod) {
        ours = pm;
      }
    }
    ASSERT_EQ(ours.pod_sandbox_id(), pod);
    const v1::Metric* cpu = find(ours, busy, "container_cpu_usage_seconds_total");
    ASSERT_NE(cpu, nullptr) << ours.DebugString();
    if (cpu->value().value() >= 1 || absl::Now() > deadline) {
      break;
    }
    absl::SleepFor(absl::Milliseconds(500));
  }

  // Every sample is described and its label values line up with the keys.
  for (const v1::Metric& m : ours.metrics()) {
    ASSERT_EQ(descriptors.count(m.name()), 1u) << m.name();
    EXPECT_EQ(m.label_values_size(), descriptors.at(m.name()).label_keys_size()) << m.name();
    EXPECT_EQ(label(m, "pod"), "metrics");
    EXPECT_EQ(label(m, "namespace"), "default");
    EXPECT_EQ(label(m, "id"), pod);
  }
  ASSERT_EQ(ours.container_metrics_size(), 1) << "only running containers: " << done;
  const v1::ContainerMetrics& cm = ours.container_metrics(0);
  EXPECT_EQ(cm.container_id(), busy);
  for (const v1::Metric& m : cm.metrics()) {
    ASSERT_EQ(descriptors.count(m.name()), 1u) << m.name();
    EXPECT_EQ(m.label_values_size(), descriptors.at(m.name()).label_keys_size()) << m.name();
    EXPECT_EQ(label(m, "container"), "busy") << m.name();
    EXPECT_EQ(label(m, "id"), busy) << m.name();
    EXPECT_EQ(label(m, "image"), image_) << m.name();
    EXPECT_EQ(label(m, "pod"), "metrics") << m.name();
    EXPECT_EQ(label(m, "namespace"), "default") << m.name();
    EXPECT_EQ(m.timestamp(), 0) << m.name() << ": read live";
  }
  const v1::Metric* cpu = find(ours, busy, "container_cpu_usage_seconds_total");
  EXPECT_GE(cpu->value().value(), 1u);
  EXPECT_EQ(cpu->metric_type(), v1::COUNTER);
  for (const char* name :
       {"container_memory_working_set_bytes", "container_memory_usage_bytes", "container_threads",
        "container_start_time_seconds", "container_last_seen"}) {
    const v1::Metric* m = find(ours, busy, name);
    ASSERT_NE(m, nullptr) << name;
    EXPECT_GT(m->value().value(), 0u) << name;
    EXPECT_EQ(m->metric_type(), v1::GAUGE) << name;
  }
  const v1::Metric* oom = find(ours, busy, "container_oom_events_total");
  ASSERT_NE(oom, nullptr);
  EXPECT_EQ(oom->metric_type(), v1::COUNTER);
  EXPECT_EQ(oom->value().value(), 0u);
  const int64_t now_s = absl::ToUnixSeconds(absl::Now());
  const v1::Metric* started = find(ours, busy, "container_start_time_seconds");
  EXPECT_LE(static_cast<int64_t>(started->value().value()), now_s);
  EXPECT_GT(static_cast<int64_t>(started->value().value()), now_s - 120);
  // The pod's network counters, per interface, from inside its namespace.
  const v1::Metric* rx = find(ours, "", "container_network_receive_bytes_total");
  ASSERT_NE(rx, nullptr) << ours.DebugString();
  EXPECT_EQ(label(*rx, "interface"), "eth0");
  EXPECT_EQ(rx->metric_type(), v1::COUNTER);
  EXPECT_EQ(label(*rx, "container"), "");
  // The pod's own cgroup holds the busy container.
  const v1::Metric* pod_cpu = find(ours, "", "container_cpu_usage_seconds_total");
  ASSERT_NE(pod_cpu, nullptr) << ours.DebugString();
  EXPECT_GE(pod_cpu->value().value(), 1u);
  // Read just before the container's cgroup: at most a second boundary apart.
  EXPECT_GE(pod_cpu->value().value() + 1, cpu->value().value());
  EXPECT_EQ(label(*pod_cpu, "container"), "");
  const v1::Metric* pod_memory = find(ours, "", "container_memory_working_set_bytes");
  ASSERT_NE(pod_memory, nullptr);
  EXPECT_GT(pod_memory->value().value(), 0u);
  ASSERT_TRUE(Stop(busy, 0).ok());
}

}  // namespace
}  // namespace crid
