// ExecSync, and the streaming server's Exec and Attach: each goes to the pod's
// shim, which runs the command (or attaches to the container's stdio); the
// terminal sizes of a session are forwarded on a thread of its own.
#include <atomic>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/errors.h"
#include "base/logging.h"
#include "container/manager.h"
#include "spdlog/spdlog.h"

namespace crid::container {

absl::StatusOr<ExecResult> ContainerManager::ExecSync(const std::string& id,
                                                      const std::vector<std::string>& cmd,
                                                      absl::Duration timeout) {
  CRID_ASSIGN_OR_RETURN(ContainerRecord record, Get(id));
  if (record.state() != ContainerRecord::RUNNING) {
    return absl::FailedPreconditionError(
        absl::StrCat("container ", record.id(), " is not running"));
  }
  CRID_ASSIGN_OR_RETURN(std::shared_ptr<shim::ShimClient> client, ShimFor(record.pod_id(), false));
  shim::ExecRequest request;
  request.set_id(record.id());
  for (const std::string& arg : cmd) {
    request.add_args(arg);
  }
  request.set_timeout_ms(absl::ToInt64Milliseconds(timeout));
  request.set_max_output_bytes(static_cast<int64_t>(options_.exec_output_limit));
  CRID_ASSIGN_OR_RETURN(shim::ExecResponse response, client->Exec(request));
  if (response.timed_out()) {
    return absl::DeadlineExceededError(absl::StrCat("command \"", absl::StrJoin(cmd, " "),
                                                    "\" timed out after ",
                                                    absl::FormatDuration(timeout)));
  }
  ExecResult result;
  result.exit_code = response.exit_code();
  result.stdout_data = response.stdout();
  result.stderr_data = response.stderr();
  if (response.truncated()) {
    const std::string marker = absl::StrCat("\n[crid: output truncated at ",
                                            options_.exec_output_limit, " bytes per stream]\n");
    result.stderr_data += marker;
  }
  return result;
}

namespace {

// Forwards the terminal sizes a session's client sends to the shim, on its
// own thread, for as long as the object lives (the session call).
class SizeForwarder {
 public:
  // Does nothing without `sizes` (no terminal).
  SizeForwarder(streaming::ResizeQueue* sizes, shim::ShimClient* client, std::string id,
                std::string session_id) {
    if (sizes == nullptr) {
      return;
    }
    thread_ =
        std::thread([this, sizes, client, id = std::move(id), session_id = std::move(session_id)] {
          while (!stop_.load()) {
            std::optional<streaming::TerminalSize> size = sizes->Next(absl::Milliseconds(100));
            if (!size.has_value()) {
              continue;
            }
            absl::Status st = client->Resize(id, session_id, size->width, size->height);
            if (!st.ok()) {
              spdlog::debug("container {}: resize terminal: {}", id, st);
            }
          }
        });
  }
  ~SizeForwarder() {
    stop_ = true;
    if (thread_.joinable()) {
      thread_.join();
    }
  }

 private:
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace

absl::StatusOr<int> ContainerManager::ExecStream(const std::string& id,
                                                 const std::vector<std::string>& cmd,
                                                 streaming::StreamIo io) {
  if (cmd.empty() || cmd[0].empty()) {
    return absl::InvalidArgumentError("cmd: a command is required");
  }
  CRID_ASSIGN_OR_RETURN(ContainerRecord record, Get(id));
  if (record.state() != ContainerRecord::RUNNING) {
    return absl::FailedPreconditionError(
        absl::StrCat("container ", record.id(), " is not running"));
  }
  CRID_ASSIGN_OR_RETURN(std::shared_ptr<shim::ShimClient> client, ShimFor(record.pod_id(), false));
  shim::ExecStreamRequest request;
  request.set_id(record.id());
  for (const std::string& arg : cmd) {
    request.add_args(arg);
  }
  request.set_tty(io.tty);
  request.set_session_id(absl::StrCat("s", next_session_.fetch_add(1)));
  std::vector<int> fds;
  for (auto [fd, flag] : {std::pair{&io.stdin_fd, &shim::ExecStreamRequest::set_stdin},
                          std::pair{&io.stdout_fd, &shim::ExecStreamRequest::set_stdout},
                          std::pair{&io.stderr_fd, &shim::ExecStreamRequest::set_stderr}}) {
    if (fd->valid() && !(io.tty && fd == &io.stderr_fd)) {
      (request.*flag)(true);
      fds.push_back(fd->get());
    }
  }
  SizeForwarder sizes(io.tty ? io.resize : nullptr, client.get(), record.id(),
                      request.session_id());
  return client->ExecStream(request, fds, io.done_fd);
}

absl::Status ContainerManager::Attach(const std::string& id, streaming::StreamIo io) {
  CRID_ASSIGN_OR_RETURN(ContainerRecord record, Get(id));
  if (record.state() != ContainerRecord::RUNNING) {
    return absl::FailedPreconditionError(
        absl::StrCat("container ", record.id(), " is not running"));
  }
  CRID_ASSIGN_OR_RETURN(std::shared_ptr<shim::ShimClient> client, ShimFor(record.pod_id(), false));
  shim::AttachRequest request;
  request.set_id(record.id());
  std::vector<int> fds;
  // A container created without stdin has none to attach to: the client's
  // input is dropped, as kubectl warns.
  if (io.stdin_fd.valid() && record.config().stdin()) {
    request.set_stdin(true);
    fds.push_back(io.stdin_fd.get());
  }
  if (io.stdout_fd.valid()) {
    request.set_stdout(true);
    fds.push_back(io.stdout_fd.get());
  }
  if (io.stderr_fd.valid() && !record.config().tty()) {
    request.set_stderr(true);
    fds.push_back(io.stderr_fd.get());
  }
  absl::Status st;
  {
    SizeForwarder sizes(record.config().tty() ? io.resize : nullptr, client.get(), record.id(), "");
    st = client->Attach(request, fds, io.done_fd);
  }
  if (absl::IsCancelled(st)) {
    return absl::OkStatus();  // the client detached
  }
  return st;
}

}  // namespace crid::container
