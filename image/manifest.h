// OCI and Docker manifests: indexes (manifest lists) with platform selection,
// image manifests, and the parts of the image config crid uses.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace crid {

inline constexpr char kMediaTypeOciIndex[] = "application/vnd.oci.image.index.v1+json";
inline constexpr char kMediaTypeDockerList[] =
    "application/vnd.docker.distribution.manifest.list.v2+json";
inline constexpr char kMediaTypeOciManifest[] = "application/vnd.oci.image.manifest.v1+json";
inline constexpr char kMediaTypeDockerManifest[] =
    "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr uint64_t kMaxManifestBytes = 4 << 20;
inline constexpr uint64_t kMaxConfigBytes = 8 << 20;

struct Platform {
  std::string os;
  std::string architecture;
  std::string variant;
};

struct Descriptor {
  std::string media_type;
  std::string digest;
  int64_t size = -1;
  Platform platform;
};

enum class ManifestKind { kIndex, kImage };

// Index or image manifest, from the Content-Type or else the body's mediaType.
// Schema 1 and unknown types are errors that say so.
absl::StatusOr<ManifestKind> ClassifyManifest(absl::string_view content_type,
                                              absl::string_view body);

// The entries of an OCI index or Docker manifest list.
absl::StatusOr<std::vector<Descriptor>> ParseIndex(absl::string_view body);

// The platform crid runs images for: linux and the host's architecture.
Platform HostPlatform();

// The best entry for `want` (variant rules: amd64 "" = v1, arm64 "" = v8, arm
// takes the highest variant not above the wanted one). NOT_FOUND lists what the
// index offers.
absl::StatusOr<Descriptor> SelectPlatform(const std::vector<Descriptor>& entries,
                                          const Platform& want);

struct ImageManifest {
  Descriptor config;
  std::vector<Descriptor> layers;
};

absl::StatusOr<ImageManifest> ParseImageManifest(absl::string_view body);

// What crid keeps from the image config.
struct ImageConfigInfo {
  std::vector<std::string> diff_ids;
  std::string user;
  Platform platform;
};

absl::StatusOr<ImageConfigInfo> ParseImageConfig(absl::string_view body);

// Chain IDs of a layer stack: chain[0] = diff[0], chain[n] = sha256(chain[n-1] + " " + diff[n]).
std::vector<std::string> ChainIds(const std::vector<std::string>& diff_ids);

}  // namespace crid
