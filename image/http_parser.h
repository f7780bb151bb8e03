// Reads an HTTP/1.1 answer as it comes off a connection: status line, header
// fields, and a body framed by Content-Length, chunked transfer coding or the
// end of the connection. The answer is hostile input: every line and count is
// bounded, and anything malformed is an error, never a guess.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace crid {

// Where the parts of an answer go as they arrive.
class HttpResponseHandler {
 public:
  virtual ~HttpResponseHandler() = default;
  // One line of a head without its line end: the status line ("HTTP/1.1 200 OK")
  // first, then each header field. Interim (1xx) answers and, through a client
  // that follows redirects, the redirects' heads come first, each starting with
  // its own status line.
  virtual void OnHeader(absl::string_view line) = 0;
  // A piece of the body. An error stops the exchange and is its result.
  virtual absl::Status OnData(absl::string_view data) = 0;
};

class HttpResponseParser {
 public:
  // Status line and header fields of an answer, interim ones included.
  static constexpr size_t kMaxHeadBytes = size_t{64} << 10;
  static constexpr int kMaxHeaderLines = 100;
  // A chunk-size line with its extensions.
  static constexpr size_t kMaxChunkLine = 4096;

  // `head_request`: the answer has no body whatever its head says.
  HttpResponseParser(bool head_request, HttpResponseHandler* handler);

  // Consumes `data`; bytes past the end of the answer are ignored. A malformed
  // answer is UNAVAILABLE saying what is wrong; the handler's errors pass through.
  absl::Status Feed(absl::string_view data);
  // The connection ended: OK when that completes the answer.
  absl::Status Finish();

  // The final (non-1xx) answer's head has been read.
  bool head_done() const { return head_done_; }
  bool done() const { return state_ == State::kDone; }
  int status() const { return status_; }
  // The Location header of the final answer, "" when it has none.
  const std::string& location() const { return location_; }

 private:
  enum class State {
    kStatusLine,
    kHeaders,
    kBody,        // Content-Length bytes
    kChunkSize,   // chunk-size [; extensions] line
    kChunkData,   // the chunk's bytes
    kChunkEnd,    // the line end after them
    kTrailers,    // trailer fields after the last chunk, dropped
    kUntilClose,  // no framing: the body ends with the connection
    kDone,
  };

  // Appends bytes of `*data` up to a line end to line_, at most `limit` bytes
  // in all. True when the line is complete; `*line` is it without its end.
  absl::Status TakeLine(absl::string_view* data, size_t limit, const char* what, bool* complete,
                        absl::string_view* line);
  absl::Status OnStatusLine(absl::string_view line);
  absl::Status OnHeaderLine(absl::string_view line, bool trailer);
  absl::Status OnHeadEnd();
  absl::Status OnChunkSize(absl::string_view line);
  absl::Status Deliver(absl::string_view* data, uint64_t max);

  bool head_request_;
  HttpResponseHandler* handler_;
  State state_ = State::kStatusLine;
  std::string line_;
  uint64_t received_ = 0;
  size_t head_bytes_ = 0;
  int header_lines_ = 0;
  int status_ = 0;
  bool head_done_ = false;
  // Of the head being read.
  int64_t content_length_ = -1;
  std::vector<std::string> transfer_codings_;
  std::string location_;
  // Body bytes left in the Content-Length body or the current chunk.
  uint64_t remaining_ = 0;
  uint64_t body_bytes_ = 0;
};

}  // namespace crid
