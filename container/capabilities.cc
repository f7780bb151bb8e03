#include "container/capabilities.h"

#include <algorithm>
#include <fstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "oci/capability_names.h"

namespace crid {

namespace {

constexpr int kKnownCapabilities = static_cast<int>(kCapabilityNames.size());

// The kernel's highest capability that has a name here.
int LastCapability() { return std::min(KernelLastCapability(), kKnownCapabilities - 1); }

void Remove(std::vector<std::string>& caps, const std::string& cap) {
  caps.erase(std::remove(caps.begin(), caps.end(), cap), caps.end());
}

void Add(std::vector<std::string>& caps, const std::string& cap) {
  if (std::find(caps.begin(), caps.end(), cap) == caps.end()) {
    caps.push_back(cap);
  }
}

bool IsAll(const std::string& name) { return absl::AsciiStrToUpper(name) == "ALL"; }

}  // namespace

// The capabilities crid itself may hand on: its bounding set. Inside a
// restricted environment that is less than the kernel knows, and a runtime
// asked for more fails with "unable to apply caps".
uint64_t BoundingSet() {
  static const uint64_t set = [] {
    std::ifstream in("/proc/self/status");
    std::string line;
    while (std::getline(in, line)) {
      if (absl::StartsWith(line, "CapBnd:")) {
        uint64_t value = 0;
        if (absl::SimpleHexAtoi(absl::StripAsciiWhitespace(line.substr(7)), &value)) {
          return value;
        }
      }
    }
    return ~uint64_t{0};
  }();
  return set;
}

std::vector<std::string> AllCapabilities() {
  std::vector<std::string> caps;
  const uint64_t bounding = BoundingSet();
  for (int i = 0; i <= LastCapability(); ++i) {
    if ((bounding >> i) & 1) {
      caps.emplace_back(kCapabilityNames[i]);
    }
  }
  return caps;
}

std::vector<std::string> DefaultCapabilities() {
  return {"CAP_CHOWN",   "CAP_DAC_OVERRIDE", "CAP_FSETID",           "CAP_FOWNER",
          "CAP_MKNOD",   "CAP_NET_RAW",      "CAP_SETGID",           "CAP_SETUID",
          "CAP_SETFCAP", "CAP_SETPCAP",      "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT",
          "CAP_KILL",    "CAP_AUDIT_WRITE"};
}

absl::StatusOr<std::string> NormalizeCapability(const std::string& name) {
  std::string upper = absl::AsciiStrToUpper(name);
  if (!absl::StartsWith(upper, "CAP_")) {
    upper = absl::StrCat("CAP_", upper);
  }
  for (const char* known : kCapabilityNames) {
    if (upper == known) {
      return upper;
    }
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown capability \"", name, "\""));
}

absl::StatusOr<std::vector<std::string>> ApplyCapabilityChanges(
    std::vector<std::string> base, const std::vector<std::string>& add,
    const std::vector<std::string>& drop) {
  if (std::any_of(add.begin(), add.end(), IsAll)) {
    base = AllCapabilities();
  }
  if (std::any_of(drop.begin(), drop.end(), IsAll)) {
    base.clear();
  }
  for (const std::string& name : add) {
    if (IsAll(name)) {
      continue;
    }
    absl::StatusOr<std::string> cap = NormalizeCapability(name);
    if (!cap.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("capabilities.add_capabilities: ", cap.status().message()));
    }
    Add(base, *cap);
  }
  for (const std::string& name : drop) {
    if (IsAll(name)) {
      continue;
    }
    absl::StatusOr<std::string> cap = NormalizeCapability(name);
    if (!cap.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("capabilities.drop_capabilities: ", cap.status().message()));
    }
    Remove(base, *cap);
  }
  return base;
}

}  // namespace crid
