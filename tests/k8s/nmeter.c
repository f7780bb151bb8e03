/*
 * nmeter for the test busybox image: the part of busybox's nmeter applet that Kubernetes'
 * node e2e specs use, because Debian's busybox is built without the applet.
 *
 *   nmeter [-d MSEC] FORMAT
 *
 * prints FORMAT once per MSEC milliseconds (default 1000; 0: continuously; -1: once), as
 * busybox's nmeter does. FORMAT is literal text with these conversions:
 *   %t    the current time, HH:MM:SS (local time: UTC in a container without TZ)
 *   %Nt   the same with N (1-6) digits of fractional seconds: %3t gives HH:MM:SS.mmm
 *   %%    a percent sign
 * Any other conversion is refused with a message naming it. The node e2e specs run
 * `date -u +%FT$(nmeter -d0 '%3t' | head -n1)Z` for millisecond timestamps.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static void usage(void) {
  fputs("usage: nmeter [-d MSEC] FORMAT (this nmeter knows %t, %Nt and %%)\n", stderr);
  exit(1);
}

/* Checks FORMAT once, so that a bad one fails before anything is printed. */
static void check_format(const char *f) {
  for (; *f; f++) {
    if (*f != '%') continue;
    f++;
    if (*f >= '1' && *f <= '6') f++;
    if (*f != 't' && *f != '%') {
      fprintf(stderr, "nmeter: unsupported conversion %%%c (this nmeter knows %%t, %%Nt and %%%%)\n",
              *f ? *f : '?');
      exit(1);
    }
  }
}

static void print_line(const char *f) {
  struct timeval tv;
  gettimeofday(&tv, NULL);
  struct tm tm;
  localtime_r(&tv.tv_sec, &tm);
  for (; *f; f++) {
    if (*f != '%') {
      putchar(*f);
      continue;
    }
    f++;
    if (*f == '%') {
      putchar('%');
      continue;
    }
    int digits = 0;
    if (*f >= '1' && *f <= '6') digits = *f++ - '0';
    printf("%02d:%02d:%02d", tm.tm_hour, tm.tm_min, tm.tm_sec);
    if (digits > 0) {
      long frac = tv.tv_usec;
      for (int i = digits; i < 6; i++) frac /= 10;
      printf(".%0*ld", digits, frac);
    }
  }
  putchar('\n');
  if (fflush(stdout) != 0 || ferror(stdout)) exit(0); /* the reader is gone (head -n1) */
}

int main(int argc, char **argv) {
  long delay_ms = 1000;
  int opt;
  while ((opt = getopt(argc, argv, "d:")) != -1) {
    if (opt != 'd') usage();
    char *end;
    errno = 0;
    delay_ms = strtol(optarg, &end, 10);
    if (errno != 0 || *end != '\0' || delay_ms < -1) usage();
  }
  if (optind != argc - 1) usage();
  const char *format = argv[optind];
  check_format(format);
  for (;;) {
    print_line(format);
    if (delay_ms < 0) return 0;
    if (delay_ms > 0) {
      struct timespec ts = {delay_ms / 1000, (delay_ms % 1000) * 1000000L};
      while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
      }
    }
  }
}
