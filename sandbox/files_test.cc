#include "sandbox/files.h"

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace crid::sandbox {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(ResolvConfTest, DnsConfigWins) {
  runtime::v1::PodSandboxConfig c;
  c.mutable_dns_config()->add_servers("10.0.0.10");
  c.mutable_dns_config()->add_searches("ns.svc.cluster.local");
  c.mutable_dns_config()->add_searches("svc.cluster.local");
  c.mutable_dns_config()->add_options("ndots:5");
  EXPECT_EQ(BuildResolvConf(c, "nameserver 1.1.1.1\n"),
            "search ns.svc.cluster.local svc.cluster.local\nnameserver 10.0.0.10\n"
            "options ndots:5\n");
}

TEST(ResolvConfTest, HostFileFollowsKubeletRules) {
  runtime::v1::PodSandboxConfig c;
  std::string host =
      "# generated\n"
      "domain old.example\n"
      "nameserver 192.0.2.1\n"
      "nameserver 192.0.2.2 ; comment\n"
      "nameserver 192.0.2.3\n"
      "nameserver 192.0.2.4\n"
      "search a.example b.example\n"
      "options edns0 rotate\n"
      "sortlist 10.0.0.0\n";
  std::string out = BuildResolvConf(c, host);
  EXPECT_EQ(out,
            "search a.example b.example\n"
            "nameserver 192.0.2.1\nnameserver 192.0.2.2\nnameserver 192.0.2.3\n"
            "options edns0 rotate\n");
  EXPECT_THAT(out, Not(HasSubstr("192.0.2.4")));
}

TEST(ResolvConfTest, SearchListIsCapped) {
  runtime::v1::PodSandboxConfig c;
  for (int i = 0; i < 40; ++i) {
    c.mutable_dns_config()->add_searches(absl::StrCat("d", i, ".example"));
  }
  std::string out = BuildResolvConf(c, "");
  EXPECT_THAT(out, HasSubstr("d31.example"));
  EXPECT_THAT(out, Not(HasSubstr("d32.example")));
}

TEST(HostsTest, LocalhostAndPodIps) {
  std::string hosts = BuildHosts("web", {"10.1.0.5", "fd00::5"});
  EXPECT_THAT(hosts, HasSubstr("127.0.0.1\tlocalhost\n"));
  EXPECT_THAT(hosts, HasSubstr("::1\tlocalhost ip6-localhost ip6-loopback\n"));
  EXPECT_THAT(hosts, HasSubstr("10.1.0.5\tweb\n"));
  EXPECT_THAT(hosts, HasSubstr("fd00::5\tweb\n"));
}

}  // namespace
}  // namespace crid::sandbox
