#include "cri/streaming/sessions.h"

#include <nlohmann/json.hpp>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace crid::streaming {
namespace {

TEST(StatusJson, SuccessIsTheExactReferenceObject) {
  EXPECT_EQ(SuccessStatusJson(), R"({"metadata":{},"status":"Success"})");
}

TEST(StatusJson, NonZeroExitCarriesTheCode) {
  auto status = nlohmann::json::parse(ExitCodeStatusJson(42));
  EXPECT_EQ(status["status"], "Failure");
  EXPECT_EQ(status["reason"], "NonZeroExitCode");
  EXPECT_TRUE(status["metadata"].is_object());
  ASSERT_EQ(status["details"]["causes"].size(), 1u);
  EXPECT_EQ(status["details"]["causes"][0]["reason"], "ExitCode");
  EXPECT_EQ(status["details"]["causes"][0]["message"], "42");
}

TEST(StatusJson, InternalErrorIs500) {
  auto status = nlohmann::json::parse(InternalErrorStatusJson("boom \"quoted\""));
  EXPECT_EQ(status["reason"], "InternalError");
  EXPECT_EQ(status["code"], 500);
  EXPECT_EQ(status["message"], "Internal error occurred: boom \"quoted\"");
  EXPECT_EQ(status["details"]["causes"][0]["message"], "boom \"quoted\"");
}

TEST(ResizeDecoder, SplitsConcatenatedObjectsAcrossChunks) {
  ResizeDecoder decoder;
  std::vector<TerminalSize> sizes;
  std::string stream = R"({"Width":80,"Height":24}{"width":120, "height" : 40})"
                       "\n"
                       R"({"Height":5,"Width":7,"Other":"}{"})";
  for (char c : stream) {
    ASSERT_TRUE(decoder.Feed(std::string(1, c), &sizes).ok());
  }
  ASSERT_EQ(sizes.size(), 3u);
  EXPECT_EQ(sizes[0], (TerminalSize{80, 24}));
  EXPECT_EQ(sizes[1], (TerminalSize{120, 40}));
  EXPECT_EQ(sizes[2], (TerminalSize{7, 5}));
}

TEST(ResizeDecoder, RejectsGarbageAndHugeObjects) {
  std::vector<TerminalSize> sizes;
  ResizeDecoder garbage;
  EXPECT_FALSE(garbage.Feed("[1,2]", &sizes).ok());
  ResizeDecoder broken;
  EXPECT_FALSE(broken.Feed("{\"Width\":}", &sizes).ok());
  ResizeDecoder huge;
  EXPECT_FALSE(huge.Feed("{\"a\":\"" + std::string(10000, 'x'), &sizes).ok());
  EXPECT_TRUE(sizes.empty());
}

}  // namespace
}  // namespace crid::streaming
