// A small client of systemd's manager API over D-Bus (sd-bus): transient
// units, stopping them and waiting for their jobs, as runc's systemd driver and
// kubelet use it. The connection is serialized by a mutex.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

struct sd_bus;

namespace crid {

// One unit property as StartTransientUnit takes it: a name and a variant.
struct UnitProperty {
  enum class Type { kString, kBool, kUint64, kPids, kBytes };

  static UnitProperty String(std::string name, std::string value);
  static UnitProperty Bool(std::string name, bool value);
  static UnitProperty Uint64(std::string name, uint64_t value);
  static UnitProperty Pids(std::string name, std::vector<uint32_t> pids);
  static UnitProperty Bytes(std::string name, std::vector<uint8_t> bytes);

  std::string name;
  Type type = Type::kString;
  std::string string_value;
  bool bool_value = false;
  uint64_t uint64_value = 0;
  std::vector<uint32_t> pids;
  std::vector<uint8_t> bytes;
};

class SystemdBus {
 public:
  // The private socket of systemd (root only).
  static constexpr const char* kPrivateAddress = "unix:path=/run/systemd/private";

  // `address` empty: the system bus through dbus-daemon.
  static absl::StatusOr<std::unique_ptr<SystemdBus>> Connect(const std::string& address);
  ~SystemdBus();
  SystemdBus(const SystemdBus&) = delete;
  SystemdBus& operator=(const SystemdBus&) = delete;

  // StartTransientUnit(unit, mode, properties) and waits until systemd's job
  // for it finished; a job that ends other than "done" is an error naming its
  // result. An existing unit is ALREADY_EXISTS.
  absl::Status StartTransientUnit(const std::string& unit, const std::string& mode,
                                  const std::vector<UnitProperty>& properties,
                                  absl::Duration timeout);

  // StopUnit(unit, "replace") and waits for the job. NOT_FOUND when no such
  // unit is loaded.
  absl::Status StopUnit(const std::string& unit, absl::Duration timeout);

  // Changes properties of a loaded unit (SetUnitProperties, runtime=true:
  // kept until the unit goes away, not written to /etc).
  absl::Status SetUnitProperties(const std::string& unit,
                                 const std::vector<UnitProperty>& properties);

  // Moves processes into a running unit (AttachProcessesToUnit).
  absl::Status AttachProcesses(const std::string& unit, const std::vector<uint32_t>& pids);

  // Forgets a failed unit (ResetFailedUnit); errors are ignored by callers.
  absl::Status ResetFailed(const std::string& unit);

  // The unit's cgroup (its ControlGroup property); NOT_FOUND when the unit is
  // not loaded.
  absl::StatusOr<std::string> ControlGroup(const std::string& unit);

  // ActiveState of a loaded unit ("active", "inactive", ...); NOT_FOUND when
  // the unit is not loaded.
  absl::StatusOr<std::string> ActiveState(const std::string& unit);

  // Called from the JobRemoved signal handler, inside sd_bus_process(),
  // which runs only with mu_ held.
  void RecordFinishedJob(const std::string& job,
                         const std::string& result) ABSL_NO_THREAD_SAFETY_ANALYSIS {
    finished_jobs_[job] = result;
  }

 private:
  explicit SystemdBus(std::string address) : address_(std::move(address)) {}

  // (Re)connects, watching JobRemoved.
  absl::Status Open() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status Reopen() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool Broken() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Runs `call`; when it failed because the connection is gone, connects
  // again and runs it once more.
  template <typename T, typename F>
  T WithReconnect(F call) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (Broken()) {
      if (absl::Status st = Reopen(); !st.ok()) {
        return st;
      }
    }
    T result = call();
    if (!result.ok() && Broken()) {
      if (absl::Status st = Reopen(); !st.ok()) {
        return st;
      }
      result = call();
    }
    return result;
  }

  absl::Status WaitForJob(const std::string& job, const std::string& what, absl::Duration timeout)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<std::string> UnitPath(const std::string& unit) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<std::string> UnitStringProperty(const std::string& unit,
                                                 const std::string& interface,
                                                 const std::string& property);

  const std::string address_;
  absl::Mutex mu_;
  sd_bus* bus_ ABSL_GUARDED_BY(mu_) = nullptr;
  // job object path -> result, filled by the JobRemoved signal.
  std::map<std::string, std::string> finished_jobs_ ABSL_GUARDED_BY(mu_);
};

}  // namespace crid
