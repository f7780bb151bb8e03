// Image references, parsed and normalised the way containerd and kubelet do:
// "busybox" -> "docker.io/library/busybox:latest", "host:port/repo:tag",
// "repo@sha256:...", and "repo:tag@sha256:..." (the tag is dropped: the digest names the image).
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace crid {

inline constexpr char kDefaultDomain[] = "docker.io";

struct Reference {
  std::string domain;  // "docker.io", "registry.k8s.io", "127.0.0.1:5000"
  std::string path;    // "library/busybox"
  std::string tag;     // empty when only a digest was given
  std::string digest;  // "sha256:..." or empty

  // "docker.io/library/busybox"
  std::string Name() const { return domain + "/" + path; }
  // "NAME:TAG", empty without a tag.
  std::string TaggedName() const { return tag.empty() ? "" : Name() + ":" + tag; }
  // Name with tag and/or digest, as parsed (normalised).
  std::string String() const;
  // What to ask the registry for: the digest when there is one, else the tag.
  const std::string& ManifestRef() const { return digest.empty() ? tag : digest; }
};

// Parses `text`; a reference with neither tag nor digest gets ":latest".
// Errors are INVALID_ARGUMENT and say what is wrong.
absl::StatusOr<Reference> ParseReference(absl::string_view text);

// True for a bare 64-hex image ID or "sha256:<64 hex>".
bool LooksLikeImageId(absl::string_view text);

}  // namespace crid
