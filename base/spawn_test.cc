// The spawner hands every child a clean start whatever crid's own state is:
// default signal dispositions and an empty mask even when the parent ignores
// SIGPIPE and blocks signals, only the descriptors asked for, exec failures as
// errors naming the binary, sessions, process groups, PID namespaces and
// detached (re-parented) children.
#include "base/spawn.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <map>
#include <set>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "base/fs.h"
#include "base/temp_dir.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace crid {
namespace {

using ::testing::HasSubstr;

struct Pipe {
  UniqueFd read;
  UniqueFd write;
};

Pipe MakePipe(int flags = O_CLOEXEC) {
  int fds[2];
  EXPECT_EQ(::pipe2(fds, flags), 0);
  return {UniqueFd(fds[0]), UniqueFd(fds[1])};
}

std::string ReadAll(int fd) {
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      return out;
    }
    out.append(buf, static_cast<size_t>(n));
  }
}

struct Finished {
  int status = -1;
  std::string out;
};

// Runs `options` with stdout on a pipe to its end.
Finished RunToEnd(SpawnOptions options) {
  Pipe out = MakePipe();
  options.stdout_fd = out.write.get();
  absl::StatusOr<SpawnedProcess> child = Spawn(options);
  EXPECT_TRUE(child.ok()) << child.status();
  if (!child.ok()) {
    return {};
  }
  out.write.reset();
  Finished f;
  f.out = ReadAll(out.read.get());
  f.status = WaitForExit(child->pid);
  return f;
}

// "SigBlk" -> "0000000000000000" from /proc/<pid>/status text.
std::map<std::string, std::string> StatusFields(const std::string& text) {
  std::map<std::string, std::string> fields;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    std::pair<absl::string_view, absl::string_view> kv =
        absl::StrSplit(line, absl::MaxSplits(':', 1));
    fields[std::string(kv.first)] = std::string(absl::StripAsciiWhitespace(kv.second));
  }
  return fields;
}

// Sets up what a daemon typically has (SIGPIPE ignored, signals blocked in
// the spawning thread, a handler installed) and undoes it afterwards.
class HostileSignalState {
 public:
  HostileSignalState() {
    old_pipe_ = ::signal(SIGPIPE, SIG_IGN);
    old_hup_ = ::signal(SIGHUP, SIG_IGN);
    old_usr2_ = ::signal(SIGUSR2, [](int) {});
    sigset_t block;
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGCHLD);
    sigaddset(&block, SIGUSR1);
    ::pthread_sigmask(SIG_BLOCK, &block, &old_mask_);
  }
  ~HostileSignalState() {
    ::pthread_sigmask(SIG_SETMASK, &old_mask_, nullptr);
    ::signal(SIGPIPE, old_pipe_);
    ::signal(SIGHUP, old_hup_);
    ::signal(SIGUSR2, old_usr2_);
  }

 private:
  sighandler_t old_pipe_, old_hup_, old_usr2_;
  sigset_t old_mask_;
};

TEST(Spawn, ChildHasDefaultSignalsAndAnEmptyMask) {
  HostileSignalState hostile;
  // The parent's state really is what the child must not inherit.
  std::map<std::string, std::string> own = StatusFields(*ReadFile("/proc/thread-self/status"));
  ASSERT_NE(own["SigBlk"], "0000000000000000");
  ASSERT_NE(own["SigIgn"], "0000000000000000");

  SpawnOptions options;
  options.argv = {"/bin/cat", "/proc/self/status"};
  Finished f = RunToEnd(options);
  ASSERT_EQ(f.status, 0);
  std::map<std::string, std::string> child = StatusFields(f.out);
  EXPECT_EQ(child["SigBlk"], "0000000000000000");
  EXPECT_EQ(child["SigIgn"], "0000000000000000");
  EXPECT_EQ(child["SigCgt"], "0000000000000000");
}

// fd number -> link target of every descriptor `ls -l /proc/self/fd` shows,
// without ls's own handle on that directory.
std::map<int, std::string> ChildFds(const SpawnOptions& base) {
  SpawnOptions options = base;
  options.argv = {"/bin/ls", "-l", "/proc/self/fd"};
  Finished f = RunToEnd(options);
  EXPECT_EQ(f.status, 0) << f.out;
  std::map<int, std::string> fds;
  for (absl::string_view line : absl::StrSplit(f.out, '\n', absl::SkipEmpty())) {
    std::vector<absl::string_view> arrow = absl::StrSplit(line, " -> ");
    if (arrow.size() != 2) {
      continue;
    }
    absl::string_view name = arrow[0].substr(arrow[0].rfind(' ') + 1);
    int fd = -1;
    if (!absl::SimpleAtoi(name, &fd) || absl::EndsWith(arrow[1], "/fd")) {
      continue;
    }
    fds[fd] = std::string(arrow[1]);
  }
  return fds;
}

TEST(Spawn, ChildGetsOnlyTheDescriptorsAskedFor) {
  TempDir tmp;
  ASSERT_TRUE(WriteFileAtomic(tmp.Sub("mapped"), "x", 0644).ok());
  ASSERT_TRUE(WriteFileAtomic(tmp.Sub("leaked"), "x", 0644).ok());
  // Neither has O_CLOEXEC: only the spawner can keep `leaked` out.
  UniqueFd mapped(::open(tmp.Sub("mapped").c_str(), O_RDONLY));
  UniqueFd leaked(::open(tmp.Sub("leaked").c_str(), O_RDONLY));
  Pipe stray = MakePipe(0);
  // One below the highest child descriptor, one far above it.
  UniqueFd leaked_high(::fcntl(leaked.get(), F_DUPFD, 100));
  ASSERT_TRUE(mapped.valid() && leaked.valid() && leaked_high.valid());

  SpawnOptions options;
  options.stderr_fd = mapped.get();
  options.extra_fds = {{mapped.get(), 7}};
  std::map<int, std::string> fds = ChildFds(options);
  std::set<int> numbers;
  for (const auto& [fd, target] : fds) {
    numbers.insert(fd);
  }
  EXPECT_EQ(numbers, (std::set<int>{0, 1, 2, 7}));
  EXPECT_EQ(fds[0], "/dev/null");
  EXPECT_THAT(fds[1], HasSubstr("pipe:"));
  EXPECT_EQ(fds[2], tmp.Sub("mapped"));
  EXPECT_EQ(fds[7], tmp.Sub("mapped"));
}

TEST(Spawn, MappingsThatCrossEachOtherAreKept) {
  TempDir tmp;
  ASSERT_TRUE(WriteFileAtomic(tmp.Sub("a"), "x", 0644).ok());
  ASSERT_TRUE(WriteFileAtomic(tmp.Sub("b"), "x", 0644).ok());
  UniqueFd a(::open(tmp.Sub("a").c_str(), O_RDONLY | O_CLOEXEC));
  UniqueFd b(::open(tmp.Sub("b").c_str(), O_RDONLY | O_CLOEXEC));
  // a goes where b is and b where a is: a naive dup2 order loses one.
  SpawnOptions options;
  options.extra_fds = {{a.get(), b.get()}, {b.get(), a.get()}};
  std::map<int, std::string> fds = ChildFds(options);
  EXPECT_EQ(fds[b.get()], tmp.Sub("a"));
  EXPECT_EQ(fds[a.get()], tmp.Sub("b"));
}

TEST(Spawn, MissingBinaryIsAnErrorNamingItAndLeavesNoChild) {
  for (bool detach : {false, true}) {
    SpawnOptions options;
    options.argv = {"/nonexistent/crid-spawn-test"};
    options.detach = detach;
    options.new_session = detach;
    absl::StatusOr<SpawnedProcess> child = Spawn(options);
    ASSERT_FALSE(child.ok()) << "detach=" << detach;
    EXPECT_EQ(child.status().code(), absl::StatusCode::kNotFound);
    EXPECT_THAT(child.status().message(), HasSubstr("/nonexistent/crid-spawn-test"));
    EXPECT_THAT(child.status().message(), HasSubstr(std::strerror(ENOENT)));
    EXPECT_EQ(::waitpid(-1, nullptr, WNOHANG), -1);
    EXPECT_EQ(errno, ECHILD);
  }
}

TEST(Spawn, BadWorkingDirectoryIsAnError) {
  SpawnOptions options;
  options.argv = {"/bin/true"};
  options.cwd = "/nonexistent/crid-spawn-test-dir";
  absl::StatusOr<SpawnedProcess> child = Spawn(options);
  ASSERT_FALSE(child.ok());
  EXPECT_THAT(child.status().message(), HasSubstr("chdir"));
  EXPECT_THAT(child.status().message(), HasSubstr("/bin/true"));
}

TEST(Spawn, NewSessionAndNewProcessGroup) {
  Pipe hold = MakePipe();
  SpawnOptions options;
  options.argv = {"/bin/cat"};
  options.stdin_fd = hold.read.get();
  options.new_session = true;
  absl::StatusOr<SpawnedProcess> leader = Spawn(options);
  ASSERT_TRUE(leader.ok()) << leader.status();
  EXPECT_EQ(::getsid(leader->pid), leader->pid);
  EXPECT_EQ(::getpgid(leader->pid), leader->pid);

  options.new_session = false;
  options.new_process_group = true;
  absl::StatusOr<SpawnedProcess> group = Spawn(options);
  ASSERT_TRUE(group.ok()) << group.status();
  EXPECT_EQ(::getpgid(group->pid), group->pid);
  EXPECT_EQ(::getsid(group->pid), ::getsid(0));

  hold.write.reset();
  EXPECT_EQ(WaitForExit(leader->pid), 0);
  EXPECT_EQ(WaitForExit(group->pid), 0);
}

TEST(Spawn, StdinStdoutAndStderrReachTheChild) {
  int sp[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
  UniqueFd in_parent(sp[0]), in_child(sp[1]);
  Pipe out = MakePipe();
  Pipe err = MakePipe();
  SpawnOptions options;
  options.argv = {"/bin/sh", "-c", "cat; echo oops >&2; exit 3"};
  options.stdin_fd = in_child.get();
  options.stdout_fd = out.write.get();
  options.stderr_fd = err.write.get();
  absl::StatusOr<SpawnedProcess> child = Spawn(options);
  ASSERT_TRUE(child.ok()) << child.status();
  in_child.reset();
  out.write.reset();
  err.write.reset();
  const std::string input = "hello through stdin\n";
  ASSERT_EQ(::send(in_parent.get(), input.data(), input.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(input.size()));
  in_parent.reset();
  EXPECT_EQ(ReadAll(out.read.get()), input);
  EXPECT_EQ(ReadAll(err.read.get()), "oops\n");
  int status = WaitForExit(child->pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 3);
}

TEST(Spawn, EnvironmentAndWorkingDirectory) {
  TempDir tmp;
  SpawnOptions options;
  options.argv = {"/bin/sh", "-c", "echo \"$FOO|$HOME\"; pwd"};
  options.env = std::vector<std::string>{"FOO=bar"};
  options.cwd = tmp.path();
  Finished f = RunToEnd(options);
  EXPECT_EQ(f.status, 0);
  EXPECT_EQ(f.out, absl::StrCat("bar|\n", tmp.path(), "\n"));
}

TEST(Spawn, PidfdBecomesReadableWhenTheChildExits) {
  SpawnOptions options;
  options.argv = {"/bin/true"};
  absl::StatusOr<SpawnedProcess> child = Spawn(options);
  ASSERT_TRUE(child.ok()) << child.status();
  ASSERT_TRUE(child->pidfd.valid());
  struct pollfd p = {child->pidfd.get(), POLLIN, 0};
  EXPECT_EQ(::poll(&p, 1, 10000), 1);
  EXPECT_EQ(WaitForExit(child->pid), 0);
}

// The program given as an open file: argv[0] is only a name, the file is
// what runs, and its descriptor does not survive into the program.
TEST(Spawn, ExecutesAnOpenFileUnderAnyName) {
  UniqueFd ls(::open("/bin/ls", O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(ls.valid());
  TempDir tmp;
  ASSERT_TRUE(WriteFileAtomic(tmp.Sub("mapped"), "x", 0644).ok());
  UniqueFd mapped(::open(tmp.Sub("mapped").c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(mapped.valid());
  SpawnOptions options;
  options.argv = {"/nonexistent/not-ls", "-l", "/proc/self/fd"};
  options.exec_fd = ls.get();
  options.extra_fds = {{mapped.get(), 7}};
  Finished f = RunToEnd(options);
  ASSERT_EQ(f.status, 0) << f.out;
  std::set<int> numbers;
  for (absl::string_view line : absl::StrSplit(f.out, '\n', absl::SkipEmpty())) {
    std::vector<absl::string_view> arrow = absl::StrSplit(line, " -> ");
    int fd = -1;
    if (arrow.size() == 2 && !absl::EndsWith(arrow[1], "/fd") &&
        absl::SimpleAtoi(arrow[0].substr(arrow[0].rfind(' ') + 1), &fd)) {
      numbers.insert(fd);
    }
  }
  EXPECT_EQ(numbers, (std::set<int>{0, 1, 2, 7}));

  options.argv = {"named", "-c", "tr '\\0' ' ' </proc/$$/cmdline"};
  UniqueFd sh(::open("/bin/sh", O_RDONLY | O_CLOEXEC));
  options.exec_fd = sh.get();
  options.extra_fds.clear();
  f = RunToEnd(options);
  EXPECT_EQ(f.status, 0);
  EXPECT_THAT(f.out, ::testing::StartsWith("named -c "));
}

TEST(Spawn, OpenFileThatCannotRunIsAnErrorNamingIt) {
  TempDir tmp;
  ASSERT_TRUE(WriteFileAtomic(tmp.Sub("data"), "not a program", 0755).ok());
  UniqueFd data(::open(tmp.Sub("data").c_str(), O_RDONLY | O_CLOEXEC));
  SpawnOptions options;
  options.argv = {"the-data"};
  options.exec_fd = data.get();
  absl::StatusOr<SpawnedProcess> child = Spawn(options);
  ASSERT_FALSE(child.ok());
  EXPECT_THAT(child.status().message(), HasSubstr("the-data"));
  EXPECT_EQ(::waitpid(-1, nullptr, WNOHANG), -1);

  options.exec_fd = 1000;  // not open
  child = Spawn(options);
  ASSERT_FALSE(child.ok());
  EXPECT_THAT(child.status().message(), HasSubstr("exec_fd"));
}

TEST(Spawn, DetachedChildIsNotOurs) {
  Pipe hold = MakePipe();
  SpawnOptions options;
  options.argv = {"/bin/cat"};
  options.stdin_fd = hold.read.get();
  options.new_session = true;
  options.detach = true;
  absl::StatusOr<SpawnedProcess> child = Spawn(options);
  ASSERT_TRUE(child.ok()) << child.status();
  EXPECT_FALSE(child->pidfd.valid());
  ASSERT_GT(child->pid, 0);
  std::map<std::string, std::string> status =
      StatusFields(*ReadFile(absl::StrCat("/proc/", child->pid, "/status")));
  EXPECT_NE(status["PPid"], absl::StrCat(::getpid()));
  // A new session, led by the intermediate process, so the child can never
  // acquire a controlling terminal.
  EXPECT_NE(::getsid(child->pid), ::getsid(0));
  EXPECT_NE(::getsid(child->pid), child->pid);
  // Neither it nor the intermediate process is left for us to reap.
  EXPECT_EQ(::waitpid(-1, nullptr, WNOHANG), -1);
  EXPECT_EQ(errno, ECHILD);
  hold.write.reset();  // cat sees EOF and exits; its new parent reaps it
}

TEST(Spawn, NewPidNamespace) {
  if (::geteuid() != 0) {
    GTEST_SKIP() << "needs root";
  }
  SpawnOptions options;
  options.argv = {"/bin/sh", "-c", "echo $$"};
  options.new_pid_namespace = true;
  Finished f = RunToEnd(options);
  EXPECT_EQ(f.status, 0);
  EXPECT_EQ(f.out, "1\n");
}

// A pod with its own user namespace: crid-pause's PID namespace must belong
// to it, or the pod's containers (which enter the user namespace first) could
// not join it.
TEST(Spawn, NewUserAndPidNamespace) {
  if (::geteuid() != 0) {
    GTEST_SKIP() << "needs root";
  }
  SpawnOptions options;
  // Without maps the child's IDs show as the overflow ID.
  options.argv = {"/bin/sh", "-c", "echo $$ $(id -u); readlink /proc/self/ns/user"};
  options.new_pid_namespace = true;
  options.new_user_namespace = true;
  Finished f = RunToEnd(options);
  EXPECT_EQ(f.status, 0);
  char own[64] = {};
  ASSERT_GT(::readlink("/proc/self/ns/user", own, sizeof(own) - 1), 0);
  EXPECT_THAT(f.out, ::testing::StartsWith("1 65534\nuser:["));
  EXPECT_THAT(f.out, ::testing::Not(::testing::HasSubstr(own)));

  options.join_namespaces.push_back({0, CLONE_NEWNET});
  EXPECT_EQ(Spawn(options).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(Spawn, RefusesBadRequests) {
  EXPECT_EQ(Spawn({}).status().code(), absl::StatusCode::kInvalidArgument);
  SpawnOptions options;
  options.argv = {"/bin/true"};
  options.extra_fds = {{0, 1}};
  EXPECT_EQ(Spawn(options).status().code(), absl::StatusCode::kInvalidArgument);
  options.extra_fds = {{0, 5}, {1, 5}};
  EXPECT_EQ(Spawn(options).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace crid
