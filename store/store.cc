#include "store/store.h"

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"

namespace crid {

namespace {

// Schema version recorded in SQLite's user_version; bump with a migration.
constexpr int kSchemaVersion = 1;

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

absl::StatusOr<std::unique_ptr<Store>> Store::Open(const std::string& path) {
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
  std::unique_ptr<Store> store(new Store(db, path));
  absl::MutexLock lock(&store->mu_);
  sqlite3_busy_timeout(db, 5000);
  // WAL: a commit appends to a checksummed log, so a torn write is detected and
  // dropped on recovery. synchronous=FULL fsyncs the log on every commit, so an
  // acknowledged commit survives power loss, not just a process crash.
  for (const char* pragma :
       {"PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL", "PRAGMA foreign_keys=ON"}) {
    if (absl::Status st = store->Exec(pragma); !st.ok()) {
      return st;
    }
  }
  if (absl::Status st = store->Exec(kSchema); !st.ok()) {
    return st;
  }
  if (absl::Status st = store->Exec(absl::StrCat("PRAGMA user_version=", kSchemaVersion).c_str());
      !st.ok()) {
    return st;
  }
  // Quick structural check: a corrupt file is refused at start, not mid-operation.
  if (absl::Status st = store->Exec("PRAGMA quick_check"); !st.ok()) {
    return st;
  }
  if (absl::Status st = store->Prepare(); !st.ok()) {
    return st;
  }
  return store;
}

Store::~Store() {
  absl::MutexLock lock(&mu_);
  for (sqlite3_stmt* stmt : {stmts_.put, stmts_.get, stmts_.del, stmts_.list}) {
    sqlite3_finalize(stmt);
  }
  sqlite3_close(db_);
}

absl::Status Store::Error(const char* what) const ABSL_NO_THREAD_SAFETY_ANALYSIS {
  int code = sqlite3_errcode(db_);
  absl::StatusCode status_code = absl::StatusCode::kInternal;
  if (code == SQLITE_FULL) {
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

absl::Status Store::Update(absl::FunctionRef<absl::Status(Transaction&)> fn) {
  absl::MutexLock lock(&mu_);
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
