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
  EXPECT_EQ(JsonString(list->plugins[1], "type"), "portmap");
  EXPECT_TRUE(list->is_list);
}

TEST(CniConfigTest, SinglePluginConfIsAListOfOne) {
  absl::StatusOr<NetworkConfigList> list =
      ParseNetworkConfig(R"({"cniVersion":"0.4.0","name":"a","type":"ptp"})", false, "x.conf");
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->plugins.size(), 1u);
  EXPECT_EQ(JsonString(list->plugins[0], "type"), "ptp");
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
  absl::StatusOr<Json> args =
      ParseJson(R"({"portMappings":[{"hostPort":80}],"bandwidth":{"ingressRate":1}})", "args");
  ASSERT_TRUE(args.ok());
  Json bridge = BuildPluginConfig(*list, list->plugins[0], *args, nullptr);
  EXPECT_EQ(JsonField(bridge, "runtimeConfig"), nullptr);
  EXPECT_EQ(JsonString(bridge, "name"), "n");
  EXPECT_EQ(JsonString(bridge, "cniVersion"), "1.0.0");
  Json prev = "ignored";
  Json portmap = BuildPluginConfig(*list, list->plugins[1], *args, &prev);
  const Json* rc = crid::JsonObject(portmap, "runtimeConfig");
  ASSERT_NE(rc, nullptr);
  EXPECT_NE(JsonField(*rc, "portMappings"), nullptr);
  EXPECT_EQ(JsonField(*rc, "bandwidth"), nullptr);
  EXPECT_NE(JsonField(portmap, "prevResult"), nullptr);
}

// Plugins are mostly Go: an integer must reach them as an integer, all its
// bits intact, whether it came from the config or the previous result.
TEST(CniConfigTest, IntegersPassThroughTheChainUnchanged) {
  absl::StatusOr<NetworkConfigList> list = ParseNetworkConfig(
      R"({"cniVersion":"1.0.0","name":"n","type":"bridge","mtu":1500.0,
          "big":9007199254740993})",
      false, "f");
  ASSERT_TRUE(list.ok()) << list.status();
  absl::StatusOr<Json> prev = ParseJson(R"({"ips":[{"address":"10.0.0.2/24","interface":0}],
      "uid":18446744073709551615})",
                                        "prev");
  ASSERT_TRUE(prev.ok()) << prev.status();
  std::string text = JsonText(BuildPluginConfig(*list, list->plugins[0], Json::object(), &*prev));
  EXPECT_THAT(text, HasSubstr("\"mtu\":1500,"));
  EXPECT_THAT(text, HasSubstr("\"big\":9007199254740993"));
  EXPECT_THAT(text, HasSubstr("\"uid\":18446744073709551615"));
}

TEST(CniConfigTest, WrongTypedConfigFieldsAreErrorsOrIgnored) {
  auto parse = [](const std::string& text, bool is_list) {
    return ParseNetworkConfig(text, is_list, "/etc/cni/net.d/10-x.conflist");
  };
  auto plugins_object = parse(R"({"cniVersion":"1.0.0","name":"n","plugins":{"type":"x"}})", true);
  EXPECT_THAT(std::string(plugins_object.status().message()), HasSubstr("no plugins in list"));
  auto plugin_string = parse(R"({"cniVersion":"1.0.0","name":"n","plugins":["bridge"]})", true);
  EXPECT_THAT(std::string(plugin_string.status().message()), HasSubstr("plugin is not an object"));
  auto number_name = parse(R"({"cniVersion":"1.0.0","name":7,"type":"x"})", false);
  EXPECT_THAT(std::string(number_name.status().message()), HasSubstr("no network name"));
  auto number_type = parse(R"({"cniVersion":"1.0.0","name":"n","type":["x"]})", false);
  EXPECT_THAT(std::string(number_type.status().message()), HasSubstr("without a type"));
  auto top_list = parse("[]", false);
  EXPECT_EQ(top_list.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(top_list.status().message()), HasSubstr("not a JSON object"));
  auto broken = parse("{\"name\":", false);
  EXPECT_EQ(broken.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(broken.status().message()),
              HasSubstr("/etc/cni/net.d/10-x.conflist is not valid JSON"));
  auto check = parse(R"({"cniVersion":"1.0.0","name":"n","type":"x","disableCheck":"yes"})", false);
  ASSERT_TRUE(check.ok()) << check.status();
  EXPECT_FALSE(check->disable_check);
  // A capabilities value that is not an object, or not a boolean per name.
  auto caps =
      parse(R"({"cniVersion":"1.0.0","name":"n","type":"x","capabilities":["ips"]})", false);
  ASSERT_TRUE(caps.ok());
  EXPECT_EQ(JsonField(BuildPluginConfig(*caps, caps->plugins[0], Json{{"ips", 1}}, nullptr),
                      "runtimeConfig"),
            nullptr);
}

TEST(CniConfigTest, HostileResultsGiveErrorsNotExceptions) {
  EXPECT_EQ(ParseResult("[]").status().code(), absl::StatusCode::kInternal);
  EXPECT_EQ(ParseResult("{\"ips\":").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(ParseResult(std::string(100000, '{')).ok());
  EXPECT_FALSE(ParseResult(std::string(50000, '[') + std::string(50000, ']')).ok());
  absl::StatusOr<NetworkResult> r = ParseResult(R"({"interfaces":"eth0","ips":[
      {"address":"10.0.0.2/24","interface":99999999999},
      {"address":"10.0.0.3/24","interface":"1"},
      {"address":"10.0.0.4/24","interface":-1}, 5]})");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->interfaces.empty());
  ASSERT_EQ(r->ips.size(), 3U);
  for (const IpInfo& ip : r->ips) {
    EXPECT_EQ(ip.interface, -1);
  }
  absl::StatusOr<NetworkResult> no_address = ParseResult(R"({"ips":[{"address":5}]})");
  EXPECT_THAT(std::string(no_address.status().message()), HasSubstr("without an address"));
  absl::StatusOr<NetworkResult> legacy = ParseResult(R"({"ip4":{"ip":["10.0.0.2/24"]}})");
  EXPECT_THAT(std::string(legacy.status().message()), HasSubstr("ip4.ip: missing"));
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
