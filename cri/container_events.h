// GetContainerEvents: a hub that fans container lifecycle events out to every
// subscribed stream (kubelet's Evented PLEG, crictl events). Each subscriber has
// a bounded buffer; one that falls that far behind is cut off (its stream ends
// with RESOURCE_EXHAUSTED and a log line), so a slow reader never delays the
// others or the operation that caused the event.
#pragma once

#include <grpcpp/grpcpp.h>

#include <cstddef>
#include <set>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "proto/cri_api.grpc.pb.h"

namespace crid {

class ContainerEventHub {
 public:
  // Events buffered per subscriber before it is cut off.
  static constexpr size_t kMaxBuffered = 1024;

  ContainerEventHub() = default;
  ~ContainerEventHub();
  ContainerEventHub(const ContainerEventHub&) = delete;
  ContainerEventHub& operator=(const ContainerEventHub&) = delete;

  // A new subscriber's stream; it lives until the client goes away.
  grpc::ServerWriteReactor<runtime::v1::ContainerEventResponse>* Subscribe(
      grpc::CallbackServerContext* context);

  // Whether anyone listens (events need not be built otherwise).
  bool HasSubscribers() const;
  void Publish(const runtime::v1::ContainerEventResponse& event);

 private:
  class Subscriber;
  friend class Subscriber;
  void Drop(Subscriber* subscriber);

  mutable absl::Mutex mu_;
  std::set<Subscriber*> subscribers_ ABSL_GUARDED_BY(mu_);
  bool closing_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace crid
