// crid's entry point: flags and config, logging, the root lock, the metadata
// store, the CRI gRPC server, systemd readiness, and a graceful stop on SIGTERM.
#include <signal.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "base/errors.h"
#include "base/fs.h"
#include "base/lock_file.h"
#include "base/logging.h"
#include "cgroups/driver.h"
#include "cgroups/manager.h"
#include "cmd/binaries.h"
#include "cmd/check_command.h"
#include "cmd/cleanup_command.h"
#include "cmd/cli.h"
#include "cni/network.h"
#include "config/config.h"
#include "container/manager.h"
#include "cri/daemon_metrics.h"
#include "cri/image_service.h"
#include "cri/runtime_service.h"
#include "cri/runtime_state.h"
#include "cri/server.h"
#include "cri/streaming/sandbox_runtime.h"
#include "cri/streaming/server.h"
#include "cri/version_info.h"
#include "image/image_store.h"
#include "image/images_command.h"
#include "sandbox/manager.h"
#include "store/store.h"

ABSL_FLAG(std::string, config, "",
          "JSON config file (docs/configuration.md); built-in defaults when empty");
ABSL_FLAG(std::string, root, "", "persistent data directory (default /var/lib/crid)");
ABSL_FLAG(std::string, state, "", "runtime state directory (default /run/crid)");
ABSL_FLAG(std::string, listen, "", "gRPC endpoint (default unix:///run/crid/crid.sock)");
ABSL_FLAG(std::string, log_level, "",
          "trace, debug, info, warn, error, critical or off (default info)");
ABSL_FLAG(std::string, metrics_address, "",
          "HOST:PORT serving crid's own Prometheus metrics at /metrics (default off)");

namespace crid {
namespace {

constexpr absl::Duration kShutdownGrace = absl::Seconds(5);

// Exit codes: 1 = runtime failure, 2 (kExitUsage) = bad flags or configuration.
constexpr int kExitFailure = 1;

absl::StatusOr<config::Config> BuildConfig() {
  config::Config config = DefaultConfig();
  if (std::string path = absl::GetFlag(FLAGS_config); !path.empty()) {
    CRID_ASSIGN_OR_RETURN(config, LoadConfigFile(path));
  }
  // Flags win over the file.
  if (std::string v = absl::GetFlag(FLAGS_root); !v.empty()) {
    config.set_root(v);
  }
  if (std::string v = absl::GetFlag(FLAGS_state); !v.empty()) {
    config.set_state(v);
  }
  if (std::string v = absl::GetFlag(FLAGS_listen); !v.empty()) {
    config.set_listen(v);
  }
  if (std::string v = absl::GetFlag(FLAGS_log_level); !v.empty()) {
    config.set_log_level(v);
  }
  if (std::string v = absl::GetFlag(FLAGS_metrics_address); !v.empty()) {
    config.mutable_metrics()->set_address(v);
  }
  CRID_RETURN_IF_ERROR(ValidateConfig(config));
  return config;
}

absl::StatusOr<std::unique_ptr<cni::CniManager>> StartCni(const config::Config& config) {
  cni::CniOptions options;
  options.conf_dir = config.cni().conf_dir();
  options.bin_dirs.assign(config.cni().bin_dirs().begin(), config.cni().bin_dirs().end());
  options.cache_dir = config.root() + "/cni/results";
  options.plugin_timeout = absl::Seconds(config.cni().plugin_timeout_seconds());
  return cni::CniManager::Create(std::move(options));
}

std::string FindPauseBinary(const config::Config& config) {
  if (!config.pod().pause_binary().empty()) {
    return config.pod().pause_binary();
  }
  std::string path = FindCompanionBinary("crid-pause", "pause");
  if (path.empty()) {
    spdlog::warn("crid-pause not found: pods with a shared PID namespace will be refused");
  }
  return path;
}

absl::StatusOr<std::unique_ptr<sandbox::SandboxManager>> StartSandboxes(
    const config::Config& config, Store* store, cni::CniManager* cni, CgroupManager* cgroups) {
  sandbox::SandboxOptions options;
  options.cgroups = cgroups;
  options.state_dir = config.state();
  options.netns_dir = config.pod().netns_dir();
  options.pause_binary = FindPauseBinary(config);
  options.shm_size_bytes = config.pod().shm_size_bytes();
  options.workers = config.pod().workers();
  return sandbox::SandboxManager::Create(std::move(options), store, cni);
}

absl::StatusOr<std::unique_ptr<container::ContainerManager>> StartContainers(
    const config::Config& config, CgroupDriver driver, Store* store,
    sandbox::SandboxManager* sandboxes, ImageStore* images) {
  container::ContainerOptions options;
  options.root_dir = config.root() + "/containers";
  options.shim_dir = config.state() + "/shims";
  options.state_dir = config.state();
  options.shim_binary = config.container().shim_binary();
  if (options.shim_binary.empty()) {
    options.shim_binary = FindCompanionBinary("crid-shim", "shim");
  }
  if (options.shim_binary.empty()) {
    spdlog::warn("crid-shim not found: containers cannot be created");
  }
  for (const auto& [name, handler] : RuntimeHandlerBinaries(config)) {
    OciRuntimeConfig runtime;
    runtime.name = name;
    runtime.binary = handler.binary;
    runtime.root = handler.root.empty() ? config.state() + "/runtime/" + name : handler.root;
    runtime.systemd_cgroup = driver == CgroupDriver::kSystemd;
    options.handlers[name] = std::move(runtime);
  }
  options.default_handler = config.container().default_handler();
  options.cgroup_driver = driver;
  options.workers = config.container().workers();
  options.exec_output_limit = config.container().exec_output_limit_bytes();
  options.native_exec = config.container().native_exec();
  options.cdi_spec_dirs.assign(config.container().cdi_spec_dirs().begin(),
                               config.container().cdi_spec_dirs().end());
  return container::ContainerManager::Create(std::move(options), store, sandboxes, images);
}

absl::StatusOr<std::unique_ptr<CgroupManager>> StartCgroups(CgroupDriver driver) {
  CgroupManagerOptions options;
  options.driver = driver;
  CRID_ASSIGN_OR_RETURN(options.layout, CgroupLayout::Detect());
  return NewCgroupManager(std::move(options));
}

// The subcommands; `crid` without one serves CRI.
CommandLineParser MakeCommandLineParser() {
  return CommandLineParser(
      "crid: a Kubernetes CRI runtime.",
      {
          {"check", "", "check the configuration and the host's prerequisites",
           "Prints one line per check (ok or FAIL): config, privileges, root and state\n"
           "directories, overlayfs, cgroups and the cgroup driver, each runtime handler's\n"
           "OCI runtime, crid-shim and crid-pause, the CNI config and its plugins.\n"
           "Exits 1 when any check failed.",
           ""},
          {"cleanup", "[--dry-run]", "remove what a crid that died left on the host",
           "Stops what crid started for its pods (containers, crid-shim, crid-pause),\n"
           "removes their network attachments, mounts, namespace pins and cgroups, then\n"
           "the pods' and containers' records and files (images stay): a crid started\n"
           "afterwards has no pods, and kubelet creates them again. Refused while a crid\n"
           "uses the root. Prints each item before removing it.",
           "cmd/cleanup_command.cc"},
          {"images", "import FILE", "load an image tar into the root (crid stopped)",
           "FILE is an OCI image-layout tar or a `docker save` tar; prints the image IDs.", ""},
      },
      kCridVersion);
}

// Blocks until SIGTERM or SIGINT (blocked in every thread) arrives.
int WaitForStopSignal(const sigset_t& signals) {
  int sig = 0;
  while (sigwait(&signals, &sig) != 0) {
  }
  return sig;
}

int Run(int argc, char** argv) {
  ParseOutcome parsed = MakeCommandLineParser().Parse(std::vector<std::string>(argv, argv + argc));
  if (!parsed.line) {
    return parsed.exit_code;
  }
  const CommandLine& command = *parsed.line;
  if (command.subcommand == "check") {
    if (!command.args.empty()) {
      std::fprintf(stderr, "crid check: unexpected argument \"%s\"\n", command.args[0].c_str());
      return kExitUsage;
    }
    return RunCheckCommand(BuildConfig());
  }

  // Stop signals are taken by sigwait in this thread only; every thread started
  // from here on inherits the mask.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  auto logger = spdlog::stderr_color_mt("crid");
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%fZ %^%l%$ %v", spdlog::pattern_time_type::utc);
  spdlog::set_default_logger(logger);

  absl::StatusOr<config::Config> config = BuildConfig();
  if (!config.ok()) {
    spdlog::critical("invalid configuration: {}", config.status().message());
    return kExitUsage;
  }
  spdlog::set_level(spdlog::level::from_str(config->log_level()));
  if (command.subcommand == "images") {
    return RunImagesCommand(*config, command.args);
  }
  absl::StatusOr<CgroupDriver> driver = ResolveCgroupDriver(config->cgroup_driver());
  if (!driver.ok()) {
    spdlog::critical("invalid configuration: {}", driver.status().message());
    return kExitUsage;
  }
  if (command.subcommand == "cleanup") {
    if (!command.args.empty()) {
      std::fprintf(stderr, "crid cleanup: unexpected argument \"%s\"\n", command.args[0].c_str());
      return kExitUsage;
    }
    return RunCleanupCommand(*config, *driver);
  }

  for (const std::string& dir : {config->root(), config->state()}) {
    if (absl::Status st = MakeDirs(dir, 0711); !st.ok()) {
      spdlog::critical("{}", st.message());
      return kExitFailure;
    }
  }
  // One crid per root: two daemons sharing a store would corrupt each other's view.
  absl::StatusOr<LockFile> lock = LockFile::Acquire(config->root() + "/crid.lock");
  if (!lock.ok()) {
    spdlog::critical("cannot use root {}: {}", config->root(), lock.status().message());
    return kExitFailure;
  }
  absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(config->root() + "/crid.db");
  if (!store.ok()) {
    spdlog::critical("{}", store.status().message());
    return kExitFailure;
  }
  absl::StatusOr<std::unique_ptr<RuntimeState>> state =
      RuntimeState::Load(*config, *driver, store->get());
  if (!state.ok()) {
    spdlog::critical("loading runtime state: {}", state.status().message());
    return kExitFailure;
  }

  // crid's own metrics (metrics.address), made before the parts that record
  // into them so they outlive every thread that does.
  std::unique_ptr<DaemonMetrics> daemon_metrics;
  if (!config->metrics().address().empty()) {
    daemon_metrics = std::make_unique<DaemonMetrics>();
  }
  absl::StatusOr<std::unique_ptr<cni::CniManager>> cni = StartCni(*config);
  if (!cni.ok()) {
    spdlog::critical("starting CNI: {}", cni.status().message());
    return kExitFailure;
  }
  // Before the sandboxes: their recovery removes the cgroups of pods it tears down.
  // Without the cgroup manager (systemd configured but not reachable) crid
  // still serves; stats then lack CPU and memory, and the log says why.
  absl::StatusOr<std::unique_ptr<CgroupManager>> cgroups = StartCgroups(*driver);
  if (!cgroups.ok()) {
    spdlog::error("cgroup manager ({} driver) unavailable, no CPU/memory stats: {}",
                  CgroupDriverName(*driver), cgroups.status().message());
  }
  absl::StatusOr<std::unique_ptr<sandbox::SandboxManager>> sandboxes =
      StartSandboxes(*config, store->get(), cni->get(), cgroups.ok() ? cgroups->get() : nullptr);
  if (!sandboxes.ok()) {
    spdlog::critical("recovering pod sandboxes: {}", sandboxes.status().message());
    return kExitFailure;
  }
  // CNI GC keeps the attachments of the pods just recovered, at once and then
  // periodically; stopped (by the cleanup) before the sandbox manager goes.
  (*cni)->SetAttachmentSource([s = sandboxes->get()] {
    std::vector<cni::Attachment> known;
    for (const sandbox::SandboxRecord& r : s->List(runtime::v1::PodSandboxFilter())) {
      if (r.network_attached()) {
        known.push_back(sandbox::AttachmentFor(r));
      }
    }
    return known;
  });
  absl::Cleanup stop_cni_gc = [&cni] { (*cni)->SetAttachmentSource(nullptr); };
  absl::StatusOr<std::unique_ptr<ImageStore>> images =
      ImageStore::Open(config->root() + "/images", config->image(), store->get());
  if (!images.ok()) {
    spdlog::critical("opening the image store: {}", images.status().message());
    return kExitFailure;
  }
  absl::StatusOr<std::unique_ptr<container::ContainerManager>> containers =
      StartContainers(*config, *driver, store->get(), sandboxes->get(), images->get());
  if (!containers.ok()) {
    spdlog::critical("recovering containers: {}", containers.status().message());
    return kExitFailure;
  }
  RuntimeService runtime_service(state->get(), sandboxes->get(), containers->get());
  if (cgroups.ok()) {
    runtime_service.SetCgroupManager(cgroups->get());
    (*containers)->SetCgroupManager(cgroups->get());
  }
  ImageService image_service(images->get(), store->get());
  // Exec, Attach and PortForward URLs point at the streaming server.
  streaming::SandboxStreamingRuntime streaming_runtime(sandboxes->get());
  container::ContainerStreams container_streams(containers->get());
  streaming_runtime.SetContainerRuntime(&container_streams);
  streaming::ServerOptions streaming_options;
  streaming_options.address = config->streaming().address();
  streaming_options.port = static_cast<uint16_t>(config->streaming().port());
  streaming_options.tls.cert_file = config->streaming().tls_cert_file();
  streaming_options.tls.key_file = config->streaming().tls_key_file();
  streaming_options.tls.client_ca_file = config->streaming().tls_client_ca_file();
  absl::StatusOr<std::unique_ptr<streaming::Server>> streaming_server =
      streaming::Server::Start(streaming_options, &streaming_runtime);
  if (!streaming_server.ok()) {
    spdlog::critical("starting the streaming server: {}", streaming_server.status().message());
    return kExitFailure;
  }
  runtime_service.SetStreamingServer(streaming_server->get());
  spdlog::info("streaming server on {}", (*streaming_server)->base_url());
  ServerOptions options;
  options.socket_path = SocketPath(config->listen());
  options.socket_group = config->socket_group();
  options.max_message_bytes = static_cast<int>(config->max_message_bytes());
  // Declared after the managers: destroyed before them, as its scrapes read them.
  std::unique_ptr<metrics::MetricsEndpoint> metrics_endpoint;
  if (daemon_metrics != nullptr) {
    absl::StatusOr<std::unique_ptr<metrics::MetricsEndpoint>> endpoint = daemon_metrics->Serve(
        config->metrics().address(),
        MeteredParts{cni->get(), images->get(), sandboxes->get(), containers->get()});
    if (!endpoint.ok()) {
      spdlog::critical("{}", endpoint.status().message());
      return kExitFailure;
    }
    metrics_endpoint = std::move(*endpoint);
    spdlog::info("metrics on {} (port {}), path /metrics", config->metrics().address(),
                 metrics_endpoint->port());
  }
  absl::StatusOr<std::unique_ptr<CriServer>> server = CriServer::Start(
      options, {&runtime_service, &image_service},
      daemon_metrics != nullptr ? daemon_metrics->NewInterceptorFactory() : nullptr);
  if (!server.ok()) {
    spdlog::critical("{}", server.status().message());
    return kExitFailure;
  }
  spdlog::info("crid {} serving CRI runtime.v1 on {} (root {}, state {}, cgroup driver {})",
               kCridVersion, config->listen(), config->root(), config->state(),
               CgroupDriverName(*driver));
  sd_notify(0, "READY=1\nSTATUS=serving CRI runtime.v1");

  int sig = WaitForStopSignal(stop_signals);
  spdlog::info("received {}, shutting down", strsignal(sig));
  sd_notify(0, "STOPPING=1");
  (*server)->Shutdown(kShutdownGrace);
  (*streaming_server)->Stop();
  spdlog::info("crid stopped");
  return 0;
}

}  // namespace
}  // namespace crid

int main(int argc, char** argv) { return crid::Run(argc, argv); }
