// A Prometheus metrics registry and its text exposition (format 0.0.4): counters, gauges
// and histograms with labels. Thread-safe; a metric family is created once by name and
// kept for the registry's life. Names and label names follow Prometheus's rules
// ([a-zA-Z_:][a-zA-Z0-9_:]*); label values are escaped in the output.
#ifndef KILN_OBSERVE_METRICS_H_
#define KILN_OBSERVE_METRICS_H_

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace kiln::observe {

using Labels = std::vector<std::pair<std::string, std::string>>;  // name, value; in order

class MetricsRegistry {
 public:
  // Declares a family (idempotent for the same name and type).
  void DeclareCounter(const std::string& name, const std::string& help);
  void DeclareGauge(const std::string& name, const std::string& help);
  // `bounds`: the buckets' upper bounds, ascending (+Inf is added).
  void DeclareHistogram(const std::string& name, const std::string& help,
                        std::vector<double> bounds);

  void Add(const std::string& counter, const Labels& labels, double value = 1);
  // For a counter kept elsewhere (a component's running total): exposes `total` as is.
  void SetTotal(const std::string& counter, const Labels& labels, double total);
  void Set(const std::string& gauge, const Labels& labels, double value);
  void Observe(const std::string& histogram, const Labels& labels, double value);

  // Every family, in name order, in the text exposition format.
  std::string Expose() const;

 private:
  enum class Type { kCounter, kGauge, kHistogram };
  struct Series {
    double value = 0;               // counter, gauge; histogram: sum
    uint64_t count = 0;             // histogram
    std::vector<uint64_t> buckets;  // histogram, cumulative at exposition
  };
  struct Family {
    Type type;
    std::string help;
    std::vector<double> bounds;
    std::map<Labels, Series> series;
  };
  Family* Find(const std::string& name, Type type);

  mutable std::mutex mu_;
  std::map<std::string, Family> families_;
};

}  // namespace kiln::observe

#endif  // KILN_OBSERVE_METRICS_H_
