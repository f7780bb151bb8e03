// Test helpers: build tar layers (including hostile ones) and compress them.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"

namespace crid {

struct TarMember {
  std::string name;
  char type = '0';
  std::string data;      // regular files
  std::string linkname;  // symlinks, hard links
  uint32_t mode = 0644;
  uint32_t uid = 0;
  uint32_t gid = 0;
  int64_t mtime = 1700000000;
  uint32_t devmajor = 0;
  uint32_t devminor = 0;
  uint64_t claimed_size = 0;  // when set, the header says this size (data is not written)
  std::vector<std::pair<std::string, std::string>> xattrs;  // as PAX SCHILY.xattr
};

class TarBuilder {
 public:
  TarBuilder& Add(const TarMember& m);
  TarBuilder& File(const std::string& name, const std::string& data, uint32_t mode = 0644);
  TarBuilder& Dir(const std::string& name, uint32_t mode = 0755);
  TarBuilder& Symlink(const std::string& name, const std::string& target);
  TarBuilder& HardLink(const std::string& name, const std::string& target);
  // The archive with its end marker. `end_marker` false leaves it truncated.
  std::string Finish(bool end_marker = true) const;

 private:
  std::string out_;
};

std::string GzipCompress(absl::string_view data);

// A compression bomb: a gzip layer holding one file `name` of `size` zero bytes,
// about a thousandth of that compressed. It is made of concatenated gzip
// members of 1 MiB of zeros each, so gigabytes cost nothing to build.
std::string GzipZeroFileLayer(const std::string& name, uint64_t size);
std::string ZstdCompress(absl::string_view data);

}  // namespace crid
