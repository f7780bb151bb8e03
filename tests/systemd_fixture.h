// A real systemd for tests of the systemd cgroup driver on hosts whose PID 1 is
// not systemd: systemd runs as PID 1 of a private PID+mount(+UTS) namespace,
// guarded from the host as tests/systemd_host.sh describes (private /run,
// masked units and generators, private cgroupfs tmpfs, no /tmp cleaning).
// Its cgroups are real host cgroups; stopping kills it by PID and removes the
// unit directories it made. Code that talks to it over D-Bus (PIDs in its
// namespace, its socket at /run/systemd/private) runs inside via RunInside().
#pragma once

#include <sys/types.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace crid {

class SystemdFixture {
 public:
  // Starts systemd and waits until it reports "running" on its private bus.
  // The error says why when this host cannot run it.
  static absl::StatusOr<std::unique_ptr<SystemdFixture>> Start();
  ~SystemdFixture();
  SystemdFixture(const SystemdFixture&) = delete;
  SystemdFixture& operator=(const SystemdFixture&) = delete;

  // Kills systemd (and with it every process of its namespace) by PID and
  // removes the cgroups it created; an error lists what was left.
  absl::Status Stop();

  // systemd's PID on the host.
  pid_t pid() const { return pid_; }

  // Runs `argv` inside systemd's PID and mount namespaces (nsenter), with this
  // process's environment plus `env`, stdout/stderr inherited; returns the
  // exit code (128+signal when killed, -1 on timeout: then it is killed).
  int RunInside(const std::vector<std::string>& argv,
                const std::map<std::string, std::string>& env = {},
                absl::Duration timeout = absl::Minutes(3));

  // The script's log (for failure messages).
  std::string Log() const;

 private:
  SystemdFixture() = default;
  int RunScript(const std::vector<std::string>& args, std::string* output);

  std::string lab_;  // the script's state and log
  pid_t pid_ = -1;
  bool stopped_ = false;
};

}  // namespace crid
