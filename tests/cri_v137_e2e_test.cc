// The parts of the CRI that kubelet 1.37 uses beyond the List/Create basics,
// through crid's socket with real runc, overlayfs and cgroups: image volumes
// (Mount.image), the Stream* twins of the List RPCs, and in-place pod resize
// (UpdatePodSandboxResources).
#include "absl/strings/ascii.h"
#include "image/test_layers.h"
#include "tests/container_e2e_fixture.h"

namespace crid {
namespace container_e2e {
namespace {

using ::testing::HasSubstr;
using ::testing::UnorderedElementsAreArray;

class CriV137Test : public ContainerEndToEndTest {
 protected:
  // An image of its own for the volume (a layer no container's rootfs uses),
  // pulled through crid; returns PullImage's image_ref.
  std::string PullDataImage() {
    TestImageSpec spec;
    spec.layers.push_back({TarBuilder()
                               .Dir("etc")
                               .File("etc/passwd", "data:x:7:7\n")
                               .Dir("share")
                               .File("share/greeting", "hello from an image volume\n")
                               .Symlink("share/up", "../../../..")
                               .Finish(),
                           LayerCompression::kGzip});
    spec.layers.push_back(
        {TarBuilder().Dir("share").File("share/second", "second layer\n").Finish(),
         LayerCompression::kGzip});
    EXPECT_TRUE(registry_->PushImage("test/data", "v1", spec).ok());
    grpc::ClientContext ctx;
    v1::PullImageRequest pull;
    pull.mutable_image()->set_image(registry_->host() + "/test/data:v1");
    v1::PullImageResponse resp;
    grpc::Status st = images_->PullImage(&ctx, pull, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return resp.image_ref();
  }

  static v1::Mount ImageMount(const std::string& path, const std::string& image,
                              const std::string& sub_path = "") {
    v1::Mount m;
    m.set_container_path(path);
    m.set_readonly(true);
    m.mutable_image()->set_image(image);
    m.set_image_sub_path(sub_path);
    return m;
  }

  grpc::Status RemoveImage(const std::string& image) {
    grpc::ClientContext ctx;
    v1::RemoveImageRequest req;
    req.mutable_image()->set_image(image);
    v1::RemoveImageResponse resp;
    return images_->RemoveImage(&ctx, req, &resp);
  }

  // Every item of a Stream* RPC's batches, with the number of batches.
  template <typename Response, typename Request, typename Method, typename Field>
  std::vector<std::string> StreamIds(Method method, const Request& request, Field ids_of,
                                     int* batches = nullptr) {
    grpc::ClientContext ctx;
    auto reader = ((*stub_).*method)(&ctx, request);
    Response batch;
    std::vector<std::string> ids;
    int n = 0;
    while (reader->Read(&batch)) {
      ++n;
      for (std::string& id : ids_of(batch)) {
        ids.push_back(std::move(id));
      }
    }
    grpc::Status st = reader->Finish();
    EXPECT_TRUE(st.ok()) << st.error_message();
    if (batches != nullptr) {
      *batches = n;
    }
    return ids;
  }
};

TEST_F(CriV137Test, ImageVolumeIsMountedReadOnlyAndReported) {
  const std::string data = PullDataImage();
  ASSERT_FALSE(data.empty());
  std::string pod = RunPod(PodConfig("volumes"));
  v1::ContainerConfig config = ShellContainer("reader", "sleep 1000");
  *config.add_mounts() = ImageMount("/mnt/image-volume", data);
  *config.add_mounts() = ImageMount("/mnt/share", data, "share");
  // A link that climbs out is resolved inside the image: its root.
  *config.add_mounts() = ImageMount("/mnt/up", data, "share/up");
  v1::Mount noexec = ImageMount("/mnt/noexec", image_id_, "bin");
  noexec.add_mount_options("noexec");
  *config.add_mounts() = noexec;
  std::string id = RunContainer(pod, config);

  EXPECT_EQ(ExecOut(id, "cat /mnt/image-volume/share/greeting"), "hello from an image volume\n");
  EXPECT_EQ(ExecOut(id, "cat /mnt/image-volume/share/second"), "second layer\n");
  EXPECT_EQ(ExecOut(id, "cat /mnt/share/greeting"), "hello from an image volume\n");
  EXPECT_EQ(ExecOut(id, "cat /mnt/up/etc/passwd"), "data:x:7:7\n");
  int code = 0;
  ExecOut(id, "touch /mnt/image-volume/new 2>/dev/null", &code);
  EXPECT_NE(code, 0) << "an image volume is writable";
  // The busybox image's own bin/ as a volume: noexec as asked.
  ExecOut(id, "/mnt/noexec/true", &code);
  EXPECT_NE(code, 0) << "noexec was not applied";
  ExecOut(id, "/mnt/noexec/busybox true", &code);
  EXPECT_NE(code, 0);
  EXPECT_EQ(ExecOut(id, "ls /mnt/noexec/ | grep -c '^busybox$'"), "1\n");

  // ContainerStatus names the volume's image as PullImage did.
  v1::ContainerStatusResponse status = Status(id);
  int reported = 0;
  for (const v1::Mount& m : status.status().mounts()) {
    if (m.container_path() == "/mnt/image-volume" || m.container_path() == "/mnt/share") {
      EXPECT_EQ(m.image().image_ref(), data) << m.container_path();
      ++reported;
    }
  }
  EXPECT_EQ(reported, 2);

  // The image is removed, and garbage collected, while the volume is in use:
  // its layers stay until the container goes.
  ASSERT_TRUE(RemoveImage(data).ok());
  EXPECT_EQ(ExecOut(id, "cat /mnt/image-volume/share/second"), "second layer\n");
  std::string v0 = tmp_.Sub("root/containers/" + id + "/image-volumes/0");
  ASSERT_TRUE(Stop(id, 0).ok());
  ASSERT_TRUE(Remove(id).ok()) << Log();
  struct stat st;
  EXPECT_NE(::lstat(v0.c_str(), &st), 0) << v0 << " left behind";
}

TEST_F(CriV137Test, BadImageVolumesAreRefusedLeavingNothing) {
  const std::string data = PullDataImage();
  std::string pod = RunPod(PodConfig("badvolumes"));
  struct Case {
    v1::Mount mount;
    grpc::StatusCode code;
    std::string message;
  };
  v1::Mount writable = ImageMount("/mnt/v", data);
  writable.set_readonly(false);
  std::vector<Case> cases = {
      {writable, grpc::StatusCode::INVALID_ARGUMENT, "mounts.readonly"},
      {ImageMount("/mnt/v", data, "not-existing"), grpc::StatusCode::INVALID_ARGUMENT,
       "mounts.image_sub_path: \"not-existing\" does not exist"},
      {ImageMount("/mnt/v", data, "../etc"), grpc::StatusCode::INVALID_ARGUMENT,
       "mounts.image_sub_path"},
      {ImageMount("/mnt/v", registry_->host() + "/test/never:pulled"), grpc::StatusCode::NOT_FOUND,
       "mounts.image"},
  };
  for (const Case& c : cases) {
    v1::ContainerConfig config = ShellContainer("bad", "sleep 1000");
    *config.add_mounts() = c.mount;
    std::string id;
    grpc::Status st = Create(pod, config, &id);
    EXPECT_EQ(st.error_code(), c.code) << st.error_message();
    EXPECT_THAT(st.error_message(), HasSubstr(c.message));
  }
  grpc::ClientContext ctx;
  v1::ListContainersResponse list;
  ASSERT_TRUE(stub_->ListContainers(&ctx, {}, &list).ok());
  EXPECT_EQ(list.containers_size(), 0);
  // TearDown's census: no mount, directory or record of them is left.
}

TEST_F(CriV137Test, StreamRpcsAnswerAsTheirListTwins) {
  std::string a = RunPod(PodConfig("stream-a"));
  std::string b = RunPod(PodConfig("stream-b"));
  std::vector<std::string> containers;
  for (int i = 0; i < 3; ++i) {
    v1::ContainerConfig config = ShellContainer(absl::StrCat("c", i), "sleep 1000");
    (*config.mutable_labels())["group"] = i == 0 ? "first" : "rest";
    containers.push_back(RunContainer(i == 0 ? a : b, config));
  }

  auto container_ids = [](v1::StreamContainersResponse& r) {
    std::vector<std::string> ids;
    for (const auto& c : r.containers()) {
      ids.push_back(c.id());
    }
    return ids;
  };
  v1::StreamContainersRequest all;
  EXPECT_THAT((StreamIds<v1::StreamContainersResponse>(&v1::RuntimeService::Stub::StreamContainers,
                                                       all, container_ids)),
              UnorderedElementsAreArray(containers));
  v1::StreamContainersRequest by_label;
  (*by_label.mutable_filter()->mutable_label_selector())["group"] = "rest";
  EXPECT_THAT((StreamIds<v1::StreamContainersResponse>(&v1::RuntimeService::Stub::StreamContainers,
                                                       by_label, container_ids)),
              UnorderedElementsAreArray({containers[1], containers[2]}));

  EXPECT_THAT((StreamIds<v1::StreamPodSandboxesResponse>(
                  &v1::RuntimeService::Stub::StreamPodSandboxes, v1::StreamPodSandboxesRequest(),
                  [](v1::StreamPodSandboxesResponse& r) {
                    std::vector<std::string> ids;
                    for (const auto& p : r.pod_sandboxes()) {
                      ids.push_back(p.id());
                    }
                    return ids;
                  })),
              UnorderedElementsAreArray({a, b}));

  v1::StreamContainerStatsRequest stats_of_b;
  stats_of_b.mutable_filter()->set_pod_sandbox_id(b);
  EXPECT_THAT((StreamIds<v1::StreamContainerStatsResponse>(
                  &v1::RuntimeService::Stub::StreamContainerStats, stats_of_b,
                  [](v1::StreamContainerStatsResponse& r) {
                    std::vector<std::string> ids;
                    for (const auto& s : r.container_stats()) {
                      ids.push_back(s.attributes().id());
                    }
                    return ids;
                  })),
              UnorderedElementsAreArray({containers[1], containers[2]}));

  EXPECT_THAT(
      (StreamIds<v1::StreamPodSandboxStatsResponse>(
          &v1::RuntimeService::Stub::StreamPodSandboxStats, v1::StreamPodSandboxStatsRequest(),
          [](v1::StreamPodSandboxStatsResponse& r) {
            std::vector<std::string> ids;
            for (const auto& s : r.pod_sandbox_stats()) {
              ids.push_back(s.attributes().id());
            }
            return ids;
          })),
      UnorderedElementsAreArray({a, b}));

  EXPECT_THAT(
      (StreamIds<v1::StreamPodSandboxMetricsResponse>(
          &v1::RuntimeService::Stub::StreamPodSandboxMetrics, v1::StreamPodSandboxMetricsRequest(),
          [](v1::StreamPodSandboxMetricsResponse& r) {
            std::vector<std::string> ids;
            for (const auto& m : r.pod_sandbox_metrics()) {
              ids.push_back(m.pod_sandbox_id());
            }
            return ids;
          })),
      UnorderedElementsAreArray({a, b}));

  // StreamImages lives on the image service.
  grpc::ClientContext ctx;
  auto reader = images_->StreamImages(&ctx, v1::StreamImagesRequest());
  v1::StreamImagesResponse batch;
  std::vector<std::string> image_ids;
  while (reader->Read(&batch)) {
    for (const auto& image : batch.images()) {
      image_ids.push_back(image.id());
    }
  }
  ASSERT_TRUE(reader->Finish().ok());
  EXPECT_THAT(image_ids, ::testing::Contains(image_id_));
}

TEST_F(CriV137Test, PodResizeWritesThePodCgroup) {
  // No systemd as PID 1 here: cgroupfs, and kubelet's cgroup_parent is a path.
  const std::string parent = absl::StrCat("/crid-e2e-resize-", ::getpid());
  v1::PodSandboxConfig config = PodConfig("resize");
  config.mutable_linux()->set_cgroup_parent(parent);
  std::string pod = RunPod(config);
  RunContainer(pod, ShellContainer("main", "sleep 1000"));
  absl::Cleanup cleanup = [&] {
    grpc::ClientContext c1;
    v1::StopPodSandboxRequest stop;
    stop.set_pod_sandbox_id(pod);
    v1::StopPodSandboxResponse r1;
    (void)stub_->StopPodSandbox(&c1, stop, &r1);
    grpc::ClientContext c2;
    v1::RemovePodSandboxRequest rm;
    rm.set_pod_sandbox_id(pod);
    v1::RemovePodSandboxResponse r2;
    (void)stub_->RemovePodSandbox(&c2, rm, &r2);
    for (const char* hierarchy :
         {"cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids", "hugetlb",
          "net_cls", "perf_event", "systemd", "unified"}) {
      ::rmdir(absl::StrCat("/sys/fs/cgroup/", hierarchy, parent).c_str());
    }
    ::rmdir(absl::StrCat("/sys/fs/cgroup", parent).c_str());
  };

  v1::UpdatePodSandboxResourcesRequest req;
  req.set_pod_sandbox_id(pod);
  req.mutable_resources()->set_memory_limit_in_bytes(int64_t{256} << 20);
  req.mutable_resources()->set_cpu_shares(512);
  req.mutable_resources()->set_cpu_quota(50000);
  req.mutable_resources()->set_cpu_period(100000);
  req.mutable_overhead()->set_memory_limit_in_bytes(int64_t{32} << 20);
  req.mutable_overhead()->set_cpu_shares(10);
  req.mutable_overhead()->set_cpu_quota(10000);
  req.mutable_overhead()->set_cpu_period(100000);
  {
    grpc::ClientContext ctx;
    v1::UpdatePodSandboxResourcesResponse resp;
    grpc::Status st = stub_->UpdatePodSandboxResources(&ctx, req, &resp);
    ASSERT_TRUE(st.ok()) << st.error_message() << "\n" << Log();
  }
  const bool v2 = ::access("/sys/fs/cgroup/memory", F_OK) != 0;
  auto read = [](const std::string& path) {
    return std::string(absl::StripAsciiWhitespace(ReadFile(path).value_or("<missing " + path)));
  };
  if (v2) {
    EXPECT_EQ(read("/sys/fs/cgroup" + parent + "/memory.max"), absl::StrCat(int64_t{288} << 20));
    EXPECT_EQ(read("/sys/fs/cgroup" + parent + "/cpu.max"), "60000 100000");
  } else {
    EXPECT_EQ(read("/sys/fs/cgroup/memory" + parent + "/memory.limit_in_bytes"),
              absl::StrCat(int64_t{288} << 20));
    EXPECT_EQ(read("/sys/fs/cgroup/cpu" + parent + "/cpu.shares"), "522");
    EXPECT_EQ(read("/sys/fs/cgroup/cpu" + parent + "/cpu.cfs_quota_us"), "60000");
  }

  // Unknown pods and bad values say which.
  {
    grpc::ClientContext ctx;
    v1::UpdatePodSandboxResourcesRequest unknown = req;
    unknown.set_pod_sandbox_id("0123456789abcdef");
    v1::UpdatePodSandboxResourcesResponse resp;
    EXPECT_EQ(stub_->UpdatePodSandboxResources(&ctx, unknown, &resp).error_code(),
              grpc::StatusCode::NOT_FOUND);
  }
  {
    grpc::ClientContext ctx;
    v1::UpdatePodSandboxResourcesRequest negative = req;
    negative.mutable_resources()->set_cpu_shares(-1);
    v1::UpdatePodSandboxResourcesResponse resp;
    grpc::Status st = stub_->UpdatePodSandboxResources(&ctx, negative, &resp);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(st.error_message(), HasSubstr("resources"));
  }
}

}  // namespace
}  // namespace container_e2e
}  // namespace crid
