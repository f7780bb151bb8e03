// Reading and validating one CDI spec file (the reference's spec.go,
// container-edits.go and version checks): the file is refused as a whole
// for one bad field, and every error names the file and the field.
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "cdi/cdi.h"
#include "cdi/yaml_json.h"

namespace crid {

namespace {

// Known versions, newest first; 0.1.0 and 0.2.0 are known but too old.
const std::vector<std::string>& KnownVersions() {
  static const std::vector<std::string> versions = {"1.1.0", "1.0.0", "0.8.0", "0.7.0", "0.6.0",
                                                    "0.5.0", "0.4.0", "0.3.0", "0.2.0", "0.1.0"};
  return versions;
}

int VersionIndex(const std::string& version) {
  const std::vector<std::string>& known = KnownVersions();
  for (size_t i = 0; i < known.size(); ++i) {
    if (known[i] == version) {
      return static_cast<int>(i);
    }
  }
  return -1;
}

bool IsLetter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool IsAlnum(char c) { return IsLetter(c) || (c >= '0' && c <= '9'); }

// Vendor and class: a letter, then letters, digits, '_', '-' or '.', ending
// in a letter or digit. Device names: the same with ':' and may start with a
// digit.
absl::Status ValidateCdiName(const std::string& name, const char* what, bool device) {
  if (name.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("empty ", what));
  }
  if (device ? !IsAlnum(name[0]) : !IsLetter(name[0])) {
    return absl::InvalidArgumentError(absl::StrCat(what, " \"", name, "\" must start with a ",
                                                   device ? "letter or digit" : "letter"));
  }
  for (size_t i = 1; i + 1 < name.size(); ++i) {
    char c = name[i];
    if (!IsAlnum(c) && c != '_' && c != '-' && c != '.' && !(device && c == ':')) {
      return absl::InvalidArgumentError(
          absl::StrCat("invalid character '", std::string(1, c), "' in ", what, " \"", name, "\""));
    }
  }
  if (!IsAlnum(name.back())) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " \"", name, "\" must end with a letter or digit"));
  }
  return absl::OkStatus();
}

// Reads one file's JSON value; every error is "CDI spec <path>: <field>: why".
class SpecReader {
 public:
  explicit SpecReader(const std::string& path) : path_(path) {}

  absl::Status Error(const std::string& field, absl::string_view why) const {
    return absl::InvalidArgumentError(
        absl::StrCat("CDI spec ", path_, ": ", field, field.empty() ? "" : ": ", why));
  }

  // Unknown fields are errors, as the reference reads specs strictly.
  absl::Status OnlyFields(const Json& obj, const std::string& field,
                          std::initializer_list<const char*> allowed) const {
    if (!obj.is_object()) {
      return Error(field, "must be an object");
    }
    for (const auto& [key, value] : obj.items()) {
      bool known = false;
      for (const char* name : allowed) {
        known = known || key == name;
      }
      if (!known) {
        return Error(Join(field, key), "unknown field");
      }
    }
    return absl::OkStatus();
  }

  static std::string Join(const std::string& field, absl::string_view key) {
    return field.empty() ? std::string(key) : absl::StrCat(field, ".", key);
  }

  // A string field; YAML's unquoted whole numbers are taken as their text,
  // as the reference's YAML reader does for string fields.
  absl::StatusOr<std::string> String(const Json& obj, const char* key, const std::string& field,
                                     bool required) const {
    const Json* value = JsonField(obj, key);
    if (value == nullptr || value->is_null()) {
      if (required) {
        return Error(Join(field, key), "missing");
      }
      return std::string();
    }
    if (value->is_string()) {
      if (required && value->get_ref<const std::string&>().empty()) {
        return Error(Join(field, key), "must not be empty");
      }
      return value->get<std::string>();
    }
    if (value->is_number_integer()) {
      return value->dump();
    }
    return Error(Join(field, key), "must be a string");
  }

  absl::StatusOr<std::vector<std::string>> Strings(const Json& obj, const char* key,
                                                   const std::string& field) const {
    std::vector<std::string> out;
    const Json* value = JsonField(obj, key);
    if (value == nullptr || value->is_null()) {
      return out;
    }
    if (!value->is_array()) {
      return Error(Join(field, key), "must be a list of strings");
    }
    for (const Json& item : *value) {
      if (!item.is_string()) {
        return Error(Join(field, key), "must be a list of strings");
      }
      out.push_back(item.get<std::string>());
    }
    return out;
  }

  // A non-negative integer no larger than `max`; nullopt when absent.
  absl::StatusOr<std::optional<int64_t>> Integer(const Json& obj, const char* key,
                                                 const std::string& field, int64_t max) const {
    const Json* value = JsonField(obj, key);
    if (value == nullptr || value->is_null()) {
      return std::optional<int64_t>();
    }
    if (!value->is_number_integer() ||
        (value->is_number_unsigned() && value->get<uint64_t>() > static_cast<uint64_t>(max))) {
      return Error(Join(field, key), absl::StrCat("must be an integer from 0 to ", max));
    }
    int64_t n = value->get<int64_t>();
    if (n < 0 || n > max) {
      return Error(Join(field, key), absl::StrCat("must be an integer from 0 to ", max));
    }
    return std::optional<int64_t>(n);
  }

  absl::Status Env(const std::vector<std::string>& env, const std::string& field) const {
    for (const std::string& entry : env) {
      size_t eq = entry.find('=');
      if (eq == std::string::npos || eq == 0) {
        return Error(field, absl::StrCat("\"", entry, "\" is not KEY=value"));
      }
    }
    return absl::OkStatus();
  }

  absl::Status Annotations(const Json& obj, const std::string& field) const {
    const Json* value = JsonField(obj, "annotations");
    if (value == nullptr || value->is_null()) {
      return absl::OkStatus();
    }
    if (!value->is_object()) {
      return Error(Join(field, "annotations"), "must be a map of strings");
    }
    for (const auto& [key, item] : value->items()) {
      if (!item.is_string()) {
        return Error(Join(Join(field, "annotations"), key), "must be a string");
      }
    }
    return absl::OkStatus();
  }

  absl::StatusOr<CdiEdits> Edits(const Json& obj, const std::string& field) const {
    CdiEdits edits;
    if (obj.is_null()) {
      return edits;
    }
    if (absl::Status st = OnlyFields(
            obj, field,
            {"env", "deviceNodes", "hooks", "mounts", "intelRdt", "additionalGids", "netDevices"});
        !st.ok()) {
      return st;
    }
    if (const Json* net = JsonField(obj, "netDevices"); net != nullptr && !net->is_null()) {
      return Error(Join(field, "netDevices"), "network devices are not supported");
    }
    absl::StatusOr<std::vector<std::string>> env = Strings(obj, "env", field);
    if (!env.ok()) {
      return env.status();
    }
    if (absl::Status st = Env(*env, Join(field, "env")); !st.ok()) {
      return st;
    }
    edits.env = std::move(*env);
    if (absl::Status st = DeviceNodes(obj, Join(field, "deviceNodes"), &edits); !st.ok()) {
      return st;
    }
    if (absl::Status st = Mounts(obj, Join(field, "mounts"), &edits); !st.ok()) {
      return st;
    }
    if (absl::Status st = Hooks(obj, Join(field, "hooks"), &edits); !st.ok()) {
      return st;
    }
    if (const Json* gids = JsonField(obj, "additionalGids"); gids != nullptr && !gids->is_null()) {
      if (!gids->is_array()) {
        return Error(Join(field, "additionalGids"), "must be a list of group IDs");
      }
      for (const Json& gid : *gids) {
        if (!gid.is_number_integer() || gid.get<int64_t>() < 0 || gid.get<int64_t>() > UINT32_MAX) {
          return Error(Join(field, "additionalGids"), "must be a list of group IDs");
        }
        edits.additional_gids.push_back(gid.get<uint32_t>());
      }
    }
    if (const Json* rdt = JsonField(obj, "intelRdt"); rdt != nullptr && !rdt->is_null()) {
      const std::string rdt_field = Join(field, "intelRdt");
      if (absl::Status st = OnlyFields(
              *rdt, rdt_field,
              {"closID", "l3CacheSchema", "memBwSchema", "schemata", "enableMonitoring"});
          !st.ok()) {
        return st;
      }
      absl::StatusOr<std::string> clos = String(*rdt, "closID", rdt_field, false);
      if (!clos.ok()) {
        return clos.status();
      }
      if (*clos != "/" && (clos->size() >= 4096 || *clos == "." || *clos == ".." ||
                           absl::StrContains(*clos, '/') || absl::StrContains(*clos, '\n'))) {
        return Error(Join(rdt_field, "closID"), absl::StrCat("invalid CLOS ID \"", *clos, "\""));
      }
      edits.intel_rdt = *rdt;
    }
    return edits;
  }

  absl::Status DeviceNodes(const Json& obj, const std::string& field, CdiEdits* edits) const {
    const Json* nodes = JsonField(obj, "deviceNodes");
    if (nodes == nullptr || nodes->is_null()) {
      return absl::OkStatus();
    }
    if (!nodes->is_array()) {
      return Error(field, "must be a list");
    }
    for (size_t i = 0; i < nodes->size(); ++i) {
      const Json& n = (*nodes)[i];
      const std::string f = absl::StrCat(field, "[", i, "]");
      if (absl::Status st = OnlyFields(n, f,
                                       {"path", "hostPath", "type", "major", "minor", "fileMode",
                                        "permissions", "uid", "gid"});
          !st.ok()) {
        return st;
      }
      CdiDeviceNode node;
      absl::StatusOr<std::string> path = String(n, "path", f, true);
      absl::StatusOr<std::string> host_path = String(n, "hostPath", f, false);
      absl::StatusOr<std::string> type = String(n, "type", f, false);
      absl::StatusOr<std::string> permissions = String(n, "permissions", f, false);
      for (const auto* st : {&path, &host_path, &type, &permissions}) {
        if (!st->ok()) {
          return st->status();
        }
      }
      node.path = *path;
      node.host_path = *host_path;
      node.type = *type;
      node.permissions = *permissions;
      if (node.path[0] != '/') {
        return Error(f + ".path",
                     absl::StrCat("must be an absolute path, got \"", node.path, "\""));
      }
      if (!node.host_path.empty() && node.host_path[0] != '/') {
        return Error(f + ".hostPath",
                     absl::StrCat("must be an absolute path, got \"", node.host_path, "\""));
      }
      if (!node.type.empty() && node.type != "b" && node.type != "c" && node.type != "u" &&
          node.type != "p") {
        return Error(f + ".type", absl::StrCat("must be b, c, u or p, got \"", node.type, "\""));
      }
      if (!node.permissions.empty() && node.permissions != "none" &&
          node.permissions.find_first_not_of("rwm") != std::string::npos) {
        return Error(f + ".permissions",
                     absl::StrCat("must be made of r, w and m, or be \"none\"; got \"",
                                  node.permissions, "\""));
      }
      absl::StatusOr<std::optional<int64_t>> major = Integer(n, "major", f, INT64_MAX);
      absl::StatusOr<std::optional<int64_t>> minor = Integer(n, "minor", f, INT64_MAX);
      absl::StatusOr<std::optional<int64_t>> mode = Integer(n, "fileMode", f, UINT32_MAX);
      absl::StatusOr<std::optional<int64_t>> uid = Integer(n, "uid", f, UINT32_MAX);
      absl::StatusOr<std::optional<int64_t>> gid = Integer(n, "gid", f, UINT32_MAX);
      for (const auto* st : {&major, &minor, &mode, &uid, &gid}) {
        if (!st->ok()) {
          return st->status();
        }
      }
      node.major = major->value_or(0);
      node.minor = minor->value_or(0);
      if (mode->has_value()) {
        node.file_mode = static_cast<uint32_t>(**mode);
      }
      if (uid->has_value()) {
        node.uid = static_cast<uint32_t>(**uid);
      }
      if (gid->has_value()) {
        node.gid = static_cast<uint32_t>(**gid);
      }
      edits->device_nodes.push_back(std::move(node));
    }
    return absl::OkStatus();
  }

  absl::Status Mounts(const Json& obj, const std::string& field, CdiEdits* edits) const {
    const Json* mounts = JsonField(obj, "mounts");
    if (mounts == nullptr || mounts->is_null()) {
      return absl::OkStatus();
    }
    if (!mounts->is_array()) {
      return Error(field, "must be a list");
    }
    for (size_t i = 0; i < mounts->size(); ++i) {
      const Json& m = (*mounts)[i];
      const std::string f = absl::StrCat(field, "[", i, "]");
      if (absl::Status st = OnlyFields(m, f, {"hostPath", "containerPath", "options", "type"});
          !st.ok()) {
        return st;
      }
      absl::StatusOr<std::string> host_path = String(m, "hostPath", f, true);
      absl::StatusOr<std::string> container_path = String(m, "containerPath", f, true);
      absl::StatusOr<std::string> type = String(m, "type", f, false);
      absl::StatusOr<std::vector<std::string>> options = Strings(m, "options", f);
      for (const auto* st : {&host_path, &container_path, &type}) {
        if (!st->ok()) {
          return st->status();
        }
      }
      if (!options.ok()) {
        return options.status();
      }
      if ((*container_path)[0] != '/') {
        return Error(f + ".containerPath",
                     absl::StrCat("must be an absolute path, got \"", *container_path, "\""));
      }
      edits->mounts.push_back({*host_path, *container_path, *options, *type});
    }
    return absl::OkStatus();
  }

  absl::Status Hooks(const Json& obj, const std::string& field, CdiEdits* edits) const {
    static const std::set<std::string> kHookNames = {
        "prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"};
    const Json* hooks = JsonField(obj, "hooks");
    if (hooks == nullptr || hooks->is_null()) {
      return absl::OkStatus();
    }
    if (!hooks->is_array()) {
      return Error(field, "must be a list");
    }
    for (size_t i = 0; i < hooks->size(); ++i) {
      const Json& h = (*hooks)[i];
      const std::string f = absl::StrCat(field, "[", i, "]");
      if (absl::Status st = OnlyFields(h, f, {"hookName", "path", "args", "env", "timeout"});
          !st.ok()) {
        return st;
      }
      CdiHook hook;
      absl::StatusOr<std::string> name = String(h, "hookName", f, true);
      if (!name.ok()) {
        return name.status();
      }
      if (kHookNames.count(*name) == 0) {
        return Error(f + ".hookName", absl::StrCat("unknown hook \"", *name, "\""));
      }
      absl::StatusOr<std::string> path = String(h, "path", f, true);
      if (!path.ok()) {
        return path.status();
      }
      absl::StatusOr<std::vector<std::string>> args = Strings(h, "args", f);
      absl::StatusOr<std::vector<std::string>> env = Strings(h, "env", f);
      if (!args.ok()) {
        return args.status();
      }
      if (!env.ok()) {
        return env.status();
      }
      if (absl::Status st = Env(*env, f + ".env"); !st.ok()) {
        return st;
      }
      if (const Json* timeout = JsonField(h, "timeout");
          timeout != nullptr && !timeout->is_null()) {
        if (!timeout->is_number_integer() || timeout->get<int64_t>() <= 0 ||
            timeout->get<int64_t>() > INT32_MAX) {
          return Error(f + ".timeout", "must be a positive number of seconds");
        }
        hook.timeout = timeout->get<int64_t>();
      }
      hook.hook_name = *name;
      hook.path = *path;
      hook.args = std::move(*args);
      hook.env = std::move(*env);
      edits->hooks.push_back(std::move(hook));
    }
    return absl::OkStatus();
  }

 private:
  const std::string& path_;
};

// The lowest version that has every feature `spec` uses (the reference's
// requiresVxxx checks); `raw` is the file's value, for features kept out of
// CdiSpec.
std::string MinimumVersion(const CdiSpec& spec, const Json& raw) {
  std::vector<const Json*> edits = {JsonObject(raw, "containerEdits")};
  std::vector<const CdiEdits*> parsed = {&spec.edits};
  bool annotations = JsonField(raw, "annotations") != nullptr;
  bool digit_name = false;
  if (const Json* devices = JsonArray(raw, "devices"); devices != nullptr) {
    for (const Json& d : *devices) {
      edits.push_back(JsonObject(d, "containerEdits"));
      annotations = annotations || JsonField(d, "annotations") != nullptr;
      std::string name = JsonString(d, "name");
      digit_name = digit_name || (!name.empty() && !IsLetter(name[0]));
    }
  }
  for (const auto& [name, device] : spec.devices) {
    parsed.push_back(&device);
  }
  bool rdt_v110 = false;
  bool rdt = false;
  bool gids = false;
  for (const Json* e : edits) {
    if (const Json* r = e == nullptr ? nullptr : JsonObject(*e, "intelRdt"); r != nullptr) {
      rdt = true;
      rdt_v110 = rdt_v110 || JsonField(*r, "schemata") != nullptr ||
                 JsonBool(*r, "enableMonitoring").value_or(false);
    }
  }
  bool host_path = false;
  bool mount_type = false;
  for (const CdiEdits* e : parsed) {
    gids = gids || !e->additional_gids.empty();
    for (const CdiDeviceNode& n : e->device_nodes) {
      host_path = host_path || !n.host_path.empty();
    }
    for (const CdiMount& m : e->mounts) {
      mount_type = mount_type || !m.type.empty();
    }
  }
  size_t slash = spec.kind.find('/');
  bool class_dot = slash != std::string::npos && spec.kind.find('.', slash) != std::string::npos;
  if (rdt_v110) {
    return "1.1.0";
  }
  if (rdt || gids) {
    return "0.7.0";
  }
  if (annotations || class_dot) {
    return "0.6.0";
  }
  if (digit_name || host_path) {
    return "0.5.0";
  }
  if (mount_type) {
    return "0.4.0";
  }
  return "0.3.0";
}

}  // namespace

absl::Status ValidateCdiDeviceName(const std::string& qualified) {
  size_t slash = qualified.find('/');
  size_t eq = qualified.find('=');
  if (slash == std::string::npos || eq == std::string::npos || eq < slash) {
    return absl::InvalidArgumentError(absl::StrCat(
        "\"", qualified, "\" is not a fully-qualified CDI device name (vendor.com/class=name)"));
  }
  const std::string vendor = qualified.substr(0, slash);
  const std::string cls = qualified.substr(slash + 1, eq - slash - 1);
  const std::string name = qualified.substr(eq + 1);
  for (const absl::Status& st :
       {ValidateCdiName(vendor, "vendor", false), ValidateCdiName(cls, "class", false),
        ValidateCdiName(name, "device name", true)}) {
    if (!st.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("invalid CDI device \"", qualified, "\": ", st.message()));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<CdiSpec> ParseCdiSpec(const std::string& text, const std::string& path) {
  SpecReader reader(path);
  const std::string what = absl::StrCat("CDI spec ", path);
  absl::StatusOr<Json> raw =
      absl::EndsWith(path, ".json") ? ParseJson(text, what) : YamlToJson(text, what);
  if (!raw.ok()) {
    return raw.status();
  }
  if (raw->is_null()) {
    return reader.Error("", "no spec data");
  }
  if (absl::Status st = reader.OnlyFields(
          *raw, "", {"cdiVersion", "kind", "annotations", "devices", "containerEdits"});
      !st.ok()) {
    return st;
  }
  CdiSpec spec;
  spec.path = path;
  absl::StatusOr<std::string> version = reader.String(*raw, "cdiVersion", "", true);
  if (!version.ok()) {
    return version.status();
  }
  spec.version = absl::StartsWith(*version, "v") ? version->substr(1) : *version;
  if (VersionIndex(spec.version) < 0) {
    return reader.Error("cdiVersion", absl::StrCat("unknown version \"", *version, "\""));
  }
  absl::StatusOr<std::string> kind = reader.String(*raw, "kind", "", true);
  if (!kind.ok()) {
    return kind.status();
  }
  spec.kind = *kind;
  size_t slash = spec.kind.find('/');
  if (slash == std::string::npos) {
    return reader.Error("kind", absl::StrCat("\"", spec.kind, "\" is not vendor/class"));
  }
  if (absl::Status st = ValidateCdiName(spec.kind.substr(0, slash), "vendor", false); !st.ok()) {
    return reader.Error("kind", st.message());
  }
  if (absl::Status st = ValidateCdiName(spec.kind.substr(slash + 1), "class", false); !st.ok()) {
    return reader.Error("kind", st.message());
  }
  if (absl::Status st = reader.Annotations(*raw, ""); !st.ok()) {
    return st;
  }
  const Json* top_edits = JsonField(*raw, "containerEdits");
  absl::StatusOr<CdiEdits> edits =
      reader.Edits(top_edits == nullptr ? Json() : *top_edits, "containerEdits");
  if (!edits.ok()) {
    return edits.status();
  }
  spec.edits = std::move(*edits);
  const Json* devices = JsonField(*raw, "devices");
  if (devices == nullptr || devices->is_null() || (devices->is_array() && devices->empty())) {
    return reader.Error("devices", "no devices");
  }
  if (!devices->is_array()) {
    return reader.Error("devices", "must be a list");
  }
  for (size_t i = 0; i < devices->size(); ++i) {
    const Json& d = (*devices)[i];
    const std::string f = absl::StrCat("devices[", i, "]");
    if (absl::Status st = reader.OnlyFields(d, f, {"name", "annotations", "containerEdits"});
        !st.ok()) {
      return st;
    }
    absl::StatusOr<std::string> name = reader.String(d, "name", f, true);
    if (!name.ok()) {
      return name.status();
    }
    if (absl::Status st = ValidateCdiName(*name, "device name", true); !st.ok()) {
      return reader.Error(f + ".name", st.message());
    }
    if (absl::Status st = reader.Annotations(d, f); !st.ok()) {
      return st;
    }
    const Json* device_edits = JsonField(d, "containerEdits");
    absl::StatusOr<CdiEdits> parsed =
        reader.Edits(device_edits == nullptr ? Json() : *device_edits, f + ".containerEdits");
    if (!parsed.ok()) {
      return parsed.status();
    }
    if (parsed->empty()) {
      return reader.Error(f + ".containerEdits",
                          absl::StrCat("device \"", *name, "\" has no container edits"));
    }
    if (!spec.devices.emplace(*name, std::move(*parsed)).second) {
      return reader.Error(f + ".name", absl::StrCat("device \"", *name, "\" is defined twice"));
    }
  }
  std::string minimum = MinimumVersion(spec, *raw);
  if (VersionIndex(minimum) < VersionIndex(spec.version)) {
    return reader.Error("cdiVersion", absl::StrCat("the spec needs version ", minimum,
                                                   " or later, but says \"", *version, "\""));
  }
  return spec;
}

}  // namespace crid
