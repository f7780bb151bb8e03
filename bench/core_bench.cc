// The event-driven core under load (issue 14's "Must show" list), through the
// real crid binary and, where installed, a private containerd in the same run,
// driven by the same CRI client code (bench/cri_calls.h):
//
//   churn        N create/start/exit/remove cycles over P pods; crid's threads,
//                RSS and descriptors idle vs after, and a leak census
//   concurrency  P pods started at once and torn down at once, as kubelet's
//                pod workers do: wall time and per-pod p50/p99
//   slow_stops   S concurrent StopContainer (30 s grace, containers ignoring
//                SIGTERM) while a client runs ExecSync, ContainerStatus and
//                ListContainers on other pods: their p50/p99, quiet vs during
//   exec         ExecSync of a probe's `true`: serially, and with P in flight
//   scale        ListContainers, ListPodSandbox, ListContainerStats and
//                ImageFsInfo with 500 containers
//   start        N pods started one after another as critest's benchmark
//                does (RunPodSandbox, CreateContainer, StartContainer, each
//                timed), against the floor measured in the same run with no
//                CRI runtime (network namespace + CNI ADD, runc create, runc
//                start; bench/start_floor.h)
//
// Each scenario starts a fresh daemon per runtime. Everything is private to the
// run: a docker-registry on 127.0.0.1, a CNI bridge without masquerade, roots,
// states and sockets in temporary directories.
//
//   bazel build -c opt //bench:core_bench
//   bazel-out/k8-opt/bin/bench/core_bench --scenarios=exec,scale
//
// docs/benchmarks.md has the exact build command (one extra flag for -c opt),
// why the built binary rather than `bazel run`, and each scenario's flags.
//
// The exit status is 1 when a scenario fails or the churn finds a leak; targets
// missed are printed as MISSED and do not change it.
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "base/errors.h"
#include "base/fs.h"
#include "base/temp_dir.h"
#include "bench/cri_calls.h"
#include "bench/runtimes.h"
#include "bench/start_floor.h"
#include "tests/cni_fixture.h"
#include "tests/image_registry_fixture.h"
#include "tests/leak_census.h"

ABSL_FLAG(std::string, scenarios, "churn,concurrency,slow_stops,exec,scale,start",
          "comma-separated scenarios to run, in this order");
ABSL_FLAG(bool, containerd, true, "also measure containerd when it is installed");
ABSL_FLAG(std::string, containerd_binary, "", "containerd to run (default: found in PATH)");
ABSL_FLAG(std::string, containerd_runc, "/usr/sbin/runc", "runc binary containerd's shims run");
ABSL_FLAG(std::string, crid_log_level, "info", "crid's --log-level (debug for timestamps)");
ABSL_FLAG(std::string, keep_logs, "",
          "directory to copy each daemon's log into (SCENARIO.RUNTIME.log); empty: none");

ABSL_FLAG(int, churn_cycles, 10000, "churn: create/start/exit/remove cycles in all");
ABSL_FLAG(int, churn_pods, 50, "churn: pods the cycles are spread over (one worker each)");
ABSL_FLAG(bool, churn_containerd, true, "churn: run the same cycles through containerd too");

ABSL_FLAG(int, concurrent_pods, 50, "concurrency: pods started (and torn down) at once");

ABSL_FLAG(int, slow_stops, 100, "slow_stops: containers stopped at once");
ABSL_FLAG(int, slow_stop_pods, 25, "slow_stops: pods holding those containers");
ABSL_FLAG(int, slow_stop_grace, 30, "slow_stops: StopContainer timeout (grace seconds)");
ABSL_FLAG(int, probe_pods, 5, "slow_stops: other pods the client probes");
ABSL_FLAG(int, quiet_seconds, 5, "slow_stops: probing without stops first, for the baseline");

ABSL_FLAG(int, exec_serial, 200, "exec: ExecSync calls one after another");
ABSL_FLAG(int, exec_inflight, 50, "exec: probes in flight at once (one pod each)");
ABSL_FLAG(int, exec_rounds, 4, "exec: rounds of in-flight probes");

ABSL_FLAG(int, scale_containers, 500, "scale: running containers");
ABSL_FLAG(int, scale_pods, 50, "scale: pods holding them");
ABSL_FLAG(int, scale_calls, 300, "scale: calls of each RPC");

ABSL_FLAG(int, start_pods, 30, "start: pods started one after another (and floor rounds)");

extern char** environ;

namespace crid::bench {
namespace {

namespace v1 = ::runtime::v1;

const std::vector<std::string> kSleep = {"/bin/sleep", "3600"};
const std::vector<std::string> kTrue = {"/bin/true"};
// Ignores SIGTERM (the shell is PID 1 of its PID namespace and has no handler;
// the trap also covers a shared namespace), so only the grace period's SIGKILL ends it.
const std::vector<std::string> kIgnoreTerm = {"/bin/sh", "-c", "trap '' TERM; sleep 3600"};

std::string LoadAverage() {
  return std::string(absl::StripAsciiWhitespace(ReadFile("/proc/loadavg").value_or("?")));
}

// ---- what a scenario hands back per runtime ----

// Named figures (latencies in ms unless the name says otherwise) and free-form lines.
struct Figures {
  std::map<std::string, double> values;
  std::vector<std::string> names;  // in the order they were added
  std::vector<std::string> notes;
  bool leak = false;

  void Set(const std::string& name, double value) {
    if (values.emplace(name, value).second) {
      names.push_back(name);
    } else {
      values[name] = value;
    }
  }
  void SetSamples(const std::string& name, const Samples& s) {
    Set(name + " p50", s.p50());
    Set(name + " p99", s.p99());
  }
  void Note(std::string line) { notes.push_back(std::move(line)); }
};

// What every scenario needs: the network, the images, a log directory.
struct Env {
  const TestCniNetwork* network = nullptr;
  BenchImages images;
  std::string registry_host;
  std::string containerd_binary;  // empty: no comparison
  std::string log_root;
};

using Scenario = std::function<absl::Status(Runtime&, Figures*)>;

// Starts a fresh `which` runtime, pulls the images, runs `scenario`, shuts
// the runtime down (removing whatever is left).
absl::Status RunOn(const Env& env, const std::string& name, bool containerd,
                   const Scenario& scenario, Figures* figures) {
  std::unique_ptr<Runtime> rt;
  if (containerd) {
    rt = std::make_unique<ContainerdRuntime>(env.containerd_binary, *env.network, env.images.pause,
                                             env.registry_host,
                                             absl::GetFlag(FLAGS_containerd_runc));
  } else {
    CridOptions options;
    options.log_level = absl::GetFlag(FLAGS_crid_log_level);
    rt = std::make_unique<CridRuntime>(*env.network, options);
  }
  absl::Status st = rt->Start();
  for (const std::string& image : {env.images.pause, env.images.busybox}) {
    if (st.ok() && (containerd || image == env.images.busybox)) {
      st = Pull(*rt, image);
    }
  }
  if (st.ok()) {
    st = scenario(*rt, figures);
  }
  if (!st.ok()) {
    st = absl::InternalError(
        absl::StrCat(st.message(), "\n--- ", rt->name(), " log (tail):\n", rt->Log()));
  }
  const std::string keep = absl::GetFlag(FLAGS_keep_logs);
  if (!keep.empty()) {
    std::ofstream(absl::StrCat(keep, "/", name, ".", rt->name(), ".log"))
        << ReadFile(rt->LogPath()).value_or("");
  }
  rt->Shutdown();
  return st;
}

// ---- scenarios ----

// Starts `pods` pods at once, pod i with containers(i); at most `parallel` at a time.
absl::StatusOr<std::vector<PodRun>> StartPods(
    Runtime& rt, const Env& env, const std::string& prefix, int pods,
    const std::function<std::vector<std::vector<std::string>>(int)>& containers) {
  std::vector<PodRun> runs(static_cast<size_t>(pods));
  absl::Status st = RunInParallel(pods, [&](int i) -> absl::Status {
    absl::StatusOr<PodRun> run =
        StartPod(rt, absl::StrCat(prefix, "-", i), env.images.busybox, containers(i),
                 absl::StrCat(env.log_root, "/", rt.name()));
    if (!run.ok()) {
      return run.status();
    }
    runs[static_cast<size_t>(i)] = *std::move(run);
    return absl::OkStatus();
  });
  if (!st.ok()) {
    return st;
  }
  return runs;
}

// One cycle: CreateContainer (`true`), StartContainer, wait for EXITED, RemoveContainer.
absl::StatusOr<std::string> ChurnCycle(Runtime& rt, const std::string& pod_id,
                                       const v1::PodSandboxConfig& pod, const std::string& image,
                                       int n) {
  absl::StatusOr<std::string> id =
      CreateContainer(rt, pod_id, pod, ContainerConfig(absl::StrCat("job-", n), image, kTrue));
  if (!id.ok()) {
    return id.status();
  }
  if (absl::Status st = StartContainer(rt, *id); !st.ok()) {
    return st;
  }
  // `true` is gone within milliseconds; poll gently so 50 workers do not flood the daemon.
  absl::Duration wait = absl::Milliseconds(5);
  absl::Time deadline = absl::Now() + absl::Seconds(60);
  for (;;) {
    absl::StatusOr<v1::ContainerStatus> status = ContainerStatus(rt, *id);
    if (!status.ok()) {
      return status.status();
    }
    if (status->state() == v1::CONTAINER_EXITED) {
      if (status->exit_code() != 0) {
        return absl::InternalError(absl::StrCat(rt.name(), ": `true` exited ", status->exit_code(),
                                                " ", status->reason()));
      }
      break;
    }
    if (absl::Now() > deadline) {
      return absl::DeadlineExceededError(absl::StrCat(rt.name(), ": ", *id, " never exited"));
    }
    absl::SleepFor(wait);
    wait = std::min(wait * 2, absl::Milliseconds(100));
  }
  if (absl::Status st = RemoveContainer(rt, *id); !st.ok()) {
    return st;
  }
  return id;
}

struct Snapshot {
  ProcStatus daemon;
  std::map<std::string, int> census;
};

Snapshot TakeSnapshot(Runtime& rt) {
  // Let exited threads and lazily freed memory go first.
  absl::SleepFor(absl::Seconds(3));
  return {ReadProcStatus(rt.DaemonPid()), rt.Census()};
}

absl::Status Churn(Runtime& rt, const Env& env, Figures* f) {
  const int pods = std::max(1, absl::GetFlag(FLAGS_churn_pods));
  const int cycles = std::max(pods, absl::GetFlag(FLAGS_churn_cycles));
  absl::StatusOr<std::vector<PodRun>> runs = StartPods(
      rt, env, "churn", pods, [](int) { return std::vector<std::vector<std::string>>{}; });
  if (!runs.ok()) {
    return runs.status();
  }
  std::vector<v1::PodSandboxConfig> configs;
  configs.reserve(static_cast<size_t>(pods));
  for (int i = 0; i < pods; ++i) {
    configs.push_back(
        PodConfig(absl::StrCat("churn-", i), absl::StrCat(env.log_root, "/", rt.name())));
  }
  // One warm-up cycle per pod, so each pod's shim and the daemon's pools exist at idle.
  absl::Mutex ids_mu;
  std::vector<std::string> ids;
  CRID_RETURN_IF_ERROR(RunInParallel(pods, [&](int i) -> absl::Status {
    absl::StatusOr<std::string> id =
        ChurnCycle(rt, (*runs)[static_cast<size_t>(i)].pod_id, configs[static_cast<size_t>(i)],
                   env.images.busybox, -1);
    return id.status();
  }));
  const Snapshot idle = TakeSnapshot(rt);
  std::unique_ptr<LeakCensus> census;
  if (auto* crid = dynamic_cast<CridRuntime*>(&rt); crid != nullptr) {
    LeakCensusOptions options;
    options.root_dir = crid->root_dir();
    options.state_dir = crid->state_dir();
    census = std::make_unique<LeakCensus>(options);
  }

  Samples cycle_ms;
  std::atomic<int> done{0};
  std::atomic<int> next_report{cycles / 10};
  const absl::Time t0 = absl::Now();
  CRID_RETURN_IF_ERROR(RunInParallel(pods, [&](int i) -> absl::Status {
    const auto idx = static_cast<size_t>(i);
    for (int n = i; n < cycles; n += pods) {
      absl::Time start = absl::Now();
      absl::StatusOr<std::string> id =
          ChurnCycle(rt, (*runs)[idx].pod_id, configs[idx], env.images.busybox, n);
      if (!id.ok()) {
        return id.status();
      }
      cycle_ms.AddSince(start);
      {
        absl::MutexLock lock(&ids_mu);
        ids.push_back(*std::move(id));
      }
      int now = ++done;
      int mark = next_report.load();
      if (now >= mark && next_report.compare_exchange_strong(mark, mark + cycles / 10)) {
        std::printf("  %s: %d/%d cycles, %.1f s, daemon threads %d, load %s\n", rt.name().c_str(),
                    now, cycles, absl::ToDoubleSeconds(absl::Now() - t0),
                    ReadProcStatus(rt.DaemonPid()).threads, LoadAverage().c_str());
        std::fflush(stdout);
      }
    }
    return absl::OkStatus();
  }));
  const double wall_s = absl::ToDoubleSeconds(absl::Now() - t0);
  const Snapshot after = TakeSnapshot(rt);

  f->Set("cycles", cycles);
  f->Set("wall s", wall_s);
  f->Set("wall ms per cycle", wall_s * 1000 / cycles);
  f->SetSamples("cycle", cycle_ms);
  f->Set("daemon threads idle", idle.daemon.threads);
  f->Set("daemon threads after", after.daemon.threads);
  f->Set("daemon RSS idle MiB", idle.daemon.rss_kb / 1024.0);
  f->Set("daemon RSS after MiB", after.daemon.rss_kb / 1024.0);
  f->Set("daemon VmSize idle MiB", idle.daemon.vm_size_kb / 1024.0);
  f->Set("daemon VmSize after MiB", after.daemon.vm_size_kb / 1024.0);
  f->Set("daemon fds idle", idle.daemon.fds);
  f->Set("daemon fds after", after.daemon.fds);
  f->Set("daemon CPU s", after.daemon.cpu_s - idle.daemon.cpu_s);
  for (const auto& [what, count] : after.census) {
    const int before = idle.census.count(what) > 0 ? idle.census.at(what) : 0;
    f->Note(absl::StrCat(what, ": idle ", before, ", after ", count));
    // Shims may come and go with their pod's containers but never outnumber the pods.
    const bool leaked = what == "shims" ? count > pods : count > before;
    if (leaked) {
      f->leak = true;
      f->Note(absl::StrCat("  LEAK: ", what));
    }
  }
  if (census != nullptr) {
    for (const std::string& id : ids) {
      census->Own(id);
    }
    std::vector<std::string> leaks = census->Leaks();
    f->Note(absl::StrCat("leak census (tests/leak_census.h: mounts, processes, cgroups, files of ",
                         ids.size(), " containers): ", leaks.size(), " left"));
    for (size_t i = 0; i < leaks.size() && i < 20; ++i) {
      f->Note("  LEAK: " + leaks[i]);
    }
    f->leak = f->leak || !leaks.empty();
  }
  return absl::OkStatus();
}

absl::Status Concurrency(Runtime& rt, const Env& env, Figures* f) {
  const int pods = std::max(1, absl::GetFlag(FLAGS_concurrent_pods));
  Samples start_ms;
  Samples teardown_ms;
  std::vector<PodRun> runs(static_cast<size_t>(pods));
  absl::Time t0 = absl::Now();
  CRID_RETURN_IF_ERROR(RunInParallel(pods, [&](int i) -> absl::Status {
    absl::Time start = absl::Now();
    absl::StatusOr<PodRun> run = StartPod(rt, absl::StrCat("burst-", i), env.images.busybox,
                                          {kSleep}, absl::StrCat(env.log_root, "/", rt.name()));
    if (!run.ok()) {
      return run.status();
    }
    start_ms.AddSince(start);
    runs[static_cast<size_t>(i)] = *std::move(run);
    return absl::OkStatus();
  }));
  const double start_wall = absl::ToDoubleSeconds(absl::Now() - t0);
  absl::StatusOr<int> running = CountContainers(rt, v1::CONTAINER_RUNNING);
  if (!running.ok() || *running != pods) {
    return absl::InternalError(
        absl::StrCat(rt.name(), ": ", running.value_or(0), " of ", pods, " containers running"));
  }
  t0 = absl::Now();
  CRID_RETURN_IF_ERROR(RunInParallel(pods, [&](int i) -> absl::Status {
    absl::Time start = absl::Now();
    CRID_RETURN_IF_ERROR(TearDownPod(rt, runs[static_cast<size_t>(i)]));
    teardown_ms.AddSince(start);
    return absl::OkStatus();
  }));
  const double teardown_wall = absl::ToDoubleSeconds(absl::Now() - t0);
  f->Set("pods", pods);
  f->Set("start wall s", start_wall);
  f->SetSamples("start per pod", start_ms);
  f->Set("teardown wall s", teardown_wall);
  f->SetSamples("teardown per pod", teardown_ms);
  f->Set("up+down wall s", start_wall + teardown_wall);
  return absl::OkStatus();
}

// Runs ExecSync, ContainerStatus and ListContainers on `targets` in turn until
// `stop` is set, adding each call's latency to its samples.
struct ProbeSamples {
  Samples exec;
  Samples status;
  Samples list;
  std::vector<std::string> errors;
};

void ProbeLoop(Runtime& rt, const std::vector<std::string>& targets, const std::atomic<bool>& stop,
               ProbeSamples* out) {
  for (size_t i = 0; !stop.load(); ++i) {
    const std::string& id = targets[i % targets.size()];
    absl::Time t = absl::Now();
    absl::Status st = ExecSync(rt, id, kTrue);
    out->exec.AddSince(t);
    t = absl::Now();
    absl::StatusOr<v1::ContainerStatus> status = ContainerStatus(rt, id);
    out->status.AddSince(t);
    t = absl::Now();
    absl::StatusOr<int> count = CountContainers(rt);
    out->list.AddSince(t);
    for (const absl::Status& s : {st, status.status(), count.status()}) {
      if (!s.ok() && out->errors.size() < 5) {
        out->errors.emplace_back(s.message());
      }
    }
  }
}

absl::Status SlowStops(Runtime& rt, const Env& env, Figures* f) {
  const int stops = std::max(1, absl::GetFlag(FLAGS_slow_stops));
  const int stop_pods = std::clamp(absl::GetFlag(FLAGS_slow_stop_pods), 1, stops);
  const int probe_pods = std::max(1, absl::GetFlag(FLAGS_probe_pods));
  const int grace = absl::GetFlag(FLAGS_slow_stop_grace);
  absl::StatusOr<std::vector<PodRun>> stubborn =
      StartPods(rt, env, "stubborn", stop_pods, [&](int i) {
        // Containers spread over the pods: pod i gets every stop_pods-th one.
        int count = stops / stop_pods + (i < stops % stop_pods ? 1 : 0);
        return std::vector<std::vector<std::string>>(static_cast<size_t>(count), kIgnoreTerm);
      });
  if (!stubborn.ok()) {
    return stubborn.status();
  }
  absl::StatusOr<std::vector<PodRun>> probed = StartPods(rt, env, "probed", probe_pods, [](int) {
    return std::vector<std::vector<std::string>>{kSleep};
  });
  if (!probed.ok()) {
    return probed.status();
  }
  std::vector<std::string> targets;
  for (const PodRun& run : *probed) {
    targets.push_back(run.container_ids[0]);
  }
  std::vector<std::string> victims;
  for (const PodRun& run : *stubborn) {
    victims.insert(victims.end(), run.container_ids.begin(), run.container_ids.end());
  }

  // Baseline: the same client with nothing else going on.
  ProbeSamples quiet;
  {
    std::atomic<bool> stop{false};
    std::thread client([&] { ProbeLoop(rt, targets, stop, &quiet); });
    absl::SleepFor(absl::Seconds(absl::GetFlag(FLAGS_quiet_seconds)));
    stop = true;
    client.join();
  }

  ProbeSamples busy;
  Samples stop_ms;
  const ProcStatus before = ReadProcStatus(rt.DaemonPid());
  std::atomic<int> peak_threads{before.threads};
  std::atomic<bool> stop{false};
  std::thread client([&] { ProbeLoop(rt, targets, stop, &busy); });
  std::thread sampler([&] {
    while (!stop.load()) {
      int threads = ReadProcStatus(rt.DaemonPid()).threads;
      int peak = peak_threads.load();
      while (threads > peak && !peak_threads.compare_exchange_weak(peak, threads)) {
      }
      absl::SleepFor(absl::Milliseconds(200));
    }
  });
  absl::Time t0 = absl::Now();
  absl::Status st = RunInParallel(static_cast<int>(victims.size()), [&](int i) -> absl::Status {
    absl::Time start = absl::Now();
    CRID_RETURN_IF_ERROR(
        StopContainer(rt, victims[static_cast<size_t>(i)], grace, absl::Seconds(grace + 120)));
    stop_ms.AddSince(start);
    return absl::OkStatus();
  });
  const double wall = absl::ToDoubleSeconds(absl::Now() - t0);
  stop = true;
  client.join();
  sampler.join();
  CRID_RETURN_IF_ERROR(st);
  for (const std::string& e : busy.errors) {
    f->Note("probe error: " + e);
  }
  if (!busy.errors.empty()) {
    return absl::InternalError(
        absl::StrCat(rt.name(), ": probes failed during the stops: ", busy.errors.front()));
  }
  absl::StatusOr<int> exited = CountContainers(rt, v1::CONTAINER_EXITED);
  if (!exited.ok() || *exited != stops) {
    return absl::InternalError(
        absl::StrCat(rt.name(), ": ", exited.value_or(0), " of ", stops, " containers exited"));
  }
  f->Set("stops", stops);
  f->SetSamples("StopContainer", stop_ms);
  f->Set("all stops returned after s", wall);
  f->SetSamples("quiet ExecSync", quiet.exec);
  f->SetSamples("quiet ContainerStatus", quiet.status);
  f->SetSamples("quiet ListContainers", quiet.list);
  f->SetSamples("during ExecSync", busy.exec);
  f->SetSamples("during ContainerStatus", busy.status);
  f->SetSamples("during ListContainers", busy.list);
  f->Set("during: probe rounds", static_cast<double>(busy.exec.size()));
  f->Set("daemon threads before", before.threads);
  f->Set("daemon threads peak", peak_threads.load());
  return absl::OkStatus();
}

// Runs `argv` with stdio on /dev/null and waits; its exit status.
int Spawn(std::vector<std::string> argv) {
  std::vector<char*> args;
  args.reserve(argv.size() + 1);
  for (std::string& a : argv) {
    args.push_back(a.data());
  }
  args.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  for (int fd : {0, 1, 2}) {
    posix_spawn_file_actions_addopen(&actions, fd, "/dev/null", O_RDWR, 0);
  }
  pid_t pid = -1;
  int err = posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (err != 0) {
    return -1;
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// The floor under any runtime's ExecSync that runs the OCI runtime: `runc exec`
// of `true` in the same container, timed from here (no CRI, no shim).
absl::Status RuncExecFloor(CridRuntime& crid, const std::string& id, int n, Samples* out) {
  const std::string root = crid.state_dir() + "/runtime/runc";
  for (int i = 0; i < n; ++i) {
    absl::Time t = absl::Now();
    int code = Spawn({"/usr/sbin/runc", "--root", root, "exec", id, "/bin/true"});
    if (code != 0) {
      return absl::InternalError(absl::StrCat("runc exec ", id, " exited ", code));
    }
    out->AddSince(t);
  }
  return absl::OkStatus();
}

absl::Status Exec(Runtime& rt, const Env& env, Figures* f) {
  const int inflight = std::max(1, absl::GetFlag(FLAGS_exec_inflight));
  absl::StatusOr<std::vector<PodRun>> runs = StartPods(rt, env, "probe", inflight, [](int) {
    return std::vector<std::vector<std::string>>{kSleep};
  });
  if (!runs.ok()) {
    return runs.status();
  }
  // One exec per container first: the first one sets up what later ones reuse.
  CRID_RETURN_IF_ERROR(RunInParallel(inflight, [&](int i) {
    return ExecSync(rt, (*runs)[static_cast<size_t>(i)].container_ids[0], kTrue);
  }));
  Samples serial;
  const std::string& first = (*runs)[0].container_ids[0];
  for (int i = 0; i < absl::GetFlag(FLAGS_exec_serial); ++i) {
    absl::Time t = absl::Now();
    CRID_RETURN_IF_ERROR(ExecSync(rt, first, kTrue));
    serial.AddSince(t);
  }
  Samples parallel;
  const int rounds = std::max(1, absl::GetFlag(FLAGS_exec_rounds));
  absl::Time t0 = absl::Now();
  CRID_RETURN_IF_ERROR(RunInParallel(inflight, [&](int i) -> absl::Status {
    for (int r = 0; r < rounds; ++r) {
      absl::Time t = absl::Now();
      CRID_RETURN_IF_ERROR(ExecSync(rt, (*runs)[static_cast<size_t>(i)].container_ids[0], kTrue));
      parallel.AddSince(t);
    }
    return absl::OkStatus();
  }));
  const double wall = absl::ToDoubleSeconds(absl::Now() - t0);
  if (auto* crid = dynamic_cast<CridRuntime*>(&rt); crid != nullptr) {
    Samples floor;
    CRID_RETURN_IF_ERROR(RuncExecFloor(*crid, first, absl::GetFlag(FLAGS_exec_serial), &floor));
    f->SetSamples("floor: runc exec true, serial", floor);
  }
  f->SetSamples("serial ExecSync", serial);
  f->SetSamples(absl::StrCat(inflight, " in flight ExecSync"), parallel);
  f->Set("in flight: wall ms per probe", wall * 1000 / static_cast<double>(parallel.size()));
  return absl::OkStatus();
}

absl::Status Scale(Runtime& rt, const Env& env, Figures* f) {
  const int containers = std::max(1, absl::GetFlag(FLAGS_scale_containers));
  const int pods = std::clamp(absl::GetFlag(FLAGS_scale_pods), 1, containers);
  absl::Time t0 = absl::Now();
  absl::StatusOr<std::vector<PodRun>> runs = StartPods(rt, env, "scale", pods, [&](int i) {
    int count = containers / pods + (i < containers % pods ? 1 : 0);
    return std::vector<std::vector<std::string>>(static_cast<size_t>(count), kSleep);
  });
  if (!runs.ok()) {
    return runs.status();
  }
  f->Set("set-up s", absl::ToDoubleSeconds(absl::Now() - t0));
  absl::StatusOr<int> running = CountContainers(rt, v1::CONTAINER_RUNNING);
  if (!running.ok() || *running != containers) {
    return absl::InternalError(absl::StrCat(rt.name(), ": ", running.value_or(0), " of ",
                                            containers, " containers running"));
  }
  v1::ContainerFilter one_pod;
  one_pod.set_pod_sandbox_id((*runs)[0].pod_id);
  // Let background refreshes (stats, sizes) settle, as on a node that has been up a while.
  absl::SleepFor(absl::Seconds(5));
  const std::vector<std::pair<std::string, std::function<absl::Status()>>> calls = {
      {"ListContainers", [&] { return CountContainers(rt).status(); }},
      // The same answer taken as bytes: the call without the client decoding 500 entries.
      {"ListContainers, bytes only (no client decode)",
       [&] { return ListContainersBytes(rt).status(); }},
      // The same scan, but only one pod's containers copied and sent: what
      // the whole list costs beyond the scan is building and sending 500 entries.
      {"ListContainers, one pod's (filter)", [&] { return ListContainers(rt, one_pod).status(); }},
      {"ListPodSandbox", [&] { return CountPods(rt).status(); }},
      {"ListContainerStats", [&] { return ListContainerStats(rt); }},
      {"ImageFsInfo", [&] { return ImageFsInfo(rt); }},
  };
  const ProcStatus before = ReadProcStatus(rt.DaemonPid());
  absl::StatusOr<v1::ListContainersResponse> all = ListContainers(rt);
  if (!all.ok()) {
    return all.status();
  }
  f->Set("ListContainers response KiB", static_cast<double>(all->ByteSizeLong()) / 1024);
  for (const auto& [name, call] : calls) {
    CRID_RETURN_IF_ERROR(call());  // warm-up
    Samples s;
    for (int i = 0; i < absl::GetFlag(FLAGS_scale_calls); ++i) {
      absl::Time t = absl::Now();
      CRID_RETURN_IF_ERROR(call());
      s.AddSince(t);
    }
    f->SetSamples(name, s);
  }
  // What decoding the whole answer costs the client alone, without a call.
  const std::string wire = all->SerializeAsString();
  Samples decode;
  for (int i = 0; i < absl::GetFlag(FLAGS_scale_calls); ++i) {
    absl::Time t = absl::Now();
    v1::ListContainersResponse parsed;
    if (!parsed.ParseFromString(wire)) {
      return absl::InternalError("ListContainers answer does not parse");
    }
    decode.AddSince(t);
  }
  f->SetSamples("ListContainers answer decoded alone (client)", decode);
  f->Set("daemon CPU s for all calls", ReadProcStatus(rt.DaemonPid()).cpu_s - before.cpu_s);
  f->Set("daemon RSS MiB", ReadProcStatus(rt.DaemonPid()).rss_kb / 1024.0);
  return absl::OkStatus();
}

// One pod started as critest's benchmark starts it, each step timed; then
// removed (not timed). The steps' times are added to `steps`, their sum to `sum`.
absl::Status StartOnePod(Runtime& rt, const Env& env, int n, Samples steps[3], Samples* sum) {
  const v1::PodSandboxConfig pod =
      PodConfig(absl::StrCat("start-", n), absl::StrCat(env.log_root, "/", rt.name()));
  PodRun run;
  absl::Time t0 = absl::Now();
  absl::StatusOr<std::string> pod_id = RunPod(rt, pod);
  absl::Time t1 = absl::Now();
  if (!pod_id.ok()) {
    return pod_id.status();
  }
  run.pod_id = *pod_id;
  absl::StatusOr<std::string> id = CreateContainer(
      rt, run.pod_id, pod, ContainerConfig(absl::StrCat("sleep-", n), env.images.busybox, kSleep));
  absl::Time t2 = absl::Now();
  absl::Status st = id.status();
  if (st.ok()) {
    run.container_ids.push_back(*id);
    st = StartContainer(rt, *id);
  }
  absl::Time t3 = absl::Now();
  st.Update(TearDownPod(rt, run));
  CRID_RETURN_IF_ERROR(st);
  if (n >= 0) {
    steps[0].Add(absl::ToDoubleMilliseconds(t1 - t0));
    steps[1].Add(absl::ToDoubleMilliseconds(t2 - t1));
    steps[2].Add(absl::ToDoubleMilliseconds(t3 - t2));
    sum->Add(absl::ToDoubleMilliseconds(t3 - t0));
  }
  return absl::OkStatus();
}

absl::Status Start(Runtime& rt, const Env& env, Figures* f) {
  const int pods = std::max(1, absl::GetFlag(FLAGS_start_pods));
  // The floor is measured in crid's half, one round before each of crid's
  // pods, so both see the same load.
  std::unique_ptr<StartFloor> floor;
  if (dynamic_cast<CridRuntime*>(&rt) != nullptr) {
    absl::StatusOr<std::unique_ptr<StartFloor>> created =
        StartFloor::Create(*env.network, "/usr/sbin/runc");
    if (!created.ok()) {
      return created.status();
    }
    floor = *std::move(created);
  }
  Samples steps[3];
  Samples sum;
  Samples floor_parts[3];
  Samples floor_sum;
  // n = -1 is a warm-up round, not counted.
  for (int n = -1; n < pods; ++n) {
    if (floor != nullptr) {
      absl::StatusOr<StartFloorRound> round = floor->Round(n);
      if (!round.ok()) {
        return Annotate(round.status(), "start floor");
      }
      if (n >= 0) {
        const absl::Duration parts[3] = {round->netns_cni_add, round->runc_create,
                                         round->runc_start};
        for (int i = 0; i < 3; ++i) {
          floor_parts[i].Add(absl::ToDoubleMilliseconds(parts[i]));
        }
        floor_sum.Add(absl::ToDoubleMilliseconds(parts[0] + parts[1] + parts[2]));
      }
    }
    CRID_RETURN_IF_ERROR(StartOnePod(rt, env, n, steps, &sum));
  }
  if (floor != nullptr) {
    f->SetSamples("floor: netns + CNI ADD", floor_parts[0]);
    f->SetSamples("floor: runc create", floor_parts[1]);
    f->SetSamples("floor: runc start", floor_parts[2]);
    f->SetSamples("floor: one round's sum", floor_sum);
    const double floor_p50 = floor_parts[0].p50() + floor_parts[1].p50() + floor_parts[2].p50();
    f->Set("floor = sum of the parts' p50", floor_p50);
  }
  f->SetSamples("RunPodSandbox", steps[0]);
  f->SetSamples("CreateContainer", steps[1]);
  f->SetSamples("StartContainer", steps[2]);
  f->SetSamples("serial start (sum)", sum);
  if (floor != nullptr) {
    f->Set("serial start p50 / floor", sum.p50() / f->values.at("floor = sum of the parts' p50"));
  }
  return absl::OkStatus();
}

// ---- report ----

// A target on one figure: crid's value against a limit, or against
// containerd's value times a factor.
struct Target {
  std::string figure;
  std::string text;
  std::function<bool(double crid, std::optional<double> cd)> met;
};

void Print(const std::string& scenario, const Figures& crid, const std::optional<Figures>& cd,
           const std::vector<Target>& targets) {
  std::printf("\n%-44s %12s %12s %8s\n", scenario.c_str(), "crid", cd ? "containerd" : "",
              cd ? "cd/crid" : "");
  for (const std::string& name : crid.names) {
    const double c = crid.values.at(name);
    if (cd && cd->values.count(name) > 0) {
      const double d = cd->values.at(name);
      std::printf("  %-42s %12.2f %12.2f %8.2f\n", name.c_str(), c, d, c != 0 ? d / c : 0.0);
    } else {
      std::printf("  %-42s %12.2f\n", name.c_str(), c);
    }
  }
  for (const std::string& note : crid.notes) {
    std::printf("  crid: %s\n", note.c_str());
  }
  if (cd) {
    for (const std::string& note : cd->notes) {
      std::printf("  containerd: %s\n", note.c_str());
    }
  }
  for (const Target& t : targets) {
    auto it = crid.values.find(t.figure);
    if (it == crid.values.end()) {
      continue;
    }
    std::optional<double> other;
    if (cd && cd->values.count(t.figure) > 0) {
      other = cd->values.at(t.figure);
    }
    const bool needs_cd = absl::StrContains(t.text, "containerd");
    const char* verdict = needs_cd && !other         ? "not checked (no containerd)"
                          : t.met(it->second, other) ? "met"
                                                     : "MISSED";
    std::printf("  target: %s: %s\n", t.text.c_str(), verdict);
  }
  std::fflush(stdout);
}

std::vector<Target> TargetsFor(const std::string& scenario) {
  auto below = [](double limit) {
    return [limit](double c, std::optional<double>) { return c < limit; };
  };
  auto half_of_cd = [](double c, std::optional<double> d) { return d && c <= *d / 2; };
  if (scenario == "exec") {
    const std::string inflight =
        absl::StrCat(absl::GetFlag(FLAGS_exec_inflight), " in flight ExecSync p50");
    return {{"serial ExecSync p50", "serial p50 at most half of containerd's", half_of_cd},
            {inflight, "in-flight p50 at most half of containerd's", half_of_cd}};
  }
  if (scenario == "slow_stops") {
    return {
        {"during ExecSync p99", "ExecSync p99 < 50 ms during the stops", below(50)},
        {"during ContainerStatus p99", "ContainerStatus p99 < 50 ms during the stops", below(50)},
        {"during ListContainers p99", "ListContainers p99 < 50 ms during the stops", below(50)}};
  }
  if (scenario == "scale") {
    return {{"ListContainers p99", "ListContainers p99 < 1 ms", below(1)},
            {"ListPodSandbox p99", "ListPodSandbox p99 < 1 ms", below(1)},
            {"ListContainerStats p99", "ListContainerStats p99 < 5 ms", below(5)},
            {"ImageFsInfo p99", "ImageFsInfo p99 < 5 ms", below(5)}};
  }
  if (scenario == "start") {
    return {{"serial start p50 / floor", "serial start within 1.2x of the floor",
             [](double c, std::optional<double>) { return c <= 1.2; }}};
  }
  return {};
}

// The churn's own targets: after/idle within 10%.
void PrintChurnRatios(const Figures& f) {
  auto ratio = [&](const char* what, const std::string& idle, const std::string& after) {
    const double i = f.values.at(idle);
    const double a = f.values.at(after);
    const double r = i > 0 ? a / i : 0;
    std::printf("  target: %s after/idle %.2f (%.0f -> %.0f) within 10%%: %s\n", what, r, i, a,
                r <= 1.10 ? "met" : "MISSED");
  };
  ratio("crid threads", "daemon threads idle", "daemon threads after");
  ratio("crid RSS", "daemon RSS idle MiB", "daemon RSS after MiB");
  std::printf("  target: nothing leaked: %s\n", f.leak ? "MISSED (see LEAK lines)" : "met");
}

int Main() {
  if (::access("/usr/sbin/runc", X_OK) != 0) {
    std::fprintf(stderr, "runc is required (tools/install-deps.sh)\n");
    return 1;
  }
  TestRegistry registry;
  if (absl::Status st = registry.Start(); !st.ok()) {
    std::fprintf(stderr, "registry: %s\n", std::string(st.message()).c_str());
    return 1;
  }
  absl::StatusOr<BenchImages> images = PushBenchImages(registry);
  if (!images.ok()) {
    std::fprintf(stderr, "%s\n", std::string(images.status().message()).c_str());
    return 1;
  }
  TestCniNetwork network;
  TempDir logs;
  Env env;
  env.network = &network;
  env.images = *images;
  env.registry_host = registry.host();
  env.log_root = logs.path();
  if (absl::GetFlag(FLAGS_containerd)) {
    env.containerd_binary = absl::GetFlag(FLAGS_containerd_binary);
    if (env.containerd_binary.empty()) {
      env.containerd_binary = FindInPath("containerd");
    }
  }
  std::printf("core_bench: build %s; %ld CPUs; load %s\n", CompilationMode(),
              ::sysconf(_SC_NPROCESSORS_ONLN), LoadAverage().c_str());
  std::printf("network: CNI bridge %s + host-local %s (no masquerade), registry %s\n",
              network.bridge().c_str(), network.subnet().c_str(), registry.host().c_str());
  if (env.containerd_binary.empty()) {
    std::printf("containerd: comparison SKIPPED (%s)\n",
                absl::GetFlag(FLAGS_containerd) ? "not installed; apt-get install containerd"
                                                : "--nocontainerd");
  } else {
    std::printf("containerd: %s (runc %s)\n", ContainerdVersion(env.containerd_binary).c_str(),
                absl::GetFlag(FLAGS_containerd_runc).c_str());
  }

  const std::map<std::string, std::function<absl::Status(Runtime&, const Env&, Figures*)>> all = {
      {"churn", Churn},          {"concurrency", Concurrency},
      {"slow_stops", SlowStops}, {"exec", Exec},
      {"scale", Scale},          {"start", Start},
  };
  int status = 0;
  for (absl::string_view name_view :
       absl::StrSplit(absl::GetFlag(FLAGS_scenarios), ',', absl::SkipEmpty())) {
    const std::string name(name_view);
    auto it = all.find(name);
    if (it == all.end()) {
      std::fprintf(stderr, "unknown scenario %s\n", name.c_str());
      return 2;
    }
    std::printf("\n== %s (load before: %s)\n", name.c_str(), LoadAverage().c_str());
    std::fflush(stdout);
    const Scenario scenario = [&](Runtime& rt, Figures* f) { return it->second(rt, env, f); };
    Figures crid;
    if (absl::Status st = RunOn(env, name, /*containerd=*/false, scenario, &crid); !st.ok()) {
      std::fprintf(stderr, "%s: crid failed: %s\n", name.c_str(),
                   std::string(st.message()).c_str());
      status = 1;
      continue;
    }
    std::optional<Figures> cd;
    const bool compare = !env.containerd_binary.empty() &&
                         (name != "churn" || absl::GetFlag(FLAGS_churn_containerd));
    if (compare) {
      cd.emplace();
      if (absl::Status st = RunOn(env, name, /*containerd=*/true, scenario, &*cd); !st.ok()) {
        std::fprintf(stderr, "%s: containerd failed: %s\n", name.c_str(),
                     std::string(st.message()).c_str());
        cd.reset();
        status = 1;
      }
    }
    Print(absl::StrCat(name, " (load after: ", LoadAverage(), ")"), crid, cd, TargetsFor(name));
    if (name == "churn") {
      PrintChurnRatios(crid);
      if (crid.leak || (cd && cd->leak)) {
        status = 1;
      }
    }
  }
  std::printf("\ncd/crid > 1: crid is faster (or smaller) by that factor.\n");
  return status;
}

}  // namespace
}  // namespace crid::bench

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return crid::bench::Main();
}
