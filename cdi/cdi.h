// CDI (Container Device Interface, tags.cncf.io/container-device-interface):
// devices described by spec files in the CDI spec directories, asked for by
// fully-qualified name (vendor.com/class=name) in ContainerConfig.CDI_devices
// or the deprecated cdi.k8s.io/ annotations, and the container edits (env,
// device nodes, mounts, hooks, groups) they make to a container's OCI spec.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "base/json.h"
#include "proto/cri_api.pb.h"

namespace crid {

inline constexpr char kCdiAnnotationPrefix[] = "cdi.k8s.io/";

// The reference's directories: static specs, then generated ones (which win).
std::vector<std::string> DefaultCdiSpecDirs();

struct CdiDeviceNode {
  std::string path;       // in the container
  std::string host_path;  // empty: `path`
  std::string type;       // b, c, u or p; empty: the host node's
  int64_t major = 0;      // 0: the host node's
  int64_t minor = 0;
  std::optional<uint32_t> file_mode;
  std::string permissions;  // device cgroup access: rwm subset, "none", or empty (rwm)
  std::optional<uint32_t> uid;
  std::optional<uint32_t> gid;
};

struct CdiMount {
  std::string host_path;
  std::string container_path;
  std::vector<std::string> options;
  std::string type;
};

struct CdiHook {
  std::string hook_name;  // an OCI hook list: prestart, createRuntime, ...
  std::string path;
  std::vector<std::string> args;
  std::vector<std::string> env;
  std::optional<int64_t> timeout;
};

// Edits of one device, of one spec file (applied once when any of its
// devices is), or several of them combined in order.
struct CdiEdits {
  std::vector<std::string> env;  // KEY=value
  std::vector<CdiDeviceNode> device_nodes;
  std::vector<CdiMount> mounts;
  std::vector<CdiHook> hooks;
  std::vector<uint32_t> additional_gids;
  Json intel_rdt;  // null, or OCI linux.intelRdt as the spec wrote it

  bool empty() const;
  void Append(const CdiEdits& other);
};

// One valid spec file.
struct CdiSpec {
  std::string path;
  std::string version;
  std::string kind;  // vendor/class
  CdiEdits edits;
  std::map<std::string, CdiEdits> devices;  // by unqualified name
};

// Validates a fully-qualified device name; INVALID_ARGUMENT says what is wrong.
absl::Status ValidateCdiDeviceName(const std::string& qualified);

// The devices a container asks for: CDI_devices[].name, then the values of
// the cdi.k8s.io/ annotations (comma-separated, by key order), each once.
// INVALID_ARGUMENT names the field of a malformed name.
absl::StatusOr<std::vector<std::string>> RequestedCdiDevices(
    const runtime::v1::ContainerConfig& config);

// Parses and validates a spec file's text (YAML or JSON; `path` names it in
// errors and its extension picks the parser). INVALID_ARGUMENT
// "CDI spec <path>: <field>: ..." for any problem, as the reference refuses a
// whole file for one bad device.
absl::StatusOr<CdiSpec> ParseCdiSpec(const std::string& text, const std::string& path);

// The spec files of the spec directories, reread when they change (a file's
// size, mtime or inode; checked on every resolution, which happens once per
// container create). Thread-safe.
class CdiRegistry {
 public:
  // Later directories take priority over earlier ones for the same device.
  explicit CdiRegistry(std::vector<std::string> spec_dirs);

  // The edits of `devices` (fully-qualified names) in order, each spec
  // file's own edits once before its first device's, device nodes filled in
  // from their host nodes. NOT_FOUND names a device no spec file defines (and
  // the broken spec files that might have); INVALID_ARGUMENT a device two
  // files of the same directory priority define, naming both.
  absl::StatusOr<CdiEdits> Resolve(const std::vector<std::string>& devices);

  const std::vector<std::string>& spec_dirs() const { return spec_dirs_; }

 private:
  struct CachedFile {
    int64_t mtime_ns = 0;
    int64_t size = 0;
    uint64_t inode = 0;
    absl::StatusOr<CdiSpec> spec = absl::UnknownError("not read");
    std::string kind;  // the kind a broken file names, if any
  };

  void Rescan() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::vector<std::string> spec_dirs_;
  absl::Mutex mu_;
  // By path; files from directory index `priority`.
  std::map<std::string, CachedFile> files_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int> priority_ ABSL_GUARDED_BY(mu_);
};

// The requested CDI devices' edits (empty when none are asked for). Without
// a registry, a request for any is FAILED_PRECONDITION.
absl::StatusOr<CdiEdits> ResolveCdiDevices(const runtime::v1::ContainerConfig& config,
                                           CdiRegistry* registry);

// Applies resolved edits to config.json as the reference does: env replaces
// equal keys, a device node replaces one at the same path and is allowed in
// the device cgroup (b and c nodes), a mount replaces one at the same
// destination and mounts are re-sorted by depth, hooks are appended, and
// additional groups are added once.
absl::Status ApplyCdiEdits(const CdiEdits& edits, Json& spec);

}  // namespace crid
