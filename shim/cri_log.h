// Writes a container's stdout and stderr to its log file in the CRI log format
// kubelet reads and rotates:
//   2016-10-06T00:17:09.669794202Z stdout F a complete line
//   2016-10-06T00:17:09.669794203Z stderr P the first 16 KiB of a longer line
// Both streams share one file through one writer; long lines are cut into P
// (partial) records ending with an F record; what is left of a stream when it
// ends (or is removed) without a newline is written as a P record.
//
// Every record starts on a line of its own, also after a failed write: a record
// the file refused entirely (ENOSPC) is dropped whole, one cut short is ended
// with a newline (or the next record starts with one), so one bad write never
// corrupts the records after it.
#pragma once

#include <sys/types.h>
#include <unistd.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "base/unique_fd.h"

namespace crid {

enum class LogStream { kStdout, kStderr };

class CriLogWriter {
 public:
  struct Options {
    // Longest content of one record; longer lines are split (containerd's default).
    size_t max_line_bytes = size_t{16} * 1024;
    // Time source, replaceable in tests.
    std::function<absl::Time()> now = absl::Now;
    // write(2), replaceable in tests to inject short and failed writes.
    std::function<ssize_t(int fd, const void* data, size_t size)> write_fd = ::write;
  };

  // Records lost to failed writes since the writer was opened.
  struct Losses {
    uint64_t dropped = 0;  // nothing of the record reached the file
    uint64_t cut = 0;      // the file holds the record's beginning only
  };

  // Opens (creating, 0640) `path` for appending; parent directories are created.
  static absl::StatusOr<std::unique_ptr<CriLogWriter>> Open(const std::string& path,
                                                            Options options);

  // Feeds bytes read from a stream; complete records are written at once. A
  // record that cannot be written is lost (see losses()) but the rest of `data`
  // is still written; the error is the first write's that failed.
  absl::Status Write(LogStream stream, absl::string_view data);
  // The stream ended: a pending unterminated line is written as a P record.
  absl::Status Close(LogStream stream);
  // Opens the path again (after kubelet renamed the file for rotation) and
  // switches to the new file; on failure the old file stays in use.
  absl::Status Reopen();

  Losses losses() const;

  // Formats one record (exposed for tests): RFC 3339 time with nanoseconds in UTC.
  static std::string FormatRecord(absl::Time time, LogStream stream, bool partial,
                                  absl::string_view content);

 private:
  CriLogWriter(std::string path, UniqueFd fd, Options options)
      : path_(std::move(path)), fd_(std::move(fd)), options_(std::move(options)) {}

  // Writes one record with one write(2) (finishing a short one); on failure
  // leaves the file so the next record starts on a line of its own.
  absl::Status Emit(LogStream stream, bool partial, absl::string_view content)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string path_;
  mutable absl::Mutex mu_;
  UniqueFd fd_ ABSL_GUARDED_BY(mu_);
  std::string pending_[2] ABSL_GUARDED_BY(mu_);  // unterminated line per stream
  // The file ends inside a record that was cut short: the next write starts
  // with a newline.
  bool mid_line_ ABSL_GUARDED_BY(mu_) = false;
  Losses losses_ ABSL_GUARDED_BY(mu_);
  const Options options_;
};

}  // namespace crid
