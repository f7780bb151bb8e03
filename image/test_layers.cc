#include "image/test_layers.h"

#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace crid {
namespace {

// Writes `value` as len-1 zero-padded octal digits and a NUL, keeping the
// leading digits of a value too long for the field (as snprintf truncates).
// Formatted into a buffer that always fits first: -O2's format-truncation check
// refuses a snprintf that may truncate.
void PutOctal(char* field, size_t len, uint64_t value) {
  char digits[32];
  int n = std::snprintf(digits, sizeof(digits), "%0*llo", static_cast<int>(len - 1),
                        static_cast<unsigned long long>(value));
  size_t keep = std::min<size_t>(static_cast<size_t>(n), len - 1);
  std::memcpy(field, digits, keep);
  field[keep] = '\0';
}

std::string Header(const std::string& name, char type, uint64_t size, const TarMember& m,
                   const std::string& linkname) {
  std::string block(512, '\0');
  std::memcpy(block.data(), name.data(), std::min<size_t>(name.size(), 100));
  PutOctal(&block[100], 8, m.mode);
  PutOctal(&block[108], 8, m.uid);
  PutOctal(&block[116], 8, m.gid);
  if (size > 077777777777ULL) {
    // base-256 for sizes over 8 GiB
    block[124] = static_cast<char>(0x80);
    for (int i = 0; i < 8; ++i) {
      block[135 - i] = static_cast<char>((size >> (8 * i)) & 0xff);
    }
  } else {
    PutOctal(&block[124], 12, size);
  }
  PutOctal(&block[136], 12, static_cast<uint64_t>(m.mtime));
  block[156] = type;
  std::memcpy(&block[157], linkname.data(), std::min<size_t>(linkname.size(), 100));
  std::memcpy(&block[257],
              "ustar\0"
              "00",
              8);
  PutOctal(&block[329], 8, m.devmajor);
  PutOctal(&block[337], 8, m.devminor);
  std::memset(&block[148], ' ', 8);
  unsigned sum = 0;
  for (char c : block) {
    sum += static_cast<unsigned char>(c);
  }
  PutOctal(&block[148], 7, sum);  // six digits and a NUL, then the space below
  block[155] = ' ';
  return block;
}

void Pad(std::string* out) { out->resize((out->size() + 511) / 512 * 512, '\0'); }

std::string PaxRecord(const std::string& key, const std::string& value) {
  std::string body = absl::StrCat(" ", key, "=", value, "\n");
  size_t len = body.size() + 1;
  while (absl::StrCat(len).size() + body.size() != len) {
    ++len;
  }
  return absl::StrCat(len, body);
}

}  // namespace

TarBuilder& TarBuilder::Add(const TarMember& m) {
  std::string pax;
  for (const auto& [k, v] : m.xattrs) {
    pax += PaxRecord("SCHILY.xattr." + k, v);
  }
  if (m.name.size() > 100) {
    pax += PaxRecord("path", m.name);
  }
  if (m.linkname.size() > 100) {
    pax += PaxRecord("linkpath", m.linkname);
  }
  if (!pax.empty()) {
    TarMember p;
    out_ += Header("PaxHeader", 'x', pax.size(), p, "");
    out_ += pax;
    Pad(&out_);
  }
  uint64_t size = m.claimed_size != 0 ? m.claimed_size : m.type == '0' ? m.data.size() : 0;
  out_ += Header(m.name, m.type, size, m, m.linkname);
  if (m.type == '0' && m.claimed_size == 0) {
    out_ += m.data;
    Pad(&out_);
  }
  return *this;
}

TarBuilder& TarBuilder::File(const std::string& name, const std::string& data, uint32_t mode) {
  TarMember m;
  m.name = name;
  m.data = data;
  m.mode = mode;
  return Add(m);
}

TarBuilder& TarBuilder::Dir(const std::string& name, uint32_t mode) {
  TarMember m;
  m.name = name;
  m.type = '5';
  m.mode = mode;
  return Add(m);
}

TarBuilder& TarBuilder::Symlink(const std::string& name, const std::string& target) {
  TarMember m;
  m.name = name;
  m.type = '2';
  m.linkname = target;
  m.mode = 0777;
  return Add(m);
}

TarBuilder& TarBuilder::HardLink(const std::string& name, const std::string& target) {
  TarMember m;
  m.name = name;
  m.type = '1';
  m.linkname = target;
  return Add(m);
}

std::string TarBuilder::Finish(bool end_marker) const {
  return end_marker ? out_ + std::string(1024, '\0') : out_;
}

std::string GzipCompress(absl::string_view data) {
  z_stream z{};
  deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&z, data.size()) + 64, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

std::string GzipZeroFileLayer(const std::string& name, uint64_t size) {
  TarMember m;
  m.name = name;
  m.claimed_size = size;
  std::string out = GzipCompress(TarBuilder().Add(m).Finish(/*end_marker=*/false));
  // The data, its padding and the end marker are all zeros.
  uint64_t zeros = (size + 511) / 512 * 512 + 1024;
  constexpr uint64_t kMember = uint64_t{1} << 20;
  const std::string full = GzipCompress(std::string(kMember, '\0'));
  out.reserve(out.size() + (zeros / kMember + 1) * full.size());
  for (; zeros >= kMember; zeros -= kMember) {
    out += full;
  }
  if (zeros > 0) {
    out += GzipCompress(std::string(zeros, '\0'));
  }
  return out;
}

std::string ZstdCompress(absl::string_view data) {
  std::string out(ZSTD_compressBound(data.size()), '\0');
  size_t n = ZSTD_compress(out.data(), out.size(), data.data(), data.size(), 3);
  out.resize(ZSTD_isError(n) ? 0 : n);
  return out;
}

}  // namespace crid
