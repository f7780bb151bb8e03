// Fuzz target: a layer blob (gzip, zstd or plain tar: headers, PAX records, GNU
// long names, links, whiteouts) unpacked into a fresh directory, with small
// limits. Anything that appears or changes beside that directory is a finding:
// the unpacker must never write outside the layer.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "base/fs.h"
#include "image/unpack.h"

namespace {

// On tmpfs when there is one: each input creates and removes a tree, which on
// a disk costs a hundred times more.
std::string MakeWorkDir() {
  const char* base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : std::getenv("TEST_TMPDIR");
  std::string tmpl = std::string(base != nullptr ? base : "/tmp") + "/crid-tar-fuzz.XXXXXX";
  if (mkdtemp(tmpl.data()) == nullptr) {
    abort();
  }
  return tmpl;
}

// Names in `dir` other than the layer's, and the decoy's size and mode.
std::string Snapshot(const std::string& dir) {
  std::string out;
  if (DIR* d = opendir(dir.c_str()); d != nullptr) {
    while (dirent* e = readdir(d)) {
      out += e->d_name;
      out += '\n';
    }
    closedir(d);
  }
  struct stat st {};
  if (lstat((dir + "/decoy/file").c_str(), &st) == 0) {
    out += std::to_string(st.st_size) + " " + std::to_string(st.st_mode);
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string work = MakeWorkDir();
  static const int cleanup = atexit([] { (void)crid::RemoveTree(work); });
  (void)cleanup;
  static const bool ready = [] {
    return crid::MakeDirs(work + "/decoy", 0755).ok() &&
           crid::WriteFileAtomic(work + "/decoy/file", "decoy", 0644).ok();
  }();
  static const std::string before = Snapshot(work) + "|" + Snapshot(work + "/decoy");
  if (!ready) {
    abort();
  }
  std::string blob = work + "/blob";
  std::string dest = work + "/layer";
  // Not WriteFileAtomic: its fsync would cost more than the unpack.
  int fd = open(blob.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0 || (size > 0 && write(fd, data, size) != static_cast<ssize_t>(size)) ||
      close(fd) != 0 || mkdir(dest.c_str(), 0755) != 0) {
    abort();
  }
  crid::UnpackLimits limits;
  limits.max_bytes = 8 << 20;
  limits.max_entries = 4096;
  limits.max_ratio = 100;
  limits.ratio_floor_bytes = 1 << 20;
  crid::UnpackLayer(blob, dest, limits).IgnoreError();
  if (!crid::RemoveTree(dest).ok() || unlink(blob.c_str()) != 0) {
    abort();
  }
  if (Snapshot(work) + "|" + Snapshot(work + "/decoy") != before) {
    __builtin_trap();  // the layer wrote outside its directory
  }
  return 0;
}
