#include "image/images_command.h"

#include <cstdio>

#include "base/fs.h"
#include "base/lock_file.h"
#include "image/image_store.h"
#include "store/store.h"

namespace crid {

int RunImagesCommand(const config::Config& config, const std::vector<std::string>& args) {
  if (args.size() != 2 || args[0] != "import") {
    std::fprintf(stderr, "usage: crid [--root DIR] images import FILE\n");
    return 2;
  }
  if (absl::Status st = MakeDirs(config.root(), 0711); !st.ok()) {
    std::fprintf(stderr, "crid images: %s\n", std::string(st.message()).c_str());
    return 1;
  }
  absl::StatusOr<LockFile> lock = LockFile::Acquire(config.root() + "/crid.lock");
  if (!lock.ok()) {
    std::fprintf(stderr,
                 "crid images: root %s is in use (%s); stop crid first, the import writes "
                 "to the root directly\n",
                 config.root().c_str(), std::string(lock.status().message()).c_str());
    return 1;
  }
  absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(config.root() + "/crid.db");
  if (!store.ok()) {
    std::fprintf(stderr, "crid images: %s\n", std::string(store.status().message()).c_str());
    return 1;
  }
  absl::StatusOr<std::unique_ptr<ImageStore>> images =
      ImageStore::Open(config.root() + "/images", config.image(), store->get());
  if (!images.ok()) {
    std::fprintf(stderr, "crid images: %s\n", std::string(images.status().message()).c_str());
    return 1;
  }
  absl::StatusOr<std::vector<std::string>> ids = (*images)->Import(args[1]);
  if (!ids.ok()) {
    std::fprintf(stderr, "crid images import: %s\n", std::string(ids.status().message()).c_str());
    return 1;
  }
  for (const std::string& id : *ids) {
    std::printf("%s\n", id.c_str());
  }
  return 0;
}

}  // namespace crid
