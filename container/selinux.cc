// SELinux labels as containerd composes them (go-selinux's InitLabels with
// the pod's label as the default), the host probe and option validation.
#include "container/selinux.h"

#include <sys/stat.h>

#include <array>
#include <cstdint>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "base/fs.h"

namespace crid {

namespace {

namespace v1 = ::runtime::v1;

// A context's four parts; the level keeps its own ':'s ("s0:c1,c2").
struct Context {
  std::string user;
  std::string role;
  std::string type;
  std::string level;

  static Context Parse(absl::string_view label) {
    std::vector<std::string> parts = absl::StrSplit(label, absl::MaxSplits(':', 3));
    parts.resize(4);
    return {parts[0], parts[1], parts[2], parts[3]};
  }
  std::string ToString() const { return absl::StrCat(user, ":", role, ":", type, ":", level); }
};

bool HasOptions(const v1::SELinuxOption& o) {
  return !o.user().empty() || !o.role().empty() || !o.type().empty() || !o.level().empty();
}

// go-selinux's InitLabels: every option replaces its part of the process
// label; user and level also go into the mount label (the file type stays
// the policy's).
SELinuxLabels Compose(const SELinuxHost& host, const std::string& default_level,
                      const v1::SELinuxOption& o) {
  Context process = Context::Parse(host.process_label);
  Context mount = Context::Parse(host.file_label);
  process.level = default_level;
  mount.level = default_level;
  if (!o.user().empty()) {
    process.user = o.user();
    mount.user = o.user();
  }
  if (!o.role().empty()) {
    process.role = o.role();
  }
  if (!o.type().empty()) {
    process.type = o.type();
  }
  if (!o.level().empty()) {
    process.level = o.level();
    mount.level = o.level();
  }
  return {process.ToString(), mount.ToString()};
}

absl::Status ValidatePart(absl::string_view value, absl::string_view field,
                          absl::string_view part) {
  for (char c : value) {
    if (c == ':' || absl::ascii_isspace(static_cast<unsigned char>(c))) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, ".", part, ": \"", value, "\" must not contain ':' or whitespace"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

SELinuxHost DetectSELinux() {
  SELinuxHost host;
  struct stat st {};
  if (::stat("/sys/fs/selinux/enforce", &st) != 0) {
    return host;
  }
  // The file alone could be a leftover directory entry: selinuxfs must be
  // mounted (go-selinux asks the same).
  std::string mountinfo = ReadFile("/proc/self/mountinfo").value_or("");
  bool mounted = false;
  for (absl::string_view line : absl::StrSplit(mountinfo, '\n')) {
    size_t dash = line.find(" - ");
    if (dash != absl::string_view::npos && absl::StartsWith(line.substr(dash + 3), "selinuxfs ")) {
      mounted = true;
      break;
    }
  }
  if (!mounted) {
    return host;
  }
  host.enabled = true;
  // The policy's own defaults, where it names them.
  std::string policy = "targeted";
  for (absl::string_view line :
       absl::StrSplit(ReadFile("/etc/selinux/config").value_or(""), '\n')) {
    line = absl::StripAsciiWhitespace(line);
    if (absl::ConsumePrefix(&line, "SELINUXTYPE=") && !line.empty()) {
      policy = std::string(line);
    }
  }
  auto [process, file] = ParseLxcContexts(
      ReadFile(absl::StrCat("/etc/selinux/", policy, "/contexts/lxc_contexts")).value_or(""));
  if (!process.empty()) {
    host.process_label = process;
  }
  if (!file.empty()) {
    host.file_label = file;
  }
  return host;
}

std::pair<std::string, std::string> ParseLxcContexts(absl::string_view text) {
  // Lines such as: process = "system_u:system_r:container_t:s0"
  std::pair<std::string, std::string> contexts;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    line = absl::StripAsciiWhitespace(line);
    size_t eq = line.find('=');
    if (line.empty() || line[0] == '#' || eq == absl::string_view::npos) {
      continue;
    }
    absl::string_view key = absl::StripAsciiWhitespace(line.substr(0, eq));
    absl::string_view value = absl::StripAsciiWhitespace(line.substr(eq + 1));
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
      value = value.substr(1, value.size() - 2);
    }
    if (key == "process") {
      contexts.first = std::string(value);
    } else if (key == "file") {
      contexts.second = std::string(value);
    }
  }
  return contexts;
}

namespace {

// `prefix` followed by `min_digits` to `max_digits` digits, consumed from `text`.
bool ConsumeNumbered(absl::string_view* text, char prefix, size_t min_digits, size_t max_digits) {
  if (text->empty() || text->front() != prefix) {
    return false;
  }
  size_t digits = 1;
  while (digits < text->size() &&
         absl::ascii_isdigit(static_cast<unsigned char>((*text)[digits]))) {
    ++digits;
  }
  digits -= 1;
  if (digits < min_digits || digits > max_digits) {
    return false;
  }
  text->remove_prefix(1 + digits);
  return true;
}

// containerd's checkSelinuxLevel pattern,
// s\d(-s\d)?(:c\d{1,4}(\.c\d{1,4})?(,c\d{1,4}(\.c\d{1,4})?)*)?: a sensitivity or
// a range of two, then optionally categories (single ones or ranges).
bool IsMlsLevel(absl::string_view level) {
  if (!ConsumeNumbered(&level, 's', 1, 1)) {
    return false;
  }
  if (absl::ConsumePrefix(&level, "-") && !ConsumeNumbered(&level, 's', 1, 1)) {
    return false;
  }
  if (level.empty()) {
    return true;
  }
  if (!absl::ConsumePrefix(&level, ":")) {
    return false;
  }
  for (;;) {
    if (!ConsumeNumbered(&level, 'c', 1, 4)) {
      return false;
    }
    if (absl::ConsumePrefix(&level, ".") && !ConsumeNumbered(&level, 'c', 1, 4)) {
      return false;
    }
    if (level.empty()) {
      return true;
    }
    if (!absl::ConsumePrefix(&level, ",")) {
      return false;
    }
  }
}

}  // namespace

absl::Status ValidateSELinuxOption(const v1::SELinuxOption& option, absl::string_view field) {
  if (absl::Status st = ValidatePart(option.user(), field, "user"); !st.ok()) {
    return st;
  }
  if (absl::Status st = ValidatePart(option.role(), field, "role"); !st.ok()) {
    return st;
  }
  if (absl::Status st = ValidatePart(option.type(), field, "type"); !st.ok()) {
    return st;
  }
  if (option.level().empty()) {
    return absl::OkStatus();
  }
  if (!IsMlsLevel(option.level())) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, ".level: \"", option.level(), "\" is not an MLS level such as s0 or s0:c1,c2"));
  }
  return absl::OkStatus();
}

std::string PodMcsLevel(absl::string_view pod_id, absl::string_view base_level) {
  // FNV-1a: stable across builds and machines, unlike std::hash.
  uint64_t h = 14695981039346656037ull;
  for (char c : pod_id) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ull;
  }
  // Two different categories out of c0..c1023, the lower first.
  uint64_t a = h % 1024;
  uint64_t b = (h >> 10) % 1023;
  if (b >= a) {
    ++b;
  }
  if (a > b) {
    std::swap(a, b);
  }
  absl::string_view sensitivity = base_level.substr(0, base_level.find_first_of("-:"));
  if (sensitivity.empty()) {
    sensitivity = "s0";
  }
  return absl::StrCat(sensitivity, ":c", a, ",c", b);
}

absl::StatusOr<SELinuxLabels> SELinuxLabelsFor(const v1::SELinuxOption& pod,
                                               const v1::SELinuxOption& container,
                                               absl::string_view pod_id, const SELinuxHost& host) {
  // Validated on every host, as containerd does before asking whether
  // SELinux is on: a bad request is bad everywhere.
  if (absl::Status st =
          ValidateSELinuxOption(pod, "sandbox.linux.security_context.selinux_options");
      !st.ok()) {
    return st;
  }
  if (absl::Status st = ValidateSELinuxOption(container, "linux.security_context.selinux_options");
      !st.ok()) {
    return st;
  }
  if (!host.enabled) {
    return SELinuxLabels{};
  }
  SELinuxLabels pod_labels =
      Compose(host, PodMcsLevel(pod_id, Context::Parse(host.process_label).level), pod);
  if (!HasOptions(container)) {
    return pod_labels;
  }
  return Compose(host, Context::Parse(pod_labels.process_label).level, container);
}

}  // namespace crid
