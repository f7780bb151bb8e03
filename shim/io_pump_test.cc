// The pump copies container output into the CRI log through real pipes; what a
// stream holds when its container is removed still reaches the log.
#include "shim/io_pump.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>

#include "absl/strings/match.h"
#include "base/fs.h"
#include "base/temp_dir.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace crid::shim {
namespace {

using ::testing::EndsWith;

struct Pipe {
  UniqueFd read;
  UniqueFd write;
};

Pipe MakePipe() {
  int fds[2];
  EXPECT_EQ(::pipe2(fds, O_CLOEXEC), 0);
  return {UniqueFd(fds[0]), UniqueFd(fds[1])};
}

// The log once it holds `lines` complete lines, or what it holds after 5 s.
std::string WaitForLines(const std::string& path, size_t lines) {
  absl::Time deadline = absl::Now() + absl::Seconds(5);
  std::string text;
  while (absl::Now() < deadline) {
    text = ReadFile(path).value_or("");
    if (static_cast<size_t>(std::count(text.begin(), text.end(), '\n')) >= lines) {
      break;
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
  return text;
}

TEST(IoPumpTest, RemoveWritesTheUnterminatedLastLineOfEachStream) {
  TempDir tmp;
  std::string path = tmp.Sub("0.log");
  auto log = CriLogWriter::Open(path, {});
  ASSERT_TRUE(log.ok()) << log.status();
  auto pump = IoPump::Start();
  ASSERT_TRUE(pump.ok()) << pump.status();
  Pipe out = MakePipe();
  Pipe err = MakePipe();
  std::vector<IoPump::Source> sources;
  sources.push_back({std::move(out.read), LogStream::kStdout});
  sources.push_back({std::move(err.read), LogStream::kStderr});
  (*pump)->Add("c/1", std::move(sources), std::shared_ptr<CriLogWriter>(std::move(*log)));

  ASSERT_EQ(::write(out.write.get(), "whole\n", 6), 6);
  ASSERT_THAT(WaitForLines(path, 1), EndsWith(" stdout F whole\n"));
  // Unterminated lines, and the writers stay open (an orphan holds the pipes):
  // only Remove ends the streams.
  ASSERT_EQ(::write(out.write.get(), "progress 99%", 12), 12);
  ASSERT_EQ(::write(err.write.get(), "no newline", 10), 10);
  (*pump)->Remove("c/1");
  std::string text = WaitForLines(path, 3);
  EXPECT_TRUE(absl::StrContains(text, " stdout P progress 99%\n")) << text;
  EXPECT_TRUE(absl::StrContains(text, " stderr P no newline\n")) << text;
}

TEST(IoPumpTest, StoppingThePumpWritesTheUnterminatedLastLine) {
  TempDir tmp;
  std::string path = tmp.Sub("0.log");
  auto log = CriLogWriter::Open(path, {});
  ASSERT_TRUE(log.ok()) << log.status();
  auto pump = IoPump::Start();
  ASSERT_TRUE(pump.ok()) << pump.status();
  Pipe out = MakePipe();
  std::vector<IoPump::Source> sources;
  sources.push_back({std::move(out.read), LogStream::kStdout});
  (*pump)->Add("c/1", std::move(sources), std::shared_ptr<CriLogWriter>(std::move(*log)));
  ASSERT_EQ(::write(out.write.get(), "first\nlast", 10), 10);
  ASSERT_THAT(WaitForLines(path, 1), EndsWith(" stdout F first\n"));
  pump->reset();
  std::string text = ReadFile(path).value_or("");
  EXPECT_THAT(text, EndsWith(" stdout P last\n"));
}

}  // namespace
}  // namespace crid::shim
