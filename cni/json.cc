#include "cni/json.h"

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/json_util.h"

namespace crid::cni {

absl::StatusOr<JsonValue> ParseJson(absl::string_view text) {
  JsonValue value;
  auto st = google::protobuf::util::JsonStringToMessage(std::string(text), &value);
  if (!st.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("invalid JSON: ", std::string(st.message())));
  }
  return value;
}

std::string ToJson(const JsonValue& value) {
  std::string out;
  (void)google::protobuf::util::MessageToJsonString(value, &out);
  return out;
}

std::string ToJson(const JsonObject& object) {
  std::string out;
  (void)google::protobuf::util::MessageToJsonString(object, &out);
  return out;
}

const JsonValue* Field(const JsonObject& object, const std::string& name) {
  auto it = object.fields().find(name);
  return it == object.fields().end() ? nullptr : &it->second;
}

std::string StringField(const JsonObject& object, const std::string& name) {
  const JsonValue* v = Field(object, name);
  return v != nullptr && v->kind_case() == JsonValue::kStringValue ? v->string_value() : "";
}

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
