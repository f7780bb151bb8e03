#include "base/net.h"

#include "gtest/gtest.h"

namespace crid {
namespace {

TEST(ValidateCidr, AcceptsV4AndV6) {
  EXPECT_TRUE(ValidateCidr("10.244.1.0/24").ok());
  EXPECT_TRUE(ValidateCidr("0.0.0.0/0").ok());
  EXPECT_TRUE(ValidateCidr("fd00:10:244::/64").ok());
}

TEST(ValidateCidr, RefusesWithReason) {
  EXPECT_NE(ValidateCidr("10.0.0.0").message().find("missing /prefix"), std::string_view::npos);
  EXPECT_NE(ValidateCidr("10.0.0.0/33").message().find("over 32"), std::string_view::npos);
  EXPECT_NE(ValidateCidr("fd00::/129").message().find("over 128"), std::string_view::npos);
  EXPECT_NE(ValidateCidr("10.0.0.300/8").message().find("not an IP"), std::string_view::npos);
  EXPECT_FALSE(ValidateCidr("10.0.0.0/x").ok());
  EXPECT_FALSE(ValidateCidr("10.0.0.0/-1").ok());
}

}  // namespace
}  // namespace crid
