// Shims run from a sealed memfd copy of crid-shim: /proc/<shim>/exe cannot be
// written, the command line still names the configured binary, and a changed
// binary on disk (an upgrade) reaches the next shim started.
#include "shim/sealed_binary.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"
#include "base/fs.h"
#include "base/temp_dir.h"
#include "base/unique_fd.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "shim/client.h"

namespace crid::shim {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

std::string ShimBinary() {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  const char* workspace = std::getenv("TEST_WORKSPACE");
  return absl::StrCat(srcdir != nullptr ? srcdir : ".", "/",
                      workspace != nullptr ? workspace : "crid", "/shim/crid-shim");
}

std::string Readlink(const std::string& path) {
  char buf[4096] = {};
  ssize_t n = ::readlink(path.c_str(), buf, sizeof(buf) - 1);
  return n < 0 ? "" : std::string(buf, static_cast<size_t>(n));
}

// A copy of crid-shim this test may replace; `extra` bytes after the ELF
// image make each version a different file that still runs.
void InstallShim(const std::string& path, const std::string& extra) {
  std::string bytes = ReadFile(ShimBinary()).value() + extra;
  ASSERT_TRUE(WriteFileAtomic(path, bytes, 0755).ok());
}

class SealedShimTest : public ::testing::Test {
 protected:
  // The shim is shut down after the test.
  ShimClient* Launch(const std::string& binary, const std::string& name) {
    LaunchOptions options;
    options.binary = binary;
    options.pod_id = absl::StrCat("sealed-", name, "-", ::getpid());
    options.dir = tmp_.Sub(name);
    absl::StatusOr<std::unique_ptr<ShimClient>> client = ShimClient::Launch(options);
    EXPECT_TRUE(client.ok()) << client.status();
    if (!client.ok()) {
      return nullptr;
    }
    launched_.push_back(std::move(*client));
    return launched_.back().get();
  }

  void TearDown() override {
    for (const std::unique_ptr<ShimClient>& client : launched_) {
      EXPECT_TRUE(client->Shutdown().ok());
    }
  }

  TempDir tmp_;
  std::vector<std::unique_ptr<ShimClient>> launched_;
};

TEST_F(SealedShimTest, ShimRunsFromASealedMemfdNoOneCanWrite) {
  ShimClient* shim = Launch(ShimBinary(), "a");
  ASSERT_NE(shim, nullptr);
  const std::string exe = absl::StrCat("/proc/", shim->pid(), "/exe");
  EXPECT_THAT(Readlink(exe), StartsWith("/memfd:crid-shim"));

  UniqueFd read(::open(exe.c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(read.valid()) << std::strerror(errno);
  int seals = ::fcntl(read.get(), F_GET_SEALS);
  ASSERT_GE(seals, 0) << std::strerror(errno);
  EXPECT_NE(seals & F_SEAL_WRITE, 0);
  EXPECT_NE(seals & F_SEAL_SEAL, 0);
  EXPECT_NE(seals & F_SEAL_GROW, 0);
  EXPECT_NE(seals & F_SEAL_SHRINK, 0);
  // The copy is the whole binary.
  struct stat copy = {};
  struct stat disk = {};
  ASSERT_EQ(::fstat(read.get(), &copy), 0);
  ASSERT_EQ(::stat(ShimBinary().c_str(), &disk), 0);
  EXPECT_EQ(copy.st_size, disk.st_size);

  // Not one byte reaches it: opening it for writing fails.
  UniqueFd write(::open(exe.c_str(), O_WRONLY | O_CLOEXEC));
  EXPECT_FALSE(write.valid());
  UniqueFd rdwr(::open(exe.c_str(), O_RDWR | O_CLOEXEC));
  EXPECT_FALSE(rdwr.valid());
  if (write.valid()) {
    EXPECT_LT(::pwrite(write.get(), "x", 1, 0), 0);
  }
  EXPECT_LT(::ftruncate(read.get(), 0), 0);

  // Whoever finds shims by their command line still does.
  std::string cmdline = ReadFile(absl::StrCat("/proc/", shim->pid(), "/cmdline")).value_or("");
  EXPECT_THAT(cmdline, StartsWith(ShimBinary() + std::string(1, '\0') + "--pod-id"));
}

TEST_F(SealedShimTest, ChangedBinaryOnDiskReachesTheNextShim) {
  const std::string path = tmp_.Sub("crid-shim");
  InstallShim(path, "");
  ShimClient* old_shim = Launch(path, "old");
  ASSERT_NE(old_shim, nullptr);
  InstallShim(path, std::string(4096, '\0'));  // the upgrade
  ShimClient* new_shim = Launch(path, "new");
  ASSERT_NE(new_shim, nullptr);

  struct stat old_exe = {};
  struct stat new_exe = {};
  ASSERT_EQ(::stat(absl::StrCat("/proc/", old_shim->pid(), "/exe").c_str(), &old_exe), 0);
  ASSERT_EQ(::stat(absl::StrCat("/proc/", new_shim->pid(), "/exe").c_str(), &new_exe), 0);
  EXPECT_EQ(new_exe.st_size, old_exe.st_size + 4096);
  // The old shim goes on running its own copy.
  EXPECT_TRUE(old_shim->Ping().ok());
}

TEST(SealedBinary, OneCopyWhileTheFileIsUnchanged) {
  const std::string kElf = std::string(1, '\x7f') + "ELF ";
  TempDir tmp;
  const std::string path = tmp.Sub("bin");
  ASSERT_TRUE(WriteFileAtomic(path, kElf + "first", 0755).ok());
  SealedBinary sealed;
  absl::StatusOr<std::shared_ptr<const UniqueFd>> a = sealed.Get(path);
  absl::StatusOr<std::shared_ptr<const UniqueFd>> b = sealed.Get(path);
  ASSERT_TRUE(a.ok() && b.ok()) << a.status() << b.status();
  EXPECT_EQ(a->get(), b->get());
  // The same size and a new inode, as a package manager's rename leaves it.
  ASSERT_TRUE(WriteFileAtomic(path, kElf + "other", 0755).ok());
  absl::StatusOr<std::shared_ptr<const UniqueFd>> c = sealed.Get(path);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_NE(c->get(), a->get());
  char buf[16] = {};
  ASSERT_EQ(::pread((*c)->get(), buf, sizeof(buf), 0), 10);
  EXPECT_EQ(std::string(buf), kElf + "other");
  // The older copy is still whole for whoever holds it.
  ASSERT_EQ(::pread((*a)->get(), buf, sizeof(buf), 0), 10);
  EXPECT_EQ(std::string(buf, 10), kElf + "first");
  // A script is left to run from its path.
  ASSERT_TRUE(WriteFileAtomic(path, "#!/bin/sh\n", 0755).ok());
  absl::StatusOr<std::shared_ptr<const UniqueFd>> script = sealed.Get(path);
  ASSERT_TRUE(script.ok()) << script.status();
  EXPECT_EQ(*script, nullptr);
}

TEST(SealedBinary, MissingFileIsAnErrorNamingIt) {
  SealedBinary sealed;
  absl::StatusOr<std::shared_ptr<const UniqueFd>> fd = sealed.Get("/nonexistent/crid-shim");
  ASSERT_FALSE(fd.ok());
  EXPECT_THAT(fd.status().message(), HasSubstr("/nonexistent/crid-shim"));
}

}  // namespace
}  // namespace crid::shim
