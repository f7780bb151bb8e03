// JSON documents as google.protobuf.Value trees: CNI configs and results are
// free-form JSON, and protobuf (already linked) parses and prints it exactly.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/struct.pb.h"

namespace crid::cni {

using JsonValue = google::protobuf::Value;
using JsonObject = google::protobuf::Struct;

absl::StatusOr<JsonValue> ParseJson(absl::string_view text);
std::string ToJson(const JsonValue& value);
std::string ToJson(const JsonObject& object);

// Field access that tolerates absent fields and wrong types.
const JsonValue* Field(const JsonObject& object, const std::string& name);
std::string StringField(const JsonObject& object, const std::string& name);
JsonValue StringValue(absl::string_view s);
JsonValue ObjectValue(JsonObject object);

}  // namespace crid::cni
