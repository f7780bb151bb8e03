// The store keeps what was committed, drops what was not, and survives a writer
// killed with SIGKILL in the middle of its commits.
#include "store/store.h"

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <random>
#include <string>

#include "absl/strings/str_cat.h"
#include "base/temp_dir.h"
#include "gtest/gtest.h"

namespace crid {
namespace {

std::unique_ptr<Store> OpenOrDie(const std::string& path) {
  absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(path);
  EXPECT_TRUE(store.ok()) << store.status();
  return store.ok() ? std::move(*store) : nullptr;
}

TEST(Store, PutGetDeleteWithinBuckets) {
  TempDir tmp;
  auto store = OpenOrDie(tmp.Sub("db"));
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Put("pods", "p1", "one").ok());
  ASSERT_TRUE(store->Put("containers", "p1", "other bucket").ok());
  EXPECT_EQ(**store->Get("pods", "p1"), "one");
  EXPECT_EQ(**store->Get("containers", "p1"), "other bucket");
  ASSERT_TRUE(store->Put("pods", "p1", "replaced").ok());
  EXPECT_EQ(**store->Get("pods", "p1"), "replaced");
  ASSERT_TRUE(store->Delete("pods", "p1").ok());
  EXPECT_FALSE(store->Get("pods", "p1")->has_value());
  EXPECT_TRUE(store->Delete("pods", "missing").ok());
  EXPECT_EQ(**store->Get("containers", "p1"), "other bucket");
}

TEST(Store, KeepsBinaryAndEmptyValues) {
  TempDir tmp;
  auto store = OpenOrDie(tmp.Sub("db"));
  std::string binary("a\0b\xff", 4);
  ASSERT_TRUE(store->Put("b", "bin", binary).ok());
  ASSERT_TRUE(store->Put("b", "empty", "").ok());
  EXPECT_EQ(**store->Get("b", "bin"), binary);
  EXPECT_EQ(**store->Get("b", "empty"), "");
}

TEST(Store, ListIsOrderedAndScopedToBucket) {
  TempDir tmp;
  auto store = OpenOrDie(tmp.Sub("db"));
  ASSERT_TRUE(store->Put("images", "b", "2").ok());
  ASSERT_TRUE(store->Put("images", "a", "1").ok());
  ASSERT_TRUE(store->Put("pods", "c", "3").ok());
  auto list = store->List("images");
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0], std::make_pair(std::string("a"), std::string("1")));
  EXPECT_EQ((*list)[1], std::make_pair(std::string("b"), std::string("2")));
  EXPECT_TRUE(store->List("none")->empty());
}

TEST(Store, FailedUpdateLeavesNothingBehind) {
  TempDir tmp;
  auto store = OpenOrDie(tmp.Sub("db"));
  ASSERT_TRUE(store->Put("tags", "busybox", "image-1").ok());
  absl::Status st = store->Update([](Transaction& txn) {
    if (absl::Status s = txn.Put("tags", "busybox", "image-2"); !s.ok()) {
      return s;
    }
    if (absl::Status s = txn.Put("images", "image-2", "config"); !s.ok()) {
      return s;
    }
    return absl::AbortedError("pull failed");
  });
  EXPECT_EQ(st.code(), absl::StatusCode::kAborted);
  EXPECT_EQ(**store->Get("tags", "busybox"), "image-1");
  EXPECT_FALSE(store->Get("images", "image-2")->has_value());
}

TEST(Store, UpdateSeesItsOwnWrites) {
  TempDir tmp;
  auto store = OpenOrDie(tmp.Sub("db"));
  ASSERT_TRUE(store
                  ->Update([](Transaction& txn) {
                    EXPECT_TRUE(txn.Put("b", "k", "v").ok());
                    auto got = txn.Get("b", "k");
                    EXPECT_TRUE(got.ok() && got->has_value() && **got == "v");
                    return txn.Delete("b", "k");
                  })
                  .ok());
  EXPECT_FALSE(store->Get("b", "k")->has_value());
}

TEST(Store, SurvivesReopen) {
  TempDir tmp;
  {
    auto store = OpenOrDie(tmp.Sub("db"));
    ASSERT_TRUE(store->Put("runtime", "pod_cidr", "10.88.0.0/16").ok());
  }
  auto store = OpenOrDie(tmp.Sub("db"));
  EXPECT_EQ(**store->Get("runtime", "pod_cidr"), "10.88.0.0/16");
}

TEST(Store, RefusesAFileThatIsNotAStore) {
  TempDir tmp;
  std::ofstream(tmp.Sub("db")) << std::string(8192, 'g');
  absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(tmp.Sub("db"));
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.status().message().find(tmp.Sub("db")), std::string_view::npos) << store.status();
}

constexpr int kKeysPerCommit = 10;

// Child process: commits forever, each transaction setting every key and the
// counter to the same round number, and reports each acknowledged round.
[[noreturn]] void WriterLoop(const std::string& path, int ack_fd) {
  absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(path);
  if (!store.ok()) {
    std::_Exit(2);
  }
  // Continue from what earlier writers committed, so rounds only grow.
  auto previous = (*store)->Get("meta", "counter");
  if (!previous.ok()) {
    std::_Exit(5);
  }
  int start = previous->has_value() ? std::atoi((*previous)->c_str()) : 0;
  for (int round = start + 1;; ++round) {
    std::string value = absl::StrCat(round);
    absl::Status st = (*store)->Update([&](Transaction& txn) {
      for (int k = 0; k < kKeysPerCommit; ++k) {
        if (absl::Status s = txn.Put("data", absl::StrCat("key", k), value); !s.ok()) {
          return s;
        }
      }
      return txn.Put("meta", "counter", value);
    });
    if (!st.ok()) {
      std::_Exit(3);
    }
    if (::write(ack_fd, &round, sizeof(round)) != sizeof(round)) {
      std::_Exit(4);
    }
  }
}

TEST(Store, WriterKilledMidCommitLosesNoAcknowledgedCommitAndTearsNone) {
  TempDir tmp;
  std::string path = tmp.Sub("db");
  std::mt19937 rng(12345);
  int last_acked_overall = 0;
  for (int trial = 0; trial < 12; ++trial) {
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::close(fds[0]);
      WriterLoop(path, fds[1]);
    }
    ::close(fds[1]);
    // Wait for the writer's first acknowledged commit (however slow a loaded
    // machine makes it), let it commit for a random while more, then kill it
    // wherever it is.
    int last_acked = 0;
    bool acked_any = false;
    struct pollfd first = {fds[0], POLLIN, 0};
    if (::poll(&first, 1, 30'000) == 1 &&
        ::read(fds[0], &last_acked, sizeof(last_acked)) == sizeof(last_acked)) {
      acked_any = true;
    }
    ::usleep(std::uniform_int_distribution<int>(0, 40000)(rng));
    ::kill(pid, SIGKILL);
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFSIGNALED(status)) << "writer exited early with " << WEXITSTATUS(status);
    int round;
    while (::read(fds[0], &round, sizeof(round)) == sizeof(round)) {
      last_acked = round;
      acked_any = true;
    }
    ::close(fds[0]);

    auto store = OpenOrDie(path);
    ASSERT_NE(store, nullptr);
    auto counter = store->Get("meta", "counter");
    ASSERT_TRUE(counter.ok()) << counter.status();
    if (!acked_any && !counter->has_value()) {
      continue;  // killed before the first commit of a fresh store
    }
    ASSERT_TRUE(counter->has_value());
    int committed = std::atoi((*counter)->c_str());
    // Every acknowledged commit is there; at most the one in flight went further.
    if (acked_any) {
      EXPECT_GE(committed, last_acked);
      EXPECT_LE(committed, last_acked + 1);
    }
    auto data = store->List("data");
    ASSERT_TRUE(data.ok());
    ASSERT_EQ(data->size(), static_cast<size_t>(kKeysPerCommit));
    for (const auto& [key, value] : *data) {
      EXPECT_EQ(value, **counter) << key << " torn in trial " << trial;
    }
    last_acked_overall = std::max(last_acked_overall, last_acked);
  }
  // The test means nothing if the writer never got a commit through.
  EXPECT_GT(last_acked_overall, 0);
}

}  // namespace
}  // namespace crid
