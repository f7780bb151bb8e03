#include "image/manifest.h"

#include <sys/utsname.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/json.h"
#include "image/digest.h"

namespace crid {
namespace {

constexpr size_t kMaxLayers = 256;

absl::StatusOr<Descriptor> ParseDescriptor(const Json& obj, absl::string_view where) {
  if (!obj.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": descriptor is not an object"));
  }
  Descriptor d;
  d.media_type = JsonString(obj, "mediaType");
  d.digest = JsonString(obj, "digest");
  d.size = JsonInt(obj, "size");
  if (absl::Status st = ValidateDigest(d.digest); !st.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": ", st.message()));
  }
  if (d.size < 0) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": missing or invalid size"));
  }
  if (const Json* p = JsonObject(obj, "platform")) {
    d.platform.os = JsonString(*p, "os");
    d.platform.architecture = JsonString(*p, "architecture");
    d.platform.variant = JsonString(*p, "variant");
  }
  return d;
}

std::string NormalizeVariant(const std::string& arch, const std::string& variant) {
  if (arch == "amd64" && variant.empty()) {
    return "v1";
  }
  if (arch == "arm64" && variant.empty()) {
    return "v8";
  }
  if (arch == "arm" && variant.empty()) {
    return "v7";
  }
  return variant;
}

}  // namespace

absl::StatusOr<ManifestKind> ClassifyManifest(absl::string_view content_type,
                                              absl::string_view body) {
  std::string type(content_type);
  if (type.empty() || type == "application/json" || type == "text/plain") {
    absl::StatusOr<Json> obj = ParseJsonObject(body, "manifest");
    if (!obj.ok()) {
      return obj.status();
    }
    type = JsonString(*obj, "mediaType");
    if (type.empty()) {
      if (JsonInt(*obj, "schemaVersion") == 1) {
        type = "application/vnd.docker.distribution.manifest.v1+json";
      } else if (JsonArray(*obj, "manifests") != nullptr) {
        type = kMediaTypeOciIndex;
      } else if (JsonArray(*obj, "layers") != nullptr) {
        type = kMediaTypeOciManifest;
      }
    }
  }
  if (type == kMediaTypeOciIndex || type == kMediaTypeDockerList) {
    return ManifestKind::kIndex;
  }
  if (type == kMediaTypeOciManifest || type == kMediaTypeDockerManifest) {
    return ManifestKind::kImage;
  }
  if (absl::StartsWith(type, "application/vnd.docker.distribution.manifest.v1")) {
    return absl::FailedPreconditionError(
        "Docker image manifest schema 1 is not supported (deprecated and removed from "
        "Docker and containerd); push the image again with a current client to get schema 2");
  }
  return absl::FailedPreconditionError(
      absl::StrCat("unsupported manifest media type \"", type, "\""));
}

absl::StatusOr<std::vector<Descriptor>> ParseIndex(absl::string_view body) {
  absl::StatusOr<Json> obj = ParseJsonObject(body, "image index");
  if (!obj.ok()) {
    return obj.status();
  }
  const Json* list = JsonArray(*obj, "manifests");
  if (list == nullptr) {
    return absl::InvalidArgumentError("image index has no \"manifests\" list");
  }
  std::vector<Descriptor> out;
  for (size_t i = 0; i < list->size(); ++i) {
    absl::StatusOr<Descriptor> d =
        ParseDescriptor((*list)[i], absl::StrCat("image index manifests[", i, "]"));
    if (!d.ok()) {
      return d.status();
    }
    out.push_back(*std::move(d));
  }
  return out;
}

Platform HostPlatform() {
  Platform p;
  p.os = "linux";
  utsname u{};
  uname(&u);
  std::string machine = u.machine;
  if (machine == "x86_64") {
    p.architecture = "amd64";
  } else if (machine == "aarch64") {
    p.architecture = "arm64";
    p.variant = "v8";
  } else if (absl::StartsWith(machine, "armv7")) {
    p.architecture = "arm";
    p.variant = "v7";
  } else if (machine == "i686" || machine == "i386") {
    p.architecture = "386";
  } else {
    p.architecture = machine;
  }
  return p;
}

absl::StatusOr<Descriptor> SelectPlatform(const std::vector<Descriptor>& entries,
                                          const Platform& want) {
  const Descriptor* best = nullptr;
  std::string best_variant;
  std::string want_variant = NormalizeVariant(want.architecture, want.variant);
  std::vector<std::string> offered;
  for (const Descriptor& d : entries) {
    const Platform& p = d.platform;
    offered.push_back(
        absl::StrCat(p.os, "/", p.architecture, p.variant.empty() ? "" : "/", p.variant));
    if (p.os != want.os || p.architecture != want.architecture) {
      continue;
    }
    std::string variant = NormalizeVariant(p.architecture, p.variant);
    if (variant == want_variant) {
      return d;  // exact match wins
    }
    // Older variants run on newer CPUs (arm v6 on v7, amd64 v2 on v3): take the
    // newest one that is not above what the host supports.
    if (variant.size() == want_variant.size() && variant < want_variant &&
        (best == nullptr || variant > best_variant)) {
      best = &d;
      best_variant = variant;
    }
  }
  if (best != nullptr) {
    return *best;
  }
  return absl::NotFoundError(absl::StrCat(
      "no image for platform ", want.os, "/", want.architecture, want.variant.empty() ? "" : "/",
      want.variant,
      " in the index (it has: ", offered.empty() ? "nothing" : absl::StrJoin(offered, ", "), ")"));
}

absl::StatusOr<ImageManifest> ParseImageManifest(absl::string_view body) {
  absl::StatusOr<Json> obj = ParseJsonObject(body, "image manifest");
  if (!obj.ok()) {
    return obj.status();
  }
  if (JsonInt(*obj, "schemaVersion") != 2) {
    return absl::FailedPreconditionError("image manifest: schemaVersion must be 2");
  }
  const Json* config_field = JsonField(*obj, "config");
  if (config_field == nullptr) {
    return absl::InvalidArgumentError("image manifest has no config descriptor");
  }
  ImageManifest m;
  absl::StatusOr<Descriptor> config = ParseDescriptor(*config_field, "image manifest config");
  if (!config.ok()) {
    return config.status();
  }
  m.config = *std::move(config);
  // An OCI artifact (a Helm chart, a signature, an SBOM) uses the image
  // manifest format but has no runnable filesystem: say so before any download.
  std::string artifact_type = JsonString(*obj, "artifactType");
  const std::string& config_type = m.config.media_type;
  if (!artifact_type.empty() ||
      (!config_type.empty() && config_type != "application/vnd.oci.image.config.v1+json" &&
       config_type != "application/vnd.docker.container.image.v1+json")) {
    return absl::FailedPreconditionError(
        absl::StrCat("this is an OCI artifact, not a container image (",
                     artifact_type.empty() ? "config media type \"" + config_type + "\""
                                           : "artifactType \"" + artifact_type + "\"",
                     ")"));
  }
  const Json* layers = JsonArray(*obj, "layers");
  if (layers == nullptr) {
    return absl::InvalidArgumentError("image manifest has no \"layers\" list");
  }
  if (layers->size() > kMaxLayers) {
    return absl::FailedPreconditionError(
        absl::StrCat("image manifest has ", layers->size(), " layers, more than ", kMaxLayers));
  }
  for (size_t i = 0; i < layers->size(); ++i) {
    absl::StatusOr<Descriptor> d =
        ParseDescriptor((*layers)[i], absl::StrCat("image manifest layers[", i, "]"));
    if (!d.ok()) {
      return d.status();
    }
    const std::string& type = d->media_type;
    if (absl::EndsWith(type, "+encrypted")) {
      return absl::FailedPreconditionError(
          absl::StrCat("image manifest layers[", i, "] is encrypted (media type \"", type,
                       "\"); crid has no keys to decrypt image layers"));
    }
    if (absl::StrContains(type, ".foreign.") || absl::StrContains(type, ".nondistributable.")) {
      return absl::FailedPreconditionError(absl::StrCat(
          "image manifest layers[", i, "] is a foreign (non-distributable) layer (media type \"",
          type, "\"), which crid does not fetch from outside the registry"));
    }
    m.layers.push_back(*std::move(d));
  }
  return m;
}

absl::StatusOr<ImageConfigInfo> ParseImageConfig(absl::string_view body) {
  absl::StatusOr<Json> obj = ParseJsonObject(body, "image config");
  if (!obj.ok()) {
    return obj.status();
  }
  ImageConfigInfo info;
  info.platform.os = JsonString(*obj, "os");
  info.platform.architecture = JsonString(*obj, "architecture");
  info.platform.variant = JsonString(*obj, "variant");
  if (const Json* c = JsonObject(*obj, "config")) {
    info.user = JsonString(*c, "User");
  }
  const Json* rootfs = JsonObject(*obj, "rootfs");
  const Json* diffs = rootfs == nullptr ? nullptr : JsonArray(*rootfs, "diff_ids");
  if (diffs == nullptr) {
    return absl::InvalidArgumentError("image config has no rootfs.diff_ids");
  }
  for (const Json& v : *diffs) {
    if (!v.is_string()) {
      return absl::InvalidArgumentError("image config rootfs.diff_ids holds a non-string");
    }
    const std::string& diff = v.get_ref<const std::string&>();
    if (absl::Status st = ValidateDigest(diff); !st.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("image config rootfs.diff_ids: ", st.message()));
    }
    info.diff_ids.push_back(diff);
  }
  return info;
}

std::vector<std::string> ChainIds(const std::vector<std::string>& diff_ids) {
  std::vector<std::string> out;
  out.reserve(diff_ids.size());
  for (const std::string& diff : diff_ids) {
    out.push_back(out.empty() ? diff : DigestOf(absl::StrCat(out.back(), " ", diff)));
  }
  return out;
}

}  // namespace crid
