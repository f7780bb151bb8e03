// Checkpoint archives of containers, in the layout CRI-O and containerd write
// for kubelet's checkpoint API and that checkpointctl reads: an uncompressed
// tar holding
//
//   config.dump      the container's identity and image (JSON, below)
//   spec.dump        the OCI config.json the container ran with
//   status.dump      the container's CRI status (JSON)
//   rootfs-diff.tar  the writable layer's added and changed files
//   deleted.files    the image's files the container deleted (JSON list)
//   checkpoint/      CRIU's process images
//   dump.log         CRIU's log of the dump
//   stats-dump       CRIU's statistics of the dump
//
// and the probe that says whether CRIU can run on this host at all.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace crid::container {

inline constexpr char kConfigDumpFile[] = "config.dump";
inline constexpr char kSpecDumpFile[] = "spec.dump";
inline constexpr char kStatusDumpFile[] = "status.dump";
inline constexpr char kRootfsDiffTar[] = "rootfs-diff.tar";
inline constexpr char kDeletedFilesFile[] = "deleted.files";
inline constexpr char kCriuImageDir[] = "checkpoint";
inline constexpr char kDumpLogFile[] = "dump.log";

// config.dump: checkpointctl's ContainerConfig (field names as it reads them).
struct CheckpointConfig {
  std::string id;
  std::string name;
  std::string rootfs_image;       // the image ID
  std::string rootfs_image_ref;   // a repo digest, else the ID
  std::string rootfs_image_name;  // the name the container was created with
  std::string runtime;            // the OCI runtime handler
  int64_t created_ns = 0;
  int64_t checkpointed_ns = 0;
};

std::string ConfigDumpJson(const CheckpointConfig& config);
absl::StatusOr<CheckpointConfig> ParseConfigDump(const std::string& text);

// Whether CRIU can checkpoint here: the criu binary (on PATH, /usr/sbin or
// /sbin, as the OCI runtime finds it) exists and `criu check` passes. When it
// cannot, FAILED_PRECONDITION with CRIU's own reason. A success is
// remembered; a failure is checked again next time (criu may be installed
// meanwhile).
absl::Status CheckCriu();

// The lines of a CRIU log that say what failed ("Error (...)"), at most the
// last `max_lines`, joined by "; ". Empty when there are none.
std::string CriuLogErrors(const std::string& log_text, size_t max_lines = 3);

// Writes `dir`/rootfs-diff.tar (every file, directory and link of the overlay
// upper directory `upper`, relative to it) and `dir`/deleted.files (the paths
// of its whiteouts: files of the image the container deleted).
absl::Status WriteRootfsDiff(const std::string& upper, const std::string& dir);

// Applies what WriteRootfsDiff wrote in `dir` to `upper`, a new container's
// empty upper directory (before its overlay is mounted): the diff is unpacked
// as a hostile layer is (image/unpack.h) and each deleted file becomes an
// overlay whiteout.
absl::Status ApplyRootfsDiff(const std::string& dir, const std::string& upper);

// Tars the entries of `dir` (names relative to it, no "./") into `location`:
// written to a temporary file beside it and renamed, so `location` is either
// the whole archive or untouched.
absl::Status WriteCheckpointArchive(const std::string& dir, const std::string& location);

// Unpacks a checkpoint archive into `dest`, an existing empty directory.
// Archives come from anywhere: unpacked as a hostile layer is, and refused
// when they hold anything but regular files and directories, or lack
// config.dump or spec.dump.
absl::Status UnpackCheckpointArchive(const std::string& archive, const std::string& dest);

// Whether a CRI image name is a checkpoint archive to restore from, as CRI-O
// takes it: an absolute path of an existing regular file (image references
// never start with "/").
bool IsCheckpointArchive(const std::string& path);

}  // namespace crid::container
