// crid's one JSON library, nlohmann::json, used the safe way: text from outside
// (registries, image archives, CNI configs and plugin output) is parsed without
// exceptions escaping and read through accessors that tolerate absent fields
// and wrong types, so hostile input gives an error, never an exception.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace crid {

using Json = nlohmann::json;

// Deeper nesting is refused: values this deep are never meant, and printing
// and copying them recurse.
inline constexpr int kMaxJsonDepth = 256;

// Parses any JSON value. INVALID_ARGUMENT "<what> is not valid JSON: ..." when
// the text is malformed or nested too deeply. Integers keep all 64 bits; a
// whole number written as a float (1.0, 1e3) is read as an integer, as Go's
// encoding/json (CNI plugins) wants it when crid passes the value on.
absl::StatusOr<Json> ParseJson(absl::string_view text, absl::string_view what);

// Parses a JSON object. INVALID_ARGUMENT "<what> is not a JSON object: ..."
// when the text is malformed or another kind of value.
absl::StatusOr<Json> ParseJsonObject(absl::string_view text, absl::string_view what);

// Field accessors. `obj` that is not an object, an absent field, or a field of
// another type yields the fallback; none of them throws.
const Json* JsonField(const Json& obj, absl::string_view key);
// "" when not a string.
std::string JsonString(const Json& obj, absl::string_view key);
// nullptr when not an object / an array.
const Json* JsonObject(const Json& obj, absl::string_view key);
const Json* JsonArray(const Json& obj, absl::string_view key);
// nullopt when not a boolean.
std::optional<bool> JsonBool(const Json& obj, absl::string_view key);
// A non-negative integer field; -1 when absent, negative, fractional or above
// INT64_MAX.
int64_t JsonInt(const Json& obj, absl::string_view key);

// The value as compact JSON text. Never throws: invalid UTF-8 in strings is
// replaced with U+FFFD.
std::string JsonText(const Json& value);

// `text` as a JSON string literal, quotes included, with RFC 8259 escapes.
std::string JsonQuote(absl::string_view text);

}  // namespace crid
