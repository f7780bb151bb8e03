#include "tests/cni_fixture.h"

#include <dirent.h>
#include <net/if.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <random>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace crid {

TestCniNetwork::TestCniNetwork(bool with_portmap) {
  std::random_device rd;
  std::mt19937 gen(rd());
  const unsigned tag = gen() & 0xffffff;
  bridge_ = absl::StrCat("crt", absl::Hex(tag, absl::kZeroPad6));
  name_ = absl::StrCat("crid-test-", absl::Hex(tag, absl::kZeroPad6));
  const unsigned b = 200 + (tag % 50);
  const unsigned c = (tag >> 8) % 250 + 1;
  prefix_ = absl::StrCat("10.", b, ".", c, ".");
  subnet_ = prefix_ + "0/24";
  conf_dir_ = tmp_.Sub("net.d");
  mkdir(conf_dir_.c_str(), 0755);
  std::string plugins =
      absl::StrCat(R"({"type":"bridge","bridge":")", bridge_,
                   R"(","isGateway":false,"ipMasq":false,"ipam":{"type":"host-local","dataDir":")",
                   tmp_.Sub("ipam"), R"(","ranges":[[{"subnet":")", subnet_, R"("}]]}})");
  if (with_portmap) {
    plugins += R"(,{"type":"portmap","capabilities":{"portMappings":true},"snat":false})";
  }
  conflist_ =
      absl::StrCat(R"({"cniVersion":"1.0.0","name":")", name_, R"(","plugins":[)", plugins, "]}");
  std::ofstream(conf_dir_ + "/10-test.conflist") << conflist_;
  with_portmap_ = with_portmap;
  had_hostport_chains_ = RunShell("iptables -t nat -S CNI-HOSTPORT-DNAT >/dev/null 2>&1") == 0;
}

TestCniNetwork::~TestCniNetwork() {
  if (LinkExists(bridge_)) {
    RunShell(absl::StrCat("ip link del ", bridge_, " >/dev/null 2>&1"));
  }
  // portmap leaves its top-level chains and their jumps behind; remove them if
  // this test created them.
  if (with_portmap_ && !had_hostport_chains_) {
    RunShell(
        "iptables -t nat -S 2>/dev/null | grep -e '-j CNI-HOSTPORT-' | sed 's/^-A /-D /' | "
        "while read -r rule; do eval iptables -t nat $rule; done; "
        "for c in $(iptables -t nat -S 2>/dev/null | sed -n 's/^-N "
        "\\(CNI-HOSTPORT-[A-Z]*\\)$/\\1/p'); "
        "do iptables -t nat -F $c; iptables -t nat -X $c; done");
  }
}

bool LinkExists(const std::string& ifname) { return if_nametoindex(ifname.c_str()) != 0; }

int CountHostLinks(const std::string& prefix) {
  int n = 0;
  struct if_nameindex* list = if_nameindex();
  for (struct if_nameindex* i = list; i != nullptr && i->if_index != 0; ++i) {
    if (absl::StartsWith(i->if_name, prefix)) {
      ++n;
    }
  }
  if_freenameindex(list);
  return n;
}

int BridgePortCount(const std::string& bridge) {
  int n = 0;
  if (DIR* d = opendir(("/sys/class/net/" + bridge + "/brif").c_str())) {
    while (struct dirent* e = readdir(d)) {
      if (e->d_name[0] != '.') {
        ++n;
      }
    }
    closedir(d);
  }
  return n;
}

int RunShell(const std::string& command) {
  // iptables and ip live in the sbin directories, which test environments drop.
  return std::system(("PATH=/usr/sbin:/sbin:$PATH; " + command).c_str());
}

}  // namespace crid
