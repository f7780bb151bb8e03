// `crid check`: whether this host can run crid with this configuration. One
// line per check on stdout, "ok   WHAT: ..." or "FAIL WHAT: ...", so an
// operator (or an installer) sees every problem at once, not the first one.
#pragma once

#include "absl/status/statusor.h"
#include "proto/config.pb.h"

namespace crid {

// Runs every check; returns the exit code: 0 when all passed, 1 otherwise.
// `config` is the configuration as crid would load it (its error is reported
// as a failed check).
int RunCheckCommand(const absl::StatusOr<config::Config>& config);

}  // namespace crid
