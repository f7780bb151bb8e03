// Pod networking through CNI: the active network (first valid config in the
// conf dir, reloaded when the dir changes), ADD/DEL of a whole plugin chain with
// prevResult, capability args for the plugins that declare them, and an on-disk
// cache of every ADD result so DEL works after a restart or a config change.
// CNI 1.1's verbs for networks whose cniVersion is 1.1.0 or newer: STATUS
// (NetworkReady), GC (attachments crid no longer knows) and CHECK (on demand).
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "base/json.h"
#include "cni/config.h"
#include "metrics/metrics.h"

namespace crid::cni {

struct CniOptions {
  std::string conf_dir = "/etc/cni/net.d";
  std::vector<std::string> bin_dirs = {"/opt/cni/bin", "/usr/lib/cni"};
  // ADD results, one file per attachment.
  std::string cache_dir;
  absl::Duration plugin_timeout = absl::Seconds(60);
  // How often the plugins of a CNI 1.1 network are asked for STATUS (also at
  // every config load); Ready() answers from the last round, so Status and
  // RunPodSandbox never wait for a plugin.
  absl::Duration status_interval = absl::Seconds(5);
  // How often attachments crid no longer knows are collected once an
  // attachment source is set (SetAttachmentSource collects at once).
  absl::Duration gc_interval = absl::Minutes(10);
  // A cached attachment written more recently than this is never collected:
  // its RunPodSandbox may not have published the pod yet.
  absl::Duration gc_grace = absl::Minutes(10);
};

// One pod's interface on the network.
struct Attachment {
  std::string container_id;  // the sandbox ID
  std::string netns;         // path of the pinned network namespace
  std::string ifname = "eth0";
  std::vector<std::pair<std::string, std::string>> args;  // CNI_ARGS
  // runtimeConfig values by capability name (portMappings, bandwidth, dns, ips,
  // cgroupPath, ...); each plugin gets only those it declares.
  Json capability_args = Json::object();
};

struct InterfaceInfo {
  std::string name;
  std::string mac;
  std::string sandbox;
};

struct IpInfo {
  std::string address;  // CIDR notation, as in the result
  std::string gateway;
  int interface = -1;  // index into interfaces, -1 when absent
  // The address without its prefix length.
  std::string ip() const { return address.substr(0, address.find('/')); }
};

struct NetworkResult {
  std::string network_name;
  std::vector<InterfaceInfo> interfaces;
  // The pod IP first: the first IPv4 address on the pod's side when there is
  // one (containerd's default), then the others in the result's order.
  std::vector<IpInfo> ips;
  std::string json;  // the final result as the last plugin returned it
};

// The attachments crid knows (its pods that have a network), for GC.
using AttachmentSource = std::function<std::vector<Attachment>()>;

// What one garbage collection did.
struct GcReport {
  int deleted = 0;         // cached attachments crid no longer knows, deleted (DEL)
  int plugins_called = 0;  // plugins sent GC (CNI 1.1 networks only)
};

// Reads interfaces and IPs from a CNI result: the 0.3.x, 0.4.0 and 1.x shape,
// or the "ip4"/"ip6" objects of 0.1.0 and 0.2.0.
absl::StatusOr<NetworkResult> ParseResult(absl::string_view json);

// The plugin config for one step of a chain: the plugin object plus name,
// cniVersion, the declared subset of `capability_args` as runtimeConfig, and
// prevResult when given.
Json BuildPluginConfig(const NetworkConfigList& list, const Json& plugin,
                       const Json& capability_args, const Json* prev_result);

class CniManager {
 public:
  // Loads the current config (none is fine: NetworkReady is false until one
  // appears) and starts watching the conf dir, also when it does not exist yet.
  static absl::StatusOr<std::unique_ptr<CniManager>> Create(CniOptions options);
  ~CniManager();

  // OK when a network config is loaded and, for a CNI 1.1 network, every
  // plugin answered the last STATUS round; otherwise why not (for Status and
  // RunPodSandbox), with the plugin's own message.
  absl::Status Ready() const;
  // Asks every plugin of a CNI 1.1 network for STATUS now (the watcher does
  // every status_interval); a no-op for older networks.
  void RefreshStatus();
  // CHECK of every plugin, with the config and result cached by ADD, for a
  // CNI 1.1 network without disableCheck. OK when there is nothing to check
  // (older network, no cached result); otherwise the plugin's message.
  absl::Status Check(const Attachment& attachment) const;
  // True when the current network is CNI 1.1 without disableCheck: Check may
  // run plugins (callers move it off threads that must not block).
  bool ChecksAttachments() const;
  // Collects now: DEL for every cached attachment that is not in `known` and
  // older than gc_grace (any cniVersion, as libcni does), then, when the
  // current network is CNI 1.1 without disableGC, GC to each of its plugins
  // with the valid attachments (cni.dev/valid-attachments) so they release
  // what no attachment holds (IPAM reservations, rules).
  absl::StatusOr<GcReport> GarbageCollect(const std::vector<Attachment>& known);
  // Where GarbageCollect's `known` comes from: set by the daemon once its pods
  // are recovered. Collects at once, then every gc_interval on the watcher
  // thread. nullptr stops it (waiting for a collection in progress), which the
  // daemon does before the source's owner goes away.
  void SetAttachmentSource(AttachmentSource source);
  // Name of the loaded network, empty when none.
  std::string NetworkName() const;
  // Re-reads the conf dir now (the watcher does this on every change).
  void Reload();

  // Runs ADD of every plugin in order. On failure every plugin is deleted again
  // (reverse order) and nothing is cached; the error carries the plugin's message.
  absl::StatusOr<NetworkResult> Setup(const Attachment& attachment);
  // Runs DEL of every plugin in reverse order with the cached config and result
  // of the ADD (the current config when nothing is cached), then drops the cache.
  // `attachment.netns` may be empty when the namespace is already gone.
  absl::Status Teardown(const Attachment& attachment);
  // The cached ADD result, if any.
  std::optional<NetworkResult> CachedResult(const std::string& container_id,
                                            const std::string& ifname) const;

  // Times every plugin execution. Not owned; null (the default) times nothing.
  void SetMetrics(metrics::CniMetrics* metrics) { metrics_.store(metrics); }

 private:
  explicit CniManager(CniOptions options) : options_(std::move(options)) {}
  void Watch();
  void ReloadLocked(absl::StatusOr<NetworkConfigList> list) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Watches the conf dir; false (errno set) when it cannot, e.g. it is missing.
  bool AddWatch();
  std::string CachePath(const std::string& container_id, const std::string& ifname) const;
  absl::StatusOr<std::string> RunPlugin(const std::string& command, const NetworkConfigList& list,
                                        const Json& plugin, const Attachment& attachment,
                                        const Json* prev_result) const;
  // RunPlugin's work, untimed.
  absl::StatusOr<std::string> ExecPluginOfType(const std::string& type, const std::string& command,
                                               const NetworkConfigList& list, const Json& plugin,
                                               const Attachment& attachment,
                                               const Json* prev_result) const;
  absl::Status DeleteAll(const NetworkConfigList& list, const Attachment& attachment,
                         const Json* prev_result) const;
  absl::Status TeardownUnlocked(const Attachment& attachment);
  // The STATUS round of RefreshStatus for `list`.
  absl::Status PluginStatus(const NetworkConfigList& list) const;
  // Runs GarbageCollect with the source's attachments when one is set.
  void CollectFromSource();

  const CniOptions options_;
  mutable absl::Mutex mu_;
  std::optional<NetworkConfigList> config_ ABSL_GUARDED_BY(mu_);
  absl::Status load_error_ ABSL_GUARDED_BY(mu_);
  // The last STATUS round and the config text it was for.
  absl::Status plugin_status_ ABSL_GUARDED_BY(mu_);
  std::string plugin_status_config_ ABSL_GUARDED_BY(mu_);
  // Setup and Teardown hold it shared, GarbageCollect exclusively: a plugin's
  // GC never races an ADD whose attachment is not in the valid list yet.
  absl::Mutex ops_mu_;
  // Held while the source is called; SetAttachmentSource(nullptr) waits on it.
  absl::Mutex source_mu_;
  AttachmentSource source_ ABSL_GUARDED_BY(source_mu_);
  absl::Time next_gc_ ABSL_GUARDED_BY(source_mu_) = absl::InfiniteFuture();
  int inotify_fd_ = -1;
  std::atomic<bool> stopping_{false};
  // Only the watcher thread touches it after Create.
  bool watching_ = false;
  absl::Time next_status_ = absl::InfinitePast();
  std::atomic<metrics::CniMetrics*> metrics_{nullptr};
  std::thread watcher_;
};

}  // namespace crid::cni
