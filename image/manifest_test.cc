#include "image/manifest.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "image/digest.h"
#include "image/registry.h"

namespace crid {
namespace {

using ::testing::HasSubstr;

std::string Entry(const std::string& arch, const std::string& variant, const std::string& id) {
  return "{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"" +
         DigestOf(id) + "\",\"size\":10,\"platform\":{\"os\":\"linux\",\"architecture\":\"" + arch +
         "\"" + (variant.empty() ? "" : ",\"variant\":\"" + variant + "\"") + "}}";
}

std::vector<Descriptor> Index(const std::vector<std::string>& entries) {
  std::string body = "{\"schemaVersion\":2,\"manifests\":[";
  for (size_t i = 0; i < entries.size(); ++i) {
    body += (i ? "," : "") + entries[i];
  }
  body += "]}";
  auto parsed = ParseIndex(body);
  EXPECT_TRUE(parsed.ok()) << parsed.status();
  return parsed.ok() ? *parsed : std::vector<Descriptor>();
}

TEST(ManifestTest, PlatformSelectionFollowsVariantRules) {
  auto index = Index({Entry("arm", "v6", "armv6"), Entry("arm", "v7", "armv7"),
                      Entry("arm64", "v8", "arm64"), Entry("amd64", "", "amd64"),
                      Entry("amd64", "v3", "amd64v3")});
  auto pick = [&](const Platform& p) {
    auto d = SelectPlatform(index, p);
    EXPECT_TRUE(d.ok()) << d.status();
    return d.ok() ? d->digest : "";
  };
  EXPECT_EQ(pick({"linux", "amd64", ""}), DigestOf("amd64"));
  EXPECT_EQ(pick({"linux", "amd64", "v1"}), DigestOf("amd64"));
  EXPECT_EQ(pick({"linux", "arm64", ""}), DigestOf("arm64"));
  EXPECT_EQ(pick({"linux", "arm", "v7"}), DigestOf("armv7"));
  EXPECT_EQ(pick({"linux", "arm", "v8"}), DigestOf("armv7"));  // newest not above the host
  auto none = SelectPlatform(index, {"linux", "riscv64", ""});
  EXPECT_EQ(none.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(none.status().message()), HasSubstr("linux/arm/v6"));
  EXPECT_EQ(SelectPlatform(index, {"windows", "amd64", ""}).status().code(),
            absl::StatusCode::kNotFound);
}

TEST(ManifestTest, ArmV6HostDoesNotTakeV7) {
  auto index = Index({Entry("arm", "v7", "armv7")});
  EXPECT_FALSE(SelectPlatform(index, {"linux", "arm", "v6"}).ok());
}

TEST(ManifestTest, ClassifiesByContentTypeOrBody) {
  EXPECT_EQ(*ClassifyManifest(kMediaTypeDockerList, "{}"), ManifestKind::kIndex);
  EXPECT_EQ(*ClassifyManifest(kMediaTypeOciManifest, "{}"), ManifestKind::kImage);
  EXPECT_EQ(*ClassifyManifest("", "{\"schemaVersion\":2,\"manifests\":[]}"), ManifestKind::kIndex);
  EXPECT_EQ(
      *ClassifyManifest("application/json", "{\"schemaVersion\":2,\"mediaType\":\"" +
                                                std::string(kMediaTypeDockerManifest) + "\"}"),
      ManifestKind::kImage);
  auto schema1 = ClassifyManifest("application/vnd.docker.distribution.manifest.v1+prettyjws", "");
  ASSERT_FALSE(schema1.ok());
  EXPECT_THAT(std::string(schema1.status().message()), HasSubstr("schema 1"));
  EXPECT_THAT(
      std::string(ClassifyManifest("", "{\"schemaVersion\":1,\"fsLayers\":[]}").status().message()),
      HasSubstr("schema 1"));
  EXPECT_FALSE(ClassifyManifest("text/html", "<html>").ok());
}

TEST(ManifestTest, ImageManifestAndConfig) {
  std::string manifest =
      "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\","
      "\"digest\":\"" +
      DigestOf("c") +
      "\",\"size\":1},\"layers\":[{\"mediaType\":\"y\","
      "\"digest\":\"" +
      DigestOf("l") + "\",\"size\":123}]}";
  auto m = ParseImageManifest(manifest);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->config.digest, DigestOf("c"));
  ASSERT_EQ(m->layers.size(), 1u);
  EXPECT_EQ(m->layers[0].size, 123);
  EXPECT_FALSE(ParseImageManifest("{\"schemaVersion\":2,\"config\":{\"digest\":\"md5:x\","
                                  "\"size\":1},\"layers\":[]}")
                   .ok());
  EXPECT_FALSE(ParseImageManifest("{\"schemaVersion\":2,\"config\":{\"digest\":\"" + DigestOf("c") +
                                  "\",\"size\":-5},\"layers\":[]}")
                   .ok());
  EXPECT_FALSE(ParseImageManifest("not json").ok());

  auto config = ParseImageConfig(
      "{\"config\":{\"User\":\"www-data:50\"},\"rootfs\":{\"type\":"
      "\"layers\",\"diff_ids\":[\"" +
      DigestOf("a") + "\",\"" + DigestOf("b") + "\"]}}");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->user, "www-data:50");
  std::vector<std::string> chain = ChainIds(config->diff_ids);
  ASSERT_EQ(chain.size(), 2u);
  EXPECT_EQ(chain[0], DigestOf("a"));
  EXPECT_EQ(chain[1], DigestOf(DigestOf("a") + " " + DigestOf("b")));
  EXPECT_FALSE(ParseImageConfig("{\"rootfs\":{\"diff_ids\":[\"bad\"]}}").ok());
  EXPECT_FALSE(ParseImageConfig("{}").ok());
}

// Sizes are integers, not doubles: 2^53 + 1 would round to 2^53 as a double.
TEST(ManifestTest, LayerSizesAboveTwoToThe53Survive) {
  std::string digest = "sha256:" + std::string(64, 'a');
  auto m = ParseImageManifest("{\"schemaVersion\":2,\"config\":{\"digest\":\"" + digest +
                              "\",\"size\":2.0},\"layers\":[{\"digest\":\"" + digest +
                              "\",\"size\":9007199254740993},{\"digest\":\"" + digest +
                              "\",\"size\":9223372036854775807}]}");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->config.size, 2);  // a whole number written as a float still counts
  ASSERT_EQ(m->layers.size(), 2U);
  EXPECT_EQ(m->layers[0].size, 9007199254740993);
  EXPECT_EQ(m->layers[1].size, INT64_MAX);
}

// Hostile or broken registry answers give an error that names the field,
// never an exception.
TEST(ManifestTest, WrongTypedFieldsGiveClearErrors) {
  std::string digest = "sha256:" + std::string(64, 'a');
  auto with_layers = [&](const std::string& layers) {
    return ParseImageManifest("{\"schemaVersion\":2,\"config\":{\"digest\":\"" + digest +
                              "\",\"size\":2},\"layers\":" + layers + "}");
  };
  auto string_size = with_layers("[{\"digest\":\"" + digest + "\",\"size\":\"3\"}]");
  EXPECT_EQ(string_size.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(string_size.status().message()),
              HasSubstr("image manifest layers[0]: missing or invalid size"));
  auto too_big = with_layers("[{\"digest\":\"" + digest + "\",\"size\":18446744073709551615}]");
  EXPECT_THAT(std::string(too_big.status().message()), HasSubstr("missing or invalid size"));
  auto fraction = with_layers("[{\"digest\":\"" + digest + "\",\"size\":1.5}]");
  EXPECT_THAT(std::string(fraction.status().message()), HasSubstr("missing or invalid size"));
  auto number_digest = with_layers("[{\"digest\":7,\"size\":3}]");
  EXPECT_EQ(number_digest.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(number_digest.status().message()), HasSubstr("image manifest layers[0]"));
  auto not_object = with_layers("[\"layer\"]");
  EXPECT_THAT(std::string(not_object.status().message()),
              HasSubstr("layers[0]: descriptor is not an object"));
  auto object_layers = with_layers("{\"a\":1}");
  EXPECT_THAT(std::string(object_layers.status().message()), HasSubstr("no \"layers\" list"));
  auto wrong_schema = ParseImageManifest("{\"schemaVersion\":\"2\"}");
  EXPECT_THAT(std::string(wrong_schema.status().message()), HasSubstr("schemaVersion must be 2"));

  auto list = ParseImageManifest("[1,2]");
  EXPECT_EQ(list.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(list.status().message()),
              HasSubstr("image manifest is not a JSON object"));
  auto deep = ParseImageManifest(std::string(100000, '[') + std::string(100000, ']'));
  EXPECT_EQ(deep.status().code(), absl::StatusCode::kInvalidArgument);

  auto index = ParseIndex("{\"manifests\":{}}");
  EXPECT_THAT(std::string(index.status().message()), HasSubstr("no \"manifests\" list"));
  auto platform = ParseIndex("{\"manifests\":[{\"digest\":\"" + digest +
                             "\",\"size\":1,\"platform\":\"linux/amd64\"}]}");
  ASSERT_TRUE(platform.ok()) << platform.status();  // an unreadable platform matches nothing
  EXPECT_EQ((*platform)[0].platform.os, "");

  auto diff_number = ParseImageConfig("{\"config\":\"x\",\"rootfs\":{\"diff_ids\":[1]}}");
  EXPECT_EQ(diff_number.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(diff_number.status().message()),
              HasSubstr("rootfs.diff_ids holds a non-string"));
  auto rootfs_list = ParseImageConfig("{\"rootfs\":[]}");
  EXPECT_THAT(std::string(rootfs_list.status().message()), HasSubstr("no rootfs.diff_ids"));
  EXPECT_EQ(ClassifyManifest("", "{\"mediaType\":5}").status().code(),
            absl::StatusCode::kFailedPrecondition);
}

std::string ManifestWith(const std::string& config_type, const std::string& layer_type,
                         const std::string& extra = "") {
  std::string digest = "sha256:" + std::string(64, 'a');
  return "{\"schemaVersion\":2," + extra + "\"config\":{\"mediaType\":\"" + config_type +
         "\",\"digest\":\"" + digest + "\",\"size\":2},\"layers\":[{\"mediaType\":\"" + layer_type +
         "\",\"digest\":\"" + digest + "\",\"size\":3}]}";
}

// Refused up front with the reason, before anything is downloaded.
TEST(ManifestTest, ArtifactsForeignAndEncryptedLayersAreRefusedByName) {
  const std::string oci_config = "application/vnd.oci.image.config.v1+json";
  const std::string gzip = "application/vnd.oci.image.layer.v1.tar+gzip";
  EXPECT_TRUE(ParseImageManifest(ManifestWith(oci_config, gzip)).ok());
  EXPECT_TRUE(ParseImageManifest(ManifestWith("application/vnd.docker.container.image.v1+json",
                                              "application/vnd.docker.image.rootfs.diff.tar.gzip"))
                  .ok());

  auto helm = ParseImageManifest(ManifestWith("application/vnd.cncf.helm.config.v1+json", gzip));
  EXPECT_EQ(helm.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(helm.status().message()), HasSubstr("artifact"));
  EXPECT_THAT(std::string(helm.status().message()), HasSubstr("helm"));

  auto sbom = ParseImageManifest(ManifestWith("application/vnd.oci.empty.v1+json", gzip,
                                              "\"artifactType\":\"application/spdx+json\","));
  EXPECT_EQ(sbom.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(sbom.status().message()), HasSubstr("application/spdx+json"));

  auto foreign = ParseImageManifest(
      ManifestWith(oci_config, "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"));
  EXPECT_EQ(foreign.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(foreign.status().message()), HasSubstr("foreign"));
  auto nondist = ParseImageManifest(
      ManifestWith(oci_config, "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"));
  EXPECT_EQ(nondist.status().code(), absl::StatusCode::kFailedPrecondition);

  auto encrypted = ParseImageManifest(ManifestWith(oci_config, gzip + "+encrypted"));
  EXPECT_EQ(encrypted.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(encrypted.status().message()), HasSubstr("encrypted"));
}

TEST(ManifestTest, AuthChallengeParsing) {
  auto [scheme, params] = ParseAuthChallenge(
      "Bearer realm=\"https://auth.example/token\",service=\"registry.example\","
      "scope=\"repository:library/busybox:pull\"");
  EXPECT_EQ(scheme, "bearer");
  EXPECT_EQ(params["realm"], "https://auth.example/token");
  EXPECT_EQ(params["service"], "registry.example");
  EXPECT_EQ(params["scope"], "repository:library/busybox:pull");
  auto basic = ParseAuthChallenge("Basic realm=\"crid-test\"");
  EXPECT_EQ(basic.first, "basic");
  EXPECT_EQ(basic.second["realm"], "crid-test");
}

}  // namespace
}  // namespace crid
