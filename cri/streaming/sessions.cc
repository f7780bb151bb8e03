#include "cri/streaming/sessions.h"

#include <fcntl.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/notification.h"
#include "base/errors.h"
#include "base/logging.h"
#include "cri/streaming/spdy_connection.h"
#include "cri/streaming/ws_connection.h"

namespace crid::streaming {

const std::vector<std::string>& SpdyRemoteCommandProtocols() {
  static const auto* protocols =
      new std::vector<std::string>{kChannelV4, kChannelV3, kChannelV2, kChannelV1};
  return *protocols;
}

const std::vector<std::string>& SpdyPortForwardProtocols() {
  static const auto* protocols = new std::vector<std::string>{kPortForwardV1};
  return *protocols;
}

const std::vector<std::string>& WebSocketRemoteCommandProtocols() {
  static const auto* protocols = new std::vector<std::string>{
      kChannelV5, kChannelV4, kBase64ChannelV4, kChannelV1, kBase64ChannelV1};
  return *protocols;
}

std::string SuccessStatusJson() { return R"({"metadata":{},"status":"Success"})"; }

std::string ExitCodeStatusJson(int exit_code) {
  nlohmann::ordered_json status;
  status["metadata"] = nlohmann::json::object();
  status["status"] = "Failure";
  status["message"] = absl::StrCat(
      "command terminated with non-zero exit code: command exited with code ", exit_code);
  status["reason"] = "NonZeroExitCode";
  status["details"]["causes"] = nlohmann::ordered_json::array(
      {{{"reason", "ExitCode"}, {"message", absl::StrCat(exit_code)}}});
  return status.dump();
}

std::string InternalErrorStatusJson(absl::string_view message) {
  nlohmann::ordered_json status;
  status["metadata"] = nlohmann::json::object();
  status["status"] = "Failure";
  status["message"] = absl::StrCat("Internal error occurred: ", message);
  status["reason"] = "InternalError";
  status["details"]["causes"] =
      nlohmann::ordered_json::array({{{"message", std::string(message)}}});
  status["code"] = 500;
  return status.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

absl::Status ResizeDecoder::Feed(absl::string_view bytes, std::vector<TerminalSize>* out) {
  for (char c : bytes) {
    if (depth_ == 0) {
      if (absl::ascii_isspace(static_cast<unsigned char>(c))) {
        continue;
      }
      if (c != '{') {
        return absl::InvalidArgumentError("resize stream: expected a JSON object");
      }
    }
    pending_.push_back(c);
    if (pending_.size() > kMaxObject) {
      return absl::InvalidArgumentError("resize stream: object too large");
    }
    if (in_string_) {
      if (escaped_) {
        escaped_ = false;
      } else if (c == '\\') {
        escaped_ = true;
      } else if (c == '"') {
        in_string_ = false;
      }
      continue;
    }
    if (c == '"') {
      in_string_ = true;
    } else if (c == '{' || c == '[') {
      ++depth_;
    } else if (c == '}' || c == ']') {
      --depth_;
      if (depth_ < 0) {
        return absl::InvalidArgumentError("resize stream: unbalanced JSON");
      }
      if (depth_ == 0) {
        nlohmann::json object =
            nlohmann::json::parse(pending_, nullptr, /*allow_exceptions=*/false);
        pending_.clear();
        if (!object.is_object()) {
          return absl::InvalidArgumentError("resize stream: malformed JSON object");
        }
        TerminalSize size;
        for (const auto& [key, value] : object.items()) {
          if (!value.is_number_unsigned() || value.get<uint64_t>() > 0xffff) {
            continue;
          }
          if (absl::EqualsIgnoreCase(key, "width")) {
            size.width = value.get<uint16_t>();
          } else if (absl::EqualsIgnoreCase(key, "height")) {
            size.height = value.get<uint16_t>();
          }
        }
        out->push_back(size);
      }
    }
  }
  return absl::OkStatus();
}

namespace {

// Fires once: the session ended early or finished. Runtimes and pumps watch the
// read end; closing the write end wakes them all.
class DoneSignal {
 public:
  DoneSignal() {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) == 0) {
      read_.reset(fds[0]);
      write_.reset(fds[1]);
    }
  }
  void Fire() {
    absl::MutexLock lock(&mu_);
    write_.reset();
  }
  int fd() const { return read_.get(); }

 private:
  UniqueFd read_;
  absl::Mutex mu_;
  UniqueFd write_ ABSL_GUARDED_BY(mu_);
};

// Where a command's output goes: a SPDY stream or a WebSocket channel.
class OutputChannel {
 public:
  virtual ~OutputChannel() = default;
  virtual absl::Status Write(absl::string_view data) = 0;
  virtual void Close() = 0;
};

class SpdyOutput final : public OutputChannel {
 public:
  explicit SpdyOutput(std::shared_ptr<SpdyStream> stream) : stream_(std::move(stream)) {}
  absl::Status Write(absl::string_view data) override { return stream_->Write(data); }
  void Close() override { stream_->Close().IgnoreError(); }

 private:
  std::shared_ptr<SpdyStream> stream_;
};

class WsOutput final : public OutputChannel {
 public:
  WsOutput(WsConnection* conn, uint8_t channel) : conn_(conn), channel_(channel) {}
  absl::Status Write(absl::string_view data) override { return conn_->Write(channel_, data); }
  // Nothing to send: client-go's v5 client only accepts close signals from its
  // side ("Unknown stream id 255"); the end of the session closes every channel.
  void Close() override {}

 private:
  WsConnection* const conn_;
  const uint8_t channel_;
};

struct Channels {
  ByteQueue* stdin_queue = nullptr;
  OutputChannel* stdout_channel = nullptr;
  OutputChannel* stderr_channel = nullptr;
  ByteQueue* resize_queue = nullptr;
  OutputChannel* error_channel = nullptr;
  // v4 and later: metav1.Status JSON; earlier: the error text only.
  bool json_status = false;
};

absl::Status MakePipe(UniqueFd* read_end, UniqueFd* write_end) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    return ErrnoError(errno, "pipe2");
  }
  read_end->reset(fds[0]);
  write_end->reset(fds[1]);
  return absl::OkStatus();
}

// Waits until `fd` is ready for `events` or `done_fd` fires; false for the latter.
bool WaitReady(int fd, int16_t events, int done_fd) {
  while (true) {
    pollfd p[2] = {{fd, events, 0}, {done_fd, POLLIN, 0}};
    int rc = poll(p, 2, -1);
    if (rc < 0 && errno == EINTR) {
      continue;
    }
    if (rc < 0) {
      return false;
    }
    if (p[0].revents != 0) {
      return true;
    }
    if (p[1].revents != 0) {
      return false;
    }
  }
}

// Client bytes -> the command's stdin pipe. Closing the pipe is the command's EOF.
void PumpStdin(ByteQueue* queue, UniqueFd pipe_fd, int done_fd) {
  fcntl(pipe_fd.get(), F_SETFL, fcntl(pipe_fd.get(), F_GETFL) | O_NONBLOCK);
  char buf[32 * 1024];
  while (true) {
    ssize_t n = queue->Read(buf, sizeof(buf));
    if (n <= 0) {
      break;
    }
    absl::string_view data(buf, static_cast<size_t>(n));
    bool ok = true;
    while (!data.empty() && ok) {
      ssize_t w = write(pipe_fd.get(), data.data(), data.size());
      if (w > 0) {
        data.remove_prefix(static_cast<size_t>(w));
      } else if (w < 0 && errno == EAGAIN) {
        ok = WaitReady(pipe_fd.get(), POLLOUT, done_fd);
      } else if (!(w < 0 && errno == EINTR)) {
        ok = false;  // EPIPE: the command closed its stdin.
      }
    }
    if (!ok) {
      break;
    }
  }
  // Nobody reads the client's stdin from here on; drop what else arrives.
  queue->Abort();
}

// The command's output pipe -> the client. EOF half-closes the channel.
void PumpOutput(int pipe_fd, OutputChannel* channel, int done_fd) {
  char buf[32 * 1024];
  while (WaitReady(pipe_fd, POLLIN, done_fd)) {
    ssize_t n = read(pipe_fd, buf, sizeof(buf));
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
      continue;
    }
    if (n <= 0) {
      channel->Close();
      return;
    }
    if (!channel->Write(absl::string_view(buf, static_cast<size_t>(n))).ok()) {
      return;
    }
  }
}

void PumpResize(ByteQueue* queue, ResizeQueue* sizes) {
  ResizeDecoder decoder;
  char buf[4096];
  while (true) {
    ssize_t n = queue->Read(buf, sizeof(buf));
    if (n <= 0) {
      break;
    }
    std::vector<TerminalSize> decoded;
    absl::Status st = decoder.Feed(absl::string_view(buf, static_cast<size_t>(n)), &decoded);
    for (const TerminalSize& size : decoded) {
      sizes->Push(size);
    }
    if (!st.ok()) {
      spdlog::debug("streaming: {}", st.message());
      break;
    }
  }
  queue->Abort();
}

// Runs one exec or attach with the client's channels and writes the outcome on
// the error channel.
void RunRemoteCommand(const RemoteCommand& command, const Channels& channels,
                      StreamingRuntime* runtime, DoneSignal* done, const SessionOptions& options) {
  StreamIo io;
  io.tty = command.tty;
  io.done_fd = done->fd();
  ResizeQueue sizes;
  std::vector<std::thread> pumps;
  std::vector<std::unique_ptr<absl::Notification>> output_done;
  UniqueFd stdout_read, stderr_read;
  absl::Status setup;
  if (channels.stdin_queue != nullptr) {
    UniqueFd write_end;
    setup.Update(MakePipe(&io.stdin_fd, &write_end));
    if (setup.ok()) {
      pumps.emplace_back(PumpStdin, channels.stdin_queue, std::move(write_end), done->fd());
    }
  }
  auto start_output = [&](OutputChannel* channel, UniqueFd* read_end, UniqueFd* write_end) {
    if (channel == nullptr || !setup.ok()) {
      return;
    }
    setup.Update(MakePipe(read_end, write_end));
    if (!setup.ok()) {
      return;
    }
    auto finished = std::make_unique<absl::Notification>();
    absl::Notification* notify = finished.get();
    int fd = read_end->get();
    int done_fd = done->fd();
    pumps.emplace_back([fd, channel, done_fd, notify] {
      PumpOutput(fd, channel, done_fd);
      notify->Notify();
    });
    output_done.push_back(std::move(finished));
  };
  start_output(channels.stdout_channel, &stdout_read, &io.stdout_fd);
  start_output(channels.stderr_channel, &stderr_read, &io.stderr_fd);
  if (channels.resize_queue != nullptr && command.tty) {
    io.resize = &sizes;
    pumps.emplace_back(PumpResize, channels.resize_queue, &sizes);
  }

  absl::StatusOr<int> exit_code = 0;
  if (!setup.ok()) {
    exit_code = setup;
  } else if (command.attach) {
    absl::Status st = runtime->Attach(command.container_id, std::move(io));
    if (!st.ok()) {
      exit_code = st;
    }
  } else {
    exit_code = runtime->Exec(command.container_id, command.cmd, std::move(io));
  }
  // The runtime dropped its pipe ends; let the output already written reach
  // the client before ending the session.
  absl::Time deadline = absl::Now() + options.output_drain_timeout;
  for (const auto& finished : output_done) {
    finished->WaitForNotificationWithDeadline(deadline);
  }
  done->Fire();
  if (channels.stdin_queue != nullptr) {
    channels.stdin_queue->Abort();
  }
  if (channels.resize_queue != nullptr) {
    channels.resize_queue->Abort();
  }
  sizes.Close();
  for (std::thread& t : pumps) {
    t.join();
  }

  std::string status;
  if (!exit_code.ok()) {
    std::string message =
        command.attach
            ? absl::StrCat("error attaching to container: ", exit_code.status().message())
            : absl::StrCat("error executing command in container: ", exit_code.status().message());
    spdlog::info("streaming: {} {}: {}", command.attach ? "attach to" : "exec in",
                 command.container_id, message);
    status = channels.json_status ? InternalErrorStatusJson(message) : message;
  } else if (*exit_code != 0) {
    status = channels.json_status
                 ? ExitCodeStatusJson(*exit_code)
                 : absl::StrCat("command terminated with non-zero exit code: ", *exit_code);
  } else if (channels.json_status) {
    status = SuccessStatusJson();
  }
  if (channels.error_channel != nullptr) {
    if (!status.empty()) {
      channels.error_channel->Write(status).IgnoreError();
    }
    channels.error_channel->Close();
  }
}

bool IsJsonStatusProtocol(const std::string& protocol) {
  return protocol == kChannelV4 || protocol == kChannelV5 || protocol == kBase64ChannelV4;
}

}  // namespace

void ServeSpdyRemoteCommand(int fd, std::string initial, const std::string& protocol,
                            const RemoteCommand& command, StreamingRuntime* runtime,
                            const SessionOptions& options) {
  SpdyConnection conn(fd, std::move(initial));
  bool with_resize = command.tty && protocol != kChannelV1 && protocol != kChannelV2;
  std::map<std::string, bool> wanted = {{"error", true},
                                        {"stdin", command.with_stdin},
                                        {"stdout", command.with_stdout},
                                        {"stderr", command.with_stderr},
                                        {"resize", with_resize}};
  size_t expected = 0;
  for (const auto& [type, want] : wanted) {
    expected += want ? 1 : 0;
  }
  absl::Mutex mu;
  std::map<std::string, std::shared_ptr<SpdyStream>> streams;
  auto on_stream = [&](std::shared_ptr<SpdyStream> stream) {
    std::string type = absl::AsciiStrToLower(stream->Header("streamtype"));
    absl::MutexLock lock(&mu);
    auto it = wanted.find(type);
    if (it == wanted.end() || !it->second || streams.count(type) != 0) {
      spdlog::debug("streaming: refusing unexpected stream type \"{}\"", type);
      return false;
    }
    if (type != "stdin" && type != "resize") {
      // Nothing is read from these; drop whatever a client sends on them.
      stream->inbound().Abort();
    }
    if (!stream->Reply().ok()) {
      return false;
    }
    streams[type] = std::move(stream);
    return true;
  };
  DoneSignal done;
  absl::Notification reader_done;
  std::thread reader([&] {
    conn.Serve(on_stream);
    done.Fire();
    reader_done.Notify();
  });

  bool ready;
  {
    absl::MutexLock lock(&mu);
    auto all_there = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
      return streams.size() == expected || reader_done.HasBeenNotified();
    };
    mu.AwaitWithTimeout(absl::Condition(&all_there), options.stream_creation_timeout);
    ready = streams.size() == expected;
  }
  if (ready) {
    auto get = [&](const char* type) -> std::shared_ptr<SpdyStream> {
      absl::MutexLock lock(&mu);
      auto it = streams.find(type);
      return it == streams.end() ? nullptr : it->second;
    };
    std::shared_ptr<SpdyStream> stdin_stream = get("stdin");
    std::shared_ptr<SpdyStream> resize_stream = get("resize");
    std::unique_ptr<SpdyOutput> out, err, error;
    if (auto s = get("stdout")) {
      out = std::make_unique<SpdyOutput>(s);
    }
    if (auto s = get("stderr")) {
      err = std::make_unique<SpdyOutput>(s);
    }
    error = std::make_unique<SpdyOutput>(get("error"));
    Channels channels;
    channels.stdin_queue = stdin_stream ? &stdin_stream->inbound() : nullptr;
    channels.resize_queue = resize_stream ? &resize_stream->inbound() : nullptr;
    channels.stdout_channel = out.get();
    channels.stderr_channel = err.get();
    channels.error_channel = error.get();
    channels.json_status = IsJsonStatusProtocol(protocol);
    RunRemoteCommand(command, channels, runtime, &done, options);
  } else if (!reader_done.HasBeenNotified()) {
    spdlog::info("streaming: client opened {} of {} streams within {}", streams.size(), expected,
                 absl::FormatDuration(options.stream_creation_timeout));
  }
  conn.Shutdown();
  if (!reader_done.WaitForNotificationWithTimeout(options.close_linger)) {
    shutdown(fd, SHUT_RDWR);
  }
  reader.join();
}

namespace {

// One forwarded connection: the client's data and error streams for a port.
struct PortPair {
  std::shared_ptr<SpdyStream> data;
  std::shared_ptr<SpdyStream> error;
  int32_t port = 0;
  absl::Time created;
};

// Sockets of running forwards, shut down when the session ends.
class SocketRegistry {
 public:
  void Add(int fd) {
    absl::MutexLock lock(&mu_);
    fds_.insert(fd);
  }
  void Remove(int fd) {
    absl::MutexLock lock(&mu_);
    fds_.erase(fd);
  }
  void ShutdownAll() {
    absl::MutexLock lock(&mu_);
    for (int fd : fds_) {
      shutdown(fd, SHUT_RDWR);
    }
  }

 private:
  absl::Mutex mu_;
  std::set<int> fds_ ABSL_GUARDED_BY(mu_);
};

void ForwardPort(const PortPair& pair, const std::string& sandbox_id, StreamingRuntime* runtime,
                 SocketRegistry* sockets) {
  absl::StatusOr<UniqueFd> sock = runtime->PortForward(sandbox_id, pair.port);
  if (!sock.ok()) {
    std::string message = absl::StrCat("error forwarding port ", pair.port, " to pod ", sandbox_id,
                                       ", uid : ", sock.status().message());
    spdlog::info("streaming: {}", message);
    pair.error->Write(message).IgnoreError();
    pair.error->Close().IgnoreError();
    pair.data->Close().IgnoreError();
    pair.data->inbound().Abort();
    return;
  }
  int fd = sock->get();
  sockets->Add(fd);
  std::thread upstream([&pair, fd] {
    char buf[32 * 1024];
    ssize_t n;
    while ((n = pair.data->inbound().Read(buf, sizeof(buf))) > 0) {
      if (!SendAll(fd, absl::string_view(buf, static_cast<size_t>(n))).ok()) {
        break;
      }
    }
    // The client half-closed: so does the pod's side. Otherwise stop reading.
    shutdown(fd, n == 0 ? SHUT_WR : SHUT_RDWR);
    pair.data->inbound().Abort();
  });
  char buf[32 * 1024];
  while (true) {
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      break;
    }
    if (!pair.data->Write(absl::string_view(buf, static_cast<size_t>(n))).ok()) {
      break;
    }
  }
  pair.data->Close().IgnoreError();
  // Like containerd, the forward ends when the pod's side did.
  pair.data->inbound().Abort();
  upstream.join();
  pair.error->Close().IgnoreError();
  sockets->Remove(fd);
}

}  // namespace

void ServeSpdyPortForward(int fd, std::string initial, const std::string& pod_sandbox_id,
                          StreamingRuntime* runtime, const SessionOptions& options) {
  SpdyConnection conn(fd, std::move(initial));
  SocketRegistry sockets;
  absl::Mutex mu;
  std::map<std::string, PortPair> pending;
  struct Forward {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> finished;
  };
  std::vector<Forward> forwards;  // reader thread only until it ended
  auto reap = [&](bool all) {
    for (auto it = forwards.begin(); it != forwards.end();) {
      if (all || it->finished->load()) {
        it->thread.join();
        it = forwards.erase(it);
      } else {
        ++it;
      }
    }
  };
  auto on_stream = [&](std::shared_ptr<SpdyStream> stream) {
    std::string type = absl::AsciiStrToLower(stream->Header("streamtype"));
    int32_t port = 0;
    if (!absl::SimpleAtoi(stream->Header("port"), &port) || port <= 0 || port > 65535) {
      spdlog::debug("streaming: port-forward stream {} with bad port \"{}\"", stream->id(),
                    stream->Header("port"));
      return false;
    }
    if (type != "data" && type != "error") {
      return false;
    }
    std::string request_id = stream->Header("requestid");
    if (request_id.empty()) {
      // Older clients: the pair's error stream id names it, the data stream follows it.
      request_id = absl::StrCat(type == "error" ? stream->id() : stream->id() - 2);
    }
    std::optional<PortPair> complete;
    {
      absl::MutexLock lock(&mu);
      PortPair& pair = pending[request_id];
      std::shared_ptr<SpdyStream>& slot = type == "data" ? pair.data : pair.error;
      if (slot != nullptr || (pair.port != 0 && pair.port != port)) {
        return false;
      }
      if (pair.port == 0) {
        pair.port = port;
        pair.created = absl::Now();
      }
      if (type == "error") {
        stream->inbound().Abort();
      }
      if (!stream->Reply().ok()) {
        return false;
      }
      slot = std::move(stream);
      if (pair.data != nullptr && pair.error != nullptr) {
        complete = std::move(pair);
        pending.erase(request_id);
      }
    }
    if (complete.has_value()) {
      reap(false);
      auto finished = std::make_shared<std::atomic<bool>>(false);
      forwards.push_back(
          {std::thread([pair = std::move(*complete), finished, &pod_sandbox_id, runtime, &sockets] {
             ForwardPort(pair, pod_sandbox_id, runtime, &sockets);
             *finished = true;
           }),
           finished});
    }
    return true;
  };
  absl::Notification reader_done;
  std::thread reader([&] {
    conn.Serve(on_stream);
    reader_done.Notify();
  });
  // Pairs the client never completed are reset after the creation timeout.
  while (!reader_done.WaitForNotificationWithTimeout(absl::Seconds(1))) {
    absl::MutexLock lock(&mu);
    for (auto it = pending.begin(); it != pending.end();) {
      if (absl::Now() - it->second.created > options.stream_creation_timeout) {
        for (auto* s : {&it->second.data, &it->second.error}) {
          if (*s != nullptr) {
            (*s)->Reset();
          }
        }
        it = pending.erase(it);
      } else {
        ++it;
      }
    }
  }
  reader.join();
  sockets.ShutdownAll();
  reap(true);
  conn.Shutdown();
}

void ServeWebSocketRemoteCommand(int fd, std::string initial, const std::string& protocol,
                                 const RemoteCommand& command, StreamingRuntime* runtime,
                                 const SessionOptions& options) {
  bool base64 = protocol == kBase64ChannelV1 || protocol == kBase64ChannelV4;
  WsConnection conn(fd, std::move(initial), base64, protocol == kChannelV5);
  ByteQueue stdin_queue;
  ByteQueue resize_queue;
  constexpr uint8_t kStdin = 0, kStdout = 1, kStderr = 2, kError = 3, kResize = 4;
  auto on_message = [&](uint8_t channel, const std::string& data, bool closed) {
    if (channel == kStdin && command.with_stdin) {
      if (closed) {
        stdin_queue.Finish();
      } else {
        stdin_queue.Push(data);
      }
    } else if (channel == kResize && command.tty && !closed) {
      resize_queue.Push(data);
    }
  };
  DoneSignal done;
  absl::Notification reader_done;
  std::thread reader([&] {
    conn.Serve(on_message);
    stdin_queue.Abort();
    resize_queue.Abort();
    done.Fire();
    reader_done.Notify();
  });
  WsOutput out(&conn, kStdout), err(&conn, kStderr), error(&conn, kError);
  // The reference server greets with an empty message on the lowest channel it writes.
  conn.Write(command.with_stdout   ? kStdout
             : command.with_stderr ? kStderr
                                   : kError,
             "")
      .IgnoreError();
  Channels channels;
  channels.stdin_queue = command.with_stdin ? &stdin_queue : nullptr;
  channels.resize_queue = command.tty ? &resize_queue : nullptr;
  channels.stdout_channel = command.with_stdout ? &out : nullptr;
  channels.stderr_channel = command.with_stderr ? &err : nullptr;
  channels.error_channel = &error;
  channels.json_status = IsJsonStatusProtocol(protocol);
  RunRemoteCommand(command, channels, runtime, &done, options);
  conn.Shutdown();
  if (!reader_done.WaitForNotificationWithTimeout(options.close_linger)) {
    shutdown(fd, SHUT_RDWR);
  }
  reader.join();
}

}  // namespace crid::streaming
