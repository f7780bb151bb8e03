#include "cri/test_server.h"

#include "gtest/gtest.h"

namespace crid {

TestCriServer::TestCriServer(CgroupDriver driver)
    : driver_(driver), socket_path_(tmp_.Sub("crid.sock")) {
  Start();
}

TestCriServer::~TestCriServer() {
  if (server_ != nullptr) {
    server_->Shutdown(absl::ZeroDuration());
  }
}

void TestCriServer::Start() {
  config::Config config = DefaultConfig();
  config.set_root(tmp_.Sub("root"));
  config.set_state(tmp_.Sub("state"));
  config.set_listen("unix://" + socket_path_);
  auto store = Store::Open(tmp_.Sub("crid.db"));
  ASSERT_TRUE(store.ok()) << store.status();
  store_ = std::move(*store);
  auto state = RuntimeState::Load(config, driver_, store_.get());
  ASSERT_TRUE(state.ok()) << state.status();
  state_ = std::move(*state);
  runtime_service_ = std::make_unique<RuntimeService>(state_.get());
  image_service_ = std::make_unique<ImageService>();
  ServerOptions options;
  options.socket_path = socket_path_;
  auto server = CriServer::Start(options, {runtime_service_.get(), image_service_.get()});
  ASSERT_TRUE(server.ok()) << server.status();
  server_ = std::move(*server);
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(16 * 1024 * 1024);
  auto channel =
      grpc::CreateCustomChannel("unix://" + socket_path_, grpc::InsecureChannelCredentials(), args);
  runtime_stub_ = runtime::v1::RuntimeService::NewStub(channel);
  image_stub_ = runtime::v1::ImageService::NewStub(channel);
}

void TestCriServer::Restart() {
  runtime_stub_.reset();
  image_stub_.reset();
  server_->Shutdown(absl::Seconds(1));
  server_.reset();
  runtime_service_.reset();
  image_service_.reset();
  state_.reset();
  store_.reset();
  Start();
}

}  // namespace crid
