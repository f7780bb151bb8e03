#include "shim/log.h"

#include <fcntl.h>
#include <unistd.h>

#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "base/fs.h"
#include "base/temp_dir.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace crid::shim::log {
namespace {

using ::testing::ElementsAre;

TEST(ShimLogFormat, PlaceholdersTakeArgumentsInOrder) {
  EXPECT_EQ(internal::Format("a {} b {} c", {"1", "two"}), "a 1 b two c");
  // Too few arguments leave the rest of the placeholders as they are.
  EXPECT_EQ(internal::Format("{} and {}", {"x"}), "x and {}");
  EXPECT_EQ(internal::Format("no placeholders", {"unused"}), "no placeholders");
  EXPECT_EQ(internal::Format("{", {"x"}), "{");
}

TEST(ShimLogFormat, ArgumentsOfEveryKind) {
  enum class Kind { kA = 3 };
  EXPECT_EQ(internal::Text(Kind::kA), "3");
  EXPECT_EQ(internal::Text(-42), "-42");
  EXPECT_EQ(internal::Text(absl::NotFoundError("gone")), "NOT_FOUND: gone");
  EXPECT_EQ(internal::Text(static_cast<const char*>(nullptr)), "(null)");
  EXPECT_EQ(internal::Text(absl::string_view("view")), "view");
}

TEST(ShimLog, OneTimestampedTaggedLinePerMessage) {
  TempDir tmp;
  int fd = ::open(tmp.Sub("shim.log").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  ASSERT_GE(fd, 0);
  Init(fd, "pod-1");
  Info("container {} created, pid {}", "c1", 77);
  Error("exit record: {}", absl::InternalError("disk full"));
  Init(STDERR_FILENO, "");
  ::close(fd);
  std::string text = ReadFile(tmp.Sub("shim.log")).value_or("");
  std::vector<std::string> lines = absl::StrSplit(text, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 2u) << text;
  std::vector<std::string> first = absl::StrSplit(lines[0], absl::MaxSplits(' ', 3));
  ASSERT_EQ(first.size(), 4u);
  absl::Time when;
  std::string error;
  EXPECT_TRUE(absl::ParseTime("%Y-%m-%dT%H:%M:%E*SZ", first[0], &when, &error)) << error;
  EXPECT_THAT(std::vector<std::string>(first.begin() + 1, first.end()),
              ElementsAre("info", "[pod-1]", "container c1 created, pid 77"));
  EXPECT_EQ(lines[1].substr(lines[1].find(' ') + 1),
            "error [pod-1] exit record: INTERNAL: disk full");
}

}  // namespace
}  // namespace crid::shim::log
