// Config files: defaults fill what a file leaves out, and every bad value is
// refused with the name of its field.
#include "config/config.h"

#include <fstream>

#include "base/temp_dir.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace crid {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(Config, DefaultsAreValid) {
  config::Config c = DefaultConfig();
  EXPECT_TRUE(ValidateConfig(c).ok()) << ValidateConfig(c);
  EXPECT_EQ(c.root(), "/var/lib/crid");
  EXPECT_EQ(c.state(), "/run/crid");
  EXPECT_EQ(c.listen(), "unix:///run/crid/crid.sock");
  EXPECT_EQ(SocketPath(c.listen()), "/run/crid/crid.sock");
  // Found by fuzz/crid_config: shorter than "unix://" threw out_of_range.
  EXPECT_EQ(SocketPath("uix:g"), "");
  EXPECT_EQ(SocketPath("tcp://127.0.0.1:1"), "");
  EXPECT_EQ(c.max_message_bytes(), 16u * 1024 * 1024);
}

TEST(Config, EmptyFileMeansDefaults) {
  auto c = ParseConfig("{}", "test");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->SerializeAsString(), DefaultConfig().SerializeAsString());
}

TEST(Config, FileOverridesOnlyWhatItSets) {
  auto c = ParseConfig(R"({"root": "/srv/crid", "logLevel": "debug",
                           "max_message_bytes": 33554432})",
                       "test");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->root(), "/srv/crid");
  EXPECT_EQ(c->log_level(), "debug");
  EXPECT_EQ(c->max_message_bytes(), 33554432u);
  EXPECT_EQ(c->state(), "/run/crid");
  EXPECT_EQ(c->cgroup_driver(), "auto");
}

TEST(Config, UnknownFieldIsRefusedByName) {
  auto c = ParseConfig(R"({"rooot": "/x"})", "crid.json");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(c.status().message()), HasSubstr("rooot"));
  EXPECT_THAT(std::string(c.status().message()), HasSubstr("crid.json"));
}

TEST(Config, WrongTypeAndBadJsonAreRefused) {
  EXPECT_FALSE(ParseConfig(R"({"root": 5})", "t").ok());
  EXPECT_FALSE(ParseConfig(R"({"root": )", "t").ok());
}

TEST(Config, ValidationNamesTheField) {
  struct Case {
    const char* json;
    const char* field;
  } cases[] = {
      {R"({"root": "relative"})", "root"},
      {R"({"state": "run"})", "state"},
      {R"({"listen": "tcp://127.0.0.1:1"})", "listen"},
      {R"({"listen": "unix://relative.sock"})", "listen"},
      {R"({"logLevel": "loud"})", "log_level"},
      {R"({"cgroupDriver": "cgroupv3"})", "cgroup_driver"},
      {R"({"maxMessageBytes": 1024})", "max_message_bytes"},
      {R"({"streaming": {"tlsCertFile": "/etc/crid/tls.crt"}})", "streaming.tls_key_file"},
      {R"({"streaming": {"tlsKeyFile": "/etc/crid/tls.key"}})", "streaming.tls_cert_file"},
      {R"({"streaming": {"tlsClientCaFile": "/etc/crid/ca.crt"}})", "tls_client_ca_file"},
      {R"({"metrics": {"address": "9090"}})", "metrics.address"},
      {R"({"metrics": {"address": "localhost:9090"}})", "metrics.address"},
      {R"({"metrics": {"address": "127.0.0.1:"}})", "metrics.address"},
      {R"({"metrics": {"address": "127.0.0.1:70000"}})", "metrics.address"},
      {R"({"metrics": {"address": "::1:9090"}})", "metrics.address"},
      {R"({"metrics": {"address": "[::1]"}})", "metrics.address"},
      {R"({"image": {"maxLayerBytes": "4096"}})", "image.max_layer_bytes"},
      {R"({"image": {"maxLayerExpansionRatio": 1}})", "image.max_layer_expansion_ratio"},
      {R"({"image": {"maxLayerBytes": "1073741824", "maxLayerRatioFloorBytes": "2147483648"}})",
       "image.max_layer_ratio_floor_bytes"},
      {R"({"container": {"cdiSpecDirs": ["/etc/cdi", "cdi"]}})", "container.cdi_spec_dirs"},
  };
  for (const Case& tc : cases) {
    auto c = ParseConfig(tc.json, "t");
    ASSERT_TRUE(c.ok()) << tc.json << ": " << c.status();
    absl::Status st = ValidateConfig(*c);
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << tc.json;
    EXPECT_THAT(std::string(st.message()), HasSubstr(tc.field)) << tc.json;
  }
}

TEST(Config, CdiSpecDirsDefaultToTheReferencesAndCanBeReplaced) {
  config::Config defaults = DefaultConfig();
  EXPECT_THAT(defaults.container().cdi_spec_dirs(), ElementsAre("/etc/cdi", "/var/run/cdi"));
  auto c = ParseConfig(R"({"container": {"cdiSpecDirs": ["/opt/cdi"]}})", "t");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_THAT(c->container().cdi_spec_dirs(), ElementsAre("/opt/cdi"));
  EXPECT_TRUE(ValidateConfig(*c).ok());
}

TEST(Config, NativeExecIsOnByDefaultAndCanBeTurnedOff) {
  EXPECT_TRUE(DefaultConfig().container().native_exec());
  auto c = ParseConfig(R"({"container": {"nativeExec": false}})", "t");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_FALSE(c->container().native_exec());
  EXPECT_TRUE(ValidateConfig(*c).ok());
}

TEST(Config, LayerLimitsDefaultToRefusingACompressionBomb) {
  config::ImageConfig image = DefaultConfig().image();
  // An 8 MiB layer may reach 800 MiB, not 8 GiB; a tiny one its floor of 256 MiB.
  EXPECT_EQ(image.max_layer_expansion_ratio(), 100u);
  EXPECT_EQ(image.max_layer_ratio_floor_bytes(), uint64_t{256} << 20);
  EXPECT_EQ(image.max_layer_bytes(), uint64_t{64} << 30);
  auto c = ParseConfig(R"({"image": {"maxLayerExpansionRatio": 20, "maxLayerRatioFloorBytes": 0}})",
                       "t");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(ValidateConfig(*c).ok());
  EXPECT_EQ(c->image().max_layer_expansion_ratio(), 20u);
  EXPECT_EQ(c->image().max_layer_ratio_floor_bytes(), 0u);
  EXPECT_EQ(c->image().max_layer_bytes(), uint64_t{64} << 30);
}

TEST(Config, MetricsAreOffByDefaultAndTakeHostPort) {
  EXPECT_EQ(DefaultConfig().metrics().address(), "");
  for (const char* address : {"127.0.0.1:9090", "0.0.0.0:0", "[::1]:9090"}) {
    auto c = ParseConfig(absl::StrCat(R"({"metrics": {"address": ")", address, R"("}})"), "t");
    ASSERT_TRUE(c.ok()) << c.status();
    EXPECT_TRUE(ValidateConfig(*c).ok()) << address;
    EXPECT_EQ(c->metrics().address(), address);
  }
}

TEST(Config, LoadConfigFileReadsAndNamesMissingFile) {
  TempDir tmp;
  std::ofstream(tmp.Sub("crid.json")) << R"({"cgroupDriver": "cgroupfs"})";
  auto c = LoadConfigFile(tmp.Sub("crid.json"));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->cgroup_driver(), "cgroupfs");
  auto missing = LoadConfigFile(tmp.Sub("nope.json"));
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("nope.json"));
}

TEST(Config, JsonShowsEveryField) {
  std::string json = ConfigToJson(DefaultConfig());
  EXPECT_THAT(json, HasSubstr("\"cgroup_driver\":\"auto\""));
  EXPECT_THAT(json, HasSubstr("\"socket_group\":\"\""));
}

}  // namespace
}  // namespace crid
