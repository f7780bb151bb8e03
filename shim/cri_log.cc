#include "shim/cri_log.h"

#include <fcntl.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/errors.h"
#include "base/fs.h"

namespace crid {

namespace {

constexpr mode_t kLogMode = 0640;

absl::StatusOr<UniqueFd> OpenLog(const std::string& path) {
  auto slash = path.find_last_of('/');
  if (slash != std::string::npos && slash > 0) {
    CRID_RETURN_IF_ERROR(MakeDirs(path.substr(0, slash), 0755));
  }
  // O_NOFOLLOW: a symlink planted at the path between kubelet's rename and our
  // reopen must not redirect container output to another file.
  UniqueFd fd(
      ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, kLogMode));
  if (!fd.valid()) {
    return ErrnoError(errno, "open log file ", path);
  }
  return fd;
}

const char* StreamName(LogStream stream) {
  return stream == LogStream::kStdout ? "stdout" : "stderr";
}

}  // namespace

absl::StatusOr<std::unique_ptr<CriLogWriter>> CriLogWriter::Open(const std::string& path,
                                                                 Options options) {
  if (options.max_line_bytes == 0) {
    return absl::InvalidArgumentError("max_line_bytes: must be positive");
  }
  CRID_ASSIGN_OR_RETURN(UniqueFd fd, OpenLog(path));
  return std::unique_ptr<CriLogWriter>(new CriLogWriter(path, std::move(fd), std::move(options)));
}

std::string CriLogWriter::FormatRecord(absl::Time time, LogStream stream, bool partial,
                                       absl::string_view content) {
  absl::TimeZone utc = absl::UTCTimeZone();
  // Fixed nine fraction digits: kubelet parses any RFC 3339 time, and a fixed
  // width keeps records sortable as text.
  std::string stamp = absl::FormatTime("%Y-%m-%dT%H:%M:%E9SZ", time, utc);
  return absl::StrCat(stamp, " ", StreamName(stream), " ", partial ? "P" : "F", " ", content, "\n");
}

absl::Status CriLogWriter::Emit(LogStream stream, bool partial, absl::string_view content) {
  std::string record = FormatRecord(options_.now(), stream, partial, content);
  absl::string_view rest = record;
  while (!rest.empty()) {
    ssize_t n = ::write(fd_.get(), rest.data(), rest.size());
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return ErrnoError(errno, "write log file ", path_);
    }
    rest.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

absl::Status CriLogWriter::Write(LogStream stream, absl::string_view data) {
  absl::MutexLock lock(&mu_);
  std::string& pending = pending_[static_cast<int>(stream)];
  while (!data.empty()) {
    size_t newline = data.find('\n');
    absl::string_view piece = data.substr(0, newline);
    // Cut overlong lines into partial records of at most max_line_bytes.
    while (pending.size() + piece.size() > options_.max_line_bytes) {
      size_t take = options_.max_line_bytes - pending.size();
      pending.append(piece.data(), take);
      piece.remove_prefix(take);
      CRID_RETURN_IF_ERROR(Emit(stream, /*partial=*/true, pending));
      pending.clear();
      if (newline != absl::string_view::npos && piece.empty()) {
        break;
      }
    }
    if (newline == absl::string_view::npos) {
      pending.append(piece.data(), piece.size());
      return absl::OkStatus();
    }
    pending.append(piece.data(), piece.size());
    absl::string_view line = pending;
    if (!line.empty() && line.back() == '\r') {
      line.remove_suffix(1);
    }
    CRID_RETURN_IF_ERROR(Emit(stream, /*partial=*/false, line));
    pending.clear();
    data.remove_prefix(newline + 1);
  }
  return absl::OkStatus();
}

absl::Status CriLogWriter::Close(LogStream stream) {
  absl::MutexLock lock(&mu_);
  std::string& pending = pending_[static_cast<int>(stream)];
  if (pending.empty()) {
    return absl::OkStatus();
  }
  absl::Status st = Emit(stream, /*partial=*/true, pending);
  pending.clear();
  return st;
}

absl::Status CriLogWriter::Reopen() {
  CRID_ASSIGN_OR_RETURN(UniqueFd fd, OpenLog(path_));
  absl::MutexLock lock(&mu_);
  fd_ = std::move(fd);
  return absl::OkStatus();
}

}  // namespace crid
