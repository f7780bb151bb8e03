// ContainerManager's construction and destruction, the runtime handlers, how a
// record is persisted and published, the observer, and the free functions of
// manager.h. The rest of the class lives in the other manager_*.cc files
// (recovery, shim, exits, create, lifecycle, exec, queries).
#include "container/manager.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "base/errors.h"
#include "base/fs.h"

namespace crid::container {

namespace {

namespace v1 = ::runtime::v1;

}  // namespace

std::string ContainerKey(const v1::ContainerMetadata& md, const v1::PodSandboxMetadata& pod) {
  return absl::StrCat(md.name(), "_", pod.name(), "_", pod.namespace_(), "_", pod.uid(), "_",
                      md.attempt());
}

int SignalNumber(absl::string_view name) {
  static const std::pair<const char*, int> kSignals[] = {
      {"ABRT", SIGABRT}, {"ALRM", SIGALRM}, {"BUS", SIGBUS},       {"CHLD", SIGCHLD},
      {"CLD", SIGCHLD},  {"CONT", SIGCONT}, {"FPE", SIGFPE},       {"HUP", SIGHUP},
      {"ILL", SIGILL},   {"INT", SIGINT},   {"IO", SIGIO},         {"IOT", SIGIOT},
      {"KILL", SIGKILL}, {"PIPE", SIGPIPE}, {"POLL", SIGPOLL},     {"PROF", SIGPROF},
      {"PWR", SIGPWR},   {"QUIT", SIGQUIT}, {"SEGV", SIGSEGV},     {"STKFLT", SIGSTKFLT},
      {"STOP", SIGSTOP}, {"SYS", SIGSYS},   {"TERM", SIGTERM},     {"TRAP", SIGTRAP},
      {"TSTP", SIGTSTP}, {"TTIN", SIGTTIN}, {"TTOU", SIGTTOU},     {"URG", SIGURG},
      {"USR1", SIGUSR1}, {"USR2", SIGUSR2}, {"VTALRM", SIGVTALRM}, {"WINCH", SIGWINCH},
      {"XCPU", SIGXCPU}, {"XFSZ", SIGXFSZ},
  };
  int number = 0;
  if (absl::SimpleAtoi(name, &number)) {
    return number > 0 && number < NSIG ? number : 0;
  }
  absl::string_view n = name;
  absl::ConsumePrefix(&n, "SIGNAL_");
  absl::ConsumePrefix(&n, "SIG");
  for (const auto& [sig_name, value] : kSignals) {
    if (n == sig_name) {
      return value;
    }
  }
  int offset = 0;
  if (absl::ConsumePrefix(&n, "RTMIN")) {
    if (n.empty()) {
      return SIGRTMIN;
    }
    if (absl::ConsumePrefix(&n, "+") && absl::SimpleAtoi(n, &offset) &&
        SIGRTMIN + offset <= SIGRTMAX) {
      return SIGRTMIN + offset;
    }
  } else if (absl::ConsumePrefix(&n, "RTMAX")) {
    if (n.empty()) {
      return SIGRTMAX;
    }
    if (absl::ConsumePrefix(&n, "-") && absl::SimpleAtoi(n, &offset) &&
        SIGRTMAX - offset >= SIGRTMIN) {
      return SIGRTMAX - offset;
    }
  }
  return 0;
}

v1::ContainerState CriState(ContainerRecord::State state) {
  switch (state) {
    case ContainerRecord::CREATED:
      return v1::CONTAINER_CREATED;
    case ContainerRecord::RUNNING:
      return v1::CONTAINER_RUNNING;
    case ContainerRecord::EXITED:
      return v1::CONTAINER_EXITED;
    default:
      return v1::CONTAINER_UNKNOWN;
  }
}

// ---------------------------------------------------------------------------
// Construction and destruction.

absl::StatusOr<std::unique_ptr<ContainerManager>> ContainerManager::Create(
    ContainerOptions options, Store* store, sandbox::SandboxManager* sandboxes,
    ImageStore* images) {
  CRID_RETURN_IF_ERROR(MakeDirs(options.root_dir, 0711));
  CRID_RETURN_IF_ERROR(MakeDirs(options.shim_dir, 0711));
  std::unique_ptr<ContainerManager> m(
      new ContainerManager(std::move(options), store, sandboxes, images));
  m->pool_ = std::make_unique<WorkerPool>(m->options_.workers, m->options_.max_queued);
  m->features_ =
      ProbeHandlerFeatures(m->options_.handlers, m->options_.root_dir + "/.features-probe");
  ContainerManager* raw_manager = m.get();
  ShimEventLoop::Handlers handlers;
  handlers.on_message = [raw_manager](const std::string& pod_id, const shim::Response& message) {
    raw_manager->OnShimMessage(pod_id, message);
  };
  handlers.on_closed = [raw_manager](const std::string& pod_id) {
    raw_manager->OnShimStreamClosed(pod_id);
  };
  m->events_ = std::make_unique<ShimEventLoop>(std::move(handlers));
  m->stop_timer_ = std::thread([raw_manager] { raw_manager->RunStopTimer(); });
  CRID_RETURN_IF_ERROR(m->Recover());
  if (images != nullptr) {
    ContainerManager* raw = m.get();
    images->SetLayersInUse([raw] { return raw->LayersInUse(); });
  }
  if (sandboxes != nullptr) {
    // Each new pod's crid-shim is spawned as soon as the pod's record is
    // committed and starts while the pod's namespaces and network are made;
    // its first CreateContainer then finds it listening instead of spawning
    // it (a hook the sandbox manager calls: this manager sits above it). A
    // crash in between leaves a shim whose pod recovery removes, and
    // Recover() stops such shims. When the pod is READY the shim is taken
    // over as ShimFor takes over one that answers: placed in the pod's
    // cgroup, which exists only then, and subscribed to (BeginPodShim).
    sandboxes->SetPodStartHook(
        [raw_manager](const std::string& pod_id, const std::string& /*cgroup_parent*/) {
          return raw_manager->BeginPodShim(pod_id);
        });
  }
  return m;
}

ContainerManager::~ContainerManager() {
  if (images_ != nullptr) {
    images_->SetLayersInUse(nullptr);
  }
  if (sandboxes_ != nullptr) {
    sandboxes_->SetPodStartHook(nullptr);
  }
  // No event handler runs from here on; the shims keep running.
  events_.reset();
  {
    absl::MutexLock lock(&mu_);
    shutting_down_ = true;
    stops_changed_.Signal();
  }
  stop_timer_.join();
  std::vector<std::string> waiting;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [id, pending] : stops_) {
      waiting.push_back(id);
    }
  }
  for (const std::string& id : waiting) {
    FinishStops(id, absl::UnavailableError("crid is shutting down"));
  }
}

// ---------------------------------------------------------------------------
// Runtime handlers.

absl::StatusOr<const OciRuntimeConfig*> ContainerManager::Handler(const std::string& name) const {
  const std::string& key = name.empty() ? options_.default_handler : name;
  auto it = options_.handlers.find(key);
  if (it == options_.handlers.end()) {
    return absl::InvalidArgumentError(
        absl::StrCat("runtime_handler: no runtime handler \"", key,
                     "\" is configured (known: ", absl::StrJoin(HandlerNames(), ", "), ")"));
  }
  if (::access(it->second.binary.c_str(), X_OK) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("runtime handler \"", key, "\": ", it->second.binary,
                     " cannot be executed: ", std::strerror(errno)));
  }
  return &it->second;
}

HandlerFeatures ContainerManager::Features(const std::string& handler) const {
  auto it = features_.find(handler.empty() ? options_.default_handler : handler);
  return it == features_.end() ? HandlerFeatures{} : it->second;
}

std::vector<std::string> ContainerManager::HandlerNames() const {
  std::vector<std::string> names;
  for (const auto& [name, config] : options_.handlers) {
    names.push_back(name);
  }
  return names;
}

// ---------------------------------------------------------------------------
// Records and the observer.

void ContainerManager::SetObserver(ContainerObserver observer) {
  absl::MutexLock lock(&events_mu_);
  observer_ = std::move(observer);
}

void ContainerManager::Notify(const ContainerRecord& record, ContainerEventKind kind) const {
  if (observer_) {
    observer_(record, kind);
  }
}

absl::Status ContainerManager::Persist(const ContainerRecord& record) {
  return store_->Put(kContainerBucket, record.id(), record.SerializeAsString());
}

void ContainerManager::Publish(const ContainerRecord& record) {
  auto snapshot = std::make_shared<const ContainerRecord>(record);
  absl::MutexLock lock(&mu_);
  containers_[record.id()] = std::move(snapshot);
}

std::shared_ptr<absl::Mutex> ContainerManager::OpLock(const std::string& id) {
  absl::MutexLock lock(&mu_);
  auto& l = op_locks_[id];
  if (!l) {
    l = std::make_shared<absl::Mutex>();
  }
  return l;
}

}  // namespace crid::container
