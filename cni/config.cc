#include "cni/config.h"

#include <dirent.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/errors.h"
#include "base/fs.h"
#include "base/logging.h"

namespace crid::cni {

absl::StatusOr<NetworkConfigList> ParseNetworkConfig(absl::string_view text, bool is_list,
                                                     const std::string& source) {
  CRID_ASSIGN_OR_RETURN(JsonValue doc, ParseJson(text));
  if (doc.kind_case() != JsonValue::kStructValue) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": not a JSON object"));
  }
  const JsonObject& top = doc.struct_value();
  NetworkConfigList list;
  list.source = source;
  list.text = std::string(text);
  list.is_list = is_list;
  list.name = StringField(top, "name");
  list.cni_version = StringField(top, "cniVersion");
  if (list.name.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": no network name"));
  }
  if (list.cni_version.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": no cniVersion"));
  }
  if (const JsonValue* dc = Field(top, "disableCheck");
      dc != nullptr && dc->kind_case() == JsonValue::kBoolValue) {
    list.disable_check = dc->bool_value();
  }
  if (is_list) {
    const JsonValue* plugins = Field(top, "plugins");
    if (plugins == nullptr || plugins->kind_case() != JsonValue::kListValue ||
        plugins->list_value().values_size() == 0) {
      return absl::InvalidArgumentError(absl::StrCat(source, ": no plugins in list"));
    }
    for (const JsonValue& p : plugins->list_value().values()) {
      if (p.kind_case() != JsonValue::kStructValue) {
        return absl::InvalidArgumentError(absl::StrCat(source, ": plugin is not an object"));
      }
      list.plugins.push_back(p.struct_value());
    }
  } else {
    list.plugins.push_back(top);
  }
  for (const JsonObject& p : list.plugins) {
    if (StringField(p, "type").empty()) {
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
