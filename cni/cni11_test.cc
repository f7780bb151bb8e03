// CNI 1.1's verbs (STATUS, GC, CHECK) against a small shell plugin that logs
// every call and answers as control files in its directory say; and that
// networks with an older cniVersion never see them.
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/fs.h"
#include "base/json.h"
#include "base/temp_dir.h"
#include "cni/network.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace crid::cni {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// Logs "COMMAND CNI_CONTAINERID CNI_IFNAME" to calls.log and each stdin to
// stdin-COMMAND.json. STATUS fails with code 50 while `notready` exists, CHECK
// fails while `checkfail` exists; ADD answers one IPv4 address.
constexpr char kFakePlugin[] = R"(#!/bin/sh
dir=$(dirname "$0")
in=$(cat)
echo "$CNI_COMMAND $CNI_CONTAINERID $CNI_IFNAME" >>"$dir/calls.log"
printf '%s' "$in" >"$dir/stdin-$CNI_COMMAND.json"
case "$CNI_COMMAND" in
  VERSION) echo '{"cniVersion":"1.1.0","supportedVersions":["0.4.0","1.0.0","1.1.0"]}' ;;
  ADD) echo '{"cniVersion":"1.1.0","interfaces":[{"name":"eth0","sandbox":"/x"}],"ips":[{"address":"10.1.2.3/24","interface":0}]}' ;;
  STATUS)
    if [ -e "$dir/notready" ]; then
      echo '{"cniVersion":"1.1.0","code":50,"msg":"no lease from the cluster","details":"etcd unreachable"}'
      exit 1
    fi ;;
  CHECK)
    if [ -e "$dir/checkfail" ]; then
      echo '{"cniVersion":"1.1.0","code":999,"msg":"eth0 lost its address"}'
      exit 1
    fi ;;
esac
exit 0
)";

class Cni11Test : public ::testing::Test {
 protected:
  void SetUp() override {
    mkdir(tmp_.Sub("bin").c_str(), 0755);
    mkdir(tmp_.Sub("conf").c_str(), 0755);
    std::ofstream(tmp_.Sub("bin/fake")) << kFakePlugin;
    chmod(tmp_.Sub("bin/fake").c_str(), 0755);
  }

  void WriteConf(const std::string& version, const std::string& extra = "") {
    std::ofstream(tmp_.Sub("conf/10-fake.conflist"))
        << R"({"cniVersion":")" << version << R"(","name":"fakenet")" << extra
        << R"(,"plugins":[{"type":"fake"}]})";
  }

  std::unique_ptr<CniManager> Manager(absl::Duration gc_grace = absl::ZeroDuration()) {
    CniOptions options;
    options.conf_dir = tmp_.Sub("conf");
    options.bin_dirs = {tmp_.Sub("bin")};
    options.cache_dir = tmp_.Sub("cache");
    options.plugin_timeout = absl::Seconds(10);
    options.gc_grace = gc_grace;
    absl::StatusOr<std::unique_ptr<CniManager>> m = CniManager::Create(options);
    EXPECT_TRUE(m.ok()) << m.status();
    return m.ok() ? *std::move(m) : nullptr;
  }

  std::string Calls() const { return ReadFile(tmp_.Sub("bin/calls.log")).value_or(""); }
  void Touch(const std::string& name) const { std::ofstream(tmp_.Sub("bin/" + name)) << ""; }

  static Attachment Pod(const std::string& id) {
    Attachment a;
    a.container_id = id;
    a.args = {{"K8S_POD_NAME", id}};
    return a;
  }

  TempDir tmp_;
};

TEST_F(Cni11Test, StatusFailureKeepsTheNetworkNotReadyWithThePluginsMessage) {
  WriteConf("1.1.0");
  Touch("notready");
  auto manager = Manager();
  absl::Status ready = manager->Ready();
  EXPECT_FALSE(ready.ok());
  EXPECT_EQ(ready.code(), absl::StatusCode::kFailedPrecondition) << ready;
  EXPECT_THAT(std::string(ready.message()), HasSubstr("no lease from the cluster"));
  EXPECT_THAT(std::string(ready.message()), HasSubstr("STATUS"));
  // STATUS gets the plugin's config with the network's name and version.
  Json in = *ParseJson(*ReadFile(tmp_.Sub("bin/stdin-STATUS.json")), "stdin");
  EXPECT_EQ(JsonString(in, "name"), "fakenet");
  EXPECT_EQ(JsonString(in, "cniVersion"), "1.1.0");

  unlink(tmp_.Sub("bin/notready").c_str());
  manager->RefreshStatus();
  EXPECT_TRUE(manager->Ready().ok()) << manager->Ready();
}

TEST_F(Cni11Test, WatcherAsksForStatusPeriodically) {
  WriteConf("1.1.0");
  CniOptions options;
  options.conf_dir = tmp_.Sub("conf");
  options.bin_dirs = {tmp_.Sub("bin")};
  options.cache_dir = tmp_.Sub("cache");
  options.status_interval = absl::Milliseconds(100);
  auto manager = *CniManager::Create(options);
  ASSERT_TRUE(manager->Ready().ok());
  Touch("notready");
  absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (manager->Ready().ok() && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_FALSE(manager->Ready().ok());
}

TEST_F(Cni11Test, OlderNetworksGetNoStatusGcOrCheck) {
  WriteConf("1.0.0");
  Touch("notready");
  Touch("checkfail");
  auto manager = Manager();
  EXPECT_TRUE(manager->Ready().ok()) << manager->Ready();
  EXPECT_FALSE(manager->ChecksAttachments());
  ASSERT_TRUE(manager->Setup(Pod("p1")).ok());
  EXPECT_TRUE(manager->Check(Pod("p1")).ok());
  absl::StatusOr<GcReport> gc = manager->GarbageCollect({Pod("p1")});
  ASSERT_TRUE(gc.ok()) << gc.status();
  EXPECT_EQ(gc->plugins_called, 0);
  EXPECT_EQ(gc->deleted, 0);
  EXPECT_THAT(Calls(), Not(HasSubstr("STATUS")));
  EXPECT_THAT(Calls(), Not(HasSubstr("GC")));
  EXPECT_THAT(Calls(), Not(HasSubstr("CHECK")));
}

TEST_F(Cni11Test, GcDeletesAttachmentsNoPodHoldsAndSendsTheValidOnes) {
  WriteConf("1.1.0");
  auto manager = Manager();
  ASSERT_TRUE(manager->Setup(Pod("keep")).ok());
  ASSERT_TRUE(manager->Setup(Pod("gone")).ok());
  absl::StatusOr<GcReport> gc = manager->GarbageCollect({Pod("keep")});
  ASSERT_TRUE(gc.ok()) << gc.status();
  EXPECT_EQ(gc->deleted, 1);
  EXPECT_EQ(gc->plugins_called, 1);
  EXPECT_THAT(Calls(), HasSubstr("DEL gone eth0"));
  EXPECT_THAT(Calls(), Not(HasSubstr("DEL keep")));
  EXPECT_TRUE(manager->CachedResult("keep", "eth0").has_value());
  EXPECT_FALSE(manager->CachedResult("gone", "eth0").has_value());
  // DEL of the unknown attachment ran with what ADD cached (CNI_ARGS, prevResult).
  Json del = *ParseJson(*ReadFile(tmp_.Sub("bin/stdin-DEL.json")), "stdin");
  EXPECT_NE(JsonField(del, "prevResult"), nullptr);
  Json in = *ParseJson(*ReadFile(tmp_.Sub("bin/stdin-GC.json")), "stdin");
  Json want = Json::array({{{"containerID", "keep"}, {"ifname", "eth0"}}});
  ASSERT_NE(JsonField(in, "cni.dev/valid-attachments"), nullptr);
  EXPECT_EQ(*JsonField(in, "cni.dev/valid-attachments"), want);
  EXPECT_EQ(*JsonField(in, "cni.dev/attachments"), want);
  EXPECT_EQ(JsonString(in, "cniVersion"), "1.1.0");
}

TEST_F(Cni11Test, GcLeavesAttachmentsYoungerThanTheGraceAndListsThemValid) {
  WriteConf("1.1.0");
  auto manager = Manager(absl::Minutes(10));
  ASSERT_TRUE(manager->Setup(Pod("new")).ok());
  absl::StatusOr<GcReport> gc = manager->GarbageCollect({});
  ASSERT_TRUE(gc.ok()) << gc.status();
  EXPECT_EQ(gc->deleted, 0);
  EXPECT_TRUE(manager->CachedResult("new", "eth0").has_value());
  Json in = *ParseJson(*ReadFile(tmp_.Sub("bin/stdin-GC.json")), "stdin");
  EXPECT_EQ(*JsonField(in, "cni.dev/valid-attachments"),
            Json::array({{{"containerID", "new"}, {"ifname", "eth0"}}}));
}

TEST_F(Cni11Test, DisableGcSendsNoGcButStillDeletesUnknownCachedAttachments) {
  WriteConf("1.1.0", R"(,"disableGC":true)");
  auto manager = Manager();
  ASSERT_TRUE(manager->Setup(Pod("gone")).ok());
  absl::StatusOr<GcReport> gc = manager->GarbageCollect({});
  ASSERT_TRUE(gc.ok()) << gc.status();
  EXPECT_EQ(gc->deleted, 1);
  EXPECT_EQ(gc->plugins_called, 0);
  EXPECT_THAT(Calls(), Not(HasSubstr("GC")));
}

TEST_F(Cni11Test, AttachmentSourceIsCollectedAtOnceOnTheWatcherThread) {
  WriteConf("1.1.0");
  auto manager = Manager();
  ASSERT_TRUE(manager->Setup(Pod("keep")).ok());
  ASSERT_TRUE(manager->Setup(Pod("gone")).ok());
  manager->SetAttachmentSource([] { return std::vector<Attachment>{Pod("keep")}; });
  absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (manager->CachedResult("gone", "eth0").has_value() && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_FALSE(manager->CachedResult("gone", "eth0").has_value());
  EXPECT_TRUE(manager->CachedResult("keep", "eth0").has_value());
  manager->SetAttachmentSource(nullptr);
}

TEST_F(Cni11Test, CheckRunsWithTheCachedResultAndReportsThePluginsMessage) {
  WriteConf("1.1.0");
  auto manager = Manager();
  EXPECT_TRUE(manager->ChecksAttachments());
  ASSERT_TRUE(manager->Setup(Pod("p1")).ok());
  EXPECT_TRUE(manager->Check(Pod("p1")).ok());
  Json in = *ParseJson(*ReadFile(tmp_.Sub("bin/stdin-CHECK.json")), "stdin");
  ASSERT_NE(JsonField(in, "prevResult"), nullptr);
  EXPECT_THAT(JsonText(*JsonField(in, "prevResult")), HasSubstr("10.1.2.3/24"));
  Touch("checkfail");
  absl::Status check = manager->Check(Pod("p1"));
  EXPECT_FALSE(check.ok());
  EXPECT_THAT(std::string(check.message()), HasSubstr("eth0 lost its address"));
  // Nothing cached, nothing to check.
  EXPECT_TRUE(manager->Check(Pod("unknown")).ok());
}

TEST_F(Cni11Test, DisableCheckSkipsCheck) {
  WriteConf("1.1.0", R"(,"disableCheck":true)");
  Touch("checkfail");
  auto manager = Manager();
  EXPECT_FALSE(manager->ChecksAttachments());
  ASSERT_TRUE(manager->Setup(Pod("p1")).ok());
  EXPECT_TRUE(manager->Check(Pod("p1")).ok());
  EXPECT_THAT(Calls(), Not(HasSubstr("CHECK")));
}

TEST(CniVersionAtLeast, ComparesNumerically) {
  EXPECT_TRUE(CniVersionAtLeast("1.1.0", 1, 1, 0));
  EXPECT_TRUE(CniVersionAtLeast("1.10.0", 1, 1, 0));
  EXPECT_TRUE(CniVersionAtLeast("2.0", 1, 1, 0));
  EXPECT_FALSE(CniVersionAtLeast("1.0.0", 1, 1, 0));
  EXPECT_FALSE(CniVersionAtLeast("0.4.0", 1, 1, 0));
  EXPECT_FALSE(CniVersionAtLeast("", 1, 1, 0));
  EXPECT_FALSE(CniVersionAtLeast("1.x", 1, 1, 0));
  EXPECT_TRUE(CniVersionAtLeast("0.4.0", 0, 4, 0));
}

}  // namespace
}  // namespace crid::cni
