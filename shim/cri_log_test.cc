// The CRI log format kubelet parses: one record per line, long lines split into
// P records closed by an F record, streams interleaved in one file, reopen for
// rotation, never following a symlink, and every record on a line of its own
// when the file takes only part of a write or none of it.
#include "shim/cri_log.h"

#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <deque>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "base/fs.h"
#include "base/temp_dir.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace crid {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// What the next write(2) calls do before the file takes everything again: a
// positive value lets at most that many bytes through (a short write), a
// negative one fails with that errno without writing.
using Faults = std::deque<int>;

ssize_t FaultyWrite(Faults* faults, int fd, const void* data, size_t size) {
  if (faults->empty()) {
    return ::write(fd, data, size);
  }
  int fault = faults->front();
  faults->pop_front();
  if (fault < 0) {
    errno = -fault;
    return -1;
  }
  return ::write(fd, data, std::min(size, static_cast<size_t>(fault)));
}

// The record's text after its timestamp: "stdout F content".
std::string Body(const std::string& line) { return line.substr(line.find(' ') + 1); }

class CriLogTest : public ::testing::Test {
 protected:
  std::unique_ptr<CriLogWriter> Open(size_t max_line = size_t{16} * 1024) {
    CriLogWriter::Options options;
    options.max_line_bytes = max_line;
    options.now = [] { return absl::FromUnixNanos(1475712229669794202LL); };
    options.write_fd = [this](int fd, const void* data, size_t size) {
      return FaultyWrite(&faults_, fd, data, size);
    };
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
  Faults faults_;
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

TEST_F(CriLogTest, UnterminatedLastLineIsWrittenWhenItsStreamCloses) {
  auto w = Open(/*max_line=*/4);
  ASSERT_TRUE(w->Write(LogStream::kStderr, "abcdef").ok());
  ASSERT_TRUE(w->Write(LogStream::kStdout, "no newline").ok());
  ASSERT_TRUE(w->Close(LogStream::kStderr).ok());
  ASSERT_TRUE(w->Close(LogStream::kStdout).ok());
  ASSERT_TRUE(w->Close(LogStream::kStdout).ok()) << "closing twice writes nothing more";
  std::vector<std::string> content;
  for (const std::string& line : Lines()) {
    content.push_back(Body(line));
  }
  // A line the stream ended without a newline stays partial (containerd
  // writes it the same way).
  EXPECT_THAT(content, ElementsAre("stderr P abcd", "stdout P no n", "stdout P ewli", "stderr P ef",
                                   "stdout P ne"));
}

TEST_F(CriLogTest, ShortWritesAreFinished) {
  auto w = Open();
  faults_ = {5, 7, 1};
  ASSERT_TRUE(w->Write(LogStream::kStdout, "one\ntwo\n").ok());
  std::vector<std::string> lines = Lines();
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(Body(lines[0]), "stdout F one");
  EXPECT_EQ(Body(lines[1]), "stdout F two");
  EXPECT_EQ(w->losses().dropped + w->losses().cut, 0u);
}

TEST_F(CriLogTest, FailedWriteDropsTheRecordWholeAndWritesTheRest) {
  auto w = Open();
  faults_ = {-ENOSPC};
  absl::Status st = w->Write(LogStream::kStdout, "lost\nkept\n");
  EXPECT_EQ(st.code(), absl::StatusCode::kResourceExhausted) << st;
  EXPECT_THAT(std::string(st.message()), HasSubstr("write log file " + path_));
  EXPECT_THAT(std::string(st.message()), HasSubstr("dropped"));
  ASSERT_TRUE(w->Write(LogStream::kStdout, "next\n").ok());
  std::vector<std::string> content;
  for (const std::string& line : Lines()) {
    content.push_back(Body(line));
  }
  EXPECT_THAT(content, ElementsAre("stdout F kept", "stdout F next"));
  EXPECT_EQ(w->losses().dropped, 1u);
  EXPECT_EQ(w->losses().cut, 0u);
}

TEST_F(CriLogTest, FailedPartialRecordIsNotGluedToTheRestOfItsLine) {
  auto w = Open(/*max_line=*/4);
  faults_ = {-ENOSPC};
  EXPECT_FALSE(w->Write(LogStream::kStdout, "abcdef").ok());
  ASSERT_TRUE(w->Write(LogStream::kStdout, "gh\n").ok());
  std::vector<std::string> lines = Lines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(Body(lines[0]), "stdout F efgh");
}

TEST_F(CriLogTest, RecordCutShortEndsItsLineSoTheNextStandsAlone) {
  auto w = Open();
  // 20 bytes go in, then the disk is full for the rest (not for the newline).
  faults_ = {20, -ENOSPC};
  absl::Status st = w->Write(LogStream::kStdout, "a line that does not fit\n");
  EXPECT_THAT(std::string(st.message()), HasSubstr("cut after 20 of"));
  ASSERT_TRUE(w->Write(LogStream::kStderr, "after\n").ok());
  std::vector<std::string> lines = Lines();
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0], "2016-10-06T00:03:49.");
  EXPECT_EQ(Body(lines[1]), "stderr F after");
  EXPECT_EQ(w->losses().cut, 1u);
}

TEST_F(CriLogTest, WhenEvenTheNewlineFailsTheNextRecordStartsWithOne) {
  auto w = Open();
  // Cut after 20 bytes; the newline fails; so does the next record (dropped,
  // its leading newline included); the one after gets through.
  faults_ = {20, -ENOSPC, -ENOSPC, -ENOSPC};
  EXPECT_FALSE(w->Write(LogStream::kStdout, "a line that does not fit\n").ok());
  EXPECT_FALSE(w->Write(LogStream::kStdout, "dropped\n").ok());
  ASSERT_TRUE(w->Write(LogStream::kStdout, "third\n").ok());
  ASSERT_TRUE(w->Write(LogStream::kStdout, "fourth\n").ok());
  std::vector<std::string> lines = Lines();
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0], "2016-10-06T00:03:49.");
  EXPECT_EQ(Body(lines[1]), "stdout F third");
  EXPECT_EQ(Body(lines[2]), "stdout F fourth");
  EXPECT_EQ(w->losses().cut, 1u);
  EXPECT_EQ(w->losses().dropped, 1u);
}

TEST_F(CriLogTest, RotatedFileDoesNotInheritTheNewlineOfACutRecord) {
  auto w = Open();
  faults_ = {20, -ENOSPC, -ENOSPC};
  EXPECT_FALSE(w->Write(LogStream::kStdout, "a line that does not fit\n").ok());
  ASSERT_EQ(::rename(path_.c_str(), (path_ + ".1").c_str()), 0);
  ASSERT_TRUE(w->Reopen().ok());
  ASSERT_TRUE(w->Write(LogStream::kStdout, "after\n").ok());
  std::vector<std::string> lines = Lines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(Body(lines[0]), "stdout F after");
}

// The kernel's own short write: a file size limit lets part of a record in and
// fails the rest with EFBIG (in a child, so the limit binds nothing else).
TEST_F(CriLogTest, KernelShortWriteAtTheFileSizeLimitLeavesTheNextRecordWhole) {
  CriLogWriter::Options options;
  options.now = [] { return absl::FromUnixNanos(1475712229669794202LL); };
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::signal(SIGXFSZ, SIG_IGN);
    auto w = CriLogWriter::Open(path_, options);
    if (!w.ok() || !(*w)->Write(LogStream::kStdout, "first\n").ok()) {
      ::_exit(10);
    }
    struct rlimit limit;
    ::getrlimit(RLIMIT_FSIZE, &limit);
    struct rlimit small = limit;
    small.rlim_cur = static_cast<rlim_t>(ReadFile(path_)->size() + 36);
    ::setrlimit(RLIMIT_FSIZE, &small);
    absl::Status st = (*w)->Write(LogStream::kStdout, std::string(100, 'x') + "\n");
    ::setrlimit(RLIMIT_FSIZE, &limit);
    if (st.ok() || !absl::StrContains(st.message(), "cut after 36 of")) {
      ::_exit(11);
    }
    if (!(*w)->Write(LogStream::kStdout, "third\n").ok()) {
      ::_exit(12);
    }
    ::_exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 0);
  std::vector<std::string> lines = Lines();
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(Body(lines[0]), "stdout F first");
  EXPECT_EQ(lines[1], "2016-10-06T00:03:49.669794202Z stdou");
  EXPECT_EQ(Body(lines[2]), "stdout F third");
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
