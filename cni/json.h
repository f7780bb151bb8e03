// Transitional: sandbox/ still builds a pod's CNI capability args as a
// google.protobuf.Struct. These are the names it uses, and the conversion that
// turns such a Struct into the nlohmann::json cni/ works with when it is
// assigned to Attachment::capability_args. Goes when sandbox/ builds them as
// crid::Json (base/json.h).
#pragma once

#include "absl/strings/string_view.h"
#include "base/json.h"
#include "google/protobuf/struct.pb.h"

namespace crid::cni {

using JsonValue = google::protobuf::Value;
using JsonObject = google::protobuf::Struct;

JsonValue StringValue(absl::string_view s);
JsonValue ObjectValue(JsonObject object);

}  // namespace crid::cni

namespace nlohmann {

template <>
struct adl_serializer<google::protobuf::Struct> {
  static void to_json(json& j, const google::protobuf::Struct& object);
};

}  // namespace nlohmann
