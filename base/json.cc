#include "base/json.h"

#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace crid {

namespace {

// Doubles hold every integer up to 2^53 exactly.
constexpr double kMaxExactDouble = 9007199254740992.0;

absl::StatusOr<Json> Parse(absl::string_view text, absl::string_view what,
                           absl::string_view problem) {
  bool too_deep = false;
  Json::parser_callback_t callback = [&too_deep](int depth, Json::parse_event_t event,
                                                 Json& parsed) {
    if (depth > kMaxJsonDepth) {
      too_deep = true;
      return false;  // discarded: nothing this deep is built
    }
    if (event == Json::parse_event_t::value && parsed.is_number_float()) {
      double d = parsed.get<double>();
      if (std::floor(d) == d && std::fabs(d) <= kMaxExactDouble) {
        parsed = static_cast<int64_t>(d);
      }
    }
    return true;
  };
  Json value;
  try {
    value = Json::parse(text.begin(), text.end(), callback);
  } catch (const Json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(what, problem, e.what()));
  }
  if (too_deep) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, problem, "nested more than ", kMaxJsonDepth, " levels deep"));
  }
  return value;
}

}  // namespace

absl::StatusOr<Json> ParseJson(absl::string_view text, absl::string_view what) {
  return Parse(text, what, " is not valid JSON: ");
}

absl::StatusOr<Json> ParseJsonObject(absl::string_view text, absl::string_view what) {
  absl::StatusOr<Json> value = Parse(text, what, " is not a JSON object: ");
  if (value.ok() && !value->is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " is not a JSON object: it is a JSON ", value->type_name()));
  }
  return value;
}

const Json* JsonField(const Json& obj, absl::string_view key) {
  if (!obj.is_object()) {
    return nullptr;
  }
  auto it = obj.find(std::string(key));
  return it == obj.end() ? nullptr : &*it;
}

std::string JsonString(const Json& obj, absl::string_view key) {
  const Json* v = JsonField(obj, key);
  return v != nullptr && v->is_string() ? v->get_ref<const std::string&>() : "";
}

const Json* JsonObject(const Json& obj, absl::string_view key) {
  const Json* v = JsonField(obj, key);
  return v != nullptr && v->is_object() ? v : nullptr;
}

const Json* JsonArray(const Json& obj, absl::string_view key) {
  const Json* v = JsonField(obj, key);
  return v != nullptr && v->is_array() ? v : nullptr;
}

std::optional<bool> JsonBool(const Json& obj, absl::string_view key) {
  const Json* v = JsonField(obj, key);
  if (v == nullptr || !v->is_boolean()) {
    return std::nullopt;
  }
  return v->get<bool>();
}

int64_t JsonInt(const Json& obj, absl::string_view key) {
  const Json* v = JsonField(obj, key);
  if (v == nullptr) {
    return -1;
  }
  if (v->is_number_unsigned()) {
    auto u = v->get<uint64_t>();
    return u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ? -1
                                                                          : static_cast<int64_t>(u);
  }
  if (v->is_number_integer()) {
    auto i = v->get<int64_t>();
    return i < 0 ? -1 : i;
  }
  return -1;
}

std::string JsonText(const Json& value) {
  return value.dump(-1, ' ', false, Json::error_handler_t::replace);
}

std::string JsonQuote(absl::string_view text) {
  std::string out;
  out.reserve(text.size() + 2);
  out.push_back('"');
  for (char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out += absl::StrFormat("\\u%04x", static_cast<unsigned char>(c));
        } else {
          out.push_back(c);
        }
    }
  }
  out.push_back('"');
  return out;
}

}  // namespace crid
