// Loads crid's configuration: built-in defaults, then the JSON config file, then
// command-line flags, validated as a whole so a bad value fails at start with the
// field's name.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "proto/config.pb.h"

namespace crid {

// Every field filled with its built-in default.
config::Config DefaultConfig();

// Parses a JSON config file. Unknown fields and wrong types are errors naming the
// file and the field. Fields the file leaves out keep their defaults.
absl::StatusOr<config::Config> LoadConfigFile(const std::string& path);

// Parses JSON text (see LoadConfigFile); `origin` names it in errors.
absl::StatusOr<config::Config> ParseConfig(const std::string& json, const std::string& origin);

// Checks every field; the error names the first bad one.
absl::Status ValidateConfig(const config::Config& config);

// metrics.address: empty (off), "IPv4:PORT" or "[IPv6]:PORT", PORT 0..65535.
absl::Status ValidateMetricsAddress(const std::string& address);

// The unix socket path of a `unix://` endpoint; empty for anything else.
std::string SocketPath(const std::string& listen);

// The config as JSON, every field shown (for logs and Status verbose info).
std::string ConfigToJson(const config::Config& config);

}  // namespace crid
