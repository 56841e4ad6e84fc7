// Test helpers: builders for the statistics protos validation reads, laid out the way
// kiln's generator (and TFDV) write them. Header-only; for tests.
#ifndef KILN_VALIDATION_TESTING_STATS_H_
#define KILN_VALIDATION_TESTING_STATS_H_

#include <algorithm>
#include <initializer_list>
#include <map>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "tensorflow_metadata/proto/v0/statistics.pb.h"

namespace kiln::validation::testing {

namespace tfmd = ::tensorflow::metadata::v0;

class FeatureBuilder {
 public:
  static FeatureBuilder Int(const std::string& name) {
    return FeatureBuilder(name, tfmd::FeatureNameStatistics::INT);
  }
  static FeatureBuilder Float(const std::string& name) {
    return FeatureBuilder(name, tfmd::FeatureNameStatistics::FLOAT);
  }
  static FeatureBuilder String(const std::string& name) {
    return FeatureBuilder(name, tfmd::FeatureNameStatistics::STRING);
  }

  // Presence and value counts; tot_num_values = present * (min + max) / 2.
  FeatureBuilder& Present(uint64_t present, uint64_t missing, uint64_t min_values = 1,
                          uint64_t max_values = 1) {
    tfmd::CommonStatistics* c = common();
    c->set_num_non_missing(present);
    c->set_num_missing(missing);
    c->set_min_num_values(min_values);
    c->set_max_num_values(max_values);
    c->set_avg_num_values(static_cast<float>(min_values + max_values) / 2);
    c->set_tot_num_values(present * (min_values + max_values) / 2);
    return *this;
  }
  FeatureBuilder& Range(double min, double max) {
    f_.mutable_num_stats()->set_min(min);
    f_.mutable_num_stats()->set_max(max);
    return *this;
  }
  // A STANDARD histogram of (low, high, count) buckets.
  FeatureBuilder& Histogram(const std::vector<std::tuple<double, double, double>>& buckets,
                            uint64_t num_nan = 0,
                            tfmd::Histogram::HistogramType type = tfmd::Histogram::STANDARD) {
    tfmd::Histogram* h = f_.mutable_num_stats()->add_histograms();
    h->set_type(type);
    h->set_num_nan(num_nan);
    for (const auto& [lo, hi, n] : buckets) {
      auto* b = h->add_buckets();
      b->set_low_value(lo);
      b->set_high_value(hi);
      b->set_sample_count(n);
    }
    return *this;
  }
  // Every value with its count. For a STRING feature: unique, top values, rank histogram
  // and, unless `full_list` is false, the kiln_value_counts custom statistic; for a
  // numeric feature only the custom statistic.
  FeatureBuilder& Values(const std::map<std::string, double>& counts, bool full_list = true) {
    std::vector<std::pair<std::string, double>> sorted(counts.begin(), counts.end());
    std::stable_sort(sorted.begin(), sorted.end(),
                     [](const auto& a, const auto& b) { return a.second > b.second; });
    const bool is_string = f_.has_string_stats();
    tfmd::StringStatistics* s = is_string ? f_.mutable_string_stats() : nullptr;
    if (s != nullptr) s->set_unique(counts.size());
    tfmd::CustomStatistic* all = nullptr;
    if (full_list || !is_string) {
      all = f_.add_custom_stats();
      all->set_name("kiln_value_counts");
    }
    uint64_t rank = 0;
    for (const auto& [value, count] : sorted) {
      tfmd::RankHistogram::Bucket b;
      b.set_low_rank(rank);
      b.set_high_rank(rank);
      b.set_label(value);
      b.set_sample_count(count);
      if (s != nullptr) {
        auto* top = s->add_top_values();
        top->set_value(value);
        top->set_frequency(count);
        *s->mutable_rank_histogram()->add_buckets() = b;
      }
      if (all != nullptr) *all->mutable_rank_histogram()->add_buckets() = b;
      ++rank;
    }
    return *this;
  }
  // Keeps only the first `n` top values / rank buckets (as a generator's top-k does).
  FeatureBuilder& TruncateTopValues(int n) {
    tfmd::StringStatistics* s = f_.mutable_string_stats();
    while (s->top_values_size() > n) s->mutable_top_values()->RemoveLast();
    while (s->rank_histogram().buckets_size() > n) {
      s->mutable_rank_histogram()->mutable_buckets()->RemoveLast();
    }
    return *this;
  }
  FeatureBuilder& Custom(const std::string& name, double value) {
    auto* c = f_.add_custom_stats();
    c->set_name(name);
    c->set_num(value);
    return *this;
  }
  const tfmd::FeatureNameStatistics& proto() const { return f_; }
  operator tfmd::FeatureNameStatistics() const { return f_; }  // NOLINT

 private:
  FeatureBuilder(const std::string& name, tfmd::FeatureNameStatistics::Type type) {
    f_.set_name(name);
    f_.set_type(type);
    if (type == tfmd::FeatureNameStatistics::STRING) {
      f_.mutable_string_stats();
    } else {
      f_.mutable_num_stats();
    }
  }
  tfmd::CommonStatistics* common() {
    return f_.has_string_stats() ? f_.mutable_string_stats()->mutable_common_stats()
                                 : f_.mutable_num_stats()->mutable_common_stats();
  }
  tfmd::FeatureNameStatistics f_;
};

inline tfmd::DatasetFeatureStatistics Dataset(
    uint64_t num_examples, std::initializer_list<tfmd::FeatureNameStatistics> features,
    const std::string& name = "all") {
  tfmd::DatasetFeatureStatistics d;
  d.set_name(name);
  d.set_num_examples(num_examples);
  for (const auto& f : features) *d.add_features() = f;
  return d;
}

}  // namespace kiln::validation::testing

#endif  // KILN_VALIDATION_TESTING_STATS_H_
