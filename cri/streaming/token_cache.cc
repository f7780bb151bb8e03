#include "cri/streaming/token_cache.h"

#include <sys/random.h>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "base/errors.h"

namespace crid::streaming {

absl::StatusOr<std::string> NewToken() {
  char raw[16];
  size_t got = 0;
  while (got < sizeof(raw)) {
    ssize_t n = getrandom(raw + got, sizeof(raw) - got, 0);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return ErrnoError(errno, "getrandom");
    }
    got += static_cast<size_t>(n);
  }
  return absl::WebSafeBase64Escape(absl::string_view(raw, sizeof(raw)));
}

void TokenCache::DropExpiredLocked(absl::Time now) {
  for (auto it = entries_.begin(); it != entries_.end();) {
    if (it->second.expires <= now) {
      it = entries_.erase(it);
    } else {
      ++it;
    }
  }
}

absl::StatusOr<std::string> TokenCache::Insert(StreamRequest request) {
  absl::Time now = clock_();
  absl::MutexLock lock(&mu_);
  if (entries_.size() >= capacity_) {
    DropExpiredLocked(now);
  }
  if (entries_.size() >= capacity_) {
    return absl::ResourceExhaustedError(absl::StrCat("too many streaming requests in flight (",
                                                     capacity_, "); retry after ",
                                                     absl::FormatDuration(ttl_)));
  }
  for (int attempt = 0; attempt < 4; ++attempt) {
    CRID_ASSIGN_OR_RETURN(std::string token, NewToken());
    if (entries_.count(token) == 0) {
      entries_.emplace(token, Entry{std::move(request), now + ttl_});
      return token;
    }
  }
  return absl::InternalError("could not draw a unique streaming token");
}

std::optional<StreamRequest> TokenCache::Consume(const std::string& token) {
  absl::Time now = clock_();
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(token);
  if (it == entries_.end()) {
    return std::nullopt;
  }
  Entry entry = std::move(it->second);
  entries_.erase(it);
  if (entry.expires <= now) {
    return std::nullopt;
  }
  return std::move(entry.request);
}

size_t TokenCache::size() const {
  absl::MutexLock lock(&mu_);
  return entries_.size();
}

}  // namespace crid::streaming
