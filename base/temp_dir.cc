#include "base/temp_dir.h"

#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <string>

namespace crid {

TempDir::TempDir() {
  // Always under /tmp: Bazel's TEST_TMPDIR is too deep for unix socket paths
  // (108 bytes at most).
  std::string tmpl = "/tmp/crid-test-XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) {
    ::perror("mkdtemp");
    std::abort();
  }
  path_ = tmpl;
}

TempDir::~TempDir() { RemoveTree(path_); }

void RemoveTree(const std::string& path) {
  ::nftw(
      path.c_str(),
      [](const char* p, const struct stat*, int, struct FTW*) {
        ::remove(p);
        return 0;
      },
      16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

}  // namespace crid
