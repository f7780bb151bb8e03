// The socket: created 0660, stale sockets replaced, live ones and non-sockets
// never touched, removed on shutdown.
#include "cri/server.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <fstream>

#include "base/temp_dir.h"
#include "base/unique_fd.h"
#include "cri/image_service.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace crid {
namespace {

using ::testing::HasSubstr;

// Binds a unix socket at `path`; listens only when `listen` is set.
UniqueFd BindSocket(const std::string& path, bool listen) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  struct sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  EXPECT_EQ(::bind(fd.get(), reinterpret_cast<struct sockaddr*>(&addr), sizeof(addr)), 0);
  if (listen) {
    EXPECT_EQ(::listen(fd.get(), 1), 0);
  }
  return fd;
}

TEST(PrepareSocketPath, CreatesDirectory) {
  TempDir tmp;
  EXPECT_TRUE(PrepareSocketPath(tmp.Sub("run/crid/crid.sock")).ok());
  struct stat st;
  EXPECT_EQ(::stat(tmp.Sub("run/crid").c_str(), &st), 0);
}

TEST(PrepareSocketPath, RefusesOverlongPath) {
  absl::Status st = PrepareSocketPath("/tmp/" + std::string(120, 's') + ".sock");
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(st.message()), HasSubstr("longer than 107"));
}

TEST(PrepareSocketPath, RemovesStaleSocket) {
  TempDir tmp;
  std::string path = tmp.Sub("crid.sock");
  { UniqueFd stale = BindSocket(path, /*listen=*/false); }  // closed: nobody listens
  ASSERT_TRUE(PrepareSocketPath(path).ok());
  struct stat st;
  EXPECT_NE(::lstat(path.c_str(), &st), 0);
}

TEST(PrepareSocketPath, RefusesLiveSocket) {
  TempDir tmp;
  std::string path = tmp.Sub("crid.sock");
  UniqueFd live = BindSocket(path, /*listen=*/true);
  absl::Status st = PrepareSocketPath(path);
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(st.message()), HasSubstr("another process is serving"));
  struct stat sb;
  EXPECT_EQ(::lstat(path.c_str(), &sb), 0) << "a live socket must stay";
}

TEST(PrepareSocketPath, RefusesToReplaceARegularFile) {
  TempDir tmp;
  std::string path = tmp.Sub("crid.sock");
  std::ofstream(path) << "precious";
  absl::Status st = PrepareSocketPath(path);
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(st.message()), HasSubstr("not a socket"));
  std::ifstream in(path);
  std::string content;
  in >> content;
  EXPECT_EQ(content, "precious");
}

TEST(CriServer, SocketIsGroupOnlyAndRemovedOnShutdown) {
  TempDir tmp;
  ServerOptions options;
  options.socket_path = tmp.Sub("crid.sock");
  options.socket_group = "0";
  ImageService service;
  auto server = CriServer::Start(options, {&service});
  ASSERT_TRUE(server.ok()) << server.status();
  struct stat st;
  ASSERT_EQ(::lstat(options.socket_path.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0660u);
  EXPECT_EQ(st.st_gid, 0u);
  (*server)->Shutdown(absl::Seconds(1));
  EXPECT_NE(::lstat(options.socket_path.c_str(), &st), 0);
}

TEST(CriServer, UnknownGroupIsRefusedByName) {
  TempDir tmp;
  ServerOptions options;
  options.socket_path = tmp.Sub("crid.sock");
  options.socket_group = "no-such-group-crid";
  auto server = CriServer::Start(options, {});
  ASSERT_FALSE(server.ok());
  EXPECT_EQ(server.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(server.status().message()), HasSubstr("no-such-group-crid"));
}

}  // namespace
}  // namespace crid
