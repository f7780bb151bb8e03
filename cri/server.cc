#include "cri/server.h"

#include <grp.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <optional>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "base/errors.h"
#include "base/fs.h"
#include "base/logging.h"
#include "base/unique_fd.h"

namespace crid {

namespace {

constexpr mode_t kSocketMode = 0660;

std::string DirName(const std::string& path) {
  auto slash = path.find_last_of('/');
  return slash == 0 ? "/" : path.substr(0, slash);
}

absl::StatusOr<gid_t> ResolveGroup(const std::string& group) {
  gid_t gid;
  if (absl::SimpleAtoi(group, &gid)) {
    return gid;
  }
  struct group grp;
  struct group* result = nullptr;
  char buf[4096];
  if (::getgrnam_r(group.c_str(), &grp, buf, sizeof(buf), &result) != 0 || result == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("socket_group: no group named \"", group, "\""));
  }
  return result->gr_gid;
}

}  // namespace

absl::Status PrepareSocketPath(const std::string& path) {
  if (path.size() >= sizeof(sockaddr_un::sun_path)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "socket path longer than ", sizeof(sockaddr_un::sun_path) - 1, " bytes: ", path));
  }
  CRID_RETURN_IF_ERROR(MakeDirs(DirName(path), 0711));
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) {
      return absl::OkStatus();
    }
    return ErrnoError(errno, "stat ", path);
  }
  if (!S_ISSOCK(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, " exists and is not a socket; refusing to replace it"));
  }
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) {
    return ErrnoError(errno, "socket");
  }
  struct sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  if (::connect(fd.get(), reinterpret_cast<struct sockaddr*>(&addr), sizeof(addr)) == 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("another process is serving on ", path, " (is another crid running?)"));
  }
  if (errno != ECONNREFUSED) {
    return ErrnoError(errno, "connect to existing socket ", path);
  }
  // Nobody listens: a socket left behind by a crid that did not shut down.
  spdlog::info("removing stale socket {}", path);
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return ErrnoError(errno, "remove stale socket ", path);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<CriServer>> CriServer::Start(
    const ServerOptions& options, const std::vector<grpc::Service*>& services,
    std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> interceptor) {
  std::optional<gid_t> gid;
  if (!options.socket_group.empty()) {
    CRID_ASSIGN_OR_RETURN(gid, ResolveGroup(options.socket_group));
  }
  CRID_RETURN_IF_ERROR(PrepareSocketPath(options.socket_path));

  grpc::ServerBuilder builder;
  builder.AddListeningPort("unix://" + options.socket_path, grpc::InsecureServerCredentials());
  builder.SetMaxReceiveMessageSize(options.max_message_bytes);
  builder.SetMaxSendMessageSize(options.max_message_bytes);
  for (grpc::Service* service : services) {
    builder.RegisterService(service);
  }
  if (interceptor != nullptr) {
    std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> creators;
    creators.push_back(std::move(interceptor));
    builder.experimental().SetInterceptorCreators(std::move(creators));
  }
  // The socket is created by BuildAndStart; the umask keeps it from ever being
  // reachable by others before the chmod below.
  mode_t old_umask = ::umask(0777 & ~kSocketMode);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ::umask(old_umask);
  if (server == nullptr) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", options.socket_path, " (see the gRPC error above)"));
  }
  auto cri = std::unique_ptr<CriServer>(new CriServer(options.socket_path, std::move(server)));
  if (::chmod(options.socket_path.c_str(), kSocketMode) != 0) {
    return ErrnoError(errno, "chmod ", options.socket_path);
  }
  if (gid.has_value() && ::chown(options.socket_path.c_str(), -1, *gid) != 0) {
    return ErrnoError(errno, "chown ", options.socket_path);
  }
  return cri;
}

void CriServer::Shutdown(absl::Duration grace) {
  if (server_ == nullptr) {
    return;
  }
  server_->Shutdown(std::chrono::system_clock::now() + absl::ToChronoSeconds(grace));
  server_->Wait();
  server_.reset();
  if (::unlink(socket_path_.c_str()) != 0 && errno != ENOENT) {
    spdlog::warn("remove socket {}: {}", socket_path_, std::strerror(errno));
  }
}

CriServer::~CriServer() { Shutdown(absl::ZeroDuration()); }

}  // namespace crid
