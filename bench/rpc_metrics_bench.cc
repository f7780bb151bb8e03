// What the metrics interceptor costs a CRI call: Version over a unix socket
// to an in-process callback server, with and without it, one call at a time
// and from several client threads. Build with -c opt:
//   bazel run -c opt //bench:rpc_metrics_bench -- --calls 20000
#include <grpcpp/grpcpp.h>
#include <prometheus/registry.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "base/temp_dir.h"
#include "metrics/rpc_metrics.h"
#include "proto/cri_api.grpc.pb.h"

ABSL_FLAG(int, calls, 20000, "calls per run");
ABSL_FLAG(int, threads, 4, "client threads of the parallel run");

namespace crid {
namespace {

namespace v1 = ::runtime::v1;

class VersionOnly final : public v1::RuntimeService::CallbackService {
  grpc::ServerUnaryReactor* Version(grpc::CallbackServerContext* context, const v1::VersionRequest*,
                                    v1::VersionResponse* resp) override {
    resp->set_runtime_name("bench");
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
};

// Microseconds per call, `threads` clients sharing `calls`.
double Run(bool with_metrics, int calls, int threads) {
  TempDir tmp;
  prometheus::Registry registry;
  const google::protobuf::FileDescriptor* file = v1::VersionRequest::descriptor()->file();
  metrics::RpcMetrics rpc(registry, {file->FindServiceByName("RuntimeService")});
  VersionOnly service;
  grpc::ServerBuilder builder;
  std::string address = "unix://" + tmp.Sub("bench.sock");
  builder.AddListeningPort(address, grpc::InsecureServerCredentials());
  builder.RegisterService(&service);
  if (with_metrics) {
    std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> creators;
    creators.push_back(rpc.NewInterceptorFactory());
    builder.experimental().SetInterceptorCreators(std::move(creators));
  }
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  auto channel = grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
  auto stub = v1::RuntimeService::NewStub(channel);
  auto call = [&stub] {
    grpc::ClientContext ctx;
    v1::VersionResponse resp;
    return stub->Version(&ctx, {}, &resp).ok();
  };
  for (int i = 0; i < 1000; ++i) {
    call();
  }
  auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> clients;
  clients.reserve(threads);
  for (int t = 0; t < threads; ++t) {
    clients.emplace_back([&] {
      for (int i = 0; i < calls / threads; ++i) {
        if (!call()) {
          std::fprintf(stderr, "call failed\n");
          return;
        }
      }
    });
  }
  for (std::thread& t : clients) {
    t.join();
  }
  std::chrono::duration<double, std::micro> elapsed = std::chrono::steady_clock::now() - start;
  server->Shutdown();
  return elapsed.count() / calls;
}

}  // namespace
}  // namespace crid

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  int calls = absl::GetFlag(FLAGS_calls);
  int threads = absl::GetFlag(FLAGS_threads);
  for (int round = 0; round < 3; ++round) {
    for (int t : {1, threads}) {
      double without = crid::Run(false, calls, t);
      double with = crid::Run(true, calls, t);
      std::printf("%d client thread(s): %.2f us/call without metrics, %.2f us/call with (%+.2f)\n",
                  t, without, with, with - without);
    }
  }
  return 0;
}
