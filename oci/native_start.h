// Starts a container that `runc create` made, as `runc start` does, without
// running the runtime binary: runc's init waits in the container, blocked on
// writing to the container's exec FIFO (<root>/<id>/exec.fifo); `runc start`
// only opens that FIFO, reads the init's byte until the init's execve closes
// it, and removes the FIFO (runc reports a container whose FIFO is gone as
// running). Doing that here saves the runtime's start-up, a Go binary, on
// every StartContainer. runc runs the poststart hooks in `runc create`, so
// nothing else is skipped.
//
// runc only: crun and other runtimes keep their own start.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace crid {

// Starts the runc container `id` whose state lives under `root` (runc
// --root). `init_pidfd` is a pidfd of the container's init: its exit before
// it wrote to the FIFO fails the start as runc's does ("container process is
// already dead"). NOT_FOUND when runc's directory for `id` or the FIFO in it
// is missing (started already, or a runc that keeps its state elsewhere: the
// caller asks the runtime then); FAILED_PRECONDITION when the FIFO is no FIFO
// or its writer left without a byte; DEADLINE_EXCEEDED after `timeout`.
absl::Status NativeStart(const std::string& root, const std::string& id, int init_pidfd,
                         absl::Duration timeout);

}  // namespace crid
