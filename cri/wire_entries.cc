#include "cri/wire_entries.h"

#include <grpcpp/support/slice.h>

#include <utility>
#include <vector>

#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/wire_format_lite.h"

namespace crid {

void AppendLengthDelimited(int field_number, const std::string& message, std::string* out) {
  using google::protobuf::internal::WireFormatLite;
  using google::protobuf::io::CodedOutputStream;
  const uint32_t tag =
      WireFormatLite::MakeTag(field_number, WireFormatLite::WIRETYPE_LENGTH_DELIMITED);
  const size_t head =
      CodedOutputStream::VarintSize32(tag) + CodedOutputStream::VarintSize64(message.size());
  const size_t at = out->size();
  out->resize(at + head);
  auto* p = reinterpret_cast<uint8_t*>(&(*out)[at]);
  p = CodedOutputStream::WriteVarint32ToArray(tag, p);
  CodedOutputStream::WriteVarint64ToArray(message.size(), p);
  out->append(message);
}

grpc::ByteBuffer ToByteBuffer(const std::string& bytes) {
  grpc::Slice slice(bytes);
  return grpc::ByteBuffer(&slice, 1);
}

bool FromByteBuffer(const grpc::ByteBuffer& buffer, google::protobuf::MessageLite* message) {
  std::vector<grpc::Slice> slices;
  if (!buffer.Dump(&slices).ok()) {
    return false;
  }
  if (slices.size() == 1) {
    return message->ParseFromArray(slices[0].begin(), static_cast<int>(slices[0].size()));
  }
  std::string joined;
  for (const grpc::Slice& s : slices) {
    joined.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  return message->ParseFromString(joined);
}

void WireEntryCache::Append(const std::shared_ptr<const void>& snapshot,
                            absl::FunctionRef<std::string()> encode, std::string* out) {
  {
    absl::MutexLock lock(&mu_);
    auto it = entries_.find(snapshot.get());
    // The address alone could be a freed snapshot's, reused by a new one.
    if (it != entries_.end() && it->second.snapshot.lock() == snapshot) {
      out->append(it->second.bytes);
      return;
    }
  }
  // Encoded outside the lock: two first listings of the same snapshot may both
  // encode it, and the second stores the same bytes again.
  Entry entry{snapshot, std::string()};
  AppendLengthDelimited(field_number_, encode(), &entry.bytes);
  out->append(entry.bytes);
  absl::MutexLock lock(&mu_);
  entries_.insert_or_assign(snapshot.get(), std::move(entry));
}

void WireEntryCache::Trim(size_t listed) {
  absl::MutexLock lock(&mu_);
  if (entries_.size() <= 2 * listed + 64) {
    return;
  }
  absl::erase_if(entries_, [](const auto& kv) { return kv.second.snapshot.expired(); });
}

size_t WireEntryCache::size() const {
  absl::MutexLock lock(&mu_);
  return entries_.size();
}

}  // namespace crid
