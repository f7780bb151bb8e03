#include "netns/namespace.h"

#include <fcntl.h>
#include <linux/nsfs.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>

#include "base/temp_dir.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace crid {
namespace {

using ::testing::HasSubstr;

ino_t InodeOf(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    return 0;
  }
  return st.st_ino;
}

std::vector<std::string> InterfaceNames() {
  std::vector<std::string> names;
  struct if_nameindex* list = if_nameindex();
  for (struct if_nameindex* i = list; i != nullptr && i->if_index != 0; ++i) {
    names.emplace_back(i->if_name);
  }
  if_freenameindex(list);
  return names;
}

// Inode of the user namespace that owns the namespace at `path`.
ino_t OwnerUserNamespace(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return 0;
  }
  int owner = ioctl(fd, NS_GET_USERNS);
  close(fd);
  if (owner < 0) {
    return 0;
  }
  struct stat st;
  ino_t ino = fstat(owner, &st) == 0 ? st.st_ino : 0;
  close(owner);
  return ino;
}

// A pod's user namespace: the mappings as given, and the pod's network and UTS
// namespaces owned by it (set up from inside: lo up, hostname set).
TEST(NamespaceTest, NamespacesAreCreatedInsideAPinnedUserNamespace) {
  TempDir tmp;
  const std::string user = tmp.Sub("user");
  ASSERT_TRUE(CreatePinnedUserNamespace(user, {{0, 200000, 65536}}, {{0, 300000, 65536}}).ok());
  EXPECT_TRUE(IsPinnedNamespace(user));
  EXPECT_NE(InodeOf(user), InodeOf("/proc/self/ns/user"));

  const std::string net = tmp.Sub("net");
  const std::string uts = tmp.Sub("uts");
  ASSERT_TRUE(CreatePinnedNamespace(NamespaceType::kNet, net, BringUpLoopback, user).ok());
  ASSERT_TRUE(CreatePinnedNamespace(
                  NamespaceType::kUts, uts,
                  []() -> absl::Status {
                    return sethostname("userns-pod", 10) == 0 ? absl::OkStatus()
                                                              : absl::InternalError("sethostname");
                  },
                  user)
                  .ok());
  EXPECT_EQ(OwnerUserNamespace(net), InodeOf(user));
  EXPECT_EQ(OwnerUserNamespace(uts), InodeOf(user));
  std::vector<std::string> inside;
  ASSERT_TRUE(RunInNamespaces({{NamespaceType::kNet, net}}, [&]() -> absl::Status {
                inside = InterfaceNames();
                return absl::OkStatus();
              }).ok());
  EXPECT_EQ(inside, std::vector<std::string>{"lo"});

  // The maps, as a process of the namespace reads them.
  pid_t child = fork();
  if (child == 0) {
    int fd = open(user.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0 || setns(fd, CLONE_NEWUSER) != 0) {
      _exit(1);
    }
    std::ifstream uid_map("/proc/self/uid_map");
    std::ifstream gid_map("/proc/self/gid_map");
    unsigned a, b, c, d, e, f;
    uid_map >> a >> b >> c;
    gid_map >> d >> e >> f;
    _exit(a == 0 && b == 200000 && c == 65536 && d == 0 && e == 300000 && f == 65536 ? 0 : 2);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;

  EXPECT_TRUE(RemovePinnedNamespace(net).ok());
  EXPECT_TRUE(RemovePinnedNamespace(uts).ok());
  EXPECT_TRUE(RemovePinnedNamespace(user).ok());
  EXPECT_FALSE(IsPinnedNamespace(user));
}

TEST(NamespaceTest, BadUserNamespaceMappingLeavesNothing) {
  TempDir tmp;
  const std::string user = tmp.Sub("user");
  // Overlapping ranges: the kernel refuses the map.
  absl::Status st =
      CreatePinnedUserNamespace(user, {{0, 200000, 100}, {50, 300000, 100}}, {{0, 200000, 100}});
  EXPECT_FALSE(st.ok());
  EXPECT_THAT(std::string(st.message()), HasSubstr("uid_map"));
  EXPECT_NE(access(user.c_str(), F_OK), 0);
  // A failure inside the child is reported too, and leaves nothing.
  const std::string net = tmp.Sub("net");
  st = CreatePinnedNamespace(NamespaceType::kNet, net, nullptr, tmp.Sub("missing"));
  EXPECT_FALSE(st.ok());
  EXPECT_NE(access(net.c_str(), F_OK), 0);
}

TEST(NamespaceTest, NetworkNamespaceIsPinnedEnteredAndRemoved) {
  TempDir tmp;
  const std::string path = tmp.Sub("net");
  ASSERT_TRUE(CreatePinnedNamespace(NamespaceType::kNet, path, BringUpLoopback).ok());
  EXPECT_TRUE(IsPinnedNamespace(path));
  EXPECT_NE(InodeOf(path), InodeOf("/proc/self/ns/net"));

  std::vector<std::string> inside;
  ino_t inside_ino = 0;
  ASSERT_TRUE(RunInNamespaces({{NamespaceType::kNet, path}}, [&]() -> absl::Status {
                inside = InterfaceNames();
                inside_ino = InodeOf("/proc/thread-self/ns/net");
                return absl::OkStatus();
              }).ok());
  EXPECT_EQ(inside, std::vector<std::string>{"lo"});
  EXPECT_EQ(inside_ino, InodeOf(path));
  // The caller's thread never moved.
  EXPECT_NE(InodeOf("/proc/thread-self/ns/net"), InodeOf(path));

  ASSERT_TRUE(RemovePinnedNamespace(path).ok());
  EXPECT_FALSE(IsPinnedNamespace(path));
  EXPECT_NE(access(path.c_str(), F_OK), 0);
  // Removing twice is fine.
  EXPECT_TRUE(RemovePinnedNamespace(path).ok());
}

TEST(NamespaceTest, UtsNamespaceKeepsTheHostnameSetAtCreation) {
  TempDir tmp;
  const std::string path = tmp.Sub("uts");
  char host[256] = {};
  gethostname(host, sizeof(host) - 1);
  ASSERT_TRUE(CreatePinnedNamespace(NamespaceType::kUts, path, []() -> absl::Status {
                const char name[] = "pod-host";
                if (sethostname(name, sizeof(name) - 1) != 0) {
                  return absl::InternalError("sethostname");
                }
                return absl::OkStatus();
              }).ok());
  std::string inside;
  ASSERT_TRUE(RunInNamespaces({{NamespaceType::kUts, path}}, [&]() -> absl::Status {
                char buf[256] = {};
                gethostname(buf, sizeof(buf) - 1);
                inside = buf;
                return absl::OkStatus();
              }).ok());
  EXPECT_EQ(inside, "pod-host");
  char after[256] = {};
  gethostname(after, sizeof(after) - 1);
  EXPECT_STREQ(after, host);
  ASSERT_TRUE(RemovePinnedNamespace(path).ok());
}

TEST(NamespaceTest, IpcNamespaceIsDistinct) {
  TempDir tmp;
  const std::string path = tmp.Sub("ipc");
  ASSERT_TRUE(CreatePinnedNamespace(NamespaceType::kIpc, path).ok());
  EXPECT_NE(InodeOf(path), InodeOf("/proc/self/ns/ipc"));
  ASSERT_TRUE(RemovePinnedNamespace(path).ok());
  EXPECT_NE(access(path.c_str(), F_OK), 0);
}

TEST(NamespaceTest, FailingInitLeavesNothing) {
  TempDir tmp;
  const std::string path = tmp.Sub("net");
  absl::Status st = CreatePinnedNamespace(NamespaceType::kNet, path, []() -> absl::Status {
    return absl::InternalError("init failed on purpose");
  });
  EXPECT_THAT(std::string(st.message()), HasSubstr("init failed on purpose"));
  EXPECT_NE(access(path.c_str(), F_OK), 0);
}

TEST(NamespaceTest, ExistingPathIsRefusedAndKept) {
  TempDir tmp;
  const std::string path = tmp.Sub("net");
  ASSERT_TRUE(CreatePinnedNamespace(NamespaceType::kNet, path).ok());
  absl::Status st = CreatePinnedNamespace(NamespaceType::kNet, path);
  EXPECT_EQ(st.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_TRUE(IsPinnedNamespace(path));
  ASSERT_TRUE(RemovePinnedNamespace(path).ok());
}

TEST(NamespaceTest, EnteringAMissingNamespaceFails) {
  absl::Status st = RunInNamespaces({{NamespaceType::kNet, "/nonexistent/ns"}},
                                    []() { return absl::OkStatus(); });
  EXPECT_FALSE(st.ok());
  EXPECT_THAT(std::string(st.message()), HasSubstr("/nonexistent/ns"));
}

}  // namespace
}  // namespace crid
