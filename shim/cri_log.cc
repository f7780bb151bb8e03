#include "shim/cri_log.h"

#include <fcntl.h>
#include <sys/stat.h>
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
  // The newline that ends a record cut short earlier goes out with this one.
  const size_t lead = mid_line_ ? 1 : 0;
  std::string record(lead, '\n');
  record += FormatRecord(options_.now(), stream, partial, content);
  size_t done = 0;
  int err = 0;
  while (done < record.size()) {
    ssize_t n = options_.write_fd(fd_.get(), record.data() + done, record.size() - done);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      // write(2) returning 0 for a non-empty buffer would loop forever.
      err = n < 0 ? errno : EIO;
      break;
    }
    done += static_cast<size_t>(n);
  }
  if (err == 0) {
    mid_line_ = false;
    return absl::OkStatus();
  }
  if (done <= lead) {
    // None of the record is in the file: it is lost whole.
    mid_line_ = done < lead;
    ++losses_.dropped;
    return ErrnoError(err, "write log file ", path_, " (", StreamName(stream), " record of ",
                      record.size() - lead, " bytes dropped)");
  }
  // The file holds the record's beginning: end its line now if the file takes
  // one more byte, else the next record starts with the newline.
  ++losses_.cut;
  mid_line_ = true;
  ssize_t n;
  do {
    n = options_.write_fd(fd_.get(), "\n", 1);
  } while (n < 0 && errno == EINTR);
  if (n == 1) {
    mid_line_ = false;
  }
  return ErrnoError(err, "write log file ", path_, " (", StreamName(stream), " record cut after ",
                    done - lead, " of ", record.size() - lead, " bytes)");
}

absl::Status CriLogWriter::Write(LogStream stream, absl::string_view data) {
  absl::MutexLock lock(&mu_);
  std::string& pending = pending_[static_cast<int>(stream)];
  // A failed record is lost, never kept in `pending` to be glued to the next
  // line; the rest of the data is still written.
  absl::Status first_error;
  while (!data.empty()) {
    size_t newline = data.find('\n');
    const bool complete = newline != absl::string_view::npos;
    absl::string_view piece = data.substr(0, newline);
    data.remove_prefix(complete ? newline + 1 : data.size());
    // Cut overlong lines into partial records of at most max_line_bytes.
    while (pending.size() + piece.size() > options_.max_line_bytes) {
      size_t take = options_.max_line_bytes - pending.size();
      pending.append(piece.data(), take);
      piece.remove_prefix(take);
      first_error.Update(Emit(stream, /*partial=*/true, pending));
      pending.clear();
    }
    pending.append(piece.data(), piece.size());
    if (!complete) {
      break;
    }
    absl::string_view line = pending;
    if (!line.empty() && line.back() == '\r') {
      line.remove_suffix(1);
    }
    first_error.Update(Emit(stream, /*partial=*/false, line));
    pending.clear();
  }
  return first_error;
}

absl::Status CriLogWriter::Close(LogStream stream) {
  absl::MutexLock lock(&mu_);
  std::string& pending = pending_[static_cast<int>(stream)];
  if (pending.empty()) {
    return absl::OkStatus();
  }
  // The stream's last line never got its newline: a partial record, as
  // containerd writes it.
  absl::Status st = Emit(stream, /*partial=*/true, pending);
  pending.clear();
  return st;
}

absl::Status CriLogWriter::Reopen() {
  CRID_ASSIGN_OR_RETURN(UniqueFd fd, OpenLog(path_));
  struct stat st;
  // A new (rotated) file needs no newline for a record cut short in the old one.
  bool empty = ::fstat(fd.get(), &st) == 0 && st.st_size == 0;
  absl::MutexLock lock(&mu_);
  fd_ = std::move(fd);
  if (empty) {
    mid_line_ = false;
  }
  return absl::OkStatus();
}

CriLogWriter::Losses CriLogWriter::losses() const {
  absl::MutexLock lock(&mu_);
  return losses_;
}

}  // namespace crid
