// Offline import of image archives: an OCI image layout in a tar (index.json,
// blobs/sha256/...) or a `docker save` tar (manifest.json with Config, RepoTags
// and Layers). The archive is unpacked with the same hostile-input rules as a
// layer, its blobs are verified into the content store, layers are unpacked as
// for a pull, and the images are recorded under the names the archive gives.
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/errors.h"
#include "base/fs.h"
#include "base/json.h"
#include "base/logging.h"
#include "base/unique_fd.h"
#include "image/digest.h"
#include "image/image_store.h"
#include "image/manifest.h"
#include "image/reference.h"
#include "image/unpack.h"

namespace crid {
namespace {

constexpr char kDockerLayerTar[] = "application/vnd.docker.image.rootfs.diff.tar";
constexpr char kDockerConfig[] = "application/vnd.docker.container.image.v1+json";
std::atomic<uint64_t> g_import_counter{0};

// `rel` inside `root`, refusing anything that resolves outside it.
absl::StatusOr<std::string> InsideRoot(const std::string& root, const std::string& rel) {
  if (rel.empty() || absl::StartsWith(rel, "/") || absl::StrContains(rel, "..")) {
    return absl::InvalidArgumentError(absl::StrCat("archive path \"", rel, "\" is not allowed"));
  }
  char resolved[PATH_MAX];
  std::string path = absl::StrCat(root, "/", rel);
  if (realpath(path.c_str(), resolved) == nullptr) {
    return ErrnoError(errno, "archive member ", rel);
  }
  char root_resolved[PATH_MAX];
  if (realpath(root.c_str(), root_resolved) == nullptr) {
    return ErrnoError(errno, "realpath ", root);
  }
  if (!absl::StartsWith(resolved, absl::StrCat(root_resolved, "/"))) {
    return absl::PermissionDeniedError(
        absl::StrCat("archive member ", rel, " points outside the archive"));
  }
  return std::string(resolved);
}

// Copies file `path` into the content store as blob `digest` (verified), or
// computes the digest when `digest` is empty. Returns the digest and size.
absl::StatusOr<std::pair<std::string, int64_t>> AddBlobFile(ContentStore* content,
                                                            const std::string& path,
                                                            std::string digest) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) {
    return ErrnoError(errno, "stat ", path);
  }
  auto copy = [&](BlobWriter* writer, Sha256* hasher) -> absl::Status {
    UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) {
      return ErrnoError(errno, "open ", path);
    }
    std::string buf(size_t{1} << 20, '\0');
    while (true) {
      ssize_t n = read(fd.get(), buf.data(), buf.size());
      if (n < 0) {
        return ErrnoError(errno, "read ", path);
      }
      if (n == 0) {
        return absl::OkStatus();
      }
      absl::string_view chunk(buf.data(), static_cast<size_t>(n));
      if (writer != nullptr) {
        CRID_RETURN_IF_ERROR(writer->Write(chunk));
      }
      if (hasher != nullptr) {
        hasher->Update(chunk);
      }
    }
  };
  if (digest.empty()) {
    Sha256 hasher;
    CRID_RETURN_IF_ERROR(copy(nullptr, &hasher));
    digest = hasher.Finish();
  }
  if (!content->Has(digest)) {
    CRID_ASSIGN_OR_RETURN(std::unique_ptr<BlobWriter> writer, content->Begin(digest, st.st_size));
    CRID_RETURN_IF_ERROR(copy(writer.get(), nullptr));
    CRID_RETURN_IF_ERROR(writer->Commit());
  }
  return std::make_pair(digest, static_cast<int64_t>(st.st_size));
}

std::string DescriptorJson(const std::string& media_type, const std::string& digest, int64_t size) {
  return absl::StrCat("{\"mediaType\":\"", media_type, "\",\"digest\":\"", digest,
                      "\",\"size\":", size, "}");
}

}  // namespace

absl::StatusOr<std::string> ImageStore::ImportManifest(const std::string& manifest_digest,
                                                       const std::vector<std::string>& names) {
  CRID_ASSIGN_OR_RETURN(std::string body, content_->ReadBlob(manifest_digest, kMaxManifestBytes));
  CRID_ASSIGN_OR_RETURN(ImageManifest manifest, ParseImageManifest(body));
  CRID_ASSIGN_OR_RETURN(std::string config_text,
                        content_->ReadBlob(manifest.config.digest, kMaxConfigBytes));
  CRID_ASSIGN_OR_RETURN(ImageConfigInfo config, ParseImageConfig(config_text));
  if (config.diff_ids.size() != manifest.layers.size()) {
    return absl::FailedPreconditionError("manifest and config disagree on the number of layers");
  }
  std::vector<std::string> chains = ChainIds(config.diff_ids);
  Reference none;  // every blob is local: nothing is fetched
  uint64_t total = 0;
  for (size_t i = 0; i < manifest.layers.size(); ++i) {
    if (!content_->Has(manifest.layers[i].digest)) {
      return absl::NotFoundError(
          absl::StrCat("layer ", manifest.layers[i].digest, " is missing from the archive"));
    }
    CRID_RETURN_IF_ERROR(EnsureLayer(none, manifest.layers[i].digest, manifest.layers[i].size,
                                     config.diff_ids[i], chains[i], {}, nullptr));
    total += static_cast<uint64_t>(manifest.layers[i].size);
  }
  image::ImageRecord fresh;
  fresh.set_id(manifest.config.digest);
  fresh.set_size(body.size() + config_text.size() + total);
  fresh.set_user(config.user);
  fresh.set_manifest_digest(manifest_digest);
  for (size_t i = 0; i < manifest.layers.size(); ++i) {
    fresh.add_layer_digests(manifest.layers[i].digest);
    fresh.add_diff_ids(config.diff_ids[i]);
    fresh.add_chain_ids(chains[i]);
  }
  std::vector<std::string> tags;
  std::vector<std::string> digests;
  for (const std::string& name : names) {
    absl::StatusOr<Reference> ref = ParseReference(name);
    if (!ref.ok()) {
      spdlog::warn("import: ignoring image name {}: {}", name, ref.status());
      continue;
    }
    if (!ref->TaggedName().empty()) {
      tags.push_back(ref->TaggedName());
    }
    digests.push_back(absl::StrCat(ref->Name(), "@", manifest_digest));
  }
  CRID_RETURN_IF_ERROR(RecordImage(fresh, tags, digests));
  spdlog::info("imported {} as {}", names.empty() ? "an unnamed image" : absl::StrJoin(names, ", "),
               fresh.id());
  return fresh.id();
}

absl::StatusOr<std::vector<std::string>> ImageStore::Import(const std::string& archive) {
  std::string dir = absl::StrCat(dir_, "/import-", getpid(), "-", g_import_counter.fetch_add(1));
  CRID_RETURN_IF_ERROR(MakeDirs(dir, 0700));
  absl::Cleanup remove = [&dir] { (void)RemoveTree(dir); };
  absl::StatusOr<UnpackResult> unpacked = UnpackLayer(archive, dir);
  if (!unpacked.ok()) {
    return Annotate(unpacked.status(), absl::StrCat("reading archive ", archive));
  }
  std::vector<std::string> ids;
  struct stat st {};
  if (stat((dir + "/index.json").c_str(), &st) == 0) {
    // OCI image layout.
    CRID_ASSIGN_OR_RETURN(std::string text, ReadFile(dir + "/index.json"));
    CRID_ASSIGN_OR_RETURN(Json index, ParseJsonObject(text, "index.json"));
    const Json* manifests = JsonArray(index, "manifests");
    if (manifests == nullptr) {
      return absl::InvalidArgumentError("index.json has no manifests");
    }
    auto blob_path = [&](const std::string& digest) -> absl::StatusOr<std::string> {
      CRID_RETURN_IF_ERROR(ValidateDigest(digest));
      return InsideRoot(dir, absl::StrCat("blobs/sha256/", DigestHex(digest)));
    };
    // Every blob of the layout goes into the store, each verified.
    if (DIR* d = opendir((dir + "/blobs/sha256").c_str()); d != nullptr) {
      std::vector<std::string> hexes;
      while (dirent* e = readdir(d)) {
        if (e->d_name[0] != '.') {
          hexes.emplace_back(e->d_name);
        }
      }
      closedir(d);
      for (const std::string& hex : hexes) {
        std::string digest = "sha256:" + hex;
        if (!ValidateDigest(digest).ok()) {
          continue;
        }
        CRID_ASSIGN_OR_RETURN(std::string path, blob_path(digest));
        CRID_RETURN_IF_ERROR(AddBlobFile(content_.get(), path, digest).status());
      }
    }
    for (const Json& desc : *manifests) {
      if (!desc.is_object()) {
        continue;
      }
      std::string digest = JsonString(desc, "digest");
      std::vector<std::string> names;
      if (const Json* ann = JsonObject(desc, "annotations")) {
        std::string name = JsonString(*ann, "io.containerd.image.name");
        if (name.empty()) {
          name = JsonString(*ann, "org.opencontainers.image.ref.name");
          // The OCI layout lets ref.name be a bare tag ("latest", "v1.2"),
          // which names no repository: the image comes in unnamed (by ID)
          // rather than as docker.io/library/latest.
          if (!name.empty() && !absl::StrContains(name, '/') && !absl::StrContains(name, ':') &&
              !absl::StrContains(name, '@')) {
            spdlog::warn("import: {} is named only by the tag \"{}\"; imported by ID", digest,
                         name);
            name.clear();
          }
        }
        if (!name.empty()) {
          names.push_back(name);
        }
      }
      CRID_ASSIGN_OR_RETURN(std::string body, content_->ReadBlob(digest, kMaxManifestBytes));
      CRID_ASSIGN_OR_RETURN(ManifestKind kind,
                            ClassifyManifest(JsonString(desc, "mediaType"), body));
      std::string manifest_digest = digest;
      if (kind == ManifestKind::kIndex) {
        CRID_ASSIGN_OR_RETURN(std::vector<Descriptor> entries, ParseIndex(body));
        CRID_ASSIGN_OR_RETURN(Descriptor chosen, SelectPlatform(entries, HostPlatform()));
        manifest_digest = chosen.digest;
      }
      CRID_ASSIGN_OR_RETURN(std::string id, ImportManifest(manifest_digest, names));
      ids.push_back(id);
    }
    return ids;
  }
  if (stat((dir + "/manifest.json").c_str(), &st) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(archive,
                     " is neither an OCI image layout (index.json) nor a docker save archive "
                     "(manifest.json)"));
  }
  // docker save: [{"Config": "...json", "RepoTags": [...], "Layers": ["x/layer.tar", ...]}]
  CRID_ASSIGN_OR_RETURN(std::string text, ReadFile(dir + "/manifest.json"));
  CRID_ASSIGN_OR_RETURN(Json images, ParseJson(text, "manifest.json"));
  if (!images.is_array()) {
    return absl::InvalidArgumentError("manifest.json is not a list");
  }
  for (const Json& entry : images) {
    if (!entry.is_object()) {
      return absl::InvalidArgumentError("manifest.json entry is not an object");
    }
    CRID_ASSIGN_OR_RETURN(std::string config_path, InsideRoot(dir, JsonString(entry, "Config")));
    CRID_ASSIGN_OR_RETURN(auto config, AddBlobFile(content_.get(), config_path, ""));
    std::vector<std::string> layer_descs;
    if (const Json* layers = JsonArray(entry, "Layers")) {
      for (const Json& l : *layers) {
        if (!l.is_string()) {
          return absl::InvalidArgumentError("manifest.json Layers holds a non-string");
        }
        CRID_ASSIGN_OR_RETURN(std::string path, InsideRoot(dir, l.get_ref<const std::string&>()));
        CRID_ASSIGN_OR_RETURN(auto blob, AddBlobFile(content_.get(), path, ""));
        layer_descs.push_back(DescriptorJson(kDockerLayerTar, blob.first, blob.second));
      }
    }
    // Docker keeps no manifest in the archive: crid writes the schema 2 manifest
    // these blobs make, so the image has a manifest digest like a pulled one.
    std::string manifest =
        absl::StrCat("{\"schemaVersion\":2,\"mediaType\":\"", kMediaTypeDockerManifest,
                     "\",\"config\":", DescriptorJson(kDockerConfig, config.first, config.second),
                     ",\"layers\":[", absl::StrJoin(layer_descs, ","), "]}");
    std::string manifest_digest = DigestOf(manifest);
    CRID_RETURN_IF_ERROR(content_->Has(manifest_digest) ? absl::OkStatus()
                                                        : content_->Put(manifest_digest, manifest));
    std::vector<std::string> names;
    if (const Json* tags = JsonArray(entry, "RepoTags")) {
      for (const Json& t : *tags) {
        if (t.is_string()) {
          names.push_back(t.get<std::string>());
        }
      }
    }
    CRID_ASSIGN_OR_RETURN(std::string id, ImportManifest(manifest_digest, names));
    ids.push_back(id);
  }
  return ids;
}

}  // namespace crid
