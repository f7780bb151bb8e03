// The repeated items of ListContainers' answer kept as wire bytes, one entry
// per immutable record snapshot.
//
// kubelet's PLEG lists every container each second. Building a fresh CRI
// message per container (metadata, image spec, labels and annotations copied
// into the response, serialised, freed) costs a few microseconds per entry,
// milliseconds on a node with hundreds of containers. A record snapshot never
// changes (a state change replaces it), so its entry is encoded once, the first
// time it is listed, and each answer is the concatenation of its entries'
// bytes, sent as a raw gRPC message.
#pragma once

#include <grpcpp/support/byte_buffer.h>

#include <cstddef>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/functional/function_ref.h"
#include "absl/synchronization/mutex.h"
#include "google/protobuf/message_lite.h"

namespace crid {

// Appends a serialised message to `out` as field `field_number` of its parent
// (tag, length, bytes), as the parent's own serialisation would write it.
void AppendLengthDelimited(int field_number, const std::string& message, std::string* out);

// A raw gRPC message holding `bytes`.
grpc::ByteBuffer ToByteBuffer(const std::string& bytes);

// Parses a raw gRPC message into `message`; false when it is not one.
bool FromByteBuffer(const grpc::ByteBuffer& buffer, google::protobuf::MessageLite* message);

class WireEntryCache {
 public:
  explicit WireEntryCache(int field_number) : field_number_(field_number) {}

  // Appends the entry of `snapshot` to `out`, calling `encode` for its
  // serialised message the first time this snapshot is seen.
  void Append(const std::shared_ptr<const void>& snapshot, absl::FunctionRef<std::string()> encode,
              std::string* out);

  // After an answer of `listed` entries: forgets snapshots nobody holds any
  // more once they outnumber the live ones.
  void Trim(size_t listed);

  size_t size() const;

 private:
  struct Entry {
    std::weak_ptr<const void> snapshot;  // the key's owner, to tell a reused address
    std::string bytes;
  };

  const int field_number_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<const void*, Entry> entries_ ABSL_GUARDED_BY(mu_);
};

}  // namespace crid
