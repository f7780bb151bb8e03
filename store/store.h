// crid's crash-safe metadata store: a key-value map grouped in buckets (pods,
// containers, images, ...), kept in an SQLite database in WAL mode. Every Commit is
// atomic and durable: after a crash the store holds exactly the transactions whose
// Commit returned OK (and possibly one in flight, whole or not at all).
//
// Why SQLite and not one file per object: subsystems need multi-record updates to
// be atomic (an image tag moving from one image to another, a pod and its
// containers removed together). With rename-per-file that needs a journal of our
// own; SQLite's WAL gives it, with a checksummed log and decades of crash testing.
#pragma once

#include <sqlite3.h>

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace crid {

class Store;

// A read-write transaction. Changes become visible (and durable) only when the
// function passed to Store::Update returns OK.
class Transaction {
 public:
  absl::Status Put(absl::string_view bucket, absl::string_view key, absl::string_view value);
  // Deleting a missing key is not an error.
  absl::Status Delete(absl::string_view bucket, absl::string_view key);
  absl::StatusOr<std::optional<std::string>> Get(absl::string_view bucket, absl::string_view key);

 private:
  friend class Store;
  explicit Transaction(Store* store) : store_(store) {}
  Store* store_;
};

class Store {
 public:
  // Opens (creating if needed) the database at `path`. The file's directory must
  // exist. Fails if the file is not a crid store or is corrupt.
  static absl::StatusOr<std::unique_ptr<Store>> Open(const std::string& path);
  ~Store();

  // Runs `fn` in one transaction; commits if it returns OK, rolls back otherwise
  // and returns its status.
  absl::Status Update(absl::FunctionRef<absl::Status(Transaction&)> fn);

  // Single-key conveniences, each its own transaction.
  absl::Status Put(absl::string_view bucket, absl::string_view key, absl::string_view value);
  absl::Status Delete(absl::string_view bucket, absl::string_view key);
  absl::StatusOr<std::optional<std::string>> Get(absl::string_view bucket, absl::string_view key);
  // Every (key, value) of a bucket, ordered by key.
  absl::StatusOr<std::vector<std::pair<std::string, std::string>>> List(absl::string_view bucket);

 private:
  friend class Transaction;
  explicit Store(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}

  // Prepared once, reused by every call; guarded by mu_ like db_.
  struct Statements {
    sqlite3_stmt* put = nullptr;
    sqlite3_stmt* get = nullptr;
    sqlite3_stmt* del = nullptr;
    sqlite3_stmt* list = nullptr;
  };

  absl::Status Prepare() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status Exec(const char* sql) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status Error(const char* what) const;
  absl::Status PutLocked(absl::string_view bucket, absl::string_view key, absl::string_view value)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status DeleteLocked(absl::string_view bucket, absl::string_view key)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<std::optional<std::string>> GetLocked(absl::string_view bucket,
                                                       absl::string_view key)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Mutex mu_;
  sqlite3* db_ ABSL_GUARDED_BY(mu_);
  Statements stmts_ ABSL_GUARDED_BY(mu_);
  const std::string path_;
};

}  // namespace crid
