#include "bench/start_floor.h"

#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/errors.h"
#include "base/fs.h"
#include "base/spawn.h"
#include "base/unique_fd.h"

namespace crid::bench {
namespace {

constexpr char kIfName[] = "eth0";

// A network namespace pinned at `path` as crid pins a pod's: a short-lived
// thread unshares it, brings up lo and bind-mounts its nsfs file.
absl::Status CreateNetns(const std::string& path) {
  UniqueFd file(open(path.c_str(), O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444));
  if (!file.valid()) {
    return ErrnoError(errno, "create ", path);
  }
  absl::Status st;
  std::thread([&] {
    if (unshare(CLONE_NEWNET) != 0) {
      st = ErrnoError(errno, "unshare network namespace");
      return;
    }
    UniqueFd sock(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    struct ifreq req;
    std::memset(&req, 0, sizeof(req));
    std::strncpy(req.ifr_name, "lo", IFNAMSIZ - 1);
    if (!sock.valid() || ioctl(sock.get(), SIOCGIFFLAGS, &req) != 0) {
      st = ErrnoError(errno, "get flags of lo");
      return;
    }
    req.ifr_flags |= IFF_UP;
    if (ioctl(sock.get(), SIOCSIFFLAGS, &req) != 0) {
      st = ErrnoError(errno, "bring up lo");
      return;
    }
    std::string self = absl::StrCat("/proc/self/task/", syscall(SYS_gettid), "/ns/net");
    if (mount(self.c_str(), path.c_str(), nullptr, MS_BIND, nullptr) != 0) {
      st = ErrnoError(errno, "bind mount ", self, " on ", path);
    }
  }).join();
  if (!st.ok()) {
    unlink(path.c_str());
  }
  return st;
}

void RemoveNetns(const std::string& path) {
  umount2(path.c_str(), MNT_DETACH);
  unlink(path.c_str());
}

// Runs `argv` with `env`, `input` on its stdin; its stdout, or an error with
// its output when it does not exit 0.
absl::StatusOr<std::string> RunWithInput(const std::vector<std::string>& argv,
                                         std::vector<std::string> env, const std::string& input) {
  int in[2];
  int out[2];
  if (pipe2(in, O_CLOEXEC) != 0) {
    return ErrnoError(errno, "pipe");
  }
  UniqueFd in_read(in[0]);
  UniqueFd in_write(in[1]);
  if (pipe2(out, O_CLOEXEC) != 0) {
    return ErrnoError(errno, "pipe");
  }
  UniqueFd out_read(out[0]);
  UniqueFd out_write(out[1]);
  SpawnOptions options;
  options.argv = argv;
  options.env = std::move(env);
  options.stdin_fd = in_read.get();
  options.stdout_fd = out_write.get();
  options.stderr_fd = out_write.get();
  absl::StatusOr<SpawnedProcess> child = Spawn(options);
  if (!child.ok()) {
    return child.status();
  }
  in_read.reset();
  out_write.reset();
  // Configs are far smaller than a pipe's buffer.
  if (write(in_write.get(), input.data(), input.size()) != static_cast<ssize_t>(input.size())) {
    int err = errno;
    WaitForExit(child->pid);
    return ErrnoError(err, "write stdin of ", argv[0]);
  }
  in_write.reset();
  std::string output;
  char buf[4096];
  for (;;) {
    ssize_t n = read(out_read.get(), buf, sizeof(buf));
    if (n > 0) {
      output.append(buf, static_cast<size_t>(n));
    } else if (n == 0 || errno != EINTR) {
      break;
    }
  }
  int status = WaitForExit(child->pid);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return absl::InternalError(absl::StrCat(argv[0], " exited ", status, ": ", output));
  }
  return output;
}

}  // namespace

absl::StatusOr<std::unique_ptr<StartFloor>> StartFloor::Create(const TestCniNetwork& network,
                                                               std::string runc,
                                                               const std::string& busybox) {
  std::unique_ptr<StartFloor> floor(new StartFloor(std::move(runc)));
  CRID_ASSIGN_OR_RETURN(floor->list_, ParseJsonObject(network.conflist(), "CNI conflist"));
  const std::string bundle = floor->tmp_.Sub("bundle");
  const std::string rootfs = bundle + "/rootfs";
  for (const char* dir : {"bin", "proc", "dev", "sys", "tmp"}) {
    CRID_RETURN_IF_ERROR(MakeDirs(absl::StrCat(rootfs, "/", dir), 0755));
  }
  CRID_RETURN_IF_ERROR(MakeDirs(floor->tmp_.Sub("runc"), 0700));
  CRID_RETURN_IF_ERROR(MakeDirs(floor->tmp_.Sub("netns"), 0755));
  {
    std::ifstream src(busybox, std::ios::binary);
    std::ofstream dst(rootfs + "/bin/busybox", std::ios::binary);
    dst << src.rdbuf();
    if (!src || !dst) {
      return absl::FailedPreconditionError(
          absl::StrCat("copy ", busybox, " (a static busybox: apt-get install busybox-static)"));
    }
  }
  chmod((rootfs + "/bin/busybox").c_str(), 0755);
  for (const char* applet : {"sleep", "sh"}) {
    if (symlink("busybox", absl::StrCat(rootfs, "/bin/", applet).c_str()) != 0) {
      return ErrnoError(errno, "symlink ", applet);
    }
  }
  // runc's own default spec (masked and read-only paths, devices, default
  // capabilities, no seccomp), with the namespaces a pod's container gets:
  // its own mount and PID namespaces, the pod's network namespace (crid's
  // containers also join the pod's IPC and UTS namespaces; new ones here).
  SpawnOptions spec;
  spec.argv = {floor->runc_, "spec", "--bundle", bundle};
  CRID_ASSIGN_OR_RETURN(SpawnedProcess p, Spawn(spec));
  if (int status = WaitForExit(p.pid); !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return absl::InternalError(absl::StrCat(floor->runc_, " spec exited ", status));
  }
  CRID_ASSIGN_OR_RETURN(std::string text, ReadFile(bundle + "/config.json"));
  CRID_ASSIGN_OR_RETURN(floor->config_, ParseJsonObject(text, "runc spec"));
  Json& process = floor->config_["process"];
  process["terminal"] = false;
  process["args"] = Json::array({"/bin/sleep", "3600"});
  floor->config_["hostname"] = "floor";
  return floor;
}

StartFloor::~StartFloor() = default;

absl::Status StartFloor::Runc(const std::vector<std::string>& args) {
  SpawnOptions options;
  options.argv = {runc_, "--root", tmp_.Sub("runc")};
  options.argv.insert(options.argv.end(), args.begin(), args.end());
  CRID_ASSIGN_OR_RETURN(SpawnedProcess p, Spawn(options));
  if (int status = WaitForExit(p.pid); !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return absl::InternalError(absl::StrCat("runc ", args[0], " exited ", status));
  }
  return absl::OkStatus();
}

absl::StatusOr<Json> StartFloor::RunCni(const std::string& command, const std::string& id,
                                        const std::string& netns, const Json* prev_result) {
  std::vector<std::string> env = {
      "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
      "CNI_COMMAND=" + command,
      "CNI_CONTAINERID=" + id,
      "CNI_NETNS=" + netns,
      absl::StrCat("CNI_IFNAME=", kIfName),
      "CNI_ARGS=IgnoreUnknown=1;K8S_POD_NAMESPACE=bench;K8S_POD_NAME=" + id,
      absl::StrCat("CNI_PATH=", kSystemCniBinDir),
  };
  std::vector<Json> plugins = list_["plugins"].get<std::vector<Json>>();
  if (command == "DEL") {
    std::reverse(plugins.begin(), plugins.end());
  }
  Json result = prev_result != nullptr ? *prev_result : Json();
  absl::Status first_error;
  for (Json plugin : plugins) {
    plugin["name"] = list_["name"];
    plugin["cniVersion"] = list_["cniVersion"];
    if (!result.is_null()) {
      plugin["prevResult"] = result;
    }
    const std::string binary = absl::StrCat(kSystemCniBinDir, "/", JsonString(plugin, "type"));
    absl::StatusOr<std::string> out = RunWithInput({binary}, env, JsonText(plugin));
    if (!out.ok()) {
      if (command != "DEL") {
        return out.status();
      }
      first_error.Update(out.status());
      continue;
    }
    if (command == "ADD") {
      CRID_ASSIGN_OR_RETURN(result, ParseJsonObject(*out, binary + " ADD result"));
    }
  }
  CRID_RETURN_IF_ERROR(first_error);
  return result;
}

absl::StatusOr<StartFloorRound> StartFloor::Round(int n) {
  const std::string id = absl::StrCat("crid-floor-", getpid(), "-", n);
  const std::string netns = tmp_.Sub("netns/" + id);
  const std::string bundle = tmp_.Sub("bundle");
  StartFloorRound round;

  absl::Time t0 = absl::Now();
  CRID_RETURN_IF_ERROR(CreateNetns(netns));
  absl::StatusOr<Json> added = RunCni("ADD", id, netns, nullptr);
  round.netns_cni_add = absl::Now() - t0;
  absl::Status st = added.status();

  bool created = false;
  if (st.ok()) {
    Json config = config_;
    Json namespaces = Json::array({{{"type", "pid"}},
                                   {{"type", "ipc"}},
                                   {{"type", "uts"}},
                                   {{"type", "mount"}},
                                   {{"type", "network"}, {"path", netns}}});
    config["linux"]["namespaces"] = std::move(namespaces);
    std::ofstream(bundle + "/config.json") << JsonText(config);
    absl::Time t1 = absl::Now();
    st = Runc({"--log", tmp_.Sub(id + ".log"), "--log-format", "json", "create", "--bundle", bundle,
               "--pid-file", tmp_.Sub(id + ".pid"), id});
    round.runc_create = absl::Now() - t1;
    created = true;  // a failed create may still leave a state behind
  }
  if (st.ok()) {
    absl::Time t2 = absl::Now();
    st = Runc({"start", id});
    round.runc_start = absl::Now() - t2;
  }

  if (created) {
    st.Update(Runc({"delete", "-f", id}));
    unlink(tmp_.Sub(id + ".log").c_str());
    unlink(tmp_.Sub(id + ".pid").c_str());
  }
  if (added.ok()) {
    st.Update(RunCni("DEL", id, netns, &*added).status());
  } else {
    (void)RunCni("DEL", id, netns, nullptr);
  }
  RemoveNetns(netns);
  if (!st.ok()) {
    return st;
  }
  return round;
}

}  // namespace crid::bench
