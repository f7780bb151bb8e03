#include "netns/namespace.h"

#include <net/if.h>
#include <sys/stat.h>
#include <unistd.h>

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
