// A sealed, in-memory copy of the crid-shim binary that every shim is
// executed from, so /proc/<shim>/exe is never a writable host file (a
// container binary that is `#!/proc/self/exe` must not reach the host's
// crid-shim to overwrite it: runc's CVE-2019-5736).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "base/unique_fd.h"

namespace crid::shim {

class SealedBinary {
 public:
  // A memfd (MFD_CLOEXEC) holding the bytes of `path`, sealed against every
  // change (F_SEAL_SEAL, F_SEAL_WRITE, F_SEAL_GROW, F_SEAL_SHRINK). The copy is
  // made once and reused while `path` names the same file (device, inode,
  // modification time); a replaced or rewritten file (a crid upgrade) gets a
  // new copy, so new shims run the new binary. The descriptor stays valid for
  // as long as the caller holds it, even after a newer copy replaces it.
  // Null for a file that is not an ELF binary (a script standing in for the
  // shim in a test): its interpreter could not read a close-on-exec memfd, and
  // its process's exe would be the interpreter anyway. It runs from its path.
  absl::StatusOr<std::shared_ptr<const UniqueFd>> Get(const std::string& path);

  // The copy every ShimClient::Launch uses.
  static SealedBinary& Shared();

 private:
  struct Identity {
    std::string path;
    dev_t dev = 0;
    ino_t ino = 0;
    int64_t mtime_ns = 0;
    off_t size = 0;
    bool operator==(const Identity& other) const {
      return path == other.path && dev == other.dev && ino == other.ino &&
             mtime_ns == other.mtime_ns && size == other.size;
    }
  };

  absl::Mutex mu_;
  Identity identity_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<const UniqueFd> memfd_ ABSL_GUARDED_BY(mu_);
};

}  // namespace crid::shim
