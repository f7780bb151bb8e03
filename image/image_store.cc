#include "image/image_store.h"

#include <dirent.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <thread>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/errors.h"
#include "base/fs.h"
#include "base/logging.h"
#include "image/digest.h"
#include "image/manifest.h"
#include "image/reference.h"
#include "image/unpack.h"

namespace crid {
namespace {

constexpr char kBucket[] = "images";
constexpr absl::Duration kProgressEvery = absl::Seconds(5);

std::atomic<uint64_t> g_temp_counter{0};

template <typename C, typename V>
bool Contains(const C& c, const V& v) {
  return std::find(c.begin(), c.end(), v) != c.end();
}

template <typename C, typename V>
void EraseValue(C* c, const V& v) {
  c->erase(std::remove(c->begin(), c->end(), v), c->end());
}

bool Exists(const std::string& path) {
  struct stat st {};
  return lstat(path.c_str(), &st) == 0;
}

}  // namespace

ImageUser ParseImageUser(const std::string& user) {
  ImageUser out;
  std::string name = user.substr(0, user.find(':'));
  int64_t uid = 0;
  if (name.empty()) {
    return out;
  }
  if (absl::SimpleAtoi(name, &uid) && uid >= 0) {
    out.uid = uid;
  } else {
    out.username = name;
  }
  return out;
}

absl::StatusOr<std::unique_ptr<ImageStore>> ImageStore::Open(const std::string& dir,
                                                             const config::ImageConfig& config,
                                                             Store* store) {
  std::set<std::string> pinned;
  for (int i = 0; i < config.pinned_images_size(); ++i) {
    absl::StatusOr<Reference> ref = ParseReference(config.pinned_images(i));
    if (!ref.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("image.pinned_images[", i, "]: ", ref.status().message()));
    }
    if (!ref->tag.empty()) {
      pinned.insert(ref->TaggedName());
    }
    if (!ref->digest.empty()) {
      pinned.insert(absl::StrCat(ref->Name(), "@", ref->digest));
    }
  }
  CRID_ASSIGN_OR_RETURN(std::unique_ptr<ContentStore> content, ContentStore::Open(dir));
  CRID_RETURN_IF_ERROR(MakeDirs(dir + "/layers", 0700));
  // Unpacks that never finished.
  if (DIR* d = opendir((dir + "/layers").c_str()); d != nullptr) {
    std::vector<std::string> stale;
    while (dirent* e = readdir(d)) {
      if (absl::StartsWith(e->d_name, ".tmp-")) {
        stale.push_back(absl::StrCat(dir, "/layers/", e->d_name));
      }
    }
    closedir(d);
    for (const std::string& path : stale) {
      if (absl::Status st = RemoveTree(path); !st.ok()) {
        spdlog::warn("removing unfinished layer {}: {}", path, st);
      }
    }
  }
  std::unique_ptr<ImageStore> images(
      new ImageStore(dir, config, store, std::move(content), std::move(pinned)));
  // Each layer is measured once here; from now on as it is unpacked.
  if (DIR* d = opendir((dir + "/layers").c_str()); d != nullptr) {
    std::vector<std::string> layers;
    while (dirent* e = readdir(d)) {
      if (e->d_name[0] != '.' && ValidateDigest(absl::StrCat("sha256:", e->d_name)).ok()) {
        layers.emplace_back(e->d_name);
      }
    }
    closedir(d);
    for (const std::string& hex : layers) {
      images->AccountLayer(hex);
    }
  }
  return images;
}

void ImageStore::AccountLayer(const std::string& hex) {
  absl::StatusOr<DiskUsage> usage = MeasureDiskUsage(absl::StrCat(dir_, "/layers/", hex));
  if (!usage.ok()) {
    spdlog::warn("measuring layer {}: {}", hex, usage.status());
    return;
  }
  absl::MutexLock lock(&mu_);
  layer_usage_[hex] = *usage;
}

void ImageStore::ForgetLayer(const std::string& hex) {
  absl::MutexLock lock(&mu_);
  layer_usage_.erase(hex);
}

absl::StatusOr<DiskUsage> ImageStore::Usage() {
  CRID_ASSIGN_OR_RETURN(DiskUsage total, MeasureDiskUsage(dir_ + "/blobs"));
  total.inodes += 2;  // DIR and DIR/layers
  absl::MutexLock lock(&mu_);
  for (const auto& [hex, usage] : layer_usage_) {
    total.bytes += usage.bytes;
    total.inodes += usage.inodes;
  }
  return total;
}

std::string ImageStore::LayerDir(const std::string& chain_id) const {
  return absl::StrCat(dir_, "/layers/", DigestHex(chain_id), "/fs");
}

std::vector<std::string> ImageStore::LowerDirs(const ImageStore& store,
                                               const image::ImageRecord& record) {
  std::vector<std::string> out;
  out.reserve(record.chain_ids_size());
  for (auto it = record.chain_ids().rbegin(); it != record.chain_ids().rend(); ++it) {
    out.push_back(store.LayerDir(*it));
  }
  return out;
}

absl::StatusOr<std::string> ImageStore::ConfigJson(const std::string& id) const {
  return content_->ReadBlob(id, kMaxConfigBytes);
}

ImageLease& ImageLease::operator=(ImageLease&& other) noexcept {
  if (this != &other) {
    Release();
    store_ = other.store_;
    keys_ = std::move(other.keys_);
    other.store_ = nullptr;
    other.keys_.clear();
  }
  return *this;
}

void ImageLease::Release() {
  if (store_ != nullptr) {
    store_->Unhold(keys_);
    store_ = nullptr;
    keys_.clear();
  }
}

void ImageStore::Hold(const std::vector<std::string>& keys) {
  absl::MutexLock lock(&mu_);
  active_.insert(keys.begin(), keys.end());
}

void ImageStore::Unhold(const std::vector<std::string>& keys) {
  absl::MutexLock lock(&mu_);
  for (const std::string& k : keys) {
    auto it = active_.find(k);
    if (it != active_.end()) {
      active_.erase(it);
    }
  }
}

std::shared_ptr<absl::Mutex> ImageStore::LayerLock(const std::string& chain_id) {
  absl::MutexLock lock(&mu_);
  std::shared_ptr<absl::Mutex>& slot = layer_locks_[chain_id];
  if (slot == nullptr) {
    slot = std::make_shared<absl::Mutex>();
  }
  return slot;
}

absl::StatusOr<std::pair<image::ImageRecord, ImageLease>> ImageStore::Acquire(
    const std::string& image) {
  absl::MutexLock lock(&meta_mu_);
  CRID_ASSIGN_OR_RETURN(std::optional<image::ImageRecord> record, ResolveLocked(image));
  if (!record.has_value()) {
    return absl::NotFoundError(absl::StrCat("image \"", image, "\" is not present"));
  }
  ImageLease lease;
  lease.store_ = this;
  lease.keys_.assign(record->chain_ids().begin(), record->chain_ids().end());
  lease.keys_.push_back(record->id());
  Hold(lease.keys_);
  return std::make_pair(std::move(*record), std::move(lease));
}

absl::StatusOr<std::string> ImageStore::Pull(const std::string& image, const RegistryAuth& auth,
                                             const PullOptions& options) {
  CRID_ASSIGN_OR_RETURN(Reference ref, ParseReference(image));
  // Only pulls with the same credentials share a download: a pull without them
  // must not be answered by one whose credentials unlocked the image.
  std::string key = absl::StrCat(ref.String(), "|", auth.Identity(), "|", options.runtime_handler);
  for (const auto& [k, v] : options.annotations) {
    absl::StrAppend(&key, "|", k.size(), ":", k, "=", v);
  }
  std::shared_ptr<InFlight> flight;
  bool leader = false;
  {
    absl::MutexLock lock(&mu_);
    auto it = in_flight_.find(key);
    if (it == in_flight_.end()) {
      flight = std::make_shared<InFlight>();
      in_flight_[key] = flight;
      leader = true;
    } else {
      flight = it->second;
    }
  }
  if (!leader) {
    spdlog::info("pull of {} already running, waiting for it", ref.String());
    flight->done.WaitForNotification();
    return flight->result;
  }
  absl::Time start = absl::Now();
  uint64_t received = 0;
  flight->result = DoPull(image, auth, options, &received);
  if (flight->result.status().code() == absl::StatusCode::kResourceExhausted) {
    // A layer over its limits, or a full disk: what this pull stored cannot be
    // used and is only in the way, so it goes now rather than at the next
    // collection. Other failures keep their blobs for kubelet's retry.
    if (absl::Status gc = CollectGarbageNow(); !gc.ok()) {
      spdlog::warn("removing what the refused pull of {} stored: {}", ref.String(), gc);
    }
  }
  if (metrics::PullMetrics* metrics = metrics_.load(); metrics != nullptr) {
    metrics->RecordPull(flight->result.ok(), received, absl::Now() - start);
  }
  {
    absl::MutexLock lock(&mu_);
    in_flight_.erase(key);
  }
  flight->done.Notify();
  return flight->result;
}

absl::Status ImageStore::EnsureLayer(const Reference& ref, const std::string& blob_digest,
                                     int64_t size, const std::string& diff_id,
                                     const std::string& chain_id, const RegistryAuth& auth,
                                     LayerProgress* progress) {
  std::string final_dir = absl::StrCat(dir_, "/layers/", DigestHex(chain_id));
  std::shared_ptr<absl::Mutex> layer_mu = LayerLock(chain_id);
  // Two images sharing a layer unpack it once; garbage collection removes a
  // layer only under this lock, after seeing that no pull holds it.
  absl::MutexLock layer_lock(layer_mu.get());
  if (Exists(final_dir)) {
    if (progress != nullptr) {
      progress->present = true;
    }
    return absl::OkStatus();
  }
  if (!content_->Has(blob_digest)) {
    if (progress != nullptr) {
      progress->stage = LayerProgress::kDownloading;
    }
    CRID_RETURN_IF_ERROR(registry_.FetchBlob(ref, blob_digest, size, auth, content_.get(),
                                             progress != nullptr ? &progress->received : nullptr));
  } else if (progress != nullptr) {
    progress->present = true;
  }
  if (progress != nullptr) {
    progress->stage = LayerProgress::kUnpacking;
  }
  std::string temp = absl::StrCat(dir_, "/layers/.tmp-", DigestHex(chain_id).substr(0, 12), "-",
                                  getpid(), "-", g_temp_counter.fetch_add(1));
  CRID_RETURN_IF_ERROR(MakeDirs(temp + "/fs", 0755));
  absl::Cleanup remove_temp = [&temp] { (void)RemoveTree(temp); };
  absl::Time start = absl::Now();
  UnpackLimits limits;
  if (config_.has_max_layer_bytes()) {
    limits.max_bytes = config_.max_layer_bytes();
  }
  limits.max_ratio = config_.max_layer_expansion_ratio();
  limits.ratio_floor_bytes = config_.max_layer_ratio_floor_bytes();
  absl::StatusOr<UnpackResult> result =
      UnpackLayer(content_->BlobPath(blob_digest), temp + "/fs", limits);
  if (!result.ok()) {
    return Annotate(result.status(),
                    absl::StrCat("unpacking layer ", blob_digest, " of ", ref.Name()));
  }
  if (result->diff_id != diff_id) {
    return absl::DataLossError(absl::StrCat("layer ", blob_digest, " of ", ref.Name(),
                                            " unpacks to diff ID ", result->diff_id,
                                            " but the image config says ", diff_id));
  }
  if (rename(temp.c_str(), final_dir.c_str()) != 0) {
    return ErrnoError(errno, "rename ", temp, " to ", final_dir);
  }
  std::move(remove_temp).Cancel();
  AccountLayer(std::string(DigestHex(chain_id)));
  spdlog::debug("unpacked layer {} ({} bytes, {} entries) in {}", blob_digest, result->bytes,
                result->entries, absl::FormatDuration(absl::Now() - start));
  return absl::OkStatus();
}

absl::StatusOr<std::string> ImageStore::DoPull(const std::string& image, const RegistryAuth& auth,
                                               const PullOptions& options, uint64_t* received) {
  CRID_ASSIGN_OR_RETURN(Reference ref, ParseReference(image));
  absl::Time start = absl::Now();
  spdlog::info("pulling image {}", ref.String());
  CRID_ASSIGN_OR_RETURN(FetchedManifest top,
                        registry_.FetchManifest(ref, ref.ManifestRef(), auth, kMaxManifestBytes));
  CRID_ASSIGN_OR_RETURN(ManifestKind kind, ClassifyManifest(top.media_type, top.body));
  FetchedManifest manifest = top;
  if (kind == ManifestKind::kIndex) {
    CRID_ASSIGN_OR_RETURN(std::vector<Descriptor> entries, ParseIndex(top.body));
    absl::StatusOr<Descriptor> chosen = SelectPlatform(entries, HostPlatform());
    if (!chosen.ok()) {
      return Annotate(chosen.status(), ref.String());
    }
    if (chosen->size > static_cast<int64_t>(kMaxManifestBytes)) {
      return absl::ResourceExhaustedError(
          absl::StrCat(ref.String(), ": index entry ", chosen->digest, " claims ", chosen->size,
                       " bytes, over the manifest limit of ", kMaxManifestBytes));
    }
    CRID_ASSIGN_OR_RETURN(manifest, registry_.FetchManifest(ref, chosen->digest, auth,
                                                            kMaxManifestBytes, chosen->size));
    CRID_ASSIGN_OR_RETURN(ManifestKind inner, ClassifyManifest(manifest.media_type, manifest.body));
    if (inner != ManifestKind::kImage) {
      return absl::FailedPreconditionError(absl::StrCat(
          ref.String(), ": index entry ", chosen->digest, " is not an image manifest"));
    }
  }
  absl::StatusOr<ImageManifest> parsed = ParseImageManifest(manifest.body);
  if (!parsed.ok()) {
    return Annotate(parsed.status(), ref.String());
  }
  const std::string& id = parsed->config.digest;
  std::string config_text;
  if (parsed->config.size > static_cast<int64_t>(kMaxConfigBytes)) {
    return absl::ResourceExhaustedError(
        absl::StrCat(ref.String(), ": config ", id, " claims ", parsed->config.size,
                     " bytes, over the limit of ", kMaxConfigBytes));
  }
  if (content_->Has(id)) {
    CRID_ASSIGN_OR_RETURN(config_text, content_->ReadBlob(id, kMaxConfigBytes));
    if (config_text.size() != static_cast<uint64_t>(parsed->config.size)) {
      return absl::DataLossError(absl::StrCat(ref.String(), ": config ", id, " is ",
                                              config_text.size(), " bytes, its descriptor says ",
                                              parsed->config.size));
    }
  } else {
    CRID_ASSIGN_OR_RETURN(
        config_text, registry_.FetchSmallBlob(ref, id, auth, kMaxConfigBytes, parsed->config.size));
  }
  absl::StatusOr<ImageConfigInfo> config = ParseImageConfig(config_text);
  if (!config.ok()) {
    return Annotate(config.status(), ref.String());
  }
  if (config->diff_ids.size() != parsed->layers.size()) {
    return absl::FailedPreconditionError(
        absl::StrCat(ref.String(), ": manifest has ", parsed->layers.size(),
                     " layers but the config lists ", config->diff_ids.size(), " diff IDs"));
  }
  std::vector<std::string> chains = ChainIds(config->diff_ids);

  // Keep what this pull uses away from garbage collection until it is recorded.
  std::vector<std::string> active = chains;
  active.push_back(id);
  active.push_back(top.digest);
  active.push_back(manifest.digest);
  for (const Descriptor& d : parsed->layers) {
    active.push_back(d.digest);
  }
  Hold(active);
  absl::Cleanup release = [this, &active] { Unhold(active); };

  for (const FetchedManifest* m : {&top, &manifest}) {
    if (!content_->Has(m->digest)) {
      CRID_RETURN_IF_ERROR(content_->Put(m->digest, m->body));
    }
  }
  if (!content_->Has(id)) {
    CRID_RETURN_IF_ERROR(content_->Put(id, config_text));
  }

  // Layers: downloaded and unpacked in parallel, each as soon as it arrives.
  uint64_t total_bytes = 0;
  for (const Descriptor& d : parsed->layers) {
    total_bytes += static_cast<uint64_t>(d.size);
  }
  std::vector<LayerProgress> layers(parsed->layers.size());
  // Whatever happens, the bytes received count.
  absl::Cleanup count_received = [&layers, received] {
    for (const LayerProgress& layer : layers) {
      *received += layer.received.load();
    }
  };
  std::atomic<size_t> next{0};
  absl::Mutex done_mu;
  size_t done = 0;
  absl::Status first_error;
  size_t workers = std::min<size_t>(config_.max_concurrent_downloads(), parsed->layers.size());
  std::vector<std::thread> threads;
  for (size_t w = 0; w < workers; ++w) {
    threads.emplace_back([&] {
      while (true) {
        size_t i = next.fetch_add(1);
        if (i >= parsed->layers.size()) {
          return;
        }
        {
          absl::MutexLock lock(&done_mu);
          if (!first_error.ok()) {
            return;
          }
        }
        const Descriptor& d = parsed->layers[i];
        absl::Status st =
            EnsureLayer(ref, d.digest, d.size, config->diff_ids[i], chains[i], auth, &layers[i]);
        layers[i].stage = LayerProgress::kDone;
        absl::MutexLock lock(&done_mu);
        ++done;
        if (!st.ok() && first_error.ok()) {
          first_error = st;
        }
      }
    });
  }
  {
    absl::MutexLock lock(&done_mu);
    auto finished = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(done_mu) {
      return done == parsed->layers.size() || !first_error.ok();
    };
    // Bytes of each layer at the last report, for its rate since then.
    std::vector<uint64_t> reported(layers.size(), 0);
    absl::Time last_report = start;
    while (!done_mu.AwaitWithTimeout(absl::Condition(&finished), kProgressEvery)) {
      absl::Time now = absl::Now();
      double secs = absl::ToDoubleSeconds(now - start);
      double interval = absl::ToDoubleSeconds(now - last_report);
      last_report = now;
      uint64_t got = 0;
      for (size_t i = 0; i < layers.size(); ++i) {
        got += layers[i].present
                   ? static_cast<uint64_t>(std::max<int64_t>(parsed->layers[i].size, 0))
                   : layers[i].received.load();
      }
      spdlog::info("pulling {}: {} of {} layers, {} of {} bytes, {:.1f} MB/s", ref.String(), done,
                   parsed->layers.size(), got, total_bytes, secs > 0 ? got / secs / 1e6 : 0.0);
      // Only layers still downloading are listed: small ones finish between
      // two reports and never show up.
      for (size_t i = 0; i < layers.size(); ++i) {
        uint64_t bytes = layers[i].received.load();
        if (layers[i].stage == LayerProgress::kDownloading) {
          spdlog::info(
              "pulling {}: layer {} ({}/{}): {} of {} bytes, {:.1f} MB/s", ref.String(),
              parsed->layers[i].digest, i + 1, layers.size(), bytes, parsed->layers[i].size,
              interval > 0 ? (bytes - std::min(bytes, reported[i])) / interval / 1e6 : 0.0);
        }
        reported[i] = bytes;
      }
    }
  }
  for (std::thread& t : threads) {
    t.join();
  }
  CRID_RETURN_IF_ERROR(first_error);

  image::ImageRecord fresh;
  fresh.set_id(id);
  fresh.set_size(manifest.body.size() + config_text.size() + total_bytes);
  fresh.set_user(config->user);
  fresh.set_manifest_digest(manifest.digest);
  for (const Descriptor& d : parsed->layers) {
    fresh.add_layer_digests(d.digest);
  }
  for (const std::string& d : config->diff_ids) {
    fresh.add_diff_ids(d);
  }
  for (const std::string& c : chains) {
    fresh.add_chain_ids(c);
  }
  fresh.mutable_annotations()->insert(options.annotations.begin(), options.annotations.end());
  fresh.set_runtime_handler(options.runtime_handler);
  std::vector<std::string> tags;
  if (!ref.TaggedName().empty()) {
    tags.push_back(ref.TaggedName());
  }
  CRID_RETURN_IF_ERROR(RecordImage(fresh, tags, {absl::StrCat(ref.Name(), "@", top.digest)}));
  double secs = absl::ToDoubleSeconds(absl::Now() - start);
  spdlog::info("pulled {} as {} ({} layers, {} bytes) in {:.2f}s", ref.String(), id,
               parsed->layers.size(), total_bytes, secs);
  return id;
}

absl::Status ImageStore::RecordImage(const image::ImageRecord& fresh,
                                     const std::vector<std::string>& tags,
                                     const std::vector<std::string>& repo_digests) {
  absl::MutexLock lock(&meta_mu_);
  CRID_ASSIGN_OR_RETURN(std::vector<image::ImageRecord> records, ListLocked());
  const std::string& id = fresh.id();
  image::ImageRecord record;
  record.set_created(absl::ToUnixSeconds(absl::Now()));
  for (const image::ImageRecord& r : records) {
    if (r.id() == id) {
      record = r;
    }
  }
  // Names and history stay; what the content says is taken from `fresh`.
  google::protobuf::RepeatedPtrField<std::string> old_tags = record.repo_tags();
  google::protobuf::RepeatedPtrField<std::string> old_digests = record.repo_digests();
  int64_t created = record.created();
  bool pinned = record.pinned();
  // Annotations accumulate over pulls; a pull that names a handler sets it.
  google::protobuf::Map<std::string, std::string> annotations = record.annotations();
  for (const auto& [k, v] : fresh.annotations()) {
    annotations[k] = v;
  }
  std::string handler =
      fresh.runtime_handler().empty() ? record.runtime_handler() : fresh.runtime_handler();
  record = fresh;
  *record.mutable_annotations() = std::move(annotations);
  record.set_runtime_handler(handler);
  *record.mutable_repo_tags() = old_tags;
  *record.mutable_repo_digests() = old_digests;
  record.set_created(created);
  record.set_pinned(pinned);
  for (const std::string& tag : tags) {
    if (!Contains(record.repo_tags(), tag)) {
      record.add_repo_tags(tag);
    }
  }
  for (const std::string& digest : repo_digests) {
    if (!Contains(record.repo_digests(), digest)) {
      record.add_repo_digests(digest);
    }
  }
  return store_->Update([&](Transaction& tx) -> absl::Status {
    // A tag names one image: it leaves whatever image had it before.
    for (image::ImageRecord r : records) {
      bool changed = false;
      for (const std::string& tag : tags) {
        if (r.id() != id && Contains(r.repo_tags(), tag)) {
          EraseValue(r.mutable_repo_tags(), tag);
          changed = true;
        }
      }
      if (changed) {
        CRID_RETURN_IF_ERROR(tx.Put(kBucket, r.id(), r.SerializeAsString()));
      }
    }
    return tx.Put(kBucket, id, record.SerializeAsString());
  });
}

absl::StatusOr<std::vector<image::ImageRecord>> ImageStore::ListLocked() {
  CRID_ASSIGN_OR_RETURN(auto rows, store_->List(kBucket));
  std::vector<image::ImageRecord> out;
  for (const auto& [key, value] : rows) {
    image::ImageRecord r;
    if (!r.ParseFromString(value)) {
      return absl::DataLossError(absl::StrCat("image record ", key, " is corrupt"));
    }
    out.push_back(std::move(r));
  }
  return out;
}

void ImageStore::MarkPinned(std::vector<image::ImageRecord>* records) const {
  // Pinned by configuration: worked out on reading, so editing the list
  // takes effect at the next start without touching the records.
  for (image::ImageRecord& r : *records) {
    auto named = [&](const std::string& name) { return pinned_.count(name) != 0; };
    if (std::any_of(r.repo_tags().begin(), r.repo_tags().end(), named) ||
        std::any_of(r.repo_digests().begin(), r.repo_digests().end(), named)) {
      r.set_pinned(true);
    }
  }
}

absl::StatusOr<std::vector<image::ImageRecord>> ImageStore::List() {
  std::vector<image::ImageRecord> records;
  {
    absl::MutexLock lock(&meta_mu_);
    CRID_ASSIGN_OR_RETURN(records, ListLocked());
  }
  MarkPinned(&records);
  return records;
}

absl::StatusOr<std::optional<image::ImageRecord>> ImageStore::Resolve(const std::string& image) {
  absl::MutexLock lock(&meta_mu_);
  return ResolveLocked(image);
}

absl::StatusOr<std::optional<image::ImageRecord>> ImageStore::ResolveLocked(
    const std::string& image) {
  if (image.empty()) {
    return absl::InvalidArgumentError("image reference is empty");
  }
  CRID_ASSIGN_OR_RETURN(std::vector<image::ImageRecord> records, ListLocked());
  MarkPinned(&records);
  if (LooksLikeImageId(image)) {
    std::string id = absl::StartsWith(image, "sha256:") ? image : "sha256:" + image;
    for (image::ImageRecord& r : records) {
      if (r.id() == id) {
        return std::optional<image::ImageRecord>(std::move(r));
      }
    }
    return std::optional<image::ImageRecord>();
  }
  CRID_ASSIGN_OR_RETURN(Reference ref, ParseReference(image));
  for (image::ImageRecord& r : records) {
    bool match = ref.digest.empty()
                     ? Contains(r.repo_tags(), ref.TaggedName())
                     : Contains(r.repo_digests(), ref.String()) ||
                           (ref.digest == r.manifest_digest() &&
                            std::any_of(r.repo_digests().begin(), r.repo_digests().end(),
                                        [&](const std::string& d) {
                                          return absl::StartsWith(d, ref.Name() + "@");
                                        }));
    if (match) {
      return std::optional<image::ImageRecord>(std::move(r));
    }
  }
  return std::optional<image::ImageRecord>();
}

absl::Status ImageStore::Remove(const std::string& image) {
  absl::MutexLock lock(&meta_mu_);
  CRID_ASSIGN_OR_RETURN(std::optional<image::ImageRecord> record, ResolveLocked(image));
  if (!record.has_value()) {
    return absl::OkStatus();
  }
  CRID_RETURN_IF_ERROR(store_->Delete(kBucket, record->id()));
  spdlog::info("removed image {} ({})", record->id(),
               record->repo_tags().empty() ? "untagged" : record->repo_tags(0));
  return CollectGarbage();
}

absl::Status ImageStore::CollectGarbage() {
  CRID_ASSIGN_OR_RETURN(std::vector<image::ImageRecord> records, ListLocked());
  std::set<std::string> keep;
  for (const image::ImageRecord& r : records) {
    keep.insert(r.id());
    keep.insert(r.manifest_digest());
    keep.insert(r.layer_digests().begin(), r.layer_digests().end());
    keep.insert(r.chain_ids().begin(), r.chain_ids().end());
    for (const std::string& d : r.repo_digests()) {
      keep.insert(d.substr(d.find('@') + 1));
    }
  }
  {
    absl::MutexLock lock(&mu_);
    keep.insert(active_.begin(), active_.end());
  }
  if (layers_in_use_) {
    std::set<std::string> used = layers_in_use_();
    keep.insert(used.begin(), used.end());
  }
  // `keep` is a snapshot: a pull or a lease may have taken hold of something
  // since, so each deletion checks `active_` again first. Pulls hold what they
  // use before they look for it, so a pull either sees the deletion or is seen.
  absl::Status result;
  CRID_ASSIGN_OR_RETURN(std::vector<std::string> blobs, content_->List());
  for (const std::string& blob : blobs) {
    if (!keep.count(blob)) {
      absl::MutexLock lock(&mu_);
      if (active_.count(blob) == 0) {
        result.Update(content_->Remove(blob));
      }
    }
  }
  std::string layers = dir_ + "/layers";
  std::vector<std::string> unused;
  if (DIR* d = opendir(layers.c_str()); d != nullptr) {
    while (dirent* e = readdir(d)) {
      std::string chain = absl::StrCat("sha256:", e->d_name);
      if (e->d_name[0] != '.' && ValidateDigest(chain).ok() && !keep.count(chain)) {
        unused.emplace_back(e->d_name);
      }
    }
    closedir(d);
  }
  for (const std::string& name : unused) {
    std::string chain = "sha256:" + name;
    std::string doomed = absl::StrCat(layers, "/.tmp-gc-", name.substr(0, 12), "-", getpid(), "-",
                                      g_temp_counter.fetch_add(1));
    {
      // Under the layer's lock no pull is checking for it or unpacking it.
      std::shared_ptr<absl::Mutex> layer_mu = LayerLock(chain);
      absl::MutexLock layer_lock(layer_mu.get());
      {
        absl::MutexLock lock(&mu_);
        if (active_.count(chain) != 0) {
          continue;
        }
      }
      // Renamed out of the way first: a crash in the middle of the removal
      // leaves a .tmp- directory (removed at the next start), never a partial
      // layer under its final name.
      std::string path = absl::StrCat(layers, "/", name);
      if (rename(path.c_str(), doomed.c_str()) != 0) {
        result.Update(ErrnoError(errno, "rename ", path, " to ", doomed));
        continue;
      }
      ForgetLayer(name);
    }
    result.Update(RemoveTree(doomed));
  }
  return result;
}

}  // namespace crid
