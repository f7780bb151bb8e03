// What crid can leave on the host, counted before a test and again after it:
// network namespaces, mounts, processes, cgroups, bridge ports, portmap rules
// and per-pod files. The end-to-end fixtures take a census in SetUp and check
// in TearDown that the test left nothing behind.
//
// Only what belongs to the test's own crid is counted, so another crid on the
// same host (a developer's, a lab's) is never taken for a leak: paths under the
// test's root and state, processes that name or live in them, and network
// namespaces and cgroups named after a pod or container ID the test's crid
// handled (from its log, or given with Own).
#pragma once

#include <set>
#include <string>
#include <vector>

#include "absl/time/time.h"

namespace crid {

struct LeakCensusOptions {
  // crid's --root and --state.
  std::string root_dir;
  std::string state_dir;
  // The test network's bridge, which must have no ports left, and its CNI
  // network name, which portmap writes into its rules; empty for none.
  std::string bridge;
  std::string network_name;
  // Files where the test's crid names the pods and containers it made (its
  // log, at debug level); read again at every count.
  std::vector<std::string> log_files;
  // Where crid names its network namespaces `crid-<pod id>`.
  std::string netns_dir = "/run/netns";
};

class LeakCensus {
 public:
  // Counts what is on the host now: the baseline.
  explicit LeakCensus(LeakCensusOptions options);

  // Marks a pod or container ID as the test's (for a crid without a log file).
  void Own(const std::string& id) { owned_ids_.insert(id); }

  // What is on the host now and was not at the baseline, one line per item.
  // Polls until nothing is left or `grace` passed (processes take a moment to
  // be reaped once their parent exits).
  std::vector<std::string> Leaks(absl::Duration grace = absl::Seconds(5)) const;

 private:
  std::set<std::string> Take() const;
  // Whether a name holds (a prefix of at least 12 digits of) a test-owned ID.
  bool NamesOwnedId(const std::string& name, const std::set<std::string>& ids) const;
  std::set<std::string> OwnedIds() const;

  LeakCensusOptions options_;
  std::set<std::string> owned_ids_;
  std::set<std::string> baseline_;
};

}  // namespace crid
