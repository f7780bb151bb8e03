// A real user namespace held by a child process for a test's duration, for
// the tests of idmapped mounts (rootfs_test, idmapped_mounts_test).
#pragma once

#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <string>

namespace crid {

// A user namespace mapping 0..65535 to host 200000.. (uid) and 300000.. (gid),
// held by a child process for the test's duration.
class TestUserNamespace {
 public:
  TestUserNamespace() {
    int ready[2];
    if (::pipe(ready) != 0) {
      return;
    }
    pid_ = ::fork();
    if (pid_ == 0) {
      char byte = ::unshare(CLONE_NEWUSER) == 0 ? 1 : 0;
      (void)!::write(ready[1], &byte, 1);
      ::pause();
      ::_exit(0);
    }
    ::close(ready[1]);
    char byte = 0;
    ok_ = ::read(ready[0], &byte, 1) == 1 && byte == 1;
    ::close(ready[0]);
    ok_ = ok_ && WriteMap("uid_map", "0 200000 65536\n") && WriteMap("gid_map", "0 300000 65536\n");
  }
  ~TestUserNamespace() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  bool ok() const { return ok_; }
  std::string path() const { return "/proc/" + std::to_string(pid_) + "/ns/user"; }

 private:
  bool WriteMap(const char* name, const std::string& text) {
    std::ofstream out("/proc/" + std::to_string(pid_) + "/" + name);
    out << text;
    out.flush();
    return out.good();
  }
  pid_t pid_ = -1;
  bool ok_ = false;
};

}  // namespace crid
