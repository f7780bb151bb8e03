#include "tests/systemd_fixture.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "base/fs.h"
#include "tests/crid_process.h"

extern char** environ;

namespace crid {

namespace {

constexpr char kLabDir[] = "/tmp/crid-systemd-fixture";

// Variables of the test runner the inner process must not act on (its own
// XML report, sharding, the premature-exit marker of the outer test).
bool DropFromInner(absl::string_view var) {
  return absl::StartsWith(var, "XML_OUTPUT_FILE=") || absl::StartsWith(var, "GTEST_OUTPUT=") ||
         absl::StartsWith(var, "TEST_PREMATURE_EXIT_FILE=") ||
         absl::StartsWith(var, "GTEST_SHARD") || absl::StartsWith(var, "TEST_SHARD") ||
         absl::StartsWith(var, "TEST_TOTAL_SHARDS=");
}

// Waits for `pid` up to `timeout`; kills it after that. Returns exit code,
// 128+signal, or -1 on timeout.
int WaitFor(pid_t pid, absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    int status = 0;
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) {
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    if (r < 0 && errno != EINTR) {
      return -1;
    }
    if (absl::Now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
      return -1;
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
}

}  // namespace

int SystemdFixture::RunScript(const std::vector<std::string>& args, std::string* output) {
  std::string script = RunfilePath("tests/systemd_host.sh");
  std::string out_file = lab_ + "/script.out";
  pid_t pid = ::fork();
  if (pid < 0) {
    return -1;
  }
  if (pid == 0) {
    int fd = ::open(out_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
    }
    ::setenv("LAB", lab_.c_str(), 1);
    ::setenv("SYSTEMD_HOST_DIR", (lab_ + "/systemd-host").c_str(), 1);
    std::vector<char*> argv = {const_cast<char*>("/bin/bash"), script.data()};
    std::vector<std::string> copy = args;
    for (std::string& a : copy) {
      argv.push_back(a.data());
    }
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  int code = WaitFor(pid, absl::Minutes(2));
  if (output != nullptr) {
    *output = ReadFile(out_file).value_or("");
  }
  return code;
}

absl::StatusOr<std::unique_ptr<SystemdFixture>> SystemdFixture::Start() {
  std::unique_ptr<SystemdFixture> f(new SystemdFixture());
  // One fixed place: a test killed before its teardown (a timeout) leaves
  // its systemd running in its own session; the next start stops that one
  // first (by its recorded PID), so two never share the host's cgroups.
  f->lab_ = kLabDir;
  absl::Status made = MakeDirs(f->lab_ + "/logs", 0755);
  if (!made.ok()) {
    return made;
  }
  if (::access((f->lab_ + "/systemd-host/systemd.pid").c_str(), F_OK) == 0) {
    std::string stale;
    int code = f->RunScript({"stop"}, &stale);
    std::fprintf(stderr, "stopped a systemd left by an earlier run (exit %d): %s", code,
                 stale.c_str());
  }
  for (const char* tool : {"/lib/systemd/systemd", "/usr/bin/nsenter", "/usr/bin/unshare"}) {
    if (::access(tool, X_OK) != 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot run the systemd fixture: ", tool, " is missing"));
    }
  }
  std::string output;
  int code = f->RunScript({"start"}, &output);
  if (code != 0) {
    std::string log = f->Log();
    // Whatever got started is torn down before reporting.
    f->RunScript({"stop"}, nullptr);
    f->stopped_ = true;
    return absl::FailedPreconditionError(
        absl::StrCat("systemd did not start in a private namespace (exit ", code, "): ", output,
                     "\n--- log ---\n", log));
  }
  std::string pid_text = ReadFile(f->lab_ + "/systemd-host/systemd.pid").value_or("");
  if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(pid_text), &f->pid_) || f->pid_ <= 1) {
    f->RunScript({"stop"}, nullptr);
    f->stopped_ = true;
    return absl::InternalError(absl::StrCat("no systemd pid recorded: ", output));
  }
  std::fprintf(stderr, "%s", output.c_str());
  return f;
}

absl::Status SystemdFixture::Stop() {
  if (stopped_) {
    return absl::OkStatus();
  }
  stopped_ = true;
  std::string output;
  int code = RunScript({"stop"}, &output);
  std::fprintf(stderr, "%s", output.c_str());
  if (code != 0) {
    return absl::InternalError(absl::StrCat("stopping systemd (pid ", pid_, ") left: ", output));
  }
  (void)::unlink((lab_ + "/script.out").c_str());
  (void)RemoveTree(lab_);
  return absl::OkStatus();
}

SystemdFixture::~SystemdFixture() {
  absl::Status st = Stop();
  if (!st.ok()) {
    std::fprintf(stderr, "%s\n", st.ToString().c_str());
  }
}

std::string SystemdFixture::Log() const {
  return ReadFile(lab_ + "/logs/systemd-host.log").value_or("");
}

int SystemdFixture::RunInside(const std::vector<std::string>& argv,
                              const std::map<std::string, std::string>& env,
                              absl::Duration timeout) {
  std::vector<std::string> args = {
      "/usr/bin/nsenter", "-t", absl::StrCat(pid_), "-m", "-p", "-u", "--"};
  args.insert(args.end(), argv.begin(), argv.end());
  std::vector<std::string> envs;
  for (char** e = environ; *e != nullptr; ++e) {
    if (!DropFromInner(*e)) {
      envs.emplace_back(*e);
    }
  }
  for (const auto& [key, value] : env) {
    envs.push_back(absl::StrCat(key, "=", value));
  }
  pid_t pid = ::fork();
  if (pid < 0) {
    return -1;
  }
  if (pid == 0) {
    std::vector<char*> a;
    a.reserve(args.size() + 1);
    for (std::string& s : args) {
      a.push_back(s.data());
    }
    a.push_back(nullptr);
    std::vector<char*> e;
    e.reserve(envs.size() + 1);
    for (std::string& s : envs) {
      e.push_back(s.data());
    }
    e.push_back(nullptr);
    ::execve(a[0], a.data(), e.data());
    ::_exit(127);
  }
  return WaitFor(pid, timeout);
}

}  // namespace crid
