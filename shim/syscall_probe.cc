// Test helper for shim_test, copied into the test containers' rootfs (hence
// static): makes one raw syscall by number with zero arguments and prints
// what came back, so a seccomp filter's answer can be compared exactly.
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    long nr = std::strtol(argv[i], nullptr, 10);
    errno = 0;
    long rc = ::syscall(nr, 0, 0, 0, 0, 0, 0);
    std::printf("syscall %ld: rc=%ld errno=%d\n", nr, rc, rc < 0 ? errno : 0);
  }
  return 0;
}
