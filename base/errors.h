// Builds absl::Status values from errno, naming the syscall and the object, so
// every kernel error that reaches a log or a gRPC answer says what failed where.
#pragma once

#include <cerrno>
#include <cstring>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace crid {

// Maps an errno value to the closest canonical status code.
absl::StatusCode ErrnoToCode(int err);

// ErrnoError(errno, "open ", path) -> "open /x: No such file or directory".
template <typename... Args>
absl::Status ErrnoError(int err, const Args&... context) {
  return absl::Status(ErrnoToCode(err), absl::StrCat(context..., ": ", std::strerror(err)));
}

// Prefixes a status message with context, keeping its code.
absl::Status Annotate(const absl::Status& status, absl::string_view context);

}  // namespace crid

// Returns early with the status of an expression that yields absl::Status.
#define CRID_RETURN_IF_ERROR(expr)              \
  do {                                          \
    if (absl::Status _st = (expr); !_st.ok()) { \
      return _st;                               \
    }                                           \
  } while (0)

#define CRID_CONCAT_INNER(a, b) a##b
#define CRID_CONCAT(a, b) CRID_CONCAT_INNER(a, b)

// CRID_ASSIGN_OR_RETURN(auto x, FunctionReturningStatusOr());
#define CRID_ASSIGN_OR_RETURN(lhs, expr) \
  CRID_ASSIGN_OR_RETURN_IMPL(CRID_CONCAT(_statusor_, __LINE__), lhs, expr)
#define CRID_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                               \
  if (!tmp.ok()) {                                 \
    return std::move(tmp).status();                \
  }                                                \
  lhs = std::move(tmp).value()
