// crid's images: pulls (manifest -> config -> layers, deduplicated and in
// parallel), metadata in the metadata store (image ID = config digest, tags that
// move between images), unpacked layers under DIR/layers/<chain ID>/fs ready to be
// overlayfs lower directories, and garbage collection of what no image uses.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "base/fs.h"
#include "image/content_store.h"
#include "image/image_record.pb.h"
#include "image/registry.h"
#include "metrics/metrics.h"
#include "proto/config.pb.h"
#include "store/store.h"

namespace crid {

class ImageStore;

// Keeps an image's config and layers from being deleted (by RemoveImage or
// garbage collection) while it lives, e.g. while a container is being created
// from them and is not yet visible to the in-use callback.
class ImageLease {
 public:
  ImageLease() = default;
  ImageLease(ImageLease&& other) noexcept { *this = std::move(other); }
  ImageLease& operator=(ImageLease&& other) noexcept;
  ~ImageLease() { Release(); }
  void Release();

 private:
  friend class ImageStore;
  ImageStore* store_ = nullptr;
  std::vector<std::string> keys_;
};

// What a PullImage request says about the image besides its name.
struct PullOptions {
  std::map<std::string, std::string> annotations;
  std::string runtime_handler;
};

class ImageStore {
 public:
  // `dir` is ROOT/images. Metadata goes to `store` (bucket "images").
  static absl::StatusOr<std::unique_ptr<ImageStore>> Open(const std::string& dir,
                                                          const config::ImageConfig& config,
                                                          Store* store);

  // Pulls `image` (any reference form) and returns its ID. Concurrent pulls of
  // the same reference with the same credentials share one download.
  absl::StatusOr<std::string> Pull(const std::string& image, const RegistryAuth& auth,
                                   const PullOptions& options = {});

  // Loads the images of an OCI image-layout tar or a `docker save` tar and
  // returns their IDs. Names come from the archive (RepoTags, or the
  // io.containerd.image.name / org.opencontainers.image.ref.name annotations).
  absl::StatusOr<std::vector<std::string>> Import(const std::string& archive);

  // The image named by ID ("sha256:<hex>" or bare hex), any tag or any digest
  // reference; nullopt when absent. INVALID_ARGUMENT for a malformed reference.
  absl::StatusOr<std::optional<image::ImageRecord>> Resolve(const std::string& image);

  // Resolve, and a lease on what the image found is made of, taken together so
  // that no removal can come in between. NOT_FOUND when absent.
  absl::StatusOr<std::pair<image::ImageRecord, ImageLease>> Acquire(const std::string& image);

  absl::StatusOr<std::vector<image::ImageRecord>> List();

  // Removes the image `image` names with all its tags and digests. Absent is OK.
  // Blobs and layers no other image uses are deleted.
  absl::Status Remove(const std::string& image);

  // Bytes and inodes used under DIR: the blobs (one flat directory) and the
  // unpacked layers, whose usage is measured once when each is unpacked (or
  // when the store opens), so no call walks the layer trees.
  absl::StatusOr<DiskUsage> Usage();

  // The image config JSON of image `id`.
  absl::StatusOr<std::string> ConfigJson(const std::string& id) const;

  // Overlay lower directory of a layer.
  std::string LayerDir(const std::string& chain_id) const;

  // The overlayfs lowerdir list of an image, topmost layer first (the order of
  // overlayfs' lowerdir= option).
  static std::vector<std::string> LowerDirs(const ImageStore& store,
                                            const image::ImageRecord& record);

  // Tells garbage collection which layers containers still use (their chain
  // IDs); those stay on disk after their image is removed, until a later
  // collection finds them unused.
  void SetLayersInUse(std::function<std::set<std::string>()> fn) {
    absl::MutexLock lock(&meta_mu_);
    layers_in_use_ = std::move(fn);
  }
  // Removes blobs and layers no image (and no container) uses.
  absl::Status CollectGarbageNow() {
    absl::MutexLock lock(&meta_mu_);
    return CollectGarbage();
  }

  // Whether a pull or a lease holds `key` (a blob digest or chain ID) now.
  bool IsHeld(const std::string& key) {
    absl::MutexLock lock(&mu_);
    return active_.count(key) != 0;
  }

  const std::string& dir() const { return dir_; }
  RegistryClient* registry() { return &registry_; }

  // Counts pulls, their bytes and durations. Not owned; null (the default)
  // counts nothing.
  void SetMetrics(metrics::PullMetrics* metrics) { metrics_.store(metrics); }

 private:
  friend class ImageLease;
  struct InFlight {
    absl::Notification done;
    absl::StatusOr<std::string> result;
  };
  // What one layer of a running pull has done so far; the pulling thread
  // reads it for the progress log.
  struct LayerProgress {
    enum Stage { kWaiting, kDownloading, kUnpacking, kDone };
    std::atomic<int> stage{kWaiting};
    // Bytes received from the registry.
    std::atomic<uint64_t> received{0};
    // The blob or the unpacked layer was there already: nothing to fetch.
    std::atomic<bool> present{false};
  };

  // image.pinned_images, normalised: "NAME:TAG" and "NAME@DIGEST".
  const std::set<std::string> pinned_;

  ImageStore(std::string dir, const config::ImageConfig& config, Store* store,
             std::unique_ptr<ContentStore> content, std::set<std::string> pinned)
      : pinned_(std::move(pinned)),
        dir_(std::move(dir)),
        config_(config),
        store_(store),
        content_(std::move(content)),
        registry_(config) {}

  // Adds the layer bytes it received from the registry to `*received`.
  absl::StatusOr<std::string> DoPull(const std::string& image, const RegistryAuth& auth,
                                     const PullOptions& options, uint64_t* received);
  // `progress` (may be null) follows the layer's download.
  absl::Status EnsureLayer(const Reference& ref, const std::string& blob_digest, int64_t size,
                           const std::string& diff_id, const std::string& chain_id,
                           const RegistryAuth& auth, LayerProgress* progress);
  // Records the image of a manifest whose blobs are all in the content store.
  absl::StatusOr<std::string> ImportManifest(const std::string& manifest_digest,
                                             const std::vector<std::string>& names);
  // Stores `fresh` (content fields) under its ID, keeping the names it had, adding
  // `tags` (moved away from other images) and `repo_digests`.
  absl::Status RecordImage(const image::ImageRecord& fresh, const std::vector<std::string>& tags,
                           const std::vector<std::string>& repo_digests);
  absl::StatusOr<std::vector<image::ImageRecord>> ListLocked()
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(meta_mu_);
  absl::StatusOr<std::optional<image::ImageRecord>> ResolveLocked(const std::string& image)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(meta_mu_);
  void MarkPinned(std::vector<image::ImageRecord>* records) const;
  // Marks blobs and chain IDs in use by a pull or a lease (a multiset: each
  // holder adds and removes its own).
  void Hold(const std::vector<std::string>& keys);
  void Unhold(const std::vector<std::string>& keys);
  std::shared_ptr<absl::Mutex> LayerLock(const std::string& chain_id);
  absl::Status CollectGarbage() ABSL_EXCLUSIVE_LOCKS_REQUIRED(meta_mu_);

  const std::string dir_;
  const config::ImageConfig config_;
  Store* const store_;
  std::unique_ptr<ContentStore> content_;
  RegistryClient registry_;

  absl::Mutex mu_;
  std::map<std::string, std::shared_ptr<InFlight>> in_flight_ ABSL_GUARDED_BY(mu_);
  // Blobs and chain IDs that running pulls and leases use: garbage collection
  // keeps them, checking again under each layer's lock before it deletes.
  std::multiset<std::string> active_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::shared_ptr<absl::Mutex>> layer_locks_ ABSL_GUARDED_BY(mu_);
  // Disk usage of each unpacked layer, by the hex of its chain ID.
  std::map<std::string, DiskUsage> layer_usage_ ABSL_GUARDED_BY(mu_);
  // Records the usage of layer directory `hex` (measured now) or forgets it.
  void AccountLayer(const std::string& hex);
  void ForgetLayer(const std::string& hex);

  std::atomic<metrics::PullMetrics*> metrics_{nullptr};

  // Serialises metadata changes (tags moving, removals, GC).
  absl::Mutex meta_mu_;
  std::function<std::set<std::string>()> layers_in_use_ ABSL_GUARDED_BY(meta_mu_);
};

// Splits a config User ("1000", "1000:50", "www-data", "www-data:50") into a
// numeric uid or a user name.
struct ImageUser {
  std::optional<int64_t> uid;
  std::string username;
};
ImageUser ParseImageUser(const std::string& user);

}  // namespace crid
