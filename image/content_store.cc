#include "image/content_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>

#include "absl/strings/str_cat.h"
#include "base/errors.h"
#include "base/fs.h"

namespace crid {
namespace {

std::atomic<uint64_t> g_ingest_counter{0};

absl::Status FsyncDir(const std::string& dir) {
  UniqueFd fd(open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) {
    return ErrnoError(errno, "open ", dir);
  }
  if (fsync(fd.get()) != 0) {
    return ErrnoError(errno, "fsync ", dir);
  }
  return absl::OkStatus();
}

}  // namespace

BlobWriter::~BlobWriter() {
  if (!committed_) {
    fd_.reset();
    unlink(temp_path_.c_str());
  }
}

absl::Status BlobWriter::Write(absl::string_view data) {
  if (expected_size_ >= 0 && written_ + data.size() > static_cast<uint64_t>(expected_size_)) {
    return absl::DataLossError(
        absl::StrCat("blob ", digest_, " is larger than the expected ", expected_size_, " bytes"));
  }
  hasher_.Update(data);
  const char* p = data.data();
  size_t left = data.size();
  while (left > 0) {
    ssize_t n = write(fd_.get(), p, left);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return ErrnoError(errno, "write ", temp_path_);
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  written_ += data.size();
  return absl::OkStatus();
}

absl::Status BlobWriter::Commit() {
  if (expected_size_ >= 0 && written_ != static_cast<uint64_t>(expected_size_)) {
    return absl::DataLossError(
        absl::StrCat("blob ", digest_, ": got ", written_, " bytes, expected ", expected_size_));
  }
  std::string actual = hasher_.Finish();
  if (actual != digest_) {
    return absl::DataLossError(
        absl::StrCat("blob digest mismatch: expected ", digest_, ", content is ", actual));
  }
  if (fsync(fd_.get()) != 0) {
    return ErrnoError(errno, "fsync ", temp_path_);
  }
  fd_.reset();
  if (rename(temp_path_.c_str(), final_path_.c_str()) != 0) {
    return ErrnoError(errno, "rename ", temp_path_, " to ", final_path_);
  }
  committed_ = true;
  return FsyncDir(final_path_.substr(0, final_path_.rfind('/')));
}

absl::StatusOr<std::unique_ptr<ContentStore>> ContentStore::Open(const std::string& dir) {
  CRID_RETURN_IF_ERROR(MakeDirs(dir + "/blobs/sha256", 0700));
  CRID_RETURN_IF_ERROR(MakeDirs(dir + "/ingest", 0700));
  // Whatever is in ingest belongs to a pull that died.
  if (DIR* d = opendir((dir + "/ingest").c_str()); d != nullptr) {
    while (dirent* e = readdir(d)) {
      if (e->d_name[0] != '.') {
        unlinkat(dirfd(d), e->d_name, 0);
      }
    }
    closedir(d);
  }
  return std::unique_ptr<ContentStore>(new ContentStore(dir));
}

std::string ContentStore::BlobPath(absl::string_view digest) const {
  return absl::StrCat(dir_, "/blobs/sha256/", DigestHex(digest));
}

bool ContentStore::Has(absl::string_view digest) const {
  if (!ValidateDigest(digest).ok()) {
    return false;
  }
  struct stat st {};
  return stat(BlobPath(digest).c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

absl::StatusOr<std::string> ContentStore::ReadBlob(absl::string_view digest,
                                                   uint64_t max_size) const {
  CRID_RETURN_IF_ERROR(ValidateDigest(digest));
  std::string path = BlobPath(digest);
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) {
    return ErrnoError(errno, "stat blob ", digest);
  }
  if (static_cast<uint64_t>(st.st_size) > max_size) {
    return absl::FailedPreconditionError(
        absl::StrCat("blob ", digest, " is ", st.st_size, " bytes, over the limit ", max_size));
  }
  return ReadFile(path);
}

absl::StatusOr<std::unique_ptr<BlobWriter>> ContentStore::Begin(absl::string_view digest,
                                                                int64_t size) {
  CRID_RETURN_IF_ERROR(ValidateDigest(digest));
  std::string temp = absl::StrCat(dir_, "/ingest/", DigestHex(digest), ".", getpid(), ".",
                                  g_ingest_counter.fetch_add(1));
  UniqueFd fd(open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!fd.valid()) {
    return ErrnoError(errno, "create ", temp);
  }
  return std::unique_ptr<BlobWriter>(
      new BlobWriter(temp, BlobPath(digest), std::string(digest), size, std::move(fd)));
}

absl::Status ContentStore::Put(absl::string_view digest, absl::string_view data) {
  CRID_ASSIGN_OR_RETURN(std::unique_ptr<BlobWriter> writer,
                        Begin(digest, static_cast<int64_t>(data.size())));
  CRID_RETURN_IF_ERROR(writer->Write(data));
  return writer->Commit();
}

absl::Status ContentStore::Remove(absl::string_view digest) {
  CRID_RETURN_IF_ERROR(ValidateDigest(digest));
  if (unlink(BlobPath(digest).c_str()) != 0 && errno != ENOENT) {
    return ErrnoError(errno, "unlink blob ", digest);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> ContentStore::List() const {
  std::vector<std::string> out;
  std::string path = dir_ + "/blobs/sha256";
  DIR* d = opendir(path.c_str());
  if (d == nullptr) {
    return ErrnoError(errno, "opendir ", path);
  }
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] != '.') {
      out.push_back(absl::StrCat("sha256:", e->d_name));
    }
  }
  closedir(d);
  return out;
}

}  // namespace crid
