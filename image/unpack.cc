#include "image/unpack.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/errors.h"
#include "base/unique_fd.h"
#include "image/digest.h"

namespace crid {
namespace {

constexpr size_t kBlock = 512;
constexpr size_t kChunk = size_t{256} << 10;
constexpr uint64_t kMaxMetaEntry = 1 << 20;  // PAX headers, GNU long names
constexpr char kWhiteoutPrefix[] = ".wh.";
constexpr char kOpaqueWhiteout[] = ".wh..wh..opq";

// A byte stream: Read returns 0 at the end.
class Source {
 public:
  virtual ~Source() = default;
  virtual absl::StatusOr<size_t> Read(char* buf, size_t n) = 0;
};

class FdSource final : public Source {
 public:
  explicit FdSource(int fd) : fd_(fd) {}
  absl::StatusOr<size_t> Read(char* buf, size_t n) override {
    while (true) {
      ssize_t r = read(fd_, buf, n);
      if (r >= 0) {
        return static_cast<size_t>(r);
      }
      if (errno != EINTR) {
        return ErrnoError(errno, "read layer blob");
      }
    }
  }

 private:
  int fd_;
};

class GzipSource final : public Source {
 public:
  explicit GzipSource(Source* in) : in_(in), buf_(kChunk) {
    std::memset(&z_, 0, sizeof(z_));
    ok_ = inflateInit2(&z_, 15 + 32) == Z_OK;
  }
  ~GzipSource() override { inflateEnd(&z_); }
  absl::StatusOr<size_t> Read(char* out, size_t n) override {
    if (!ok_) {
      return absl::InternalError("inflateInit2 failed");
    }
    z_.next_out = reinterpret_cast<Bytef*>(out);
    z_.avail_out = static_cast<uInt>(n);
    while (z_.avail_out == n && !done_) {
      if (z_.avail_in == 0 && !eof_) {
        CRID_ASSIGN_OR_RETURN(size_t got, in_->Read(buf_.data(), buf_.size()));
        eof_ = got == 0;
        z_.next_in = reinterpret_cast<Bytef*>(buf_.data());
        z_.avail_in = static_cast<uInt>(got);
      }
      if (z_.avail_in == 0 && eof_) {
        if (in_member_) {
          return absl::DataLossError("gzip layer is truncated");
        }
        done_ = true;
        break;
      }
      in_member_ = true;
      int rc = inflate(&z_, Z_NO_FLUSH);
      if (rc == Z_STREAM_END) {
        in_member_ = false;
        inflateReset(&z_);  // another gzip member may follow
      } else if (rc != Z_OK && rc != Z_BUF_ERROR) {
        return absl::DataLossError(
            absl::StrCat("gzip layer is corrupt: ", z_.msg != nullptr ? z_.msg : "inflate error"));
      }
    }
    return n - z_.avail_out;
  }

 private:
  Source* in_;
  std::vector<char> buf_;
  z_stream z_;
  bool ok_ = false;
  bool eof_ = false;
  bool done_ = false;
  bool in_member_ = false;
};

class ZstdSource final : public Source {
 public:
  explicit ZstdSource(Source* in) : in_(in), buf_(ZSTD_DStreamInSize()), ds_(ZSTD_createDStream()) {
    ZSTD_initDStream(ds_);
  }
  ~ZstdSource() override { ZSTD_freeDStream(ds_); }
  absl::StatusOr<size_t> Read(char* out, size_t n) override {
    ZSTD_outBuffer ob{out, n, 0};
    while (ob.pos == 0 && !done_) {
      if (ib_.pos == ib_.size && !eof_) {
        CRID_ASSIGN_OR_RETURN(size_t got, in_->Read(buf_.data(), buf_.size()));
        eof_ = got == 0;
        ib_ = ZSTD_inBuffer{buf_.data(), got, 0};
      }
      if (ib_.pos == ib_.size && eof_) {
        if (last_ != 0) {
          return absl::DataLossError("zstd layer is truncated");
        }
        done_ = true;
        break;
      }
      last_ = ZSTD_decompressStream(ds_, &ob, &ib_);
      if (ZSTD_isError(last_)) {
        return absl::DataLossError(
            absl::StrCat("zstd layer is corrupt: ", ZSTD_getErrorName(last_)));
      }
    }
    return ob.pos;
  }

 private:
  Source* in_;
  std::vector<char> buf_;
  ZSTD_DStream* ds_;
  ZSTD_inBuffer ib_{nullptr, 0, 0};
  size_t last_ = 0;
  bool eof_ = false;
  bool done_ = false;
};

// How many uncompressed bytes a layer may have, and which setting says so.
struct ByteLimit {
  uint64_t bytes = 0;
  std::string why;
};

ByteLimit EffectiveLimit(const UnpackLimits& limits, uint64_t compressed) {
  ByteLimit out{limits.max_bytes, "image.max_layer_bytes"};
  if (limits.max_ratio == 0) {
    return out;
  }
  uint64_t by_ratio =
      compressed > UINT64_MAX / limits.max_ratio ? UINT64_MAX : compressed * limits.max_ratio;
  uint64_t allowed = std::max(by_ratio, limits.ratio_floor_bytes);
  if (allowed >= out.bytes) {
    return out;
  }
  out.bytes = allowed;
  if (by_ratio >= limits.ratio_floor_bytes) {
    out.why = absl::StrCat(limits.max_ratio, " times its ", compressed,
                           " compressed bytes, image.max_layer_expansion_ratio");
  } else {
    out.why = absl::StrCat("image.max_layer_ratio_floor_bytes, as ", limits.max_ratio,
                           " times its ", compressed, " compressed bytes is less");
  }
  return out;
}

absl::Status LimitError(const ByteLimit& limit) {
  return absl::ResourceExhaustedError(absl::StrCat("layer expands past its limit of ", limit.bytes,
                                                   " uncompressed bytes (", limit.why, ")"));
}

// The uncompressed stream: hashed (DiffID), counted and bounded.
class TarStream {
 public:
  TarStream(Source* src, ByteLimit limit) : src_(src), limit_(std::move(limit)) {}

  // Reads exactly n bytes; a short stream is an error.
  absl::Status ReadFull(char* buf, size_t n) {
    size_t got = 0;
    while (got < n) {
      CRID_ASSIGN_OR_RETURN(size_t r, ReadSome(buf + got, n - got));
      if (r == 0) {
        return absl::DataLossError("layer tar stream ends in the middle of an entry");
      }
      got += r;
    }
    return absl::OkStatus();
  }
  absl::StatusOr<size_t> ReadSome(char* buf, size_t n) {
    CRID_ASSIGN_OR_RETURN(size_t r, src_->Read(buf, n));
    total_ += r;
    if (total_ > limit_.bytes) {
      return LimitError(limit_);
    }
    hash_.Update(buf, r);
    return r;
  }
  absl::Status Skip(uint64_t n) {
    std::vector<char> buf(std::min<uint64_t>(n, kChunk));
    while (n > 0) {
      size_t want = std::min<uint64_t>(n, buf.size());
      CRID_RETURN_IF_ERROR(ReadFull(buf.data(), want));
      n -= want;
    }
    return absl::OkStatus();
  }
  // Reads to the end (the DiffID covers padding after the archive's end marker).
  absl::Status Drain() {
    std::vector<char> buf(kChunk);
    while (true) {
      CRID_ASSIGN_OR_RETURN(size_t r, ReadSome(buf.data(), buf.size()));
      if (r == 0) {
        return absl::OkStatus();
      }
    }
  }
  uint64_t total() const { return total_; }
  const ByteLimit& limit() const { return limit_; }
  std::string Finish() { return hash_.Finish(); }

 private:
  Source* src_;
  ByteLimit limit_;
  uint64_t total_ = 0;
  Sha256 hash_;
};

struct Entry {
  std::string name;
  std::string linkname;
  char type = '0';
  uint64_t size = 0;
  uint32_t mode = 0;
  int64_t uid = 0;
  int64_t gid = 0;
  int64_t mtime = 0;
  int64_t mtime_nsec = 0;
  uint32_t devmajor = 0;
  uint32_t devminor = 0;
  std::vector<std::pair<std::string, std::string>> xattrs;
};

absl::StatusOr<uint64_t> ParseNumber(const char* field, size_t len, absl::string_view what) {
  const auto* u = reinterpret_cast<const unsigned char*>(field);
  if (u[0] & 0x80) {  // base-256 (GNU): big-endian, first byte's top bit is the flag
    if (u[0] & 0x40) {
      return absl::InvalidArgumentError(absl::StrCat("negative tar ", what));
    }
    uint64_t v = u[0] & 0x3f;
    for (size_t i = 1; i < len; ++i) {
      if (v >> 56) {
        return absl::InvalidArgumentError(absl::StrCat("tar ", what, " out of range"));
      }
      v = (v << 8) | u[i];
    }
    return v;
  }
  uint64_t v = 0;
  size_t i = 0;
  while (i < len && (field[i] == ' ' || field[i] == '\0')) {
    ++i;
  }
  for (; i < len && field[i] >= '0' && field[i] <= '7'; ++i) {
    if (v >> 60) {
      return absl::InvalidArgumentError(absl::StrCat("tar ", what, " out of range"));
    }
    v = v * 8 + static_cast<uint64_t>(field[i] - '0');
  }
  for (; i < len; ++i) {
    if (field[i] != ' ' && field[i] != '\0') {
      return absl::InvalidArgumentError(absl::StrCat("invalid tar ", what, " field"));
    }
  }
  return v;
}

std::string CString(const char* field, size_t len) {
  return std::string(field, strnlen(field, len));
}

// Applies PAX records ("LEN key=value\n") to `e`.
absl::Status ApplyPax(absl::string_view data, Entry* e, bool* has_size) {
  while (!data.empty()) {
    size_t space = data.find(' ');
    size_t len = 0;
    if (space == absl::string_view::npos || !absl::SimpleAtoi(data.substr(0, space), &len) ||
        len <= space + 1 || len > data.size() || data[len - 1] != '\n') {
      return absl::InvalidArgumentError("malformed PAX header record");
    }
    absl::string_view record = data.substr(space + 1, len - space - 2);
    data.remove_prefix(len);
    size_t eq = record.find('=');
    if (eq == absl::string_view::npos) {
      return absl::InvalidArgumentError("malformed PAX header record");
    }
    absl::string_view key = record.substr(0, eq);
    absl::string_view value = record.substr(eq + 1);
    if (key == "path") {
      e->name = std::string(value);
    } else if (key == "linkpath") {
      e->linkname = std::string(value);
    } else if (key == "size") {
      if (!absl::SimpleAtoi(value, &e->size)) {
        return absl::InvalidArgumentError("invalid PAX size");
      }
      *has_size = true;
    } else if (key == "uid") {
      if (!absl::SimpleAtoi(value, &e->uid) || e->uid < 0) {
        return absl::InvalidArgumentError("invalid PAX uid");
      }
    } else if (key == "gid") {
      if (!absl::SimpleAtoi(value, &e->gid) || e->gid < 0) {
        return absl::InvalidArgumentError("invalid PAX gid");
      }
    } else if (key == "mtime") {
      absl::string_view whole = value.substr(0, value.find('.'));
      if (!absl::SimpleAtoi(whole, &e->mtime)) {
        return absl::InvalidArgumentError("invalid PAX mtime");
      }
      e->mtime_nsec = 0;
      if (size_t dot = value.find('.'); dot != absl::string_view::npos) {
        std::string frac(value.substr(dot + 1, 9));
        frac.resize(9, '0');
        (void)absl::SimpleAtoi(frac, &e->mtime_nsec);
      }
    } else if (absl::StartsWith(key, "SCHILY.xattr.")) {
      e->xattrs.emplace_back(std::string(key.substr(13)), std::string(value));
    }
  }
  return absl::OkStatus();
}

// Splits a member name into safe components. Absolute names and ".." are refused.
absl::StatusOr<std::vector<std::string>> SplitSafe(const std::string& name) {
  if (absl::StartsWith(name, "/")) {
    return absl::PermissionDeniedError(
        absl::StrCat("layer entry \"", name, "\" has an absolute path"));
  }
  std::vector<std::string> out;
  for (absl::string_view c : absl::StrSplit(name, '/', absl::SkipEmpty())) {
    if (c == ".") {
      continue;
    }
    if (c == "..") {
      return absl::PermissionDeniedError(
          absl::StrCat("layer entry \"", name, "\" leaves the layer through \"..\""));
    }
    out.emplace_back(c);
  }
  if (name.size() > 4096) {
    return absl::InvalidArgumentError("layer entry name longer than 4096 bytes");
  }
  return out;
}

absl::Status RemoveAllAt(int parent_fd, const std::string& name);

// Empties directory `name` under `parent_fd`. Names are read and removed in
// batches, so memory stays bounded however many entries the directory has (a
// layer may fill one and then replace it).
absl::Status RemoveDirContentsAt(int parent_fd, const std::string& name) {
  constexpr size_t kBatch = 256;
  UniqueFd fd(openat(parent_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd.valid()) {
    return ErrnoError(errno, "open ", name);
  }
  DIR* d = fdopendir(fd.get());
  if (d == nullptr) {
    return ErrnoError(errno, "fdopendir ", name);
  }
  fd.release();
  std::vector<std::string> names;
  while (true) {
    names.clear();
    rewinddir(d);
    while (names.size() < kBatch) {
      dirent* e = readdir(d);
      if (e == nullptr) {
        break;
      }
      if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) {
        names.emplace_back(e->d_name);
      }
    }
    if (names.empty()) {
      break;
    }
    for (const std::string& n : names) {
      // Stop at the first failure: what is left would be read again forever.
      if (absl::Status st = RemoveAllAt(dirfd(d), n); !st.ok()) {
        closedir(d);
        return st;
      }
    }
  }
  closedir(d);
  return absl::OkStatus();
}

absl::Status RemoveAllAt(int parent_fd, const std::string& name) {
  if (unlinkat(parent_fd, name.c_str(), 0) == 0 || errno == ENOENT) {
    return absl::OkStatus();
  }
  if (errno != EISDIR && errno != EPERM) {
    return ErrnoError(errno, "unlink ", name);
  }
  CRID_RETURN_IF_ERROR(RemoveDirContentsAt(parent_fd, name));
  if (unlinkat(parent_fd, name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT) {
    return ErrnoError(errno, "rmdir ", name);
  }
  return absl::OkStatus();
}

class LayerWriter {
 public:
  LayerWriter(int root, TarStream* stream) : root_(root), stream_(stream) {}

  absl::Status Apply(const Entry& e) {
    CRID_ASSIGN_OR_RETURN(std::vector<std::string> parts, SplitSafe(e.name));
    if (parts.empty()) {
      return stream_->Skip(e.size);  // the layer root itself: keep ours
    }
    std::string base = parts.back();
    parts.pop_back();
    CRID_RETURN_IF_ERROR(EnterDirs(parts));
    CRID_ASSIGN_OR_RETURN(UniqueFd parent, OpenDir(parts, /*create=*/true, e.name));
    if (absl::StartsWith(base, kWhiteoutPrefix)) {
      CRID_RETURN_IF_ERROR(stream_->Skip(e.size));
      return ApplyWhiteout(parent.get(), base, e.name);
    }
    switch (e.type) {
      case '0':
      case '\0':
      case '7':
        return WriteFile(parent.get(), base, e);
      case '5':
        CRID_RETURN_IF_ERROR(stream_->Skip(e.size));
        return MakeDir(parent.get(), base, e);
      case '2':
        CRID_RETURN_IF_ERROR(stream_->Skip(e.size));
        return MakeSymlink(parent.get(), base, e);
      case '1':
        CRID_RETURN_IF_ERROR(stream_->Skip(e.size));
        return MakeHardLink(parent.get(), base, e);
      case '3':
      case '4':
      case '6':
        CRID_RETURN_IF_ERROR(stream_->Skip(e.size));
        return MakeNode(parent.get(), base, e);
      default:
        return absl::InvalidArgumentError(absl::StrCat("layer entry \"", e.name,
                                                       "\" has unsupported tar type '",
                                                       std::string(1, e.type), "'"));
    }
  }

  // Sets the times of the directories still open.
  absl::Status FinishDirectories() { return LeaveDirs(0); }

 private:
  // A directory on the path of the entries being written, with the modification
  // time to give it once the stream leaves it (creating children changes it).
  struct OpenDirFrame {
    std::string name;
    bool has_mtime = false;
    timespec mtime{};
  };

  // Makes the open-directory stack the path `parts`: directories the stream
  // leaves get their times now, so memory follows the layer's depth rather than
  // its number of directories. A directory entered again (tar order is free)
  // keeps the time it has, which is the one it was given when it was left.
  absl::Status EnterDirs(const std::vector<std::string>& parts) {
    size_t common = 0;
    while (common < open_dirs_.size() && common < parts.size() &&
           open_dirs_[common].name == parts[common]) {
      ++common;
    }
    CRID_RETURN_IF_ERROR(LeaveDirs(common));
    if (common == parts.size()) {
      return absl::OkStatus();
    }
    std::vector<std::string> prefix(parts.begin(), parts.begin() + static_cast<long>(common));
    absl::StatusOr<UniqueFd> fd = OpenDir(prefix, /*create=*/false, "directory");
    for (size_t i = common; i < parts.size(); ++i) {
      OpenDirFrame frame{parts[i]};
      if (fd.ok()) {
        // Missing, a symlink or not a directory: OpenDir creates or refuses it later.
        int next =
            openat(fd->get(), parts[i].c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        struct stat st {};
        if (next >= 0 && fstat(next, &st) == 0) {
          frame.has_mtime = true;
          frame.mtime = st.st_mtim;
        }
        fd = next >= 0 ? absl::StatusOr<UniqueFd>(UniqueFd(next))
                       : absl::StatusOr<UniqueFd>(absl::NotFoundError(parts[i]));
      }
      open_dirs_.push_back(std::move(frame));
    }
    return absl::OkStatus();
  }

  // Gives the open directories below the first `keep` their times and closes
  // them, in one walk from the root (a child's futimens leaves its parent's
  // times alone, so the order does not matter).
  absl::Status LeaveDirs(size_t keep) {
    if (open_dirs_.size() <= keep) {
      return absl::OkStatus();
    }
    UniqueFd fd(fcntl(root_, F_DUPFD_CLOEXEC, 0));
    if (!fd.valid()) {
      return ErrnoError(errno, "dup layer root");
    }
    absl::Status status;
    for (size_t i = 0; i < open_dirs_.size(); ++i) {
      const OpenDirFrame& frame = open_dirs_[i];
      int next =
          openat(fd.get(), frame.name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (next < 0) {
        break;  // removed or replaced since (a whiteout, a file of the same name)
      }
      fd.reset(next);
      if (i >= keep && frame.has_mtime) {
        timespec ts[2] = {frame.mtime, frame.mtime};
        if (futimens(fd.get(), ts) != 0) {
          status = ErrnoError(errno, "futimens directory ", frame.name);
          break;
        }
      }
    }
    open_dirs_.resize(keep);
    return status;
  }

  // Opens the directory `parts` below the root, one component at a time, never
  // following a symlink. Missing directories are created (0755) when `create`.
  absl::StatusOr<UniqueFd> OpenDir(const std::vector<std::string>& parts, bool create,
                                   const std::string& for_name) {
    UniqueFd fd(fcntl(root_, F_DUPFD_CLOEXEC, 0));
    if (!fd.valid()) {
      return ErrnoError(errno, "dup layer root");
    }
    for (const std::string& c : parts) {
      int next = openat(fd.get(), c.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (next < 0 && errno == ENOENT && create) {
        if (mkdirat(fd.get(), c.c_str(), 0755) != 0 && errno != EEXIST) {
          return ErrnoError(errno, "mkdir for layer entry ", for_name);
        }
        next = openat(fd.get(), c.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      }
      if (next < 0) {
        if (errno == ELOOP || errno == ENOTDIR) {
          return absl::PermissionDeniedError(
              absl::StrCat("layer entry \"", for_name, "\" goes through \"", c,
                           "\", which is a symlink or not a directory"));
        }
        return ErrnoError(errno, "open directory for layer entry ", for_name);
      }
      fd.reset(next);
    }
    return fd;
  }

  absl::Status ApplyWhiteout(int parent, const std::string& base, const std::string& name) {
    if (base == kOpaqueWhiteout) {
      if (fsetxattr(parent, "trusted.overlay.opaque", "y", 1, 0) != 0) {
        return ErrnoError(errno, "set trusted.overlay.opaque for ", name);
      }
      return absl::OkStatus();
    }
    if (absl::StartsWith(base, ".wh..wh.")) {
      return absl::OkStatus();  // other AUFS metadata: nothing to do
    }
    std::string target = base.substr(sizeof(kWhiteoutPrefix) - 1);
    if (target.empty() || target == "." || target == "..") {
      return absl::PermissionDeniedError(absl::StrCat("invalid whiteout \"", name, "\""));
    }
    CRID_RETURN_IF_ERROR(RemoveAllAt(parent, target));
    if (mknodat(parent, target.c_str(), S_IFCHR | 0, makedev(0, 0)) != 0) {
      return ErrnoError(errno, "mknod whiteout for ", name);
    }
    if (fchownat(parent, target.c_str(), 0, 0, AT_SYMLINK_NOFOLLOW) != 0) {
      return ErrnoError(errno, "chown whiteout for ", name);
    }
    return absl::OkStatus();
  }

  // Replaces whatever `base` is, unless both are directories.
  absl::Status Clear(int parent, const std::string& base) { return RemoveAllAt(parent, base); }

  absl::Status SetXattrs(int fd, const Entry& e) {
    for (const auto& [key, value] : e.xattrs) {
      // Overlay's own attributes must come from crid's whiteout handling only.
      if (absl::StartsWith(key, "trusted.overlay.")) {
        continue;
      }
      if (fsetxattr(fd, key.c_str(), value.data(), value.size(), 0) != 0) {
        if (errno == ENOTSUP) {
          continue;
        }
        return ErrnoError(errno, "setxattr ", key, " on ", e.name);
      }
    }
    return absl::OkStatus();
  }

  absl::Status SetOwnerMode(int fd, const Entry& e) {
    if (fchown(fd, static_cast<uid_t>(e.uid), static_cast<gid_t>(e.gid)) != 0) {
      return ErrnoError(errno, "chown ", e.name);
    }
    if (fchmod(fd, e.mode & 07777) != 0) {
      return ErrnoError(errno, "chmod ", e.name);
    }
    return absl::OkStatus();
  }

  timespec Mtime(const Entry& e) const {
    timespec ts{};
    ts.tv_sec = e.mtime;
    ts.tv_nsec = e.mtime_nsec;
    return ts;
  }

  absl::Status WriteFile(int parent, const std::string& base, const Entry& e) {
    CRID_RETURN_IF_ERROR(Clear(parent, base));
    UniqueFd fd(
        openat(parent, base.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!fd.valid()) {
      return ErrnoError(errno, "create ", e.name);
    }
    std::vector<char> buf(std::min<uint64_t>(e.size, kChunk));
    uint64_t left = e.size;
    while (left > 0) {
      size_t want = std::min<uint64_t>(left, buf.size());
      CRID_RETURN_IF_ERROR(stream_->ReadFull(buf.data(), want));
      size_t off = 0;
      while (off < want) {
        ssize_t w = write(fd.get(), buf.data() + off, want - off);
        if (w < 0) {
          if (errno == EINTR) {
            continue;
          }
          return ErrnoError(errno, "write ", e.name);
        }
        off += static_cast<size_t>(w);
      }
      left -= want;
    }
    CRID_RETURN_IF_ERROR(SetOwnerMode(fd.get(), e));
    CRID_RETURN_IF_ERROR(SetXattrs(fd.get(), e));
    timespec ts[2] = {Mtime(e), Mtime(e)};
    if (futimens(fd.get(), ts) != 0) {
      return ErrnoError(errno, "futimens ", e.name);
    }
    return absl::OkStatus();
  }

  absl::Status MakeDir(int parent, const std::string& base, const Entry& e) {
    struct stat st {};
    if (fstatat(parent, base.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISDIR(st.st_mode)) {
      CRID_RETURN_IF_ERROR(Clear(parent, base));
    }
    if (mkdirat(parent, base.c_str(), 0700) != 0 && errno != EEXIST) {
      return ErrnoError(errno, "mkdir ", e.name);
    }
    UniqueFd fd(openat(parent, base.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd.valid()) {
      return ErrnoError(errno, "open ", e.name);
    }
    CRID_RETURN_IF_ERROR(SetOwnerMode(fd.get(), e));
    CRID_RETURN_IF_ERROR(SetXattrs(fd.get(), e));
    // Open until the stream leaves it; its children are likely next.
    open_dirs_.push_back(OpenDirFrame{base, true, Mtime(e)});
    return absl::OkStatus();
  }

  absl::Status MakeSymlink(int parent, const std::string& base, const Entry& e) {
    if (e.linkname.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("symlink \"", e.name, "\" has no target"));
    }
    CRID_RETURN_IF_ERROR(Clear(parent, base));
    // The target is only text here; it is resolved inside the container later.
    if (symlinkat(e.linkname.c_str(), parent, base.c_str()) != 0) {
      return ErrnoError(errno, "symlink ", e.name);
    }
    return SetLinkMeta(parent, base, e);
  }

  absl::Status SetLinkMeta(int parent, const std::string& base, const Entry& e) {
    if (fchownat(parent, base.c_str(), static_cast<uid_t>(e.uid), static_cast<gid_t>(e.gid),
                 AT_SYMLINK_NOFOLLOW) != 0) {
      return ErrnoError(errno, "chown ", e.name);
    }
    timespec ts[2] = {Mtime(e), Mtime(e)};
    if (utimensat(parent, base.c_str(), ts, AT_SYMLINK_NOFOLLOW) != 0) {
      return ErrnoError(errno, "utimensat ", e.name);
    }
    return absl::OkStatus();
  }

  absl::Status MakeHardLink(int parent, const std::string& base, const Entry& e) {
    absl::StatusOr<std::vector<std::string>> target = SplitSafe(e.linkname);
    if (!target.ok() || target->empty()) {
      return absl::PermissionDeniedError(absl::StrCat("hard link \"", e.name, "\" -> \"",
                                                      e.linkname, "\" points outside the layer"));
    }
    std::string target_base = target->back();
    target->pop_back();
    absl::StatusOr<UniqueFd> target_dir = OpenDir(*target, /*create=*/false, e.linkname);
    struct stat st {};
    if (!target_dir.ok() ||
        fstatat(target_dir->get(), target_base.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      return absl::PermissionDeniedError(absl::StrCat(
          "hard link \"", e.name, "\" -> \"", e.linkname, "\": target is not in this layer"));
    }
    if (S_ISDIR(st.st_mode)) {
      return absl::PermissionDeniedError(
          absl::StrCat("hard link \"", e.name, "\" -> \"", e.linkname, "\" is a directory"));
    }
    if (e.linkname == e.name) {
      return absl::OkStatus();
    }
    CRID_RETURN_IF_ERROR(Clear(parent, base));
    // No AT_SYMLINK_FOLLOW: a symlink target is linked itself, never followed.
    if (linkat(target_dir->get(), target_base.c_str(), parent, base.c_str(), 0) != 0) {
      return ErrnoError(errno, "link ", e.name, " to ", e.linkname);
    }
    return absl::OkStatus();
  }

  absl::Status MakeNode(int parent, const std::string& base, const Entry& e) {
    CRID_RETURN_IF_ERROR(Clear(parent, base));
    mode_t type = e.type == '3' ? S_IFCHR : e.type == '4' ? S_IFBLK : S_IFIFO;
    if (mknodat(parent, base.c_str(), type | (e.mode & 07777), makedev(e.devmajor, e.devminor)) !=
        0) {
      return ErrnoError(errno, "mknod ", e.name);
    }
    CRID_RETURN_IF_ERROR(SetLinkMeta(parent, base, e));
    if (fchmodat(parent, base.c_str(), e.mode & 07777, 0) != 0) {
      return ErrnoError(errno, "chmod ", e.name);
    }
    return absl::OkStatus();
  }

  int root_;
  TarStream* stream_;
  std::vector<OpenDirFrame> open_dirs_;  // the path from the root, at most the layer's depth
};

absl::Status UnpackTar(TarStream* stream, int root, const UnpackLimits& limits,
                       UnpackResult* result) {
  LayerWriter writer(root, stream);
  Entry pending;  // fields from PAX / GNU long-name headers for the next entry
  bool has_pending = false;
  bool pax_size = false;
  char block[kBlock];
  while (true) {
    CRID_RETURN_IF_ERROR(stream->ReadFull(block, kBlock));
    bool zero = std::all_of(block, block + kBlock, [](char c) { return c == 0; });
    if (zero) {
      break;  // end of archive (the second zero block and padding are drained)
    }
    uint64_t sum = 0;
    for (size_t i = 0; i < kBlock; ++i) {
      sum += (i >= 148 && i < 156) ? ' ' : static_cast<unsigned char>(block[i]);
    }
    CRID_ASSIGN_OR_RETURN(uint64_t want_sum, ParseNumber(block + 148, 8, "checksum"));
    if (sum != want_sum) {
      return absl::DataLossError("layer tar header checksum mismatch");
    }
    if (++result->entries > limits.max_entries) {
      return absl::ResourceExhaustedError(
          absl::StrCat("layer has more than ", limits.max_entries, " entries"));
    }
    Entry e = has_pending ? pending : Entry();
    bool size_from_pax = has_pending && pax_size;
    has_pending = false;
    pax_size = false;
    pending = Entry();
    e.type = block[156];
    CRID_ASSIGN_OR_RETURN(uint64_t size, ParseNumber(block + 124, 12, "size"));
    if (!size_from_pax) {
      e.size = size;
    }
    // A header claiming more than the limit leaves is refused before any of it is written.
    const ByteLimit& limit = stream->limit();
    if (e.size > limit.bytes - std::min(limit.bytes, stream->total())) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "layer entry claims ", e.size, " bytes, which takes the layer past its limit of ",
          limit.bytes, " uncompressed bytes (", limit.why, ")"));
    }
    uint64_t padded = (e.size + kBlock - 1) / kBlock * kBlock;
    if (e.type == 'x' || e.type == 'g' || e.type == 'L' || e.type == 'K') {
      if (e.size > kMaxMetaEntry) {
        return absl::ResourceExhaustedError("tar metadata header larger than 1 MiB");
      }
      std::string data(padded, '\0');
      CRID_RETURN_IF_ERROR(stream->ReadFull(data.data(), padded));
      data.resize(e.size);
      pending = e;
      pending.type = '0';
      has_pending = true;
      if (e.type == 'x') {
        pending = Entry();
        pending.name = e.name;  // keep earlier long names
        pending.linkname = e.linkname;
        CRID_RETURN_IF_ERROR(ApplyPax(data, &pending, &pax_size));
      } else if (e.type == 'g') {
        has_pending = false;  // global headers carry nothing crid uses
      } else if (e.type == 'L') {
        pending = e;
        pending.name = CString(data.data(), data.size());
      } else {
        pending = e;
        pending.linkname = CString(data.data(), data.size());
      }
      continue;
    }
    bool posix = std::memcmp(block + 257, "ustar\0", 6) == 0;
    if (e.name.empty()) {
      e.name = CString(block, 100);
      std::string prefix = posix ? CString(block + 345, 155) : "";
      if (!prefix.empty()) {
        e.name = prefix + "/" + e.name;
      }
    }
    if (e.linkname.empty()) {
      e.linkname = CString(block + 157, 100);
    }
    CRID_ASSIGN_OR_RETURN(uint64_t mode, ParseNumber(block + 100, 8, "mode"));
    e.mode = static_cast<uint32_t>(mode & 07777);
    if (e.uid == 0) {
      CRID_ASSIGN_OR_RETURN(uint64_t uid, ParseNumber(block + 108, 8, "uid"));
      e.uid = static_cast<int64_t>(uid);
    }
    if (e.gid == 0) {
      CRID_ASSIGN_OR_RETURN(uint64_t gid, ParseNumber(block + 116, 8, "gid"));
      e.gid = static_cast<int64_t>(gid);
    }
    if (e.mtime == 0) {
      CRID_ASSIGN_OR_RETURN(uint64_t mtime, ParseNumber(block + 136, 12, "mtime"));
      e.mtime = static_cast<int64_t>(mtime);
    }
    if (e.uid > 0xfffffffe || e.gid > 0xfffffffe) {
      return absl::InvalidArgumentError(absl::StrCat("layer entry \"", e.name, "\": bad owner"));
    }
    if (e.type == '3' || e.type == '4') {
      CRID_ASSIGN_OR_RETURN(uint64_t major, ParseNumber(block + 329, 8, "devmajor"));
      CRID_ASSIGN_OR_RETURN(uint64_t minor, ParseNumber(block + 337, 8, "devminor"));
      e.devmajor = static_cast<uint32_t>(major);
      e.devminor = static_cast<uint32_t>(minor);
    }
    CRID_RETURN_IF_ERROR(writer.Apply(e));
    CRID_RETURN_IF_ERROR(stream->Skip(padded - e.size));
  }
  CRID_RETURN_IF_ERROR(writer.FinishDirectories());
  return stream->Drain();
}

}  // namespace

absl::StatusOr<UnpackResult> UnpackLayer(const std::string& blob_path, const std::string& dest,
                                         const UnpackLimits& limits) {
  UniqueFd blob(open(blob_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!blob.valid()) {
    return ErrnoError(errno, "open ", blob_path);
  }
  UniqueFd root(open(dest.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!root.valid()) {
    return ErrnoError(errno, "open ", dest);
  }
  struct stat blob_stat {};
  if (fstat(blob.get(), &blob_stat) != 0) {
    return ErrnoError(errno, "stat ", blob_path);
  }
  unsigned char magic[4] = {0, 0, 0, 0};
  ssize_t got = pread(blob.get(), magic, sizeof(magic), 0);
  if (got < 0) {
    return ErrnoError(errno, "read ", blob_path);
  }
  FdSource file(blob.get());
  std::unique_ptr<Source> decompressor;
  Source* source = &file;
  if (got >= 2 && magic[0] == 0x1f && magic[1] == 0x8b) {
    decompressor = std::make_unique<GzipSource>(&file);
    source = decompressor.get();
  } else if (got == 4 && magic[0] == 0x28 && magic[1] == 0xb5 && magic[2] == 0x2f &&
             magic[3] == 0xfd) {
    decompressor = std::make_unique<ZstdSource>(&file);
    source = decompressor.get();
  }
  TarStream stream(source, EffectiveLimit(limits, static_cast<uint64_t>(blob_stat.st_size)));
  UnpackResult result;
  CRID_RETURN_IF_ERROR(UnpackTar(&stream, root.get(), limits, &result));
  result.bytes = stream.total();
  result.diff_id = stream.Finish();
  return result;
}

}  // namespace crid
