#include "store/store.h"

#include <spdlog/spdlog.h>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "base/errors.h"
#include "base/logging.h"

namespace crid {

namespace {

// Schema version recorded in SQLite's user_version; bump with a migration.
constexpr int kSchemaVersion = 1;

std::string DirOf(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) {
    return ".";
  }
  return slash == 0 ? "/" : path.substr(0, slash);
}

constexpr char kSchema[] =
    "CREATE TABLE IF NOT EXISTS kv ("
    "  bucket TEXT NOT NULL,"
    "  key TEXT NOT NULL,"
    "  value BLOB NOT NULL,"
    "  PRIMARY KEY (bucket, key)"
    ") WITHOUT ROWID";

absl::Status BindText(sqlite3_stmt* stmt, int index, absl::string_view text) {
  if (sqlite3_bind_text(stmt, index, text.data(), static_cast<int>(text.size()),
                        SQLITE_TRANSIENT) != SQLITE_OK) {
    return absl::InternalError("sqlite bind failed");
  }
  return absl::OkStatus();
}

// SQLite returns a null pointer for an empty value.
std::string ColumnBytes(sqlite3_stmt* stmt, int column) {
  const void* data = sqlite3_column_blob(stmt, column);
  int size = sqlite3_column_bytes(stmt, column);
  if (data == nullptr || size <= 0) {
    return std::string();
  }
  return std::string(static_cast<const char*>(data), static_cast<size_t>(size));
}

}  // namespace

Store::Store(sqlite3* db, std::string path, const StoreOptions& options)
    : db_(db),
      path_(std::move(path)),
      dir_(DirOf(path_)),
      reserve_(path_ + ".reserve", options.reserve_bytes) {}

absl::StatusOr<std::unique_ptr<Store>> Store::Open(const std::string& path, StoreOptions options) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(
      path.c_str(), &db,
      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW,
      nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close(db);
    return absl::UnavailableError(absl::StrCat("open store ", path, ": ", msg));
  }
  std::unique_ptr<Store> store(new Store(db, path, options));
  absl::MutexLock lock(&store->mu_);
  sqlite3_busy_timeout(db, 5000);
  // These only set connection state; nothing touches the disk yet.
  // Exclusive locking: crid is the only user of its root (crid.lock), and in
  // this mode SQLite keeps the WAL index in memory instead of a -shm file; a
  // -shm file cannot be created on a full disk, and without it a WAL database
  // cannot even be read. synchronous=FULL fsyncs the log on every commit, so
  // an acknowledged commit survives power loss, not just a process crash.
  for (const char* pragma :
       {"PRAGMA locking_mode=EXCLUSIVE", "PRAGMA synchronous=FULL", "PRAGMA foreign_keys=ON"}) {
    if (absl::Status st = store->Exec(pragma); !st.ok()) {
      return st;
    }
  }
  if (absl::Status st = store->EnsureSchema(); !st.ok()) {
    return st;
  }
  // Quick structural check: a corrupt file is refused at start, not mid-operation.
  absl::StatusOr<std::string> check = store->QueryText("PRAGMA quick_check");
  if (!check.ok()) {
    return check.status();
  }
  if (*check != "ok") {
    return absl::DataLossError(absl::StrCat("store ", path, ": quick_check: ", *check));
  }
  if (absl::Status st = store->Prepare(); !st.ok()) {
    return st;
  }
  // Without room for the reserve crid still starts: it then refuses whatever
  // needs space (CheckRoom) and serves removals, which give space back.
  if (absl::Status st = store->reserve_.Fill(); !st.ok()) {
    spdlog::warn(
        "store {}: no space reserve, new pods, containers and pulls are refused until "
        "there is room: {}",
        path, st.message());
  }
  // A WAL left by a crash is replayed in memory on the first read and folded
  // into the database by SQLite's own checkpoints; a checkpoint that fails for
  // lack of space only leaves the WAL for later, so none is forced here.
  return store;
}

absl::Status Store::EnsureSchema() {
  absl::StatusOr<std::string> version_text = QueryText("PRAGMA user_version");
  if (!version_text.ok()) {
    return version_text.status();
  }
  int version = 0;
  if (!absl::SimpleAtoi(*version_text, &version)) {
    return absl::DataLossError(
        absl::StrCat("store ", path_, ": user_version \"", *version_text, "\" is not a number"));
  }
  if (version > kSchemaVersion) {
    return absl::FailedPreconditionError(
        absl::StrCat("store ", path_, ": schema version ", version,
                     " was written by a newer crid (this one knows ", kSchemaVersion, ")"));
  }
  absl::StatusOr<std::string> mode = QueryText("PRAGMA journal_mode");
  if (!mode.ok()) {
    return mode.status();
  }
  if (version == kSchemaVersion && *mode == "wal") {
    return absl::OkStatus();
  }
  // WAL: a commit appends to a checksummed log, so a torn write is detected
  // and dropped on recovery.
  if (*mode != "wal") {
    CRID_ASSIGN_OR_RETURN(std::string set, QueryText("PRAGMA journal_mode=WAL"));
    if (set != "wal") {
      return absl::InternalError(
          absl::StrCat("store ", path_, ": journal_mode=WAL: SQLite kept \"", set, "\""));
    }
  }
  if (version < kSchemaVersion) {
    CRID_RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
    absl::Status st = Exec(kSchema);
    if (st.ok()) {
      st = Exec(absl::StrCat("PRAGMA user_version=", kSchemaVersion).c_str());
    }
    if (st.ok()) {
      st = Exec("COMMIT");
    }
    if (!st.ok()) {
      Exec("ROLLBACK").IgnoreError();
      return st;
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> Store::QueryText(const char* sql) {
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db_, sql, -1, &stmt, nullptr) != SQLITE_OK) {
    return Error(sql);
  }
  absl::Cleanup finalize = [stmt] { sqlite3_finalize(stmt); };
  int rc = sqlite3_step(stmt);
  if (rc == SQLITE_DONE) {
    return std::string();
  }
  if (rc != SQLITE_ROW) {
    return Error(sql);
  }
  const unsigned char* text = sqlite3_column_text(stmt, 0);
  return text == nullptr ? std::string() : std::string(reinterpret_cast<const char*>(text));
}

Store::~Store() {
  absl::MutexLock lock(&mu_);
  for (sqlite3_stmt* stmt : {stmts_.put, stmts_.get, stmts_.del, stmts_.list}) {
    sqlite3_finalize(stmt);
  }
  sqlite3_close(db_);
}

absl::Status Store::Error(const char* what) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  int code = sqlite3_errcode(db_);
  absl::StatusCode status_code = absl::StatusCode::kInternal;
  if (code == SQLITE_FULL) {
    disk_full_ = true;
    status_code = absl::StatusCode::kResourceExhausted;
  } else if (code == SQLITE_BUSY || code == SQLITE_LOCKED || code == SQLITE_IOERR) {
    status_code = absl::StatusCode::kUnavailable;
  } else if (code == SQLITE_CORRUPT || code == SQLITE_NOTADB) {
    status_code = absl::StatusCode::kDataLoss;
  }
  return absl::Status(status_code,
                      absl::StrCat("store ", path_, ": ", what, ": ", sqlite3_errmsg(db_)));
}

absl::Status Store::Exec(const char* sql) {
  char* err = nullptr;
  int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &err);
  sqlite3_free(err);
  if (rc != SQLITE_OK) {
    return Error(sql);
  }
  return absl::OkStatus();
}

absl::Status Store::Prepare() {
  struct {
    sqlite3_stmt** stmt;
    const char* sql;
  } const statements[] = {
      {&stmts_.put, "INSERT OR REPLACE INTO kv (bucket, key, value) VALUES (?1, ?2, ?3)"},
      {&stmts_.get, "SELECT value FROM kv WHERE bucket = ?1 AND key = ?2"},
      {&stmts_.del, "DELETE FROM kv WHERE bucket = ?1 AND key = ?2"},
      {&stmts_.list, "SELECT key, value FROM kv WHERE bucket = ?1 ORDER BY key"},
  };
  for (const auto& s : statements) {
    if (sqlite3_prepare_v3(db_, s.sql, -1, SQLITE_PREPARE_PERSISTENT, s.stmt, nullptr) !=
        SQLITE_OK) {
      return Error(s.sql);
    }
  }
  return absl::OkStatus();
}

absl::Status Store::PutLocked(absl::string_view bucket, absl::string_view key,
                              absl::string_view value) {
  sqlite3_stmt* stmt = stmts_.put;
  absl::Cleanup reset = [stmt] {
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
  };
  if (!BindText(stmt, 1, bucket).ok() || !BindText(stmt, 2, key).ok() ||
      sqlite3_bind_blob(stmt, 3, value.data(), static_cast<int>(value.size()), SQLITE_TRANSIENT) !=
          SQLITE_OK) {
    return Error("bind put");
  }
  if (sqlite3_step(stmt) != SQLITE_DONE) {
    return Error("put");
  }
  return absl::OkStatus();
}

absl::Status Store::DeleteLocked(absl::string_view bucket, absl::string_view key) {
  sqlite3_stmt* stmt = stmts_.del;
  absl::Cleanup reset = [stmt] {
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
  };
  if (!BindText(stmt, 1, bucket).ok() || !BindText(stmt, 2, key).ok()) {
    return Error("bind delete");
  }
  if (sqlite3_step(stmt) != SQLITE_DONE) {
    return Error("delete");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::optional<std::string>> Store::GetLocked(absl::string_view bucket,
                                                            absl::string_view key) {
  sqlite3_stmt* stmt = stmts_.get;
  absl::Cleanup reset = [stmt] {
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
  };
  if (!BindText(stmt, 1, bucket).ok() || !BindText(stmt, 2, key).ok()) {
    return Error("bind get");
  }
  int rc = sqlite3_step(stmt);
  if (rc == SQLITE_DONE) {
    return std::optional<std::string>();
  }
  if (rc != SQLITE_ROW) {
    return Error("get");
  }
  return std::optional<std::string>(ColumnBytes(stmt, 0));
}

absl::Status Store::UpdateOnce(absl::FunctionRef<absl::Status(Transaction&)> fn) {
  if (absl::Status st = Exec("BEGIN IMMEDIATE"); !st.ok()) {
    return st;
  }
  Transaction txn(this);
  absl::Status st = fn(txn);
  if (st.ok()) {
    st = Exec("COMMIT");
    if (st.ok()) {
      return st;
    }
  }
  // Nothing of a failed transaction may stay visible.
  Exec("ROLLBACK").IgnoreError();
  return st;
}

absl::Status Store::Update(absl::FunctionRef<absl::Status(Transaction&)> fn) {
  absl::MutexLock lock(&mu_);
  disk_full_ = false;
  absl::Status st = UpdateOnce(fn);
  if (!st.ok() && disk_full_) {
    // The commit could not grow the WAL. Two ways to room: the reserve, and
    // a checkpoint that moves the WAL's pages into the database (in place,
    // as long as the database does not grow) so the next commit writes over
    // the WAL's already allocated start instead of appending.
    if (reserve_.Release()) {
      spdlog::warn("store {}: the disk is full; released the {} space reserve ({}) to commit",
                   path_, HumanBytes(reserve_.bytes()), reserve_.path());
    }
    if (absl::Status cp = Exec("PRAGMA wal_checkpoint(RESTART)"); !cp.ok()) {
      spdlog::warn("store {}: checkpoint on a full disk: {}", path_, cp.message());
    }
    disk_full_ = false;
    st = UpdateOnce(fn);
  }
  if (st.ok() && !reserve_.held()) {
    MaybeRefillReserve();
  }
  return st;
}

void Store::MaybeRefillReserve() {
  absl::StatusOr<FilesystemSpace> space = StatFilesystem(dir_, /*find_mount=*/false);
  if (!space.ok() || space->avail_bytes < 2 * reserve_.bytes()) {
    return;
  }
  if (absl::Status st = reserve_.Fill(); st.ok()) {
    spdlog::info("store {}: space reserve {} filled again", path_, reserve_.path());
  }
}

absl::Status Store::CheckRoom(absl::string_view what) {
  absl::MutexLock lock(&mu_);
  absl::StatusOr<FilesystemSpace> space = StatFilesystem(dir_, /*find_mount=*/false);
  if (!space.ok()) {
    return space.status();
  }
  if (!reserve_.held()) {
    MaybeRefillReserve();
  }
  constexpr uint64_t kMinInodes = 64;
  bool short_of_bytes = space->avail_bytes < reserve_.bytes() || !reserve_.held();
  bool short_of_inodes = space->inodes_limited && space->avail_inodes < kMinInodes;
  if (!short_of_bytes && !short_of_inodes) {
    return absl::OkStatus();
  }
  // The refusal names the filesystem.
  if (absl::StatusOr<FilesystemSpace> named = StatFilesystem(dir_); named.ok()) {
    space = std::move(named);
  }
  return absl::ResourceExhaustedError(
      absl::StrCat("no space to ", what, ": filesystem ", space->mount_point,
                   space->fs_type.empty() ? "" : absl::StrCat(" (", space->fs_type, ")"),
                   " holding ", dir_, " has ", HumanBytes(space->avail_bytes), " and ",
                   space->avail_inodes, " inodes free; crid keeps ", HumanBytes(reserve_.bytes()),
                   " free for removals (remove containers or images to make room)"));
}

absl::Status Store::Put(absl::string_view bucket, absl::string_view key, absl::string_view value) {
  return Update([&](Transaction& txn) { return txn.Put(bucket, key, value); });
}

absl::Status Store::Delete(absl::string_view bucket, absl::string_view key) {
  return Update([&](Transaction& txn) { return txn.Delete(bucket, key); });
}

absl::StatusOr<std::optional<std::string>> Store::Get(absl::string_view bucket,
                                                      absl::string_view key) {
  absl::MutexLock lock(&mu_);
  return GetLocked(bucket, key);
}

absl::StatusOr<std::vector<std::pair<std::string, std::string>>> Store::List(
    absl::string_view bucket) {
  absl::MutexLock lock(&mu_);
  sqlite3_stmt* stmt = stmts_.list;
  absl::Cleanup reset = [stmt] {
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
  };
  if (!BindText(stmt, 1, bucket).ok()) {
    return Error("bind list");
  }
  std::vector<std::pair<std::string, std::string>> out;
  while (true) {
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_DONE) {
      break;
    }
    if (rc != SQLITE_ROW) {
      return Error("list");
    }
    out.emplace_back(ColumnBytes(stmt, 0), ColumnBytes(stmt, 1));
  }
  return out;
}

absl::Status Transaction::Put(absl::string_view bucket, absl::string_view key,
                              absl::string_view value) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  return store_->PutLocked(bucket, key, value);
}

absl::Status Transaction::Delete(absl::string_view bucket,
                                 absl::string_view key) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  return store_->DeleteLocked(bucket, key);
}

absl::StatusOr<std::optional<std::string>> Transaction::Get(
    absl::string_view bucket, absl::string_view key) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  return store_->GetLocked(bucket, key);
}

}  // namespace crid
