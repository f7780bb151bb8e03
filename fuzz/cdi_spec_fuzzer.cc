// Fuzz target: a CDI spec file as crid reads it from the spec directories,
// JSON or YAML (libyaml into crid's JSON type, anchors and aliases expanded),
// then validated into devices and their container edits. The first byte picks
// the file's extension, and so its parser.
#include <cstddef>
#include <cstdint>
#include <string>

#include "cdi/cdi.h"
#include "cdi/yaml_json.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) {
    return 0;
  }
  const bool yaml = (data[0] & 1) != 0;
  std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (yaml) {
    crid::YamlToJson(text, "fuzz.yaml").status().IgnoreError();
  }
  crid::ParseCdiSpec(text, yaml ? "/etc/cdi/fuzz.yaml" : "/etc/cdi/fuzz.json")
      .status()
      .IgnoreError();
  return 0;
}
