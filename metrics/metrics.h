// crid's own Prometheus metrics: the families every subsystem records into,
// created in one place so their names and labels read as one list
// (docs/configuration.md, "Metrics"). A subsystem is handed the piece it
// records into; a null pointer means metrics are off and costs nothing.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <cstdint>
#include <memory>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace crid::metrics {

// Buckets for operations that take from a millisecond to a minute (RPCs, CNI
// plugins).
const prometheus::Histogram::BucketBoundaries& LatencyBuckets();
// Buckets for image pulls: a second to half an hour.
const prometheus::Histogram::BucketBoundaries& PullBuckets();

// Image pulls (image/ImageStore::Pull).
class PullMetrics {
 public:
  explicit PullMetrics(prometheus::Registry& registry);
  // One pull that ran (a pull that joined another one's download is not
  // counted): whether it succeeded, the layer bytes it received from the
  // registry, how long it took.
  void RecordPull(bool ok, uint64_t bytes_received, absl::Duration duration);

 private:
  prometheus::Family<prometheus::Counter>& pulls_;
  prometheus::Counter& succeeded_;
  prometheus::Counter& failed_;
  prometheus::Counter& bytes_;
  prometheus::Histogram& duration_;
};

// CNI plugin executions (cni/CniManager), by plugin type and verb (ADD, DEL,
// CHECK, STATUS).
class CniMetrics {
 public:
  explicit CniMetrics(prometheus::Registry& registry);
  void RecordPluginCall(const std::string& plugin, const std::string& verb, bool ok,
                        absl::Duration duration);

 private:
  prometheus::Family<prometheus::Histogram>& duration_;
  prometheus::Family<prometheus::Counter>& errors_;
};

// The per-pod shims (container/ContainerManager).
class ShimMetrics {
 public:
  explicit ShimMetrics(prometheus::Registry& registry);
  // A shim was started for a pod; `restart` when the pod's previous shim died.
  void RecordLaunch(bool restart);
  // A shim stopped answering while crid did not expect it to.
  void RecordUnexpectedExit();

 private:
  prometheus::Counter& launches_;
  prometheus::Counter& restarts_;
  prometheus::Counter& unexpected_exits_;
};

}  // namespace crid::metrics
