#include "cri/streaming/token_cache.h"

#include <set>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace crid::streaming {
namespace {

runtime::v1::ExecRequest Exec(const std::string& id) {
  runtime::v1::ExecRequest r;
  r.set_container_id(id);
  return r;
}

TEST(Token, IsRandomAndUrlSafe) {
  std::set<std::string> seen;
  for (int i = 0; i < 200; ++i) {
    auto token = NewToken();
    ASSERT_TRUE(token.ok());
    EXPECT_EQ(token->size(), 22u);
    EXPECT_EQ(token->find_first_not_of(
                  "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
              std::string::npos);
    seen.insert(*token);
  }
  EXPECT_EQ(seen.size(), 200u);
}

TEST(TokenCache, TokensAreSingleUse) {
  TokenCache cache;
  auto token = cache.Insert(Exec("c1"));
  ASSERT_TRUE(token.ok());
  auto request = cache.Consume(*token);
  ASSERT_TRUE(request.has_value());
  EXPECT_EQ(std::get<runtime::v1::ExecRequest>(*request).container_id(), "c1");
  EXPECT_FALSE(cache.Consume(*token).has_value());
  EXPECT_FALSE(cache.Consume("unknown").has_value());
}

TEST(TokenCache, TokensExpire) {
  absl::Time now = absl::FromUnixSeconds(1000);
  TokenCache cache(absl::Minutes(1), 10, [&] { return now; });
  auto token = cache.Insert(Exec("c1"));
  ASSERT_TRUE(token.ok());
  now += absl::Seconds(59);
  auto fresh = cache.Insert(Exec("c2"));
  ASSERT_TRUE(fresh.ok());
  now += absl::Seconds(2);
  EXPECT_FALSE(cache.Consume(*token).has_value());
  EXPECT_TRUE(cache.Consume(*fresh).has_value());
}

TEST(TokenCache, BoundedUntilTokensExpire) {
  absl::Time now = absl::FromUnixSeconds(1000);
  TokenCache cache(absl::Minutes(1), 3, [&] { return now; });
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(cache.Insert(Exec("c")).ok());
  }
  auto full = cache.Insert(Exec("c"));
  EXPECT_TRUE(absl::IsResourceExhausted(full.status())) << full.status();
  now += absl::Minutes(2);
  EXPECT_TRUE(cache.Insert(Exec("c")).ok());
  EXPECT_EQ(cache.size(), 1u);
}

}  // namespace
}  // namespace crid::streaming
