#include "cri/container_events.h"

#include <deque>

#include "absl/time/clock.h"
#include "cri/runtime_service.h"
#include "spdlog/spdlog.h"

namespace crid {

namespace v1 = ::runtime::v1;

class ContainerEventHub::Subscriber final
    : public grpc::ServerWriteReactor<v1::ContainerEventResponse> {
 public:
  Subscriber(ContainerEventHub* hub, std::string peer) : hub_(hub), peer_(std::move(peer)) {}

  // Queues an event; false when the buffer is full (the subscriber is then
  // finished and must be dropped).
  bool Push(const v1::ContainerEventResponse& event) {
    absl::MutexLock lock(&mu_);
    if (finished_) {
      return true;
    }
    if (queue_.size() >= kMaxBuffered) {
      finished_ = true;
      Finish(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                          "container events: this subscriber fell more than 1024 events "
                          "behind and was cut off; subscribe again"));
      return false;
    }
    queue_.push_back(event);
    if (!writing_) {
      writing_ = true;
      StartWrite(&queue_.front());
    }
    return true;
  }

  void Close(grpc::Status status) {
    absl::MutexLock lock(&mu_);
    if (!finished_) {
      finished_ = true;
      Finish(std::move(status));
    }
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    queue_.pop_front();
    if (!ok) {
      writing_ = false;
      if (!finished_) {
        finished_ = true;
        Finish(grpc::Status::CANCELLED);
      }
      return;
    }
    if (!queue_.empty() && !finished_) {
      StartWrite(&queue_.front());
    } else {
      writing_ = false;
    }
  }

  void OnCancel() override { Close(grpc::Status::CANCELLED); }

  void OnDone() override {
    hub_->Drop(this);
    delete this;
  }

  const std::string& peer() const { return peer_; }

 private:
  ContainerEventHub* const hub_;
  const std::string peer_;
  absl::Mutex mu_;
  // The front is being written while `writing_`.
  std::deque<v1::ContainerEventResponse> queue_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
};

ContainerEventHub::~ContainerEventHub() {
  // Streams still open end with the server; each drops itself when done.
  absl::MutexLock lock(&mu_);
  closing_ = true;
  for (Subscriber* s : subscribers_) {
    s->Close(grpc::Status(grpc::StatusCode::UNAVAILABLE, "crid is shutting down"));
  }
  mu_.Await(absl::Condition(
      +[](std::set<Subscriber*>* subscribers) { return subscribers->empty(); }, &subscribers_));
}

grpc::ServerWriteReactor<v1::ContainerEventResponse>* ContainerEventHub::Subscribe(
    grpc::CallbackServerContext* context) {
  auto* subscriber = new Subscriber(this, context->peer());
  absl::MutexLock lock(&mu_);
  if (closing_) {
    subscriber->Close(grpc::Status(grpc::StatusCode::UNAVAILABLE, "crid is shutting down"));
  } else {
    // The headers tell the client it is subscribed: every event from here on
    // reaches it.
    subscriber->StartSendInitialMetadata();
  }
  subscribers_.insert(subscriber);
  return subscriber;
}

bool ContainerEventHub::HasSubscribers() const {
  absl::MutexLock lock(&mu_);
  return !subscribers_.empty();
}

void ContainerEventHub::Publish(const v1::ContainerEventResponse& event) {
  absl::MutexLock lock(&mu_);
  for (Subscriber* s : subscribers_) {
    if (!s->Push(event)) {
      spdlog::warn("container events: subscriber {} fell behind by {} events; cut off", s->peer(),
                   kMaxBuffered);
    }
  }
}

void ContainerEventHub::Drop(Subscriber* subscriber) {
  absl::MutexLock lock(&mu_);
  subscribers_.erase(subscriber);
}

// ---------------------------------------------------------------------------
// The RPC and the events it carries.

RuntimeService::RuntimeService(RuntimeState* state, sandbox::SandboxManager* sandboxes,
                               container::ContainerManager* containers)
    : state_(state),
      sandboxes_(sandboxes),
      containers_(containers),
      // kubelet asks every 10-15 s: samples at most about 2 s old, for 0.15%
      // of a core per hundred containers while it asks.
      stats_sampler_(
          [this](const std::vector<container::RecordSnapshot>& records) {
            return MeasureContainerStats(records);
          },
          absl::Seconds(2), absl::Minutes(1)) {
  if (containers_ != nullptr) {
    containers_->SetObserver(
        [this](const container::ContainerRecord& record, container::ContainerEventKind kind) {
          if (events_.HasSubscribers()) {
            events_.Publish(EventOf(record, kind));
          }
        });
  }
}

RuntimeService::~RuntimeService() {
  if (containers_ != nullptr) {
    containers_->SetObserver(nullptr);
  }
}

v1::ContainerEventResponse RuntimeService::EventOf(const container::ContainerRecord& record,
                                                   container::ContainerEventKind kind) const {
  v1::ContainerEventResponse event;
  event.set_container_id(record.id());
  switch (kind) {
    case container::ContainerEventKind::kCreated:
      event.set_container_event_type(v1::CONTAINER_CREATED_EVENT);
      break;
    case container::ContainerEventKind::kStarted:
      event.set_container_event_type(v1::CONTAINER_STARTED_EVENT);
      break;
    case container::ContainerEventKind::kStopped:
      event.set_container_event_type(v1::CONTAINER_STOPPED_EVENT);
      break;
    case container::ContainerEventKind::kDeleted:
      event.set_container_event_type(v1::CONTAINER_DELETED_EVENT);
      break;
  }
  event.set_created_at(absl::ToUnixNanos(absl::Now()));
  if (sandboxes_ != nullptr) {
    absl::StatusOr<sandbox::SandboxRecord> pod = sandboxes_->Get(record.pod_id());
    if (pod.ok()) {
      ToCriPodSandboxStatus(*pod, event.mutable_pod_sandbox_status());
    }
  }
  AddPodContainerStatuses(*containers_, record.pod_id(), event.mutable_containers_statuses());
  return event;
}

grpc::ServerWriteReactor<v1::ContainerEventResponse>* RuntimeService::GetContainerEvents(
    grpc::CallbackServerContext* context, const v1::GetEventsRequest* /*request*/) {
  if (containers_ == nullptr) {
    return new FinishedWriteReactor<v1::ContainerEventResponse>(
        grpc::Status(grpc::StatusCode::UNAVAILABLE, "containers are not available"));
  }
  return events_.Subscribe(context);
}

}  // namespace crid
