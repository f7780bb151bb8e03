#include "cmd/binaries.h"

#include <unistd.h>

#include "absl/strings/str_cat.h"

namespace crid {

std::string FindCompanionBinary(const std::string& name, const std::string& build_dir) {
  char exe[4096] = {};
  ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  std::string dir = n > 0 ? std::string(exe, static_cast<size_t>(n)) : "";
  dir = dir.substr(0, dir.rfind('/'));
  for (const std::string& path :
       {absl::StrCat(dir, "/", name), absl::StrCat(dir, "/", build_dir, "/", name),
        absl::StrCat("/usr/local/bin/", name), absl::StrCat("/usr/bin/", name)}) {
    if (access(path.c_str(), X_OK) == 0) {
      return path;
    }
  }
  return "";
}

std::map<std::string, HandlerBinary> RuntimeHandlerBinaries(const config::Config& config) {
  std::map<std::string, HandlerBinary> handlers = {{"runc", {"/usr/sbin/runc", "", false}},
                                                   {"crun", {"/usr/bin/crun", "", false}}};
  for (const auto& [name, handler] : config.container().handlers()) {
    handlers[name] = {handler.binary(), handler.root(), true};
  }
  return handlers;
}

}  // namespace crid
