#include "container/capabilities.h"

#include <algorithm>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace crid {
namespace {

using ::testing::Contains;
using ::testing::Not;
using ::testing::UnorderedElementsAre;

TEST(Capabilities, AllIncludesSysAdminAndDefaultsDoNot) {
  EXPECT_THAT(AllCapabilities(), Contains("CAP_SYS_ADMIN"));
  EXPECT_GE(AllCapabilities().size(), 38u);
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
