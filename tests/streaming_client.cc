#include "tests/streaming_client.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <poll.h>
#include <sys/random.h>
#include <sys/socket.h>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "base/errors.h"
#include "cri/streaming/spdy_connection.h"
#include "cri/streaming/websocket.h"

namespace crid::streaming_test {

namespace spdy = ::crid::streaming::spdy;
namespace ws = ::crid::streaming::ws;
using ::crid::streaming::SendAll;

std::string HttpReply::Header(const std::string& name) const {
  for (const auto& [k, v] : headers) {
    if (k == name) {
      return v;
    }
  }
  return "";
}

namespace {

absl::Mutex tls_mu;
crid::streaming::TlsFiles* tls_files ABSL_GUARDED_BY(tls_mu) = nullptr;

}  // namespace

void UseTlsClient(const crid::streaming::TlsFiles& files) {
  absl::MutexLock lock(&tls_mu);
  delete tls_files;
  tls_files = new crid::streaming::TlsFiles(files);
}

absl::StatusOr<UniqueFd> DialUrl(const std::string& url, std::string* path) {
  absl::string_view rest = url;
  bool tls = absl::ConsumePrefix(&rest, "https://");
  if (!tls && !absl::ConsumePrefix(&rest, "http://")) {
    return absl::InvalidArgumentError(absl::StrCat("not an http URL: ", url));
  }
  size_t slash = rest.find('/');
  absl::string_view hostport = rest.substr(0, slash);
  *path = slash == absl::string_view::npos ? "/" : std::string(rest.substr(slash));
  size_t colon = hostport.rfind(':');
  if (colon == absl::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat("URL without a port: ", url));
  }
  std::string host(hostport.substr(0, colon));
  std::string port(hostport.substr(colon + 1));
  if (host.size() > 2 && host.front() == '[') {
    host = host.substr(1, host.size() - 2);
  }
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  if (getaddrinfo(host.c_str(), port.c_str(), &hints, &res) != 0 || res == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("bad address in ", url));
  }
  UniqueFd fd(socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  int rc = connect(fd.get(), res->ai_addr, res->ai_addrlen);
  int err = errno;
  freeaddrinfo(res);
  if (rc != 0) {
    return ErrnoError(err, "connect to ", url);
  }
  if (!tls) {
    return fd;
  }
  crid::streaming::TlsFiles files;
  {
    absl::MutexLock lock(&tls_mu);
    if (tls_files == nullptr) {
      return absl::FailedPreconditionError("https URL, but UseTlsClient was not called");
    }
    files = *tls_files;
  }
  std::thread pump;
  CRID_ASSIGN_OR_RETURN(UniqueFd plain,
                        crid::streaming::TlsClientWrap(std::move(fd), host, files,
                                                       absl::Now() + absl::Seconds(10), &pump));
  pump.detach();  // ends when either side closes
  return plain;
}

absl::StatusOr<HttpReply> HttpRequestOn(
    int fd, const std::string& method, const std::string& path,
    const std::vector<std::pair<std::string, std::string>>& headers, std::string* rest) {
  std::string request = absl::StrCat(method, " ", path, " HTTP/1.1\r\nHost: crid\r\n");
  for (const auto& [k, v] : headers) {
    absl::StrAppend(&request, k, ": ", v, "\r\n");
  }
  request += "\r\n";
  CRID_RETURN_IF_ERROR(SendAll(fd, request));
  std::string buffer;
  size_t end;
  while ((end = buffer.find("\r\n\r\n")) == std::string::npos) {
    char chunk[4096];
    ssize_t n = recv(fd, chunk, sizeof(chunk), 0);
    if (n <= 0) {
      return absl::UnavailableError(
          absl::StrCat("connection ended before the reply head: \"", absl::CEscape(buffer), "\""));
    }
    buffer.append(chunk, static_cast<size_t>(n));
  }
  HttpReply reply;
  std::vector<std::string> lines = absl::StrSplit(buffer.substr(0, end), "\r\n");
  std::vector<std::string> status = absl::StrSplit(lines[0], absl::MaxSplits(' ', 2));
  if (status.size() < 2 || !absl::SimpleAtoi(status[1], &reply.code)) {
    return absl::DataLossError(absl::StrCat("bad status line: ", lines[0]));
  }
  for (size_t i = 1; i < lines.size(); ++i) {
    size_t colon = lines[i].find(':');
    if (colon != std::string::npos) {
      reply.headers.emplace_back(
          absl::AsciiStrToLower(lines[i].substr(0, colon)),
          std::string(absl::StripAsciiWhitespace(lines[i].substr(colon + 1))));
    }
  }
  std::string after = buffer.substr(end + 4);
  if (reply.code == 101) {
    if (rest != nullptr) {
      *rest = after;
    }
    return reply;
  }
  reply.body = after;
  char chunk[4096];
  ssize_t n;
  while ((n = recv(fd, chunk, sizeof(chunk), 0)) > 0) {
    reply.body.append(chunk, static_cast<size_t>(n));
  }
  return reply;
}

absl::StatusOr<HttpReply> HttpRequest(
    const std::string& method, const std::string& url,
    const std::vector<std::pair<std::string, std::string>>& headers) {
  std::string path;
  CRID_ASSIGN_OR_RETURN(UniqueFd fd, DialUrl(url, &path));
  return HttpRequestOn(fd.get(), method, path, headers);
}

// ---- SPDY ----

absl::StatusOr<std::unique_ptr<SpdyClient>> SpdyClient::Connect(
    const std::string& url, const std::vector<std::string>& protocols, const std::string& method) {
  std::string path;
  CRID_ASSIGN_OR_RETURN(UniqueFd fd, DialUrl(url, &path));
  std::vector<std::pair<std::string, std::string>> headers = {{"Connection", "Upgrade"},
                                                              {"Upgrade", "SPDY/3.1"}};
  for (const std::string& p : protocols) {
    headers.emplace_back("X-Stream-Protocol-Version", p);
  }
  std::string rest;
  CRID_ASSIGN_OR_RETURN(HttpReply reply, HttpRequestOn(fd.get(), method, path, headers, &rest));
  if (reply.code != 101) {
    return absl::FailedPreconditionError(absl::StrCat("HTTP ", reply.code, ": ", reply.body));
  }
  auto client = std::unique_ptr<SpdyClient>(new SpdyClient());
  client->fd_ = std::move(fd);
  client->protocol_ = reply.Header("x-stream-protocol-version");
  client->pending_ = rest;
  client->reader_ = std::thread([c = client.get()] { c->ReadLoop(); });
  return client;
}

SpdyClient::~SpdyClient() { Close(); }

void SpdyClient::Close() {
  if (fd_.valid()) {
    shutdown(fd_.get(), SHUT_RDWR);
  }
  if (reader_.joinable()) {
    reader_.join();
  }
}

absl::Status SpdyClient::SendFrame(const std::string& frame) {
  absl::MutexLock lock(&write_mu_);
  return SendAll(fd_.get(), frame);
}

absl::Status SpdyClient::SendRaw(absl::string_view bytes) {
  absl::MutexLock lock(&write_mu_);
  return SendAll(fd_.get(), bytes);
}

void SpdyClient::ReadLoop() {
  spdy::HeaderDecompressor decompressor;
  char chunk[64 * 1024];
  while (true) {
    auto parsed = spdy::ParseFrame(pending_);
    if (!parsed.ok()) {
      break;
    }
    if (!parsed->has_value()) {
      ssize_t n = recv(fd_.get(), chunk, sizeof(chunk), 0);
      if (n <= 0) {
        break;
      }
      pending_.append(chunk, static_cast<size_t>(n));
      continue;
    }
    spdy::RawFrame frame = (*parsed)->first;
    size_t used = (*parsed)->second;
    absl::MutexLock lock(&mu_);
    if (!frame.control) {
      Stream& s = streams_[frame.stream_id];
      s.data.append(frame.payload.data(), frame.payload.size());
      if (frame.flags & spdy::kFlagFin) {
        s.fin = true;
      }
    } else if (frame.type == static_cast<uint16_t>(spdy::FrameType::kSynReply)) {
      auto reply = spdy::DecodeSynReply(frame);
      if (reply.ok()) {
        decompressor.Decode(reply->compressed_headers).IgnoreError();
        streams_[reply->stream_id].replied = true;
        if (reply->flags & spdy::kFlagFin) {
          streams_[reply->stream_id].fin = true;
        }
      }
    } else if (frame.type == static_cast<uint16_t>(spdy::FrameType::kRstStream)) {
      auto rst = spdy::DecodeRstStream(frame);
      if (rst.ok()) {
        streams_[rst->stream_id].reset = true;
      }
    } else if (frame.type == static_cast<uint16_t>(spdy::FrameType::kPing)) {
      auto id = spdy::DecodePing(frame);
      if (id.ok()) {
        pongs_.push_back(*id);
      }
    } else if (frame.type == static_cast<uint16_t>(spdy::FrameType::kGoAway)) {
      auto goaway = spdy::DecodeGoAway(frame);
      goaway_ = true;
      goaway_status_ = goaway.ok() ? goaway->status : 0xffffffff;
    }
    pending_.erase(0, used);
  }
  absl::MutexLock lock(&mu_);
  closed_ = true;
}

absl::StatusOr<uint32_t> SpdyClient::OpenStream(const spdy::HeaderBlock& headers,
                                                absl::Duration timeout) {
  uint32_t id;
  {
    absl::MutexLock lock(&write_mu_);
    id = next_id_;
    next_id_ += 2;
    CRID_ASSIGN_OR_RETURN(std::string block, compressor_.Encode(headers));
    CRID_RETURN_IF_ERROR(SendAll(fd_.get(), spdy::EncodeSynStream(id, 0, 0, 0, block)));
  }
  absl::MutexLock lock(&mu_);
  auto done = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return streams_[id].replied || streams_[id].reset || closed_;
  };
  if (!mu_.AwaitWithTimeout(absl::Condition(&done), timeout)) {
    return absl::DeadlineExceededError(absl::StrCat("no SYN_REPLY for stream ", id));
  }
  if (!streams_[id].replied) {
    return absl::AbortedError(absl::StrCat("stream ", id, " refused"));
  }
  return id;
}

absl::Status SpdyClient::Write(uint32_t id, absl::string_view data) {
  return SendFrame(spdy::EncodeDataFrame(id, 0, data));
}

absl::Status SpdyClient::CloseStream(uint32_t id) {
  return SendFrame(spdy::EncodeDataFrame(id, spdy::kFlagFin, ""));
}

absl::Status SpdyClient::Reset(uint32_t id) {
  return SendFrame(spdy::EncodeRstStream(id, spdy::RstStatus::kCancel));
}

absl::StatusOr<std::string> SpdyClient::ReadAll(uint32_t id, absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto done = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return streams_[id].fin || streams_[id].reset || closed_;
  };
  if (!mu_.AwaitWithTimeout(absl::Condition(&done), timeout)) {
    return absl::DeadlineExceededError(absl::StrCat("stream ", id, " not finished; got \"",
                                                    absl::CEscape(streams_[id].data), "\""));
  }
  if (!streams_[id].fin) {
    return absl::AbortedError(absl::StrCat("stream ", id, " ended without FIN; got \"",
                                           absl::CEscape(streams_[id].data), "\""));
  }
  return std::exchange(streams_[id].data, "");
}

absl::StatusOr<std::string> SpdyClient::Read(uint32_t id, size_t min_bytes,
                                             absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto done = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return streams_[id].data.size() >= min_bytes || streams_[id].fin || streams_[id].reset ||
           closed_;
  };
  if (!mu_.AwaitWithTimeout(absl::Condition(&done), timeout)) {
    return absl::DeadlineExceededError(
        absl::StrCat("stream ", id, ": only ", streams_[id].data.size(), " bytes"));
  }
  return std::exchange(streams_[id].data, "");
}

bool SpdyClient::StreamWasReset(uint32_t id) {
  absl::MutexLock lock(&mu_);
  return streams_[id].reset;
}

absl::Status SpdyClient::Ping(uint32_t id, absl::Duration timeout) {
  CRID_RETURN_IF_ERROR(SendFrame(spdy::EncodePing(id)));
  absl::MutexLock lock(&mu_);
  auto done = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return closed_ || std::find(pongs_.begin(), pongs_.end(), id) != pongs_.end();
  };
  if (!mu_.AwaitWithTimeout(absl::Condition(&done), timeout) || closed_) {
    return absl::DeadlineExceededError("no PING reply");
  }
  return absl::OkStatus();
}

absl::StatusOr<uint32_t> SpdyClient::WaitGoAway(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto done = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return goaway_ || closed_; };
  mu_.AwaitWithTimeout(absl::Condition(&done), timeout);
  if (!goaway_) {
    return absl::NotFoundError("no GOAWAY");
  }
  return goaway_status_;
}

bool SpdyClient::WaitClosed(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto done = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return closed_; };
  return mu_.AwaitWithTimeout(absl::Condition(&done), timeout);
}

// ---- WebSocket ----

absl::StatusOr<std::unique_ptr<WsClient>> WsClient::Connect(
    const std::string& url, const std::vector<std::string>& protocols) {
  std::string path;
  CRID_ASSIGN_OR_RETURN(UniqueFd fd, DialUrl(url, &path));
  char nonce[16];
  if (getrandom(nonce, sizeof(nonce), 0) != sizeof(nonce)) {
    return absl::InternalError("getrandom");
  }
  std::string key = absl::Base64Escape(absl::string_view(nonce, sizeof(nonce)));
  std::vector<std::pair<std::string, std::string>> headers = {{"Connection", "Upgrade"},
                                                              {"Upgrade", "websocket"},
                                                              {"Sec-WebSocket-Version", "13"},
                                                              {"Sec-WebSocket-Key", key}};
  if (!protocols.empty()) {
    headers.emplace_back("Sec-WebSocket-Protocol", absl::StrJoin(protocols, ", "));
  }
  std::string rest;
  CRID_ASSIGN_OR_RETURN(HttpReply reply, HttpRequestOn(fd.get(), "GET", path, headers, &rest));
  if (reply.code != 101) {
    return absl::FailedPreconditionError(absl::StrCat("HTTP ", reply.code, ": ", reply.body));
  }
  if (reply.Header("sec-websocket-accept") != ws::AcceptKey(key)) {
    return absl::DataLossError("wrong Sec-WebSocket-Accept");
  }
  auto client = std::unique_ptr<WsClient>(new WsClient());
  client->fd_ = std::move(fd);
  client->protocol_ = reply.Header("sec-websocket-protocol");
  client->pending_ = rest;
  client->reader_ = std::thread([c = client.get()] { c->ReadLoop(); });
  return client;
}

WsClient::~WsClient() {
  shutdown(fd_.get(), SHUT_RDWR);
  if (reader_.joinable()) {
    reader_.join();
  }
}

bool WsClient::base64() const { return absl::StrContains(protocol_, "base64"); }

absl::Status WsClient::SendRaw(absl::string_view bytes) {
  absl::MutexLock lock(&write_mu_);
  return SendAll(fd_.get(), bytes);
}

absl::Status WsClient::Send(uint8_t channel, absl::string_view data) {
  if (base64()) {
    return SendRaw(ws::EncodeFrame(
        ws::kText,
        absl::StrCat(std::string(1, static_cast<char>('0' + channel)), absl::Base64Escape(data)),
        0x12345678u));
  }
  std::string message(1, static_cast<char>(channel));
  message.append(data.data(), data.size());
  return SendRaw(ws::EncodeFrame(ws::kBinary, message, 0x0badf00du));
}

absl::Status WsClient::SendCloseChannel(uint8_t channel) {
  std::string message{static_cast<char>(255),
                      static_cast<char>(base64() ? '0' + channel : channel)};
  return SendRaw(ws::EncodeFrame(base64() ? ws::kText : ws::kBinary, message, 0xcafe0001u));
}

void WsClient::ReadLoop() {
  char chunk[64 * 1024];
  while (true) {
    auto parsed = ws::ParseFrame(pending_, /*require_mask=*/false, 1 << 24);
    if (!parsed.ok()) {
      break;
    }
    if (!parsed->has_value()) {
      ssize_t n = recv(fd_.get(), chunk, sizeof(chunk), 0);
      if (n <= 0) {
        break;
      }
      pending_.append(chunk, static_cast<size_t>(n));
      continue;
    }
    ws::Frame frame = std::move((*parsed)->first);
    pending_.erase(0, (*parsed)->second);
    absl::MutexLock lock(&mu_);
    if (frame.opcode == ws::kClose) {
      close_code_ = frame.payload.size() >= 2
                        ? static_cast<uint16_t>(static_cast<uint8_t>(frame.payload[0]) << 8 |
                                                static_cast<uint8_t>(frame.payload[1]))
                        : 1005;
      continue;
    }
    if (frame.opcode != ws::kBinary && frame.opcode != ws::kText) {
      continue;
    }
    if (frame.payload.empty()) {
      continue;
    }
    uint8_t channel = static_cast<uint8_t>(frame.payload[0]);
    std::string data = frame.payload.substr(1);
    if (channel == 255 && data.size() == 1) {
      closed_channels_.push_back(static_cast<uint8_t>(base64() ? data[0] - '0' : data[0]));
      continue;
    }
    if (base64()) {
      channel = static_cast<uint8_t>(channel - '0');
      std::string decoded;
      absl::Base64Unescape(data, &decoded);
      data = decoded;
    }
    data_[channel] += data;
    counts_[channel]++;
  }
  absl::MutexLock lock(&mu_);
  closed_ = true;
}

absl::StatusOr<std::map<uint8_t, std::string>> WsClient::ReadUntilClosed(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto done = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return closed_; };
  if (!mu_.AwaitWithTimeout(absl::Condition(&done), timeout)) {
    return absl::DeadlineExceededError("WebSocket connection still open");
  }
  return data_;
}

absl::StatusOr<std::string> WsClient::Read(uint8_t channel, size_t min_bytes,
                                           absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto done = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return data_[channel].size() >= min_bytes || closed_;
  };
  if (!mu_.AwaitWithTimeout(absl::Condition(&done), timeout)) {
    return absl::DeadlineExceededError(
        absl::StrCat("channel ", channel, ": only ", data_[channel].size(), " bytes"));
  }
  return std::exchange(data_[channel], "");
}

int WsClient::MessageCount(uint8_t channel) {
  absl::MutexLock lock(&mu_);
  return counts_[channel];
}

std::vector<uint8_t> WsClient::ClosedChannels() {
  absl::MutexLock lock(&mu_);
  return closed_channels_;
}

uint16_t WsClient::close_code() {
  absl::MutexLock lock(&mu_);
  return close_code_;
}

}  // namespace crid::streaming_test
