#include "image/reference.h"

#include <gtest/gtest.h>

#include <string>

namespace crid {
namespace {

const std::string kDigest =
    "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

std::string Normalized(const std::string& text) {
  absl::StatusOr<Reference> ref = ParseReference(text);
  EXPECT_TRUE(ref.ok()) << text << ": " << ref.status();
  return ref.ok() ? ref->String() : "";
}

TEST(ReferenceTest, NormalisesLikeContainerd) {
  EXPECT_EQ(Normalized("busybox"), "docker.io/library/busybox:latest");
  EXPECT_EQ(Normalized("busybox:1.36"), "docker.io/library/busybox:1.36");
  EXPECT_EQ(Normalized("library/busybox"), "docker.io/library/busybox:latest");
  EXPECT_EQ(Normalized("docker.io/busybox"), "docker.io/library/busybox:latest");
  EXPECT_EQ(Normalized("index.docker.io/busybox"), "docker.io/library/busybox:latest");
  EXPECT_EQ(Normalized("someuser/app:v1"), "docker.io/someuser/app:v1");
  EXPECT_EQ(Normalized("registry.k8s.io/pause:3.9"), "registry.k8s.io/pause:3.9");
  EXPECT_EQ(Normalized("localhost/app"), "localhost/app:latest");
  EXPECT_EQ(Normalized("127.0.0.1:5000/a/b/c:t"), "127.0.0.1:5000/a/b/c:t");
  EXPECT_EQ(Normalized("gcr.io/k8s-staging/my_app__x.y:1.0-rc_1"),
            "gcr.io/k8s-staging/my_app__x.y:1.0-rc_1");
  EXPECT_EQ(Normalized("[::1]:5000/app:1"), "[::1]:5000/app:1");
}

TEST(ReferenceTest, Digests) {
  absl::StatusOr<Reference> ref = ParseReference("busybox@" + kDigest);
  ASSERT_TRUE(ref.ok()) << ref.status();
  EXPECT_EQ(ref->Name(), "docker.io/library/busybox");
  EXPECT_EQ(ref->tag, "");
  EXPECT_EQ(ref->digest, kDigest);
  EXPECT_EQ(ref->ManifestRef(), kDigest);
  // Tag plus digest: the digest names the image, the tag is dropped.
  ref = ParseReference("127.0.0.1:5000/app:1.0@" + kDigest);
  ASSERT_TRUE(ref.ok()) << ref.status();
  EXPECT_EQ(ref->domain, "127.0.0.1:5000");
  EXPECT_EQ(ref->String(), "127.0.0.1:5000/app@" + kDigest);
}

TEST(ReferenceTest, HostWithPortAndNoTag) {
  absl::StatusOr<Reference> ref = ParseReference("myhost:5000/app");
  ASSERT_TRUE(ref.ok()) << ref.status();
  EXPECT_EQ(ref->domain, "myhost:5000");
  EXPECT_EQ(ref->path, "app");
  EXPECT_EQ(ref->tag, "latest");
}

void ExpectInvalid(const std::string& text, const std::string& reason) {
  absl::StatusOr<Reference> ref = ParseReference(text);
  ASSERT_FALSE(ref.ok()) << text << " parsed as " << ref->String();
  EXPECT_EQ(ref.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(ref.status().message().find(reason), absl::string_view::npos)
      << text << ": " << ref.status();
}

TEST(ReferenceTest, RejectsInvalidWithReason) {
  ExpectInvalid("", "empty");
  ExpectInvalid("Busybox", "lowercase");
  ExpectInvalid("docker.io/Library/busybox", "lowercase");
  ExpectInvalid("busybox:", "invalid tag");
  ExpectInvalid("busybox:-x", "invalid tag");
  ExpectInvalid("busybox:" + std::string(129, 'a'), "invalid tag");
  ExpectInvalid("busybox@sha256:1234", "64 hex");
  ExpectInvalid("busybox@md5:d41d8cd98f00b204e9800998ecf8427e", "unsupported digest");
  ExpectInvalid("a//b", "path component");
  ExpectInvalid("a/-b", "path component");
  ExpectInvalid("bad_host.:5000/x", "registry host");
  ExpectInvalid("host:port/x", "registry host");
  ExpectInvalid(std::string(64, 'a'), "image ID");
  ExpectInvalid("x.io/" + std::string(260, 'a'), "255");
  ExpectInvalid("x.io/", "missing repository");
}

TEST(ReferenceTest, LooksLikeImageId) {
  EXPECT_TRUE(LooksLikeImageId(kDigest));
  EXPECT_TRUE(LooksLikeImageId(kDigest.substr(7)));
  EXPECT_FALSE(LooksLikeImageId("busybox"));
}

}  // namespace
}  // namespace crid
