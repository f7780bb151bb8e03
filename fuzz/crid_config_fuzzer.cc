// Fuzz target: crid's config file (JSON), parsed, validated and printed back.
#include <cstddef>
#include <cstdint>
#include <string>

#include "config/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<crid::config::Config> config = crid::ParseConfig(text, "fuzz");
  if (config.ok()) {
    crid::ValidateConfig(*config).IgnoreError();
    crid::ConfigToJson(*config);
    crid::SocketPath(config->listen());
  }
  return 0;
}
