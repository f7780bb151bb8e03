// The reaper hands every exit to its waiter, also when the child exited before
// anyone asked for it.
#include "shim/reaper.h"

#include <signal.h>
#include <unistd.h>

#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"

namespace crid::shim {
namespace {

class ReaperTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // The reaper thread inherits this thread's mask.
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGCHLD);
    ASSERT_EQ(::pthread_sigmask(SIG_BLOCK, &mask, &old_mask_), 0);
    auto reaper = Reaper::Start();
    ASSERT_TRUE(reaper.ok()) << reaper.status();
    reaper_ = std::move(*reaper);
  }
  void TearDown() override {
    reaper_.reset();
    ::pthread_sigmask(SIG_SETMASK, &old_mask_, nullptr);
  }

  sigset_t old_mask_;
  std::unique_ptr<Reaper> reaper_;
};

TEST_F(ReaperTest, ExitBeforeWaitIsKept) {
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::_exit(7);
  }
  // Long enough for the reaper to collect the exit with nobody waiting.
  absl::SleepFor(absl::Milliseconds(200));
  EXPECT_EQ(Reaper::ExitCode(reaper_->WaitChild(pid)), 7);
}

TEST_F(ReaperTest, WatchSeesTheSignal) {
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::pause();
    ::_exit(0);
  }
  absl::Notification done;
  int code = -1;
  reaper_->Watch(pid, [&](int status) {
    code = Reaper::ExitCode(status);
    done.Notify();
  });
  ::kill(pid, SIGKILL);
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_EQ(code, 128 + SIGKILL);
}

TEST_F(ReaperTest, ManyChildrenEachGetTheirOwnStatus) {
  std::vector<pid_t> pids;
  for (int i = 0; i < 20; ++i) {
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::_exit(i);
    }
    pids.push_back(pid);
  }
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(Reaper::ExitCode(reaper_->WaitChild(pids[i])), i);
  }
}

}  // namespace
}  // namespace crid::shim
