// CDI: device names and annotations, spec files in JSON and YAML with the
// reference's validation, the registry's priorities, conflicts, broken files
// and rereads, and the edits applied to a config.json.
#include "cdi/cdi.h"

#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include "absl/strings/str_cat.h"
#include "base/fs.h"
#include "base/temp_dir.h"
#include "cdi/yaml_json.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace crid {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
namespace v1 = ::runtime::v1;

constexpr char kGpuJson[] = R"({
  "cdiVersion": "0.6.0",
  "kind": "vendor.com/gpu",
  "containerEdits": {"env": ["VENDOR_GPU=1"]},
  "devices": [
    {"name": "gpu0",
     "annotations": {"note": "first"},
     "containerEdits": {
       "env": ["GPU=0"],
       "deviceNodes": [{"path": "/dev/gpu0", "hostPath": "/dev/null", "fileMode": 438,
                        "permissions": "rw"}],
       "mounts": [{"hostPath": "/opt/gpu/lib", "containerPath": "/usr/lib/gpu",
                   "options": ["ro", "bind"]}],
       "hooks": [{"hookName": "createContainer", "path": "/usr/bin/gpu-hook",
                  "args": ["gpu-hook", "update"], "env": ["A=b"], "timeout": 5}]}},
    {"name": "gpu1", "containerEdits": {"env": ["GPU=1"]}}
  ]
})";

// The same spec as YAML, with what YAML adds: octal numbers, anchors.
constexpr char kGpuYaml[] = R"(cdiVersion: "0.6.0"
kind: vendor.com/gpu
containerEdits:
  env: [VENDOR_GPU=1]
devices:
- name: gpu0
  annotations:
    note: first
  containerEdits:
    env:
    - GPU=0
    deviceNodes:
    - path: /dev/gpu0
      hostPath: /dev/null
      fileMode: 0666
      permissions: rw
    mounts:
    - hostPath: /opt/gpu/lib
      containerPath: /usr/lib/gpu
      options: &ro_bind [ro, bind]
    hooks:
    - hookName: createContainer
      path: /usr/bin/gpu-hook
      args: ["gpu-hook", 'update']
      env: [A=b]
      timeout: 5
- name: gpu1
  containerEdits:
    env: [GPU=1]
)";

void Write(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::trunc) << text;
}

std::string Spec(const std::string& kind, const std::string& device, const std::string& env) {
  return R"({"cdiVersion": "0.5.0", "kind": ")" + kind + R"(", "devices": [{"name": ")" + device +
         R"(", "containerEdits": {"env": [")" + env + R"("]}}]})";
}

TEST(CdiNameTest, AcceptsQualifiedNamesAndSaysWhatIsWrongWithOthers) {
  EXPECT_TRUE(ValidateCdiDeviceName("vendor.com/gpu=gpu0").ok());
  EXPECT_TRUE(ValidateCdiDeviceName("nvidia.com/gpu=0").ok());
  EXPECT_TRUE(ValidateCdiDeviceName("a.b-c_d/class.x=dev:1").ok());
  EXPECT_THAT(ValidateCdiDeviceName("gpu0").message(), HasSubstr("not a fully-qualified"));
  EXPECT_THAT(ValidateCdiDeviceName("vendor.com/gpu").message(),
              HasSubstr("not a fully-qualified"));
  EXPECT_THAT(ValidateCdiDeviceName("/dev/null").message(), HasSubstr("not a fully-qualified"));
  EXPECT_THAT(ValidateCdiDeviceName("vendor.com/gpu=").message(), HasSubstr("empty device name"));
  EXPECT_THAT(ValidateCdiDeviceName("1vendor/gpu=x").message(), HasSubstr("start with a letter"));
  EXPECT_THAT(ValidateCdiDeviceName("vendor/gp u=x").message(), HasSubstr("invalid character"));
  EXPECT_THAT(ValidateCdiDeviceName("vendor/gpu=x-").message(), HasSubstr("end with a letter"));
}

TEST(CdiRequestTest, FieldThenAnnotationsEachOnce) {
  v1::ContainerConfig config;
  config.add_cdi_devices()->set_name("vendor.com/gpu=gpu1");
  config.add_cdi_devices()->set_name("vendor.com/gpu=gpu1");
  (*config.mutable_annotations())["cdi.k8s.io/b"] = "vendor.com/gpu=gpu0,vendor.com/gpu=gpu1";
  (*config.mutable_annotations())["cdi.k8s.io/a"] = "other.org/nic=eth";
  (*config.mutable_annotations())["unrelated"] = "not a device";
  absl::StatusOr<std::vector<std::string>> devices = RequestedCdiDevices(config);
  ASSERT_TRUE(devices.ok()) << devices.status();
  EXPECT_THAT(*devices,
              ElementsAre("vendor.com/gpu=gpu1", "other.org/nic=eth", "vendor.com/gpu=gpu0"));
}

TEST(CdiRequestTest, MalformedNamesNameTheField) {
  v1::ContainerConfig config;
  config.add_cdi_devices()->set_name("vendor.com/gpu=gpu0");
  config.add_cdi_devices()->set_name("gpu1");
  absl::StatusOr<std::vector<std::string>> devices = RequestedCdiDevices(config);
  EXPECT_EQ(devices.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(devices.status().message(), HasSubstr("CDI_devices[1].name"));

  v1::ContainerConfig annotated;
  (*annotated.mutable_annotations())["cdi.k8s.io/x"] = "vendor.com/gpu=gpu0,";
  devices = RequestedCdiDevices(annotated);
  EXPECT_EQ(devices.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(devices.status().message(), HasSubstr("annotations[\"cdi.k8s.io/x\"]"));
}

TEST(CdiSpecTest, JsonAndYamlReadTheSame) {
  absl::StatusOr<CdiSpec> from_json = ParseCdiSpec(kGpuJson, "/etc/cdi/gpu.json");
  absl::StatusOr<CdiSpec> from_yaml = ParseCdiSpec(kGpuYaml, "/etc/cdi/gpu.yaml");
  ASSERT_TRUE(from_json.ok()) << from_json.status();
  ASSERT_TRUE(from_yaml.ok()) << from_yaml.status();
  for (const CdiSpec* spec : {&*from_json, &*from_yaml}) {
    EXPECT_EQ(spec->kind, "vendor.com/gpu");
    EXPECT_EQ(spec->version, "0.6.0");
    EXPECT_THAT(spec->edits.env, ElementsAre("VENDOR_GPU=1"));
    ASSERT_EQ(spec->devices.count("gpu0"), 1u);
    const CdiEdits& gpu0 = spec->devices.at("gpu0");
    EXPECT_THAT(gpu0.env, ElementsAre("GPU=0"));
    ASSERT_EQ(gpu0.device_nodes.size(), 1u);
    EXPECT_EQ(gpu0.device_nodes[0].path, "/dev/gpu0");
    EXPECT_EQ(gpu0.device_nodes[0].host_path, "/dev/null");
    EXPECT_EQ(gpu0.device_nodes[0].file_mode, 0666u);
    EXPECT_EQ(gpu0.device_nodes[0].permissions, "rw");
    ASSERT_EQ(gpu0.mounts.size(), 1u);
    EXPECT_EQ(gpu0.mounts[0].container_path, "/usr/lib/gpu");
    EXPECT_THAT(gpu0.mounts[0].options, ElementsAre("ro", "bind"));
    ASSERT_EQ(gpu0.hooks.size(), 1u);
    EXPECT_EQ(gpu0.hooks[0].hook_name, "createContainer");
    EXPECT_THAT(gpu0.hooks[0].args, ElementsAre("gpu-hook", "update"));
    EXPECT_EQ(gpu0.hooks[0].timeout, 5);
    EXPECT_THAT(spec->devices.at("gpu1").env, ElementsAre("GPU=1"));
  }
}

TEST(CdiSpecTest, YamlScalarsAnchorsAndUnquotedNumericNames) {
  absl::StatusOr<Json> value = YamlToJson(
      "a: ~\nb: true\nc: 0x10\nd: 010\ne: 1.5\nf: '010'\ng: &x [1, two]\nh: *x\ni: \"yes\"\n",
      "test");
  ASSERT_TRUE(value.ok()) << value.status();
  EXPECT_EQ(*value, Json::parse(R"({"a": null, "b": true, "c": 16, "d": 8, "e": 1.5,
      "f": "010", "g": [1, "two"], "h": [1, "two"], "i": "yes"})"));
  EXPECT_THAT(YamlToJson("a: 1\na: 2\n", "x.yaml").status().message(),
              HasSubstr("duplicate key \"a\""));
  EXPECT_THAT(YamlToJson("a: [1, 2\n", "x.yaml").status().message(), HasSubstr("x.yaml: line"));

  // nvidia-ctk style: devices named by index, unquoted.
  absl::StatusOr<CdiSpec> spec = ParseCdiSpec(
      "cdiVersion: 0.5.0\nkind: nvidia.com/gpu\ndevices:\n- name: 0\n  containerEdits:\n"
      "    env: [X=1]\n",
      "/etc/cdi/nvidia.yml");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->devices.count("0"), 1u);
}

TEST(CdiSpecTest, AliasesThatMultiplyAreRefused) {
  // Nine levels of ten aliases each: 10^9 values if expanded.
  std::string text = "l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n";
  for (int i = 1; i <= 9; ++i) {
    std::string prev = absl::StrCat("*l", i - 1);
    text += absl::StrCat("l", i, ": &l", i, " [", prev);
    for (int j = 1; j < 10; ++j) {
      absl::StrAppend(&text, ", ", prev);
    }
    text += "]\n";
  }
  absl::StatusOr<Json> value = YamlToJson(text, "/etc/cdi/laughs.yaml");
  EXPECT_EQ(value.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(value.status().message(), HasSubstr("laughs.yaml: line"));
  EXPECT_THAT(value.status().message(), HasSubstr("aliases expand to more than 100000 values"));

  // Four levels (about 12,000 values in all) are within the limit and expand
  // in full.
  std::string small = text.substr(0, text.find("l4:"));
  absl::StatusOr<Json> ok = YamlToJson(small, "small.yaml");
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ((*ok)["l3"].size(), 10u);
  EXPECT_EQ((*ok)["l3"][9][9][9][9], "x");
}

TEST(CdiSpecTest, VersionsAsTheReferenceAcceptsThem) {
  for (const char* version : {"0.3.0", "0.6.0", "v0.7.0", "0.8.0", "1.0.0", "1.1.0"}) {
    std::string text =
        absl::StrCat(R"({"cdiVersion": ")", version,
                     R"(", "kind": "a.com/b", "devices": [{"name": "d", "containerEdits": )",
                     R"({"env": ["A=1"]}}]})");
    EXPECT_TRUE(ParseCdiSpec(text, "/s/a.json").ok()) << version;
  }
  absl::StatusOr<CdiSpec> unknown = ParseCdiSpec(
      R"({"cdiVersion": "9.0.0", "kind": "a.com/b", "devices": []})", "/etc/cdi/future.json");
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(unknown.status().message(),
              HasSubstr("CDI spec /etc/cdi/future.json: cdiVersion: unknown version \"9.0.0\""));
  // Too old for what it uses: hostPath came with 0.5.0, additionalGids with 0.7.0.
  EXPECT_THAT(ParseCdiSpec(R"({"cdiVersion": "0.4.0", "kind": "a.com/b", "devices": [
      {"name": "d", "containerEdits": {"deviceNodes": [{"path": "/dev/x", "hostPath": "/dev/y"}]}}
      ]})",
                           "/s/a.json")
                  .status()
                  .message(),
              HasSubstr("needs version 0.5.0"));
  EXPECT_THAT(ParseCdiSpec(R"({"cdiVersion": "0.6.0", "kind": "a.com/b", "devices": [
      {"name": "d", "containerEdits": {"additionalGids": [5]}}]})",
                           "/s/a.json")
                  .status()
                  .message(),
              HasSubstr("needs version 0.7.0"));
  EXPECT_THAT(ParseCdiSpec(Spec("a.com/b", "d", "A=1"), "/s/a.json").status().message(), "");
  EXPECT_THAT(ParseCdiSpec(R"({"cdiVersion": "0.2.0", "kind": "a.com/b", "devices": [
      {"name": "d", "containerEdits": {"env": ["A=1"]}}]})",
                           "/s/a.json")
                  .status()
                  .message(),
              HasSubstr("needs version 0.3.0"));
}

TEST(CdiSpecTest, BadSpecsNameTheFileAndTheField) {
  struct Case {
    const char* text;
    const char* error;
  } const cases[] = {
      {R"({"cdiVersion": "0.6.0", "kind": "gpu", "devices": []})", "kind: \"gpu\" is not"},
      {R"({"cdiVersion": "0.6.0", "kind": "1v/gpu", "devices": []})", "kind: vendor"},
      {R"({"cdiVersion": "0.6.0", "kind": "v.com/gpu", "devices": []})", "devices: no devices"},
      {R"({"cdiVersion": "0.6.0", "kind": "v.com/gpu", "extra": 1, "devices": []})",
       "extra: unknown field"},
      {R"({"cdiVersion": "0.6.0", "kind": "v.com/gpu", "devices": [{"name": "d"}]})",
       "devices[0].containerEdits: device \"d\" has no container edits"},
      {R"({"cdiVersion": "0.6.0", "kind": "v.com/gpu", "devices": [
          {"name": "d", "containerEdits": {"env": ["A=1"]}},
          {"name": "d", "containerEdits": {"env": ["A=1"]}}]})",
       "devices[1].name: device \"d\" is defined twice"},
      {R"({"cdiVersion": "0.6.0", "kind": "v.com/gpu", "devices": [
          {"name": "d", "containerEdits": {"env": ["=1"]}}]})",
       "devices[0].containerEdits.env: \"=1\" is not KEY=value"},
      {R"({"cdiVersion": "0.6.0", "kind": "v.com/gpu", "devices": [
          {"name": "d", "containerEdits": {"deviceNodes": [{"path": "/dev/x", "type": "z"}]}}]})",
       "deviceNodes[0].type: must be b, c, u or p"},
      {R"({"cdiVersion": "0.6.0", "kind": "v.com/gpu", "devices": [
          {"name": "d", "containerEdits": {"deviceNodes": [{"path": "/dev/x",
           "permissions": "rwx"}]}}]})",
       "deviceNodes[0].permissions"},
      {R"({"cdiVersion": "0.6.0", "kind": "v.com/gpu", "devices": [
          {"name": "d", "containerEdits": {"deviceNodes": [{"path": "/dev/x", "major": -1}]}}]})",
       "deviceNodes[0].major: must be an integer"},
      {R"({"cdiVersion": "0.6.0", "kind": "v.com/gpu", "devices": [
          {"name": "d", "containerEdits": {"hooks": [{"hookName": "later", "path": "/x"}]}}]})",
       "hooks[0].hookName: unknown hook \"later\""},
      {R"({"cdiVersion": "0.6.0", "kind": "v.com/gpu", "devices": [
          {"name": "d", "containerEdits": {"mounts": [{"hostPath": "/x"}]}}]})",
       "mounts[0].containerPath: missing"},
      {R"({"cdiVersion": "1.1.0", "kind": "v.com/gpu", "devices": [
          {"name": "d", "containerEdits": {"netDevices": [{"hostInterfaceName": "eth1",
           "name": "net1"}]}}]})",
       "netDevices: network devices are not supported"},
      {R"({"cdiVersion": "0.6.0", "kind": "v.com/gpu",)", "not valid JSON"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<CdiSpec> spec = ParseCdiSpec(c.text, "/etc/cdi/bad.json");
    EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument) << c.text;
    EXPECT_THAT(spec.status().message(), HasSubstr("/etc/cdi/bad.json")) << c.text;
    EXPECT_THAT(spec.status().message(), HasSubstr(c.error)) << c.text;
  }
}

class CdiRegistryTest : public ::testing::Test {
 protected:
  CdiRegistryTest() {
    EXPECT_TRUE(MakeDirs(tmp_.Sub("etc"), 0755).ok());
    EXPECT_TRUE(MakeDirs(tmp_.Sub("run"), 0755).ok());
  }
  TempDir tmp_;
  CdiRegistry registry_{{tmp_.Sub("etc"), tmp_.Sub("run")}};
};

TEST_F(CdiRegistryTest, ResolvesSpecEditsOnceThenEachDevice) {
  Write(tmp_.Sub("etc/gpu.yaml"), kGpuYaml);
  absl::StatusOr<CdiEdits> edits =
      registry_.Resolve({"vendor.com/gpu=gpu1", "vendor.com/gpu=gpu0"});
  ASSERT_TRUE(edits.ok()) << edits.status();
  EXPECT_THAT(edits->env, ElementsAre("VENDOR_GPU=1", "GPU=1", "GPU=0"));
  ASSERT_EQ(edits->device_nodes.size(), 1u);
  // Filled in from /dev/null, the host node.
  EXPECT_EQ(edits->device_nodes[0].type, "c");
  EXPECT_EQ(edits->device_nodes[0].major, 1);
  EXPECT_EQ(edits->device_nodes[0].minor, 3);
}

TEST_F(CdiRegistryTest, LaterDirectoryWinsAndSameDirectoryConflictsNameBothFiles) {
  Write(tmp_.Sub("etc/a.json"), Spec("v.com/c", "d", "FROM=etc"));
  Write(tmp_.Sub("run/a.json"), Spec("v.com/c", "d", "FROM=run"));
  absl::StatusOr<CdiEdits> edits = registry_.Resolve({"v.com/c=d"});
  ASSERT_TRUE(edits.ok()) << edits.status();
  EXPECT_THAT(edits->env, ElementsAre("FROM=run"));

  Write(tmp_.Sub("run/b.json"), Spec("v.com/c", "d", "FROM=run-b"));
  edits = registry_.Resolve({"v.com/c=d"});
  EXPECT_EQ(edits.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(edits.status().message(), HasSubstr(tmp_.Sub("run/a.json")));
  EXPECT_THAT(edits.status().message(), HasSubstr(tmp_.Sub("run/b.json")));
}

TEST_F(CdiRegistryTest, BrokenFileOnlyLosesItsOwnDevices) {
  Write(tmp_.Sub("etc/good.json"), Spec("v.com/c", "d", "A=1"));
  Write(tmp_.Sub("etc/broken.yaml"), "cdiVersion: 0.6.0\nkind: v.com/gpu\ndevices: [{name: x}]\n");
  Write(tmp_.Sub("etc/garbage.yaml"), "{{{");
  Write(tmp_.Sub("etc/ignored.txt"), "not a spec");
  absl::StatusOr<CdiEdits> edits = registry_.Resolve({"v.com/c=d"});
  ASSERT_TRUE(edits.ok()) << edits.status();

  edits = registry_.Resolve({"v.com/c=d", "v.com/gpu=x"});
  EXPECT_EQ(edits.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(edits.status().message(), HasSubstr("\"v.com/gpu=x\""));
  EXPECT_THAT(edits.status().message(), HasSubstr(tmp_.Sub("etc/broken.yaml")));
  // A file that does not parse might have been meant for any device.
  EXPECT_THAT(edits.status().message(), HasSubstr(tmp_.Sub("etc/garbage.yaml")));

  edits = registry_.Resolve({"other.com/c=d"});
  EXPECT_EQ(edits.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(edits.status().message(), Not(HasSubstr("broken.yaml")));
}

TEST_F(CdiRegistryTest, RereadsChangedAddedAndRemovedFiles) {
  EXPECT_EQ(registry_.Resolve({"v.com/c=d"}).status().code(), absl::StatusCode::kNotFound);
  Write(tmp_.Sub("run/s.json"), Spec("v.com/c", "d", "V=1"));
  absl::StatusOr<CdiEdits> edits = registry_.Resolve({"v.com/c=d"});
  ASSERT_TRUE(edits.ok()) << edits.status();
  EXPECT_THAT(edits->env, ElementsAre("V=1"));
  // Same size, new content: the mtime (or inode, when replaced) tells.
  Write(tmp_.Sub("run/s.json.tmp"), Spec("v.com/c", "d", "V=2"));
  ASSERT_EQ(::rename(tmp_.Sub("run/s.json.tmp").c_str(), tmp_.Sub("run/s.json").c_str()), 0);
  edits = registry_.Resolve({"v.com/c=d"});
  ASSERT_TRUE(edits.ok()) << edits.status();
  EXPECT_THAT(edits->env, ElementsAre("V=2"));
  ASSERT_EQ(::unlink(tmp_.Sub("run/s.json").c_str()), 0);
  EXPECT_EQ(registry_.Resolve({"v.com/c=d"}).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(CdiRegistryTest, MissingHostDeviceNamesIt) {
  Write(tmp_.Sub("etc/n.json"), R"({"cdiVersion": "0.5.0", "kind": "v.com/c", "devices": [
      {"name": "d", "containerEdits": {"deviceNodes": [{"path": "/dev/nothing-here"}]}}]})");
  absl::StatusOr<CdiEdits> edits = registry_.Resolve({"v.com/c=d"});
  EXPECT_EQ(edits.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(edits.status().message(), HasSubstr("v.com/c=d"));
  EXPECT_THAT(edits.status().message(), HasSubstr("/dev/nothing-here"));
}

TEST(CdiResolveTest, NoRegistryRefusesRequestsOnly) {
  v1::ContainerConfig config;
  EXPECT_TRUE(ResolveCdiDevices(config, nullptr).ok());
  config.add_cdi_devices()->set_name("v.com/c=d");
  EXPECT_EQ(ResolveCdiDevices(config, nullptr).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(CdiApplyTest, EditsLandAsTheReferenceAppliesThem) {
  Json spec = Json::parse(R"({
    "process": {"user": {"uid": 1000, "gid": 2000, "additionalGids": [3]},
                "env": ["PATH=/bin", "GPU=old"]},
    "mounts": [{"destination": "/proc"}, {"destination": "/usr/lib/gpu", "source": "/old"},
               {"destination": "/a/b/c"}],
    "linux": {"devices": [{"path": "/dev/gpu0", "type": "c", "major": 9, "minor": 9}],
              "resources": {"devices": [{"allow": false, "access": "rwm"}]}}
  })");
  CdiEdits edits;
  edits.env = {"GPU=0", "NEW=1"};
  edits.device_nodes.push_back({"/dev/gpu0", "/dev/null", "c", 1, 3, 0666u, "rw", {}, {}});
  edits.device_nodes.push_back({"/dev/quiet", "/dev/null", "c", 1, 3, {}, "none", 0u, 0u});
  edits.mounts.push_back({"/opt/lib", "/usr/lib/gpu", {"ro", "bind"}, ""});
  edits.mounts.push_back({"/opt/x", "/x", {"bind"}, "bind"});
  edits.hooks.push_back({"createContainer", "/bin/hook", {"hook", "x"}, {}, 5});
  edits.additional_gids = {0, 3, 44};
  ASSERT_TRUE(ApplyCdiEdits(edits, spec).ok());

  EXPECT_EQ(spec["process"]["env"], Json({"PATH=/bin", "GPU=0", "NEW=1"}));
  EXPECT_EQ(spec["process"]["user"]["additionalGids"], Json({3, 44}));
  EXPECT_EQ(spec["linux"]["devices"], Json::parse(R"([
    {"path": "/dev/gpu0", "type": "c", "major": 1, "minor": 3, "fileMode": 438,
     "uid": 1000, "gid": 2000},
    {"path": "/dev/quiet", "type": "c", "major": 1, "minor": 3, "uid": 0, "gid": 0}])"));
  EXPECT_EQ(spec["linux"]["resources"]["devices"], Json::parse(R"([
    {"allow": false, "access": "rwm"},
    {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rw"},
    {"allow": true, "type": "c", "major": 1, "minor": 3, "access": ""}])"));
  std::vector<std::string> destinations;
  for (const Json& m : spec["mounts"]) {
    destinations.push_back(m["destination"]);
  }
  // A replaced mount moves to the end of its depth, as in the reference.
  EXPECT_THAT(destinations, ElementsAre("/proc", "/x", "/a/b/c", "/usr/lib/gpu"));
  EXPECT_EQ(spec["mounts"][3]["source"], "/opt/lib");
  EXPECT_EQ(spec["hooks"]["createContainer"],
            Json::parse(R"([{"path": "/bin/hook", "args": ["hook", "x"], "timeout": 5}])"));
}

}  // namespace
}  // namespace crid
