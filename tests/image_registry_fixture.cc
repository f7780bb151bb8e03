#include "tests/image_registry_fixture.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "base/errors.h"
#include "base/fs.h"
#include "image/digest.h"
#include "image/test_layers.h"

namespace crid {
namespace {

constexpr char kRegistryBinary[] = "/usr/bin/docker-registry";

absl::StatusOr<int> FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return ErrnoError(errno, "socket");
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    int err = errno;
    close(fd);
    return ErrnoError(err, "bind 127.0.0.1:0");
  }
  close(fd);
  return ntohs(addr.sin_port);
}

size_t Collect(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

size_t CollectHeader(char* data, size_t size, size_t n, void* out) {
  absl::string_view line(data, size * n);
  if (absl::StartsWithIgnoreCase(line, "location:")) {
    line.remove_prefix(9);
    *static_cast<std::string*>(out) = std::string(absl::StripAsciiWhitespace(line));
  }
  return size * n;
}

std::string LayerMediaType(LayerCompression c, bool docker) {
  if (docker) {
    return "application/vnd.docker.image.rootfs.diff.tar.gzip";
  }
  switch (c) {
    case LayerCompression::kGzip:
      return "application/vnd.oci.image.layer.v1.tar+gzip";
    case LayerCompression::kZstd:
      return "application/vnd.oci.image.layer.v1.tar+zstd";
    case LayerCompression::kNone:
      return "application/vnd.oci.image.layer.v1.tar";
  }
  return "";
}

std::string Descriptor(const std::string& media_type, const std::string& digest, uint64_t size) {
  return absl::StrCat("{\"mediaType\":\"", media_type, "\",\"digest\":\"", digest,
                      "\",\"size\":", size, "}");
}

}  // namespace

std::string BusyboxLayerTar() {
  absl::StatusOr<std::string> busybox = ReadFile("/bin/busybox");
  TarBuilder tar;
  tar.Dir("bin")
      .File("bin/busybox", busybox.ok() ? *busybox : "", 0755)
      .HardLink("bin/sh", "bin/busybox");
  tar.Dir("etc").File("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n");
  return tar.Finish();
}

std::string BusyboxToolsLayerTar() {
  absl::StatusOr<std::string> busybox = ReadFile("/bin/busybox");
  TarBuilder tar;
  tar.Dir("bin").File("bin/busybox", busybox.ok() ? *busybox : "", 0755);
  for (const char* tool :
       {"sh",    "sleep",  "echo", "cat",  "id",    "ls",       "touch", "mkdir",
        "head",  "tr",     "dd",   "wc",   "httpd", "hostname", "env",   "true",
        "false", "kill",   "ps",   "grep", "ip",    "seq",      "yes",   "printf",
        "test",  "whoami", "rm",   "nc",   "wget",  "stat",     "sed"}) {
    tar.HardLink(absl::StrCat("bin/", tool), "bin/busybox");
  }
  tar.Dir("etc")
      .File("etc/passwd",
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/sh\n"
            "app:x:1000:1000:app:/home/app:/bin/sh\n")
      .File("etc/group", "root:x:0:\nnogroup:x:65534:\napp:x:1000:\nextra:x:2000:app\n");
  tar.Dir("tmp", 01777)
      .Dir("home")
      .Dir("home/app")
      .Dir("www")
      .File("www/index.html", "hello from crid\n");
  return tar.Finish();
}

TestRegistry::TestRegistry(std::string user, std::string password)
    : user_(std::move(user)), password_(std::move(password)) {}

TestRegistry::~TestRegistry() { Stop(); }

void TestRegistry::Stop() {
  if (pid_ <= 0) {
    return;
  }
  kill(pid_, SIGTERM);
  absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (waitpid(pid_, nullptr, WNOHANG) == 0) {
    if (absl::Now() > deadline) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
      break;
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  pid_ = -1;
}

absl::Status TestRegistry::EnableTls() {
  CRID_RETURN_IF_ERROR(WriteFileAtomic(tmp_.Sub("san.ext"), "subjectAltName=IP:127.0.0.1\n", 0600));
  std::string cmd =
      absl::StrCat("cd '", tmp_.path(), "' && ",
                   "openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 "
                   "-subj '/CN=crid test CA' 2>/dev/null && ",
                   "openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr "
                   "-subj '/CN=127.0.0.1' 2>/dev/null && ",
                   "openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial "
                   "-out server.crt -days 2 -extfile san.ext 2>/dev/null");
  if (system(cmd.c_str()) != 0) {
    return absl::FailedPreconditionError("openssl could not make the test CA");
  }
  scheme_ = "https";
  return absl::OkStatus();
}

void TestRegistry::EnableTokenAuth(const std::string& realm, const std::string& cert_path,
                                   const std::string& service, const std::string& issuer) {
  token_auth_ = absl::StrCat("auth:\n  token:\n    realm: ", realm, "\n    service: ", service,
                             "\n    issuer: ", issuer, "\n    rootcertbundle: ", cert_path, "\n");
}

absl::Status TestRegistry::Start() {
  if (access(kRegistryBinary, X_OK) != 0) {
    return absl::FailedPreconditionError(
        "docker-registry is not installed (tools/install-deps.sh test)");
  }
  CRID_ASSIGN_OR_RETURN(int port, FreePort());
  host_ = absl::StrCat("127.0.0.1:", port);
  std::string config = absl::StrCat(
      "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n"
      "  filesystem:\n    rootdirectory: ",
      tmp_.Sub("data"), "\n  delete:\n    enabled: true\nhttp:\n  addr: ", host_, "\n");
  if (scheme_ == "https") {
    absl::StrAppend(&config, "  tls:\n    certificate: ", tmp_.Sub("server.crt"),
                    "\n    key: ", tmp_.Sub("server.key"), "\n");
  }
  if (!user_.empty()) {
    std::string cmd = absl::StrCat("htpasswd -Bbn '", user_, "' '", password_, "'");
    FILE* p = popen(cmd.c_str(), "r");
    if (p == nullptr) {
      return ErrnoError(errno, "popen htpasswd");
    }
    std::string line;
    char buf[512];
    while (fgets(buf, sizeof(buf), p) != nullptr) {
      line += buf;
    }
    if (pclose(p) != 0 || line.empty()) {
      return absl::FailedPreconditionError("htpasswd failed (apache2-utils installed?)");
    }
    CRID_RETURN_IF_ERROR(WriteFileAtomic(tmp_.Sub("htpasswd"), line, 0600));
    absl::StrAppend(&config,
                    "auth:\n  htpasswd:\n    realm: crid-test\n    path: ", tmp_.Sub("htpasswd"),
                    "\n");
  }
  absl::StrAppend(&config, token_auth_);
  CRID_RETURN_IF_ERROR(WriteFileAtomic(tmp_.Sub("config.yml"), config, 0600));
  std::string log = tmp_.Sub("registry.log");
  std::string config_path = tmp_.Sub("config.yml");
  pid_ = fork();
  if (pid_ < 0) {
    return ErrnoError(errno, "fork");
  }
  if (pid_ == 0) {
    int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(fd, 1);
    dup2(fd, 2);
    execl(kRegistryBinary, "docker-registry", "serve", config_path.c_str(), nullptr);
    _exit(127);
  }
  absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (absl::Now() < deadline) {
    if (waitpid(pid_, nullptr, WNOHANG) == pid_) {
      pid_ = -1;
      absl::StatusOr<std::string> text = ReadFile(log);
      return absl::InternalError(absl::StrCat("docker-registry exited: ", text.ok() ? *text : ""));
    }
    std::string body;
    absl::StatusOr<long> code =
        Http("GET", absl::StrCat(scheme_, "://", host_, "/v2/"), {}, "", &body, nullptr);
    if (code.ok() && (*code == 200 || *code == 401)) {
      return absl::OkStatus();
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
  Stop();
  return absl::DeadlineExceededError("docker-registry did not answer within 30s");
}

absl::StatusOr<long> TestRegistry::Http(const std::string& method, const std::string& url,
                                        const std::vector<std::string>& headers,
                                        const std::string& body, std::string* response_body,
                                        std::string* location) {
  CURL* curl = curl_easy_init();
  curl_slist* list = nullptr;
  for (const std::string& h : headers) {
    list = curl_slist_append(list, h.c_str());
  }
  if (!push_authorization_.empty()) {
    list = curl_slist_append(list, push_authorization_.c_str());
  }
  std::string loc;
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &Collect);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, response_body);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, &CollectHeader);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &loc);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, 60L);
  std::string ca = ca_path();
  if (scheme_ == "https") {
    curl_easy_setopt(curl, CURLOPT_CAINFO, ca.c_str());
  }
  if (method == "PUT" || method == "POST") {
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  }
  if (!user_.empty()) {
    curl_easy_setopt(curl, CURLOPT_USERNAME, user_.c_str());
    curl_easy_setopt(curl, CURLOPT_PASSWORD, password_.c_str());
  }
  CURLcode rc = curl_easy_perform(curl);
  long code = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
  curl_slist_free_all(list);
  curl_easy_cleanup(curl);
  if (rc != CURLE_OK) {
    return absl::UnavailableError(absl::StrCat(method, " ", url, ": ", curl_easy_strerror(rc)));
  }
  if (location != nullptr) {
    *location = loc;
  }
  return code;
}

absl::StatusOr<std::string> TestRegistry::PushBlob(const std::string& repo,
                                                   const std::string& data) {
  std::string digest = DigestOf(data);
  std::string body;
  std::string location;
  CRID_ASSIGN_OR_RETURN(
      long code, Http("POST", absl::StrCat(scheme_, "://", host_, "/v2/", repo, "/blobs/uploads/"),
                      {}, "", &body, &location));
  if (code != 202 || location.empty()) {
    return absl::InternalError(absl::StrCat("start upload: HTTP ", code, " ", body));
  }
  if (absl::StartsWith(location, "/")) {
    location = absl::StrCat(scheme_, "://", host_, location);
  }
  location += absl::StrContains(location, '?') ? "&" : "?";
  location += "digest=" + digest;
  body.clear();
  CRID_ASSIGN_OR_RETURN(code, Http("PUT", location, {"Content-Type: application/octet-stream"},
                                   data, &body, nullptr));
  if (code != 201) {
    return absl::InternalError(absl::StrCat("finish upload: HTTP ", code, " ", body));
  }
  return digest;
}

absl::StatusOr<std::string> TestRegistry::PushManifest(const std::string& repo,
                                                       const std::string& reference,
                                                       const std::string& media_type,
                                                       const std::string& body) {
  std::string answer;
  CRID_ASSIGN_OR_RETURN(
      long code,
      Http("PUT", absl::StrCat(scheme_, "://", host_, "/v2/", repo, "/manifests/", reference),
           {"Content-Type: " + media_type}, body, &answer, nullptr));
  if (code != 201) {
    return absl::InternalError(absl::StrCat("push manifest: HTTP ", code, " ", answer));
  }
  return DigestOf(body);
}

absl::StatusOr<PushedImage> TestRegistry::PushImage(const std::string& repo, const std::string& tag,
                                                    const TestImageSpec& spec) {
  PushedImage out;
  std::vector<std::string> layer_descriptors;
  std::vector<std::string> diff_quoted;
  for (const TestLayer& layer : spec.layers) {
    LayerCompression c = spec.docker_media_types ? LayerCompression::kGzip : layer.compression;
    std::string blob = c == LayerCompression::kGzip   ? GzipCompress(layer.tar)
                       : c == LayerCompression::kZstd ? ZstdCompress(layer.tar)
                                                      : layer.tar;
    CRID_ASSIGN_OR_RETURN(std::string digest, PushBlob(repo, blob));
    out.layer_digests.push_back(digest);
    out.diff_ids.push_back(DigestOf(layer.tar));
    diff_quoted.push_back("\"" + DigestOf(layer.tar) + "\"");
    layer_descriptors.push_back(
        Descriptor(LayerMediaType(c, spec.docker_media_types), digest, blob.size()));
  }
  std::string config =
      absl::StrCat("{\"architecture\":\"", spec.architecture, "\",",
                   spec.variant.empty() ? "" : absl::StrCat("\"variant\":\"", spec.variant, "\","),
                   "\"os\":\"linux\",\"config\":{\"User\":\"", spec.user,
                   "\",\"Env\":", spec.env_json, ",\"Cmd\":", spec.cmd_json,
                   spec.entrypoint_json.empty() ? "" : ",\"Entrypoint\":" + spec.entrypoint_json,
                   spec.working_dir.empty() ? "" : ",\"WorkingDir\":\"" + spec.working_dir + "\"",
                   spec.stop_signal.empty() ? "" : ",\"StopSignal\":\"" + spec.stop_signal + "\"",
                   ",\"Labels\":{\"marker\":\"", spec.marker,
                   "\"}},\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[",
                   absl::StrJoin(diff_quoted, ","), "]}}");
  CRID_ASSIGN_OR_RETURN(out.config_digest, PushBlob(repo, config));
  std::string config_type = spec.docker_media_types
                                ? "application/vnd.docker.container.image.v1+json"
                                : "application/vnd.oci.image.config.v1+json";
  std::string manifest_type = spec.docker_media_types
                                  ? "application/vnd.docker.distribution.manifest.v2+json"
                                  : "application/vnd.oci.image.manifest.v1+json";
  std::string manifest =
      absl::StrCat("{\"schemaVersion\":2,\"mediaType\":\"", manifest_type,
                   "\",\"config\":", Descriptor(config_type, out.config_digest, config.size()),
                   ",\"layers\":[", absl::StrJoin(layer_descriptors, ","), "]}");
  CRID_ASSIGN_OR_RETURN(
      out.manifest_digest,
      PushManifest(repo, tag.empty() ? DigestOf(manifest) : tag, manifest_type, manifest));
  out.manifest_size = manifest.size();
  return out;
}

absl::StatusOr<std::string> TestRegistry::PushIndex(
    const std::string& repo, const std::string& tag,
    const std::vector<std::pair<PushedImage, TestImageSpec>>& entries) {
  std::vector<std::string> manifests;
  manifests.reserve(entries.size());
  for (const auto& [image, spec] : entries) {
    manifests.push_back(absl::StrCat(
        "{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"",
        image.manifest_digest, "\",\"size\":", image.manifest_size,
        ",\"platform\":{\"architecture\":\"", spec.architecture, "\",\"os\":\"linux\"",
        spec.variant.empty() ? "" : absl::StrCat(",\"variant\":\"", spec.variant, "\""), "}}"));
  }
  std::string index = absl::StrCat(
      "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\","
      "\"manifests\":[",
      absl::StrJoin(manifests, ","), "]}");
  return PushManifest(repo, tag, "application/vnd.oci.image.index.v1+json", index);
}

}  // namespace crid
