// The pure parts of the native exec path: which configs it takes (and which
// it leaves to the runtime), PATH lookup and the cgroup files a process joins.
// The process itself is tested against runc in shim/shim_test.cc.
#include "oci/native_exec.h"

#include <linux/seccomp.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace crid {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using json = nlohmann::json;

json BaseConfig() {
  return json::parse(R"({
    "ociVersion": "1.0.2",
    "process": {
      "user": {"uid": 1000, "gid": 2000, "additionalGids": [3000, 3001], "umask": 18},
      "args": ["/pause"],
      "env": ["PATH=/usr/bin:/bin", "HOME=/home/app"],
      "cwd": "/work",
      "capabilities": {
        "bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_CHECKPOINT_RESTORE"],
        "effective": ["CAP_KILL"],
        "permitted": ["CAP_KILL", "CAP_CHOWN"],
        "inheritable": [],
        "ambient": ["CAP_NET_BIND_SERVICE"]
      },
      "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 4096}],
      "noNewPrivileges": true,
      "oomScoreAdj": 500
    },
    "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}]}
  })");
}

TEST(ParseNativeExecSpec, ReadsTheProcess) {
  absl::StatusOr<NativeExecSpec> spec = ParseNativeExecSpec(BaseConfig().dump());
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->uid, 1000u);
  EXPECT_EQ(spec->gid, 2000u);
  EXPECT_THAT(spec->additional_gids, ElementsAre(3000u, 3001u));
  EXPECT_EQ(spec->umask, 022u);
  EXPECT_THAT(spec->env, ElementsAre("PATH=/usr/bin:/bin", "HOME=/home/app"));
  EXPECT_EQ(spec->cwd, "/work");
  EXPECT_EQ(spec->bounding, (uint64_t{1} << 0) | (uint64_t{1} << 5) | (uint64_t{1} << 40));
  EXPECT_EQ(spec->effective, uint64_t{1} << 5);
  EXPECT_EQ(spec->permitted, (uint64_t{1} << 5) | 1u);
  EXPECT_EQ(spec->inheritable, 0u);
  EXPECT_EQ(spec->ambient, uint64_t{1} << 10);
  ASSERT_EQ(spec->rlimits.size(), 1u);
  EXPECT_EQ(spec->rlimits[0].resource, 7);  // RLIMIT_NOFILE
  EXPECT_EQ(spec->rlimits[0].soft, 1024u);
  EXPECT_EQ(spec->rlimits[0].hard, 4096u);
  EXPECT_TRUE(spec->no_new_privileges);
  EXPECT_EQ(spec->oom_score_adj, 500);
}

TEST(ParseNativeExecSpec, MinimalUserIsRoot) {
  json config = BaseConfig();
  config["process"]["user"] = json::object();
  config["process"].erase("oomScoreAdj");
  absl::StatusOr<NativeExecSpec> spec = ParseNativeExecSpec(config.dump());
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->uid, 0u);
  EXPECT_TRUE(spec->additional_gids.empty());
  EXPECT_FALSE(spec->umask.has_value());
  EXPECT_FALSE(spec->oom_score_adj.has_value());
}

// Each of these is left to the runtime binary (UNIMPLEMENTED, naming why).
TEST(ParseNativeExecSpec, LeavesWhatItDoesNotReproduceToTheRuntime) {
  struct Case {
    const char* what;
    std::function<void(json&)> change;
  };
  std::vector<Case> cases = {
      {"listenerPath",
       [](json& c) {
         c["linux"]["seccomp"] = {{"defaultAction", "SCMP_ACT_ALLOW"},
                                  {"listenerPath", "/run/agent.sock"}};
       }},
      {"SCMP_ACT_NOTIFY",
       [](json& c) {
         c["linux"]["seccomp"] = {
             {"defaultAction", "SCMP_ACT_ALLOW"},
             {"syscalls", {{{"names", {"mount"}}, {"action", "SCMP_ACT_NOTIFY"}}}}};
       }},
      {"SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
       [](json& c) {
         c["linux"]["seccomp"] = {{"defaultAction", "SCMP_ACT_ALLOW"},
                                  {"flags", {"SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"}}};
       }},
      {"user namespace",
       [](json& c) {
         c["linux"]["namespaces"].push_back({{"type", "user"}});
       }},
      {"apparmorProfile", [](json& c) { c["process"]["apparmorProfile"] = "crid-default"; }},
      {"selinuxLabel", [](json& c) { c["process"]["selinuxLabel"] = "system_u:system_r:x"; }},
      {"ioPriority",
       [](json& c) {
         c["process"]["ioPriority"] = {{"class", "IOPRIO_CLASS_IDLE"}};
       }},
      {"HOME", [](json& c) { c["process"]["env"] = {"PATH=/bin"}; }},
      {"CAP_NEW_THING",
       [](json& c) { c["process"]["capabilities"]["bounding"].push_back("CAP_NEW_THING"); }},
      {"capabilities", [](json& c) { c["process"].erase("capabilities"); }},
      {"RLIMIT_FUTURE",
       [](json& c) {
         c["process"]["rlimits"].push_back({{"type", "RLIMIT_FUTURE"}, {"soft", 1}, {"hard", 1}});
       }},
      {"username", [](json& c) { c["process"]["user"]["username"] = "app"; }},
  };
  for (const Case& c : cases) {
    json config = BaseConfig();
    c.change(config);
    absl::StatusOr<NativeExecSpec> spec = ParseNativeExecSpec(config.dump());
    ASSERT_FALSE(spec.ok()) << c.what;
    EXPECT_EQ(spec.status().code(), absl::StatusCode::kUnimplemented) << c.what;
    EXPECT_THAT(spec.status().message(), HasSubstr(c.what));
  }
}

// A seccomp profile is taken over from the init; its flags are runc's.
TEST(ParseNativeExecSpec, SeccompFlags) {
  json config = BaseConfig();
  absl::StatusOr<NativeExecSpec> spec = ParseNativeExecSpec(config.dump());
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_FALSE(spec->seccomp);
  config["linux"]["seccomp"] = {
      {"defaultAction", "SCMP_ACT_ERRNO"},
      {"flags",
       {"SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_TSYNC"}}};
  spec = ParseNativeExecSpec(config.dump());
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_TRUE(spec->seccomp);
  // TSYNC is accepted and, as runc does, not passed.
  EXPECT_EQ(spec->seccomp_flags, SECCOMP_FILTER_FLAG_LOG | SECCOMP_FILTER_FLAG_SPEC_ALLOW);
  EXPECT_TRUE(spec->seccomp_filter.empty());
  config["linux"]["seccomp"]["flags"] = "SECCOMP_FILTER_FLAG_LOG";
  EXPECT_EQ(ParseNativeExecSpec(config.dump()).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ParseNativeExecSpec, RejectsWhatIsNoSpec) {
  EXPECT_EQ(ParseNativeExecSpec("not json").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseNativeExecSpec("{}").status().code(), absl::StatusCode::kInvalidArgument);
  json config = BaseConfig();
  config["process"]["user"]["uid"] = -1;
  absl::StatusOr<NativeExecSpec> spec = ParseNativeExecSpec(config.dump());
  EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(spec.status().message(), HasSubstr("process.user.uid"));
  config = BaseConfig();
  config["process"]["cwd"] = "relative";
  EXPECT_THAT(ParseNativeExecSpec(config.dump()).status().message(), HasSubstr("process.cwd"));
}

TEST(ExecCandidates, FollowsGoLookPath) {
  EXPECT_THAT(ExecCandidates("/bin/sh", {"PATH=/usr/bin"}), ElementsAre("/bin/sh"));
  EXPECT_THAT(ExecCandidates("./run", {"PATH=/usr/bin"}), ElementsAre("./run"));
  EXPECT_THAT(ExecCandidates("ls", {"HOME=/", "PATH=/usr/local/bin:/bin", "PATH=/other"}),
              ElementsAre("/usr/local/bin/ls", "/bin/ls"));
  EXPECT_THAT(ExecCandidates("ls", {"PATH=:/bin"}), ElementsAre("./ls", "/bin/ls"));
  EXPECT_TRUE(ExecCandidates("ls", {"HOME=/"}).empty());
}

TEST(CgroupProcsFiles, EveryHierarchyWithAMount) {
  std::map<std::string, std::string> mounts = {
      {"cpu", "/sys/fs/cgroup/cpu"},
      {"memory", "/sys/fs/cgroup/memory"},
      {"name=systemd", "/sys/fs/cgroup/systemd"},
  };
  std::string proc_cgroup =
      "12:name=systemd:/kubepods/pod1/c1\n"
      "4:memory:/kubepods/pod1/c1\n"
      "3:cpu,cpuacct:/kubepods/pod1/c1\n"
      "2:misc:/\n"
      "0::/shim\n";
  EXPECT_THAT(CgroupProcsFiles(proc_cgroup, mounts, "/sys/fs/cgroup/unified"),
              ElementsAre("/sys/fs/cgroup/systemd/kubepods/pod1/c1/cgroup.procs",
                          "/sys/fs/cgroup/memory/kubepods/pod1/c1/cgroup.procs",
                          "/sys/fs/cgroup/cpu/kubepods/pod1/c1/cgroup.procs",
                          "/sys/fs/cgroup/unified/shim/cgroup.procs"));
  EXPECT_THAT(CgroupProcsFiles("0::/\n", {}, "/sys/fs/cgroup"),
              ElementsAre("/sys/fs/cgroup/cgroup.procs"));
  EXPECT_TRUE(CgroupProcsFiles("0::/x\n", {}, "").empty());
}

}  // namespace
}  // namespace crid
