#include "container/capabilities.h"

#include <algorithm>
#include <fstream>
#include <string>

#include "absl/strings/match.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace crid {
namespace {

using ::testing::Contains;
using ::testing::Not;
using ::testing::UnorderedElementsAre;

TEST(Capabilities, AllIncludesSysAdminAndDefaultsDoNot) {
  EXPECT_THAT(AllCapabilities(), Contains("CAP_SYS_ADMIN"));
  // Exactly the kernel's capabilities that are in this process's bounding set.
  std::ifstream status("/proc/self/status");
  std::string line;
  uint64_t bounding = 0;
  while (std::getline(status, line)) {
    if (absl::StartsWith(line, "CapBnd:")) {
      bounding = std::stoull(line.substr(7), nullptr, 16);
    }
  }
  int last = 0;
  std::ifstream("/proc/sys/kernel/cap_last_cap") >> last;
  size_t expected = 0;
  for (int i = 0; i <= last && i < 64; ++i) {
    expected += (bounding >> i) & 1;
  }
  EXPECT_EQ(AllCapabilities().size(), expected);
  EXPECT_THAT(DefaultCapabilities(), Not(Contains("CAP_SYS_ADMIN")));
  EXPECT_THAT(DefaultCapabilities(), Contains("CAP_CHOWN"));
}

TEST(Capabilities, AddAndDropSingleNames) {
  auto caps =
      ApplyCapabilityChanges(DefaultCapabilities(), {"sys_admin", "CAP_NET_ADMIN"}, {"chown"});
  ASSERT_TRUE(caps.ok()) << caps.status();
  EXPECT_THAT(*caps, Contains("CAP_SYS_ADMIN"));
  EXPECT_THAT(*caps, Contains("CAP_NET_ADMIN"));
  EXPECT_THAT(*caps, Not(Contains("CAP_CHOWN")));
}

TEST(Capabilities, DropAllThenAddKeepsOnlyTheAdded) {
  auto caps = ApplyCapabilityChanges(DefaultCapabilities(), {"NET_RAW"}, {"ALL"});
  ASSERT_TRUE(caps.ok());
  EXPECT_THAT(*caps, UnorderedElementsAre("CAP_NET_RAW"));
}

TEST(Capabilities, AddAllThenDropOne) {
  auto caps = ApplyCapabilityChanges({}, {"all"}, {"SYS_ADMIN"});
  ASSERT_TRUE(caps.ok());
  EXPECT_EQ(caps->size(), AllCapabilities().size() - 1);
  EXPECT_THAT(*caps, Not(Contains("CAP_SYS_ADMIN")));
}

TEST(Capabilities, UnknownNameIsRefusedNamingTheList) {
  auto caps = ApplyCapabilityChanges({}, {"CAP_FLY"}, {});
  ASSERT_FALSE(caps.ok());
  EXPECT_THAT(std::string(caps.status().message()), testing::HasSubstr("add_capabilities"));
  EXPECT_THAT(std::string(caps.status().message()), testing::HasSubstr("CAP_FLY"));
}

}  // namespace
}  // namespace crid
