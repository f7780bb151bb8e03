#include "cni/json.h"

#include <string>
#include <utility>

#include "google/protobuf/util/json_util.h"

namespace crid::cni {

JsonValue StringValue(absl::string_view s) {
  JsonValue v;
  v.set_string_value(std::string(s));
  return v;
}

JsonValue ObjectValue(JsonObject object) {
  JsonValue v;
  *v.mutable_struct_value() = std::move(object);
  return v;
}

}  // namespace crid::cni

namespace nlohmann {

void adl_serializer<google::protobuf::Struct>::to_json(json& j,
                                                       const google::protobuf::Struct& object) {
  std::string text;
  absl::StatusOr<crid::Json> parsed =
      google::protobuf::util::MessageToJsonString(object, &text).ok()
          ? crid::ParseJson(text, "capability args")
          : absl::InternalError("capability args do not print as JSON");
  j = parsed.ok() ? *std::move(parsed) : json::object();
}

}  // namespace nlohmann
