// The floor under a serial pod start (RunPodSandbox + CreateContainer +
// StartContainer of a trivial container), measured with no CRI runtime: a
// pinned network namespace plus the CNI ADD of the bench's network, run by
// executing the plugins directly, then `runc create` and `runc start` of a
// static busybox `sleep` in a plain directory bundle that joins that network
// namespace, as a pod's container does.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/json.h"
#include "base/temp_dir.h"
#include "tests/cni_fixture.h"

namespace crid::bench {

// One round's timed parts.
struct StartFloorRound {
  absl::Duration netns_cni_add;  // namespace created, pinned, lo up; every plugin's ADD
  absl::Duration runc_create;
  absl::Duration runc_start;
};

class StartFloor {
 public:
  // A bundle whose rootfs holds `busybox` (a static binary) as sleep and sh.
  static absl::StatusOr<std::unique_ptr<StartFloor>> Create(
      const TestCniNetwork& network, std::string runc, const std::string& busybox = "/bin/busybox");
  ~StartFloor();
  StartFloor(const StartFloor&) = delete;
  StartFloor& operator=(const StartFloor&) = delete;

  // One round, `n` naming it: the three parts timed, then `runc delete -f`,
  // CNI DEL and the namespace's removal (not timed). Nothing is left behind,
  // even when a part fails.
  absl::StatusOr<StartFloorRound> Round(int n);

 private:
  explicit StartFloor(std::string runc) : runc_(std::move(runc)) {}

  // Runs every plugin of the network's list for `command` (ADD in order, each
  // given the previous result; DEL in reverse, given ADD's result).
  absl::StatusOr<Json> RunCni(const std::string& command, const std::string& id,
                              const std::string& netns, const Json* prev_result);
  // `runc --root ROOT ARGS...`, stdio on /dev/null; fails unless it exits 0.
  absl::Status Runc(const std::vector<std::string>& args);

  std::string runc_;
  Json list_;    // the network's conflist
  Json config_;  // the bundle's config.json, less the network namespace's path
  TempDir tmp_;
};

}  // namespace crid::bench
