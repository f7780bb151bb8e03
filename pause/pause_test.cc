// crid-pause as PID 1 of a new PID namespace: reaps orphans, exits on SIGTERM.
#include <elf.h>
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <string>

#include "absl/strings/match.h"
#include "gtest/gtest.h"

namespace {

std::string PausePath() {
  const char* dir = std::getenv("TEST_SRCDIR");
  const char* ws = std::getenv("TEST_WORKSPACE");
  return std::string(dir) + "/" + ws + "/pause/crid-pause";
}

TEST(PauseTest, IsStatic) {
#ifdef CRID_SANITIZED
  GTEST_SKIP() << "sanitizer builds link crid-pause dynamically";
#endif
  std::ifstream in(PausePath(), std::ios::binary);
  std::string data((std::istreambuf_iterator<char>(in)), {});
  ASSERT_GE(data.size(), sizeof(Elf64_Ehdr));
  Elf64_Ehdr eh;
  std::memcpy(&eh, data.data(), sizeof(eh));
  ASSERT_LE(eh.e_phoff + eh.e_phnum * sizeof(Elf64_Phdr), data.size());
  for (int i = 0; i < eh.e_phnum; ++i) {
    Elf64_Phdr ph;
    std::memcpy(&ph, data.data() + eh.e_phoff + i * sizeof(Elf64_Phdr), sizeof(ph));
    EXPECT_NE(ph.p_type, static_cast<Elf64_Word>(PT_INTERP)) << "crid-pause needs a loader";
    EXPECT_NE(ph.p_type, static_cast<Elf64_Word>(PT_DYNAMIC)) << "crid-pause is dynamic";
  }
}

TEST(PauseTest, RunsAsPidOneAndExitsOnSigterm) {
  std::string path = PausePath();
  pid_t pid = static_cast<pid_t>(syscall(SYS_clone, CLONE_NEWPID | SIGCHLD, 0, 0, 0, 0));
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    char* argv[] = {const_cast<char*>(path.c_str()), nullptr};
    execv(argv[0], argv);
    _exit(127);
  }
  // Wait until it runs the pause binary, then check it sees itself as PID 1.
  std::string status;
  for (int i = 0; i < 200; ++i) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    status.assign((std::istreambuf_iterator<char>(in)), {});
    if (absl::StrContains(status, "crid-pause") &&
        absl::StrContains(status, "SigBlk:\t0000000000014002")) {
      break;
    }
    usleep(10000);
  }
  EXPECT_NE(status.find("NSpid:\t" + std::to_string(pid) + "\t1\n"), std::string::npos) << status;
  ASSERT_EQ(kill(pid, SIGTERM), 0);
  int wstatus = 0;
  ASSERT_EQ(waitpid(pid, &wstatus, 0), pid);
  EXPECT_TRUE(WIFEXITED(wstatus));
  EXPECT_EQ(WEXITSTATUS(wstatus), 0);
}

}  // namespace
