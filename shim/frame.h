// Message framing on the shim socket (proto/shim.proto): a 4-byte big-endian
// length, then that many bytes of a serialized message. Both directions use
// it; every read and write has a deadline so a stuck peer cannot hold a thread.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/unique_fd.h"
#include "google/protobuf/message_lite.h"

namespace crid::shim {

constexpr size_t kMaxFrameBytes = size_t{16} << 20;

// DEADLINE_EXCEEDED when the deadline passes, UNAVAILABLE when the peer
// closed the connection.
absl::Status WriteFrame(int fd, const google::protobuf::MessageLite& message, absl::Time deadline);
// INVALID_ARGUMENT for an oversized frame or bytes that do not parse.
absl::Status ReadFrame(int fd, google::protobuf::MessageLite* message, absl::Time deadline);

// Reassembles frames from bytes read off a non-blocking socket, for readers
// that multiplex many connections on one thread.
class FrameReader {
 public:
  void Append(const char* data, size_t size) { buffer_.append(data, size); }
  // The next complete frame parsed into `message`: true when one was taken,
  // false when more bytes are needed; INVALID_ARGUMENT for a bad frame.
  absl::StatusOr<bool> Next(google::protobuf::MessageLite* message);

 private:
  std::string buffer_;
};

// Descriptors that follow a request (see proto/shim.proto): one byte carrying
// them as SCM_RIGHTS. At most kMaxPassedFds.
constexpr size_t kMaxPassedFds = 4;
absl::Status SendFds(int fd, const std::vector<int>& fds, absl::Time deadline);
// Receives exactly `count` descriptors (close-on-exec); INVALID_ARGUMENT when
// the peer sent a different number.
absl::StatusOr<std::vector<UniqueFd>> ReceiveFds(int fd, size_t count, absl::Time deadline);

}  // namespace crid::shim
