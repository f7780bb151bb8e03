// The real runc drives a container through create, start, state, kill, update
// and delete; the test process is a subreaper, as the shim will be, so it reaps
// the container's init and sees its exit code; runtime errors keep their words.
#include "oci/oci_runtime.h"

#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>

#include "absl/strings/str_cat.h"
#include "base/fs.h"
#include "base/temp_dir.h"
#include "container/oci_spec.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace crid {
namespace {

using ::testing::HasSubstr;
namespace v1 = ::runtime::v1;

TEST(RuntimeErrorMessage, JsonAndPlainText) {
  EXPECT_EQ(RuntimeErrorMessage("{\"level\":\"info\",\"msg\":\"ok\"}\n"
                                "{\"level\":\"error\",\"msg\":\"exec failed\"}\n"),
            "exec failed");
  EXPECT_EQ(RuntimeErrorMessage("plain failure\n"), "plain failure");
  EXPECT_EQ(RuntimeErrorMessage(""), "");
}

// A stand-in runtime (a shell script) shows what every runtime invocation
// gets: clean signal state whatever the caller's, and input on stdin.
class FakeRuntimeTest : public ::testing::Test {
 protected:
  OciRuntime Runtime(const std::string& script) {
    std::string path = tmp_.Sub("fake-runtime");
    std::ofstream(path) << "#!/bin/sh\n" << script;
    ::chmod(path.c_str(), 0755);
    OciRuntimeConfig config;
    config.name = "fake";
    config.binary = path;
    config.root = tmp_.Sub("root");
    return OciRuntime(config);
  }

  TempDir tmp_;
};

TEST_F(FakeRuntimeTest, RuntimeStartsWithCleanSignalState) {
  OciRuntime runtime = Runtime(
      "while read -r k v; do case $k in SigBlk:) b=$v;; SigIgn:) i=$v;; esac; "
      "done < /proc/$$/status\n"
      R"(echo "{\"status\":\"$b $i\",\"pid\":1}")"
      "\n");
  // What a shim has: SIGCHLD blocked for its signalfd, SIGPIPE ignored.
  sigset_t block, old_mask;
  sigemptyset(&block);
  sigaddset(&block, SIGCHLD);
  sigaddset(&block, SIGTERM);
  ASSERT_EQ(::pthread_sigmask(SIG_BLOCK, &block, &old_mask), 0);
  sighandler_t old_pipe = ::signal(SIGPIPE, SIG_IGN);
  absl::StatusOr<OciState> state = runtime.State("c1");
  ::signal(SIGPIPE, old_pipe);
  ::pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->status, "0000000000000000 0000000000000000");
}

TEST_F(FakeRuntimeTest, UpdatePassesResourcesOnStdin) {
  OciRuntime runtime = Runtime(absl::StrCat("cat > ", tmp_.Sub("stdin"), "\n"));
  ASSERT_TRUE(runtime.Update("c1", R"({"cpu":{"shares":512}})").ok());
  EXPECT_EQ(ReadFile(tmp_.Sub("stdin")).value_or(""), R"({"cpu":{"shares":512}})");
}

TEST_F(FakeRuntimeTest, RuntimeThatIgnoresItsInputIsAnAnswerNotASignal) {
  OciRuntime runtime = Runtime("echo 'no input wanted' >&2\nexit 1\n");
  absl::Status st = runtime.Update("c1", std::string(1 << 20, 'x'));
  EXPECT_EQ(st.code(), absl::StatusCode::kInternal);
  EXPECT_THAT(std::string(st.message()), HasSubstr("no input wanted"));
}

// crid as a Type=notify unit has NOTIFY_SOCKET; the runtime must not see it
// (runc would proxy the container's notifications through a socket of its own).
TEST_F(FakeRuntimeTest, RuntimeDoesNotGetSystemdsNotifySocket) {
  OciRuntime runtime =
      Runtime(R"(echo "{\"status\":\"${NOTIFY_SOCKET-unset} $FAKE_KEPT\",\"pid\":1}")"
              "\n");
  ::setenv("NOTIFY_SOCKET", "/run/systemd/notify", 1);
  ::setenv("FAKE_KEPT", "kept", 1);
  absl::StatusOr<OciState> state = runtime.State("c1");
  ::unsetenv("NOTIFY_SOCKET");
  ::unsetenv("FAKE_KEPT");
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->status, "unset kept");
}

TEST_F(FakeRuntimeTest, FeatureMountOptionsAreReadFromFeatures) {
  OciRuntime runtime = Runtime(
      "[ \"$3\" = features ] || exit 1\n"
      "echo '{\"ociVersionMin\":\"1.0.0\",\"mountOptions\":[\"ro\",\"rro\"]}'\n");
  absl::StatusOr<std::vector<std::string>> options = runtime.FeatureMountOptions();
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_THAT(*options, ::testing::ElementsAre("ro", "rro"));
}

TEST_F(FakeRuntimeTest, RuntimeWithoutFeaturesCommandIsAnError) {
  OciRuntime runtime = Runtime("echo 'unknown command features' >&2; exit 1\n");
  absl::StatusOr<std::vector<std::string>> options = runtime.FeatureMountOptions();
  EXPECT_EQ(options.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(std::string(options.status().message()), HasSubstr("unknown command features"));
}

// A missing runtime binary is named, and is not taken for "no such container".
TEST(OciRuntimeBinary, MissingBinaryIsNamedAndIsNotNotFound) {
  OciRuntimeConfig config;
  config.name = "runc";
  config.binary = "/nonexistent/runc";
  config.root = "/nonexistent/root";
  OciRuntime runtime(config);
  absl::StatusOr<OciState> state = runtime.State("c1");
  EXPECT_EQ(state.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(std::string(state.status().message()), HasSubstr("/nonexistent/runc"));
  EXPECT_THAT(std::string(state.status().message()), HasSubstr("No such file or directory"));
  absl::Status deleted = runtime.Delete("c1", /*force=*/true);
  EXPECT_EQ(deleted.code(), absl::StatusCode::kInternal) << "a delete that never ran is no success";
}

class OciRuntimeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::access("/usr/sbin/runc", X_OK) != 0 || ::access("/bin/busybox", R_OK) != 0) {
      GTEST_SKIP() << "needs runc and busybox-static";
    }
    ASSERT_EQ(::prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
    std::string rootfs = tmp_.Sub("bundle/rootfs");
    ASSERT_TRUE(MakeDirs(rootfs + "/bin", 0755).ok());
    ASSERT_TRUE(MakeDirs(rootfs + "/etc", 0755).ok());
    std::ifstream in("/bin/busybox", std::ios::binary);
    std::ofstream out(rootfs + "/bin/busybox", std::ios::binary);
    out << in.rdbuf();
    out.close();
    ASSERT_EQ(::chmod((rootfs + "/bin/busybox").c_str(), 0755), 0);
    for (const char* applet : {"sh", "sleep", "cat", "echo"}) {
      ASSERT_EQ(::symlink("busybox", (rootfs + "/bin/" + applet).c_str()), 0);
    }
    id_ = absl::StrCat("oci-runtime-test-", ::getpid());
    OciRuntimeConfig config;
    config.name = "runc";
    config.binary = "/usr/sbin/runc";
    config.root = tmp_.Sub("runc-root");
    runtime_ = std::make_unique<OciRuntime>(config);
  }

  void TearDown() override {
    if (runtime_ != nullptr) {
      (void)runtime_->Delete(id_, /*force=*/true);
    }
    for (const char* c :
         {"cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids", "systemd"}) {
      ::rmdir(absl::StrCat("/sys/fs/cgroup/", c, "/crid-runtime-test").c_str());
    }
  }

  void WriteSpec(const std::string& script) {
    v1::ContainerConfig config;
    config.mutable_metadata()->set_name("t");
    config.add_command("/bin/sh");
    config.add_command("-c");
    config.add_command(script);
    auto* ns = config.mutable_linux()->mutable_security_context()->mutable_namespace_options();
    ns->set_network(v1::NODE);
    ns->set_ipc(v1::NODE);
    ns->set_pid(v1::CONTAINER);
    SandboxSpecInfo sandbox;
    sandbox.cgroup_parent = "/crid-runtime-test";
    SpecOptions options;
    options.container_id = id_;
    options.rootfs = tmp_.Sub("bundle/rootfs");
    auto spec = BuildOciSpec(config, {}, sandbox, options);
    ASSERT_TRUE(spec.ok()) << spec.status();
    ASSERT_TRUE(WriteFileAtomic(tmp_.Sub("bundle/config.json"), spec->dump(), 0644).ok());
  }

  // Waits for the container's init (our descendant, reparented to us).
  int WaitExit(pid_t pid) {
    int status = 0;
    EXPECT_EQ(::waitpid(pid, &status, 0), pid);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

  TempDir tmp_;
  std::string id_;
  std::unique_ptr<OciRuntime> runtime_;
};

// Debian's runc 1.1.5 lists the recursive options (mount_setattr) crid's
// recursive read-only volumes need.
TEST_F(OciRuntimeTest, RuncListsRecursiveReadOnlyMountOption) {
  absl::StatusOr<std::vector<std::string>> options = runtime_->FeatureMountOptions();
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_THAT(*options, ::testing::Contains("rro"));
}

TEST_F(OciRuntimeTest, CreateStartExitCodeAndOutput) {
  WriteSpec("echo to-stdout; echo to-stderr >&2; exit 3");
  int out[2];
  int err[2];
  ASSERT_EQ(::pipe(out), 0);
  ASSERT_EQ(::pipe(err), 0);
  auto pid = runtime_->Create(id_, tmp_.Sub("bundle"), {-1, out[1], err[1]});
  ::close(out[1]);
  ::close(err[1]);
  ASSERT_TRUE(pid.ok()) << pid.status();
  auto state = runtime_->State(id_);
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->status, "created");
  EXPECT_EQ(state->pid, *pid);
  ASSERT_TRUE(runtime_->Start(id_).ok());
  EXPECT_EQ(WaitExit(*pid), 3);
  char buf[256] = {};
  EXPECT_EQ(std::string(buf, ::read(out[0], buf, sizeof(buf))), "to-stdout\n");
  EXPECT_EQ(std::string(buf, ::read(err[0], buf, sizeof(buf))), "to-stderr\n");
  ::close(out[0]);
  ::close(err[0]);
  EXPECT_EQ(runtime_->State(id_)->status, "stopped");
  ASSERT_TRUE(runtime_->Delete(id_, false).ok());
  EXPECT_EQ(runtime_->State(id_).status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(runtime_->Delete(id_, false).ok()) << "deleting an unknown container is fine";
}

TEST_F(OciRuntimeTest, KillAndUpdateARunningContainer) {
  WriteSpec("sleep 1000");
  auto pid = runtime_->Create(id_, tmp_.Sub("bundle"), {});
  ASSERT_TRUE(pid.ok()) << pid.status();
  ASSERT_TRUE(runtime_->Start(id_).ok());
  EXPECT_EQ(runtime_->State(id_)->status, "running");
  ASSERT_TRUE(runtime_->Update(id_, R"({"memory": {"limit": 33554432}})").ok());
  std::string limit = ReadFile(absl::StrCat("/sys/fs/cgroup/memory/crid-runtime-test/crid-", id_,
                                            "/memory.limit_in_bytes"))
                          .value_or("");
  EXPECT_EQ(limit, "33554432\n");
  ASSERT_TRUE(runtime_->Kill(id_, SIGKILL).ok());
  EXPECT_EQ(WaitExit(*pid), 128 + SIGKILL);
}

TEST_F(OciRuntimeTest, StartFailureCarriesTheRuntimeMessage) {
  WriteSpec("true");
  // Point the process at a binary the image does not have.
  std::string spec = *ReadFile(tmp_.Sub("bundle/config.json"));
  size_t at = spec.find("\"/bin/sh\"");
  ASSERT_NE(at, std::string::npos);
  spec.replace(at, 9, "\"/nonexistent-binary\"");
  ASSERT_TRUE(WriteFileAtomic(tmp_.Sub("bundle/config.json"), spec, 0644).ok());
  absl::Status st = runtime_->Create(id_, tmp_.Sub("bundle"), {}).status();
  if (st.ok()) {
    st = runtime_->Start(id_);
  }
  ASSERT_FALSE(st.ok());
  EXPECT_THAT(std::string(st.message()), HasSubstr("nonexistent-binary"));
}

}  // namespace
}  // namespace crid
