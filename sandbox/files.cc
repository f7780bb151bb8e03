#include "sandbox/files.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace crid::sandbox {

namespace {

std::string Render(std::vector<std::string> servers, std::vector<std::string> searches,
                   const std::vector<std::string>& options) {
  if (servers.size() > kMaxDnsNameservers) {
    servers.resize(kMaxDnsNameservers);
  }
  if (searches.size() > kMaxDnsSearches) {
    searches.resize(kMaxDnsSearches);
  }
  while (!searches.empty() && absl::StrJoin(searches, " ").size() > kMaxDnsSearchLineBytes) {
    searches.pop_back();
  }
  std::string out;
  if (!searches.empty()) {
    absl::StrAppend(&out, "search ", absl::StrJoin(searches, " "), "\n");
  }
  for (const std::string& s : servers) {
    absl::StrAppend(&out, "nameserver ", s, "\n");
  }
  if (!options.empty()) {
    absl::StrAppend(&out, "options ", absl::StrJoin(options, " "), "\n");
  }
  return out;
}

}  // namespace

std::string BuildResolvConf(const runtime::v1::PodSandboxConfig& config,
                            const std::string& host_resolv_conf) {
  if (config.has_dns_config()) {
    const auto& dns = config.dns_config();
    return Render({dns.servers().begin(), dns.servers().end()},
                  {dns.searches().begin(), dns.searches().end()},
                  {dns.options().begin(), dns.options().end()});
  }
  std::vector<std::string> servers, searches, options;
  for (absl::string_view line : absl::StrSplit(host_resolv_conf, '\n')) {
    line = line.substr(0, line.find_first_of("#;"));
    std::vector<std::string> words =
        absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    if (words.empty()) {
      continue;
    }
    if (words[0] == "nameserver" && words.size() > 1) {
      servers.push_back(words[1]);
    } else if ((words[0] == "search" || words[0] == "domain") && words.size() > 1) {
      // The last search/domain line wins, as in resolv.conf(5).
      searches.assign(words.begin() + 1, words.end());
    } else if (words[0] == "options") {
      options.insert(options.end(), words.begin() + 1, words.end());
    }
  }
  return Render(servers, searches, options);
}

std::string BuildHosts(const std::string& hostname, const std::vector<std::string>& ips) {
  std::string out =
      "127.0.0.1\tlocalhost\n"
      "::1\tlocalhost ip6-localhost ip6-loopback\n"
      "fe00::0\tip6-localnet\n"
      "fe00::0\tip6-mcastprefix\n"
      "fe00::1\tip6-allnodes\n"
      "fe00::2\tip6-allrouters\n";
  if (!hostname.empty()) {
    for (const std::string& ip : ips) {
      absl::StrAppend(&out, ip, "\t", hostname, "\n");
    }
  }
  return out;
}

}  // namespace crid::sandbox
