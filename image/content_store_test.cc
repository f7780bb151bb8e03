#include "image/content_store.h"

#include <dirent.h>
#include <gtest/gtest.h>

#include <string>

#include "base/fs.h"
#include "base/temp_dir.h"

namespace crid {
namespace {

int CountEntries(const std::string& dir) {
  int n = 0;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) {
    return -1;
  }
  while (dirent* e = readdir(d)) {
    n += e->d_name[0] != '.';
  }
  closedir(d);
  return n;
}

TEST(ContentStoreTest, StreamsVerifiesAndRenames) {
  TempDir tmp;
  auto store = ContentStore::Open(tmp.Sub("images"));
  ASSERT_TRUE(store.ok()) << store.status();
  std::string data(100000, 'x');
  std::string digest = DigestOf(data);
  auto writer = (*store)->Begin(digest, static_cast<int64_t>(data.size()));
  ASSERT_TRUE(writer.ok()) << writer.status();
  ASSERT_TRUE((*writer)->Write(data.substr(0, 5000)).ok());
  // Not visible until committed.
  EXPECT_FALSE((*store)->Has(digest));
  ASSERT_TRUE((*writer)->Write(data.substr(5000)).ok());
  ASSERT_TRUE((*writer)->Commit().ok());
  EXPECT_TRUE((*store)->Has(digest));
  auto read = (*store)->ReadBlob(digest, 1 << 20);
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(*read, data);
  EXPECT_EQ(CountEntries(tmp.Sub("images/ingest")), 0);
}

TEST(ContentStoreTest, DigestMismatchLeavesNothing) {
  TempDir tmp;
  auto store = ContentStore::Open(tmp.Sub("images"));
  ASSERT_TRUE(store.ok());
  std::string digest = DigestOf("expected");
  {
    auto writer = (*store)->Begin(digest, -1);
    ASSERT_TRUE(writer.ok());
    ASSERT_TRUE((*writer)->Write("tampered").ok());
    absl::Status st = (*writer)->Commit();
    EXPECT_EQ(st.code(), absl::StatusCode::kDataLoss);
    EXPECT_NE(st.message().find("digest mismatch"), absl::string_view::npos) << st;
  }
  EXPECT_FALSE((*store)->Has(digest));
  EXPECT_EQ(CountEntries(tmp.Sub("images/ingest")), 0);
  EXPECT_EQ(CountEntries(tmp.Sub("images/blobs/sha256")), 0);
}

TEST(ContentStoreTest, OversizeIsRefusedWhileStreaming) {
  TempDir tmp;
  auto store = ContentStore::Open(tmp.Sub("images"));
  ASSERT_TRUE(store.ok());
  auto writer = (*store)->Begin(DigestOf("abc"), 3);
  ASSERT_TRUE(writer.ok());
  EXPECT_EQ((*writer)->Write("abcd").code(), absl::StatusCode::kDataLoss);
}

TEST(ContentStoreTest, AbandonedWriteAndStaleIngestAreRemoved) {
  TempDir tmp;
  std::string digest = DigestOf("data");
  {
    auto store = ContentStore::Open(tmp.Sub("images"));
    ASSERT_TRUE(store.ok());
    auto writer = (*store)->Begin(digest, 4);
    ASSERT_TRUE(writer.ok());
    ASSERT_TRUE((*writer)->Write("da").ok());
    EXPECT_EQ(CountEntries(tmp.Sub("images/ingest")), 1);
  }
  EXPECT_EQ(CountEntries(tmp.Sub("images/ingest")), 0);
  // A file left by a crashed process is swept at open.
  ASSERT_TRUE(WriteFileAtomic(tmp.Sub("images/ingest/stale"), "x", 0600).ok());
  auto store = ContentStore::Open(tmp.Sub("images"));
  ASSERT_TRUE(store.ok());
  EXPECT_EQ(CountEntries(tmp.Sub("images/ingest")), 0);
  EXPECT_FALSE((*store)->Has(digest));
}

}  // namespace
}  // namespace crid
