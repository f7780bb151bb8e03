#include "oci/native_start.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/fs.h"
#include "base/temp_dir.h"
#include "base/unique_fd.h"
#include "gtest/gtest.h"

namespace crid {
namespace {

// A stand-in for runc's state directory and its init: <root>/<id>/exec.fifo,
// and a child that opens the FIFO for writing (blocking until a reader comes),
// writes `byte` unless it is empty, waits `linger`, and exits.
class NativeStartTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = tmp_.Sub("runc");
    ASSERT_TRUE(MakeDirs(root_ + "/c1", 0700).ok());
    fifo_ = root_ + "/c1/exec.fifo";
    ASSERT_EQ(::mkfifo(fifo_.c_str(), 0622), 0);
  }

  void TearDown() override {
    if (child_ > 0) {
      ::kill(child_, SIGKILL);
      ::waitpid(child_, nullptr, 0);
    }
  }

  void StartInit(const std::string& byte, absl::Duration linger, bool open_fifo = true) {
    child_ = ::fork();
    ASSERT_GE(child_, 0);
    if (child_ == 0) {
      if (open_fifo) {
        int fd = ::open(fifo_.c_str(), O_WRONLY | O_CLOEXEC);
        if (fd < 0) {
          ::_exit(1);
        }
        if (!byte.empty() && ::write(fd, byte.data(), byte.size()) < 0) {
          ::_exit(1);
        }
        ::usleep(static_cast<useconds_t>(absl::ToInt64Microseconds(linger)));
        ::_exit(0);
      }
      ::usleep(static_cast<useconds_t>(absl::ToInt64Microseconds(linger)));
      ::_exit(0);
    }
    pidfd_.reset(static_cast<int>(::syscall(SYS_pidfd_open, child_, 0)));
    ASSERT_TRUE(pidfd_.valid());
  }

  TempDir tmp_;
  std::string root_;
  std::string fifo_;
  pid_t child_ = -1;
  UniqueFd pidfd_;
};

TEST_F(NativeStartTest, ReadsTheInitsByteUntilItExecsAndRemovesTheFifo) {
  // The "init" keeps the FIFO open for a while after its byte (as runc's
  // runs its hooks before exec): the start waits for the end, not the byte.
  StartInit("0", absl::Milliseconds(200));
  absl::Time t0 = absl::Now();
  absl::Status st = NativeStart(root_, "c1", pidfd_.get(), absl::Seconds(10));
  ASSERT_TRUE(st.ok()) << st;
  EXPECT_GE(absl::Now() - t0, absl::Milliseconds(150));
  EXPECT_NE(::access(fifo_.c_str(), F_OK), 0);
  // A second start finds no FIFO.
  EXPECT_EQ(NativeStart(root_, "c1", pidfd_.get(), absl::Seconds(1)).code(),
            absl::StatusCode::kNotFound);
}

TEST_F(NativeStartTest, AnInitThatWroteAndExitedCountsAsStarted) {
  StartInit("0", absl::ZeroDuration());
  int status = 0;
  // The child blocks in open() until the start opens the FIFO; the start
  // must not take "no writer yet" for end of file.
  absl::Status st = NativeStart(root_, "c1", pidfd_.get(), absl::Seconds(10));
  ASSERT_TRUE(st.ok()) << st;
  ASSERT_EQ(::waitpid(child_, &status, 0), child_);
  child_ = -1;
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_NE(::access(fifo_.c_str(), F_OK), 0);
}

TEST_F(NativeStartTest, ADeadInitIsReportedAndTheFifoKept) {
  StartInit("", absl::ZeroDuration(), /*open_fifo=*/false);
  absl::Status st = NativeStart(root_, "c1", pidfd_.get(), absl::Seconds(10));
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition) << st;
  EXPECT_EQ(st.message(), "container process is already dead");
  EXPECT_EQ(::access(fifo_.c_str(), F_OK), 0);
}

TEST_F(NativeStartTest, AWriterThatClosesWithoutAByteIsNoStart) {
  StartInit("", absl::ZeroDuration());
  absl::Status st = NativeStart(root_, "c1", pidfd_.get(), absl::Seconds(10));
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition) << st;
  EXPECT_EQ(::access(fifo_.c_str(), F_OK), 0);
}

TEST_F(NativeStartTest, GivesUpAtTheDeadline) {
  // An init that never opens the FIFO and does not exit.
  StartInit("", absl::Seconds(30), /*open_fifo=*/false);
  absl::Time t0 = absl::Now();
  absl::Status st = NativeStart(root_, "c1", pidfd_.get(), absl::Milliseconds(200));
  EXPECT_EQ(st.code(), absl::StatusCode::kDeadlineExceeded) << st;
  EXPECT_LT(absl::Now() - t0, absl::Seconds(5));
  EXPECT_EQ(::access(fifo_.c_str(), F_OK), 0);
}

TEST_F(NativeStartTest, RefusesWhatIsNotAContainersFifo) {
  EXPECT_EQ(NativeStart(root_, "no-such", -1, absl::Seconds(1)).code(),
            absl::StatusCode::kNotFound);
  for (const char* id : {"", ".", "..", "c1/../c1", "a/b"}) {
    EXPECT_EQ(NativeStart(root_, id, -1, absl::Seconds(1)).code(),
              absl::StatusCode::kInvalidArgument)
        << id;
  }
  // A regular file, or a symlink to the FIFO, in the FIFO's place.
  ASSERT_TRUE(MakeDirs(root_ + "/c2", 0700).ok());
  ASSERT_TRUE(WriteFileAtomic(root_ + "/c2/exec.fifo", "0", 0600).ok());
  EXPECT_EQ(NativeStart(root_, "c2", -1, absl::Seconds(1)).code(),
            absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(MakeDirs(root_ + "/c3", 0700).ok());
  ASSERT_EQ(::symlink(fifo_.c_str(), (root_ + "/c3/exec.fifo").c_str()), 0);
  EXPECT_NE(NativeStart(root_, "c3", -1, absl::Seconds(1)).code(), absl::StatusCode::kOk);
  // And a container directory that is a symlink.
  ASSERT_EQ(::symlink((root_ + "/c1").c_str(), (root_ + "/c4").c_str()), 0);
  EXPECT_NE(NativeStart(root_, "c4", -1, absl::Seconds(1)).code(), absl::StatusCode::kOk);
  EXPECT_EQ(::access(fifo_.c_str(), F_OK), 0);
}

}  // namespace
}  // namespace crid
