// The CRI log format kubelet parses: one record per line, long lines split into
// P records closed by an F record, streams interleaved in one file, reopen for
// rotation, never following a symlink.
#include "shim/cri_log.h"

#include <unistd.h>

#include "absl/strings/str_split.h"
#include "base/fs.h"
#include "base/temp_dir.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace crid {
namespace {

using ::testing::ElementsAre;

class CriLogTest : public ::testing::Test {
 protected:
  std::unique_ptr<CriLogWriter> Open(size_t max_line = size_t{16} * 1024) {
    CriLogWriter::Options options;
    options.max_line_bytes = max_line;
    options.now = [] { return absl::FromUnixNanos(1475712229669794202LL); };
    auto writer = CriLogWriter::Open(path_, options);
    EXPECT_TRUE(writer.ok()) << writer.status();
    return writer.ok() ? std::move(*writer) : nullptr;
  }

  std::vector<std::string> Lines() {
    std::string text = ReadFile(path_).value_or("");
    std::vector<std::string> lines = absl::StrSplit(text, '\n');
    EXPECT_EQ(lines.back(), "") << "every record ends with a newline";
    lines.pop_back();
    return lines;
  }

  TempDir tmp_;
  std::string path_ = tmp_.Sub("pods/ns_pod_uid/app/0.log");
};

TEST_F(CriLogTest, RecordFormat) {
  EXPECT_EQ(CriLogWriter::FormatRecord(absl::FromUnixNanos(1475712229669794202LL),
                                       LogStream::kStdout, false, "log content 1"),
            "2016-10-06T00:03:49.669794202Z stdout F log content 1\n");
  EXPECT_EQ(CriLogWriter::FormatRecord(absl::FromUnixNanos(1475712229000000000LL),
                                       LogStream::kStderr, true, ""),
            "2016-10-06T00:03:49.000000000Z stderr P \n");
}

TEST_F(CriLogTest, CompleteLinesAcrossWritesAndStreams) {
  auto w = Open();
  ASSERT_TRUE(w->Write(LogStream::kStdout, "hel").ok());
  ASSERT_TRUE(w->Write(LogStream::kStderr, "oops\n").ok());
  ASSERT_TRUE(w->Write(LogStream::kStdout, "lo\nworld\r\n\n").ok());
  std::vector<std::string> lines = Lines();
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_THAT(lines[0], testing::EndsWith(" stderr F oops"));
  EXPECT_THAT(lines[1], testing::EndsWith(" stdout F hello"));
  EXPECT_THAT(lines[2], testing::EndsWith(" stdout F world"));
  EXPECT_THAT(lines[3], testing::EndsWith(" stdout F "));
}

TEST_F(CriLogTest, LongLinesAreSplitIntoPartialRecords) {
  auto w = Open(/*max_line=*/4);
  ASSERT_TRUE(w->Write(LogStream::kStdout, "abcdefghij\nxy").ok());
  ASSERT_TRUE(w->Close(LogStream::kStdout).ok());
  std::vector<std::string> content;
  for (const std::string& line : Lines()) {
    content.push_back(line.substr(line.find(' ') + 1));
  }
  EXPECT_THAT(content, ElementsAre("stdout P abcd", "stdout P efgh", "stdout F ij", "stdout P xy"));
}

TEST_F(CriLogTest, LineOfExactlyMaxLengthIsOneFullRecord) {
  auto w = Open(/*max_line=*/4);
  ASSERT_TRUE(w->Write(LogStream::kStdout, "abcd\n").ok());
  std::vector<std::string> lines = Lines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_THAT(lines[0], testing::EndsWith(" stdout F abcd"));
}

TEST_F(CriLogTest, ReopenAfterRotationWritesToTheNewFile) {
  auto w = Open();
  ASSERT_TRUE(w->Write(LogStream::kStdout, "before\n").ok());
  ASSERT_EQ(::rename(path_.c_str(), (path_ + ".1").c_str()), 0);
  ASSERT_TRUE(w->Write(LogStream::kStdout, "still old\n").ok());
  ASSERT_TRUE(w->Reopen().ok());
  ASSERT_TRUE(w->Write(LogStream::kStdout, "after\n").ok());
  std::vector<std::string> lines = Lines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_THAT(lines[0], testing::EndsWith(" stdout F after"));
  EXPECT_EQ(ReadFile(path_ + ".1")->find("still old") != std::string::npos, true);
}

TEST_F(CriLogTest, ReopenRefusesASymlinkAndKeepsTheOldFile) {
  auto w = Open();
  ASSERT_EQ(::rename(path_.c_str(), (path_ + ".1").c_str()), 0);
  ASSERT_EQ(::symlink(tmp_.Sub("victim").c_str(), path_.c_str()), 0);
  EXPECT_FALSE(w->Reopen().ok());
  ASSERT_TRUE(w->Write(LogStream::kStdout, "kept\n").ok());
  EXPECT_NE(ReadFile(path_ + ".1")->find("kept"), std::string::npos);
  EXPECT_FALSE(ReadFile(tmp_.Sub("victim")).ok()) << "nothing written through the link";
}

}  // namespace
}  // namespace crid
