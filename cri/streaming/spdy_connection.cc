#include "cri/streaming/spdy_connection.h"

#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include "absl/strings/str_cat.h"
#include "base/errors.h"
#include "base/logging.h"

namespace crid::streaming {

namespace {

// Data frames are cut at this size: small enough to interleave streams.
constexpr size_t kMaxDataChunk = size_t{32} * 1024;
// Control frames carry headers at most; data frames up to the SPDY limit.
constexpr size_t kMaxControlPayload = size_t{256} * 1024;

}  // namespace

absl::Status SendAll(int fd, absl::string_view data) {
  while (!data.empty()) {
    ssize_t n = send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        return absl::DeadlineExceededError("the client stopped reading");
      }
      return ErrnoError(errno, "send to the client");
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

absl::Status SpdyStream::Reply() { return conn_->SendReply(id_); }

absl::Status SpdyStream::Write(absl::string_view data) {
  while (!data.empty()) {
    if (reset_ || local_closed_) {
      return absl::CancelledError(absl::StrCat("stream ", id_, " is closed"));
    }
    absl::string_view chunk = data.substr(0, kMaxDataChunk);
    CRID_RETURN_IF_ERROR(conn_->SendFrame(spdy::EncodeDataFrame(id_, 0, chunk)));
    data.remove_prefix(chunk.size());
  }
  return absl::OkStatus();
}

absl::Status SpdyStream::Close() {
  if (reset_ || local_closed_.exchange(true)) {
    return absl::OkStatus();
  }
  absl::Status st = conn_->SendFrame(spdy::EncodeDataFrame(id_, spdy::kFlagFin, ""));
  if (inbound_.finished()) {
    conn_->Forget(id_);
  }
  return st;
}

void SpdyStream::Reset(spdy::RstStatus status) {
  if (reset_.exchange(true)) {
    return;
  }
  inbound_.Abort();
  conn_->SendFrame(spdy::EncodeRstStream(id_, status)).IgnoreError();
  conn_->Forget(id_);
}

SpdyConnection::SpdyConnection(int fd, std::string initial, size_t max_streams)
    : fd_(fd), buffer_(std::move(initial)), max_streams_(max_streams) {}

absl::Status SpdyConnection::SendFrame(absl::string_view frame) {
  absl::MutexLock lock(&write_mu_);
  if (closed_) {
    return absl::CancelledError("the connection is closed");
  }
  absl::Status st = SendAll(fd_, frame);
  if (!st.ok()) {
    // A client that stopped reading or vanished: end everything.
    closed_ = true;
    shutdown(fd_, SHUT_RDWR);
  }
  return st;
}

absl::Status SpdyConnection::SendReply(uint32_t stream_id) {
  absl::MutexLock lock(&write_mu_);
  if (closed_) {
    return absl::CancelledError("the connection is closed");
  }
  // Compression and sending stay in one critical section: the peer's zlib
  // stream must see header blocks in the order they were compressed.
  absl::StatusOr<std::string> headers = compressor_.Encode({});
  if (!headers.ok()) {
    return headers.status();
  }
  absl::Status st = SendAll(fd_, spdy::EncodeSynReply(stream_id, 0, *headers));
  if (!st.ok()) {
    closed_ = true;
    shutdown(fd_, SHUT_RDWR);
  }
  return st;
}

void SpdyConnection::Forget(uint32_t stream_id) {
  absl::MutexLock lock(&mu_);
  streams_.erase(stream_id);
}

void SpdyConnection::Shutdown(spdy::GoAwayStatus status) {
  {
    absl::MutexLock lock(&write_mu_);
    if (!closed_ && !goaway_sent_) {
      goaway_sent_ = true;
      SendAll(fd_, spdy::EncodeGoAway(last_stream_id_, status)).IgnoreError();
    }
    closed_ = true;
  }
  // Half-close: the reader keeps draining until the client closes too, so no
  // reset destroys data the client has not read yet.
  shutdown(fd_, SHUT_WR);
  // The reader may be waiting for room in a stream nobody reads any more.
  absl::MutexLock lock(&mu_);
  for (auto& [id, stream] : streams_) {
    stream->inbound().Abort();
  }
}

absl::Status SpdyConnection::end_status() const {
  absl::MutexLock lock(&mu_);
  return end_status_;
}

absl::Status SpdyConnection::HandleFrame(const spdy::RawFrame& frame,
                                         const StreamHandler& on_stream) {
  if (!frame.control) {
    std::shared_ptr<SpdyStream> stream;
    {
      absl::MutexLock lock(&mu_);
      auto it = streams_.find(frame.stream_id);
      if (it != streams_.end()) {
        stream = it->second;
      }
    }
    if (stream == nullptr) {
      // Data after a reset races on the wire; only ids never opened are errors.
      if (frame.stream_id > last_stream_id_) {
        SendFrame(spdy::EncodeRstStream(frame.stream_id, spdy::RstStatus::kInvalidStream))
            .IgnoreError();
      }
      return absl::OkStatus();
    }
    if (!frame.payload.empty()) {
      stream->inbound().Push(frame.payload);
    }
    if ((frame.flags & spdy::kFlagFin) != 0) {
      stream->inbound().Finish();
      if (stream->local_closed_) {
        Forget(stream->id());
      }
    }
    return absl::OkStatus();
  }
  switch (static_cast<spdy::FrameType>(frame.type)) {
    case spdy::FrameType::kSynStream: {
      CRID_ASSIGN_OR_RETURN(spdy::SynStream syn, spdy::DecodeSynStream(frame));
      // Decode even when refusing: the zlib context must follow every block.
      CRID_ASSIGN_OR_RETURN(spdy::HeaderBlock headers,
                            decompressor_.Decode(syn.compressed_headers));
      if (syn.stream_id % 2 == 0 || syn.stream_id <= last_stream_id_) {
        return absl::InvalidArgumentError(
            absl::StrCat("SPDY: client opened stream ", syn.stream_id, " out of order"));
      }
      last_stream_id_ = syn.stream_id;
      size_t open;
      {
        absl::MutexLock lock(&mu_);
        open = streams_.size();
      }
      if (peer_goaway_ || open >= max_streams_) {
        SendFrame(spdy::EncodeRstStream(syn.stream_id, spdy::RstStatus::kRefusedStream))
            .IgnoreError();
        return absl::OkStatus();
      }
      auto stream = std::make_shared<SpdyStream>(this, syn.stream_id, std::move(headers));
      if ((syn.flags & spdy::kFlagFin) != 0) {
        stream->inbound().Finish();
      }
      {
        absl::MutexLock lock(&mu_);
        streams_[syn.stream_id] = stream;
      }
      if (!on_stream(stream)) {
        stream->Reset(spdy::RstStatus::kRefusedStream);
      }
      return absl::OkStatus();
    }
    case spdy::FrameType::kSynReply:
    case spdy::FrameType::kHeaders: {
      CRID_ASSIGN_OR_RETURN(spdy::SynReply reply, spdy::DecodeSynReply(frame));
      CRID_ASSIGN_OR_RETURN(spdy::HeaderBlock ignored,
                            decompressor_.Decode(reply.compressed_headers));
      (void)ignored;
      return absl::OkStatus();
    }
    case spdy::FrameType::kRstStream: {
      CRID_ASSIGN_OR_RETURN(spdy::RstStream rst, spdy::DecodeRstStream(frame));
      std::shared_ptr<SpdyStream> stream;
      {
        absl::MutexLock lock(&mu_);
        auto it = streams_.find(rst.stream_id);
        if (it != streams_.end()) {
          stream = it->second;
          streams_.erase(it);
        }
      }
      if (stream != nullptr) {
        stream->reset_ = true;
        stream->inbound().Abort();
      }
      return absl::OkStatus();
    }
    case spdy::FrameType::kPing: {
      CRID_ASSIGN_OR_RETURN(uint32_t id, spdy::DecodePing(frame));
      // Client pings are odd; answer them. Even ids would be replies to ours.
      if (id % 2 == 1) {
        SendFrame(spdy::EncodePing(id)).IgnoreError();
      }
      return absl::OkStatus();
    }
    case spdy::FrameType::kGoAway: {
      CRID_RETURN_IF_ERROR(spdy::DecodeGoAway(frame).status());
      peer_goaway_ = true;
      return absl::OkStatus();
    }
    case spdy::FrameType::kSettings:
      return spdy::DecodeSettings(frame).status();
    case spdy::FrameType::kWindowUpdate:
      return spdy::DecodeWindowUpdate(frame).status();
  }
  // Unknown control frames are ignored (SPDY/3 section 2.2.1).
  return absl::OkStatus();
}

void SpdyConnection::Serve(const StreamHandler& on_stream) {
  absl::Status result;
  char chunk[64 * 1024];
  while (true) {
    absl::StatusOr<std::optional<std::pair<spdy::RawFrame, size_t>>> parsed =
        spdy::ParseFrame(buffer_, spdy::kMaxFramePayload, kMaxControlPayload);
    if (!parsed.ok()) {
      result = parsed.status();
      break;
    }
    if (parsed->has_value()) {
      const auto& [frame, used] = **parsed;
      result = HandleFrame(frame, on_stream);
      buffer_.erase(0, used);
      if (!result.ok()) {
        break;
      }
      continue;
    }
    ssize_t n = recv(fd_, chunk, sizeof(chunk), 0);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      if (n < 0 && !closed_) {
        result = ErrnoError(errno, "read from the client");
      }
      break;
    }
    buffer_.append(chunk, static_cast<size_t>(n));
  }
  if (!result.ok() && !closed_) {
    spdlog::debug("streaming: ending SPDY connection: {}", result.message());
    Shutdown(absl::IsInvalidArgument(result) ? spdy::GoAwayStatus::kProtocolError
                                             : spdy::GoAwayStatus::kInternalError);
  }
  closed_ = true;
  shutdown(fd_, SHUT_RDWR);
  std::map<uint32_t, std::shared_ptr<SpdyStream>> streams;
  {
    absl::MutexLock lock(&mu_);
    streams.swap(streams_);
    end_status_ = result;
  }
  for (auto& [id, stream] : streams) {
    stream->inbound().Abort();
  }
}

}  // namespace crid::streaming
