#include "cri/stats_sampler.h"

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "proto/cri_api.pb.h"

namespace crid {
namespace {

namespace v1 = ::runtime::v1;
using container::ContainerRecord;
using container::RecordSnapshot;

RecordSnapshot Record(const std::string& id, ContainerRecord::State state) {
  auto r = std::make_shared<ContainerRecord>();
  r->set_id(id);
  r->set_state(state);
  return r;
}

// Stats whose CPU figure counts the measurements: each one differs from the last.
class Counter {
 public:
  ContainerStatsSampler::Measure Measure() {
    return [this](const std::vector<RecordSnapshot>& records) {
      std::vector<std::string> out;
      for (const RecordSnapshot& r : records) {
        v1::ContainerStats s;
        s.mutable_attributes()->set_id(r->id());
        s.mutable_cpu()->mutable_usage_core_nano_seconds()->set_value(++measured_);
        out.push_back(s.SerializeAsString());
      }
      return out;
    };
  }
  int measured() const { return measured_; }

 private:
  std::atomic<int> measured_{0};
};

v1::ListContainerStatsResponse Parse(const std::string& bytes) {
  v1::ListContainerStatsResponse r;
  EXPECT_TRUE(r.ParseFromString(bytes));
  return r;
}

bool WaitFor(const std::function<bool()>& done) {
  for (absl::Time end = absl::Now() + absl::Seconds(10); absl::Now() < end;) {
    if (done()) {
      return true;
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
  return done();
}

TEST(ContainerStatsSampler, FirstCallMeasuresThenAnswersFromMemory) {
  Counter counter;
  // An interval long enough that the thread does not refresh during the test.
  ContainerStatsSampler sampler(counter.Measure(), absl::Minutes(5), absl::Minutes(10));
  std::vector<RecordSnapshot> listed = {Record("a", ContainerRecord::RUNNING),
                                        Record("b", ContainerRecord::RUNNING)};
  std::string first;
  sampler.Append(listed, &first);
  EXPECT_EQ(counter.measured(), 2);
  v1::ListContainerStatsResponse r = Parse(first);
  ASSERT_EQ(r.stats_size(), 2);
  EXPECT_EQ(r.stats(0).attributes().id(), "a");
  EXPECT_EQ(r.stats(1).attributes().id(), "b");

  std::string second;
  sampler.Append(listed, &second);
  EXPECT_EQ(counter.measured(), 2);
  EXPECT_EQ(second, first);

  // One new container among known ones: only it is measured, order kept.
  listed.insert(listed.begin() + 1, Record("c", ContainerRecord::CREATED));
  std::string third;
  sampler.Append(listed, &third);
  EXPECT_EQ(counter.measured(), 3);
  r = Parse(third);
  ASSERT_EQ(r.stats_size(), 3);
  EXPECT_EQ(r.stats(0).attributes().id(), "a");
  EXPECT_EQ(r.stats(1).attributes().id(), "c");
  EXPECT_EQ(r.stats(2).attributes().id(), "b");
}

TEST(ContainerStatsSampler, ANewRecordOfAContainerIsMeasuredAtOnce) {
  Counter counter;
  ContainerStatsSampler sampler(counter.Measure(), absl::Minutes(5), absl::Minutes(10));
  std::string out;
  sampler.Append({Record("a", ContainerRecord::RUNNING)}, &out);
  // The container exited: its record was replaced, the old sample is not its.
  std::string after;
  sampler.Append({Record("a", ContainerRecord::EXITED)}, &after);
  EXPECT_EQ(counter.measured(), 2);
  EXPECT_EQ(Parse(after).stats(0).cpu().usage_core_nano_seconds().value(), 2u);
}

TEST(ContainerStatsSampler, TheThreadRefreshesWhatIsAskedFor) {
  Counter counter;
  ContainerStatsSampler sampler(counter.Measure(), absl::Milliseconds(50), absl::Minutes(10));
  std::vector<RecordSnapshot> listed = {Record("a", ContainerRecord::RUNNING)};
  std::string out;
  sampler.Append(listed, &out);
  ASSERT_TRUE(WaitFor([&] { return sampler.refreshes() >= 2; }));
  const int before = counter.measured();
  EXPECT_GE(before, 3);  // the call's measurement and two refreshes
  std::string fresh;
  sampler.Append(listed, &fresh);
  // Served from the thread's latest sample, not measured by the call (the
  // thread may have refreshed once more in between).
  const uint64_t value = Parse(fresh).stats(0).cpu().usage_core_nano_seconds().value();
  EXPECT_GE(value, static_cast<uint64_t>(before));
  EXPECT_LE(value, static_cast<uint64_t>(counter.measured()));
  EXPECT_GT(value, 1u);
}

TEST(ContainerStatsSampler, NobodyAskingStopsTheSampling) {
  Counter counter;
  ContainerStatsSampler sampler(counter.Measure(), absl::Milliseconds(20), absl::Milliseconds(200));
  std::string out;
  sampler.Append({Record("a", ContainerRecord::RUNNING)}, &out);
  EXPECT_EQ(sampler.size(), 1u);
  // Forgotten once nobody asked for keep_alive, and no more refreshes.
  ASSERT_TRUE(WaitFor([&] { return sampler.size() == 0; }));
  const size_t refreshes = sampler.refreshes();
  const int measured = counter.measured();
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_EQ(sampler.refreshes(), refreshes);
  EXPECT_EQ(counter.measured(), measured);

  // Asked again: measured on the call, then sampled again by the thread.
  sampler.Append({Record("b", ContainerRecord::RUNNING)}, &out);
  EXPECT_EQ(counter.measured(), measured + 1);
  EXPECT_TRUE(WaitFor([&] { return sampler.refreshes() > refreshes; }));
}

}  // namespace
}  // namespace crid
