#include "cmd/cli.h"

#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/declare.h"
#include "absl/flags/flag.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

ABSL_FLAG(std::string, test_state, "/run/test", "runtime state directory");
ABSL_FLAG(int, test_workers, 4, "worker threads");
ABSL_DECLARE_FLAG(bool, sweep_dry_run);

namespace crid {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

CommandLineParser Parser() {
  return CommandLineParser(
      "test: a test program.",
      {{"sweep", "[--sweep-dry-run]", "sweep things", "Sweeps them all.", "cmd/cli_test_flags.cc"},
       {"images", "import FILE", "load an image", "", ""}},
      "1.2.3");
}

// Stderr of `fn`, which must not write more than a pipe holds.
template <typename Fn>
std::string CaptureStderr(Fn fn) {
  testing::internal::CaptureStderr();
  fn();
  return testing::internal::GetCapturedStderr();
}

class CommandLineParserTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::SetFlag(&FLAGS_test_state, "/run/test");
    absl::SetFlag(&FLAGS_test_workers, 4);
    absl::SetFlag(&FLAGS_sweep_dry_run, false);
  }
};

TEST_F(CommandLineParserTest, UsageListsEveryFlagWithItsDefaultAndEverySubcommand) {
  std::string usage = Parser().Usage("");
  EXPECT_THAT(usage, HasSubstr("--test-state=VALUE"));
  EXPECT_THAT(usage, HasSubstr("runtime state directory (default \"/run/test\")"));
  EXPECT_THAT(usage, HasSubstr("worker threads (default 4)"));
  EXPECT_THAT(usage, HasSubstr("sweep [--sweep-dry-run]"));
  EXPECT_THAT(usage, HasSubstr("images import FILE"));
  EXPECT_THAT(usage, HasSubstr("--help"));
  // A subcommand's own flag is described with the subcommand, not here.
  EXPECT_THAT(usage, Not(HasSubstr("--sweep-dry-run\n")));
  // Abseil's own flags are not crid's.
  EXPECT_THAT(usage, Not(HasSubstr("flagfile")));
}

TEST_F(CommandLineParserTest, SubcommandUsageListsItsFlagsAndTheGlobalOnes) {
  std::string usage = Parser().Usage("sweep");
  EXPECT_THAT(usage, HasSubstr("Usage: crid [FLAGS] sweep [--sweep-dry-run]"));
  EXPECT_THAT(usage, HasSubstr("Sweeps them all."));
  EXPECT_THAT(usage, HasSubstr("Flags of crid sweep:\n  --sweep-dry-run\n"));
  EXPECT_THAT(usage, HasSubstr("only report what would be swept (default false)"));
  EXPECT_THAT(usage, HasSubstr("Global flags:"));
  EXPECT_THAT(usage, HasSubstr("--test-state=VALUE"));
}

TEST_F(CommandLineParserTest, HelpAnywhereExitsZeroWithoutRunning) {
  for (const std::vector<std::string>& argv :
       std::vector<std::vector<std::string>>{{"crid", "--help"},
                                             {"crid", "-h"},
                                             {"crid", "sweep", "--help"},
                                             {"crid", "--test-state=/x", "--help"}}) {
    testing::internal::CaptureStdout();
    ParseOutcome outcome = Parser().Parse(argv);
    std::string out = testing::internal::GetCapturedStdout();
    EXPECT_FALSE(outcome.line.has_value()) << argv[1];
    EXPECT_EQ(outcome.exit_code, 0);
    EXPECT_THAT(out, HasSubstr("Usage"));
  }
  EXPECT_EQ(absl::GetFlag(FLAGS_test_state), "/run/test");
}

TEST_F(CommandLineParserTest, SetsFlagsWrittenWithDashesOrUnderscoresAndSeparateValues) {
  ParseOutcome outcome = Parser().Parse(
      {"crid", "--test-state", "/s", "--test_workers=7", "sweep", "--sweep-dry-run"});
  ASSERT_TRUE(outcome.line.has_value());
  EXPECT_EQ(outcome.line->subcommand, "sweep");
  EXPECT_TRUE(outcome.line->args.empty());
  EXPECT_EQ(absl::GetFlag(FLAGS_test_state), "/s");
  EXPECT_EQ(absl::GetFlag(FLAGS_test_workers), 7);
  EXPECT_TRUE(absl::GetFlag(FLAGS_sweep_dry_run));
}

TEST_F(CommandLineParserTest, PassesSubcommandArguments) {
  ParseOutcome outcome = Parser().Parse({"crid", "images", "import", "/tmp/a.tar"});
  ASSERT_TRUE(outcome.line.has_value());
  EXPECT_EQ(outcome.line->subcommand, "images");
  EXPECT_EQ(outcome.line->args, (std::vector<std::string>{"import", "/tmp/a.tar"}));
}

TEST_F(CommandLineParserTest, UnknownFlagIsAUsageErrorNamingIt) {
  ParseOutcome outcome;
  std::string err = CaptureStderr([&] { outcome = Parser().Parse({"crid", "--no-such-flag=1"}); });
  EXPECT_FALSE(outcome.line.has_value());
  EXPECT_EQ(outcome.exit_code, 2);
  EXPECT_THAT(err, HasSubstr("unknown flag --no-such-flag"));
}

TEST_F(CommandLineParserTest, AbseilOwnFlagsAreUnknown) {
  ParseOutcome outcome;
  std::string err = CaptureStderr([&] { outcome = Parser().Parse({"crid", "--flagfile=/x"}); });
  EXPECT_EQ(outcome.exit_code, 2);
  EXPECT_THAT(err, HasSubstr("unknown flag --flagfile"));
}

TEST_F(CommandLineParserTest, BadValueIsAUsageErrorNamingTheFlag) {
  ParseOutcome outcome;
  std::string err = CaptureStderr([&] {
    outcome = Parser().Parse({"crid", "--test-workers=many"});
  });
  EXPECT_EQ(outcome.exit_code, 2);
  EXPECT_THAT(err, HasSubstr("flag --test-workers"));
  EXPECT_EQ(absl::GetFlag(FLAGS_test_workers), 4);
}

TEST_F(CommandLineParserTest, MissingValueIsAUsageError) {
  ParseOutcome outcome;
  std::string err = CaptureStderr([&] { outcome = Parser().Parse({"crid", "--test-state"}); });
  EXPECT_EQ(outcome.exit_code, 2);
  EXPECT_THAT(err, HasSubstr("flag --test-state needs a value"));
}

TEST_F(CommandLineParserTest, SubcommandFlagOutsideItsSubcommandIsRefused) {
  ParseOutcome outcome;
  std::string err = CaptureStderr([&] { outcome = Parser().Parse({"crid", "--sweep-dry-run"}); });
  EXPECT_EQ(outcome.exit_code, 2);
  EXPECT_THAT(err, HasSubstr("--sweep-dry-run belongs to `crid sweep`"));
  EXPECT_FALSE(absl::GetFlag(FLAGS_sweep_dry_run));
}

TEST_F(CommandLineParserTest, UnknownSubcommandIsAUsageError) {
  ParseOutcome outcome;
  std::string err = CaptureStderr([&] { outcome = Parser().Parse({"crid", "serve"}); });
  EXPECT_EQ(outcome.exit_code, 2);
  EXPECT_THAT(err, HasSubstr("unexpected argument \"serve\""));
}

TEST_F(CommandLineParserTest, NegatedBoolFlag) {
  absl::SetFlag(&FLAGS_sweep_dry_run, true);
  ParseOutcome outcome = Parser().Parse({"crid", "sweep", "--nosweep-dry-run"});
  ASSERT_TRUE(outcome.line.has_value());
  EXPECT_FALSE(absl::GetFlag(FLAGS_sweep_dry_run));
}

TEST_F(CommandLineParserTest, VersionPrintsIt) {
  testing::internal::CaptureStdout();
  ParseOutcome outcome = Parser().Parse({"crid", "--version"});
  EXPECT_EQ(testing::internal::GetCapturedStdout(), "crid 1.2.3\n");
  EXPECT_EQ(outcome.exit_code, 0);
  EXPECT_FALSE(outcome.line.has_value());
}

}  // namespace
}  // namespace crid
