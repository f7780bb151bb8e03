// Splitting a List reply into Stream batches: by count, by bytes, nothing lost
// or reordered.
#include "cri/batch_stream.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "proto/cri_api.pb.h"

namespace crid {
namespace {

namespace v1 = runtime::v1;

v1::ListContainersResponse Containers(int n, size_t label_bytes = 0) {
  v1::ListContainersResponse list;
  for (int i = 0; i < n; ++i) {
    v1::Container* c = list.add_containers();
    c->set_id("c" + std::to_string(i));
    if (label_bytes > 0) {
      (*c->mutable_labels())["big"] = std::string(label_bytes, 'x');
    }
  }
  return list;
}

std::vector<std::string> Ids(const std::vector<v1::StreamContainersResponse>& batches) {
  std::vector<std::string> ids;
  for (const auto& batch : batches) {
    for (const auto& c : batch.containers()) {
      ids.push_back(c.id());
    }
  }
  return ids;
}

TEST(SplitIntoBatches, NoItemsNoBatch) {
  v1::ListContainersResponse list;
  EXPECT_TRUE(SplitIntoBatches<v1::StreamContainersResponse>(
                  list.mutable_containers(), &v1::StreamContainersResponse::mutable_containers)
                  .empty());
}

TEST(SplitIntoBatches, ByCountKeepingOrder) {
  v1::ListContainersResponse list = Containers(250);
  auto batches = SplitIntoBatches<v1::StreamContainersResponse>(
      list.mutable_containers(), &v1::StreamContainersResponse::mutable_containers);
  ASSERT_EQ(batches.size(), 3u);
  EXPECT_EQ(batches[0].containers_size(), 100);
  EXPECT_EQ(batches[1].containers_size(), 100);
  EXPECT_EQ(batches[2].containers_size(), 50);
  std::vector<std::string> ids = Ids(batches);
  ASSERT_EQ(ids.size(), 250u);
  EXPECT_EQ(ids.front(), "c0");
  EXPECT_EQ(ids[137], "c137");
  EXPECT_EQ(ids.back(), "c249");
  EXPECT_EQ(list.containers_size(), 0);
}

TEST(SplitIntoBatches, ByBytesWithOversizedItemsAlone) {
  // 10 items of ~400 KiB: two fit under 1 MiB, a third does not.
  v1::ListContainersResponse list = Containers(10, 400 << 10);
  auto batches = SplitIntoBatches<v1::StreamContainersResponse>(
      list.mutable_containers(), &v1::StreamContainersResponse::mutable_containers);
  ASSERT_EQ(batches.size(), 5u);
  for (const auto& batch : batches) {
    EXPECT_EQ(batch.containers_size(), 2);
    EXPECT_LE(batch.ByteSizeLong(), kStreamBatchBytes + 64);
  }
  // An item above the byte limit still travels, alone.
  v1::ListContainersResponse huge = Containers(3, 2 << 20);
  batches = SplitIntoBatches<v1::StreamContainersResponse>(
      huge.mutable_containers(), &v1::StreamContainersResponse::mutable_containers);
  ASSERT_EQ(batches.size(), 3u);
  EXPECT_EQ(Ids(batches), (std::vector<std::string>{"c0", "c1", "c2"}));
}

}  // namespace
}  // namespace crid
