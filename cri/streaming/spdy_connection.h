// The server side of one upgraded SPDY/3.1 connection: a reader loop that
// decodes frames and feeds the streams the client opens, and serialized
// writers for replies, data and resets. Kubernetes clients open every stream;
// this side only replies. There is no flow control (spdystream ignores it);
// each stream's inbound bytes go through a bounded ByteQueue instead.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "base/unique_fd.h"
#include "cri/streaming/byte_queue.h"
#include "cri/streaming/spdy_frame.h"

namespace crid::streaming {

class SpdyConnection;

class SpdyStream {
 public:
  SpdyStream(SpdyConnection* conn, uint32_t id, spdy::HeaderBlock headers)
      : conn_(conn), id_(id), headers_(std::move(headers)) {}

  uint32_t id() const { return id_; }
  // A header the client sent with SYN_STREAM ("" when absent).
  std::string Header(absl::string_view name) const { return spdy::HeaderValue(headers_, name); }
  ByteQueue& inbound() { return inbound_; }

  // Accepts the stream (SYN_REPLY).
  absl::Status Reply();
  // Sends `data` in DATA frames; fails once the stream or connection is gone.
  absl::Status Write(absl::string_view data);
  // Half-closes this side (empty DATA frame with FIN). Idempotent.
  absl::Status Close();
  // Ends the stream both ways (RST_STREAM).
  void Reset(spdy::RstStatus status = spdy::RstStatus::kCancel);
  bool reset() const { return reset_.load(); }

 private:
  friend class SpdyConnection;
  SpdyConnection* const conn_;
  const uint32_t id_;
  const spdy::HeaderBlock headers_;
  ByteQueue inbound_;
  std::atomic<bool> local_closed_{false};
  std::atomic<bool> reset_{false};
};

class SpdyConnection {
 public:
  // Called on the reader thread for every new stream. Return false to refuse it
  // (it is reset); the handler replies when it accepts.
  using StreamHandler = std::function<bool(std::shared_ptr<SpdyStream>)>;

  // `initial` holds bytes read past the HTTP head.
  SpdyConnection(int fd, std::string initial, size_t max_streams = 1024);

  // Reads frames until the client goes away, a protocol error, or Shutdown().
  // Every stream's inbound queue is aborted on return.
  void Serve(const StreamHandler& on_stream);

  // GOAWAY, then shuts the socket down so Serve returns.
  void Shutdown(spdy::GoAwayStatus status = spdy::GoAwayStatus::kOk);
  bool closed() const { return closed_.load(); }
  // Why Serve returned (OK for a clean end).
  absl::Status end_status() const;

 private:
  friend class SpdyStream;
  absl::Status SendFrame(absl::string_view frame);
  absl::Status SendReply(uint32_t stream_id);
  absl::Status HandleFrame(const spdy::RawFrame& frame, const StreamHandler& on_stream);
  void Forget(uint32_t stream_id);

  const int fd_;
  std::string buffer_;
  const size_t max_streams_;
  std::atomic<bool> closed_{false};

  absl::Mutex write_mu_;
  spdy::HeaderCompressor compressor_ ABSL_GUARDED_BY(write_mu_);
  bool goaway_sent_ ABSL_GUARDED_BY(write_mu_) = false;

  spdy::HeaderDecompressor decompressor_;  // reader thread only
  uint32_t last_stream_id_ = 0;            // reader thread only
  bool peer_goaway_ = false;               // reader thread only

  mutable absl::Mutex mu_;
  std::map<uint32_t, std::shared_ptr<SpdyStream>> streams_ ABSL_GUARDED_BY(mu_);
  absl::Status end_status_ ABSL_GUARDED_BY(mu_);
};

// Sends all of `data` on a blocking socket; the socket's send timeout bounds a
// stalled peer.
absl::Status SendAll(int fd, absl::string_view data);

}  // namespace crid::streaming
