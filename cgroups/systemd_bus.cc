#include "cgroups/systemd_bus.h"

#include <poll.h>
#include <systemd/sd-bus.h>

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/errors.h"

namespace crid {

namespace {

constexpr const char* kService = "org.freedesktop.systemd1";
constexpr const char* kObject = "/org/freedesktop/systemd1";
constexpr const char* kManager = "org.freedesktop.systemd1.Manager";

struct BusError {
  sd_bus_error error = SD_BUS_ERROR_NULL;
  ~BusError() { sd_bus_error_free(&error); }
};

struct MessageUnref {
  void operator()(sd_bus_message* m) const { sd_bus_message_unref(m); }
};
using Message = std::unique_ptr<sd_bus_message, MessageUnref>;

// A failed call as a status: systemd's own error names map to codes.
absl::Status CallError(int r, const sd_bus_error& error, absl::string_view what) {
  if (sd_bus_error_is_set(&error)) {
    absl::string_view name = error.name;
    std::string message = absl::StrCat(what, ": ", error.message ? error.message : error.name);
    if (name == "org.freedesktop.systemd1.NoSuchUnit" ||
        name == "org.freedesktop.DBus.Error.UnknownObject") {
      return absl::NotFoundError(message);
    }
    if (name == "org.freedesktop.systemd1.UnitExists") {
      return absl::AlreadyExistsError(message);
    }
    if (name == "org.freedesktop.DBus.Error.InvalidArgs") {
      return absl::InvalidArgumentError(message);
    }
    return absl::InternalError(absl::StrCat(message, " (", name, ")"));
  }
  return ErrnoError(-r, what);
}

absl::Status AppendProperty(sd_bus_message* m, const UnitProperty& p) {
  int r = sd_bus_message_open_container(m, 'r', "sv");
  if (r >= 0) {
    r = sd_bus_message_append(m, "s", p.name.c_str());
  }
  if (r >= 0) {
    switch (p.type) {
      case UnitProperty::Type::kString:
        r = sd_bus_message_append(m, "v", "s", p.string_value.c_str());
        break;
      case UnitProperty::Type::kBool:
        r = sd_bus_message_append(m, "v", "b", static_cast<int>(p.bool_value));
        break;
      case UnitProperty::Type::kUint64:
        r = sd_bus_message_append(m, "v", "t", p.uint64_value);
        break;
      case UnitProperty::Type::kPids:
        r = sd_bus_message_open_container(m, 'v', "au");
        if (r >= 0) {
          r = sd_bus_message_append_array(m, 'u', p.pids.data(), p.pids.size() * sizeof(uint32_t));
        }
        if (r >= 0) {
          r = sd_bus_message_close_container(m);
        }
        break;
      case UnitProperty::Type::kBytes:
        r = sd_bus_message_open_container(m, 'v', "ay");
        if (r >= 0) {
          r = sd_bus_message_append_array(m, 'y', p.bytes.data(), p.bytes.size());
        }
        if (r >= 0) {
          r = sd_bus_message_close_container(m);
        }
        break;
    }
  }
  if (r >= 0) {
    r = sd_bus_message_close_container(m);
  }
  if (r < 0) {
    return ErrnoError(-r, "D-Bus: append unit property ", p.name);
  }
  return absl::OkStatus();
}

}  // namespace

static int OnJobRemoved(sd_bus_message* m, void* userdata, sd_bus_error* error);

UnitProperty UnitProperty::String(std::string name, std::string value) {
  UnitProperty p;
  p.name = std::move(name);
  p.type = Type::kString;
  p.string_value = std::move(value);
  return p;
}

UnitProperty UnitProperty::Bool(std::string name, bool value) {
  UnitProperty p;
  p.name = std::move(name);
  p.type = Type::kBool;
  p.bool_value = value;
  return p;
}

UnitProperty UnitProperty::Uint64(std::string name, uint64_t value) {
  UnitProperty p;
  p.name = std::move(name);
  p.type = Type::kUint64;
  p.uint64_value = value;
  return p;
}

UnitProperty UnitProperty::Pids(std::string name, std::vector<uint32_t> pids) {
  UnitProperty p;
  p.name = std::move(name);
  p.type = Type::kPids;
  p.pids = std::move(pids);
  return p;
}

UnitProperty UnitProperty::Bytes(std::string name, std::vector<uint8_t> bytes) {
  UnitProperty p;
  p.name = std::move(name);
  p.type = Type::kBytes;
  p.bytes = std::move(bytes);
  return p;
}

absl::Status SystemdBus::Open() {
  if (bus_ != nullptr) {
    sd_bus_flush_close_unref(bus_);
    bus_ = nullptr;
  }
  finished_jobs_.clear();
  sd_bus* bus = nullptr;
  int r;
  if (address_.empty()) {
    r = sd_bus_open_system_with_description(&bus, "crid-cgroups");
    if (r < 0) {
      return ErrnoError(-r, "connect to the D-Bus system bus");
    }
  } else {
    r = sd_bus_new(&bus);
    if (r < 0) {
      return ErrnoError(-r, "sd_bus_new");
    }
    r = sd_bus_set_address(bus, address_.c_str());
    if (r >= 0) {
      r = sd_bus_start(bus);
    }
    if (r < 0) {
      sd_bus_unref(bus);
      return ErrnoError(-r, "connect to systemd at ", address_);
    }
  }
  bus_ = bus;
  r = sd_bus_match_signal(bus, nullptr, kService, kObject, kManager, "JobRemoved", &OnJobRemoved,
                          this);
  if (r < 0) {
    return ErrnoError(-r, "D-Bus: watch systemd's JobRemoved signal");
  }
  // Through dbus-daemon systemd only sends job signals to subscribers.
  BusError error;
  r = sd_bus_call_method(bus, kService, kObject, kManager, "Subscribe", &error.error, nullptr, "");
  if (r < 0) {
    return CallError(r, error.error, "systemd Subscribe");
  }
  return absl::OkStatus();
}

absl::Status SystemdBus::Reopen() {
  // systemd re-executing itself (upgrades, daemon-reexec) drops every
  // connection and takes a moment to listen again.
  absl::Time deadline = absl::Now() + absl::Seconds(10);
  for (;;) {
    absl::Status st = Open();
    if (st.ok() || absl::Now() > deadline) {
      return st;
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
}

bool SystemdBus::Broken() { return bus_ == nullptr || sd_bus_is_open(bus_) <= 0; }

absl::StatusOr<std::unique_ptr<SystemdBus>> SystemdBus::Connect(const std::string& address) {
  std::unique_ptr<SystemdBus> self(new SystemdBus(address));
  absl::MutexLock lock(&self->mu_);
  CRID_RETURN_IF_ERROR(self->Open());
  return self;
}

SystemdBus::~SystemdBus() {
  absl::MutexLock lock(&mu_);
  if (bus_ != nullptr) {
    sd_bus_flush_close_unref(bus_);
  }
}

static int OnJobRemoved(sd_bus_message* m, void* userdata, sd_bus_error* /*error*/) {
  auto* self = static_cast<SystemdBus*>(userdata);
  uint32_t id = 0;
  const char* job = nullptr;
  const char* unit = nullptr;
  const char* result = nullptr;
  if (sd_bus_message_read(m, "uoss", &id, &job, &unit, &result) < 0) {
    return 0;
  }
  self->RecordFinishedJob(job, result);
  return 0;
}

namespace {
constexpr absl::Duration kUnlockedPoll = absl::Milliseconds(20);
}  // namespace

absl::Status SystemdBus::WaitForJob(const std::string& job, const std::string& what,
                                    absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    auto it = finished_jobs_.find(job);
    if (it != finished_jobs_.end()) {
      std::string result = it->second;
      finished_jobs_.erase(it);
      if (result != "done") {
        return absl::InternalError(absl::StrCat(what, ": systemd job ended \"", result, "\""));
      }
      return absl::OkStatus();
    }
    int r = sd_bus_process(bus_, nullptr);
    if (r < 0) {
      return ErrnoError(-r, what, ": reading from systemd");
    }
    if (r > 0) {
      continue;
    }
    absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      return absl::DeadlineExceededError(absl::StrCat(
          what, ": systemd job ", job, " did not finish in ", absl::FormatDuration(timeout)));
    }
    // Waited for without the lock, so other units start and stop meanwhile.
    // Another caller may read our signal off the socket while we poll (it is
    // then in the bus's queue, not on the fd): short polls notice it soon.
    struct pollfd p = {sd_bus_get_fd(bus_), static_cast<short>(sd_bus_get_events(bus_)), 0};
    if (p.fd < 0) {
      return ErrnoError(-p.fd, what, ": waiting for systemd");
    }
    int wait_ms = static_cast<int>(std::min<int64_t>(absl::ToInt64Milliseconds(left) + 1,
                                                     absl::ToInt64Milliseconds(kUnlockedPoll)));
    mu_.Unlock();
    ::poll(&p, 1, wait_ms);
    mu_.Lock();
    if (bus_ == nullptr) {
      return absl::UnavailableError(absl::StrCat(what, ": the systemd connection was closed"));
    }
  }
}

absl::Status SystemdBus::StartTransientUnit(const std::string& unit, const std::string& mode,
                                            const std::vector<UnitProperty>& properties,
                                            absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  return WithReconnect<absl::Status>([&]() -> absl::Status {
    std::string what = absl::StrCat("start ", unit);
    sd_bus_message* raw = nullptr;
    int r = sd_bus_message_new_method_call(bus_, &raw, kService, kObject, kManager,
                                           "StartTransientUnit");
    if (r < 0) {
      return ErrnoError(-r, what);
    }
    Message m(raw);
    r = sd_bus_message_append(m.get(), "ss", unit.c_str(), mode.c_str());
    if (r >= 0) {
      r = sd_bus_message_open_container(m.get(), 'a', "(sv)");
    }
    if (r < 0) {
      return ErrnoError(-r, what);
    }
    for (const UnitProperty& p : properties) {
      CRID_RETURN_IF_ERROR(AppendProperty(m.get(), p));
    }
    r = sd_bus_message_close_container(m.get());
    if (r >= 0) {
      r = sd_bus_message_append(m.get(), "a(sa(sv))", 0);
    }
    if (r < 0) {
      return ErrnoError(-r, what);
    }
    BusError error;
    sd_bus_message* reply_raw = nullptr;
    r = sd_bus_call(bus_, m.get(), 0, &error.error, &reply_raw);
    if (r < 0) {
      return CallError(r, error.error, what);
    }
    Message reply(reply_raw);
    const char* job = nullptr;
    r = sd_bus_message_read(reply.get(), "o", &job);
    if (r < 0) {
      return ErrnoError(-r, what, ": reading the job");
    }
    return WaitForJob(job, what, timeout);
  });
}

absl::Status SystemdBus::StopUnit(const std::string& unit, absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  return WithReconnect<absl::Status>([&]() -> absl::Status {
    std::string what = absl::StrCat("stop ", unit);
    BusError error;
    sd_bus_message* reply_raw = nullptr;
    int r = sd_bus_call_method(bus_, kService, kObject, kManager, "StopUnit", &error.error,
                               &reply_raw, "ss", unit.c_str(), "replace");
    if (r < 0) {
      return CallError(r, error.error, what);
    }
    Message reply(reply_raw);
    const char* job = nullptr;
    r = sd_bus_message_read(reply.get(), "o", &job);
    if (r < 0) {
      return ErrnoError(-r, what, ": reading the job");
    }
    return WaitForJob(job, what, timeout);
  });
}

absl::Status SystemdBus::SetUnitProperties(const std::string& unit,
                                           const std::vector<UnitProperty>& properties) {
  absl::MutexLock lock(&mu_);
  return WithReconnect<absl::Status>([&]() -> absl::Status {
    std::string what = absl::StrCat("set properties of ", unit);
    sd_bus_message* raw = nullptr;
    int r = sd_bus_message_new_method_call(bus_, &raw, kService, kObject, kManager,
                                           "SetUnitProperties");
    if (r < 0) {
      return ErrnoError(-r, what);
    }
    Message m(raw);
    r = sd_bus_message_append(m.get(), "sb", unit.c_str(), 1);
    if (r >= 0) {
      r = sd_bus_message_open_container(m.get(), 'a', "(sv)");
    }
    if (r < 0) {
      return ErrnoError(-r, what);
    }
    for (const UnitProperty& p : properties) {
      CRID_RETURN_IF_ERROR(AppendProperty(m.get(), p));
    }
    r = sd_bus_message_close_container(m.get());
    if (r < 0) {
      return ErrnoError(-r, what);
    }
    BusError error;
    r = sd_bus_call(bus_, m.get(), 0, &error.error, nullptr);
    if (r < 0) {
      return CallError(r, error.error, what);
    }
    return absl::OkStatus();
  });
}

absl::Status SystemdBus::AttachProcesses(const std::string& unit,
                                         const std::vector<uint32_t>& pids) {
  absl::MutexLock lock(&mu_);
  return WithReconnect<absl::Status>([&]() -> absl::Status {
    std::string what = absl::StrCat("attach processes to ", unit);
    sd_bus_message* raw = nullptr;
    int r = sd_bus_message_new_method_call(bus_, &raw, kService, kObject, kManager,
                                           "AttachProcessesToUnit");
    if (r < 0) {
      return ErrnoError(-r, what);
    }
    Message m(raw);
    r = sd_bus_message_append(m.get(), "ss", unit.c_str(), "");
    if (r >= 0) {
      r = sd_bus_message_append_array(m.get(), 'u', pids.data(), pids.size() * sizeof(uint32_t));
    }
    if (r < 0) {
      return ErrnoError(-r, what);
    }
    BusError error;
    r = sd_bus_call(bus_, m.get(), 0, &error.error, nullptr);
    if (r < 0) {
      return CallError(r, error.error, what);
    }
    return absl::OkStatus();
  });
}

absl::Status SystemdBus::ResetFailed(const std::string& unit) {
  absl::MutexLock lock(&mu_);
  return WithReconnect<absl::Status>([&]() -> absl::Status {
    BusError error;
    int r = sd_bus_call_method(bus_, kService, kObject, kManager, "ResetFailedUnit", &error.error,
                               nullptr, "s", unit.c_str());
    if (r < 0) {
      return CallError(r, error.error, absl::StrCat("reset-failed ", unit));
    }
    return absl::OkStatus();
  });
}

absl::StatusOr<std::string> SystemdBus::UnitPath(const std::string& unit) {
  BusError error;
  sd_bus_message* reply_raw = nullptr;
  int r = sd_bus_call_method(bus_, kService, kObject, kManager, "GetUnit", &error.error, &reply_raw,
                             "s", unit.c_str());
  if (r < 0) {
    return CallError(r, error.error, absl::StrCat("get unit ", unit));
  }
  Message reply(reply_raw);
  const char* path = nullptr;
  r = sd_bus_message_read(reply.get(), "o", &path);
  if (r < 0) {
    return ErrnoError(-r, "get unit ", unit);
  }
  return std::string(path);
}

absl::StatusOr<std::string> SystemdBus::UnitStringProperty(const std::string& unit,
                                                           const std::string& interface,
                                                           const std::string& property) {
  absl::MutexLock lock(&mu_);
  return WithReconnect<absl::StatusOr<std::string>>([&]() -> absl::StatusOr<std::string> {
    CRID_ASSIGN_OR_RETURN(std::string path, UnitPath(unit));
    BusError error;
    char* value = nullptr;
    int r = sd_bus_get_property_string(bus_, kService, path.c_str(), interface.c_str(),
                                       property.c_str(), &error.error, &value);
    if (r < 0) {
      return CallError(r, error.error, absl::StrCat("read ", property, " of ", unit));
    }
    std::string out(value);
    free(value);  // NOLINT(cppcoreguidelines-no-malloc): allocated by sd-bus
    return out;
  });
}

absl::StatusOr<std::string> SystemdBus::ControlGroup(const std::string& unit) {
  std::string type = unit.substr(unit.rfind('.') + 1);
  if (type.empty() || type == unit) {
    return absl::InvalidArgumentError(absl::StrCat("\"", unit, "\" is not a unit name"));
  }
  type[0] = static_cast<char>(std::toupper(type[0]));
  return UnitStringProperty(unit, absl::StrCat("org.freedesktop.systemd1.", type), "ControlGroup");
}

absl::StatusOr<std::string> SystemdBus::ActiveState(const std::string& unit) {
  return UnitStringProperty(unit, "org.freedesktop.systemd1.Unit", "ActiveState");
}

}  // namespace crid
