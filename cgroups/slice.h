// systemd slice names and the cgroup paths they stand for. kubelet names a pod's
// slice like `kubepods-burstable-pod<uid>.slice` and hands runtimes the expanded
// path; OCI runtimes want the bare name back. The rules follow systemd's
// unit_name_to_path and runc's ExpandSlice.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace crid {

// `a-b-c.slice` -> `/a.slice/a-b.slice/a-b-c.slice`; `-.slice` -> `/`. An
// already expanded path (`/a.slice/a-b.slice`) passes through when every
// component is the proper child of the one before. Empty components (`a--b`,
// `-a.slice`), slashes inside a name and names not ending in `.slice` are
// INVALID_ARGUMENT.
absl::StatusOr<std::string> ExpandSlice(absl::string_view slice);

// The slice's own name from a name or an expanded path: `/a.slice/a-b.slice` ->
// `a-b.slice`, `/` -> `-.slice`; empty means the default, `system.slice`.
absl::StatusOr<std::string> SliceName(absl::string_view slice_or_path);

}  // namespace crid
