// A long pull reports its progress in the log: through a throttling proxy in
// front of a real registry, a big layer is listed with its bytes and rate
// while it downloads, and a small layer that finished at once never is.
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "base/temp_dir.h"
#include "base/unique_fd.h"
#include "config/config.h"
#include "image/image_store.h"
#include "image/test_layers.h"
#include "store/store.h"
#include "tests/image_registry_fixture.h"

namespace crid {
namespace {

using ::testing::ContainsRegex;
using ::testing::HasSubstr;
using ::testing::Not;

// Forwards connections on 127.0.0.1 to `target_port`, sending the answers back
// at about `bytes_per_second`.
class ThrottlingProxy {
 public:
  ThrottlingProxy(int target_port, size_t bytes_per_second)
      : target_port_(target_port), bytes_per_second_(bytes_per_second) {
    listener_ = UniqueFd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in addr = Loopback(0);
    socklen_t len = sizeof(addr);
    if (::bind(listener_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
        ::listen(listener_.get(), 16) != 0 ||
        ::getsockname(listener_.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      return;
    }
    port_ = ntohs(addr.sin_port);
    acceptor_ = std::thread([this] { Accept(); });
  }

  ~ThrottlingProxy() {
    stopping_ = true;
    ::shutdown(listener_.get(), SHUT_RDWR);
    acceptor_.join();
    absl::MutexLock lock(&mu_);
    for (int fd : open_fds_) {
      ::shutdown(fd, SHUT_RDWR);
    }
    for (std::thread& t : pumps_) {
      t.join();
    }
    for (int fd : open_fds_) {
      ::close(fd);
    }
  }

  int port() const { return port_; }

 private:
  static sockaddr_in Loopback(int port) {
    sockaddr_in addr = {};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return addr;
  }

  void Accept() {
    while (!stopping_) {
      int client = ::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC);
      if (client < 0) {
        return;
      }
      int upstream = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_in addr = Loopback(target_port_);
      if (::connect(upstream, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
        ::close(client);
        ::close(upstream);
        continue;
      }
      absl::MutexLock lock(&mu_);
      open_fds_.push_back(client);
      open_fds_.push_back(upstream);
      pumps_.emplace_back([this, client, upstream] { Pump(client, upstream, 0); });
      pumps_.emplace_back([this, client, upstream] { Pump(upstream, client, bytes_per_second_); });
    }
  }

  // Copies `from` to `to` until either closes; `rate` bytes per second (0: no limit).
  void Pump(int from, int to, size_t rate) {
    char buf[8192];
    while (true) {
      ssize_t n = ::recv(from, buf, rate == 0 ? sizeof(buf) : std::min(sizeof(buf), rate / 20), 0);
      if (n <= 0 || ::send(to, buf, static_cast<size_t>(n), MSG_NOSIGNAL) != n) {
        break;
      }
      if (rate != 0) {
        absl::SleepFor(absl::Seconds(static_cast<double>(n) / static_cast<double>(rate)));
      }
    }
    ::shutdown(to, SHUT_WR);
    ::shutdown(from, SHUT_RD);
  }

  const int target_port_;
  const size_t bytes_per_second_;
  UniqueFd listener_;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread acceptor_;
  absl::Mutex mu_;
  std::vector<int> open_fds_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> pumps_ ABSL_GUARDED_BY(mu_);
};

std::string RandomBytes(size_t n) {
  std::mt19937_64 rng(42);
  std::string out(n, '\0');
  for (char& c : out) {
    c = static_cast<char>(rng());
  }
  return out;
}

TEST(ImagePullProgressTest, LongLayerIsListedWithBytesAndRateSmallOneIsNot) {
  TempDir tmp;
  TestRegistry registry;
  ASSERT_TRUE(registry.Start().ok());
  TestImageSpec spec;
  // Random bytes do not compress: the big blob is about 1.5 MB on the wire.
  spec.layers = {{TarBuilder().File("big", RandomBytes(1500000)).Finish(), LayerCompression::kNone},
                 {TarBuilder().File("small", "s").Finish(), LayerCompression::kNone}};
  absl::StatusOr<PushedImage> pushed = registry.PushImage("test/slow", "v1", spec);
  ASSERT_TRUE(pushed.ok()) << pushed.status();
  int registry_port = std::stoi(registry.host().substr(registry.host().rfind(':') + 1));
  // About 7 s for the big layer: past the first progress report at 5 s.
  ThrottlingProxy proxy(registry_port, 200000);
  ASSERT_GT(proxy.port(), 0);

  absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(tmp.Sub("crid.db"));
  ASSERT_TRUE(store.ok()) << store.status();
  absl::StatusOr<std::unique_ptr<ImageStore>> images =
      ImageStore::Open(tmp.Sub("images"), DefaultConfig().image(), store->get());
  ASSERT_TRUE(images.ok()) << images.status();

  std::ostringstream log;
  auto previous = spdlog::default_logger();
  auto logger = std::make_shared<spdlog::logger>(
      "capture", std::make_shared<spdlog::sinks::ostream_sink_mt>(log));
  logger->set_level(spdlog::level::info);
  spdlog::set_default_logger(logger);
  absl::StatusOr<std::string> id =
      (*images)->Pull(absl::StrCat("127.0.0.1:", proxy.port(), "/test/slow:v1"), {});
  spdlog::set_default_logger(previous);
  ASSERT_TRUE(id.ok()) << id.status() << "\n" << log.str();

  const std::string& big = pushed->layer_digests[0];
  const std::string& small = pushed->layer_digests[1];
  EXPECT_THAT(log.str(), ContainsRegex(absl::StrCat("layer ", big,
                                                    " \\(1/2\\): [0-9]+ of [0-9]+ bytes, "
                                                    "[0-9]+\\.[0-9] MB/s")))
      << log.str();
  EXPECT_THAT(log.str(), Not(HasSubstr(small))) << log.str();
  EXPECT_THAT(log.str(), HasSubstr("1 of 2 layers")) << log.str();
}

}  // namespace
}  // namespace crid
