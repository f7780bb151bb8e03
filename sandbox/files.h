// The per-pod files containers mount: /etc/hostname, /etc/hosts and
// /etc/resolv.conf. Pure text builders, so the rules are unit-testable.
#pragma once

#include <string>
#include <vector>

#include "proto/cri_api.pb.h"

namespace crid::sandbox {

// kubelet's limits (pkg/kubelet/network/dns): at most 3 nameservers, 32 search
// domains and 2048 bytes of search line.
inline constexpr int kMaxDnsNameservers = 3;
inline constexpr int kMaxDnsSearches = 32;
inline constexpr size_t kMaxDnsSearchLineBytes = 2048;

// resolv.conf from the pod's DNSConfig; without one, the host's resolv.conf
// (`host_resolv_conf`) reduced to nameserver/search/options lines under the
// same limits.
std::string BuildResolvConf(const runtime::v1::PodSandboxConfig& config,
                            const std::string& host_resolv_conf);

// /etc/hosts: localhost entries, plus "IP hostname" for each pod IP.
std::string BuildHosts(const std::string& hostname, const std::vector<std::string>& ips);

}  // namespace crid::sandbox
