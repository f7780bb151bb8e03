#include "cgroups/slice.h"

#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace crid {

namespace {

constexpr absl::string_view kSuffix = ".slice";

absl::Status Invalid(absl::string_view slice) {
  return absl::InvalidArgumentError(absl::StrCat("invalid slice name \"", slice, "\""));
}

absl::StatusOr<std::string> ExpandName(absl::string_view slice) {
  if (slice.size() <= kSuffix.size() || !absl::EndsWith(slice, kSuffix) ||
      absl::StrContains(slice, "/")) {
    return Invalid(slice);
  }
  absl::string_view name = absl::StripSuffix(slice, kSuffix);
  if (name == "-") {
    return std::string("/");
  }
  std::string path;
  std::string prefix;
  for (absl::string_view component : absl::StrSplit(name, '-')) {
    if (component.empty()) {
      return Invalid(slice);
    }
    absl::StrAppend(&path, "/", prefix, component, kSuffix);
    absl::StrAppend(&prefix, component, "-");
  }
  return path;
}

}  // namespace

absl::StatusOr<std::string> ExpandSlice(absl::string_view slice) {
  if (!absl::StartsWith(slice, "/")) {
    return ExpandName(slice);
  }
  // An expanded path must be exactly what its last component expands to.
  std::string path(slice);
  while (path.size() > 1 && path.back() == '/') {
    path.pop_back();
  }
  if (path == "/") {
    return path;
  }
  absl::string_view last = absl::string_view(path).substr(path.rfind('/') + 1);
  absl::StatusOr<std::string> expanded = ExpandName(last);
  if (!expanded.ok() || *expanded != path) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", slice, "\" is not an expanded systemd slice path"));
  }
  return path;
}

absl::StatusOr<std::string> SliceName(absl::string_view slice_or_path) {
  if (slice_or_path.empty()) {
    return std::string("system.slice");
  }
  absl::StatusOr<std::string> path = ExpandSlice(slice_or_path);
  if (!path.ok()) {
    return path.status();
  }
  if (*path == "/") {
    return std::string("-.slice");
  }
  return path->substr(path->rfind('/') + 1);
}

}  // namespace crid
