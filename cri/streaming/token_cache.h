// One-time tokens for streaming URLs: random, URL-safe, single use, expiring,
// and bounded in number so a flood of Exec calls cannot grow crid's memory.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <variant>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "proto/cri_api.pb.h"

namespace crid::streaming {

using StreamRequest = std::variant<runtime::v1::ExecRequest, runtime::v1::AttachRequest,
                                   runtime::v1::PortForwardRequest>;

// 16 random bytes (getrandom) in unpadded base64url: 22 characters.
absl::StatusOr<std::string> NewToken();

class TokenCache {
 public:
  // The reference server's limits: one minute, 1000 outstanding.
  static constexpr absl::Duration kDefaultTtl = absl::Minutes(1);
  static constexpr size_t kDefaultCapacity = 1000;

  explicit TokenCache(absl::Duration ttl = kDefaultTtl, size_t capacity = kDefaultCapacity,
                      std::function<absl::Time()> clock = absl::Now)
      : ttl_(ttl), capacity_(capacity), clock_(std::move(clock)) {}

  // Stores `request` under a new token. RESOURCE_EXHAUSTED when `capacity`
  // unexpired tokens are outstanding.
  absl::StatusOr<std::string> Insert(StreamRequest request);
  // The request of an unexpired token, removing it; std::nullopt otherwise.
  std::optional<StreamRequest> Consume(const std::string& token);
  size_t size() const;

 private:
  struct Entry {
    StreamRequest request;
    absl::Time expires;
  };
  void DropExpiredLocked(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const absl::Duration ttl_;
  const size_t capacity_;
  const std::function<absl::Time()> clock_;
  mutable absl::Mutex mu_;
  std::map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);
};

}  // namespace crid::streaming
