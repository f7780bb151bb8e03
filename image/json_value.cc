#include "image/json_value.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/json_util.h"

namespace crid {

absl::StatusOr<google::protobuf::Struct> ParseJsonObject(absl::string_view text,
                                                         absl::string_view what) {
  google::protobuf::Struct obj;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;
  auto st = google::protobuf::util::JsonStringToMessage(std::string(text), &obj, options);
  if (!st.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " is not a JSON object: ", std::string(st.message())));
  }
  return obj;
}

std::string JsonString(const google::protobuf::Struct& obj, const std::string& key) {
  auto it = obj.fields().find(key);
  if (it == obj.fields().end() || it->second.kind_case() != google::protobuf::Value::kStringValue) {
    return "";
  }
  return it->second.string_value();
}

const google::protobuf::Struct* JsonObject(const google::protobuf::Struct& obj,
                                           const std::string& key) {
  auto it = obj.fields().find(key);
  if (it == obj.fields().end() || it->second.kind_case() != google::protobuf::Value::kStructValue) {
    return nullptr;
  }
  return &it->second.struct_value();
}

const google::protobuf::ListValue* JsonList(const google::protobuf::Struct& obj,
                                            const std::string& key) {
  auto it = obj.fields().find(key);
  if (it == obj.fields().end() || it->second.kind_case() != google::protobuf::Value::kListValue) {
    return nullptr;
  }
  return &it->second.list_value();
}

int64_t JsonInt(const google::protobuf::Struct& obj, const std::string& key) {
  auto it = obj.fields().find(key);
  if (it == obj.fields().end() || it->second.kind_case() != google::protobuf::Value::kNumberValue) {
    return -1;
  }
  double v = it->second.number_value();
  if (!(v >= 0) || v > 9.0e15 || std::floor(v) != v) {
    return -1;
  }
  return static_cast<int64_t>(v);
}

std::string JsonText(const google::protobuf::Struct& obj) {
  std::string out;
  (void)google::protobuf::util::MessageToJsonString(obj, &out);
  return out;
}

}  // namespace crid
