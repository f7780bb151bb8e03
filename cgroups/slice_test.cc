// Slice names as kubelet and runc write them.
#include "cgroups/slice.h"

#include "gtest/gtest.h"

namespace crid {
namespace {

TEST(ExpandSlice, NestsEveryDashComponent) {
  EXPECT_EQ(*ExpandSlice("kubepods-burstable-pod1234.slice"),
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1234.slice");
  EXPECT_EQ(*ExpandSlice("kubepods.slice"), "/kubepods.slice");
  EXPECT_EQ(*ExpandSlice("system.slice"), "/system.slice");
  EXPECT_EQ(*ExpandSlice("-.slice"), "/");
  // kubelet replaces the pod UID's dashes by underscores.
  EXPECT_EQ(*ExpandSlice("kubepods-pod12_ab.slice"), "/kubepods.slice/kubepods-pod12_ab.slice");
}

TEST(ExpandSlice, RefusesWhatSystemdRefuses) {
  for (const char* bad : {"", ".slice", "kubepods", "kubepods.scope", "a--b.slice", "-a.slice",
                          "a-.slice", "a/b.slice", "--.slice"}) {
    absl::StatusOr<std::string> got = ExpandSlice(bad);
    EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

TEST(ExpandSlice, ExpandedPathsPassThrough) {
  const char* kPod = "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1_2.slice";
  EXPECT_EQ(*ExpandSlice(kPod), kPod);
  EXPECT_EQ(*ExpandSlice("/kubepods.slice/"), "/kubepods.slice");
  EXPECT_EQ(*ExpandSlice("/"), "/");
  // A path whose components are not nested the way the names say.
  EXPECT_FALSE(ExpandSlice("/kubepods.slice/other-burstable.slice").ok());
  EXPECT_FALSE(ExpandSlice("/kubepods-burstable.slice").ok());
  EXPECT_FALSE(ExpandSlice("/kubepods/burstable/pod1").ok());
  EXPECT_FALSE(ExpandSlice("/kubepods.slice/../x.slice").ok());
}

TEST(SliceName, FromNameOrPath) {
  EXPECT_EQ(*SliceName("/kubepods.slice/kubepods-besteffort.slice"), "kubepods-besteffort.slice");
  EXPECT_EQ(*SliceName("kubepods-besteffort.slice"), "kubepods-besteffort.slice");
  EXPECT_EQ(*SliceName(""), "system.slice");
  EXPECT_EQ(*SliceName("/"), "-.slice");
  EXPECT_FALSE(SliceName("/kubepods/besteffort").ok());
}

}  // namespace
}  // namespace crid
