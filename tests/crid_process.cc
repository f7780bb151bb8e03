#include "tests/crid_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "base/fs.h"
#include "base/unique_fd.h"

extern char** environ;

namespace crid {

std::string RunfilePath(const std::string& workspace_relative) {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  return absl::StrCat(srcdir != nullptr ? srcdir : ".", "/crid/", workspace_relative);
}

CridProcess::CridProcess(std::string binary, std::vector<std::string> args,
                         std::map<std::string, std::string> extra_env)
    : binary_(std::move(binary)), args_(std::move(args)), extra_env_(std::move(extra_env)) {}

CridProcess::~CridProcess() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
}

void CridProcess::Start(const std::string& stderr_path) {
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string entry = *e;
    std::string key = entry.substr(0, entry.find('='));
    if (extra_env_.count(key) == 0) {
      env_strings.push_back(entry);
    }
  }
  for (const auto& [k, v] : extra_env_) {
    env_strings.push_back(absl::StrCat(k, "=", v));
  }
  std::vector<char*> argv{binary_.data()};
  for (std::string& a : args_) {
    argv.push_back(a.data());
  }
  argv.push_back(nullptr);
  std::vector<char*> envp;
  envp.reserve(env_strings.size() + 1);
  for (std::string& e : env_strings) {
    envp.push_back(e.data());
  }
  envp.push_back(nullptr);

  pid_ = ::fork();
  if (pid_ == 0) {
    int fd = ::open(stderr_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      ::dup2(fd, 2);
      ::dup2(fd, 1);
    }
    ::execve(binary_.c_str(), argv.data(), envp.data());
    ::_exit(127);
  }
}

bool CridProcess::WaitForSocket(const std::string& socket_path, absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    int status;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return false;
    }
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    struct sockaddr_un addr = {};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, socket_path.c_str(), sizeof(addr.sun_path) - 1);
    if (::connect(fd.get(), reinterpret_cast<struct sockaddr*>(&addr), sizeof(addr)) == 0) {
      return true;
    }
    ::usleep(20000);
  }
  return false;
}

int CridProcess::Wait(absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    int status;
    pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      pid_ = -1;
      if (WIFEXITED(status)) {
        return WEXITSTATUS(status);
      }
      return 128 + WTERMSIG(status);
    }
    ::usleep(10000);
  }
  return -1;
}

void CridProcess::Signal(int sig) {
  if (pid_ > 0) {
    ::kill(pid_, sig);
  }
}

std::pair<int, std::string> RunCridToExit(const std::vector<std::string>& args,
                                          const std::string& scratch_dir, absl::Duration timeout) {
  CridProcess crid(RunfilePath("crid"), args);
  std::string log = scratch_dir + "/exit-run.log";
  crid.Start(log);
  int code = crid.Wait(timeout);
  return {code, ReadFile(log).value_or("")};
}

}  // namespace crid
