// End-to-end container benchmark over the CRI socket: for N pods, one after
// another, RunPodSandbox -> CreateContainer (busybox `sleep 3600`) ->
// StartContainer ("started"), then with all N running StopContainer (timeout 0)
// -> RemoveContainer -> StopPodSandbox -> RemovePodSandbox ("removed"). Reports
// p50/p99 latencies and the RSS/PSS of the runtime (daemon plus its per-pod
// shims) idle and with N pods up.
//
// The real crid binary runs with crid-shim and runc, pulling from a local
// docker-registry on 127.0.0.1, pods on a private CNI bridge (no masquerade,
// no route off the machine). Where `containerd` is installed, a private
// containerd (own root, state and socket under a temporary directory, the same
// CNI network, a pause image built from crid-pause in the same registry) is
// driven through its CRI socket by the same client code in the same run.
//
//   bazel run //bench:container_bench -- --pods 50
//
// With --pull_layers N it times PullImage instead: an image of N gzip layers
// (--pull_layer_mb each, uncompressed) through each runtime, cold on a fresh
// daemon and warm (already present), --pull_rounds fresh daemons each.
//
//   bazel run //bench:container_bench -- --pull_layers 8
//
// --sandboxes_only times pods alone (RunPodSandbox; StopPodSandbox +
// RemovePodSandbox) on the same bridge network.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/errors.h"
#include "base/temp_dir.h"
#include "bench/bench_layers.h"
#include "bench/cri_calls.h"
#include "bench/runtimes.h"
#include "tests/cni_fixture.h"
#include "tests/image_registry_fixture.h"

ABSL_FLAG(int, pods, 50, "pods to run (one container each), then stop and remove");
ABSL_FLAG(bool, containerd, true, "also measure containerd when it is installed");
ABSL_FLAG(bool, sandboxes_only, false,
          "pods without containers: RunPodSandbox, then StopPodSandbox+RemovePodSandbox");
ABSL_FLAG(int, pull_layers, 0,
          "instead of pods: time PullImage of an image with this many gzip layers, cold (fresh "
          "daemon) and warm (already present), through crid and containerd");
ABSL_FLAG(int, pull_layer_mb, 25, "uncompressed MB per layer for --pull_layers");
ABSL_FLAG(int, pull_rounds, 3, "fresh daemons per runtime for --pull_layers");
ABSL_FLAG(std::string, containerd_binary, "", "containerd to run (default: found in PATH)");
ABSL_FLAG(std::string, containerd_runc, "/usr/sbin/runc", "runc binary containerd's shims run");

namespace crid::bench {
namespace {

namespace v1 = ::runtime::v1;

// ---- the measured sequence ----

struct Result {
  std::string runtime;
  int pods = 0;
  std::vector<double> start_ms;
  std::vector<double> teardown_ms;
  std::vector<double> total_ms;
  double start_wall_s = 0;
  double teardown_wall_s = 0;
  Mem idle;
  Mem full;
  Mem after;
  Mem pause_full;
  int leftover_shims = 0;
};

// Samples memory after a short settle, so lazily freed memory has gone.
Mem Measure(Runtime& rt) {
  absl::SleepFor(absl::Seconds(2));
  return SumMem(rt.RuntimePids());
}

absl::Status Run(Runtime& rt, const std::vector<std::string>& pulls, const std::string& image,
                 int n, const std::string& log_root, Result* r) {
  r->runtime = rt.name();
  for (const std::string& ref : pulls) {
    if (absl::Status st = Pull(rt, ref); !st.ok()) {
      return absl::InternalError(absl::StrCat(st.message(), "\n", rt.Log()));
    }
  }
  r->idle = Measure(rt);

  const bool pods_only = absl::GetFlag(FLAGS_sandboxes_only);
  const std::vector<std::vector<std::string>> commands =
      pods_only ? std::vector<std::vector<std::string>>{}
                : std::vector<std::vector<std::string>>{{"/bin/sleep", "3600"}};
  std::vector<PodRun> pods;
  absl::Time phase = absl::Now();
  for (int i = 0; i < n; ++i) {
    absl::Time t0 = absl::Now();
    absl::StatusOr<PodRun> pod = StartPod(rt, absl::StrCat("bench-", i), image, commands,
                                          absl::StrCat(log_root, "/", rt.name()));
    if (!pod.ok()) {
      return absl::InternalError(absl::StrCat(pod.status().message(), "\n", rt.Log()));
    }
    r->start_ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - t0));
    pods.push_back(*std::move(pod));
  }
  r->start_wall_s = absl::ToDoubleSeconds(absl::Now() - phase);

  // All N up: every pod ready, every container running.
  absl::StatusOr<int> ready = CountPods(rt, v1::SANDBOX_READY);
  if (!ready.ok() || *ready != n) {
    return absl::InternalError(absl::StrCat(rt.name(), ": ", ready.value_or(0), " of ", n,
                                            " pods ready ", ready.status().message()));
  }
  if (!pods_only) {
    absl::StatusOr<int> running = CountContainers(rt, v1::CONTAINER_RUNNING);
    if (!running.ok() || *running != n) {
      return absl::InternalError(absl::StrCat(rt.name(), ": ", running.value_or(0), " of ", n,
                                              " containers running ", running.status().message()));
    }
  }
  r->full = Measure(rt);
  r->pause_full = SumMem(rt.PausePids());

  phase = absl::Now();
  for (size_t i = 0; i < pods.size(); ++i) {
    absl::Time t0 = absl::Now();
    if (absl::Status st = TearDownPod(rt, pods[i]); !st.ok()) {
      return absl::InternalError(absl::StrCat("teardown: ", st.message(), "\n", rt.Log()));
    }
    r->teardown_ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - t0));
    r->total_ms.push_back(r->start_ms[i] + r->teardown_ms.back());
  }
  r->teardown_wall_s = absl::ToDoubleSeconds(absl::Now() - phase);
  r->pods = n;
  // Every shim must be gone once its pod is removed.
  absl::Time deadline = absl::Now() + absl::Seconds(10);
  do {
    r->after = SumMem(rt.RuntimePids());
    r->leftover_shims = r->after.procs - 1;
    if (r->leftover_shims <= 0) {
      break;
    }
    absl::SleepFor(absl::Milliseconds(100));
  } while (absl::Now() < deadline);
  return absl::OkStatus();
}

// ---- report ----

double PerPod(int64_t full, int64_t idle, int n) {
  return n > 0 ? static_cast<double>(full - idle) / n : 0;
}

void PrintOne(const Result& r) {
  std::printf("\n%s: %d pods\n", r.runtime.c_str(), r.pods);
  const bool pods_only = absl::GetFlag(FLAGS_sandboxes_only);
  std::printf(pods_only
                  ? "  start    (RunPodSandbox)                     p50 %8.1f ms  p99 %8.1f ms\n"
                  : "  start    (RunPodSandbox..StartContainer)     p50 %8.1f ms  p99 %8.1f ms\n",
              Percentile(r.start_ms, 0.5), Percentile(r.start_ms, 0.99));
  std::printf(pods_only
                  ? "  teardown (StopPodSandbox..RemovePodSandbox)  p50 %8.1f ms  p99 %8.1f ms\n"
                  : "  teardown (StopContainer..RemovePodSandbox)   p50 %8.1f ms  p99 %8.1f ms\n",
              Percentile(r.teardown_ms, 0.5), Percentile(r.teardown_ms, 0.99));
  std::printf("  total    (start + teardown per pod)          p50 %8.1f ms  p99 %8.1f ms\n",
              Percentile(r.total_ms, 0.5), Percentile(r.total_ms, 0.99));
  std::printf("  wall: %d pods started in %.2f s, removed in %.2f s\n", r.pods, r.start_wall_s,
              r.teardown_wall_s);
  std::printf("  memory, daemon + shims   idle: RSS %7.1f MiB PSS %7.1f MiB (%d procs)\n",
              r.idle.rss_kb / 1024.0, r.idle.pss_kb / 1024.0, r.idle.procs);
  std::printf("                       %3d pods: RSS %7.1f MiB PSS %7.1f MiB (%d procs)\n", r.pods,
              r.full.rss_kb / 1024.0, r.full.pss_kb / 1024.0, r.full.procs);
  std::printf("                        per pod: RSS %7.1f KiB PSS %7.1f KiB\n",
              PerPod(r.full.rss_kb, r.idle.rss_kb, r.pods),
              PerPod(r.full.pss_kb, r.idle.pss_kb, r.pods));
  std::printf("  pause processes (not counted above): %d, RSS %.1f KiB PSS %.1f KiB per pod\n",
              r.pause_full.procs,
              r.pods > 0 ? static_cast<double>(r.pause_full.rss_kb) / r.pods : 0,
              r.pods > 0 ? static_cast<double>(r.pause_full.pss_kb) / r.pods : 0);
  std::printf("  after removing all pods: %d shim(s) left, daemon RSS %.1f MiB PSS %.1f MiB\n",
              std::max(r.leftover_shims, 0), r.after.rss_kb / 1024.0, r.after.pss_kb / 1024.0);
}

void PrintComparison(const Result& c, const Result& d) {
  auto row = [](const char* what, double crid, double other, const char* unit) {
    std::printf("  %-26s %10.1f %-4s %10.1f %-4s %8.2f\n", what, crid, unit, other, unit,
                crid > 0 ? other / crid : 0);
  };
  std::printf("\n%-28s %15s %15s %8s\n", "latency", "crid", "containerd", "cd/crid");
  row("start p50", Percentile(c.start_ms, 0.5), Percentile(d.start_ms, 0.5), "ms");
  row("start p99", Percentile(c.start_ms, 0.99), Percentile(d.start_ms, 0.99), "ms");
  row("teardown p50", Percentile(c.teardown_ms, 0.5), Percentile(d.teardown_ms, 0.5), "ms");
  row("teardown p99", Percentile(c.teardown_ms, 0.99), Percentile(d.teardown_ms, 0.99), "ms");
  row("total p50", Percentile(c.total_ms, 0.5), Percentile(d.total_ms, 0.5), "ms");
  row("total p99", Percentile(c.total_ms, 0.99), Percentile(d.total_ms, 0.99), "ms");
  row("wall, all pods up+down", c.start_wall_s + c.teardown_wall_s,
      d.start_wall_s + d.teardown_wall_s, "s");

  auto mem_row = [](const char* what, double crid, double other, const char* unit) {
    std::printf("  %-26s %10.1f %-4s %10.1f %-4s %8.2f\n", what, crid, unit, other, unit,
                other > 0 ? crid / other : 0);
  };
  std::printf("\n%-28s %15s %15s %8s\n", "memory (daemon + shims)", "crid", "containerd",
              "crid/cd");
  mem_row("idle RSS", c.idle.rss_kb / 1024.0, d.idle.rss_kb / 1024.0, "MiB");
  mem_row("idle PSS", c.idle.pss_kb / 1024.0, d.idle.pss_kb / 1024.0, "MiB");
  std::string full_rss = absl::StrCat(c.pods, " pods RSS");
  std::string full_pss = absl::StrCat(c.pods, " pods PSS");
  mem_row(full_rss.c_str(), c.full.rss_kb / 1024.0, d.full.rss_kb / 1024.0, "MiB");
  mem_row(full_pss.c_str(), c.full.pss_kb / 1024.0, d.full.pss_kb / 1024.0, "MiB");
  mem_row("per pod RSS", PerPod(c.full.rss_kb, c.idle.rss_kb, c.pods),
          PerPod(d.full.rss_kb, d.idle.rss_kb, d.pods), "KiB");
  mem_row("per pod PSS", PerPod(c.full.pss_kb, c.idle.pss_kb, c.pods),
          PerPod(d.full.pss_kb, d.idle.pss_kb, d.pods), "KiB");
  mem_row("per pod PSS incl. pause",
          PerPod(c.full.pss_kb + c.pause_full.pss_kb, c.idle.pss_kb, c.pods),
          PerPod(d.full.pss_kb + d.pause_full.pss_kb, d.idle.pss_kb, d.pods), "KiB");
  std::printf("\n  cd/crid > 1: crid is faster; crid/cd < 1: crid uses less memory per pod.\n");
}

struct PullTimes {
  std::vector<double> cold;  // seconds
  std::vector<double> warm;
};

// Each round starts a fresh daemon (empty store), pulls `image` (cold), pulls
// it again (warm) and shuts the daemon down.
template <typename MakeRuntime>
absl::Status TimePulls(MakeRuntime make, const std::string& image, int rounds, PullTimes* times) {
  for (int i = 0; i < rounds; ++i) {
    std::unique_ptr<Runtime> rt = make();
    CRID_RETURN_IF_ERROR(rt->Start());
    for (std::vector<double>* into : {&times->cold, &times->warm}) {
      absl::Time start = absl::Now();
      if (absl::Status st = Pull(*rt, image); !st.ok()) {
        std::string log = rt->Log();
        rt->Shutdown();
        return absl::InternalError(absl::StrCat(st.message(), "\n", log));
      }
      into->push_back(absl::ToDoubleSeconds(absl::Now() - start));
    }
    rt->Shutdown();
  }
  return absl::OkStatus();
}

int PullMain(TestRegistry& registry, const TestCniNetwork& network,
             const std::string& containerd_binary) {
  const int layers = absl::GetFlag(FLAGS_pull_layers);
  const int mb = absl::GetFlag(FLAGS_pull_layer_mb);
  const int rounds = std::max(1, absl::GetFlag(FLAGS_pull_rounds));
  TestImageSpec spec;
  uint64_t total = 0;
  for (int i = 0; i < layers; ++i) {
    spec.layers.push_back({BenchLayerTar(i, size_t(mb) << 20), LayerCompression::kGzip});
    total += spec.layers.back().tar.size();
  }
  if (absl::Status st = registry.PushImage("bench/big", "1", spec).status(); !st.ok()) {
    std::fprintf(stderr, "push: %s\n", std::string(st.message()).c_str());
    return 1;
  }
  const std::string image = registry.host() + "/bench/big:1";
  std::printf("pull: %d gzip layers, %.1f MB uncompressed, %d fresh daemon(s) per runtime\n",
              layers, total / 1e6, rounds);
  PullTimes crid_times;
  absl::Status st =
      TimePulls([&] { return std::make_unique<CridRuntime>(network); }, image, rounds, &crid_times);
  if (!st.ok()) {
    std::fprintf(stderr, "crid: %s\n", std::string(st.message()).c_str());
    return 1;
  }
  auto row = [](const char* what, double crid, double cd) {
    if (cd > 0) {
      std::printf("  %-26s %9.3f s %11.3f s %8.2f\n", what, crid, cd, cd / crid);
    } else {
      std::printf("  %-26s %9.3f s\n", what, crid);
    }
  };
  PullTimes cd_times;
  bool compare = absl::GetFlag(FLAGS_containerd) && !containerd_binary.empty();
  if (compare) {
    st = TimePulls(
        [&] {
          return std::make_unique<ContainerdRuntime>(containerd_binary, network, image,
                                                     registry.host(),
                                                     absl::GetFlag(FLAGS_containerd_runc));
        },
        image, rounds, &cd_times);
    if (!st.ok()) {
      std::fprintf(stderr, "containerd: %s\n", std::string(st.message()).c_str());
      return 1;
    }
    std::printf("\ncrid vs %s\n\n", ContainerdVersion(containerd_binary).c_str());
  } else {
    std::printf("\ncontainerd: comparison SKIPPED (not installed, or --nocontainerd)\n\n");
  }
  std::printf("  %-26s %11s %13s %8s\n", "PullImage", "crid", "containerd", "cd/crid");
  auto p50 = [](const std::vector<double>& v) { return Percentile(v, 0.5); };
  auto best = [](const std::vector<double>& v) {
    return v.empty() ? 0.0 : *std::min_element(v.begin(), v.end());
  };
  row("cold p50", p50(crid_times.cold), p50(cd_times.cold));
  row("cold best", best(crid_times.cold), best(cd_times.cold));
  row("warm p50", p50(crid_times.warm), p50(cd_times.warm));
  std::printf("  cold MB/s (uncompressed)   %9.1f %13.1f\n", total / 1e6 / p50(crid_times.cold),
              compare ? total / 1e6 / p50(cd_times.cold) : 0.0);
  std::printf("\n  cd/crid > 1: crid is faster.\n");
  return 0;
}

int Main() {
  const int n = absl::GetFlag(FLAGS_pods);
  if (n <= 0) {
    std::fprintf(stderr, "--pods must be positive\n");
    return 2;
  }
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
  const std::string& image = images->busybox;
  const std::string& pause_image = images->pause;

  TestCniNetwork network;
  if (absl::GetFlag(FLAGS_pull_layers) > 0) {
    std::string containerd_binary = absl::GetFlag(FLAGS_containerd_binary);
    return PullMain(registry, network,
                    containerd_binary.empty() ? FindInPath("containerd") : containerd_binary);
  }
  TempDir logs;
  std::printf(absl::GetFlag(FLAGS_sandboxes_only)
                  ? "container_bench: %d pods without containers, one at a time\n"
                  : "container_bench: %d pods, one `sleep 3600` busybox container each, one at a "
                    "time\n",
              n);
  std::printf("build: %s\n", CompilationMode());
  std::printf("network: CNI bridge %s + host-local %s (no masquerade), registry %s\n",
              network.bridge().c_str(), network.subnet().c_str(), registry.host().c_str());

  Result crid_result;
  {
    CridRuntime crid(network);
    absl::Status st = crid.Start();
    if (st.ok()) {
      st = Run(crid, {image}, image, n, logs.path(), &crid_result);
    }
    crid.Shutdown();
    if (!st.ok()) {
      std::fprintf(stderr, "crid run failed: %s\n", std::string(st.message()).c_str());
      return 1;
    }
  }
  PrintOne(crid_result);

  std::string containerd_binary = absl::GetFlag(FLAGS_containerd_binary);
  if (containerd_binary.empty()) {
    containerd_binary = FindInPath("containerd");
  }
  if (!absl::GetFlag(FLAGS_containerd)) {
    std::printf("\ncontainerd: comparison skipped (--nocontainerd)\n");
    return 0;
  }
  if (containerd_binary.empty()) {
    std::printf(
        "\ncontainerd: comparison SKIPPED: no containerd in %s "
        "(Debian: apt-get install containerd)\n",
        kPath);
    return 0;
  }

  Result cd_result;
  std::string version = ContainerdVersion(containerd_binary);
  {
    ContainerdRuntime containerd(containerd_binary, network, pause_image, registry.host(),
                                 absl::GetFlag(FLAGS_containerd_runc));
    absl::Status st = containerd.Start();
    if (st.ok()) {
      st = Run(containerd, {pause_image, image}, image, n, logs.path(), &cd_result);
    }
    containerd.Shutdown();
    if (!st.ok()) {
      std::fprintf(stderr, "containerd run failed: %s\n", std::string(st.message()).c_str());
      std::printf("\ncontainerd: comparison FAILED (see above)\n");
      return 1;
    }
  }
  cd_result.runtime = "containerd";
  PrintOne(cd_result);
  std::printf("\ncrid vs %s (runc %s), %s build\n", version.c_str(),
              absl::GetFlag(FLAGS_containerd_runc).c_str(), CompilationMode());
  PrintComparison(crid_result, cd_result);
  return 0;
}

}  // namespace
}  // namespace crid::bench

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return crid::bench::Main();
}
