#include "cni/config.h"

#include <fstream>

#include "base/temp_dir.h"
#include "cni/network.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace crid::cni {
namespace {

using ::testing::HasSubstr;

void Write(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

TEST(CniConfigTest, LoadsTheLexicallyFirstValidFile) {
  TempDir tmp;
  Write(tmp.Sub("05-broken.conflist"), "{not json");
  Write(tmp.Sub("07-noplugins.conflist"), R"({"cniVersion":"1.0.0","name":"x","plugins":[]})");
  Write(tmp.Sub("10-b.conflist"),
        R"({"cniVersion":"1.0.0","name":"b","plugins":[{"type":"bridge"},{"type":"portmap"}]})");
  Write(tmp.Sub("20-a.conf"), R"({"cniVersion":"0.4.0","name":"a","type":"ptp"})");
  Write(tmp.Sub("README"), "ignored");
  absl::StatusOr<NetworkConfigList> list = LoadFirstNetworkConfig(tmp.path());
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_EQ(list->name, "b");
  EXPECT_EQ(list->cni_version, "1.0.0");
  ASSERT_EQ(list->plugins.size(), 2u);
  EXPECT_EQ(StringField(list->plugins[1], "type"), "portmap");
  EXPECT_TRUE(list->is_list);
}

TEST(CniConfigTest, SinglePluginConfIsAListOfOne) {
  absl::StatusOr<NetworkConfigList> list =
      ParseNetworkConfig(R"({"cniVersion":"0.4.0","name":"a","type":"ptp"})", false, "x.conf");
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->plugins.size(), 1u);
  EXPECT_EQ(StringField(list->plugins[0], "type"), "ptp");
}

TEST(CniConfigTest, RejectsMissingFields) {
  EXPECT_THAT(std::string(ParseNetworkConfig(R"({"cniVersion":"1.0.0","plugins":[{"type":"x"}]})",
                                             true, "f")
                              .status()
                              .message()),
              HasSubstr("no network name"));
  EXPECT_THAT(std::string(ParseNetworkConfig(R"({"name":"n","plugins":[{"type":"x"}]})", true, "f")
                              .status()
                              .message()),
              HasSubstr("no cniVersion"));
  EXPECT_THAT(std::string(ParseNetworkConfig(R"({"name":"n","cniVersion":"1.0.0","plugins":[{}]})",
                                             true, "f")
                              .status()
                              .message()),
              HasSubstr("without a type"));
}

TEST(CniConfigTest, EmptyDirIsNotFound) {
  TempDir tmp;
  EXPECT_EQ(LoadFirstNetworkConfig(tmp.path()).status().code(), absl::StatusCode::kNotFound);
}

TEST(CniConfigTest, RuntimeConfigOnlyForDeclaredCapabilities) {
  absl::StatusOr<NetworkConfigList> list = ParseNetworkConfig(
      R"({"cniVersion":"1.0.0","name":"n","plugins":[
          {"type":"bridge","runtimeConfig":{"stale":1}},
          {"type":"portmap","capabilities":{"portMappings":true,"bandwidth":false}}]})",
      true, "f");
  ASSERT_TRUE(list.ok());
  absl::StatusOr<JsonValue> args =
      ParseJson(R"({"portMappings":[{"hostPort":80}],"bandwidth":{"ingressRate":1}})");
  ASSERT_TRUE(args.ok());
  JsonObject bridge = BuildPluginConfig(*list, list->plugins[0], args->struct_value(), nullptr);
  EXPECT_EQ(Field(bridge, "runtimeConfig"), nullptr);
  EXPECT_EQ(StringField(bridge, "name"), "n");
  EXPECT_EQ(StringField(bridge, "cniVersion"), "1.0.0");
  JsonValue prev = StringValue("ignored");
  JsonObject portmap = BuildPluginConfig(*list, list->plugins[1], args->struct_value(), &prev);
  const JsonValue* rc = Field(portmap, "runtimeConfig");
  ASSERT_NE(rc, nullptr);
  EXPECT_NE(Field(rc->struct_value(), "portMappings"), nullptr);
  EXPECT_EQ(Field(rc->struct_value(), "bandwidth"), nullptr);
  EXPECT_NE(Field(portmap, "prevResult"), nullptr);
}

TEST(CniConfigTest, ParsesResultIpsAndInterfaces) {
  absl::StatusOr<NetworkResult> r = ParseResult(R"({"cniVersion":"1.0.0",
      "interfaces":[{"name":"br0","mac":"aa"},{"name":"eth0","mac":"bb","sandbox":"/run/netns/x"}],
      "ips":[{"address":"10.1.2.3/24","gateway":"10.1.2.1","interface":1},
             {"address":"fd00::3/64","interface":1}]})");
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->interfaces.size(), 2u);
  EXPECT_EQ(r->interfaces[1].sandbox, "/run/netns/x");
  ASSERT_EQ(r->ips.size(), 2u);
  EXPECT_EQ(r->ips[0].ip(), "10.1.2.3");
  EXPECT_EQ(r->ips[0].gateway, "10.1.2.1");
  EXPECT_EQ(r->ips[0].interface, 1);
  EXPECT_EQ(r->ips[1].ip(), "fd00::3");
}

}  // namespace
}  // namespace crid::cni
