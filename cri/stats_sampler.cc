#include "cri/stats_sampler.h"

#include <utility>

#include "absl/time/clock.h"
#include "cri/wire_entries.h"

namespace crid {

namespace {

// runtime.v1.ListContainerStatsResponse: repeated ContainerStats stats = 1.
constexpr int kStatsField = 1;

}  // namespace

ContainerStatsSampler::ContainerStatsSampler(Measure measure, absl::Duration interval,
                                             absl::Duration keep_alive)
    : measure_(std::move(measure)), interval_(interval), keep_alive_(keep_alive) {
  thread_ = std::thread([this] { Run(); });
}

ContainerStatsSampler::~ContainerStatsSampler() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  thread_.join();
}

void ContainerStatsSampler::Append(const std::vector<container::RecordSnapshot>& listed,
                                   std::string* out) {
  const absl::Time now = absl::Now();
  std::vector<size_t> missing;
  std::vector<const std::string*> found(listed.size(), nullptr);
  {
    absl::MutexLock lock(&mu_);
    if (now - last_asked_ > keep_alive_) {
      wake_ = true;  // the thread sleeps until asked
    }
    last_asked_ = now;
    for (size_t i = 0; i < listed.size(); ++i) {
      auto it = entries_.find(listed[i]->id());
      if (it != entries_.end() && it->second.record == listed[i] &&
          now - it->second.taken <= 2 * interval_) {
        it->second.wanted = now;
        found[i] = &it->second.bytes;
      } else {
        missing.push_back(i);
      }
    }
    if (missing.empty()) {
      for (const std::string* bytes : found) {
        out->append(*bytes);
      }
      return;
    }
  }
  // Misses are measured without the lock (the thread may replace an entry
  // meanwhile, so the hits are copied again under it below).
  std::vector<container::RecordSnapshot> to_measure;
  to_measure.reserve(missing.size());
  for (size_t i : missing) {
    to_measure.push_back(listed[i]);
  }
  std::vector<std::string> measured = measure_(to_measure);
  const absl::Time taken = absl::Now();
  absl::MutexLock lock(&mu_);
  size_t m = 0;
  for (size_t i = 0; i < listed.size(); ++i) {
    if (m < missing.size() && missing[m] == i) {
      Entry entry{listed[i], std::string(), taken, now};
      AppendLengthDelimited(kStatsField, measured[m], &entry.bytes);
      out->append(entry.bytes);
      entries_.insert_or_assign(listed[i]->id(), std::move(entry));
      ++m;
      continue;
    }
    auto it = entries_.find(listed[i]->id());
    if (it != entries_.end()) {
      out->append(it->second.bytes);
    }
  }
}

void ContainerStatsSampler::Run() {
  absl::MutexLock lock(&mu_);
  while (!stopping_) {
    // Asleep until asked (an idle node samples nothing), then once an interval.
    const bool active = absl::Now() - last_asked_ <= keep_alive_;
    auto woken = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_ || wake_; };
    if (active) {
      mu_.AwaitWithTimeout(absl::Condition(&woken), interval_);
    } else {
      mu_.Await(absl::Condition(&woken));
    }
    if (stopping_) {
      break;
    }
    if (wake_) {
      wake_ = false;
      continue;  // the call that woke us has just measured: an interval from now
    }
    const absl::Time now = absl::Now();
    std::vector<container::RecordSnapshot> records;
    for (auto it = entries_.begin(); it != entries_.end();) {
      if (now - it->second.wanted > keep_alive_) {
        entries_.erase(it++);  // removed, or nobody asks about it any more
        continue;
      }
      if (now - it->second.taken >= interval_ / 2) {
        records.push_back(it->second.record);
      }
      ++it;
    }
    if (records.empty()) {
      continue;
    }
    mu_.Unlock();
    std::vector<std::string> measured = measure_(records);
    const absl::Time taken = absl::Now();
    mu_.Lock();
    for (size_t i = 0; i < records.size(); ++i) {
      auto it = entries_.find(records[i]->id());
      // A call may have measured a newer version meanwhile.
      if (it == entries_.end() || it->second.record != records[i]) {
        continue;
      }
      it->second.bytes.clear();
      AppendLengthDelimited(kStatsField, measured[i], &it->second.bytes);
      it->second.taken = taken;
    }
    ++refreshes_;
  }
}

size_t ContainerStatsSampler::size() const {
  absl::MutexLock lock(&mu_);
  return entries_.size();
}

size_t ContainerStatsSampler::refreshes() const {
  absl::MutexLock lock(&mu_);
  return refreshes_;
}

}  // namespace crid
