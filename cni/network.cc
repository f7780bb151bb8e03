#include "cni/network.h"

#include <arpa/inet.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/errors.h"
#include "base/fs.h"
#include "base/json.h"
#include "base/logging.h"
#include "cni/exec.h"

namespace crid::cni {

namespace {

constexpr char kCacheKind[] = "cniCacheV1";

// DEL receives the cached result only from cniVersion 0.4.0 on.
bool SupportsPrevResultOnDel(const std::string& version) {
  return !(version.empty() || absl::StartsWith(version, "0.1") ||
           absl::StartsWith(version, "0.2") || absl::StartsWith(version, "0.3"));
}

bool IsIpv4(const IpInfo& ip) {
  struct in_addr addr;
  return inet_pton(AF_INET, ip.ip().c_str(), &addr) == 1;
}

// containerd's default choice of the pod IP: the first IPv4 address on the
// pod's side (the other family stays in the list, in order, as additional IPs).
void PutPrimaryIpFirst(NetworkResult& result) {
  auto on_pod_side = [&](const IpInfo& ip) {
    return ip.interface < 0 || ip.interface >= static_cast<int>(result.interfaces.size()) ||
           !result.interfaces[ip.interface].sandbox.empty();
  };
  auto primary = std::find_if(result.ips.begin(), result.ips.end(),
                              [&](const IpInfo& ip) { return IsIpv4(ip) && on_pod_side(ip); });
  if (primary != result.ips.end()) {
    std::rotate(result.ips.begin(), primary, primary + 1);
  }
}

bool IsCni11(const NetworkConfigList& list) { return CniVersionAtLeast(list.cni_version, 1, 1, 0); }

// What ADD cached for one attachment: the config it ran with, its result and
// its capability args (each absent when the cache lacks or garbles it).
struct CachedAttachment {
  std::optional<NetworkConfigList> list;
  std::optional<Json> result;
  std::optional<Json> capability_args;
  std::string container_id;
  std::string ifname;
  std::string netns;
  std::vector<std::pair<std::string, std::string>> args;
};

std::optional<CachedAttachment> ReadCachedAttachment(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) {
    return std::nullopt;
  }
  CachedAttachment out;
  absl::StatusOr<Json> cache = ParseJson(*text, path);
  if (!cache.ok() || !cache->is_object()) {
    spdlog::warn("ignoring unreadable CNI cache {}", path);
    return out;
  }
  const Json& c = *cache;
  absl::StatusOr<NetworkConfigList> cached =
      ParseNetworkConfig(JsonString(c, "config"), JsonBool(c, "configIsList").value_or(false),
                         JsonString(c, "configSource"));
  if (cached.ok()) {
    out.list = *std::move(cached);
  }
  if (const Json* r = JsonField(c, "result"); r != nullptr) {
    out.result = *r;
  }
  if (const Json* a = crid::JsonObject(c, "capabilityArgs"); a != nullptr) {
    out.capability_args = *a;
  }
  out.container_id = JsonString(c, "containerId");
  out.ifname = JsonString(c, "ifName");
  out.netns = JsonString(c, "netns");
  if (const Json* args = crid::JsonObject(c, "cniArgs"); args != nullptr) {
    for (const auto& [k, v] : args->items()) {
      if (v.is_string()) {
        out.args.emplace_back(k, v.get<std::string>());
      }
    }
  }
  return out;
}

}  // namespace

absl::StatusOr<NetworkResult> ParseResult(absl::string_view json) {
  CRID_ASSIGN_OR_RETURN(Json top, ParseJson(json, "CNI result"));
  if (!top.is_object()) {
    return absl::InternalError("CNI result is not a JSON object");
  }
  NetworkResult result;
  result.json = std::string(json);
  if (const Json* ifs = JsonArray(top, "interfaces")) {
    for (const Json& v : *ifs) {
      if (!v.is_object()) {
        continue;
      }
      result.interfaces.push_back(
          {JsonString(v, "name"), JsonString(v, "mac"), JsonString(v, "sandbox")});
    }
  }
  if (const Json* ips = JsonArray(top, "ips")) {
    for (const Json& v : *ips) {
      if (!v.is_object()) {
        continue;
      }
      IpInfo ip;
      ip.address = JsonString(v, "address");
      ip.gateway = JsonString(v, "gateway");
      // An index out of int's range points at no interface, like an absent one.
      if (int64_t idx = JsonInt(v, "interface"); idx >= 0 && idx <= INT32_MAX) {
        ip.interface = static_cast<int>(idx);
      }
      if (ip.address.empty()) {
        return absl::InternalError("CNI result has an IP entry without an address");
      }
      result.ips.push_back(std::move(ip));
    }
  }
  // CNI 0.1.0/0.2.0 results: one "ip4" and one "ip6" object, {"ip": CIDR,
  // "gateway", "routes"}, read into the current form's IP list.
  for (const char* family : {"ip4", "ip6"}) {
    const Json* legacy = JsonField(top, "ips") == nullptr ? crid::JsonObject(top, family) : nullptr;
    if (legacy == nullptr) {
      continue;
    }
    IpInfo ip;
    ip.address = JsonString(*legacy, "ip");
    ip.gateway = JsonString(*legacy, "gateway");
    if (ip.address.empty()) {
      return absl::InternalError(absl::StrCat("CNI result: ", family, ".ip: missing"));
    }
    result.ips.push_back(std::move(ip));
  }
  PutPrimaryIpFirst(result);
  return result;
}

Json BuildPluginConfig(const NetworkConfigList& list, const Json& plugin,
                       const Json& capability_args, const Json* prev_result) {
  Json config = plugin.is_object() ? plugin : Json::object();
  config["name"] = list.name;
  config["cniVersion"] = list.cni_version;
  Json runtime_config = Json::object();
  if (const Json* caps = crid::JsonObject(plugin, "capabilities")) {
    for (const auto& [name, enabled] : caps->items()) {
      if (!enabled.is_boolean() || !enabled.get<bool>()) {
        continue;
      }
      if (const Json* arg = JsonField(capability_args, name); arg != nullptr) {
        runtime_config[name] = *arg;
      }
    }
  }
  if (!runtime_config.empty()) {
    config["runtimeConfig"] = std::move(runtime_config);
  } else {
    config.erase("runtimeConfig");
  }
  if (prev_result != nullptr) {
    config["prevResult"] = *prev_result;
  } else {
    config.erase("prevResult");
  }
  return config;
}

absl::StatusOr<std::unique_ptr<CniManager>> CniManager::Create(CniOptions options) {
  if (options.cache_dir.empty()) {
    return absl::InvalidArgumentError("CNI result cache directory not set");
  }
  CRID_RETURN_IF_ERROR(MakeDirs(options.cache_dir, 0700));
  std::unique_ptr<CniManager> manager(new CniManager(std::move(options)));
  manager->inotify_fd_ = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
  if (manager->inotify_fd_ < 0) {
    return ErrnoError(errno, "inotify_init1");
  }
  // A conf dir that does not exist yet is watched as soon as it appears.
  if (!manager->AddWatch() && errno != ENOENT) {
    return ErrnoError(errno, "watch ", manager->options_.conf_dir);
  }
  manager->Reload();
  manager->next_status_ = absl::Now() + manager->options_.status_interval;
  CniManager* self = manager.get();
  manager->watcher_ = std::thread([self] { self->Watch(); });
  return manager;
}

CniManager::~CniManager() {
  stopping_ = true;
  if (watcher_.joinable()) {
    watcher_.join();
  }
  if (inotify_fd_ >= 0) {
    close(inotify_fd_);
  }
}

bool CniManager::AddWatch() {
  watching_ =
      inotify_add_watch(inotify_fd_, options_.conf_dir.c_str(),
                        IN_CREATE | IN_DELETE | IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM |
                            IN_MODIFY | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF) >= 0;
  return watching_;
}

void CniManager::Watch() {
  while (!stopping_) {
    if (!watching_ && AddWatch()) {
      Reload();
    }
    if (absl::Now() >= next_status_) {
      RefreshStatus();
      next_status_ = absl::Now() + options_.status_interval;
    }
    CollectFromSource();
    struct pollfd pfd = {inotify_fd_, POLLIN, 0};
    int r = poll(&pfd, 1, 200);
    if (r <= 0) {
      continue;
    }
    alignas(struct inotify_event) char buf[4096];
    bool changed = false;
    ssize_t n;
    while ((n = read(inotify_fd_, buf, sizeof(buf))) > 0) {
      changed = true;
      for (ssize_t off = 0; off + static_cast<ssize_t>(sizeof(struct inotify_event)) <= n;) {
        const auto* ev = reinterpret_cast<const struct inotify_event*>(buf + off);
        if ((ev->mask & (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF)) != 0) {
          // The directory itself went away: watch again once it is back.
          watching_ = false;
        }
        off += static_cast<ssize_t>(sizeof(struct inotify_event) + ev->len);
      }
    }
    if (changed) {
      Reload();
      next_status_ = absl::Now() + options_.status_interval;
    }
  }
}

void CniManager::Reload() {
  absl::StatusOr<NetworkConfigList> list = LoadFirstNetworkConfig(options_.conf_dir);
  {
    absl::MutexLock lock(&mu_);
    ReloadLocked(std::move(list));
  }
  // A new CNI 1.1 network is not ready until its plugins answer STATUS.
  RefreshStatus();
}

void CniManager::ReloadLocked(absl::StatusOr<NetworkConfigList> list) {
  if (list.ok()) {
    if (!config_.has_value() || config_->text != list->text || config_->source != list->source) {
      spdlog::info("CNI network \"{}\" loaded from {}", list->name, list->source);
    }
    config_ = *std::move(list);
    load_error_ = absl::OkStatus();
  } else {
    if (config_.has_value()) {
      spdlog::warn("CNI network config gone: {}", list.status().message());
    }
    config_.reset();
    load_error_ = list.status();
  }
}

absl::Status CniManager::Ready() const {
  absl::MutexLock lock(&mu_);
  if (!config_.has_value()) {
    return absl::FailedPreconditionError(
        absl::StrCat("cni config uninitialized: ", load_error_.message()));
  }
  if (!IsCni11(*config_)) {
    return absl::OkStatus();
  }
  if (plugin_status_config_ != config_->text) {
    return absl::UnavailableError(
        absl::StrCat("network \"", config_->name, "\": waiting for its plugins' STATUS"));
  }
  return plugin_status_;
}

absl::Status CniManager::PluginStatus(const NetworkConfigList& list) const {
  Attachment none;
  none.ifname.clear();
  for (const Json& plugin : list.plugins) {
    absl::StatusOr<std::string> out = RunPlugin("STATUS", list, plugin, none, nullptr);
    if (!out.ok()) {
      // CNI 1.1: code 50 "not available", 51 "not available, existing pods may
      // be affected": either way no new pod should be set up.
      return absl::FailedPreconditionError(out.status().message());
    }
  }
  return absl::OkStatus();
}

void CniManager::RefreshStatus() {
  std::optional<NetworkConfigList> list;
  {
    absl::MutexLock lock(&mu_);
    if (!config_.has_value()) {
      return;
    }
    list = *config_;
  }
  absl::Status st = IsCni11(*list) ? PluginStatus(*list) : absl::OkStatus();
  absl::MutexLock lock(&mu_);
  if (!config_.has_value() || config_->text != list->text) {
    return;  // the config changed meanwhile; its own round follows
  }
  if (plugin_status_config_ == list->text && plugin_status_.ok() != st.ok()) {
    if (st.ok()) {
      spdlog::info("CNI network \"{}\" is ready again", list->name);
    } else {
      spdlog::warn("CNI network \"{}\" not ready: {}", list->name, st.message());
    }
  } else if (plugin_status_config_ != list->text && !st.ok()) {
    spdlog::warn("CNI network \"{}\" not ready: {}", list->name, st.message());
  }
  plugin_status_ = st;
  plugin_status_config_ = list->text;
}

std::string CniManager::NetworkName() const {
  absl::MutexLock lock(&mu_);
  return config_.has_value() ? config_->name : "";
}

std::string CniManager::CachePath(const std::string& container_id,
                                  const std::string& ifname) const {
  return absl::StrCat(options_.cache_dir, "/", container_id, "-", ifname, ".json");
}

absl::StatusOr<std::string> CniManager::RunPlugin(const std::string& command,
                                                  const NetworkConfigList& list, const Json& plugin,
                                                  const Attachment& attachment,
                                                  const Json* prev_result) const {
  std::string type = JsonString(plugin, "type");
  absl::Time start = absl::Now();
  absl::StatusOr<std::string> out =
      ExecPluginOfType(type, command, list, plugin, attachment, prev_result);
  if (metrics::CniMetrics* metrics = metrics_.load(); metrics != nullptr) {
    metrics->RecordPluginCall(type, command, out.ok(), absl::Now() - start);
  }
  return out;
}

absl::StatusOr<std::string> CniManager::ExecPluginOfType(
    const std::string& type, const std::string& command, const NetworkConfigList& list,
    const Json& plugin, const Attachment& attachment, const Json* prev_result) const {
  CRID_ASSIGN_OR_RETURN(std::string binary, FindPlugin(type, options_.bin_dirs));
  PluginInvocation inv;
  inv.command = command;
  inv.container_id = attachment.container_id;
  inv.netns = attachment.netns;
  inv.ifname = attachment.ifname;
  inv.args = attachment.args;
  inv.bin_dirs = options_.bin_dirs;
  Json config = BuildPluginConfig(list, plugin, attachment.capability_args, prev_result);
  absl::StatusOr<std::string> out =
      ExecPlugin(binary, inv, JsonText(config), options_.plugin_timeout);
  if (!out.ok()) {
    return Annotate(out.status(), absl::StrCat("network \"", list.name, "\": plugin type=\"", type,
                                               "\" ", command));
  }
  return out;
}

absl::Status CniManager::DeleteAll(const NetworkConfigList& list, const Attachment& attachment,
                                   const Json* prev_result) const {
  if (!SupportsPrevResultOnDel(list.cni_version)) {
    prev_result = nullptr;
  }
  absl::Status first_error;
  for (auto it = list.plugins.rbegin(); it != list.plugins.rend(); ++it) {
    absl::StatusOr<std::string> out = RunPlugin("DEL", list, *it, attachment, prev_result);
    if (!out.ok() && first_error.ok()) {
      first_error = out.status();
    }
  }
  return first_error;
}

absl::StatusOr<NetworkResult> CniManager::Setup(const Attachment& attachment) {
  absl::ReaderMutexLock ops(&ops_mu_);
  NetworkConfigList list;
  {
    absl::MutexLock lock(&mu_);
    if (!config_.has_value()) {
      return absl::FailedPreconditionError(
          absl::StrCat("network not ready: cni config uninitialized: ", load_error_.message()));
    }
    list = *config_;
  }
  std::optional<Json> prev;
  for (const Json& plugin : list.plugins) {
    absl::StatusOr<std::string> out =
        RunPlugin("ADD", list, plugin, attachment, prev.has_value() ? &*prev : nullptr);
    absl::StatusOr<Json> parsed =
        out.ok() ? ParseJson(*out, "the result") : absl::StatusOr<Json>(out.status());
    if (out.ok() && !parsed.ok()) {
      parsed = Annotate(parsed.status(),
                        absl::StrCat("result of plugin type=\"", JsonString(plugin, "type"), "\""));
    }
    if (!parsed.ok()) {
      if (absl::Status del = DeleteAll(list, attachment, prev.has_value() ? &*prev : nullptr);
          !del.ok()) {
        spdlog::warn("cleaning up after failed CNI ADD for {}: {}", attachment.container_id,
                     del.message());
      }
      return parsed.status();
    }
    prev = *std::move(parsed);
  }
  std::string result_json = prev.has_value() ? JsonText(*prev) : "{}";
  absl::StatusOr<NetworkResult> result = ParseResult(result_json);
  absl::Status st = result.status();
  if (result.ok()) {
    result->network_name = list.name;
    Json cache = {
        {"kind", kCacheKind},
        {"containerId", attachment.container_id},
        {"ifName", attachment.ifname},
        {"networkName", list.name},
        {"netns", attachment.netns},
        {"config", list.text},
        {"configSource", list.source},
        {"configIsList", list.is_list},
        {"capabilityArgs",
         attachment.capability_args.is_object() ? attachment.capability_args : Json::object()},
    };
    Json args = Json::object();
    for (const auto& [k, v] : attachment.args) {
      args[k] = v;
    }
    cache["cniArgs"] = std::move(args);
    cache["result"] = prev.has_value() ? *prev : Json::object();
    st = WriteFileAtomic(CachePath(attachment.container_id, attachment.ifname), JsonText(cache),
                         0600);
  }
  if (!st.ok()) {
    (void)DeleteAll(list, attachment, prev.has_value() ? &*prev : nullptr);
    return st;
  }
  return result;
}

absl::Status CniManager::Teardown(const Attachment& attachment) {
  absl::ReaderMutexLock ops(&ops_mu_);
  return TeardownUnlocked(attachment);
}

absl::Status CniManager::TeardownUnlocked(const Attachment& attachment) {
  const std::string cache_path = CachePath(attachment.container_id, attachment.ifname);
  std::optional<NetworkConfigList> list;
  std::optional<Json> prev;
  Attachment effective = attachment;
  if (std::optional<CachedAttachment> cached = ReadCachedAttachment(cache_path)) {
    list = std::move(cached->list);
    prev = std::move(cached->result);
    if (cached->capability_args.has_value() &&
        (!effective.capability_args.is_object() || effective.capability_args.empty())) {
      effective.capability_args = *cached->capability_args;
    }
  }
  if (!list.has_value()) {
    absl::MutexLock lock(&mu_);
    if (!config_.has_value()) {
      // Nothing was ever set up through a config we know: nothing to delete.
      spdlog::warn("no CNI config and no cached result for {}; skipping CNI DEL",
                   attachment.container_id);
      unlink(cache_path.c_str());
      return absl::OkStatus();
    }
    list = *config_;
  }
  CRID_RETURN_IF_ERROR(DeleteAll(*list, effective, prev.has_value() ? &*prev : nullptr));
  if (unlink(cache_path.c_str()) != 0 && errno != ENOENT) {
    return ErrnoError(errno, "remove ", cache_path);
  }
  return absl::OkStatus();
}

bool CniManager::ChecksAttachments() const {
  absl::MutexLock lock(&mu_);
  return config_.has_value() && IsCni11(*config_) && !config_->disable_check;
}

absl::Status CniManager::Check(const Attachment& attachment) const {
  std::optional<CachedAttachment> cached =
      ReadCachedAttachment(CachePath(attachment.container_id, attachment.ifname));
  if (!cached.has_value() || !cached->list.has_value() || !cached->result.has_value() ||
      !IsCni11(*cached->list) || cached->list->disable_check) {
    return absl::OkStatus();
  }
  Attachment effective = attachment;
  if (cached->capability_args.has_value() &&
      (!effective.capability_args.is_object() || effective.capability_args.empty())) {
    effective.capability_args = *cached->capability_args;
  }
  for (const Json& plugin : cached->list->plugins) {
    CRID_RETURN_IF_ERROR(
        RunPlugin("CHECK", *cached->list, plugin, effective, &*cached->result).status());
  }
  return absl::OkStatus();
}

absl::StatusOr<GcReport> CniManager::GarbageCollect(const std::vector<Attachment>& known) {
  absl::WriterMutexLock ops(&ops_mu_);
  std::set<std::pair<std::string, std::string>> valid;
  for (const Attachment& a : known) {
    valid.emplace(a.container_id, a.ifname);
  }
  GcReport report;
  absl::Status first_error;
  CRID_ASSIGN_OR_RETURN(std::vector<std::string> names, ListDir(options_.cache_dir));
  std::vector<std::string> files;
  for (const std::string& name : names) {
    if (absl::EndsWith(name, ".json")) {
      files.push_back(absl::StrCat(options_.cache_dir, "/", name));
    }
  }
  std::sort(files.begin(), files.end());
  const absl::Time young_after = absl::Now() - options_.gc_grace;
  for (const std::string& path : files) {
    std::optional<CachedAttachment> cached = ReadCachedAttachment(path);
    if (!cached.has_value() || cached->container_id.empty() || cached->ifname.empty() ||
        CachePath(cached->container_id, cached->ifname) != path) {
      continue;  // not one of ours (or garbled): left for a person to look at
    }
    std::pair<std::string, std::string> key(cached->container_id, cached->ifname);
    struct stat st;
    if (valid.count(key) > 0 ||
        (stat(path.c_str(), &st) == 0 && absl::FromTimeT(st.st_mtime) > young_after)) {
      valid.insert(key);
      continue;
    }
    Attachment gone;
    gone.container_id = cached->container_id;
    gone.ifname = cached->ifname;
    struct stat ns;
    // The pod's namespace may be gone already: DEL then runs without one.
    gone.netns =
        !cached->netns.empty() && stat(cached->netns.c_str(), &ns) == 0 ? cached->netns : "";
    gone.args = cached->args;
    absl::Status del = TeardownUnlocked(gone);
    if (del.ok()) {
      ++report.deleted;
      spdlog::info("CNI GC: deleted attachment {}/{} that no pod holds", gone.container_id,
                   gone.ifname);
    } else if (first_error.ok()) {
      first_error = Annotate(del, absl::StrCat("CNI GC of ", gone.container_id));
    }
  }
  std::optional<NetworkConfigList> list;
  {
    absl::MutexLock lock(&mu_);
    if (config_.has_value()) {
      list = *config_;
    }
  }
  if (list.has_value() && IsCni11(*list) && !list->disable_gc) {
    Json attachments = Json::array();
    for (const auto& [id, ifname] : valid) {
      attachments.push_back({{"containerID", id}, {"ifname", ifname}});
    }
    Attachment none;
    none.ifname.clear();
    for (const Json& plugin : list->plugins) {
      Json with_valid = plugin;
      // The spec's name, and the one an earlier draft used (libcni sends both).
      with_valid["cni.dev/valid-attachments"] = attachments;
      with_valid["cni.dev/attachments"] = attachments;
      absl::StatusOr<std::string> out = RunPlugin("GC", *list, with_valid, none, nullptr);
      ++report.plugins_called;
      if (!out.ok() && first_error.ok()) {
        first_error = out.status();
      }
    }
  }
  if (!first_error.ok()) {
    return first_error;
  }
  return report;
}

void CniManager::SetAttachmentSource(AttachmentSource source) {
  absl::MutexLock lock(&source_mu_);
  source_ = std::move(source);
  next_gc_ = source_ ? absl::Now() : absl::InfiniteFuture();
}

void CniManager::CollectFromSource() {
  absl::MutexLock lock(&source_mu_);
  if (!source_ || absl::Now() < next_gc_) {
    return;
  }
  next_gc_ = absl::Now() + options_.gc_interval;
  absl::StatusOr<GcReport> report = GarbageCollect(source_());
  if (!report.ok()) {
    spdlog::warn("CNI garbage collection: {}", report.status().message());
  } else if (report->deleted > 0 || report->plugins_called > 0) {
    spdlog::info("CNI garbage collection: {} stale attachment(s) deleted, {} plugin(s) sent GC",
                 report->deleted, report->plugins_called);
  }
}

std::optional<NetworkResult> CniManager::CachedResult(const std::string& container_id,
                                                      const std::string& ifname) const {
  absl::StatusOr<std::string> text = ReadFile(CachePath(container_id, ifname));
  if (!text.ok()) {
    return std::nullopt;
  }
  absl::StatusOr<Json> cache = ParseJson(*text, "CNI cache");
  if (!cache.ok()) {
    return std::nullopt;
  }
  const Json* r = JsonField(*cache, "result");
  if (r == nullptr) {
    return std::nullopt;
  }
  absl::StatusOr<NetworkResult> result = ParseResult(JsonText(*r));
  if (!result.ok()) {
    return std::nullopt;
  }
  result->network_name = JsonString(*cache, "networkName");
  return *std::move(result);
}

}  // namespace crid::cni
