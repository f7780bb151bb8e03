#include "config/config.h"

#include <arpa/inet.h>
#include <spdlog/spdlog.h>

#include <memory>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/errors.h"
#include "base/fs.h"
#include "base/logging.h"
#include "google/protobuf/util/json_util.h"

namespace crid {

namespace {

constexpr char kUnixScheme[] = "unix://";
constexpr uint32_t kMinMessageBytes = 4 * 1024 * 1024;

// Copies from `defaults` every field `config` leaves unset: empty strings, zero
// numbers, empty lists, absent optional fields. Recurses into sub-messages.
void FillDefaults(const google::protobuf::Message& defaults, google::protobuf::Message* config) {
  const google::protobuf::Descriptor* descriptor = config->GetDescriptor();
  const google::protobuf::Reflection* reflection = config->GetReflection();
  std::vector<const google::protobuf::FieldDescriptor*> missing;
  for (int i = 0; i < descriptor->field_count(); ++i) {
    const google::protobuf::FieldDescriptor* field = descriptor->field(i);
    if (!field->is_repeated() &&
        field->cpp_type() == google::protobuf::FieldDescriptor::CPPTYPE_MESSAGE) {
      FillDefaults(reflection->GetMessage(defaults, field),
                   reflection->MutableMessage(config, field));
    } else if (field->is_repeated() ? reflection->FieldSize(*config, field) == 0
                                    : !reflection->HasField(*config, field)) {
      missing.push_back(field);
    }
  }
  if (!missing.empty()) {
    std::unique_ptr<google::protobuf::Message> copy(defaults.New());
    copy->CopyFrom(defaults);
    reflection->SwapFields(config, copy.get(), missing);
  }
}

bool IsAbsolute(const std::string& path) { return !path.empty() && path[0] == '/'; }

}  // namespace

config::Config DefaultConfig() {
  config::Config c;
  c.set_root("/var/lib/crid");
  c.set_state("/run/crid");
  c.set_listen("unix:///run/crid/crid.sock");
  c.set_log_level("info");
  c.set_cgroup_driver("auto");
  c.set_max_message_bytes(16 * 1024 * 1024);
  c.mutable_image()->set_certs_dir("/etc/crid/certs.d");
  c.mutable_image()->set_max_concurrent_downloads(3);
  c.mutable_image()->set_pull_attempts(4);
  // Real layers expand 2 to 5 times; a compression bomb (8 MiB of gzip holding
  // 8 GiB of zeros) expands about 1000 times.
  c.mutable_image()->set_max_layer_bytes(uint64_t{64} << 30);
  c.mutable_image()->set_max_layer_expansion_ratio(100);
  c.mutable_image()->set_max_layer_ratio_floor_bytes(uint64_t{256} << 20);
  c.mutable_cni()->set_conf_dir("/etc/cni/net.d");
  c.mutable_cni()->add_bin_dirs("/opt/cni/bin");
  c.mutable_cni()->add_bin_dirs("/usr/lib/cni");
  c.mutable_cni()->set_plugin_timeout_seconds(60);
  c.mutable_pod()->set_shm_size_bytes(64ull << 20);
  c.mutable_pod()->set_netns_dir("/run/netns");
  c.mutable_pod()->set_workers(4);
  c.mutable_streaming()->set_address("127.0.0.1");
  c.mutable_streaming()->set_port(0);
  c.mutable_container()->set_default_handler("runc");
  c.mutable_container()->set_workers(16);
  c.mutable_container()->set_exec_output_limit_bytes(8u << 20);
  c.mutable_container()->set_native_exec(true);
  c.mutable_container()->add_cdi_spec_dirs("/etc/cdi");
  c.mutable_container()->add_cdi_spec_dirs("/var/run/cdi");
  c.mutable_metrics()->set_address("");  // off
  return c;
}

absl::Status ValidateMetricsAddress(const std::string& address) {
  if (address.empty()) {
    return absl::OkStatus();
  }
  auto invalid = [&address](const char* why) {
    return absl::InvalidArgumentError(absl::StrCat("metrics.address: ", why,
                                                   " (want HOST:PORT such as 127.0.0.1:9090, or "
                                                   "[::1]:9090), got \"",
                                                   address, "\""));
  };
  size_t colon = address.rfind(':');
  if (colon == std::string::npos) {
    return invalid("no port");
  }
  std::string host = address.substr(0, colon);
  uint32_t port = 0;
  if (!absl::SimpleAtoi(address.substr(colon + 1), &port) || port > 65535) {
    return invalid("the port must be 0 to 65535");
  }
  unsigned char addr[16];
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    if (inet_pton(AF_INET6, host.substr(1, host.size() - 2).c_str(), addr) == 1) {
      return absl::OkStatus();
    }
    return invalid("not an IPv6 address in the brackets");
  }
  if (inet_pton(AF_INET, host.c_str(), addr) == 1) {
    return absl::OkStatus();
  }
  return invalid("the host must be an IPv4 address, or an IPv6 address in brackets");
}

absl::StatusOr<config::Config> ParseConfig(const std::string& json, const std::string& origin) {
  config::Config parsed;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  auto st = google::protobuf::util::JsonStringToMessage(json, &parsed, options);
  if (!st.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("config ", origin, ": ", std::string(st.message())));
  }
  FillDefaults(DefaultConfig(), &parsed);
  return parsed;
}

absl::StatusOr<config::Config> LoadConfigFile(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) {
    return Annotate(text.status(), "reading config");
  }
  return ParseConfig(*text, path);
}

absl::Status ValidateConfig(const config::Config& c) {
  if (!IsAbsolute(c.root())) {
    return absl::InvalidArgumentError(
        absl::StrCat("root: must be an absolute path, got \"", c.root(), "\""));
  }
  if (!IsAbsolute(c.state())) {
    return absl::InvalidArgumentError(
        absl::StrCat("state: must be an absolute path, got \"", c.state(), "\""));
  }
  if (!absl::StartsWith(c.listen(), kUnixScheme) ||
      !IsAbsolute(c.listen().substr(sizeof(kUnixScheme) - 1))) {
    return absl::InvalidArgumentError(absl::StrCat(
        "listen: must be unix:// followed by an absolute socket path, got \"", c.listen(), "\""));
  }
  if (SocketPath(c.listen()).size() >= 108) {
    return absl::InvalidArgumentError(
        absl::StrCat("listen: socket path longer than 107 bytes: ", SocketPath(c.listen())));
  }
  if (spdlog::level::from_str(c.log_level()) == spdlog::level::off && c.log_level() != "off") {
    return absl::InvalidArgumentError(absl::StrCat(
        "log_level: must be one of trace, debug, info, warn, error, critical, off; got \"",
        c.log_level(), "\""));
  }
  if (c.cgroup_driver() != "auto" && c.cgroup_driver() != "systemd" &&
      c.cgroup_driver() != "cgroupfs") {
    return absl::InvalidArgumentError(absl::StrCat(
        "cgroup_driver: must be auto, systemd or cgroupfs; got \"", c.cgroup_driver(), "\""));
  }
  if (c.max_message_bytes() < kMinMessageBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "max_message_bytes: must be at least ", kMinMessageBytes, ", got ", c.max_message_bytes()));
  }
  if (!IsAbsolute(c.image().certs_dir())) {
    return absl::InvalidArgumentError(absl::StrCat(
        "image.certs_dir: must be an absolute path, got \"", c.image().certs_dir(), "\""));
  }
  if (c.image().max_concurrent_downloads() < 1 || c.image().max_concurrent_downloads() > 64) {
    return absl::InvalidArgumentError(
        absl::StrCat("image.max_concurrent_downloads: must be 1..64, got ",
                     c.image().max_concurrent_downloads()));
  }
  if (c.image().pull_attempts() < 1 || c.image().pull_attempts() > 20) {
    return absl::InvalidArgumentError(
        absl::StrCat("image.pull_attempts: must be 1..20, got ", c.image().pull_attempts()));
  }
  if (c.image().max_layer_bytes() < (uint64_t{1} << 20)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "image.max_layer_bytes: must be at least 1048576, got ", c.image().max_layer_bytes()));
  }
  if (c.image().max_layer_expansion_ratio() < 2) {
    return absl::InvalidArgumentError(
        absl::StrCat("image.max_layer_expansion_ratio: must be at least 2, got ",
                     c.image().max_layer_expansion_ratio()));
  }
  if (c.image().max_layer_ratio_floor_bytes() > c.image().max_layer_bytes()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "image.max_layer_ratio_floor_bytes: must not exceed image.max_layer_bytes (",
        c.image().max_layer_bytes(), "), got ", c.image().max_layer_ratio_floor_bytes()));
  }
  for (const auto& [host, registry] : c.image().registries()) {
    for (const std::string& mirror : registry.mirrors()) {
      if (!absl::StartsWith(mirror, "http://") && !absl::StartsWith(mirror, "https://")) {
        return absl::InvalidArgumentError(absl::StrCat("image.registries[\"", host,
                                                       "\"].mirrors: \"", mirror,
                                                       "\" must start with http:// or https://"));
      }
    }
  }
  if (!IsAbsolute(c.cni().conf_dir())) {
    return absl::InvalidArgumentError(
        absl::StrCat("cni.conf_dir: must be an absolute path, got \"", c.cni().conf_dir(), "\""));
  }
  for (const std::string& dir : c.cni().bin_dirs()) {
    if (!IsAbsolute(dir) || absl::StrContains(dir, ':')) {
      return absl::InvalidArgumentError(
          absl::StrCat("cni.bin_dirs: must be absolute paths without ':', got \"", dir, "\""));
    }
  }
  if (c.cni().plugin_timeout_seconds() < 1 || c.cni().plugin_timeout_seconds() > 3600) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cni.plugin_timeout_seconds: must be 1..3600, got ", c.cni().plugin_timeout_seconds()));
  }
  if (c.pod().shm_size_bytes() < 4096) {
    return absl::InvalidArgumentError(
        absl::StrCat("pod.shm_size_bytes: must be at least 4096, got ", c.pod().shm_size_bytes()));
  }
  if (!c.pod().pause_binary().empty() && !IsAbsolute(c.pod().pause_binary())) {
    return absl::InvalidArgumentError(absl::StrCat(
        "pod.pause_binary: must be an absolute path, got \"", c.pod().pause_binary(), "\""));
  }
  if (!IsAbsolute(c.pod().netns_dir())) {
    return absl::InvalidArgumentError(
        absl::StrCat("pod.netns_dir: must be an absolute path, got \"", c.pod().netns_dir(), "\""));
  }
  if (c.pod().workers() < 1 || c.pod().workers() > 64) {
    return absl::InvalidArgumentError(
        absl::StrCat("pod.workers: must be 1..64, got ", c.pod().workers()));
  }
  if (unsigned char addr[16]; inet_pton(AF_INET, c.streaming().address().c_str(), addr) != 1 &&
                              inet_pton(AF_INET6, c.streaming().address().c_str(), addr) != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("streaming.address: must be an IPv4 or IPv6 address, got \"",
                     c.streaming().address(), "\""));
  }
  if (absl::Status st = ValidateMetricsAddress(c.metrics().address()); !st.ok()) {
    return st;
  }
  if (c.streaming().port() > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("streaming.port: must be 0..65535, got ", c.streaming().port()));
  }
  if (c.streaming().tls_cert_file().empty() != c.streaming().tls_key_file().empty()) {
    return absl::InvalidArgumentError(
        "streaming.tls_cert_file, streaming.tls_key_file: set both for HTTPS, or neither");
  }
  if (!c.streaming().tls_client_ca_file().empty() && c.streaming().tls_cert_file().empty()) {
    return absl::InvalidArgumentError(
        "streaming.tls_client_ca_file: needs streaming.tls_cert_file and streaming.tls_key_file");
  }
  const config::ContainerConfig& ctr = c.container();
  for (const auto& [name, handler] : ctr.handlers()) {
    if (name.empty()) {
      return absl::InvalidArgumentError("container.handlers: a handler name must not be empty");
    }
    if (!IsAbsolute(handler.binary())) {
      return absl::InvalidArgumentError(absl::StrCat("container.handlers[", name,
                                                     "].binary: must be an absolute path, got \"",
                                                     handler.binary(), "\""));
    }
    if (!handler.root().empty() && !IsAbsolute(handler.root())) {
      return absl::InvalidArgumentError(absl::StrCat("container.handlers[", name,
                                                     "].root: must be an absolute path, got \"",
                                                     handler.root(), "\""));
    }
  }
  if (ctr.default_handler() != "runc" && ctr.default_handler() != "crun" &&
      ctr.handlers().count(ctr.default_handler()) == 0) {
    return absl::InvalidArgumentError(absl::StrCat("container.default_handler: \"",
                                                   ctr.default_handler(),
                                                   "\" is neither built in nor in handlers"));
  }
  if (!ctr.shim_binary().empty() && !IsAbsolute(ctr.shim_binary())) {
    return absl::InvalidArgumentError(absl::StrCat(
        "container.shim_binary: must be an absolute path, got \"", ctr.shim_binary(), "\""));
  }
  if (ctr.workers() < 1 || ctr.workers() > 256) {
    return absl::InvalidArgumentError(
        absl::StrCat("container.workers: must be 1..256, got ", ctr.workers()));
  }
  if (ctr.exec_output_limit_bytes() < 1024 || ctr.exec_output_limit_bytes() > (8u << 20)) {
    return absl::InvalidArgumentError(
        absl::StrCat("container.exec_output_limit_bytes: must be 1024..8388608, got ",
                     ctr.exec_output_limit_bytes()));
  }
  for (const std::string& dir : ctr.cdi_spec_dirs()) {
    if (!IsAbsolute(dir)) {
      return absl::InvalidArgumentError(
          absl::StrCat("container.cdi_spec_dirs: must be absolute paths, got \"", dir, "\""));
    }
  }
  return absl::OkStatus();
}

std::string SocketPath(const std::string& listen) {
  return absl::StartsWith(listen, kUnixScheme) ? listen.substr(sizeof(kUnixScheme) - 1) : "";
}

std::string ConfigToJson(const config::Config& config) {
  std::string out;
  google::protobuf::util::JsonPrintOptions options;
  options.always_print_primitive_fields = true;
  options.preserve_proto_field_names = true;
  // Printing a well-formed message cannot fail.
  (void)google::protobuf::util::MessageToJsonString(config, &out, options);
  return out;
}

}  // namespace crid
