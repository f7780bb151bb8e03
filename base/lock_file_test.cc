// Only one holder of the lock at a time; the refusal names the holder.
#include "base/lock_file.h"

#include <unistd.h>

#include <optional>

#include "absl/strings/str_cat.h"
#include "base/temp_dir.h"
#include "gtest/gtest.h"

namespace crid {
namespace {

TEST(LockFile, SecondHolderIsRefusedWithHolderPid) {
  TempDir tmp;
  std::string path = tmp.Sub("crid.lock");
  absl::StatusOr<LockFile> first = LockFile::Acquire(path);
  ASSERT_TRUE(first.ok()) << first.status();
  absl::StatusOr<LockFile> second = LockFile::Acquire(path);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(second.status().message().find(absl::StrCat("pid ", ::getpid())),
            absl::string_view::npos)
      << second.status();
}

TEST(LockFile, ReleasedWhenDestroyed) {
  TempDir tmp;
  std::string path = tmp.Sub("crid.lock");
  {
    std::optional<absl::StatusOr<LockFile>> first(LockFile::Acquire(path));
    ASSERT_TRUE(first->ok());
  }
  EXPECT_TRUE(LockFile::Acquire(path).ok());
}

}  // namespace
}  // namespace crid
