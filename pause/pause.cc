// crid-pause: PID 1 of a pod's shared PID namespace. It holds the namespace
// open, reaps every orphan the pod's processes leave behind, and exits
// cleanly on SIGTERM or SIGINT. Static and tiny: it runs without a rootfs.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

int main() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGCHLD);
  sigprocmask(SIG_BLOCK, &set, nullptr);
  for (;;) {
    int sig = 0;
    if (sigwait(&set, &sig) != 0) {
      continue;
    }
    if (sig == SIGTERM || sig == SIGINT) {
      return 0;
    }
    // SIGCHLD: reap everything that has exited.
    for (;;) {
      pid_t pid = waitpid(-1, nullptr, WNOHANG);
      if (pid <= 0 && !(pid < 0 && errno == EINTR)) {
        break;
      }
    }
  }
}
