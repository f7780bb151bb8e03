// YAML text read into crid's JSON type, so CDI spec files in YAML and in JSON
// go through one validation path. libyaml does the parsing; this file only
// builds the value and resolves plain scalars as YAML's core schema does.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "base/json.h"

namespace crid {

// The first document of `text` as a JSON value. Plain scalars become null
// (~, null, empty), booleans (true, false), integers (decimal, 0x, 0o, and a
// leading 0 as octal, as Go's YAML readers take it) or floats; quoted and
// block scalars, and anything tagged !!str, stay strings. Anchors and
// aliases are expanded, up to 100,000 values in all (aliases counted each
// time they are used); mapping keys must be scalars and unique.
// INVALID_ARGUMENT "<what>: line N: ..." on malformed text.
absl::StatusOr<Json> YamlToJson(absl::string_view text, absl::string_view what);

}  // namespace crid
