#include "base/temp_dir.h"

#include <stdio.h>
#include <stdlib.h>

#include <string>

#include "base/fs.h"

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

TempDir::~TempDir() {
  // A test that left something mounted keeps its directory rather than losing
  // files below the mount.
  (void)RemoveTree(path_);
}

}  // namespace crid
