// The store on a real tmpfs with no byte free, as when a container has filled
// crid's data filesystem: it opens without writing, reads, and still commits
// removals; CheckRoom refuses growth and names the filesystem.
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "store/small_filesystem.h"
#include "store/store.h"

namespace crid {
namespace {

using ::testing::HasSubstr;

constexpr uint64_t kFsBytes = 8 << 20;
constexpr uint64_t kReserveBytes = 1 << 20;

StoreOptions Options() {
  StoreOptions options;
  options.reserve_bytes = kReserveBytes;
  return options;
}

// Values of 1 KiB, so that records span many pages.
void PutRecords(Store& store, int count) {
  for (int i = 0; i < count; ++i) {
    ASSERT_TRUE(store
                    .Put("pods", absl::StrCat("pod-", i),
                         std::string(1024, static_cast<char>('a' + i % 26)))
                    .ok());
  }
}

bool Exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

TEST(StoreFullDisk, OpensAndReadsAFullFilesystemAfterACrash) {
  SmallFilesystem fs(kFsBytes);
  ASSERT_TRUE(fs.ok()) << fs.status();
  const std::string db = fs.Sub("crid.db");
  {
    auto store = Store::Open(db, Options());
    ASSERT_TRUE(store.ok()) << store.status();
    PutRecords(**store, 100);
  }
  // A writer killed after its commit leaves the WAL (and a -shm) behind.
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    auto store = Store::Open(db, Options());
    bool ok = store.ok() && (*store)->Put("pods", "last", "committed").ok();
    ::_exit(ok ? 0 : 1);
  }
  int wstatus = 0;
  ASSERT_EQ(::waitpid(pid, &wstatus, 0), pid);
  ASSERT_TRUE(WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0);
  ASSERT_TRUE(Exists(db + "-wal"));
  ::unlink((db + "-shm").c_str());

  ASSERT_TRUE(fs.Fill().ok());
  ASSERT_EQ(fs.Available(), 0u);
  auto store = Store::Open(db, Options());
  ASSERT_TRUE(store.ok()) << store.status();
  auto last = (*store)->Get("pods", "last");
  ASSERT_TRUE(last.ok()) << last.status();
  ASSERT_TRUE(last->has_value());
  EXPECT_EQ(**last, "committed");
  auto all = (*store)->List("pods");
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_EQ(all->size(), 101u);
}

TEST(StoreFullDisk, RemovalsCommitAndGrowthIsRefused) {
  SmallFilesystem fs(kFsBytes);
  ASSERT_TRUE(fs.ok()) << fs.status();
  const std::string db = fs.Sub("crid.db");
  {
    auto store = Store::Open(db, Options());
    ASSERT_TRUE(store.ok()) << store.status();
    PutRecords(**store, 300);
  }
  ASSERT_TRUE(fs.Fill().ok());
  ASSERT_EQ(fs.Available(), 0u);
  auto opened = Store::Open(db, Options());
  ASSERT_TRUE(opened.ok()) << opened.status();
  Store& store = **opened;

  absl::Status room = store.CheckRoom("create a pod sandbox");
  EXPECT_TRUE(absl::IsResourceExhausted(room)) << room;
  EXPECT_THAT(room.message(), HasSubstr("no space to create a pod sandbox"));
  EXPECT_THAT(room.message(), HasSubstr(fs.path()));
  EXPECT_THAT(room.message(), HasSubstr("tmpfs"));

  // One at a time, as kubelet removes pods: more commits than the reserve
  // alone could hold.
  for (int i = 0; i < 300; ++i) {
    absl::Status st = store.Delete("pods", absl::StrCat("pod-", i));
    ASSERT_TRUE(st.ok()) << "delete " << i << ": " << st;
  }
  EXPECT_TRUE(store.List("pods")->empty());
  EXPECT_FALSE(Exists(db + ".reserve"));
  EXPECT_TRUE(absl::IsResourceExhausted(store.CheckRoom("pull an image")));

  // Space back: the reserve is filled again and growth is allowed.
  ASSERT_EQ(::unlink(fs.Sub("filler").c_str()), 0);
  EXPECT_TRUE(store.CheckRoom("create a pod sandbox").ok());
  EXPECT_TRUE(Exists(db + ".reserve"));
  EXPECT_TRUE(store.Put("pods", "new", "pod").ok());
}

TEST(StoreFullDisk, ANewStoreOnAFullFilesystemSaysSo) {
  SmallFilesystem fs(1 << 20);
  ASSERT_TRUE(fs.ok()) << fs.status();
  ASSERT_TRUE(fs.Fill().ok());
  auto store = Store::Open(fs.Sub("crid.db"), Options());
  ASSERT_FALSE(store.ok());
  EXPECT_TRUE(absl::IsResourceExhausted(store.status())) << store.status();
}

}  // namespace
}  // namespace crid
