// crid's command line as people meet it: --help, a subcommand's --help, an
// unknown flag, and `crid check` on this host, run as the real binary.
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include "base/temp_dir.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/crid_process.h"

namespace crid {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class CommandsTest : public ::testing::Test {
 protected:
  std::pair<int, std::string> Crid(const std::vector<std::string>& args) {
    return RunCridToExit(args, tmp_.path());
  }

  TempDir tmp_;
};

TEST_F(CommandsTest, HelpListsEveryFlagWithItsDefaultAndEverySubcommand) {
  auto [code, out] = Crid({"--help"});
  EXPECT_EQ(code, 0) << out;
  EXPECT_THAT(out, Not(HasSubstr("No flags matched")));
  for (const char* flag : {"--config=VALUE", "--root=VALUE", "--state=VALUE", "--listen=VALUE",
                           "--log-level=VALUE", "--help", "--version"}) {
    EXPECT_THAT(out, HasSubstr(flag)) << out;
  }
  EXPECT_THAT(out, HasSubstr("persistent data directory (default /var/lib/crid)"));
  EXPECT_THAT(out, HasSubstr("runtime state directory (default /run/crid)"));
  EXPECT_THAT(out, HasSubstr("crid [FLAGS] check "));
  EXPECT_THAT(out, HasSubstr("crid [FLAGS] cleanup [--dry-run] "));
  EXPECT_THAT(out, HasSubstr("crid [FLAGS] images import FILE "));
  // Abseil's own flags are not crid's.
  EXPECT_THAT(out, Not(HasSubstr("flagfile")));
}

TEST_F(CommandsTest, SubcommandHelpListsItsFlagsAndTheGlobalOnes) {
  auto [code, out] = Crid({"cleanup", "--help"});
  EXPECT_EQ(code, 0) << out;
  EXPECT_THAT(out, HasSubstr("Usage: crid [FLAGS] cleanup [--dry-run]"));
  EXPECT_THAT(out, HasSubstr("--dry-run\n      only list what would be removed (default false)"));
  EXPECT_THAT(out, HasSubstr("Global flags:"));
  EXPECT_THAT(out, HasSubstr("--root=VALUE"));

  auto [images_code, images_out] = Crid({"images", "--help"});
  EXPECT_EQ(images_code, 0) << images_out;
  EXPECT_THAT(images_out, HasSubstr("Usage: crid [FLAGS] images import FILE"));
}

TEST_F(CommandsTest, UnknownFlagExitsTwoNamingIt) {
  auto [code, out] = Crid({"--no-such-flag=1"});
  EXPECT_EQ(code, 2);
  EXPECT_THAT(out, HasSubstr("unknown flag --no-such-flag"));
}

TEST_F(CommandsTest, SubcommandFlagElsewhereExitsTwo) {
  auto [code, out] = Crid({"--dry-run"});
  EXPECT_EQ(code, 2);
  EXPECT_THAT(out, HasSubstr("--dry-run belongs to `crid cleanup`"));
}

TEST_F(CommandsTest, VersionPrintsIt) {
  auto [code, out] = Crid({"--version"});
  EXPECT_EQ(code, 0);
  EXPECT_THAT(out, HasSubstr("crid "));
}

// A config naming a runtime binary that does not exist: the check fails, names
// it, and still runs (and reports) every other check.
TEST_F(CommandsTest, CheckReportsAMissingOciRuntimeByName) {
  std::ofstream(tmp_.Sub("crid.json"))
      << R"({"container":{"handlers":{"runc":{"binary":"/nonexistent/sbin/runc"}}}})";
  auto [code, out] = Crid({"--config", tmp_.Sub("crid.json"), "--root", tmp_.Sub("root"), "--state",
                           tmp_.Sub("state"), "check"});
  EXPECT_EQ(code, 1) << out;
  EXPECT_THAT(out, HasSubstr("FAIL runtime handler runc: "));
  EXPECT_THAT(out, HasSubstr("/nonexistent/sbin/runc"));
  EXPECT_THAT(out, HasSubstr("ok   config: valid"));
  EXPECT_THAT(out, HasSubstr("ok   root: " + tmp_.Sub("root") + " is writable"));
  EXPECT_THAT(out, HasSubstr("ok   overlayfs:"));
  EXPECT_THAT(out, HasSubstr("ok   cgroups:"));
}

TEST_F(CommandsTest, CheckPassesWithAWorkingRuntimeAndCniConfig) {
  ASSERT_EQ(::access("/usr/sbin/runc", X_OK), 0) << "runc is required (tools/install-deps.sh)";
  std::string conf_dir = tmp_.Sub("net.d");
  ASSERT_EQ(::mkdir(conf_dir.c_str(), 0755), 0);
  std::ofstream(conf_dir + "/10-test.conflist") << R"({"cniVersion":"1.0.0","name":"checknet",
      "plugins":[{"type":"loopback"}]})";
  std::ofstream(tmp_.Sub("crid.json"))
      << R"({"cni":{"confDir":")" << conf_dir << R"(","binDirs":["/usr/lib/cni"]},
      "pod":{"pauseBinary":")"
      << RunfilePath("pause/crid-pause") << R"("},"container":{"shimBinary":")"
      << RunfilePath("shim/crid-shim") << R"("}})";
  auto [code, out] = Crid({"--config", tmp_.Sub("crid.json"), "--root", tmp_.Sub("root"), "--state",
                           tmp_.Sub("state"), "check"});
  EXPECT_EQ(code, 0) << out;
  EXPECT_THAT(out, HasSubstr("ok   runtime handler runc: /usr/sbin/runc"));
  EXPECT_THAT(out, HasSubstr("ok   CNI plugin loopback: /usr/lib/cni/loopback"));
  EXPECT_THAT(out, Not(HasSubstr("FAIL")));
}

TEST_F(CommandsTest, CheckReportsAMissingCniPluginByName) {
  std::string conf_dir = tmp_.Sub("net.d");
  ASSERT_EQ(::mkdir(conf_dir.c_str(), 0755), 0);
  std::ofstream(conf_dir + "/10-test.conflist") << R"({"cniVersion":"1.0.0","name":"checknet",
      "plugins":[{"type":"no-such-plugin"}]})";
  std::ofstream(tmp_.Sub("crid.json"))
      << R"({"cni":{"confDir":")" << conf_dir << R"(","binDirs":["/usr/lib/cni"]}})";
  auto [code, out] = Crid({"--config", tmp_.Sub("crid.json"), "--root", tmp_.Sub("root"), "--state",
                           tmp_.Sub("state"), "check"});
  EXPECT_EQ(code, 1) << out;
  EXPECT_THAT(out, HasSubstr("FAIL CNI plugin no-such-plugin:"));
}

}  // namespace
}  // namespace crid
