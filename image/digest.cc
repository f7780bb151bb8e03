#include "image/digest.h"

#include <cstdio>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace crid {

absl::Status ValidateDigest(absl::string_view digest) {
  size_t colon = digest.find(':');
  if (colon == absl::string_view::npos || colon == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid digest \"", digest, "\": expected ALGORITHM:HEX"));
  }
  absl::string_view algorithm = digest.substr(0, colon);
  if (algorithm != "sha256") {
    return absl::InvalidArgumentError(absl::StrCat("unsupported digest algorithm \"", algorithm,
                                                   "\" in \"", digest, "\" (only sha256)"));
  }
  absl::string_view hex = digest.substr(colon + 1);
  if (hex.size() != 64) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid digest \"", digest, "\": sha256 needs 64 hex digits"));
  }
  for (char c : hex) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return absl::InvalidArgumentError(
          absl::StrCat("invalid digest \"", digest, "\": not lowercase hex"));
    }
  }
  return absl::OkStatus();
}

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) { EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr); }

void Sha256::Update(const void* data, size_t size) { EVP_DigestUpdate(ctx_.get(), data, size); }

std::string Sha256::Finish() {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx_.get(), md, &len);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "sha256:";
  out.reserve(7 + 2 * len);
  for (unsigned int i = 0; i < len; ++i) {
    out.push_back(kHex[md[i] >> 4]);
    out.push_back(kHex[md[i] & 15]);
  }
  return out;
}

std::string DigestOf(absl::string_view data) {
  Sha256 hasher;
  hasher.Update(data);
  return hasher.Finish();
}

}  // namespace crid
