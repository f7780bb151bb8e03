// `crid images ...`: image maintenance from the command line, on a root that no
// crid daemon is using (it takes the root's lock like the daemon does).
//   crid images import FILE   load an OCI image-layout tar or a `docker save` tar
#pragma once

#include <string>
#include <vector>

#include "proto/config.pb.h"

namespace crid {

// Runs `crid images ARGS...` and returns the process exit code.
int RunImagesCommand(const config::Config& config, const std::vector<std::string>& args);

}  // namespace crid
