#include "metrics/scrape_gauges.h"

namespace crid::metrics {

void ScrapeGauges::Add(std::string name, std::string help, Source source) {
  gauges_.push_back(Gauge{std::move(name), std::move(help), std::move(source)});
}

std::vector<prometheus::MetricFamily> ScrapeGauges::Collect() const {
  std::vector<prometheus::MetricFamily> families;
  families.reserve(gauges_.size());
  for (const Gauge& gauge : gauges_) {
    prometheus::MetricFamily family;
    family.name = gauge.name;
    family.help = gauge.help;
    family.type = prometheus::MetricType::Gauge;
    for (Sample& sample : gauge.source()) {
      prometheus::ClientMetric metric;
      for (auto& [name, value] : sample.labels) {
        metric.label.push_back(prometheus::ClientMetric::Label{name, value});
      }
      metric.gauge.value = sample.value;
      family.metric.push_back(std::move(metric));
    }
    families.push_back(std::move(family));
  }
  return families;
}

}  // namespace crid::metrics
