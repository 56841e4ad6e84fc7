#include "kiln/validation/stats_view.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"

namespace kiln::validation {

std::string SerializePathStep(std::string_view step) {
  // A step needs quoting when it is empty or holds a character that would make the
  // serialized path ambiguous; "(x)" without inner parentheses is TFDV's extension
  // syntax and stays as is.
  bool plain = !step.empty() && step.find_first_of(".()'") == std::string_view::npos;
  bool extension = step.size() >= 2 && step.front() == '(' && step.back() == ')' &&
                   step.substr(1, step.size() - 2).find_first_of("()") == std::string_view::npos;
  if (plain || extension) return std::string(step);
  return absl::StrCat("'", absl::StrReplaceAll(std::string(step), {{"'", "''"}}), "'");
}

std::string FeatureName(const tfmd::FeatureNameStatistics& feature) {
  if (feature.has_path()) {
    return absl::StrJoin(feature.path().step(), ".", [](std::string* out, const std::string& s) {
      out->append(SerializePathStep(s));
    });
  }
  return feature.name();
}

const tfmd::FeatureNameStatistics* FindFeature(const tfmd::DatasetFeatureStatistics& dataset,
                                               std::string_view name) {
  for (const auto& f : dataset.features()) {
    if (HasNoStats(f)) continue;
    if (f.has_path() ? FeatureName(f) == name : f.name() == name) return &f;
  }
  return nullptr;
}

const tfmd::Feature* FindSchemaFeature(const tfmd::Schema& schema, std::string_view name) {
  for (const auto& f : schema.feature()) {
    if (f.name() == name) return &f;
  }
  return nullptr;
}

const tfmd::CommonStatistics& Common(const tfmd::FeatureNameStatistics& feature) {
  switch (feature.stats_case()) {
    case tfmd::FeatureNameStatistics::kNumStats:
      return feature.num_stats().common_stats();
    case tfmd::FeatureNameStatistics::kStringStats:
      return feature.string_stats().common_stats();
    case tfmd::FeatureNameStatistics::kBytesStats:
      return feature.bytes_stats().common_stats();
    case tfmd::FeatureNameStatistics::kStructStats:
      return feature.struct_stats().common_stats();
    default:
      return tfmd::CommonStatistics::default_instance();
  }
}

bool HasNoStats(const tfmd::FeatureNameStatistics& feature) {
  return feature.stats_case() == tfmd::FeatureNameStatistics::STATS_NOT_SET &&
         feature.custom_stats_size() == 0;
}

double TotalValueCount(const tfmd::FeatureNameStatistics& feature) {
  const tfmd::CommonStatistics& c = Common(feature);
  if (c.tot_num_values() != 0) return static_cast<double>(c.tot_num_values());
  return static_cast<double>(c.num_non_missing()) * c.avg_num_values();
}

std::optional<double> CustomNum(const tfmd::FeatureNameStatistics& feature, std::string_view name) {
  for (const auto& s : feature.custom_stats()) {
    if (s.name() == name && s.val_case() == tfmd::CustomStatistic::kNum) return s.num();
  }
  return std::nullopt;
}

std::optional<ValueCounts> GetValueCounts(const tfmd::FeatureNameStatistics& feature) {
  for (const auto& s : feature.custom_stats()) {
    if (s.name() == kValueCountsStat && s.has_rank_histogram()) {
      ValueCounts out;
      for (const auto& b : s.rank_histogram().buckets()) out.counts[b.label()] += b.sample_count();
      out.complete = true;
      return out;
    }
  }
  if (!feature.has_string_stats()) return std::nullopt;
  const tfmd::StringStatistics& ss = feature.string_stats();
  ValueCounts out;
  if (ss.rank_histogram().buckets_size() > 0) {
    for (const auto& b : ss.rank_histogram().buckets()) out.counts[b.label()] += b.sample_count();
  } else if (ss.top_values_size() > 0) {
    for (const auto& v : ss.top_values()) out.counts[v.value()] += v.frequency();
  } else if (ss.unique() != 0) {
    return std::nullopt;  // values exist but were not recorded
  }
  out.complete = out.counts.size() == ss.unique();
  return out;
}

std::optional<tfmd::Histogram> GetHistogram(const tfmd::FeatureNameStatistics& feature,
                                            tfmd::Histogram::HistogramType type) {
  if (!feature.has_num_stats()) return std::nullopt;
  for (const auto& h : feature.num_stats().histograms()) {
    if (h.type() == type) return h;
  }
  return std::nullopt;
}

double NumNan(const tfmd::FeatureNameStatistics& feature) {
  if (!feature.has_num_stats()) return 0;
  uint64_t n = 0;
  for (const auto& h : feature.num_stats().histograms()) n = std::max(n, h.num_nan());
  return static_cast<double>(n);
}

tfmd::FeatureType SchemaTypeOf(tfmd::FeatureNameStatistics::Type type) {
  switch (type) {
    case tfmd::FeatureNameStatistics::INT:
      return tfmd::INT;
    case tfmd::FeatureNameStatistics::FLOAT:
      return tfmd::FLOAT;
    case tfmd::FeatureNameStatistics::STRING:
    case tfmd::FeatureNameStatistics::BYTES:
      return tfmd::BYTES;
    case tfmd::FeatureNameStatistics::STRUCT:
      return tfmd::STRUCT;
    default:
      return tfmd::TYPE_UNKNOWN;
  }
}

bool IsDeprecated(const tfmd::Feature& feature) {
  // `deprecated` is itself a deprecated field, but old schemas still set it.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  if (feature.deprecated()) return true;
#pragma GCC diagnostic pop
  switch (feature.lifecycle_stage()) {
    case tfmd::PLANNED:
    case tfmd::ALPHA:
    case tfmd::DEPRECATED:
    case tfmd::DEBUG_ONLY:
    case tfmd::DISABLED:
      return true;
    default:
      return false;
  }
}

const tfmd::StringDomain* GetStringDomain(const tfmd::Schema& schema,
                                          const tfmd::Feature& feature) {
  if (feature.has_string_domain()) return &feature.string_domain();
  if (!feature.has_domain()) return nullptr;
  for (const auto& d : schema.string_domain()) {
    if (d.name() == feature.domain()) return &d;
  }
  return nullptr;
}

}  // namespace kiln::validation
