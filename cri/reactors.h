// Helpers to answer callback-API RPCs that finish at once: with a status, or
// UNIMPLEMENTED naming the RPC for the parts of CRI that are not built yet.
#pragma once

#include <grpcpp/grpcpp.h>

#include <string>
#include <utility>

#include "absl/status/status.h"

namespace crid {

// absl::Status -> grpc::Status (the canonical codes are the same numbers).
inline grpc::Status ToGrpcStatus(const absl::Status& status) {
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

inline grpc::ServerUnaryReactor* FinishUnary(grpc::CallbackServerContext* context,
                                             const absl::Status& status) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

// A server-streaming reactor that ends the call with `status` and sends nothing.
template <typename Response>
class FinishedWriteReactor final : public grpc::ServerWriteReactor<Response> {
 public:
  explicit FinishedWriteReactor(grpc::Status status) { this->Finish(std::move(status)); }
  void OnDone() override { delete this; }
};

inline absl::Status UnimplementedRpc(const char* service, const char* rpc) {
  return absl::UnimplementedError(std::string("runtime.v1.") + service + "/" + rpc +
                                  " is not implemented by crid yet");
}

}  // namespace crid

// Declares an override of a unary RPC `Rpc` (messages RpcRequest/RpcResponse)
// that answers UNIMPLEMENTED with the RPC's name.
#define CRID_UNIMPLEMENTED_UNARY(Service, Rpc)                                                 \
  grpc::ServerUnaryReactor* Rpc(grpc::CallbackServerContext* context,                          \
                                const runtime::v1::Rpc##Request*, runtime::v1::Rpc##Response*) \
      override {                                                                               \
    return ::crid::FinishUnary(context, ::crid::UnimplementedRpc(#Service, #Rpc));             \
  }

// The same for a server-streaming RPC.
#define CRID_UNIMPLEMENTED_STREAM(Service, Rpc, Request, Response)                             \
  grpc::ServerWriteReactor<runtime::v1::Response>* Rpc(grpc::CallbackServerContext*,           \
                                                       const runtime::v1::Request*) override { \
    return new ::crid::FinishedWriteReactor<runtime::v1::Response>(                            \
        ::crid::ToGrpcStatus(::crid::UnimplementedRpc(#Service, #Rpc)));                       \
  }
