// End to end: CheckpointContainer and the restore of a checkpoint archive
// through crid's socket, with the real crid, crid-shim, runc and CRIU. Where
// CRIU cannot run on the host (`criu check` fails), the checkpoint must say so
// and leave nothing behind; the round trip then cannot run and is skipped
// with CRIU's reason.
#include <grpcpp/grpcpp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "base/fs.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/container_e2e_fixture.h"

namespace crid {
namespace {

using ::testing::HasSubstr;
using ::testing::IsSupersetOf;
namespace v1 = ::runtime::v1;

using container_e2e::ContainerEndToEndTest;

// Output and exit code of a shell command.
std::pair<int, std::string> Shell(const std::string& cmd) {
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = ::fread(buf, 1, sizeof buf, p)) > 0) {
    out.append(buf, n);
  }
  int status = ::pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

// Empty when CRIU can checkpoint here, else why not.
std::string CriuUnusableReason() {
  auto [code, out] = Shell("PATH=$PATH:/usr/sbin:/sbin criu check");
  return code == 0 ? "" : absl::StrCat("criu check failed (exit ", code, "): ", out);
}

bool Exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

class CheckpointEndToEndTest : public ContainerEndToEndTest {
 protected:
  grpc::Status Checkpoint(const std::string& id, const std::string& location, int64_t timeout = 0) {
    grpc::ClientContext ctx;
    v1::CheckpointContainerRequest req;
    req.set_container_id(id);
    req.set_location(location);
    req.set_timeout(timeout);
    v1::CheckpointContainerResponse resp;
    return stub_->CheckpointContainer(&ctx, req, &resp);
  }

  std::string ContainerDir(const std::string& id) { return tmp_.Sub("root/containers/" + id); }

  // The counter the round trip checkpoints: a number in memory, written to a
  // file of its writable layer five times a second.
  static constexpr char kCounter[] =
      "i=0; while true; do i=$((i+1)); echo $i > /tmp/count; sleep 0.2; done";

  int64_t Count(const std::string& id) {
    int64_t n = -1;
    std::string out = ExecOut(id, "cat /tmp/count");
    if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(out), &n)) {
      return -1;
    }
    return n;
  }
};

TEST_F(CheckpointEndToEndTest, CheckpointContainer_ValidatesAndNamesTheField) {
  grpc::Status st = Checkpoint("", tmp_.Sub("c.tar"));
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(), HasSubstr("container_id"));
  for (const std::string& location :
       {std::string(""), std::string("relative/c.tar"), tmp_.Sub("dir/")}) {
    st = Checkpoint("abc", location);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << location;
    EXPECT_THAT(st.error_message(), HasSubstr("location")) << location;
  }
  st = Checkpoint("abc", tmp_.Sub("c.tar"), -1);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(), HasSubstr("timeout"));
  st = Checkpoint("no-such-container", tmp_.Sub("c.tar"));
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND) << st.error_message();

  std::string pod = RunPod(PodConfig("cpv"));
  std::string created = CreateOk(pod, ShellContainer("created", "sleep 1000"));
  st = Checkpoint(created, tmp_.Sub("c.tar"));
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << st.error_message();
  EXPECT_THAT(st.error_message(), HasSubstr("only running containers"));
  std::string exited = RunContainer(pod, ShellContainer("exited", "exit 0"));
  WaitExited(exited, absl::Seconds(20));
  st = Checkpoint(exited, tmp_.Sub("c.tar"));
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << st.error_message();
  EXPECT_THAT(st.error_message(), HasSubstr("CONTAINER_EXITED"));

  std::string running = RunContainer(pod, ShellContainer("running", "sleep 1000"));
  st = Checkpoint(running, tmp_.Sub("no-such-dir/c.tar"));
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
  EXPECT_THAT(st.error_message(), HasSubstr("location"));
  EXPECT_FALSE(Exists(tmp_.Sub("c.tar")));
}

// On a host where CRIU cannot run, the answer says so (as containerd's
// "CRIU binary not found or too old" does) and nothing is left: no archive,
// no work directory, and the container runs on.
TEST_F(CheckpointEndToEndTest, CheckpointContainer_WithoutUsableCriuFailsCleanly) {
  std::string reason = CriuUnusableReason();
  if (reason.empty()) {
    GTEST_SKIP() << "CRIU works on this host; the round trip covers it";
  }
  std::string pod = RunPod(PodConfig("nocriu"));
  std::string id = RunContainer(pod, ShellContainer("counter", kCounter));
  std::string location = tmp_.Sub("counter.tar");
  grpc::Status st = Checkpoint(id, location);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << st.error_message();
  EXPECT_THAT(st.error_message(), HasSubstr("CRIU"));
  EXPECT_THAT(st.error_message(), HasSubstr("criu check failed"));
  EXPECT_FALSE(Exists(location));
  EXPECT_FALSE(Exists(location + ".crid-tmp"));
  EXPECT_FALSE(Exists(ContainerDir(id) + "/checkpoint-work"));
  EXPECT_EQ(Status(id).status().state(), v1::CONTAINER_RUNNING);
}

// A checkpoint archive as CRI-O and crid write it, made by hand (CRIU cannot
// make one where it cannot run): CreateContainer with the archive as its image
// makes a container on the checkpointed one's image with its process and its
// writable layer (changes and deletions); StartContainer restores it, or where
// CRIU cannot run answers why and cleans up on removal.
TEST_F(CheckpointEndToEndTest, CreateContainer_FromAnArchiveTakesItsImageSpecAndRootfsDiff) {
  std::string work = tmp_.Sub("handmade");
  ASSERT_TRUE(MakeDirs(work + "/checkpoint", 0700).ok());
  ASSERT_TRUE(MakeDirs(work + "/diff/tmp", 0755).ok());
  ASSERT_TRUE(WriteFileAtomic(work + "/diff/tmp/count", "7\n", 0644).ok());
  ASSERT_TRUE(WriteFileAtomic(work + "/checkpoint/inventory.img", "not really", 0600).ok());
  ASSERT_TRUE(WriteFileAtomic(work + "/config.dump",
                              absl::StrCat(R"({"id":"0123","name":"counter","rootfsImageName":")",
                                           image_, R"(","runtime":"runc"})"),
                              0600)
                  .ok());
  ASSERT_TRUE(WriteFileAtomic(work + "/spec.dump",
                              R"({"process":{"args":["/bin/sh","-c","echo restored"],)"
                              R"("env":["PATH=/bin","FROM_CHECKPOINT=1"],"cwd":"/tmp"}})",
                              0600)
                  .ok());
  ASSERT_TRUE(WriteFileAtomic(work + "/deleted.files", R"(["/etc/hostname-gone"])", 0600).ok());
  ASSERT_EQ(Shell(absl::StrCat("tar -C ", work, "/diff -cf ", work, "/rootfs-diff.tar tmp")).first,
            0);
  std::string archive = tmp_.Sub("handmade.tar");
  ASSERT_EQ(Shell(absl::StrCat("tar -C ", work, " -cf ", archive,
                               " config.dump spec.dump deleted.files rootfs-diff.tar checkpoint"))
                .first,
            0);

  std::string pod = RunPod(PodConfig("restore"));
  v1::ContainerConfig config;
  config.mutable_metadata()->set_name("counter");
  config.mutable_image()->set_image(archive);
  config.set_log_path("counter.log");
  std::string id = CreateOk(pod, config);
  ASSERT_FALSE(id.empty());
  v1::ContainerStatusResponse status = Status(id, true);
  EXPECT_EQ(status.status().state(), v1::CONTAINER_CREATED);
  EXPECT_EQ(status.status().image().image(), image_) << "the checkpointed container's image";
  EXPECT_EQ(status.status().annotations().at("io.crid.checkpoint.archive"), archive);
  EXPECT_THAT(status.info().at("info"), HasSubstr("echo restored")) << "the spec's process";
  EXPECT_EQ(ReadFile(ContainerDir(id) + "/upper/tmp/count").value_or(""), "7\n");
  struct stat st;
  ASSERT_EQ(::lstat((ContainerDir(id) + "/upper/etc/hostname-gone").c_str(), &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode)) << "a deleted file is a whiteout";
  EXPECT_TRUE(Exists(ContainerDir(id) + "/checkpoint-restore/checkpoint/inventory.img"));
  EXPECT_TRUE(Exists(archive)) << "the archive is the caller's";

  // A restart between create and start keeps the container waiting for its
  // restore (the pod's shim never knew it).
  crid_->Signal(SIGTERM);
  ASSERT_EQ(crid_->Wait(absl::Seconds(30)), 0) << Log();
  crid_ = StartCrid("crid-restarted.log");
  EXPECT_EQ(Status(id).status().state(), v1::CONTAINER_CREATED);
  EXPECT_TRUE(Exists(ContainerDir(id) + "/checkpoint-restore/checkpoint/inventory.img"));

  // One that is stopped before its restore starts is simply exited.
  config.mutable_metadata()->set_name("never-started");
  std::string never = CreateOk(pod, config);
  EXPECT_TRUE(Stop(never, 10).ok());
  v1::ContainerStatus stopped = Status(never).status();
  EXPECT_EQ(stopped.state(), v1::CONTAINER_EXITED);
  EXPECT_THAT(stopped.message(), HasSubstr("before its restore started"));
  EXPECT_TRUE(Remove(never).ok());
  EXPECT_FALSE(Exists(ContainerDir(never)));

  grpc::Status started = Start(id);
  EXPECT_FALSE(started.ok()) << "CRIU cannot restore images it did not write";
  std::string reason = CriuUnusableReason();
  if (!reason.empty()) {
    EXPECT_EQ(started.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
    EXPECT_THAT(started.error_message(), HasSubstr("criu check failed"));
  }
  EXPECT_EQ(Status(id).status().state(), v1::CONTAINER_EXITED);
  EXPECT_TRUE(Remove(id).ok());
  EXPECT_FALSE(Exists(ContainerDir(id)));
}

TEST_F(CheckpointEndToEndTest, CreateContainer_FromABadArchiveIsInvalidArgument) {
  std::string pod = RunPod(PodConfig("badarchive"));
  std::string not_tar = tmp_.Sub("not-a-checkpoint.tar");
  ASSERT_TRUE(WriteFileAtomic(not_tar, "hello", 0600).ok());
  v1::ContainerConfig config;
  config.mutable_metadata()->set_name("c");
  config.mutable_image()->set_image(not_tar);
  std::string id;
  grpc::Status st = Create(pod, config, &id);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
  EXPECT_THAT(st.error_message(), HasSubstr("image.image"));
  // Nothing of the attempt is left under crid's root.
  auto [code, left] = Shell(absl::StrCat("ls ", tmp_.Sub("root/containers")));
  EXPECT_THAT(left, testing::Not(HasSubstr("restore-")));
}

// The must-have: a running counter is checkpointed (and keeps running), its
// archive has the layout checkpointctl reads, and a new pod's container
// restored from it continues the count instead of starting again.
TEST_F(CheckpointEndToEndTest, CheckpointAndRestore_CounterContinuesInANewPod) {
  std::string reason = CriuUnusableReason();
  if (!reason.empty()) {
    GTEST_SKIP() << "CRIU cannot run on this host: " << reason;
  }
  std::string pod = RunPod(PodConfig("source"));
  std::string id = RunContainer(pod, ShellContainer("counter", kCounter));
  ASSERT_TRUE(WaitFor([&] { return Count(id) >= 15; })) << Log();

  std::string location = tmp_.Sub("counter.tar");
  // The count CRIU saves is at least this.
  int64_t at_checkpoint = Count(id);
  grpc::Status st = Checkpoint(id, location, 60);
  ASSERT_TRUE(st.ok()) << st.error_message() << "\n" << Log();
  EXPECT_GT(Count(id), 0);
  EXPECT_EQ(Status(id).status().state(), v1::CONTAINER_RUNNING)
      << "the checkpoint leaves it running";
  EXPECT_FALSE(Exists(ContainerDir(id) + "/checkpoint-work"));
  auto [code, listing] = Shell("tar -tf " + location);
  ASSERT_EQ(code, 0) << listing;
  std::vector<std::string> members = absl::StrSplit(listing, '\n', absl::SkipEmpty());
  EXPECT_THAT(members, IsSupersetOf({"config.dump", "spec.dump", "status.dump", "rootfs-diff.tar",
                                     "deleted.files", "dump.log", "checkpoint/"}));

  std::string pod2 = RunPod(PodConfig("target"));
  v1::ContainerConfig config;
  config.mutable_metadata()->set_name("counter");
  config.mutable_image()->set_image(location);
  config.set_log_path("counter.log");
  std::string restored = CreateOk(pod2, config);
  st = Start(restored);
  ASSERT_TRUE(st.ok()) << st.error_message() << "\n" << Log();
  EXPECT_EQ(Status(restored).status().state(), v1::CONTAINER_RUNNING);
  EXPECT_EQ(Status(restored).status().image().image(), image_);
  int64_t first = Count(restored);
  // A counter started afresh would be near 1; the restored one goes on from
  // where the checkpoint caught it.
  EXPECT_GE(first, at_checkpoint);
  ASSERT_TRUE(WaitFor([&] { return Count(restored) >= first + 5; })) << Log();
}

}  // namespace
}  // namespace crid
