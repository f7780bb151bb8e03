// Parsing /proc/<pid>/cgroup (tree.h).
#include "cgroups/tree.h"

#include <map>
#include <string>

#include "gtest/gtest.h"

namespace crid {
namespace {

TEST(ParseProcessCgroups, SplitsCoMountedControllersAndKeepsNamedAndV2) {
  std::map<std::string, std::string> got = ParseProcessCgroups(
      "9:name=systemd:/a.slice/b.scope\n"
      "5:devices:/a.slice\n"
      "2:cpu,cpuacct:/a.slice/b.scope\n"
      "0::/a.slice/b.scope\n"
      "garbage\n");
  std::map<std::string, std::string> want = {
      {"name=systemd", "/a.slice/b.scope"}, {"devices", "/a.slice"},  {"cpu", "/a.slice/b.scope"},
      {"cpuacct", "/a.slice/b.scope"},      {"", "/a.slice/b.scope"},
  };
  EXPECT_EQ(got, want);
}

TEST(ParseProcessCgroups, PathsMayHoldColons) {
  EXPECT_EQ(ParseProcessCgroups("4:memory:/a:b\n").at("memory"), "/a:b");
}

}  // namespace
}  // namespace crid
