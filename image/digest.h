// Content digests ("sha256:<64 hex>"): validation and a streaming sha256 hasher.
#pragma once

#include <openssl/evp.h>

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace crid {

// OK when `digest` is "sha256:" followed by 64 lowercase hex digits, the only
// algorithm crid stores (other algorithms are refused with the reason).
absl::Status ValidateDigest(absl::string_view digest);

// The hex part of a valid digest.
inline absl::string_view DigestHex(absl::string_view digest) { return digest.substr(7); }

class Sha256 {
 public:
  Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void Update(const void* data, size_t size);
  void Update(absl::string_view data) { Update(data.data(), data.size()); }
  // "sha256:<hex>"; the hasher cannot be used afterwards.
  std::string Finish();

 private:
  struct Deleter {
    void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
  };
  std::unique_ptr<EVP_MD_CTX, Deleter> ctx_;
};

// sha256 digest of `data`.
std::string DigestOf(absl::string_view data);

}  // namespace crid
