#include "shim/log.h"

#include <unistd.h>

#include <atomic>
#include <utility>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace crid::shim::log {

namespace {

std::atomic<int> log_fd{STDERR_FILENO};
// Set once, before the shim starts its threads.
std::string* log_tag = nullptr;

const char* LevelName(Level level) {
  switch (level) {
    case Level::kDebug:
      return "debug";
    case Level::kInfo:
      return "info";
    case Level::kWarning:
      return "warning";
    case Level::kError:
      return "error";
  }
  return "info";
}

}  // namespace

void Init(int fd, std::string tag) {
  delete log_tag;
  log_tag = new std::string(std::move(tag));
  log_fd = fd;
}

void Emit(Level level, absl::string_view message) {
  std::string line =
      absl::StrCat(absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", absl::Now(), absl::UTCTimeZone()), " ",
                   LevelName(level), log_tag != nullptr ? absl::StrCat(" [", *log_tag, "] ") : " ",
                   message, "\n");
  // Appending with O_APPEND: one write is one line, even under concurrency.
  (void)!::write(log_fd.load(), line.data(), line.size());
}

namespace internal {

std::string Format(absl::string_view format, const std::vector<std::string>& args) {
  std::string out;
  size_t next = 0;
  for (size_t i = 0; i < format.size(); ++i) {
    if (format[i] == '{' && i + 1 < format.size() && format[i + 1] == '}' && next < args.size()) {
      out += args[next++];
      ++i;
      continue;
    }
    out += format[i];
  }
  return out;
}

}  // namespace internal

}  // namespace crid::shim::log
