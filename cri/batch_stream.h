// The Stream* RPCs (StreamContainers, StreamImages, ...) answer exactly what
// their List twins answer, split into batches so that no message comes near a
// client's receive limit (kubelet's is 16 MiB, gRPC's default 4 MiB): a reply
// for thousands of containers that one List message could not carry still
// arrives, a batch at a time.
#pragma once

#include <grpcpp/grpcpp.h>

#include <cstddef>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "cri/reactors.h"
#include "google/protobuf/repeated_ptr_field.h"

namespace crid {

// A batch holds at most this many items, and items of at most this many bytes
// together (an item larger than that travels alone).
inline constexpr size_t kStreamBatchItems = 100;
inline constexpr size_t kStreamBatchBytes = size_t{1} << 20;

// Moves `items` (a List reply's repeated field) into batches: `field` names
// the Stream reply's repeated field of the same item type. No items, no batch.
template <typename Response, typename Item>
std::vector<Response> SplitIntoBatches(
    google::protobuf::RepeatedPtrField<Item>* items,
    google::protobuf::RepeatedPtrField<Item>* (Response::*field)(),
    size_t max_items = kStreamBatchItems, size_t max_bytes = kStreamBatchBytes) {
  std::vector<Response> batches;
  size_t batch_items = 0;
  size_t batch_bytes = 0;
  for (Item& item : *items) {
    const size_t bytes = item.ByteSizeLong();
    if (batches.empty() || batch_items == max_items ||
        (batch_items > 0 && batch_bytes + bytes > max_bytes)) {
      batches.emplace_back();
      batch_items = 0;
      batch_bytes = 0;
    }
    *(batches.back().*field)()->Add() = std::move(item);
    ++batch_items;
    batch_bytes += bytes;
  }
  items->Clear();
  return batches;
}

// Writes prepared batches one after the other, then finishes OK; or finishes
// at once with `status` when that is an error. A client that goes away ends
// the call CANCELLED.
template <typename Response>
class BatchWriteReactor final : public grpc::ServerWriteReactor<Response> {
 public:
  BatchWriteReactor(std::vector<Response> batches, const absl::Status& status)
      : batches_(std::move(batches)) {
    if (!status.ok()) {
      this->Finish(ToGrpcStatus(status));
      return;
    }
    Next();
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      this->Finish(grpc::Status(grpc::StatusCode::CANCELLED, "stream closed by the client"));
      return;
    }
    Next();
  }

  void OnDone() override { delete this; }

 private:
  void Next() {
    if (next_ == batches_.size()) {
      this->Finish(grpc::Status::OK);
      return;
    }
    this->StartWrite(&batches_[next_++]);
  }

  std::vector<Response> batches_;
  size_t next_ = 0;
};

// Answers a Stream* RPC from its List twin's reply: `fill` fills `list` (or
// fails), and its `list_field` items go out in batches through `stream_field`.
template <typename Response, typename ListResponse, typename Item, typename Fill>
grpc::ServerWriteReactor<Response>* StreamFromList(
    Fill&& fill, google::protobuf::RepeatedPtrField<Item>* (ListResponse::*list_field)(),
    google::protobuf::RepeatedPtrField<Item>* (Response::*stream_field)()) {
  ListResponse list;
  absl::Status status = fill(&list);
  if (!status.ok()) {
    return new BatchWriteReactor<Response>({}, status);
  }
  return new BatchWriteReactor<Response>(
      SplitIntoBatches<Response>((list.*list_field)(), stream_field), absl::OkStatus());
}

}  // namespace crid
