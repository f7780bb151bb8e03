#include "image/digest.h"

#include <gtest/gtest.h>

namespace crid {
namespace {

TEST(DigestTest, Sha256OfKnownText) {
  EXPECT_EQ(DigestOf(""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  Sha256 h;
  h.Update("ab");
  h.Update("c");
  EXPECT_EQ(h.Finish(), "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(DigestTest, ValidateDigest) {
  EXPECT_TRUE(ValidateDigest(DigestOf("x")).ok());
  EXPECT_FALSE(ValidateDigest("sha256:abc").ok());
  EXPECT_FALSE(ValidateDigest("md5:d41d8cd98f00b204e9800998ecf8427e").ok());
  EXPECT_FALSE(ValidateDigest("sha256:" + std::string(64, 'A')).ok());
  EXPECT_FALSE(ValidateDigest("nocolon").ok());
}

}  // namespace
}  // namespace crid
