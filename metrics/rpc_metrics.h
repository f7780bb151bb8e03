// Per-RPC metrics of crid's gRPC services, recorded by a server interceptor:
// every call of every registered method passes through it, whichever handler
// file answers it. Each method's series are made when crid starts, so a call
// costs a table lookup, two clock reads, an atomic add and a histogram
// observation; only the first error of a code makes that code's series.
#pragma once

#include <grpcpp/grpcpp.h>
#include <grpcpp/support/server_interceptor.h>
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <array>
#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/descriptor.h"

namespace crid::metrics {

// The series of one gRPC method.
class MethodMetrics {
 public:
  MethodMetrics(std::string service, std::string method, bool streaming,
                prometheus::Family<prometheus::Counter>& requests,
                prometheus::Family<prometheus::Counter>& errors,
                prometheus::Family<prometheus::Histogram>& duration);

  // One finished call. Streaming calls (open as long as a client watches)
  // are counted but stay out of the latency histogram.
  void Record(grpc::StatusCode code, double seconds);

  const std::string& service() const { return service_; }
  const std::string& method() const { return method_; }

 private:
  static constexpr int kCodes = grpc::StatusCode::UNAUTHENTICATED + 1;

  const std::string service_;
  const std::string method_;
  prometheus::Family<prometheus::Counter>& errors_;
  prometheus::Counter& requests_;
  prometheus::Histogram* const duration_;
  // By code; made on the code's first error (Family::Add hands every racing
  // caller the same series).
  std::array<std::atomic<prometheus::Counter*>, kCodes> errors_by_code_{};
};

class RpcMetrics {
 public:
  // Makes the series of every method of `services`.
  RpcMetrics(prometheus::Registry& registry,
             const std::vector<const google::protobuf::ServiceDescriptor*>& services);

  // The method at gRPC path "/package.Service/Method"; null for any other.
  MethodMetrics* Find(absl::string_view path) const;

  // For grpc::ServerBuilder::experimental().SetInterceptorCreators. The
  // factory refers to this object, which must outlive the server.
  std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> NewInterceptorFactory();

 private:
  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Family<prometheus::Counter>& errors_;
  prometheus::Family<prometheus::Histogram>& duration_;
  std::vector<std::unique_ptr<MethodMetrics>> methods_;
  // Keys point into `paths_`, which never changes after construction.
  std::vector<std::unique_ptr<std::string>> paths_;
  absl::flat_hash_map<absl::string_view, MethodMetrics*> by_path_;
};

}  // namespace crid::metrics
