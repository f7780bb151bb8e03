#include "sandbox/validate.h"

#include <arpa/inet.h>
#include <unistd.h>

#include <cctype>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"

namespace crid::sandbox {

namespace {

using runtime::v1::NamespaceMode;

absl::Status Invalid(absl::string_view field, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", why));
}

bool IsIp(const std::string& s) {
  unsigned char buf[16];
  return inet_pton(AF_INET, s.c_str(), buf) == 1 || inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

// RFC 1123 subdomain: lower-case alphanumerics, '-' and '.', alphanumeric at
// both ends of every label.
bool IsDnsSubdomain(const std::string& s) {
  if (s.empty() || s.size() > 253) {
    return false;
  }
  size_t label = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '.') {
      if (label == 0 || s[i - 1] == '-') {
        return false;
      }
      label = 0;
      continue;
    }
    if (!(absl::ascii_islower(c) || absl::ascii_isdigit(c) || c == '-')) {
      return false;
    }
    if (label == 0 && c == '-') {
      return false;
    }
    if (++label > 63) {
      return false;
    }
  }
  return label > 0 && s.back() != '-';
}

bool HasSpaceOrControl(const std::string& s) {
  for (char c : s) {
    if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f) {
      return true;
    }
  }
  return false;
}

absl::Status ValidateName(absl::string_view field, const std::string& value) {
  if (value.empty()) {
    return Invalid(field, "must not be empty");
  }
  if (value.size() > 253) {
    return Invalid(field, "longer than 253 bytes");
  }
  if (absl::StrContains(value, '/') || HasSpaceOrControl(value)) {
    return Invalid(field, absl::StrCat("\"", value, "\" contains '/', spaces or control bytes"));
  }
  return absl::OkStatus();
}

absl::Status ValidateResources(absl::string_view field,
                               const runtime::v1::LinuxContainerResources& r) {
  if (r.cpu_period() < 0) {
    return Invalid(absl::StrCat(field, ".cpu_period"), "must not be negative");
  }
  if (r.cpu_quota() < -1) {
    return Invalid(absl::StrCat(field, ".cpu_quota"), "must be -1 or more");
  }
  if (r.cpu_shares() < 0) {
    return Invalid(absl::StrCat(field, ".cpu_shares"), "must not be negative");
  }
  if (r.memory_limit_in_bytes() < 0) {
    return Invalid(absl::StrCat(field, ".memory_limit_in_bytes"), "must not be negative");
  }
  if (r.oom_score_adj() < -1000 || r.oom_score_adj() > 1000) {
    return Invalid(absl::StrCat(field, ".oom_score_adj"), "must be within -1000..1000");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::string> SysctlPath(const std::string& name, bool own_netns, bool own_ipc) {
  if (name.empty() || HasSpaceOrControl(name) || absl::StrContains(name, "..") ||
      name.front() == '.' || name.front() == '/') {
    return Invalid("linux.sysctls", absl::StrCat("invalid sysctl name \"", name, "\""));
  }
  // kubelet accepts both "net.ipv4.x" and "net/ipv4/x"; with slashes, dots
  // belong to the name (interface names like eth0.100).
  std::string rel = absl::StrContains(name, '/') ? name : absl::StrReplaceAll(name, {{".", "/"}});
  std::string dotted = absl::StrReplaceAll(rel, {{"/", "."}});
  bool net = absl::StartsWith(dotted, "net.");
  bool ipc = absl::StartsWith(dotted, "kernel.shm") || absl::StartsWith(dotted, "kernel.msg") ||
             dotted == "kernel.sem" || absl::StartsWith(dotted, "fs.mqueue.");
  if (!net && !ipc) {
    return Invalid("linux.sysctls", absl::StrCat("sysctl \"", name,
                                                 "\" is not namespaced and would change the host"));
  }
  if (net && !own_netns) {
    return Invalid("linux.sysctls", absl::StrCat("sysctl \"", name,
                                                 "\" needs the pod's own network namespace, but "
                                                 "the pod uses the host network"));
  }
  if (ipc && !own_ipc) {
    return Invalid(
        "linux.sysctls",
        absl::StrCat("sysctl \"", name,
                     "\" needs the pod's own IPC namespace, but the pod uses the host's"));
  }
  std::string path = absl::StrCat("/proc/sys/", rel);
  if (access(path.c_str(), F_OK) != 0) {
    return Invalid("linux.sysctls", absl::StrCat("unknown sysctl \"", name, "\""));
  }
  return path;
}

absl::StatusOr<uint64_t> ParseBandwidth(const std::string& quantity) {
  static const std::pair<const char*, uint64_t> kSuffixes[] = {
      {"Ki", 1ull << 10}, {"Mi", 1ull << 20}, {"Gi", 1ull << 30},   {"Ti", 1ull << 40},
      {"k", 1000ull},     {"M", 1000000ull},  {"G", 1000000000ull}, {"T", 1000000000000ull},
  };
  std::string digits = quantity;
  uint64_t mult = 1;
  for (const auto& [suffix, m] : kSuffixes) {
    if (absl::EndsWith(quantity, suffix)) {
      digits = quantity.substr(0, quantity.size() - std::string(suffix).size());
      mult = m;
      break;
    }
  }
  uint64_t n = 0;
  if (digits.empty() || !absl::SimpleAtoi(digits, &n) || n == 0 || n > UINT64_MAX / mult) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid bandwidth quantity \"", quantity, "\" (e.g. 10M, 1Gi)"));
  }
  return n * mult;
}

namespace {

absl::Status ValidateIdMappings(
    const std::string& field, const google::protobuf::RepeatedPtrField<runtime::v1::IDMapping>& m) {
  // As containerd: one range, which maps the pod's root (crid's idmapped
  // rootfs layers and the upper layer's owner assume exactly that).
  if (m.size() != 1) {
    return Invalid(field, absl::StrCat("exactly one mapping is supported, got ", m.size()));
  }
  if (m[0].container_id() != 0) {
    return Invalid(field, "container ID 0 must be mapped");
  }
  if (m[0].length() == 0) {
    return Invalid(field, "length must not be 0");
  }
  if (uint64_t{m[0].host_id()} + m[0].length() > uint64_t{UINT32_MAX}) {
    return Invalid(field, "host_id + length exceeds the 32-bit ID range");
  }
  return absl::OkStatus();
}

absl::Status ValidateUserNamespace(const runtime::v1::NamespaceOption& ns) {
  const std::string field = "config.linux.security_context.namespace_options.userns_options";
  const runtime::v1::UserNamespace& userns = ns.userns_options();
  switch (userns.mode()) {
    case NamespaceMode::NODE:
      if (userns.uids_size() > 0 || userns.gids_size() > 0) {
        return Invalid(field, "mode NODE takes no uid/gid mappings");
      }
      return absl::OkStatus();
    case NamespaceMode::POD:
      break;
    default:
      return Invalid(field + ".mode",
                     absl::StrCat("must be NODE or POD, got ", NamespaceMode_Name(userns.mode())));
  }
  if (absl::Status st = ValidateIdMappings(field + ".uids", userns.uids()); !st.ok()) {
    return st;
  }
  if (absl::Status st = ValidateIdMappings(field + ".gids", userns.gids()); !st.ok()) {
    return st;
  }
  // Kubernetes refuses hostIPC and hostPID with hostUsers: false; a namespace
  // the pod does not own cannot be entered from its user namespace anyway.
  // The host network is allowed (kubelet's UserNamespacesHostNetworkSupport,
  // Status' user_namespaces_host_network): its containers stay in the
  // network namespace they start in, and get the host's /sys bound instead
  // of a sysfs of their own, which the kernel refuses there.
  if (ns.ipc() != NamespaceMode::POD) {
    return Invalid(field, "mode POD needs the pod's own IPC namespace");
  }
  if (ns.network() != NamespaceMode::POD && ns.network() != NamespaceMode::NODE) {
    return Invalid(field, "mode POD needs the pod's own network namespace or the host's");
  }
  if (ns.pid() == NamespaceMode::NODE) {
    return Invalid(field, "mode POD cannot share the host's PID namespace");
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidatePodSandboxConfig(const runtime::v1::PodSandboxConfig& config) {
  if (!config.has_metadata()) {
    return Invalid("config.metadata", "is required");
  }
  const auto& md = config.metadata();
  if (absl::Status st = ValidateName("config.metadata.name", md.name()); !st.ok()) {
    return st;
  }
  if (absl::Status st = ValidateName("config.metadata.namespace", md.namespace_()); !st.ok()) {
    return st;
  }
  if (absl::Status st = ValidateName("config.metadata.uid", md.uid()); !st.ok()) {
    return st;
  }
  // An absolute name (one trailing dot) is a name too: kubelet sends
  // "<host>.<subdomain>.<namespace>.svc.<cluster domain>" for setHostnameAsFQDN,
  // which ends in a dot when the cluster domain is empty.
  if (const std::string& host = config.hostname(); !host.empty()) {
    absl::string_view name = absl::StripSuffix(host, ".");
    if (host.size() > 64 || !IsDnsSubdomain(std::string(name))) {
      return Invalid(
          "config.hostname",
          absl::StrCat("\"", host, "\" is not a lower-case RFC 1123 name of at most 64 bytes"));
    }
  }
  if (!config.log_directory().empty() && config.log_directory().front() != '/') {
    return Invalid("config.log_directory",
                   absl::StrCat("must be an absolute path, got \"", config.log_directory(), "\""));
  }
  if (config.has_dns_config()) {
    const auto& dns = config.dns_config();
    for (int i = 0; i < dns.servers_size(); ++i) {
      if (!IsIp(dns.servers(i))) {
        return Invalid(absl::StrCat("config.dns_config.servers[", i, "]"),
                       absl::StrCat("\"", dns.servers(i), "\" is not an IP address"));
      }
    }
    for (int i = 0; i < dns.searches_size(); ++i) {
      if (dns.searches(i).empty() || HasSpaceOrControl(dns.searches(i))) {
        return Invalid(absl::StrCat("config.dns_config.searches[", i, "]"),
                       "must be a non-empty name without spaces");
      }
    }
    for (int i = 0; i < dns.options_size(); ++i) {
      if (dns.options(i).empty() || HasSpaceOrControl(dns.options(i))) {
        return Invalid(absl::StrCat("config.dns_config.options[", i, "]"),
                       "must be a non-empty option without spaces");
      }
    }
  }
  for (int i = 0; i < config.port_mappings_size(); ++i) {
    const auto& pm = config.port_mappings(i);
    std::string field = absl::StrCat("config.port_mappings[", i, "]");
    if (pm.container_port() <= 0 || pm.container_port() > 65535) {
      return Invalid(field + ".container_port",
                     absl::StrCat("must be within 1..65535, got ", pm.container_port()));
    }
    if (pm.host_port() < 0 || pm.host_port() > 65535) {
      return Invalid(field + ".host_port",
                     absl::StrCat("must be within 0..65535, got ", pm.host_port()));
    }
    if (!pm.host_ip().empty() && !IsIp(pm.host_ip())) {
      return Invalid(field + ".host_ip", absl::StrCat("\"", pm.host_ip(), "\" is not an IP"));
    }
    if (!runtime::v1::Protocol_IsValid(pm.protocol())) {
      return Invalid(field + ".protocol", "unknown protocol");
    }
  }
  for (const auto& [k, v] : config.labels()) {
    if (k.empty()) {
      return Invalid("config.labels", "empty key");
    }
  }
  for (const auto& [k, v] : config.annotations()) {
    if (k.empty()) {
      return Invalid("config.annotations", "empty key");
    }
  }
  const auto& linux = config.linux();
  if (!linux.cgroup_parent().empty() && linux.cgroup_parent().front() != '/') {
    return Invalid(
        "config.linux.cgroup_parent",
        absl::StrCat("must be an absolute cgroup path, got \"", linux.cgroup_parent(), "\""));
  }
  const auto& ns = linux.security_context().namespace_options();
  if (ns.network() != NamespaceMode::POD && ns.network() != NamespaceMode::NODE) {
    return Invalid("config.linux.security_context.namespace_options.network",
                   "must be POD or NODE for a pod sandbox");
  }
  if (ns.ipc() != NamespaceMode::POD && ns.ipc() != NamespaceMode::NODE) {
    return Invalid("config.linux.security_context.namespace_options.ipc",
                   "must be POD or NODE for a pod sandbox");
  }
  if (ns.pid() == NamespaceMode::TARGET || !NamespaceMode_IsValid(ns.pid())) {
    return Invalid("config.linux.security_context.namespace_options.pid",
                   "must be POD, CONTAINER or NODE for a pod sandbox");
  }
  if (ns.has_userns_options()) {
    if (absl::Status st = ValidateUserNamespace(ns); !st.ok()) {
      return st;
    }
  }
  for (const auto& [name, value] : linux.sysctls()) {
    absl::StatusOr<std::string> path =
        SysctlPath(name, ns.network() == NamespaceMode::POD, ns.ipc() == NamespaceMode::POD);
    if (!path.ok()) {
      return path.status();
    }
    if (HasSpaceOrControl(absl::StrReplaceAll(value, {{" ", ""}, {"\t", ""}}))) {
      return Invalid("config.linux.sysctls",
                     absl::StrCat("value of \"", name, "\" contains control bytes"));
    }
  }
  if (linux.has_overhead()) {
    if (absl::Status st = ValidateResources("config.linux.overhead", linux.overhead()); !st.ok()) {
      return st;
    }
  }
  if (linux.has_resources()) {
    if (absl::Status st = ValidateResources("config.linux.resources", linux.resources());
        !st.ok()) {
      return st;
    }
  }
  for (const char* key : {"kubernetes.io/ingress-bandwidth", "kubernetes.io/egress-bandwidth"}) {
    auto it = config.annotations().find(key);
    if (it != config.annotations().end()) {
      if (absl::StatusOr<uint64_t> bw = ParseBandwidth(it->second); !bw.ok()) {
        return Invalid(absl::StrCat("config.annotations[\"", key, "\"]"), bw.status().message());
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace crid::sandbox
