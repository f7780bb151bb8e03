#include "cni/config.h"

#include <dirent.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/errors.h"
#include "base/fs.h"
#include "base/logging.h"

namespace crid::cni {

bool CniVersionAtLeast(absl::string_view version, int major, int minor, int patch) {
  std::vector<absl::string_view> parts = absl::StrSplit(version, '.');
  if (parts.empty() || parts.size() > 3) {
    return false;
  }
  int have[3] = {0, 0, 0};
  for (size_t i = 0; i < parts.size(); ++i) {
    if (!absl::SimpleAtoi(parts[i], &have[i]) || have[i] < 0) {
      return false;
    }
  }
  const int want[3] = {major, minor, patch};
  return !std::lexicographical_compare(have, have + 3, want, want + 3);
}

absl::StatusOr<NetworkConfigList> ParseNetworkConfig(absl::string_view text, bool is_list,
                                                     const std::string& source) {
  CRID_ASSIGN_OR_RETURN(Json top, ParseJson(text, source));
  if (!top.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": not a JSON object"));
  }
  NetworkConfigList list;
  list.source = source;
  list.text = std::string(text);
  list.is_list = is_list;
  list.name = JsonString(top, "name");
  list.cni_version = JsonString(top, "cniVersion");
  if (list.name.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": no network name"));
  }
  if (list.cni_version.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": no cniVersion"));
  }
  list.disable_check = JsonBool(top, "disableCheck").value_or(false);
  list.disable_gc = JsonBool(top, "disableGC").value_or(false);
  if (is_list) {
    const Json* plugins = JsonArray(top, "plugins");
    if (plugins == nullptr || plugins->empty()) {
      return absl::InvalidArgumentError(absl::StrCat(source, ": no plugins in list"));
    }
    for (const Json& p : *plugins) {
      if (!p.is_object()) {
        return absl::InvalidArgumentError(absl::StrCat(source, ": plugin is not an object"));
      }
      list.plugins.push_back(p);
    }
  } else {
    list.plugins.push_back(std::move(top));
  }
  for (const Json& p : list.plugins) {
    if (JsonString(p, "type").empty()) {
      return absl::InvalidArgumentError(absl::StrCat(source, ": plugin without a type"));
    }
  }
  return list;
}

absl::StatusOr<NetworkConfigList> LoadFirstNetworkConfig(const std::string& dir) {
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) {
    return absl::NotFoundError(absl::StrCat("no network config found in ", dir, ": ",
                                            ErrnoError(errno, "open").message()));
  }
  std::vector<std::string> names;
  while (struct dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (absl::EndsWith(name, ".conflist") || absl::EndsWith(name, ".conf") ||
        absl::EndsWith(name, ".json")) {
      names.push_back(name);
    }
  }
  closedir(d);
  std::sort(names.begin(), names.end());
  for (const std::string& name : names) {
    std::string path = absl::StrCat(dir, "/", name);
    absl::StatusOr<std::string> text = ReadFile(path);
    if (!text.ok()) {
      spdlog::warn("skipping CNI config {}: {}", path, text.status().message());
      continue;
    }
    absl::StatusOr<NetworkConfigList> list =
        ParseNetworkConfig(*text, absl::EndsWith(name, ".conflist"), path);
    if (!list.ok()) {
      spdlog::warn("skipping CNI config {}: {}", path, list.status().message());
      continue;
    }
    return list;
  }
  return absl::NotFoundError(absl::StrCat("no network config found in ", dir));
}

}  // namespace crid::cni
