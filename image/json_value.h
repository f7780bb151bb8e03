// Reading JSON documents from registries (manifests, indexes, configs, token
// answers) through protobuf's JSON parser into google.protobuf.Struct.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/struct.pb.h"

namespace crid {

// Parses a JSON object; INVALID_ARGUMENT naming `what` when it is not one.
absl::StatusOr<google::protobuf::Struct> ParseJsonObject(absl::string_view text,
                                                         absl::string_view what);

// Field accessors: an absent field or one of another type yields the fallback.
std::string JsonString(const google::protobuf::Struct& obj, const std::string& key);
const google::protobuf::Struct* JsonObject(const google::protobuf::Struct& obj,
                                           const std::string& key);
const google::protobuf::ListValue* JsonList(const google::protobuf::Struct& obj,
                                            const std::string& key);
// A non-negative integer field; -1 when absent, negative or not a whole number.
int64_t JsonInt(const google::protobuf::Struct& obj, const std::string& key);
// The object as compact JSON text.
std::string JsonText(const google::protobuf::Struct& obj);

}  // namespace crid
