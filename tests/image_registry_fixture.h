// A real OCI registry for tests: Debian's docker-registry (CNCF distribution)
// started on 127.0.0.1 at a free port with its own storage and config, optionally
// behind htpasswd Basic auth, and stopped by PID. Helpers push blobs, manifests,
// images and indexes built offline in the test.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "base/temp_dir.h"

namespace crid {

enum class LayerCompression { kGzip, kZstd, kNone };

struct TestLayer {
  std::string tar;  // uncompressed
  LayerCompression compression = LayerCompression::kGzip;
};

struct TestImageSpec {
  std::vector<TestLayer> layers;
  std::string user;
  std::string architecture = "amd64";
  std::string variant;
  bool docker_media_types = false;  // Docker schema 2 instead of OCI
  std::string marker;               // goes into the config to make distinct images
  // The image config's process settings, as JSON arrays / strings.
  std::string entrypoint_json;  // e.g. ["/bin/sh","-c"]; empty: none
  std::string cmd_json = "[\"/bin/sh\"]";
  std::string env_json = "[\"PATH=/bin\"]";
  std::string working_dir;
  std::string stop_signal;
};

struct PushedImage {
  std::string config_digest;  // the image ID crid must report
  std::string manifest_digest;
  uint64_t manifest_size = 0;
  std::vector<std::string> layer_digests;
  std::vector<std::string> diff_ids;
};

class TestRegistry {
 public:
  // Basic auth is enabled when `user` is not empty.
  explicit TestRegistry(std::string user = "", std::string password = "");
  ~TestRegistry();
  TestRegistry(const TestRegistry&) = delete;
  TestRegistry& operator=(const TestRegistry&) = delete;

  // Serves HTTPS with a certificate for 127.0.0.1 from a CA made for this
  // registry (openssl CLI). Call before Start. The CA is at ca_path().
  absl::Status EnableTls();
  std::string ca_path() const { return tmp_.Sub("ca.crt"); }

  // Answers with Bearer challenges whose realm is `realm`, trusting tokens
  // signed by the key of `cert_path` (see TokenServer). Call before Start.
  void EnableTokenAuth(const std::string& realm, const std::string& cert_path,
                       const std::string& service, const std::string& issuer);
  // The Authorization header the helpers push with (token auth), e.g.
  // "Authorization: Bearer ...". Basic auth uses the constructor's user.
  void set_push_authorization(std::string header) { push_authorization_ = std::move(header); }

  absl::Status Start();
  void Stop();
  // "127.0.0.1:PORT"
  const std::string& host() const { return host_; }

  absl::StatusOr<std::string> PushBlob(const std::string& repo, const std::string& data);
  absl::StatusOr<std::string> PushManifest(const std::string& repo, const std::string& reference,
                                           const std::string& media_type, const std::string& body);
  absl::StatusOr<PushedImage> PushImage(const std::string& repo, const std::string& tag,
                                        const TestImageSpec& spec);
  // An OCI index over already pushed manifests, tagged `tag`.
  absl::StatusOr<std::string> PushIndex(
      const std::string& repo, const std::string& tag,
      const std::vector<std::pair<PushedImage, TestImageSpec>>& entries);

 private:
  absl::StatusOr<long> Http(const std::string& method, const std::string& url,
                            const std::vector<std::string>& headers, const std::string& body,
                            std::string* response_body, std::string* location);

  TempDir tmp_;
  std::string user_;
  std::string password_;
  std::string host_;
  std::string scheme_ = "http";
  std::string token_auth_;  // the "auth: token:" section of the config
  std::string push_authorization_;
  pid_t pid_ = -1;
};

// A layer holding Debian's static busybox as bin/busybox with bin/sh a hard link.
std::string BusyboxLayerTar();

// Busybox with hard links for the common tools (sleep, echo, cat, id, httpd,
// ...), /etc/passwd and /etc/group with root, nobody and "app" (uid 1000, in
// groups 1000 and 2000), /tmp and a /www/index.html for httpd.
std::string BusyboxToolsLayerTar();

}  // namespace crid
