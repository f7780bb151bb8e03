// The shim's log: one line per message, "<UTC time> <level> [<pod>] <text>",
// appended to shim.log with a single write(2) so lines from several threads
// never interleave. Deliberately tiny: crid-shim runs once per pod and is
// linked statically, so it carries no logging library.
//
//   log::Info("container {} created, pid {}", id, pid);
//
// Each "{}" takes the next argument: strings, numbers, enums, absl::Status.
#pragma once

#include <string>
#include <type_traits>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace crid::shim::log {

enum class Level { kDebug, kInfo, kWarning, kError };

// Sends the log to `fd` (owned by the caller; stderr until this is called)
// with `tag` in every line.
void Init(int fd, std::string tag);
void Emit(Level level, absl::string_view message);

namespace internal {

inline std::string Text(absl::string_view s) { return std::string(s); }
inline std::string Text(const std::string& s) { return s; }
inline std::string Text(const char* s) { return s == nullptr ? "(null)" : s; }
inline std::string Text(const absl::Status& s) { return s.ToString(); }
template <typename T, std::enable_if_t<std::is_arithmetic_v<T>, int> = 0>
std::string Text(T v) {
  return absl::StrCat(v);
}
template <typename T, std::enable_if_t<std::is_enum_v<T>, int> = 0>
std::string Text(T v) {
  return absl::StrCat(static_cast<long long>(v));
}

// Replaces each "{}" of `format` with the next of `args`.
std::string Format(absl::string_view format, const std::vector<std::string>& args);

}  // namespace internal

template <typename... Args>
void Debug(absl::string_view format, const Args&... args) {
  Emit(Level::kDebug, internal::Format(format, {internal::Text(args)...}));
}
template <typename... Args>
void Info(absl::string_view format, const Args&... args) {
  Emit(Level::kInfo, internal::Format(format, {internal::Text(args)...}));
}
template <typename... Args>
void Warn(absl::string_view format, const Args&... args) {
  Emit(Level::kWarning, internal::Format(format, {internal::Text(args)...}));
}
template <typename... Args>
void Error(absl::string_view format, const Args&... args) {
  Emit(Level::kError, internal::Format(format, {internal::Text(args)...}));
}

}  // namespace crid::shim::log
