// Minimal JSON text helpers for values crid builds itself (verbose info maps).
#pragma once

#include <string>

#include "absl/strings/string_view.h"

namespace crid {

// `text` as a JSON string literal, quotes included, with RFC 8259 escapes.
std::string JsonQuote(absl::string_view text);

}  // namespace crid
