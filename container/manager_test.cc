// The pure rules of the container manager: signal names, container identity,
// CRI states.
#include "container/manager.h"

#include <signal.h>

#include "gtest/gtest.h"

namespace crid::container {
namespace {

namespace v1 = ::runtime::v1;

TEST(SignalNumber, NamesNumbersAndCriEnumNames) {
  EXPECT_EQ(SignalNumber("SIGTERM"), SIGTERM);
  EXPECT_EQ(SignalNumber("TERM"), SIGTERM);
  EXPECT_EQ(SignalNumber("SIGQUIT"), SIGQUIT);
  EXPECT_EQ(SignalNumber("SIGUSR1"), SIGUSR1);
  EXPECT_EQ(SignalNumber("9"), SIGKILL);
  EXPECT_EQ(SignalNumber("SIGRTMIN"), SIGRTMIN);
  EXPECT_EQ(SignalNumber("SIGRTMIN+3"), SIGRTMIN + 3);
  EXPECT_EQ(SignalNumber("SIGRTMAX-1"), SIGRTMAX - 1);
  // CRI's Signal enum names map by name, not by enum number.
  EXPECT_EQ(SignalNumber(v1::Signal_Name(v1::SIGNAL_SIGWINCH)), SIGWINCH);
  EXPECT_EQ(SignalNumber(v1::Signal_Name(v1::SIGNAL_SIGKILL)), SIGKILL);
}

TEST(SignalNumber, UnknownIsZero) {
  EXPECT_EQ(SignalNumber(""), 0);
  EXPECT_EQ(SignalNumber("SIGBANANA"), 0);
  EXPECT_EQ(SignalNumber("0"), 0);
  EXPECT_EQ(SignalNumber("999"), 0);
  EXPECT_EQ(SignalNumber("SIGRTMIN+999"), 0);
}

TEST(ContainerKey, IncludesPodIdentityAndAttempt) {
  v1::ContainerMetadata md;
  md.set_name("web");
  md.set_attempt(2);
  v1::PodSandboxMetadata pod;
  pod.set_name("p");
  pod.set_namespace_("ns");
  pod.set_uid("u1");
  EXPECT_EQ(ContainerKey(md, pod), "web_p_ns_u1_2");
  md.set_attempt(3);
  EXPECT_NE(ContainerKey(md, pod), "web_p_ns_u1_2");
}

TEST(CriState, MapsEveryRecordState) {
  EXPECT_EQ(CriState(ContainerRecord::CREATED), v1::CONTAINER_CREATED);
  EXPECT_EQ(CriState(ContainerRecord::RUNNING), v1::CONTAINER_RUNNING);
  EXPECT_EQ(CriState(ContainerRecord::EXITED), v1::CONTAINER_EXITED);
  EXPECT_EQ(CriState(ContainerRecord::CREATING), v1::CONTAINER_UNKNOWN);
}

}  // namespace
}  // namespace crid::container
