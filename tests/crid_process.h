// Runs the real crid binary as a child process for end-to-end tests: temporary
// root, state and socket, stderr captured to a file, stopped by PID.
#pragma once

#include <sys/types.h>

#include <map>
#include <string>
#include <vector>

#include "absl/time/time.h"

namespace crid {

// Path of a binary built by Bazel and listed in the test's `data`.
std::string RunfilePath(const std::string& workspace_relative);

class CridProcess {
 public:
  // Nothing runs until Start.
  CridProcess(std::string binary, std::vector<std::string> args,
              std::map<std::string, std::string> extra_env = {});
  ~CridProcess();

  // Forks and execs; stderr goes to `stderr_path`.
  void Start(const std::string& stderr_path);
  // Polls until `socket_path` accepts connections or the process exits.
  bool WaitForSocket(const std::string& socket_path, absl::Duration timeout);
  // Waits for exit; returns the exit code, 128+signal when killed, -1 on timeout.
  int Wait(absl::Duration timeout);
  void Signal(int sig);
  pid_t pid() const { return pid_; }
  bool running() const { return pid_ > 0; }

 private:
  std::string binary_;
  std::vector<std::string> args_;
  std::map<std::string, std::string> extra_env_;
  pid_t pid_ = -1;
};

// Runs crid to completion (for start-up failures) and returns {exit code, stderr}.
std::pair<int, std::string> RunCridToExit(const std::vector<std::string>& args,
                                          const std::string& scratch_dir,
                                          absl::Duration timeout = absl::Seconds(20));

}  // namespace crid
