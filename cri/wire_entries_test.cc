#include "cri/wire_entries.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "proto/cri_api.pb.h"

namespace crid {
namespace {

runtime::v1::Container MakeContainer(const std::string& id, runtime::v1::ContainerState state) {
  runtime::v1::Container c;
  c.set_id(id);
  c.set_pod_sandbox_id("pod-" + id);
  c.mutable_metadata()->set_name("name-" + id);
  c.mutable_metadata()->set_attempt(3);
  c.set_state(state);
  c.set_created_at(1700000000123456789);
  (*c.mutable_labels())["io.kubernetes.pod.name"] = "web";
  (*c.mutable_annotations())["note"] = std::string(300, 'x');  // a length over one varint byte
  return c;
}

TEST(WireEntries, EntriesMakeTheSameBytesAsTheParentMessage) {
  runtime::v1::ListContainersResponse expected;
  std::string bytes;
  for (int i = 0; i < 3; ++i) {
    runtime::v1::Container c =
        MakeContainer(std::to_string(i), runtime::v1::ContainerState::CONTAINER_RUNNING);
    *expected.add_containers() = c;
    AppendLengthDelimited(1, c.SerializeAsString(), &bytes);
  }
  runtime::v1::ListContainersResponse parsed;
  ASSERT_TRUE(parsed.ParseFromString(bytes));
  EXPECT_EQ(parsed.SerializeAsString(), expected.SerializeAsString());
  EXPECT_EQ(bytes, expected.SerializeAsString());
}

TEST(WireEntries, ByteBufferRoundTrip) {
  runtime::v1::ListContainersRequest request;
  request.mutable_filter()->set_pod_sandbox_id("abc");
  (*request.mutable_filter()->mutable_label_selector())["app"] = "web";
  grpc::ByteBuffer buffer = ToByteBuffer(request.SerializeAsString());
  runtime::v1::ListContainersRequest parsed;
  ASSERT_TRUE(FromByteBuffer(buffer, &parsed));
  EXPECT_EQ(parsed.filter().pod_sandbox_id(), "abc");
  EXPECT_EQ(parsed.filter().label_selector().at("app"), "web");

  // A message split over several slices, as gRPC may deliver a large one.
  const std::string whole = request.SerializeAsString();
  grpc::Slice slices[2] = {grpc::Slice(whole.substr(0, 5)), grpc::Slice(whole.substr(5))};
  grpc::ByteBuffer split(slices, 2);
  runtime::v1::ListContainersRequest from_split;
  ASSERT_TRUE(FromByteBuffer(split, &from_split));
  EXPECT_EQ(from_split.filter().pod_sandbox_id(), "abc");

  runtime::v1::ListContainersRequest bad;
  EXPECT_FALSE(FromByteBuffer(ToByteBuffer(std::string("\x0a\x7f", 2)), &bad));
}

TEST(WireEntries, EachSnapshotIsEncodedOnce) {
  WireEntryCache cache(1);
  auto a = std::make_shared<const runtime::v1::Container>(
      MakeContainer("a", runtime::v1::ContainerState::CONTAINER_CREATED));
  int encoded = 0;
  auto encode_a = [&] {
    ++encoded;
    return a->SerializeAsString();
  };
  std::string first;
  std::string second;
  cache.Append(a, encode_a, &first);
  cache.Append(a, encode_a, &second);
  EXPECT_EQ(encoded, 1);
  EXPECT_EQ(first, second);
  runtime::v1::ListContainersResponse parsed;
  ASSERT_TRUE(parsed.ParseFromString(second));
  ASSERT_EQ(parsed.containers_size(), 1);
  EXPECT_EQ(parsed.containers(0).id(), "a");

  // A state change replaces the snapshot: the new one is encoded afresh.
  auto a2 = std::make_shared<const runtime::v1::Container>(
      MakeContainer("a", runtime::v1::ContainerState::CONTAINER_RUNNING));
  std::string third;
  cache.Append(
      a2,
      [&] {
        ++encoded;
        return a2->SerializeAsString();
      },
      &third);
  EXPECT_EQ(encoded, 2);
  ASSERT_TRUE(parsed.ParseFromString(third));
  EXPECT_EQ(parsed.containers(0).state(), runtime::v1::ContainerState::CONTAINER_RUNNING);
}

TEST(WireEntries, AFreedSnapshotsAddressIsNotTakenForItsSuccessor) {
  WireEntryCache cache(1);
  std::string out;
  const void* old_address = nullptr;
  {
    // Allocated apart from its control block (which the cache's weak reference
    // keeps), so that the snapshot's own memory is freed with it.
    std::shared_ptr<const runtime::v1::Container> old(new runtime::v1::Container(
        MakeContainer("old", runtime::v1::ContainerState::CONTAINER_EXITED)));
    old_address = old.get();
    cache.Append(
        old, [&] { return old->SerializeAsString(); }, &out);
  }
  // malloc hands the freed block back for the next one of the same size;
  // bounded in case it does not.
  for (int i = 0; i < 1000; ++i) {
    std::shared_ptr<const runtime::v1::Container> fresh(new runtime::v1::Container(
        MakeContainer("new", runtime::v1::ContainerState::CONTAINER_RUNNING)));
    if (fresh.get() != old_address) {
      continue;
    }
    std::string bytes;
    cache.Append(
        fresh, [&] { return fresh->SerializeAsString(); }, &bytes);
    runtime::v1::ListContainersResponse parsed;
    ASSERT_TRUE(parsed.ParseFromString(bytes));
    EXPECT_EQ(parsed.containers(0).id(), "new");
    return;
  }
  GTEST_SKIP() << "the allocator never reused the freed snapshot's address";
}

TEST(WireEntries, TrimForgetsSnapshotsNobodyHolds) {
  WireEntryCache cache(1);
  std::string out;
  auto kept = std::make_shared<const runtime::v1::Container>(
      MakeContainer("kept", runtime::v1::ContainerState::CONTAINER_RUNNING));
  cache.Append(
      kept, [&] { return kept->SerializeAsString(); }, &out);
  for (int i = 0; i < 200; ++i) {
    auto gone = std::make_shared<const runtime::v1::Container>(
        MakeContainer(std::to_string(i), runtime::v1::ContainerState::CONTAINER_EXITED));
    cache.Append(
        gone, [&] { return gone->SerializeAsString(); }, &out);
  }
  EXPECT_GT(cache.size(), 66u);
  cache.Trim(1);
  EXPECT_EQ(cache.size(), 1u);
  // Few dead entries are left until they outnumber the live ones.
  for (int i = 0; i < 10; ++i) {
    auto gone = std::make_shared<const runtime::v1::Container>(
        MakeContainer(std::to_string(i), runtime::v1::ContainerState::CONTAINER_EXITED));
    cache.Append(
        gone, [&] { return gone->SerializeAsString(); }, &out);
  }
  cache.Trim(1);
  EXPECT_EQ(cache.size(), 11u);
}

}  // namespace
}  // namespace crid
