// End to end: how crid learns what happens to containers. Exits are pushed by
// each pod's shim over one stream (no thread per container in crid); a shim
// killed under its containers takes them with it and leaves the pod usable;
// GetContainerEvents reports every lifecycle change to each subscriber.
#include <signal.h>

#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "tests/container_e2e_fixture.h"

namespace crid {
namespace {

using container_e2e::ContainerEndToEndTest;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
namespace v1 = ::runtime::v1;

// A field of /proc/PID/status ("Threads", "VmSize"), as a number.
int64_t ProcStatus(pid_t pid, const std::string& field) {
  absl::StatusOr<std::string> text = ReadFile(absl::StrCat("/proc/", pid, "/status"));
  for (absl::string_view line : absl::StrSplit(text.value_or(""), '\n')) {
    if (absl::ConsumePrefix(&line, field + ":")) {
      int64_t value = 0;
      std::vector<std::string> words = absl::StrSplit(line, ' ', absl::SkipWhitespace());
      if (!words.empty() && absl::SimpleAtoi(words[0], &value)) {
        return value;
      }
    }
  }
  return -1;
}

// Alive and not a zombie.
bool ProcessRuns(pid_t pid) {
  absl::StatusOr<std::string> stat = ReadFile(absl::StrCat("/proc/", pid, "/stat"));
  if (!stat.ok()) {
    return false;
  }
  size_t paren = stat->rfind(')');
  return paren != std::string::npos && paren + 2 < stat->size() && (*stat)[paren + 2] != 'Z';
}

class ContainerEventsTest : public ContainerEndToEndTest {
 protected:
  pid_t ContainerPid(const std::string& id) {
    nlohmann::json info = nlohmann::json::parse(Status(id, true).info().at("info"));
    return info.value("pid", 0);
  }

  pid_t ShimPid(const std::string& pod_id) {
    absl::StatusOr<std::string> text =
        ReadFile(tmp_.Sub("state/shims/" + pod_id.substr(0, 32) + "/shim.pid"));
    int pid = 0;
    return text.ok() && absl::SimpleAtoi(absl::StripAsciiWhitespace(*text), &pid) ? pid : 0;
  }

  v1::ContainerStatus WaitForReason(const std::string& id, const std::string& reason) {
    absl::Time deadline = absl::Now() + absl::Seconds(20);
    v1::ContainerStatus status;
    do {
      status = Status(id).status();
      if (status.reason() == reason) {
        break;
      }
      absl::SleepFor(absl::Milliseconds(20));
    } while (absl::Now() < deadline);
    EXPECT_EQ(status.reason(), reason) << Log();
    return status;
  }
};

// Running containers cost crid no threads: their exits come over the shim's
// one event stream.
TEST_F(ContainerEventsTest, RunningContainersCostNoThreads) {
  std::string pod = RunPod(PodConfig("threads"));
  std::string first = RunContainer(pod, ShellContainer("first", "sleep 1000"));
  int64_t before = ProcStatus(crid_->pid(), "Threads");
  ASSERT_GT(before, 0);
  std::vector<std::string> ids;
  ids.reserve(16);
  for (int i = 0; i < 16; ++i) {
    ids.push_back(RunContainer(pod, ShellContainer(absl::StrCat("c", i), "sleep 1000")));
  }
  int64_t after = ProcStatus(crid_->pid(), "Threads");
  EXPECT_LE(after, before + 2) << "crid's threads grew with its running containers";
  // The exits still arrive: a killed container is seen as exited.
  ASSERT_TRUE(Stop(ids[3], 0).ok());
  EXPECT_EQ(WaitExited(ids[3], absl::Seconds(10)).exit_code(), 137);
  ExecOut(first, "true");
}

// kill -9 of a pod's crid-shim: its containers die with it and are reported
// so, the pod stays removable at once, and the pod's next container gets a
// new shim.
TEST_F(ContainerEventsTest, KilledShimTakesItsContainersAndLeavesThePodUsable) {
  std::string pod = RunPod(PodConfig("shimkill"));
  std::string id = RunContainer(pod, ShellContainer("sleeper", "sleep 1000"));
  pid_t process = ContainerPid(id);
  ASSERT_GT(process, 0);
  ASSERT_TRUE(ProcessRuns(process));
  pid_t shim = ShimPid(pod);
  ASSERT_GT(shim, 0);

  ASSERT_EQ(::kill(shim, SIGKILL), 0);
  v1::ContainerStatus status = WaitForReason(id, "ShimExited");
  EXPECT_EQ(status.state(), v1::CONTAINER_EXITED);
  EXPECT_THAT(status.message(), HasSubstr("crid-shim"));
  absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (ProcessRuns(process) && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_FALSE(ProcessRuns(process)) << "the container outlived its shim";

  // The pod goes on with a new shim.
  std::string next = RunContainer(pod, ShellContainer("next", "sleep 1000"));
  EXPECT_EQ(ExecOut(next, "echo alive"), "alive\n");
  EXPECT_NE(ShimPid(pod), shim);
  EXPECT_TRUE(Remove(id).ok());

  grpc::ClientContext stop_ctx;
  v1::StopPodSandboxRequest stop;
  stop.set_pod_sandbox_id(pod);
  v1::StopPodSandboxResponse stopped;
  ASSERT_TRUE(stub_->StopPodSandbox(&stop_ctx, stop, &stopped).ok());
  grpc::ClientContext rm_ctx;
  v1::RemovePodSandboxRequest rm;
  rm.set_pod_sandbox_id(pod);
  v1::RemovePodSandboxResponse removed;
  grpc::Status st = stub_->RemovePodSandbox(&rm_ctx, rm, &removed);
  EXPECT_TRUE(st.ok()) << st.error_message();
}

// Stops that wait out a grace period hold no worker: with more of them in
// flight than crid has container workers, an exec probe in another pod is
// still answered at once.
TEST_F(ContainerEventsTest, SlowStopsDoNotDelayOtherPods) {
  std::string busy_pod = RunPod(PodConfig("stubborn"));
  std::vector<std::string> stubborn;
  stubborn.reserve(20);
  for (int i = 0; i < 20; ++i) {
    stubborn.push_back(RunContainer(
        busy_pod,
        ShellContainer(absl::StrCat("s", i), "trap '' TERM USR1; while true; do sleep 1; done")));
  }
  std::string probe_pod = RunPod(PodConfig("probed"));
  std::string probed = RunContainer(probe_pod, ShellContainer("probed", "sleep 1000"));

  absl::Time start = absl::Now();
  std::vector<std::thread> stops;
  std::vector<grpc::Status> results(stubborn.size());
  for (size_t i = 0; i < stubborn.size(); ++i) {
    stops.emplace_back([&, i] { results[i] = Stop(stubborn[i], 6); });
  }
  // Probes throughout the grace period: each is answered promptly.
  int probes = 0;
  absl::Duration slowest;
  while (absl::Now() - start < absl::Seconds(4)) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
    v1::ExecSyncRequest req;
    req.set_container_id(probed);
    req.add_cmd("/bin/true");
    req.set_timeout(2);
    v1::ExecSyncResponse resp;
    absl::Time sent = absl::Now();
    grpc::Status probe = stub_->ExecSync(&ctx, req, &resp);
    slowest = std::max(slowest, absl::Now() - sent);
    if (!probe.ok()) {
      ADD_FAILURE() << "an exec probe waited behind slow stops: " << probe.error_message();
      break;
    }
    ++probes;
  }
  EXPECT_GT(probes, 3);
  EXPECT_LT(slowest, absl::Seconds(2));
  for (std::thread& t : stops) {
    t.join();
  }
  for (size_t i = 0; i < stubborn.size(); ++i) {
    EXPECT_TRUE(results[i].ok()) << results[i].error_message();
    EXPECT_EQ(Status(stubborn[i]).status().exit_code(), 137);
  }
  EXPECT_GE(absl::Now() - start, absl::Seconds(6)) << "the grace period was cut short";
}

// A pod whose crid-pause dies is NOTREADY within a second, so kubelet
// recreates it; stopping and removing it still work.
TEST_F(ContainerEventsTest, KilledPauseMakesThePodNotReady) {
  std::string pod = RunPod(PodConfig("pauseless"));
  auto pod_status = [&](bool verbose) {
    grpc::ClientContext ctx;
    v1::PodSandboxStatusRequest req;
    req.set_pod_sandbox_id(pod);
    req.set_verbose(verbose);
    v1::PodSandboxStatusResponse resp;
    EXPECT_TRUE(stub_->PodSandboxStatus(&ctx, req, &resp).ok());
    return resp;
  };
  pid_t pause = nlohmann::json::parse(pod_status(true).info().at("info")).value("pid", 0);
  ASSERT_GT(pause, 0);
  ASSERT_EQ(pod_status(false).status().state(), v1::SANDBOX_READY);

  ASSERT_EQ(::kill(pause, SIGKILL), 0);
  absl::Time killed = absl::Now();
  while (pod_status(false).status().state() == v1::SANDBOX_READY &&
         absl::Now() - killed < absl::Seconds(5)) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_EQ(pod_status(false).status().state(), v1::SANDBOX_NOTREADY);
  EXPECT_LT(absl::Now() - killed, absl::Seconds(1));
  // A restarted crid still finds it NOTREADY.
  crid_->Signal(SIGTERM);
  ASSERT_EQ(crid_->Wait(absl::Seconds(30)), 0) << Log();
  crid_ = StartCrid();
  EXPECT_EQ(pod_status(false).status().state(), v1::SANDBOX_NOTREADY);
}

// Reads a GetContainerEvents stream in the background.
class EventReader {
 public:
  explicit EventReader(v1::RuntimeService::Stub* stub) {
    reader_ = stub->GetContainerEvents(&ctx_, v1::GetEventsRequest());
    reader_->WaitForInitialMetadata();  // subscribed from here on
    thread_ = std::thread([this] {
      v1::ContainerEventResponse event;
      while (reader_->Read(&event)) {
        std::lock_guard<std::mutex> lock(mu_);
        events_.push_back(event);
      }
    });
  }
  ~EventReader() {
    ctx_.TryCancel();
    thread_.join();
  }
  // The events of container `id` once `count` of them arrived (or 20 s passed).
  std::vector<v1::ContainerEventResponse> For(const std::string& id, size_t count) {
    absl::Time deadline = absl::Now() + absl::Seconds(20);
    std::vector<v1::ContainerEventResponse> out;
    do {
      out.clear();
      std::lock_guard<std::mutex> lock(mu_);
      for (const auto& e : events_) {
        if (e.container_id() == id) {
          out.push_back(e);
        }
      }
    } while (out.size() < count && absl::Now() < deadline &&
             (absl::SleepFor(absl::Milliseconds(20)), true));
    return out;
  }

 private:
  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientReader<v1::ContainerEventResponse>> reader_;
  std::thread thread_;
  std::mutex mu_;
  std::vector<v1::ContainerEventResponse> events_;
};

std::vector<v1::ContainerEventType> Types(const std::vector<v1::ContainerEventResponse>& events) {
  std::vector<v1::ContainerEventType> out;
  out.reserve(events.size());
  for (const auto& e : events) {
    out.push_back(e.container_event_type());
  }
  return out;
}

TEST_F(ContainerEventsTest, GetContainerEventsReportsEachChangeToEverySubscriber) {
  std::string pod = RunPod(PodConfig("events"));
  EventReader first(stub_.get());
  EventReader second(stub_.get());
  std::string id = RunContainer(pod, ShellContainer("short", "exit 3"));
  WaitExited(id, absl::Seconds(10));
  ASSERT_TRUE(Remove(id).ok());

  for (EventReader* reader : {&first, &second}) {
    std::vector<v1::ContainerEventResponse> events = reader->For(id, 4);
    ASSERT_THAT(Types(events),
                ElementsAre(v1::CONTAINER_CREATED_EVENT, v1::CONTAINER_STARTED_EVENT,
                            v1::CONTAINER_STOPPED_EVENT, v1::CONTAINER_DELETED_EVENT));
    const v1::ContainerEventResponse& stopped = events[2];
    EXPECT_EQ(stopped.pod_sandbox_status().id(), pod);
    EXPECT_EQ(stopped.pod_sandbox_status().state(), v1::SANDBOX_READY);
    EXPECT_GT(stopped.created_at(), 0);
    ASSERT_EQ(stopped.containers_statuses_size(), 1);
    EXPECT_EQ(stopped.containers_statuses(0).id(), id);
    EXPECT_EQ(stopped.containers_statuses(0).state(), v1::CONTAINER_EXITED);
    EXPECT_EQ(stopped.containers_statuses(0).exit_code(), 3);
    EXPECT_EQ(events[3].containers_statuses_size(), 0);
  }
}

// Evented PLEG reads a pod's containers from PodSandboxStatus.
TEST_F(ContainerEventsTest, PodSandboxStatusCarriesItsContainers) {
  std::string pod = RunPod(PodConfig("withcontainers"));
  std::string a = RunContainer(pod, ShellContainer("a", "sleep 1000"));
  std::string b = CreateOk(pod, ShellContainer("b", "sleep 1000"));
  grpc::ClientContext ctx;
  v1::PodSandboxStatusRequest req;
  req.set_pod_sandbox_id(pod);
  v1::PodSandboxStatusResponse resp;
  ASSERT_TRUE(stub_->PodSandboxStatus(&ctx, req, &resp).ok());
  EXPECT_GT(resp.timestamp(), 0);
  std::map<std::string, v1::ContainerState> states;
  for (const v1::ContainerStatus& s : resp.containers_statuses()) {
    states[s.id()] = s.state();
  }
  EXPECT_EQ(states.size(), 2u);
  EXPECT_EQ(states[a], v1::CONTAINER_RUNNING);
  EXPECT_EQ(states[b], v1::CONTAINER_CREATED);
}

// kubelet takes the first status of a name as the container's current one: a
// restarted container must come before the one it replaces, whatever the IDs.
TEST_F(ContainerEventsTest, PodSandboxStatusListsNewestContainersFirst) {
  std::string pod = RunPod(PodConfig("newestfirst"));
  std::vector<std::string> created;
  for (int attempt = 0; attempt < 4; ++attempt) {
    v1::ContainerConfig config = ShellContainer("web", "sleep 1000");
    config.mutable_metadata()->set_attempt(attempt);
    created.push_back(CreateOk(pod, config));
  }
  grpc::ClientContext ctx;
  v1::PodSandboxStatusRequest req;
  req.set_pod_sandbox_id(pod);
  v1::PodSandboxStatusResponse resp;
  ASSERT_TRUE(stub_->PodSandboxStatus(&ctx, req, &resp).ok());
  std::vector<std::string> listed;
  for (const v1::ContainerStatus& s : resp.containers_statuses()) {
    listed.push_back(s.id());
  }
  EXPECT_EQ(listed, std::vector<std::string>(created.rbegin(), created.rend()));
}

}  // namespace
}  // namespace crid
