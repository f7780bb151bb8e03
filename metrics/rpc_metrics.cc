#include "metrics/rpc_metrics.h"

#include <chrono>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "metrics/metrics.h"

namespace crid::metrics {

namespace {

using grpc::experimental::InterceptionHookPoints;

// Lives as long as its call: started when gRPC dispatches the call, recorded
// when the handler's status goes out (or, for a call that ended without one,
// as CANCELLED when the call is destroyed).
class RpcInterceptor final : public grpc::experimental::Interceptor {
 public:
  explicit RpcInterceptor(MethodMetrics* method)
      : method_(method), start_(std::chrono::steady_clock::now()) {}

  ~RpcInterceptor() override {
    if (!recorded_) {
      Record(grpc::StatusCode::CANCELLED);
    }
  }

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (!recorded_ &&
        methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      Record(methods->GetSendStatus().error_code());
    }
    methods->Proceed();
  }

 private:
  void Record(grpc::StatusCode code) {
    recorded_ = true;
    std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start_;
    method_->Record(code, elapsed.count());
  }

  MethodMetrics* const method_;
  const std::chrono::steady_clock::time_point start_;
  bool recorded_ = false;
};

class RpcInterceptorFactory final : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit RpcInterceptorFactory(const RpcMetrics* metrics) : metrics_(metrics) {}

  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    MethodMetrics* method = metrics_->Find(info->method());
    return method == nullptr ? nullptr : new RpcInterceptor(method);
  }

 private:
  const RpcMetrics* const metrics_;
};

}  // namespace

MethodMetrics::MethodMetrics(std::string service, std::string method, bool streaming,
                             prometheus::Family<prometheus::Counter>& requests,
                             prometheus::Family<prometheus::Counter>& errors,
                             prometheus::Family<prometheus::Histogram>& duration)
    : service_(std::move(service)),
      method_(std::move(method)),
      errors_(errors),
      requests_(requests.Add({{"service", service_}, {"method", method_}})),
      duration_(streaming ? nullptr
                          : &duration.Add({{"service", service_}, {"method", method_}},
                                          LatencyBuckets())) {}

void MethodMetrics::Record(grpc::StatusCode code, double seconds) {
  requests_.Increment();
  if (duration_ != nullptr) {
    duration_->Observe(seconds);
  }
  if (code == grpc::StatusCode::OK) {
    return;
  }
  int index = code >= 0 && code < kCodes ? code : grpc::StatusCode::UNKNOWN;
  prometheus::Counter* counter = errors_by_code_[index].load(std::memory_order_acquire);
  if (counter == nullptr) {
    counter =
        &errors_.Add({{"service", service_},
                      {"method", method_},
                      {"code", absl::StatusCodeToString(static_cast<absl::StatusCode>(index))}});
    errors_by_code_[index].store(counter, std::memory_order_release);
  }
  counter->Increment();
}

RpcMetrics::RpcMetrics(prometheus::Registry& registry,
                       const std::vector<const google::protobuf::ServiceDescriptor*>& services)
    : requests_(prometheus::BuildCounter()
                    .Name("crid_cri_requests_total")
                    .Help("CRI calls crid answered, by service and method.")
                    .Register(registry)),
      errors_(prometheus::BuildCounter()
                  .Name("crid_cri_request_errors_total")
                  .Help("CRI calls answered with an error, by service, method and gRPC code.")
                  .Register(registry)),
      duration_(prometheus::BuildHistogram()
                    .Name("crid_cri_request_duration_seconds")
                    .Help("How long unary CRI calls took from dispatch to status, by service "
                          "and method.")
                    .Register(registry)) {
  for (const google::protobuf::ServiceDescriptor* service : services) {
    for (int i = 0; i < service->method_count(); ++i) {
      const google::protobuf::MethodDescriptor* m = service->method(i);
      methods_.push_back(std::make_unique<MethodMetrics>(
          service->name(), m->name(), m->client_streaming() || m->server_streaming(), requests_,
          errors_, duration_));
      paths_.push_back(
          std::make_unique<std::string>(absl::StrCat("/", service->full_name(), "/", m->name())));
      by_path_[*paths_.back()] = methods_.back().get();
    }
  }
}

MethodMetrics* RpcMetrics::Find(absl::string_view path) const {
  auto it = by_path_.find(path);
  return it == by_path_.end() ? nullptr : it->second;
}

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
RpcMetrics::NewInterceptorFactory() {
  return std::make_unique<RpcInterceptorFactory>(this);
}

}  // namespace crid::metrics
