// The worker pool: work runs on its threads side by side, a bounded queue
// refuses when full, and destruction finishes what was queued.
#include "base/worker_pool.h"

#include <atomic>
#include <memory>
#include <thread>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace crid {
namespace {

TEST(WorkerPool, RunsEverySubmittedWork) {
  std::atomic<int> ran{0};
  {
    WorkerPool pool(4, WorkerPool::kUnbounded);
    for (int i = 0; i < 1000; ++i) {
      ASSERT_TRUE(pool.Submit([&ran] { ran.fetch_add(1); }));
    }
  }
  EXPECT_EQ(ran.load(), 1000);
}

TEST(WorkerPool, RunsWorkOnItsThreadsSideBySide) {
  WorkerPool pool(2, 16);
  absl::Notification first_running;
  absl::Notification second_running;
  absl::Notification both_done;
  std::atomic<int> done{0};
  // Each waits for the other: they can only finish when they run at once.
  ASSERT_TRUE(pool.Submit([&] {
    first_running.Notify();
    second_running.WaitForNotificationWithTimeout(absl::Seconds(10));
    if (done.fetch_add(1) == 1) {
      both_done.Notify();
    }
  }));
  ASSERT_TRUE(pool.Submit([&] {
    second_running.Notify();
    first_running.WaitForNotificationWithTimeout(absl::Seconds(10));
    if (done.fetch_add(1) == 1) {
      both_done.Notify();
    }
  }));
  ASSERT_TRUE(both_done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_TRUE(first_running.HasBeenNotified());
  EXPECT_TRUE(second_running.HasBeenNotified());
}

TEST(WorkerPool, BoundedQueueRefusesWhenFullAndTakesWorkAgainOnceDrained) {
  absl::Notification release;
  absl::Notification busy;
  std::atomic<int> ran{0};
  WorkerPool pool(1, 2);
  // The only thread is held, so the next two wait in the queue.
  ASSERT_TRUE(pool.Submit([&] {
    busy.Notify();
    release.WaitForNotification();
  }));
  busy.WaitForNotification();
  ASSERT_TRUE(pool.Submit([&ran] { ran.fetch_add(1); }));
  ASSERT_TRUE(pool.Submit([&ran] { ran.fetch_add(1); }));
  bool refused_ran = false;
  EXPECT_FALSE(pool.Submit([&refused_ran] { refused_ran = true; }));

  release.Notify();
  absl::Notification drained;
  // Room again once the thread took the queued work.
  while (!pool.Submit([&drained] { drained.Notify(); })) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  ASSERT_TRUE(drained.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_EQ(ran.load(), 2);
  EXPECT_FALSE(refused_ran);
}

TEST(WorkerPool, UnboundedQueueNeverRefuses) {
  absl::Notification release;
  std::atomic<int> ran{0};
  {
    WorkerPool pool(1, WorkerPool::kUnbounded);
    ASSERT_TRUE(pool.Submit([&release] { release.WaitForNotification(); }));
    for (int i = 0; i < 10000; ++i) {
      ASSERT_TRUE(pool.Submit([&ran] { ran.fetch_add(1); }));
    }
    release.Notify();
  }
  EXPECT_EQ(ran.load(), 10000);
}

TEST(WorkerPool, DestructionFinishesQueuedWorkBeforeJoining) {
  absl::Notification release;
  std::atomic<int> ran{0};
  auto pool = std::make_unique<WorkerPool>(1, 64);
  ASSERT_TRUE(pool->Submit([&release] { release.WaitForNotification(); }));
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(pool->Submit([&ran] {
      absl::SleepFor(absl::Milliseconds(1));
      ran.fetch_add(1);
    }));
  }
  // Destroyed while its thread is held and ten wait in the queue.
  std::thread releaser([&release] {
    absl::SleepFor(absl::Milliseconds(50));
    release.Notify();
  });
  pool.reset();
  releaser.join();
  EXPECT_EQ(ran.load(), 10);
}

TEST(WorkerPool, WorkMaySubmitMoreWork) {
  absl::Notification inner_ran;
  WorkerPool pool(1, 4);
  ASSERT_TRUE(pool.Submit(
      [&pool, &inner_ran] { EXPECT_TRUE(pool.Submit([&inner_ran] { inner_ran.Notify(); })); }));
  EXPECT_TRUE(inner_ran.WaitForNotificationWithTimeout(absl::Seconds(10)));
}

}  // namespace
}  // namespace crid
