#include "container/manager.h"

#include <dirent.h>
#include <signal.h>
#include <sys/random.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <optional>
#include <thread>
#include <utility>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "base/errors.h"
#include "base/fs.h"
#include "base/logging.h"
#include "container/checkpoint.h"
#include "container/image_volume.h"
#include "container/oci_spec.h"
#include "container/rootfs.h"
#include "nlohmann/json.hpp"
#include "spdlog/spdlog.h"

namespace crid::container {

namespace {

namespace v1 = ::runtime::v1;
using json = nlohmann::json;

// After SIGKILL, how long a container may take to be reaped.
constexpr absl::Duration kKillWait = absl::Seconds(30);

std::string NewContainerId() {
  unsigned char bytes[32];
  size_t got = 0;
  while (got < sizeof(bytes)) {
    ssize_t n = ::getrandom(bytes + got, sizeof(bytes) - got, 0);
    if (n > 0) {
      got += static_cast<size_t>(n);
    }
  }
  static const char kHex[] = "0123456789abcdef";
  std::string id;
  for (unsigned char b : bytes) {
    id.push_back(kHex[b >> 4]);
    id.push_back(kHex[b & 0xf]);
  }
  return id;
}

// Entry names of a directory ("." and ".." left out).
absl::StatusOr<std::vector<std::string>> ListDir(const std::string& path) {
  DIR* dir = ::opendir(path.c_str());
  if (dir == nullptr) {
    return ErrnoError(errno, "opendir ", path);
  }
  std::vector<std::string> names;
  while (struct dirent* entry = ::readdir(dir)) {
    std::string name = entry->d_name;
    if (name != "." && name != "..") {
      names.push_back(std::move(name));
    }
  }
  ::closedir(dir);
  return names;
}

int64_t NowNs() { return absl::ToUnixNanos(absl::Now()); }

std::vector<std::string> JsonStrings(const json& j, const char* key) {
  std::vector<std::string> out;
  auto it = j.find(key);
  if (it != j.end() && it->is_array()) {
    for (const json& v : *it) {
      if (v.is_string()) {
        out.push_back(v.get<std::string>());
      }
    }
  }
  return out;
}

std::string JsonString(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

// The parts of an image config (its "config" object) that shape a container.
struct ImageSettings {
  ImageProcessConfig process;
  std::string stop_signal;
};

absl::StatusOr<ImageSettings> ParseImageConfig(const std::string& text) {
  json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!doc.is_object()) {
    return absl::DataLossError("the image config is not a JSON object");
  }
  ImageSettings out;
  auto it = doc.find("config");
  if (it == doc.end() || !it->is_object()) {
    return out;
  }
  const json& c = *it;
  out.process.entrypoint = JsonStrings(c, "Entrypoint");
  out.process.cmd = JsonStrings(c, "Cmd");
  out.process.env = JsonStrings(c, "Env");
  out.process.working_dir = JsonString(c, "WorkingDir");
  out.process.user = JsonString(c, "User");
  out.stop_signal = JsonString(c, "StopSignal");
  return out;
}

bool LabelsMatch(const google::protobuf::Map<std::string, std::string>& labels,
                 const google::protobuf::Map<std::string, std::string>& selector) {
  for (const auto& [key, value] : selector) {
    auto it = labels.find(key);
    if (it == labels.end() || it->second != value) {
      return false;
    }
  }
  return true;
}

std::string ShortId(const std::string& id) { return id.substr(0, 12); }

// The reason kubelet shows for an exit.
std::string ExitReason(const shim::ContainerState& state) {
  if (state.oom_killed()) {
    return "OOMKilled";
  }
  return state.exit_code() == 0 ? "Completed" : "Error";
}

int MinOomScoreAdj() {
  absl::StatusOr<std::string> text = ReadFile("/proc/self/oom_score_adj");
  int value = 0;
  if (text.ok() && absl::SimpleAtoi(absl::StripAsciiWhitespace(*text), &value)) {
    return value;
  }
  return 0;
}

// The image name ContainerStatus reports. kubelet creates containers by image
// ID and passes the name from the pod spec as user_specified_image: that name
// is reported, as users (and kubelet's pod status) expect. Without it, an image
// named by its ID is reported by its first tag, as containerd does; any other
// name as it was given.
std::string DisplayImageName(const v1::ImageSpec& spec, const image::ImageRecord& image) {
  if (!spec.user_specified_image().empty()) {
    return spec.user_specified_image();
  }
  const std::string& given = spec.image();
  const bool by_id = given == image.id() || absl::StrCat("sha256:", given) == image.id();
  if (by_id && !image.repo_tags().empty()) {
    return image.repo_tags(0);
  }
  return given;
}

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
// Start-up and recovery.

absl::StatusOr<std::unique_ptr<ContainerManager>> ContainerManager::Create(
    ContainerOptions options, Store* store, sandbox::SandboxManager* sandboxes,
    ImageStore* images) {
  CRID_RETURN_IF_ERROR(MakeDirs(options.root_dir, 0711));
  CRID_RETURN_IF_ERROR(MakeDirs(options.shim_dir, 0711));
  std::unique_ptr<ContainerManager> m(
      new ContainerManager(std::move(options), store, sandboxes, images));
  m->pool_ = std::make_unique<sandbox::WorkerPool>(m->options_.workers, m->options_.max_queued);
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
  return m;
}

ContainerManager::~ContainerManager() {
  if (images_ != nullptr) {
    images_->SetLayersInUse(nullptr);
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

absl::Status ContainerManager::Recover() {
  CRID_ASSIGN_OR_RETURN(auto entries, store_->List(kContainerBucket));
  std::map<std::string, std::vector<ContainerRecord>> by_pod;
  std::set<std::string> known_dirs;
  for (const auto& [key, value] : entries) {
    ContainerRecord record;
    if (!record.ParseFromString(value)) {
      spdlog::error("container record {} is unreadable; dropping it", key);
      (void)store_->Delete(kContainerBucket, key);
      continue;
    }
    known_dirs.insert(record.id());
    by_pod[record.pod_id()].push_back(std::move(record));
  }
  for (auto& [pod_id, records] : by_pod) {
    std::shared_ptr<shim::ShimClient> client;
    absl::StatusOr<std::unique_ptr<shim::ShimClient>> connected =
        shim::ShimClient::Connect(ShimDir(pod_id));
    std::map<std::string, shim::ContainerState> states;
    if (connected.ok()) {
      client = std::move(*connected);
      // Subscribed before the states are read: an exit after the read still
      // arrives as an event.
      Subscribe(pod_id, client.get());
      absl::StatusOr<std::vector<shim::ContainerState>> list = client->List();
      if (list.ok()) {
        for (shim::ContainerState& s : *list) {
          states[s.id()] = std::move(s);
        }
      }
      absl::MutexLock lock(&mu_);
      shims_[pod_id] = client;
    }
    for (ContainerRecord& record : records) {
      if (record.state() == ContainerRecord::CREATING) {
        spdlog::warn("container {}: creation was cut short; removing what it made",
                     ShortId(record.id()));
        if (absl::Status st = Destroy(record); !st.ok()) {
          spdlog::error("container {}: cleanup failed: {}", ShortId(record.id()), st.message());
        }
        continue;
      }
      Publish(record);
      if (record.state() == ContainerRecord::EXITED) {
        continue;
      }
      auto it = states.find(record.id());
      if (it == states.end() && !client) {
        // The shim is gone; it may have recorded the exit before it went.
        absl::StatusOr<shim::ContainerState> recorded =
            shim::ShimClient::ReadExitRecord(ShimDir(pod_id), record.id());
        if (recorded.ok()) {
          it = states.emplace(record.id(), *recorded).first;
        }
      }
      if (it == states.end() && record.state() == ContainerRecord::CREATED &&
          !record.restore_dir().empty()) {
        continue;  // restored from its checkpoint by StartContainer; nothing runs yet
      }
      if (it == states.end()) {
        shim::ContainerState lost;
        lost.set_id(record.id());
        lost.set_status(shim::ContainerState::EXITED);
        lost.set_exit_code(255);
        lost.set_finished_at_ns(NowNs());
        std::string message = "the pod's shim no longer knows the container";
        if (!client) {
          // Its shim died while crid was down: nothing watches it any more.
          message = "the pod's crid-shim exited unexpectedly; crid killed the container";
          absl::StatusOr<const OciRuntimeConfig*> handler = Handler(record.runtime_handler());
          absl::Status killed =
              handler.ok() ? OciRuntime(**handler).Delete(record.id(), true) : handler.status();
          if (!killed.ok()) {
            message = absl::StrCat(
                "the pod's crid-shim exited unexpectedly; killing the "
                "container failed: ",
                killed.message());
          }
        }
        RecordExit(record.id(), lost, client ? "Unknown" : "ShimExited", message);
        continue;
      }
      if (it->second.status() == shim::ContainerState::EXITED) {
        RecordExit(record.id(), it->second);
      } else if (it->second.status() == shim::ContainerState::RUNNING &&
                 record.state() == ContainerRecord::CREATED) {
        // crid died between the runtime's start and the record: it runs.
        record.set_state(ContainerRecord::RUNNING);
        record.set_started_at_ns(it->second.started_at_ns());
        (void)Persist(record);
        Publish(record);
      }
    }
  }
  // Directories no record owns were left by a crash before the first persist.
  absl::StatusOr<std::vector<std::string>> dirs = ListDir(options_.root_dir);
  if (dirs.ok()) {
    for (const std::string& name : *dirs) {
      if (known_dirs.count(name) == 0) {
        std::string dir = absl::StrCat(options_.root_dir, "/", name);
        spdlog::warn("removing leftover container directory {}", dir);
        (void)RemoveOverlayRootfs(dir);
        (void)RemoveTree(dir);
      }
    }
  }
  // Shims whose pod is gone (removed while a crash interrupted the teardown).
  absl::StatusOr<std::vector<std::string>> shim_dirs = ListDir(options_.shim_dir);
  if (shim_dirs.ok() && sandboxes_ != nullptr) {
    for (const std::string& pod_id : *shim_dirs) {
      if (sandboxes_->Get(pod_id).ok()) {
        continue;
      }
      std::string dir = ShimDir(pod_id);
      absl::StatusOr<std::unique_ptr<shim::ShimClient>> orphan = shim::ShimClient::Connect(dir);
      if (orphan.ok()) {
        (void)(*orphan)->Shutdown();
      }
      (void)RemoveTree(dir);
      absl::MutexLock lock(&mu_);
      shims_.erase(pod_id);
    }
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// Helpers.

std::string ContainerManager::ShimDir(const std::string& pod_id) const {
  // Half the ID keeps DIR/shim.sock within the 108 bytes of a socket address.
  return absl::StrCat(options_.shim_dir, "/", pod_id.substr(0, 32));
}

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

size_t ContainerManager::ShimCount() const {
  absl::MutexLock lock(&mu_);
  return shims_.size();
}

absl::StatusOr<std::shared_ptr<shim::ShimClient>> ContainerManager::ShimFor(
    const std::string& pod_id, bool launch) {
  {
    absl::MutexLock lock(&mu_);
    auto it = shims_.find(pod_id);
    if (it != shims_.end()) {
      return it->second;
    }
  }
  if (!launch) {
    return absl::NotFoundError(absl::StrCat("pod ", pod_id, " has no shim"));
  }
  std::shared_ptr<absl::Mutex> launch_mu;
  {
    absl::MutexLock lock(&mu_);
    std::shared_ptr<absl::Mutex>& slot = shim_launch_locks_[pod_id];
    if (slot == nullptr) {
      slot = std::make_shared<absl::Mutex>();
    }
    launch_mu = slot;
  }
  absl::MutexLock launch_lock(launch_mu.get());
  {
    absl::MutexLock lock(&mu_);
    auto it = shims_.find(pod_id);
    if (it != shims_.end()) {
      return it->second;
    }
  }
  shim::LaunchOptions launch_options;
  launch_options.binary = options_.shim_binary;
  launch_options.pod_id = pod_id;
  launch_options.dir = ShimDir(pod_id);
  absl::StatusOr<std::unique_ptr<shim::ShimClient>> client =
      shim::ShimClient::Launch(launch_options);
  if (!client.ok()) {
    return Annotate(client.status(), absl::StrCat("starting crid-shim for pod ", pod_id));
  }
  std::shared_ptr<shim::ShimClient> shared = std::move(*client);
  // The shim works for the pod: it goes into the pod's cgroup, as kubelet
  // accounts pod overhead. A shim that cannot be placed is not used.
  if (std::string parent = PodCgroupParent(pod_id); !parent.empty()) {
    CgroupManager* cgroups = cgroups_.load();
    absl::StatusOr<std::string> placed = cgroups->PlaceProcess(
        sandbox::ShimCgroupName(pod_id), parent, shared->pid(), CgroupResources());
    if (!placed.ok()) {
      (void)shared->Shutdown();
      return Annotate(placed.status(), "placing crid-shim in the pod's cgroup");
    }
  }
  Subscribe(pod_id, shared.get());
  bool restart = false;
  {
    absl::MutexLock lock(&mu_);
    shims_[pod_id] = shared;
    restart = dead_shim_pods_.erase(pod_id) > 0;
  }
  if (metrics::ShimMetrics* metrics = shim_metrics_.load(); metrics != nullptr) {
    metrics->RecordLaunch(restart);
  }
  return shared;
}

void ContainerManager::Subscribe(const std::string& pod_id, shim::ShimClient* client) {
  absl::StatusOr<UniqueFd> stream = client->Subscribe();
  if (!stream.ok()) {
    // Exits are then only seen by Stop and after a restart.
    spdlog::error("pod {}: cannot subscribe to its shim's events: {}", ShortId(pod_id),
                  stream.status().message());
    return;
  }
  events_->Watch(pod_id, std::move(*stream));
}

void ContainerManager::OnShimMessage(const std::string& pod_id, const shim::Response& message) {
  auto take = [this](const shim::ContainerState& state) {
    if (state.status() == shim::ContainerState::EXITED) {
      RecordExit(state.id(), state);
    }
  };
  if (message.has_event()) {
    take(message.event().state());
  } else if (message.has_states()) {
    for (const shim::ContainerState& state : message.states().containers()) {
      take(state);
    }
  }
}

void ContainerManager::OnShimStreamClosed(const std::string& pod_id) {
  // Checking the shim and killing what it ran take runtime calls: not on the
  // event thread.
  if (!pool_->Submit([this, pod_id] { HandleShimDeath(pod_id); })) {
    HandleShimDeath(pod_id);
  }
}

void ContainerManager::HandleShimDeath(const std::string& pod_id) {
  std::shared_ptr<shim::ShimClient> client;
  {
    absl::MutexLock lock(&mu_);
    auto it = shims_.find(pod_id);
    if (it == shims_.end()) {
      return;  // the pod was removed
    }
    client = it->second;
  }
  if (client->Ping().ok()) {
    // The shim lives; only its stream broke.
    Subscribe(pod_id, client.get());
    return;
  }
  {
    absl::MutexLock lock(&mu_);
    auto it = shims_.find(pod_id);
    if (it != shims_.end() && it->second == client) {
      shims_.erase(it);
      dead_shim_pods_.insert(pod_id);
    }
  }
  runtime::v1::ContainerFilter filter;
  filter.set_pod_sandbox_id(pod_id);
  std::vector<RecordSnapshot> containers = List(filter);
  bool ran_something = std::any_of(containers.begin(), containers.end(), [&](const auto& c) {
    return c->pod_id() == pod_id && c->state() != ContainerRecord::EXITED;
  });
  if (ran_something) {
    spdlog::error("pod {}: its crid-shim (pid {}) is gone; killing the containers it ran",
                  ShortId(pod_id), client->pid());
    if (metrics::ShimMetrics* metrics = shim_metrics_.load(); metrics != nullptr) {
      metrics->RecordUnexpectedExit();
    }
  } else {
    // kubelet kills every process of a finished pod's cgroup, the shim's
    // included, before it removes the containers: nothing is lost.
    spdlog::info("pod {}: its crid-shim (pid {}) exited after its containers", ShortId(pod_id),
                 client->pid());
  }
  for (const RecordSnapshot& listed : containers) {
    if (listed->pod_id() != pod_id) {
      continue;
    }
    std::shared_ptr<absl::Mutex> op = OpLock(listed->id());
    absl::MutexLock op_lock(op.get());
    absl::StatusOr<ContainerRecord> record = Get(listed->id());
    if (!record.ok()) {
      continue;
    }
    if (record->state() == ContainerRecord::EXITED) {
      // Its runtime state would have gone with the shim's Delete; a new shim
      // for the pod does not know it.
      if (absl::StatusOr<const OciRuntimeConfig*> handler = Handler(record->runtime_handler());
          handler.ok()) {
        (void)OciRuntime(**handler).Delete(record->id(), /*force=*/true);
      }
      continue;
    }
    // An exit the shim saw before it went is in its exit records.
    absl::StatusOr<shim::ContainerState> recorded =
        shim::ShimClient::ReadExitRecord(ShimDir(pod_id), record->id());
    if (recorded.ok()) {
      RecordExit(record->id(), *recorded);
      continue;
    }
    // Nobody holds its stdio or would see it exit: it is killed, with its
    // runtime state, as a shim's cleanup does.
    absl::StatusOr<const OciRuntimeConfig*> handler = Handler(record->runtime_handler());
    std::string outcome = "crid killed it";
    if (handler.ok()) {
      if (absl::Status st = OciRuntime(**handler).Delete(record->id(), /*force=*/true); !st.ok()) {
        outcome = absl::StrCat("killing it failed: ", st.message());
        spdlog::error("container {}: {}", ShortId(record->id()), outcome);
      }
    } else {
      outcome = absl::StrCat("it could not be killed: ", handler.status().message());
    }
    shim::ContainerState lost;
    lost.set_id(record->id());
    lost.set_status(shim::ContainerState::EXITED);
    lost.set_exit_code(137);
    lost.set_finished_at_ns(NowNs());
    RecordExit(record->id(), lost, "ShimExited",
               absl::StrCat("the pod's crid-shim exited unexpectedly; ", outcome));
  }
}

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

void ContainerManager::RecordExit(const std::string& id, const shim::ContainerState& state,
                                  const std::string& reason, const std::string& message) {
  ContainerRecord exited;
  bool start_unreported = false;
  absl::ReleasableMutexLock events_lock(&events_mu_);
  {
    absl::MutexLock lock(&mu_);
    auto it = containers_.find(id);
    if (it == containers_.end() || it->second->state() == ContainerRecord::EXITED) {
      return;
    }
    ContainerRecord r = *it->second;
    // An exit that overtook its StartContainer: subscribers see the start first.
    start_unreported = r.state() == ContainerRecord::CREATED && state.started_at_ns() != 0;
    r.set_state(ContainerRecord::EXITED);
    r.set_exit_code(state.exit_code());
    r.set_finished_at_ns(state.finished_at_ns() != 0 ? state.finished_at_ns() : NowNs());
    if (r.started_at_ns() == 0 && state.started_at_ns() != 0) {
      r.set_started_at_ns(state.started_at_ns());
    }
    if (!reason.empty()) {
      r.set_reason(reason);
      r.set_message(message);
    } else if (r.reason().empty()) {
      r.set_reason(ExitReason(state));
    }
    if (absl::Status st = Persist(r); !st.ok()) {
      spdlog::error("container {}: persisting its exit: {}", ShortId(id), st.message());
    }
    spdlog::info("container {} exited with code {} ({})", ShortId(id), r.exit_code(), r.reason());
    it->second = std::make_shared<const ContainerRecord>(r);
    exited = std::move(r);
  }
  if (start_unreported) {
    Notify(exited, ContainerEventKind::kStarted);
  }
  Notify(exited, ContainerEventKind::kStopped);
  events_lock.Release();
  FinishStops(id, absl::OkStatus());
}

absl::Status ContainerManager::Destroy(const ContainerRecord& record) {
  absl::StatusOr<std::shared_ptr<shim::ShimClient>> client = ShimFor(record.pod_id(), false);
  // The shim deletes what it runs (and answers OK for what it does not know).
  absl::Status deleted = client.ok() ? (*client)->Delete(record.id()) : client.status();
  if (!deleted.ok()) {
    // No shim to ask (gone, or killed with the pod's cgroup by kubelet before
    // it removes the containers): the runtime's state goes without it.
    absl::StatusOr<const OciRuntimeConfig*> handler = Handler(record.runtime_handler());
    if (!handler.ok()) {
      return Annotate(handler.status(), absl::StrCat("deleting container ", record.id()));
    }
    if (absl::Status st = OciRuntime(**handler).Delete(record.id(), /*force=*/true); !st.ok()) {
      return Annotate(st, absl::StrCat("deleting container ", record.id()));
    }
  }
  if (!record.dir().empty()) {
    // Image volumes first: removing the directory must never reach into them.
    CRID_RETURN_IF_ERROR(RemoveImageVolumes(record.dir()));
    CRID_RETURN_IF_ERROR(RemoveOverlayRootfs(record.dir()));
    CRID_RETURN_IF_ERROR(RemoveTree(record.dir()));
  }
  CRID_RETURN_IF_ERROR(store_->Delete(kContainerBucket, record.id()));
  bool was_published = false;
  absl::ReleasableMutexLock events_lock(&events_mu_);
  {
    absl::MutexLock lock(&mu_);
    was_published = containers_.erase(record.id()) != 0;
    op_locks_.erase(record.id());
    for (auto it = creates_.begin(); it != creates_.end();) {
      if (it->second->done.HasBeenNotified() && it->second->result.ok() &&
          *it->second->result == record.id()) {
        it = creates_.erase(it);
      } else {
        ++it;
      }
    }
  }
  if (was_published) {
    Notify(record, ContainerEventKind::kDeleted);
  }
  events_lock.Release();
  FinishStops(record.id(), absl::OkStatus());
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// Create.

absl::StatusOr<std::string> ContainerManager::Create(const std::string& pod_id,
                                                     const v1::ContainerConfig& config,
                                                     const v1::PodSandboxConfig& sandbox_config) {
  CRID_ASSIGN_OR_RETURN(sandbox::SandboxRecord pod, sandboxes_->Get(pod_id));
  const std::string key = ContainerKey(config.metadata(), pod.config().metadata());
  std::shared_ptr<InFlight> flight;
  bool owner = false;
  {
    absl::MutexLock lock(&mu_);
    auto it = creates_.find(key);
    if (it != creates_.end()) {
      flight = it->second;
    } else {
      flight = std::make_shared<InFlight>();
      creates_[key] = flight;
      owner = true;
    }
  }
  if (!owner) {
    flight->done.WaitForNotification();
    if (flight->result.ok()) {
      absl::MutexLock lock(&mu_);
      if (containers_.count(*flight->result) != 0) {
        return flight->result;
      }
    }
    return flight->result.status().ok()
               ? absl::StatusOr<std::string>(absl::AlreadyExistsError(
                     absl::StrCat("container name \"", key, "\" is being reused; retry")))
               : flight->result;
  }
  // CRI-O's restore: the image names a checkpoint archive (checkpoint_container.cc).
  absl::StatusOr<RestoreSource> restore = RestoreSource{};
  if (IsCheckpointArchive(config.image().image())) {
    restore = PrepareRestore(config);
  }
  const bool restoring = restore.ok() && !restore->dir.empty();
  absl::StatusOr<std::string> result =
      !restore.ok() ? absl::StatusOr<std::string>(restore.status())
                    : CreateLocked(pod.id(), restoring ? restore->config : config, sandbox_config,
                                   restoring ? &*restore : nullptr);
  if (restoring) {
    (void)RemoveTree(restore->dir);  // adopted by the container, or not needed any more
  }
  flight->result = result;
  flight->done.Notify();
  if (!result.ok()) {
    absl::MutexLock lock(&mu_);
    auto it = creates_.find(key);
    if (it != creates_.end() && it->second == flight) {
      creates_.erase(it);
    }
  }
  return result;
}

absl::StatusOr<std::string> ContainerManager::CreateLocked(
    const std::string& pod_id, const v1::ContainerConfig& config,
    const v1::PodSandboxConfig& sandbox_config, const RestoreSource* restore) {
  // A container's writable layer and logs grow; a full disk keeps its last
  // room for removals.
  CRID_RETURN_IF_ERROR(store_->CheckRoom("create a container"));
  CRID_ASSIGN_OR_RETURN(sandbox::SandboxRecord pod, sandboxes_->Get(pod_id));
  if (pod.state() != sandbox::SandboxRecord::READY) {
    return absl::FailedPreconditionError(
        absl::StrCat("pod_sandbox_id: pod sandbox ", pod_id, " is not ready"));
  }
  CRID_ASSIGN_OR_RETURN(const OciRuntimeConfig* runtime, Handler(pod.runtime_handler()));
  const std::string& image_name = config.image().image();
  // The lease keeps the image's layers on disk until this container is
  // published, from when LayersInUse reports them.
  absl::StatusOr<std::pair<image::ImageRecord, ImageLease>> leased = images_->Acquire(image_name);
  if (!leased.ok()) {
    if (leased.status().code() == absl::StatusCode::kNotFound) {
      return absl::NotFoundError(
          absl::StrCat("image.image: image \"", image_name, "\" is not present; pull it first"));
    }
    return leased.status();
  }
  const image::ImageRecord* image = &leased->first;
  CRID_ASSIGN_OR_RETURN(std::string image_config_text, images_->ConfigJson(image->id()));
  CRID_ASSIGN_OR_RETURN(ImageSettings image_settings, ParseImageConfig(image_config_text));

  const std::string id = NewContainerId();
  ContainerRecord record;
  record.set_id(id);
  record.set_pod_id(pod_id);
  *record.mutable_config() = config;
  record.set_state(ContainerRecord::CREATING);
  record.set_created_at_ns(NowNs());
  record.set_image_name(DisplayImageName(config.image(), *image));
  record.set_image_id(image->id());
  record.set_image_ref(image->repo_digests().empty() ? image->id() : image->repo_digests(0));
  for (const std::string& chain : image->chain_ids()) {
    record.add_chain_ids(chain);
  }
  record.set_dir(absl::StrCat(options_.root_dir, "/", id));
  record.set_runtime_handler(runtime->name);
  int stop_signal = 0;
  if (config.stop_signal() != v1::SIGNAL_RUNTIME_DEFAULT) {
    stop_signal = SignalNumber(v1::Signal_Name(config.stop_signal()));
  } else if (!image_settings.stop_signal.empty()) {
    stop_signal = SignalNumber(image_settings.stop_signal);
    if (stop_signal == 0) {
      spdlog::warn("image {}: unknown StopSignal \"{}\"; using SIGTERM", image_name,
                   image_settings.stop_signal);
    }
  }
  record.set_stop_signal(stop_signal != 0 ? stop_signal : SIGTERM);
  const std::string& log_dir = pod.config().log_directory();
  if (!log_dir.empty() && !config.log_path().empty()) {
    record.set_log_path(absl::StrCat(log_dir, "/", config.log_path()));
  }

  // Persisted first: a crash from here on is cleaned up on the next start.
  CRID_RETURN_IF_ERROR(Persist(record));
  bool created = false;
  absl::Cleanup undo = [&] {
    if (!created) {
      if (absl::Status st = Destroy(record); !st.ok()) {
        spdlog::error("container {}: undoing a failed create: {}", ShortId(id), st.message());
      }
    }
  };

  CRID_RETURN_IF_ERROR(MakeDirs(record.dir(), 0700));
  if (restore != nullptr) {
    CRID_RETURN_IF_ERROR(AdoptRestore(*restore, &record));
  }
  // In a pod with its own user namespace the layers are seen through
  // idmapped mounts, so the image's files are the pod's root's.
  OverlayOptions overlay;
  if (!pod.userns_path().empty()) {
    if (!Features(pod.runtime_handler()).user_namespaces) {
      return absl::FailedPreconditionError(absl::StrCat(
          "pod sandbox ", pod_id, " has a user namespace, but runtime handler \"", runtime->name,
          "\" cannot give a container one here (no idmapped overlay layers)"));
    }
    const v1::UserNamespace& userns =
        pod.config().linux().security_context().namespace_options().userns_options();
    overlay.userns_path = pod.userns_path();
    overlay.host_uid = userns.uids(0).host_id();
    overlay.host_gid = userns.gids(0).host_id();
  }
  CRID_ASSIGN_OR_RETURN(
      OverlayRootfs rootfs,
      MountOverlayRootfs(record.dir(), ImageStore::LowerDirs(*images_, *image), overlay));

  // Image volumes: mounted now, bound into the container by the spec.
  std::vector<ImageLease> volume_leases;
  v1::ContainerConfig with_volumes;
  CRID_ASSIGN_OR_RETURN(const v1::ContainerConfig* spec_config,
                        MountImageVolumes(config, &record, &with_volumes, &volume_leases));

  SandboxSpecInfo info;
  info.id = pod.id();
  info.name = pod.config().metadata().name();
  info.namespace_ = pod.config().metadata().namespace_();
  info.uid = pod.config().metadata().uid();
  info.netns_path = pod.netns_path();
  info.ipc_ns_path = pod.ipc_ns_path();
  info.uts_ns_path = pod.uts_ns_path();
  info.userns_path = pod.userns_path();
  if (pod.pause_pid() > 0) {
    info.pid_ns_path = absl::StrCat("/proc/", pod.pause_pid(), "/ns/pid");
  }
  if (!pod.pod_dir().empty()) {
    info.hostname_file = pod.pod_dir() + "/hostname";
    info.hosts_file = pod.pod_dir() + "/hosts";
    info.resolv_conf_file = pod.pod_dir() + "/resolv.conf";
  }
  info.shm_path = pod.shm_path();
  info.cgroup_parent = pod.config().linux().cgroup_parent();
  info.linux = pod.config().linux();
  (void)sandbox_config;

  SpecOptions spec_options;
  spec_options.container_id = id;
  spec_options.rootfs = rootfs.rootfs;
  spec_options.image_name = image_name;
  spec_options.cgroup_driver = options_.cgroup_driver;
  spec_options.min_oom_score_adj = MinOomScoreAdj();
  spec_options.recursive_read_only_mounts =
      Features(pod.runtime_handler()).recursive_read_only_mounts;
  spec_options.apparmor = DetectAppArmor();
  const v1::NamespaceOption& ns = config.linux().security_context().namespace_options();
  if (ns.pid() == v1::TARGET) {
    absl::StatusOr<ContainerRecord> target = Get(ns.target_id());
    if (target.ok() && target->pod_id() == pod_id && target->state() == ContainerRecord::RUNNING &&
        target->pid() > 0) {
      spec_options.target_pid_ns_path = absl::StrCat("/proc/", target->pid(), "/ns/pid");
    }
  }
  CRID_ASSIGN_OR_RETURN(json spec,
                        BuildOciSpec(*spec_config, image_settings.process, info, spec_options));
  const json& user = spec["process"]["user"];
  record.set_uid(user.value("uid", int64_t{0}));
  record.set_gid(user.value("gid", int64_t{0}));
  for (const json& g : user.value("additionalGids", json::array())) {
    record.add_additional_gids(g.get<int64_t>());
  }
  CRID_RETURN_IF_ERROR(WriteFileAtomic(record.dir() + "/config.json", spec.dump(), 0600));
  if (!record.log_path().empty()) {
    std::string parent = record.log_path().substr(0, record.log_path().rfind('/'));
    if (!parent.empty()) {
      CRID_RETURN_IF_ERROR(MakeDirs(parent, 0755));
    }
  }

  // A restored container gets its process from the checkpoint when it starts.
  if (restore == nullptr) {
    CRID_RETURN_IF_ERROR(CreateInShim(&record, *runtime, info.cgroup_parent, ""));
  }
  record.set_state(ContainerRecord::CREATED);
  CRID_RETURN_IF_ERROR(Persist(record));
  created = true;
  {
    // Published and reported together: a StartContainer of the new record
    // reports its start after this.
    absl::MutexLock events_lock(&events_mu_);
    Publish(record);
    Notify(record, ContainerEventKind::kCreated);
  }
  spdlog::info("container {} ({}) created in pod {}", ShortId(id), config.metadata().name(),
               ShortId(pod_id));
  return id;
}

absl::StatusOr<const v1::ContainerConfig*> ContainerManager::MountImageVolumes(
    const v1::ContainerConfig& config, ContainerRecord* record, v1::ContainerConfig* with_volumes,
    std::vector<ImageLease>* leases) {
  bool any = false;
  for (const v1::Mount& m : config.mounts()) {
    if (m.has_image() && !m.image().image().empty()) {
      CRID_RETURN_IF_ERROR(ValidateImageVolume(m));
      any = true;
    }
  }
  if (!any) {
    return &config;
  }
  *with_volumes = config;
  for (int i = 0; i < with_volumes->mounts_size(); ++i) {
    v1::Mount* m = with_volumes->mutable_mounts(i);
    if (!m->has_image() || m->image().image().empty()) {
      continue;
    }
    const std::string& name = m->image().image();
    absl::StatusOr<std::pair<image::ImageRecord, ImageLease>> leased = images_->Acquire(name);
    if (!leased.ok()) {
      if (leased.status().code() == absl::StatusCode::kNotFound) {
        return absl::NotFoundError(absl::StrCat("mounts.image: image \"", name,
                                                "\" is not present; pull it first (",
                                                m->container_path(), ")"));
      }
      return Annotate(leased.status(), "mounts.image");
    }
    const image::ImageRecord& image = leased->first;
    CRID_ASSIGN_OR_RETURN(
        std::string source,
        MountImageVolume(ImageVolumeDir(record->dir(), i), ImageStore::LowerDirs(*images_, image),
                         m->image_sub_path()));
    leases->push_back(std::move(leased->second));
    for (const std::string& chain : image.chain_ids()) {
      record->add_volume_chain_ids(chain);
    }
    // The spec binds what was mounted; ContainerStatus reports which image
    // it is (ImageSpec.image_ref, as PullImage named it).
    m->set_host_path(source);
    m->mutable_image()->set_image_ref(image.id());
    record->mutable_config()->mutable_mounts(i)->mutable_image()->set_image_ref(image.id());
  }
  return with_volumes;
}

absl::Status ContainerManager::CreateInShim(ContainerRecord* record,
                                            const OciRuntimeConfig& runtime,
                                            const std::string& cgroup_parent,
                                            const std::string& checkpoint_dir) {
  CRID_ASSIGN_OR_RETURN(std::shared_ptr<shim::ShimClient> client, ShimFor(record->pod_id(), true));
  shim::CreateRequest request;
  request.set_id(record->id());
  request.set_bundle(record->dir());
  request.mutable_runtime()->set_name(runtime.name);
  request.mutable_runtime()->set_binary(runtime.binary);
  request.mutable_runtime()->set_root(runtime.root);
  request.mutable_runtime()->set_systemd_cgroup(runtime.systemd_cgroup);
  request.set_log_path(record->log_path());
  request.set_checkpoint_dir(checkpoint_dir);
  request.set_stdin(record->config().stdin());
  request.set_stdin_once(record->config().stdin_once());
  request.set_tty(record->config().tty());
  CRID_ASSIGN_OR_RETURN(pid_t pid, client->Create(request));
  record->set_pid(pid);
  if (CgroupManager* cgroups = cgroups_.load(); cgroups != nullptr) {
    // Before the container runs anything: where systemd moved its init (see
    // KeepContainerInItsCgroups) it would not be confined by its own limits.
    absl::StatusOr<std::vector<std::string>> moved =
        cgroups->KeepContainerInItsCgroups(cgroup_parent, record->id(), pid);
    if (!moved.ok()) {
      return Annotate(moved.status(), "keeping the container's init in its cgroups");
    }
    if (!moved->empty()) {
      spdlog::info("container {}: its init was moved back into its own cgroup: {}",
                   ShortId(record->id()), absl::StrJoin(*moved, ", "));
    }
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// Start, stop, remove.

absl::Status ContainerManager::Start(const std::string& id) {
  CRID_ASSIGN_OR_RETURN(ContainerRecord record, Get(id));
  std::shared_ptr<absl::Mutex> op = OpLock(record.id());
  absl::MutexLock op_lock(op.get());
  CRID_ASSIGN_OR_RETURN(record, Get(record.id()));
  if (record.state() != ContainerRecord::CREATED) {
    return absl::FailedPreconditionError(
        absl::StrCat("container ", record.id(), " is ",
                     v1::ContainerState_Name(CriState(record.state())), ", not CONTAINER_CREATED"));
  }
  // A restored container may be the first of its pod to run: its shim is launched then.
  const bool restore = !record.restore_dir().empty();
  CRID_ASSIGN_OR_RETURN(std::shared_ptr<shim::ShimClient> client,
                        ShimFor(record.pod_id(), restore));
  if (absl::Status st = restore ? RestoreInShim(&record) : client->Start(record.id()); !st.ok()) {
    record.set_state(ContainerRecord::EXITED);
    record.set_exit_code(128);
    record.set_reason("StartError");
    record.set_message(std::string(st.message()));
    record.set_finished_at_ns(NowNs());
    (void)Persist(record);
    Publish(record);
    return st;
  }
  absl::StatusOr<shim::ContainerState> state = client->State(record.id());
  int64_t started = state.ok() && state->started_at_ns() != 0 ? state->started_at_ns() : NowNs();
  absl::MutexLock events_lock(&events_mu_);
  {
    absl::MutexLock lock(&mu_);
    auto it = containers_.find(record.id());
    // Its exit event may have come first (a container that exits at once):
    // the exit stands, and RecordExit has reported the start with it.
    bool exited = it != containers_.end() && it->second->state() == ContainerRecord::EXITED;
    if (exited) {
      record = *it->second;
    } else {
      record.set_state(ContainerRecord::RUNNING);
    }
    if (record.started_at_ns() == 0) {
      record.set_started_at_ns(started);
    }
    CRID_RETURN_IF_ERROR(Persist(record));
    containers_[record.id()] = std::make_shared<const ContainerRecord>(record);
    if (exited) {
      return absl::OkStatus();
    }
  }
  spdlog::info("container {} started", ShortId(record.id()));
  Notify(record, ContainerEventKind::kStarted);
  return absl::OkStatus();
}

void ContainerManager::StopAsync(const std::string& id, absl::Duration timeout, StopDone done) {
  absl::StatusOr<ContainerRecord> record = Get(id);
  if (!record.ok()) {
    std::move(done)(record.status());
    return;
  }
  std::shared_ptr<absl::Mutex> op = OpLock(record->id());
  absl::MutexLock op_lock(op.get());
  record = Get(record->id());
  if (!record.ok() || record->state() == ContainerRecord::EXITED) {
    std::move(done)(record.ok() ? absl::OkStatus() : record.status());
    return;
  }
  if (record->state() == ContainerRecord::CREATED && !record->restore_dir().empty()) {
    // Its restore never started: there is no process to signal.
    shim::ContainerState never;
    never.set_status(shim::ContainerState::EXITED);
    never.set_exit_code(255);
    never.set_finished_at_ns(NowNs());
    RecordExit(record->id(), never, "Error", "stopped before its restore started");
    std::move(done)(absl::OkStatus());
    return;
  }
  absl::StatusOr<std::shared_ptr<shim::ShimClient>> client = ShimFor(record->pod_id(), false);
  if (!client.ok()) {
    shim::ContainerState lost;
    lost.set_exit_code(255);
    RecordExit(record->id(), lost);
    std::move(done)(absl::OkStatus());
    return;
  }
  // A container that was never started has no stop signal handler to wait for.
  bool kill_now = timeout <= absl::ZeroDuration() || record->state() != ContainerRecord::RUNNING;
  {
    absl::MutexLock lock(&mu_);
    auto it = containers_.find(record->id());
    if (it == containers_.end() || it->second->state() == ContainerRecord::EXITED) {
      std::move(done)(absl::OkStatus());
      return;
    }
    absl::Time deadline = absl::Now() + (kill_now ? kKillWait : timeout);
    PendingStop& pending = stops_[record->id()];
    if (pending.done.empty()) {
      pending.pod_id = record->pod_id();
      pending.deadline = deadline;
      pending.killed = kill_now;
    } else if (kill_now && !pending.killed) {
      pending.killed = true;  // a later stop with less patience
      pending.deadline = deadline;
    } else if (!pending.killed) {
      pending.deadline = std::min(pending.deadline, deadline);
    }
    pending.done.push_back(std::move(done));
    stops_changed_.Signal();
  }
  absl::Status st = kill_now ? (*client)->Kill(record->id(), SIGKILL, true)
                             : (*client)->Kill(record->id(), record->stop_signal(), false);
  if (!st.ok()) {
    spdlog::debug("container {}: stop signal: {}", ShortId(record->id()), st.message());
  }
}

absl::Status ContainerManager::Stop(const std::string& id, absl::Duration timeout) {
  absl::Notification stopped;
  absl::Status result;
  StopAsync(id, timeout, [&](const absl::Status& st) {
    result = st;
    stopped.Notify();
  });
  stopped.WaitForNotification();
  return result;
}

void ContainerManager::FinishStops(const std::string& id, const absl::Status& status) {
  std::vector<StopDone> done;
  {
    absl::MutexLock lock(&mu_);
    auto it = stops_.find(id);
    if (it == stops_.end()) {
      return;
    }
    done = std::move(it->second.done);
    stops_.erase(it);
  }
  for (StopDone& d : done) {
    std::move(d)(status);
  }
}

bool ContainerManager::CheckExited(const std::string& id, const std::string& pod_id) {
  absl::StatusOr<std::shared_ptr<shim::ShimClient>> client = ShimFor(pod_id, false);
  if (!client.ok()) {
    return false;
  }
  absl::StatusOr<shim::ContainerState> state = (*client)->State(id);
  if (state.ok() && state->status() == shim::ContainerState::EXITED) {
    RecordExit(id, *state);
    return true;
  }
  return false;
}

void ContainerManager::RunStopTimer() {
  absl::MutexLock lock(&mu_);
  while (!shutting_down_) {
    absl::Time next = absl::InfiniteFuture();
    for (const auto& [id, pending] : stops_) {
      next = std::min(next, pending.deadline);
    }
    stops_changed_.WaitWithDeadline(&mu_, next);
    absl::Time now = absl::Now();
    std::vector<std::pair<std::string, std::string>> to_kill;
    std::vector<std::pair<std::string, std::string>> overdue;
    for (auto& [id, pending] : stops_) {
      if (pending.deadline > now) {
        continue;
      }
      if (!pending.killed) {
        pending.killed = true;
        pending.deadline = now + kKillWait;
        to_kill.emplace_back(id, pending.pod_id);
      } else {
        pending.deadline = absl::InfiniteFuture();  // settled below
        overdue.emplace_back(id, pending.pod_id);
      }
    }
    if (to_kill.empty() && overdue.empty()) {
      continue;
    }
    mu_.Unlock();
    for (const auto& [id, pod_id] : to_kill) {
      absl::StatusOr<std::shared_ptr<shim::ShimClient>> client = ShimFor(pod_id, false);
      if (client.ok()) {
        if (absl::Status st = (*client)->Kill(id, SIGKILL, true); !st.ok()) {
          spdlog::debug("container {}: SIGKILL: {}", ShortId(id), st.message());
        }
      }
    }
    for (const auto& [id, pod_id] : overdue) {
      if (!CheckExited(id, pod_id)) {
        FinishStops(id, absl::DeadlineExceededError(
                            absl::StrCat("container ", id, " did not exit within ",
                                         absl::FormatDuration(kKillWait), " of SIGKILL")));
      }
    }
    mu_.Lock();
  }
}

absl::Status ContainerManager::Remove(const std::string& id) {
  absl::StatusOr<ContainerRecord> found = Get(id);
  if (!found.ok()) {
    return found.status().code() == absl::StatusCode::kNotFound ? absl::OkStatus() : found.status();
  }
  if (found->state() == ContainerRecord::RUNNING || found->state() == ContainerRecord::CREATED) {
    CRID_RETURN_IF_ERROR(Stop(found->id(), absl::ZeroDuration()));
  }
  std::shared_ptr<absl::Mutex> op = OpLock(found->id());
  absl::MutexLock op_lock(op.get());
  absl::StatusOr<ContainerRecord> record = Get(found->id());
  if (!record.ok()) {
    return absl::OkStatus();
  }
  CRID_RETURN_IF_ERROR(Destroy(*record));
  spdlog::info("container {} removed", ShortId(record->id()));
  return absl::OkStatus();
}

absl::Status ContainerManager::StopPod(const std::string& pod_id) {
  runtime::v1::ContainerFilter filter;
  filter.set_pod_sandbox_id(pod_id);
  // Every container is killed at once; then the exits are awaited together.
  absl::Mutex mu;
  absl::Status first;
  size_t pending = 0;
  for (const RecordSnapshot& record : List(filter)) {
    if (record->pod_id() != pod_id || record->state() == ContainerRecord::EXITED) {
      continue;
    }
    {
      absl::MutexLock lock(&mu);
      ++pending;
    }
    StopAsync(record->id(), absl::ZeroDuration(), [&](const absl::Status& st) {
      absl::MutexLock lock(&mu);
      first.Update(st);
      --pending;
    });
  }
  absl::MutexLock lock(&mu);
  mu.Await(absl::Condition(
      +[](size_t* left) { return *left == 0; }, &pending));
  return first;
}

absl::Status ContainerManager::RemovePod(const std::string& pod_id) {
  runtime::v1::ContainerFilter filter;
  filter.set_pod_sandbox_id(pod_id);
  for (const RecordSnapshot& record : List(filter)) {
    if (record->pod_id() == pod_id) {
      CRID_RETURN_IF_ERROR(Remove(record->id()));
    }
  }
  std::shared_ptr<shim::ShimClient> client;
  {
    absl::MutexLock lock(&mu_);
    auto it = shims_.find(pod_id);
    if (it != shims_.end()) {
      client = it->second;
      shims_.erase(it);
    }
    shim_launch_locks_.erase(pod_id);
    dead_shim_pods_.erase(pod_id);
  }
  // The stream closing now is the shutdown, not a death.
  events_->Unwatch(pod_id);
  std::string dir = ShimDir(pod_id);
  if (!client) {
    absl::StatusOr<std::unique_ptr<shim::ShimClient>> c = shim::ShimClient::Connect(dir);
    if (c.ok()) {
      client = std::move(*c);
    }
  }
  if (client) {
    CRID_RETURN_IF_ERROR(client->Shutdown());
  }
  if (std::string parent = PodCgroupParent(pod_id); !parent.empty()) {
    CRID_RETURN_IF_ERROR(
        Annotate(cgroups_.load()->RemoveCgroup(sandbox::ShimCgroupName(pod_id), parent),
                 "removing crid-shim's cgroup"));
  }
  return RemoveTree(dir);
}

std::string ContainerManager::PodCgroupParent(const std::string& pod_id) const {
  if (cgroups_.load() == nullptr) {
    return "";
  }
  absl::StatusOr<sandbox::SandboxRecord> pod = sandboxes_->Get(pod_id);
  return pod.ok() ? pod->config().linux().cgroup_parent() : "";
}

// ---------------------------------------------------------------------------
// Exec, update, logs.

absl::StatusOr<ExecResult> ContainerManager::ExecSync(const std::string& id,
                                                      const std::vector<std::string>& cmd,
                                                      absl::Duration timeout) {
  CRID_ASSIGN_OR_RETURN(ContainerRecord record, Get(id));
  if (record.state() != ContainerRecord::RUNNING) {
    return absl::FailedPreconditionError(
        absl::StrCat("container ", record.id(), " is not running"));
  }
  CRID_ASSIGN_OR_RETURN(std::shared_ptr<shim::ShimClient> client, ShimFor(record.pod_id(), false));
  shim::ExecRequest request;
  request.set_id(record.id());
  for (const std::string& arg : cmd) {
    request.add_args(arg);
  }
  request.set_timeout_ms(absl::ToInt64Milliseconds(timeout));
  request.set_max_output_bytes(static_cast<int64_t>(options_.exec_output_limit));
  CRID_ASSIGN_OR_RETURN(shim::ExecResponse response, client->Exec(request));
  if (response.timed_out()) {
    return absl::DeadlineExceededError(absl::StrCat("command \"", absl::StrJoin(cmd, " "),
                                                    "\" timed out after ",
                                                    absl::FormatDuration(timeout)));
  }
  ExecResult result;
  result.exit_code = response.exit_code();
  result.stdout_data = response.stdout();
  result.stderr_data = response.stderr();
  if (response.truncated()) {
    const std::string marker = absl::StrCat("\n[crid: output truncated at ",
                                            options_.exec_output_limit, " bytes per stream]\n");
    result.stderr_data += marker;
  }
  return result;
}

namespace {

// Forwards the terminal sizes a session's client sends to the shim, on its
// own thread, for as long as the object lives (the session call).
class SizeForwarder {
 public:
  // Does nothing without `sizes` (no terminal).
  SizeForwarder(streaming::ResizeQueue* sizes, shim::ShimClient* client, std::string id,
                std::string session_id) {
    if (sizes == nullptr) {
      return;
    }
    thread_ =
        std::thread([this, sizes, client, id = std::move(id), session_id = std::move(session_id)] {
          while (!stop_.load()) {
            std::optional<streaming::TerminalSize> size = sizes->Next(absl::Milliseconds(100));
            if (!size.has_value()) {
              continue;
            }
            absl::Status st = client->Resize(id, session_id, size->width, size->height);
            if (!st.ok()) {
              spdlog::debug("container {}: resize terminal: {}", id, st);
            }
          }
        });
  }
  ~SizeForwarder() {
    stop_ = true;
    if (thread_.joinable()) {
      thread_.join();
    }
  }

 private:
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace

absl::StatusOr<int> ContainerManager::ExecStream(const std::string& id,
                                                 const std::vector<std::string>& cmd,
                                                 streaming::StreamIo io) {
  if (cmd.empty() || cmd[0].empty()) {
    return absl::InvalidArgumentError("cmd: a command is required");
  }
  CRID_ASSIGN_OR_RETURN(ContainerRecord record, Get(id));
  if (record.state() != ContainerRecord::RUNNING) {
    return absl::FailedPreconditionError(
        absl::StrCat("container ", record.id(), " is not running"));
  }
  CRID_ASSIGN_OR_RETURN(std::shared_ptr<shim::ShimClient> client, ShimFor(record.pod_id(), false));
  shim::ExecStreamRequest request;
  request.set_id(record.id());
  for (const std::string& arg : cmd) {
    request.add_args(arg);
  }
  request.set_tty(io.tty);
  request.set_session_id(absl::StrCat("s", next_session_.fetch_add(1)));
  std::vector<int> fds;
  for (auto [fd, flag] : {std::pair{&io.stdin_fd, &shim::ExecStreamRequest::set_stdin},
                          std::pair{&io.stdout_fd, &shim::ExecStreamRequest::set_stdout},
                          std::pair{&io.stderr_fd, &shim::ExecStreamRequest::set_stderr}}) {
    if (fd->valid() && !(io.tty && fd == &io.stderr_fd)) {
      (request.*flag)(true);
      fds.push_back(fd->get());
    }
  }
  SizeForwarder sizes(io.tty ? io.resize : nullptr, client.get(), record.id(),
                      request.session_id());
  return client->ExecStream(request, fds, io.done_fd);
}

absl::Status ContainerManager::Attach(const std::string& id, streaming::StreamIo io) {
  CRID_ASSIGN_OR_RETURN(ContainerRecord record, Get(id));
  if (record.state() != ContainerRecord::RUNNING) {
    return absl::FailedPreconditionError(
        absl::StrCat("container ", record.id(), " is not running"));
  }
  CRID_ASSIGN_OR_RETURN(std::shared_ptr<shim::ShimClient> client, ShimFor(record.pod_id(), false));
  shim::AttachRequest request;
  request.set_id(record.id());
  std::vector<int> fds;
  // A container created without stdin has none to attach to: the client's
  // input is dropped, as kubectl warns.
  if (io.stdin_fd.valid() && record.config().stdin()) {
    request.set_stdin(true);
    fds.push_back(io.stdin_fd.get());
  }
  if (io.stdout_fd.valid()) {
    request.set_stdout(true);
    fds.push_back(io.stdout_fd.get());
  }
  if (io.stderr_fd.valid() && !record.config().tty()) {
    request.set_stderr(true);
    fds.push_back(io.stderr_fd.get());
  }
  absl::Status st;
  {
    SizeForwarder sizes(record.config().tty() ? io.resize : nullptr, client.get(), record.id(), "");
    st = client->Attach(request, fds, io.done_fd);
  }
  if (absl::IsCancelled(st)) {
    return absl::OkStatus();  // the client detached
  }
  return st;
}

absl::Status ContainerManager::UpdateResources(const std::string& id,
                                               const v1::LinuxContainerResources& resources) {
  CRID_ASSIGN_OR_RETURN(ContainerRecord record, Get(id));
  std::shared_ptr<absl::Mutex> op = OpLock(record.id());
  absl::MutexLock op_lock(op.get());
  CRID_ASSIGN_OR_RETURN(record, Get(record.id()));
  if (record.state() == ContainerRecord::EXITED) {
    return absl::FailedPreconditionError(
        absl::StrCat("container ", record.id(), " has exited; its resources cannot change"));
  }
  CRID_ASSIGN_OR_RETURN(json oci, OciResources(resources));
  CRID_ASSIGN_OR_RETURN(std::shared_ptr<shim::ShimClient> client, ShimFor(record.pod_id(), false));
  CRID_RETURN_IF_ERROR(client->Update(record.id(), oci.dump()));
  *record.mutable_config()->mutable_linux()->mutable_resources() = resources;
  CRID_RETURN_IF_ERROR(Persist(record));
  Publish(record);
  return absl::OkStatus();
}

absl::Status ContainerManager::ReopenLog(const std::string& id) {
  CRID_ASSIGN_OR_RETURN(ContainerRecord record, Get(id));
  if (record.state() != ContainerRecord::RUNNING) {
    return absl::FailedPreconditionError(
        absl::StrCat("container ", record.id(), " is not running"));
  }
  CRID_ASSIGN_OR_RETURN(std::shared_ptr<shim::ShimClient> client, ShimFor(record.pod_id(), false));
  return client->ReopenLog(record.id());
}

// ---------------------------------------------------------------------------
// Queries.

absl::StatusOr<ContainerRecord> ContainerManager::Get(const std::string& id) const {
  CRID_ASSIGN_OR_RETURN(RecordSnapshot snapshot, Find(id));
  return *snapshot;  // copied outside the lock
}

absl::StatusOr<RecordSnapshot> ContainerManager::Find(const std::string& id) const {
  absl::MutexLock lock(&mu_);
  auto it = containers_.find(id);
  if (it != containers_.end()) {
    return it->second;
  }
  if (!id.empty()) {
    auto first = containers_.lower_bound(id);
    if (first != containers_.end() && absl::StartsWith(first->first, id)) {
      auto next = std::next(first);
      if (next == containers_.end() || !absl::StartsWith(next->first, id)) {
        return first->second;
      }
      return absl::InvalidArgumentError(
          absl::StrCat("container_id: prefix \"", id, "\" matches more than one container"));
    }
  }
  return absl::NotFoundError(absl::StrCat("container \"", id, "\" not found"));
}

std::vector<RecordSnapshot> ContainerManager::List(const v1::ContainerFilter& filter) const {
  std::vector<RecordSnapshot> out;
  absl::MutexLock lock(&mu_);
  for (const auto& [id, snapshot] : containers_) {
    const ContainerRecord& record = *snapshot;
    if (record.state() == ContainerRecord::CREATING) {
      continue;
    }
    if (!filter.id().empty() && !absl::StartsWith(id, filter.id())) {
      continue;
    }
    if (!filter.pod_sandbox_id().empty() &&
        !absl::StartsWith(record.pod_id(), filter.pod_sandbox_id())) {
      continue;
    }
    if (filter.has_state() && CriState(record.state()) != filter.state().state()) {
      continue;
    }
    if (!LabelsMatch(record.config().labels(), filter.label_selector())) {
      continue;
    }
    out.push_back(snapshot);
  }
  return out;
}

std::set<std::string> ContainerManager::LayersInUse() const {
  std::set<std::string> out;
  absl::MutexLock lock(&mu_);
  for (const auto& [id, record] : containers_) {
    out.insert(record->chain_ids().begin(), record->chain_ids().end());
    out.insert(record->volume_chain_ids().begin(), record->volume_chain_ids().end());
  }
  return out;
}

}  // namespace crid::container
