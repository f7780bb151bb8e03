// Plugin execution against real processes: shell-script plugins written here
// hang, fork helpers that hold their output, flood stdout, fail with CNI error
// codes and report the signal state and descriptors they were started with.
#include "cni/exec.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "base/fs.h"
#include "base/temp_dir.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace crid::cni {
namespace {

using ::testing::HasSubstr;

class ExecPluginTest : public ::testing::Test {
 protected:
  // Writes an executable shell script `name` and returns its path.
  std::string Plugin(const std::string& name, const std::string& body) {
    std::string path = tmp_.Sub(name);
    std::ofstream(path) << "#!/bin/sh\n" << body;
    chmod(path.c_str(), 0755);
    return path;
  }

  absl::StatusOr<std::string> Run(const std::string& binary,
                                  absl::Duration timeout = absl::Seconds(20)) {
    PluginInvocation inv;
    inv.command = "ADD";
    inv.container_id = "cid";
    inv.netns = "/proc/self/ns/net";
    inv.ifname = "eth0";
    return ExecPlugin(binary, inv, R"({"cniVersion":"1.0.0","name":"n","type":"t"})", timeout);
  }

  // The PID a plugin wrote to `file`, once it is there.
  pid_t ReadPid(const std::string& file) {
    int pid = 0;
    std::string text = ReadFile(tmp_.Sub(file)).value_or("");
    EXPECT_TRUE(absl::SimpleAtoi(absl::StripAsciiWhitespace(text), &pid)) << file << ": " << text;
    return pid;
  }

  TempDir tmp_;
};

// Running (not gone, not a zombie waiting for its reaper).
bool Running(pid_t pid) {
  std::string stat = ReadFile("/proc/" + std::to_string(pid) + "/stat").value_or("");
  size_t paren = stat.rfind(')');
  return paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] != 'Z' &&
         stat[paren + 2] != 'X';
}

bool GoneWithin(pid_t pid, absl::Duration limit) {
  absl::Time deadline = absl::Now() + limit;
  while (Running(pid) && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  return !Running(pid);
}

// A plugin that exits without reading its (large) config: crid gets its
// answer, and no SIGPIPE, whatever its signal disposition.
TEST_F(ExecPluginTest, PluginThatIgnoresItsConfigCostsNoSigpipe) {
  struct sigaction old {};
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigaction(SIGPIPE, &dfl, &old);
  std::string binary = Plugin("deaf", "echo '{\"cniVersion\":\"1.0.0\"}'\n");
  PluginInvocation inv;
  inv.command = "DEL";
  inv.container_id = "cid";
  inv.netns = "/proc/self/ns/net";
  inv.ifname = "eth0";
  std::string config = absl::StrCat(R"({"cniVersion":"1.0.0","name":"n","type":"t","pad":")",
                                    std::string(4 << 20, 'x'), "\"}");
  auto out = ExecPlugin(binary, inv, config, absl::Seconds(20));
  sigaction(SIGPIPE, &old, nullptr);
  EXPECT_TRUE(out.ok()) << out.status();
}

TEST_F(ExecPluginTest, HungPluginIsKilledWithTheChildHoldingItsOutput) {
  std::string plugin = Plugin("hang",
                              "sleep 1000 &\n"
                              "echo $! > " +
                                  tmp_.Sub("child.pid") +
                                  "\n"
                                  "echo $$ > " +
                                  tmp_.Sub("plugin.pid") +
                                  "\n"
                                  "exec sleep 1000\n");
  absl::Time start = absl::Now();
  absl::StatusOr<std::string> out = Run(plugin, absl::Milliseconds(500));
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  EXPECT_EQ(out.status().code(), absl::StatusCode::kDeadlineExceeded) << out.status();
  EXPECT_THAT(std::string(out.status().message()), HasSubstr(plugin));
  pid_t child = ReadPid("child.pid");
  pid_t pid = ReadPid("plugin.pid");
  ASSERT_GT(child, 0);
  EXPECT_TRUE(GoneWithin(pid, absl::Seconds(2))) << "plugin " << pid << " still running";
  EXPECT_TRUE(GoneWithin(child, absl::Seconds(2)))
      << "plugin's child " << child << " still running";
  if (Running(child)) {
    kill(child, SIGKILL);
  }
}

TEST_F(ExecPluginTest, PluginThatExitsButLeavesAChildHoldingItsOutputIsBounded) {
  std::string plugin = Plugin("leaver",
                              "sleep 1000 &\n"
                              "echo $! > " +
                                  tmp_.Sub("child.pid") +
                                  "\n"
                                  "echo '{}'\n"
                                  "exit 0\n");
  absl::Time start = absl::Now();
  absl::StatusOr<std::string> out = Run(plugin, absl::Milliseconds(500));
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  EXPECT_EQ(out.status().code(), absl::StatusCode::kDeadlineExceeded) << out.status();
  EXPECT_THAT(std::string(out.status().message()), HasSubstr("kept its output open"));
  pid_t child = ReadPid("child.pid");
  ASSERT_GT(child, 0);
  EXPECT_TRUE(GoneWithin(child, absl::Seconds(2)))
      << "plugin's child " << child << " still running";
  if (Running(child)) {
    kill(child, SIGKILL);
  }
}

TEST_F(ExecPluginTest, PluginThatClosesItsOutputAndHangsIsBoundedByTheDeadline) {
  std::string plugin = Plugin("closer", "echo $$ > " + tmp_.Sub("plugin.pid") +
                                            "\n"
                                            "exec >&- 2>&-\n"
                                            "exec sleep 30\n");
  absl::Time start = absl::Now();
  absl::StatusOr<std::string> out = Run(plugin, absl::Milliseconds(500));
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  EXPECT_EQ(out.status().code(), absl::StatusCode::kDeadlineExceeded) << out.status();
  pid_t pid = ReadPid("plugin.pid");
  EXPECT_TRUE(GoneWithin(pid, absl::Seconds(2))) << "plugin " << pid << " still running";
}

TEST_F(ExecPluginTest, OutputOverTheCapIsRefusedNamingThePlugin) {
  std::string plugin = Plugin("flood", "exec yes '{\"cniVersion\":\"1.0.0\"}'\n");
  absl::Time start = absl::Now();
  absl::StatusOr<std::string> out = Run(plugin, absl::Seconds(20));
  EXPECT_LT(absl::Now() - start, absl::Seconds(10)) << "refused at the cap, not at the deadline";
  EXPECT_EQ(out.status().code(), absl::StatusCode::kResourceExhausted) << out.status();
  EXPECT_THAT(std::string(out.status().message()), HasSubstr(plugin));
  EXPECT_THAT(std::string(out.status().message()), HasSubstr("1048576 bytes"));
}

TEST_F(ExecPluginTest, OutputJustUnderTheCapIsAccepted) {
  std::string plugin = Plugin("big", "head -c 1048576 /dev/zero | tr '\\0' x\n");
  absl::StatusOr<std::string> out = Run(plugin);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->size(), kMaxPluginOutputBytes);
}

TEST_F(ExecPluginTest, TryAgainLaterBecomesUnavailable) {
  std::string plugin = Plugin("busy",
                              "echo '{\"cniVersion\":\"1.0.0\",\"code\":11,"
                              "\"msg\":\"IPAM busy\",\"details\":\"lock held\"}'\n"
                              "exit 1\n");
  absl::StatusOr<std::string> out = Run(plugin);
  EXPECT_EQ(out.status().code(), absl::StatusCode::kUnavailable) << out.status();
  EXPECT_THAT(std::string(out.status().message()), HasSubstr("IPAM busy: lock held"));
  EXPECT_THAT(std::string(out.status().message()), HasSubstr("CNI error code 11"));
}

TEST_F(ExecPluginTest, OtherErrorCodesKeepCodeAndMessage) {
  std::string plugin = Plugin("bad",
                              "echo '{\"cniVersion\":\"1.0.0\",\"code\":7,"
                              "\"msg\":\"invalid subnet\"}'\n"
                              "exit 1\n");
  absl::StatusOr<std::string> out = Run(plugin);
  EXPECT_EQ(out.status().code(), absl::StatusCode::kInternal) << out.status();
  EXPECT_THAT(std::string(out.status().message()),
              HasSubstr("(exit code 1, CNI error code 7 \"invalid network config\"): "
                        "invalid subnet"));
}

TEST_F(ExecPluginTest, ErrorWithoutJsonReportsStderr) {
  std::string plugin = Plugin("plain", "echo 'cannot open /run/thing' >&2\nexit 2\n");
  absl::StatusOr<std::string> out = Run(plugin);
  EXPECT_EQ(out.status().code(), absl::StatusCode::kInternal) << out.status();
  EXPECT_THAT(std::string(out.status().message()),
              HasSubstr("(exit code 2): cannot open /run/thing"));
}

// A plugin binary that cannot be executed is reported by name, with the
// reason, not as a plugin that failed.
TEST_F(ExecPluginTest, MissingPluginBinaryIsNamedWithItsReason) {
  absl::StatusOr<std::string> out = Run(tmp_.Sub("no-such-plugin"));
  EXPECT_EQ(out.status().code(), absl::StatusCode::kNotFound) << out.status();
  EXPECT_THAT(std::string(out.status().message()), HasSubstr(tmp_.Sub("no-such-plugin")));
  EXPECT_THAT(std::string(out.status().message()), HasSubstr("No such file or directory"));
}

// crid blocks signals in its threads and ignores SIGPIPE; a plugin inherits
// neither, nor any descriptor beyond 0-2, and leads its own process group.
TEST_F(ExecPluginTest, PluginStartsWithCleanSignalStateOnlyStdioAndItsOwnGroup) {
  sigset_t block, old_mask;
  sigemptyset(&block);
  sigaddset(&block, SIGUSR1);
  sigaddset(&block, SIGTERM);
  ASSERT_EQ(pthread_sigmask(SIG_BLOCK, &block, &old_mask), 0);
  struct sigaction ignore = {}, old_usr2 = {};
  ignore.sa_handler = SIG_IGN;
  ASSERT_EQ(sigaction(SIGUSR2, &ignore, &old_usr2), 0);
  // A descriptor crid forgot to mark close-on-exec.
  constexpr int kLeaked = 47;
  ASSERT_EQ(dup2(STDERR_FILENO, kLeaked), kLeaked);

  // The shell reads its own status with builtins only: while it forks, libc
  // blocks all signals for a moment.
  std::string plugin = Plugin("probe",
                              "while read -r line; do case $line in Sig[BI]*) echo \"$line\";; "
                              "esac; done < /proc/$$/status\n"
                              "[ -e /proc/$$/fd/47 ] && echo 'Leaked: 47'\n"
                              "echo \"Pid: $$\"\n"
                              "echo \"Stat: $(cat /proc/$$/stat)\"\n");
  absl::StatusOr<std::string> out = Run(plugin);

  close(kLeaked);
  sigaction(SIGUSR2, &old_usr2, nullptr);
  pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);

  ASSERT_TRUE(out.ok()) << out.status();
  std::string pid, pgrp, sig_blk, sig_ign;
  for (absl::string_view line : absl::StrSplit(*out, '\n')) {
    if (absl::ConsumePrefix(&line, "SigBlk:")) {
      sig_blk = std::string(absl::StripAsciiWhitespace(line));
    } else if (absl::ConsumePrefix(&line, "SigIgn:")) {
      sig_ign = std::string(absl::StripAsciiWhitespace(line));
    } else if (absl::ConsumePrefix(&line, "Pid: ")) {
      pid = std::string(line);
    } else if (absl::ConsumePrefix(&line, "Stat: ")) {
      // pid (comm) state ppid pgrp ...
      std::vector<std::string> fields =
          absl::StrSplit(line.substr(line.rfind(')') + 2), ' ', absl::SkipEmpty());
      pgrp = fields.size() > 2 ? fields[2] : "";
    }
  }
  EXPECT_EQ(sig_blk, "0000000000000000") << *out;
  EXPECT_EQ(sig_ign, "0000000000000000") << *out;
  EXPECT_THAT(*out, Not(HasSubstr("Leaked")));
  EXPECT_FALSE(pid.empty()) << *out;
  EXPECT_EQ(pgrp, pid) << "the plugin leads its own process group\n" << *out;
}

}  // namespace
}  // namespace crid::cni
