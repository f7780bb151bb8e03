#include "cdi/cdi.h"

#include <dirent.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <algorithm>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "base/errors.h"
#include "base/fs.h"
#include "base/logging.h"
#include "cdi/yaml_json.h"

namespace crid {

namespace {

bool IsSpecFile(const std::string& name) {
  return absl::EndsWith(name, ".json") || absl::EndsWith(name, ".yaml") ||
         absl::EndsWith(name, ".yml");
}

// The device's vendor/class.
std::string KindOf(const std::string& qualified) {
  return qualified.substr(0, qualified.find('='));
}

// Fills a device node's type and numbers from its host node when the spec
// leaves them out, as the reference does at injection time.
absl::Status FillFromHost(CdiDeviceNode& node) {
  if (node.host_path.empty()) {
    node.host_path = node.path;
  }
  if (!node.type.empty() && (node.major != 0 || node.type == "p")) {
    return absl::OkStatus();
  }
  struct stat st {};
  if (lstat(node.host_path.c_str(), &st) != 0) {
    return ErrnoError(errno, "stat host device ", node.host_path);
  }
  std::string type;
  switch (st.st_mode & S_IFMT) {
    case S_IFBLK:
      type = "b";
      break;
    case S_IFCHR:
      type = "c";
      break;
    case S_IFIFO:
      type = "p";
      break;
    default:
      return absl::FailedPreconditionError(
          absl::StrCat("host device ", node.host_path, " is not a device node"));
  }
  if (node.type.empty()) {
    node.type = type;
  } else if (node.type != type && !(node.type == "u" && type == "c")) {
    return absl::FailedPreconditionError(absl::StrCat("device ", node.path, ": type \"", node.type,
                                                      "\" but host device ", node.host_path,
                                                      " is \"", type, "\""));
  }
  if (node.major == 0 && node.type != "p") {
    node.major = major(st.st_rdev);
    node.minor = minor(st.st_rdev);
  }
  return absl::OkStatus();
}

size_t MountDepth(const std::string& destination) {
  std::string clean = destination;
  while (clean.size() > 1 && clean.back() == '/') {
    clean.pop_back();
  }
  return static_cast<size_t>(std::count(clean.begin(), clean.end(), '/'));
}

}  // namespace

std::vector<std::string> DefaultCdiSpecDirs() { return {"/etc/cdi", "/var/run/cdi"}; }

bool CdiEdits::empty() const {
  return env.empty() && device_nodes.empty() && mounts.empty() && hooks.empty() &&
         additional_gids.empty() && intel_rdt.is_null();
}

void CdiEdits::Append(const CdiEdits& other) {
  env.insert(env.end(), other.env.begin(), other.env.end());
  device_nodes.insert(device_nodes.end(), other.device_nodes.begin(), other.device_nodes.end());
  mounts.insert(mounts.end(), other.mounts.begin(), other.mounts.end());
  hooks.insert(hooks.end(), other.hooks.begin(), other.hooks.end());
  additional_gids.insert(additional_gids.end(), other.additional_gids.begin(),
                         other.additional_gids.end());
  if (!other.intel_rdt.is_null()) {
    intel_rdt = other.intel_rdt;
  }
}

absl::StatusOr<std::vector<std::string>> RequestedCdiDevices(
    const runtime::v1::ContainerConfig& config) {
  std::vector<std::string> devices;
  std::set<std::string> seen;
  for (int i = 0; i < config.cdi_devices_size(); ++i) {
    const std::string& name = config.cdi_devices(i).name();
    if (absl::Status st = ValidateCdiDeviceName(name); !st.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("CDI_devices[", i, "].name: ", st.message()));
    }
    if (seen.insert(name).second) {
      devices.push_back(name);
    }
  }
  // Protobuf maps have no order; the keys' order makes the edits repeatable.
  std::map<std::string, std::string> annotations(config.annotations().begin(),
                                                 config.annotations().end());
  for (const auto& [key, value] : annotations) {
    if (!absl::StartsWith(key, kCdiAnnotationPrefix)) {
      continue;
    }
    for (absl::string_view part : absl::StrSplit(value, ',')) {
      std::string name(part);
      if (absl::Status st = ValidateCdiDeviceName(name); !st.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("annotations[\"", key, "\"]: ", st.message()));
      }
      if (seen.insert(name).second) {
        devices.push_back(name);
      }
    }
  }
  return devices;
}

CdiRegistry::CdiRegistry(std::vector<std::string> spec_dirs) : spec_dirs_(std::move(spec_dirs)) {}

void CdiRegistry::Rescan() {
  std::map<std::string, CachedFile> files;
  std::map<std::string, int> priority;
  for (size_t p = 0; p < spec_dirs_.size(); ++p) {
    const std::string& dir = spec_dirs_[p];
    absl::StatusOr<std::vector<std::string>> names = ListDir(dir);
    if (!names.ok()) {
      if (names.status().code() != absl::StatusCode::kNotFound) {
        spdlog::warn("CDI spec directory {}: {}", dir, names.status().message());
      }
      continue;
    }
    std::sort(names->begin(), names->end());
    for (const std::string& name : *names) {
      if (!IsSpecFile(name)) {
        continue;
      }
      const std::string path = absl::StrCat(dir, "/", name);
      struct stat st {};
      if (stat(path.c_str(), &st) != 0 || S_ISDIR(st.st_mode)) {
        continue;  // a dangling link, or a directory the reference skips too
      }
      CachedFile file;
      file.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
      file.size = st.st_size;
      file.inode = st.st_ino;
      auto cached = files_.find(path);
      if (cached != files_.end() && cached->second.mtime_ns == file.mtime_ns &&
          cached->second.size == file.size && cached->second.inode == file.inode) {
        file = std::move(cached->second);
      } else {
        absl::StatusOr<std::string> text = ReadFile(path);
        file.spec = text.ok() ? ParseCdiSpec(*text, path)
                              : absl::StatusOr<CdiSpec>(Annotate(text.status(), "CDI spec"));
        if (!file.spec.ok()) {
          // Only the devices such a file might define are lost; say so once
          // per change of the file.
          spdlog::warn("{}", file.spec.status().message());
          // A file whose text parses but is invalid still tells which
          // devices it was meant for; a NOT_FOUND for them names it.
          if (text.ok()) {
            absl::StatusOr<Json> raw =
                absl::EndsWith(path, ".json") ? ParseJson(*text, path) : YamlToJson(*text, path);
            if (raw.ok()) {
              file.kind = JsonString(*raw, "kind");
            }
          }
        }
      }
      priority[path] = static_cast<int>(p);
      files[path] = std::move(file);
    }
  }
  files_ = std::move(files);
  priority_ = std::move(priority);
}

absl::StatusOr<CdiEdits> CdiRegistry::Resolve(const std::vector<std::string>& devices) {
  absl::MutexLock lock(&mu_);
  Rescan();
  // Qualified name -> the spec files defining it at its highest priority.
  struct Definition {
    int priority = -1;
    std::vector<const CdiSpec*> specs;
  };
  std::map<std::string, Definition> defined;
  for (const auto& [path, file] : files_) {
    if (!file.spec.ok()) {
      continue;
    }
    const int p = priority_[path];
    for (const auto& [name, edits] : file.spec->devices) {
      Definition& d = defined[absl::StrCat(file.spec->kind, "=", name)];
      if (p > d.priority) {
        d.priority = p;
        d.specs.clear();
      }
      if (p == d.priority) {
        d.specs.push_back(&*file.spec);
      }
    }
  }
  CdiEdits result;
  std::set<const CdiSpec*> applied;
  for (const std::string& device : devices) {
    auto it = defined.find(device);
    if (it == defined.end()) {
      std::vector<std::string> broken;
      for (const auto& [path, file] : files_) {
        if (!file.spec.ok() && (file.kind.empty() || file.kind == KindOf(device))) {
          broken.push_back(std::string(file.spec.status().message()));
        }
      }
      return absl::NotFoundError(absl::StrCat(
          "CDI device \"", device, "\" is not defined by any spec file in ",
          absl::StrJoin(spec_dirs_, ", "),
          broken.empty() ? "" : absl::StrCat(" (unusable: ", absl::StrJoin(broken, "; "), ")")));
    }
    const Definition& d = it->second;
    if (d.specs.size() > 1) {
      return absl::InvalidArgumentError(absl::StrCat("CDI device \"", device,
                                                     "\" is defined by both ", d.specs[0]->path,
                                                     " and ", d.specs[1]->path));
    }
    const CdiSpec* spec = d.specs[0];
    if (applied.insert(spec).second) {
      result.Append(spec->edits);
    }
    result.Append(spec->devices.at(device.substr(device.find('=') + 1)));
  }
  for (CdiDeviceNode& node : result.device_nodes) {
    if (absl::Status st = FillFromHost(node); !st.ok()) {
      return absl::Status(
          st.code() == absl::StatusCode::kNotFound ? st.code()
                                                   : absl::StatusCode::kFailedPrecondition,
          absl::StrCat("CDI devices ", absl::StrJoin(devices, ", "), ": ", st.message()));
    }
  }
  return result;
}

absl::StatusOr<CdiEdits> ResolveCdiDevices(const runtime::v1::ContainerConfig& config,
                                           CdiRegistry* registry) {
  CRID_ASSIGN_OR_RETURN(std::vector<std::string> devices, RequestedCdiDevices(config));
  if (devices.empty()) {
    return CdiEdits();
  }
  if (registry == nullptr) {
    return absl::FailedPreconditionError("CDI_devices: CDI devices are not configured");
  }
  return registry->Resolve(devices);
}

absl::Status ApplyCdiEdits(const CdiEdits& edits, Json& spec) {
  if (edits.empty()) {
    return absl::OkStatus();
  }
  Json& process = spec["process"];
  Json& env = process["env"];
  if (!env.is_array()) {
    env = Json::array();
  }
  for (const std::string& entry : edits.env) {
    const std::string key = entry.substr(0, entry.find('='));
    auto same = std::find_if(env.begin(), env.end(), [&key](const Json& e) {
      return e.is_string() && e.get_ref<const std::string&>().substr(
                                  0, e.get_ref<const std::string&>().find('=')) == key;
    });
    if (same != env.end()) {
      *same = entry;
    } else {
      env.push_back(entry);
    }
  }

  Json& linux_spec = spec["linux"];
  Json& devices = linux_spec["devices"];
  if (!devices.is_array()) {
    devices = Json::array();
  }
  Json& rules = linux_spec["resources"]["devices"];
  if (!rules.is_array()) {
    rules = Json::array();
  }
  const int64_t uid = process["user"].value("uid", int64_t{0});
  const int64_t gid = process["user"].value("gid", int64_t{0});
  for (const CdiDeviceNode& node : edits.device_nodes) {
    Json device = {
        {"path", node.path}, {"type", node.type}, {"major", node.major}, {"minor", node.minor}};
    if (node.file_mode) {
      device["fileMode"] = *node.file_mode;
    }
    // Like the reference: a node without an owner belongs to the
    // container's user, so a non-root process can open it.
    if (node.uid) {
      device["uid"] = *node.uid;
    } else if (uid > 0) {
      device["uid"] = uid;
    }
    if (node.gid) {
      device["gid"] = *node.gid;
    } else if (gid > 0) {
      device["gid"] = gid;
    }
    auto same = std::find_if(devices.begin(), devices.end(),
                             [&node](const Json& d) { return d.value("path", "") == node.path; });
    if (same != devices.end()) {
      *same = std::move(device);
    } else {
      devices.push_back(std::move(device));
    }
    if (node.type == "b" || node.type == "c") {
      std::string access = node.permissions.empty()     ? "rwm"
                           : node.permissions == "none" ? ""
                                                        : node.permissions;
      rules.push_back({{"allow", true},
                       {"type", node.type},
                       {"major", node.major},
                       {"minor", node.minor},
                       {"access", access}});
    }
  }

  if (!edits.mounts.empty()) {
    Json& mounts = spec["mounts"];
    if (!mounts.is_array()) {
      mounts = Json::array();
    }
    for (const CdiMount& m : edits.mounts) {
      auto same = std::find_if(mounts.begin(), mounts.end(), [&m](const Json& existing) {
        return existing.value("destination", "") == m.container_path;
      });
      if (same != mounts.end()) {
        mounts.erase(same);
      }
      Json mount = {
          {"destination", m.container_path}, {"source", m.host_path}, {"options", m.options}};
      if (!m.type.empty()) {
        mount["type"] = m.type;
      }
      mounts.push_back(std::move(mount));
    }
    // Parents before children, otherwise in the order given.
    std::vector<Json> sorted(mounts.begin(), mounts.end());
    std::stable_sort(sorted.begin(), sorted.end(), [](const Json& a, const Json& b) {
      return MountDepth(a.value("destination", "")) < MountDepth(b.value("destination", ""));
    });
    mounts = Json(sorted);
  }

  for (const CdiHook& h : edits.hooks) {
    Json hook = {{"path", h.path}};
    if (!h.args.empty()) {
      hook["args"] = h.args;
    }
    if (!h.env.empty()) {
      hook["env"] = h.env;
    }
    if (h.timeout) {
      hook["timeout"] = *h.timeout;
    }
    spec["hooks"][h.hook_name].push_back(std::move(hook));
  }

  if (!edits.intel_rdt.is_null()) {
    linux_spec["intelRdt"] = edits.intel_rdt;
  }

  Json& groups = process["user"]["additionalGids"];
  if (!groups.is_array()) {
    groups = Json::array();
  }
  for (uint32_t g : edits.additional_gids) {
    if (g != 0 && std::find(groups.begin(), groups.end(), Json(g)) == groups.end()) {
      groups.push_back(g);
    }
  }
  return absl::OkStatus();
}

}  // namespace crid
