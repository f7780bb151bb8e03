// Gauges computed when Prometheus scrapes (pods, containers, shims): counting
// the managers' records then costs nothing between scrapes and can never drift
// from what the managers hold.
#pragma once

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace crid::metrics {

class ScrapeGauges final : public prometheus::Collectable {
 public:
  // One series of a gauge: its labels and value.
  struct Sample {
    std::map<std::string, std::string> labels;
    double value = 0;
  };
  using Source = std::function<std::vector<Sample>()>;

  // Adds gauge `name`, whose series `source` returns at each scrape (from a
  // scrape thread; it must be thread-safe). Call before serving.
  void Add(std::string name, std::string help, Source source);

  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  struct Gauge {
    std::string name;
    std::string help;
    Source source;
  };
  std::vector<Gauge> gauges_;
};

}  // namespace crid::metrics
