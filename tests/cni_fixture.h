// A private CNI bridge network for tests: a conf dir with a bridge + host-local
// (+ portmap) conflist on a random 10.x subnet, a unique bridge name, no
// masquerade and no default route. The destructor deletes the bridge and the
// host-local state, so a test leaves no links behind.
#pragma once

#include <string>

#include "base/temp_dir.h"

namespace crid {

// Debian's containernetworking-plugins.
inline constexpr char kSystemCniBinDir[] = "/usr/lib/cni";

class TestCniNetwork {
 public:
  explicit TestCniNetwork(bool with_portmap = true);
  ~TestCniNetwork();
  TestCniNetwork(const TestCniNetwork&) = delete;
  TestCniNetwork& operator=(const TestCniNetwork&) = delete;

  const std::string& conf_dir() const { return conf_dir_; }
  const std::string& bridge() const { return bridge_; }
  const std::string& network_name() const { return name_; }
  // "10.x.y.0/24" and its prefix "10.x.y."
  const std::string& subnet() const { return subnet_; }
  const std::string& subnet_prefix() const { return prefix_; }
  // The conflist text written to conf_dir()/10-test.conflist.
  const std::string& conflist() const { return conflist_; }
  std::string Sub(const std::string& name) const { return tmp_.Sub(name); }

 private:
  TempDir tmp_;
  std::string conf_dir_;
  std::string bridge_;
  std::string name_;
  std::string subnet_;
  std::string prefix_;
  std::string conflist_;
  bool with_portmap_ = false;
  bool had_hostport_chains_ = false;
};

// True when `ifname` exists in the calling thread's network namespace.
bool LinkExists(const std::string& ifname);
// Number of host links whose name starts with `prefix` (veth leftovers).
int CountHostLinks(const std::string& prefix);
// Number of interfaces attached to `bridge` (its veth ends); 0 when it is gone.
int BridgePortCount(const std::string& bridge);
// Runs a shell command, returns its exit status.
int RunShell(const std::string& command);

}  // namespace crid
