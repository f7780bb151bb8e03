// Errors name the syscall and the object, and keep a code callers can act on.
#include "base/errors.h"

#include "absl/status/statusor.h"
#include "gtest/gtest.h"

namespace crid {
namespace {

TEST(ErrnoError, NamesContextAndMapsCode) {
  absl::Status st = ErrnoError(ENOENT, "open ", "/x/y");
  EXPECT_EQ(st.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(st.message(), "open /x/y: No such file or directory");
  EXPECT_EQ(ErrnoError(EEXIST, "mkdir").code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(ErrnoError(EACCES, "x").code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(ErrnoError(EIO, "x").code(), absl::StatusCode::kInternal);
}

TEST(Annotate, PrefixesMessageKeepsCode) {
  absl::Status st = Annotate(absl::NotFoundError("gone"), "loading pod p1");
  EXPECT_EQ(st.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(st.message(), "loading pod p1: gone");
  EXPECT_TRUE(Annotate(absl::OkStatus(), "x").ok());
}

absl::StatusOr<int> Half(int v) {
  if (v % 2 != 0) {
    return absl::InvalidArgumentError("odd");
  }
  return v / 2;
}

absl::StatusOr<int> Quarter(int v) {
  CRID_ASSIGN_OR_RETURN(int h, Half(v));
  CRID_ASSIGN_OR_RETURN(int q, Half(h));
  return q;
}

absl::Status CheckEven(int v) {
  CRID_RETURN_IF_ERROR(Half(v).status());
  return absl::OkStatus();
}

TEST(Macros, PropagateErrorsAndValues) {
  EXPECT_EQ(*Quarter(8), 2);
  EXPECT_EQ(Quarter(6).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(CheckEven(4).ok());
  EXPECT_EQ(CheckEven(3).message(), "odd");
}

}  // namespace
}  // namespace crid
