// crid's crash-safe metadata store: a key-value map grouped in buckets (pods,
// containers, images, ...), kept in an SQLite database in WAL mode. Every Commit is
// atomic and durable: after a crash the store holds exactly the transactions whose
// Commit returned OK (and possibly one in flight, whole or not at all).
//
// Why SQLite and not one file per object: subsystems need multi-record updates to
// be atomic (an image tag moving from one image to another, a pod and its
// containers removed together). With rename-per-file that needs a journal of our
// own; SQLite's WAL gives it, with a checksummed log and decades of crash testing.
//
// A full disk must not stop crid: kubelet needs it then, to remove containers
// and images. So Open writes nothing unless the schema must change, the
// database is held in exclusive locking mode (its WAL index lives in memory,
// not in a -shm file that a full disk cannot grow), and a spare file next to
// the database is given up when a commit fails for lack of space.
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
#include "store/space.h"

namespace crid {

struct StoreOptions {
  // Kept allocated in `<path>.reserve`, released when a commit fails with a
  // full disk, refilled once there is twice as much free again. 0 disables.
  uint64_t reserve_bytes = 4ull << 20;
};

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
  // exist. Fails if the file is not a crid store or is corrupt. An existing
  // store of this schema is opened without writing to the disk. The process
  // holds the database exclusively until the Store is destroyed.
  static absl::StatusOr<std::unique_ptr<Store>> Open(const std::string& path,
                                                     StoreOptions options = {});
  ~Store();

  // Runs `fn` in one transaction; commits if it returns OK, rolls back otherwise
  // and returns its status. When the commit fails because the disk is full,
  // the space reserve is released and `fn` runs once more, so `fn` must only
  // work through the transaction.
  absl::Status Update(absl::FunctionRef<absl::Status(Transaction&)> fn);

  // For operations that make crid use more disk (new pods, containers,
  // pulls): RESOURCE_EXHAUSTED naming the filesystem when it has less free
  // than the reserve, or the reserve had to be used. `what` completes "no
  // space to ...".
  absl::Status CheckRoom(absl::string_view what);

  // Single-key conveniences, each its own transaction.
  absl::Status Put(absl::string_view bucket, absl::string_view key, absl::string_view value);
  absl::Status Delete(absl::string_view bucket, absl::string_view key);
  absl::StatusOr<std::optional<std::string>> Get(absl::string_view bucket, absl::string_view key);
  // Every (key, value) of a bucket, ordered by key.
  absl::StatusOr<std::vector<std::pair<std::string, std::string>>> List(absl::string_view bucket);

 private:
  friend class Transaction;
  Store(sqlite3* db, std::string path, const StoreOptions& options);

  // Prepared once, reused by every call; guarded by mu_ like db_.
  struct Statements {
    sqlite3_stmt* put = nullptr;
    sqlite3_stmt* get = nullptr;
    sqlite3_stmt* del = nullptr;
    sqlite3_stmt* list = nullptr;
  };

  absl::Status Prepare() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status Exec(const char* sql) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The first column of the first row of `sql` as text ("" when no row).
  absl::StatusOr<std::string> QueryText(const char* sql) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Creates the schema or brings it up to this version; reads only when it is current.
  absl::Status EnsureSchema() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status UpdateOnce(absl::FunctionRef<absl::Status(Transaction&)> fn)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Fills the reserve again when there is room for it and as much to spare.
  void MaybeRefillReserve() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status Error(const char* what);
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
  // Set by Error() when SQLite reported SQLITE_FULL.
  bool disk_full_ ABSL_GUARDED_BY(mu_) = false;
  const std::string path_;
  // The directory holding the database, the reserve and the WAL.
  const std::string dir_;
  SpaceReserve reserve_ ABSL_GUARDED_BY(mu_);
};

}  // namespace crid
