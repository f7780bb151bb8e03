#include "base/json.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace crid {
namespace {

using ::testing::HasSubstr;

TEST(JsonQuote, EscapesWhatJsonRequires) {
  EXPECT_EQ(JsonQuote("plain"), "\"plain\"");
  EXPECT_EQ(JsonQuote("a\"b\\c"), "\"a\\\"b\\\\c\"");
  EXPECT_EQ(JsonQuote("l1\nl2\t"), "\"l1\\nl2\\t\"");
  EXPECT_EQ(JsonQuote(std::string("\x01", 1)), "\"\\u0001\"");
  EXPECT_EQ(JsonQuote("ünï"), "\"ünï\"");
}

TEST(ParseJson, MalformedTextNamesWhatWasParsed) {
  absl::StatusOr<Json> bad = ParseJson("{\"a\":", "plugin result");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("plugin result is not valid JSON"));
  EXPECT_FALSE(ParseJson("", "empty").ok());
  EXPECT_FALSE(ParseJson("{} trailing", "trailing").ok());
  EXPECT_FALSE(ParseJson("\"\xff\"", "bad UTF-8").ok());
  // Out of a double's range: nlohmann's own parser throws for it.
  EXPECT_FALSE(ParseJson("1e999", "huge").ok());
}

TEST(ParseJson, RefusesDeepNesting) {
  std::string deep = std::string(100000, '[') + std::string(100000, ']');
  absl::StatusOr<Json> v = ParseJson(deep, "deep");
  ASSERT_FALSE(v.ok());
  EXPECT_THAT(std::string(v.status().message()), HasSubstr("nested more than"));
  std::string fine = std::string(kMaxJsonDepth, '[') + std::string(kMaxJsonDepth, ']');
  EXPECT_TRUE(ParseJson(fine, "fine").ok());
}

TEST(ParseJson, IntegersKeepAllTheirBits) {
  // 2^53 + 1 is not a double; layer sizes and uids are integers.
  absl::StatusOr<Json> v = ParseJson(R"({"size":9007199254740993,"max":9223372036854775807})", "x");
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(JsonInt(*v, "size"), 9007199254740993);
  EXPECT_EQ(JsonInt(*v, "max"), INT64_MAX);
  EXPECT_EQ(JsonText(*v), R"({"max":9223372036854775807,"size":9007199254740993})");
}

TEST(ParseJson, WholeFloatsBecomeIntegers) {
  absl::StatusOr<Json> v = ParseJson(R"({"a":1.0,"b":1e3,"c":1.5,"d":-2.0})", "x");
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(JsonText(*v), R"({"a":1,"b":1000,"c":1.5,"d":-2})");
}

TEST(ParseJsonObject, OtherValuesAreNotObjects) {
  absl::StatusOr<Json> list = ParseJsonObject("[1]", "token answer");
  ASSERT_FALSE(list.ok());
  EXPECT_EQ(list.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(list.status().message()),
              HasSubstr("token answer is not a JSON object: it is a JSON array"));
  absl::StatusOr<Json> broken = ParseJsonObject("{", "image config");
  ASSERT_FALSE(broken.ok());
  EXPECT_THAT(std::string(broken.status().message()),
              HasSubstr("image config is not a JSON object"));
  EXPECT_TRUE(ParseJsonObject("{}", "x").ok());
}

TEST(JsonAccessors, TolerateAbsentFieldsAndWrongTypes) {
  Json doc = Json::parse(
      R"({"s":"text","n":7,"neg":-3,"f":1.5,"big":18446744073709551615,"b":true,
          "o":{"k":"v"},"a":[1,2]})");
  EXPECT_EQ(JsonString(doc, "s"), "text");
  EXPECT_EQ(JsonString(doc, "n"), "");
  EXPECT_EQ(JsonString(doc, "absent"), "");
  EXPECT_EQ(JsonInt(doc, "n"), 7);
  EXPECT_EQ(JsonInt(doc, "neg"), -1);
  EXPECT_EQ(JsonInt(doc, "f"), -1);
  EXPECT_EQ(JsonInt(doc, "big"), -1);
  EXPECT_EQ(JsonInt(doc, "s"), -1);
  EXPECT_EQ(JsonBool(doc, "b"), true);
  EXPECT_EQ(JsonBool(doc, "s"), std::nullopt);
  ASSERT_NE(JsonObject(doc, "o"), nullptr);
  EXPECT_EQ(JsonString(*JsonObject(doc, "o"), "k"), "v");
  EXPECT_EQ(JsonObject(doc, "a"), nullptr);
  ASSERT_NE(JsonArray(doc, "a"), nullptr);
  EXPECT_EQ(JsonArray(doc, "a")->size(), 2U);
  EXPECT_EQ(JsonArray(doc, "o"), nullptr);
  // Not an object at all.
  Json list = Json::array({1, 2});
  EXPECT_EQ(JsonField(list, "s"), nullptr);
  EXPECT_EQ(JsonString(list, "s"), "");
  EXPECT_EQ(JsonInt(Json("x"), "s"), -1);
}

TEST(JsonText, NeverThrowsOnInvalidUtf8) {
  Json v = {{"k", std::string("a\xff")}};
  EXPECT_EQ(JsonText(v), "{\"k\":\"a\xEF\xBF\xBD\"}");
}

}  // namespace
}  // namespace crid
