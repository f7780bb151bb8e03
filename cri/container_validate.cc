#include "cri/container_validate.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace crid {

absl::Status ValidateContainerConfig(const runtime::v1::ContainerConfig& config) {
  if (!config.has_metadata() || config.metadata().name().empty()) {
    return absl::InvalidArgumentError("config.metadata.name: must not be empty");
  }
  if (config.image().image().empty()) {
    return absl::InvalidArgumentError("config.image.image: must not be empty");
  }
  if (!config.log_path().empty() && config.log_path()[0] == '/') {
    return absl::InvalidArgumentError(
        absl::StrCat("config.log_path: must be relative to the pod's log_directory, got \"",
                     config.log_path(), "\""));
  }
  for (absl::string_view part : absl::StrSplit(config.log_path(), '/')) {
    if (part == "..") {
      return absl::InvalidArgumentError(
          absl::StrCat("config.log_path: must stay inside the pod's log_directory, got \"",
                       config.log_path(), "\""));
    }
  }
  for (const runtime::v1::KeyValue& env : config.envs()) {
    if (env.key().empty()) {
      return absl::InvalidArgumentError("config.envs: a variable has an empty key");
    }
  }
  return absl::OkStatus();
}

}  // namespace crid
