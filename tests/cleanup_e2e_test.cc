// `crid cleanup` against what a killed crid really leaves: a pod on a CNI
// bridge with a running container, then crid and the pod's crid-shim killed
// with SIGKILL. The dry run lists the leftovers and removes nothing; the
// cleanup removes them all (the leak census finds nothing); a crid started
// afterwards has no pods and still has the image.
#include <dirent.h>

#include "tests/container_e2e_fixture.h"

namespace crid {
namespace container_e2e {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class CleanupEndToEndTest : public ContainerEndToEndTest {
 protected:
  std::vector<std::string> Flags() const {
    return {"--config", tmp_.Sub("crid.json"), "--root", tmp_.Sub("root"),
            "--state",  tmp_.Sub("state")};
  }

  std::pair<int, std::string> Cleanup(bool dry_run) {
    std::vector<std::string> args = Flags();
    args.emplace_back("cleanup");
    if (dry_run) {
      args.emplace_back("--dry-run");
    }
    return RunCridToExit(args, tmp_.path(), absl::Seconds(60));
  }

  // PIDs of the crid-shim processes serving this test's state directory.
  std::vector<pid_t> ShimPids() const {
    std::vector<pid_t> pids;
    DIR* proc = opendir("/proc");
    while (struct dirent* e = readdir(proc)) {
      std::string cmdline = ReadFile(absl::StrCat("/proc/", e->d_name, "/cmdline")).value_or("");
      std::replace(cmdline.begin(), cmdline.end(), '\0', ' ');
      if (absl::StartsWith(cmdline, RunfilePath("shim/crid-shim")) &&
          absl::StrContains(cmdline, tmp_.Sub("state") + "/shims/")) {
        pids.push_back(std::stoi(e->d_name));
      }
    }
    closedir(proc);
    return pids;
  }
};

TEST_F(CleanupEndToEndTest, RemovesWhatAKilledCridAndShimLeft) {
  std::string pod = RunPod(PodConfig("leftover"));
  std::string ctr = RunContainer(pod, ShellContainer("sleeper", "sleep 1000"));
  ASSERT_FALSE(pod.empty());
  ASSERT_FALSE(ctr.empty());

  // While crid runs, the root is its own.
  auto [busy_code, busy_out] = Cleanup(/*dry_run=*/true);
  EXPECT_EQ(busy_code, 1) << busy_out;
  EXPECT_THAT(busy_out, HasSubstr("in use by a running crid"));

  std::vector<pid_t> shims = ShimPids();
  ASSERT_EQ(shims.size(), 1u);
  crid_->Signal(SIGKILL);
  EXPECT_EQ(crid_->Wait(absl::Seconds(10)), 128 + SIGKILL);
  crid_.reset();
  ASSERT_EQ(::kill(shims[0], SIGKILL), 0);
  for (int i = 0; i < 100 && !ShimPids().empty(); ++i) {
    absl::SleepFor(absl::Milliseconds(50));
  }

  auto [dry_code, dry_out] = Cleanup(/*dry_run=*/true);
  EXPECT_EQ(dry_code, 0) << dry_out;
  EXPECT_THAT(dry_out, HasSubstr("leftover: container " + ctr));
  EXPECT_THAT(dry_out, HasSubstr("leftover: network attachment of pod " + pod));
  EXPECT_THAT(dry_out, HasSubstr("leftover: namespace pin /run/netns/crid-" + pod.substr(0, 32)));
  EXPECT_THAT(dry_out, HasSubstr("leftover: mount " + tmp_.Sub("root/containers/" + ctr)));
  EXPECT_THAT(dry_out, HasSubstr("leftover: record of pod " + pod + " (default/leftover)"));
  EXPECT_THAT(dry_out, HasSubstr("leftover: record of container " + ctr));
  EXPECT_THAT(dry_out, HasSubstr("dry run: nothing removed"));
  EXPECT_THAT(dry_out, Not(HasSubstr("removing:")));
  // The dry run removed nothing: the container still runs, the pin is there.
  EXPECT_THAT(census_->Leaks(absl::ZeroDuration()), Not(IsEmpty()));

  auto [code, out] = Cleanup(/*dry_run=*/false);
  EXPECT_EQ(code, 0) << out;
  EXPECT_THAT(out, HasSubstr("removing: container " + ctr));
  EXPECT_THAT(out, HasSubstr("removing: network attachment of pod " + pod));
  EXPECT_THAT(out, Not(HasSubstr("failed:")));
  EXPECT_THAT(out, HasSubstr(" removed, 0 failed"));
  EXPECT_THAT(census_->Leaks(), IsEmpty()) << out;

  auto [again_code, again_out] = Cleanup(/*dry_run=*/true);
  EXPECT_EQ(again_code, 0) << again_out;
  EXPECT_THAT(again_out, HasSubstr("nothing left over"));

  // A crid started on the cleaned root has no pods, and the image is kept.
  crid_ = StartCrid("crid-after-cleanup.log");
  grpc::ClientContext ctx;
  v1::ListPodSandboxResponse pods;
  ASSERT_TRUE(stub_->ListPodSandbox(&ctx, {}, &pods).ok());
  EXPECT_EQ(pods.items_size(), 0);
  grpc::ClientContext image_ctx;
  v1::ImageStatusRequest image_req;
  image_req.mutable_image()->set_image(image_);
  v1::ImageStatusResponse image_resp;
  ASSERT_TRUE(images_->ImageStatus(&image_ctx, image_req, &image_resp).ok());
  EXPECT_TRUE(image_resp.has_image());
}

}  // namespace
}  // namespace container_e2e
}  // namespace crid
