#include "kiln/validation/validator.h"

#include <cmath>
#include <map>
#include <set>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "kiln/validation/stats_view.h"

namespace kiln::validation {
namespace {

using Reason = tfmd::AnomalyInfo::Reason;
using Type = tfmd::AnomalyInfo::Type;

// How many unexpected string values a description names before summarising the rest.
constexpr size_t kMaxListedValues = 20;

// Short descriptions shared by several checks (TFDV's wording).
constexpr char kColumnDropped[] = "Column dropped";
constexpr char kOutOfRange[] = "Out-of-range values";
constexpr char kInvalidValues[] = "Invalid values";

Reason MakeReason(Type type, std::string short_description, std::string description) {
  Reason r;
  r.set_type(type);
  r.set_short_description(std::move(short_description));
  r.set_description(std::move(description));
  return r;
}

// count/total as TFDV prints it: "<1%" below one percent, else "~N%" rounded down.
std::string Percentage(double count, double total) {
  if (total <= 0) return "?";
  double percent = 100 * count / total;
  if (percent < 1.0) return "<1%";
  return absl::StrFormat("~%d%%", static_cast<int>(std::floor(percent)));
}

std::string Fraction(double x) { return absl::StrCat(absl::SixDigits(100 * x), "%"); }

// The observed range of a numeric feature, when known.
struct Range {
  double min = 0, max = 0;
};

// Parses the values of a string feature as numbers. `bad` counts values that do not
// parse (weighted by their counts) and `example` is the first of them.
struct ParsedStrings {
  double bad = 0;
  std::string example;
  std::optional<Range> range;
  bool has_nan = false;
};

template <typename Parse>
ParsedStrings ParseValues(const ValueCounts& values, Parse parse) {
  ParsedStrings out;
  for (const auto& [value, count] : values.counts) {
    double x;
    if (!parse(value, &x)) {
      if (out.example.empty()) out.example = value;
      out.bad += count;
      continue;
    }
    if (std::isnan(x)) {
      out.has_nan = true;
      continue;
    }
    if (!out.range) {
      out.range = Range{x, x};
    } else {
      out.range->min = std::min(out.range->min, x);
      out.range->max = std::max(out.range->max, x);
    }
  }
  return out;
}

bool ParseInt(const std::string& s, double* out) {
  int64_t v;
  if (!absl::SimpleAtoi(s, &v)) return false;
  *out = static_cast<double>(v);
  return true;
}

bool ParseFloat(const std::string& s, double* out) { return absl::SimpleAtod(s, out); }

// Checks of one schema feature against its statistics.
class FeatureCheck {
 public:
  FeatureCheck(const tfmd::Schema& schema, const tfmd::Feature& feature,
               const tfmd::FeatureNameStatistics& stats, double num_examples)
      : schema_(schema),
        feature_(feature),
        stats_(stats),
        num_examples_(num_examples),
        common_(Common(stats)) {}

  std::vector<Reason> Run() {
    if (common_.num_non_missing() == 0) {
      if (IsRequired(feature_)) {
        Add(tfmd::AnomalyInfo::FEATURE_TYPE_NOT_PRESENT, kColumnDropped,
            "The feature was not present in any examples.");
      }
      return std::move(reasons_);
    }
    CheckValueCounts();
    CheckPresence();
    if (CheckType()) {
      CheckIntDomain();
      CheckFloatDomain();
      CheckStringDomain();
      CheckUnique();
    }
    return std::move(reasons_);
  }

  static bool IsRequired(const tfmd::Feature& f) {
    return f.presence().min_count() > 0 || f.presence().min_fraction() > 0;
  }

 private:
  void Add(Type type, std::string short_description, std::string description) {
    reasons_.push_back(MakeReason(type, std::move(short_description), std::move(description)));
  }

  void CheckBounds(int64_t min, bool has_min, int64_t max, bool has_max, const char* where) {
    uint64_t lo = common_.min_num_values(), hi = common_.max_num_values();
    if (has_min && static_cast<int64_t>(lo) < min) {
      Add(tfmd::AnomalyInfo::FEATURE_TYPE_LOW_NUMBER_VALUES, "Missing values",
          absl::StrCat("Some examples have fewer values than expected", where, ": as few as ", lo,
                       ", expected at least ", min, "."));
    }
    if (has_max && static_cast<int64_t>(hi) > max) {
      Add(tfmd::AnomalyInfo::FEATURE_TYPE_HIGH_NUMBER_VALUES, "Superfluous values",
          absl::StrCat("Some examples have more values than expected", where, ": as many as ", hi,
                       ", expected at most ", max, "."));
    }
  }

  void CheckValueCounts() {
    if (feature_.has_value_count()) {
      const tfmd::ValueCount& vc = feature_.value_count();
      CheckBounds(vc.min(), vc.has_min(), vc.max(), vc.has_max(), "");
    } else if (feature_.has_value_counts()) {
      // kiln's statistics describe one nesting level only.
      if (feature_.value_counts().value_count_size() != 1) {
        Add(tfmd::AnomalyInfo::VALUE_NESTEDNESS_MISMATCH, "Mismatched value nest level",
            "The values have a different nest level than expected. Value counts will not be "
            "checked.");
        return;
      }
      const tfmd::ValueCount& vc = feature_.value_counts().value_count(0);
      CheckBounds(vc.min(), vc.has_min(), vc.max(), vc.has_max(), " at nestedness level 0");
    } else if (feature_.has_shape()) {
      int64_t n = 1;
      for (const auto& d : feature_.shape().dim()) n *= d.size();
      bool fits = common_.num_missing() == 0 &&
                  static_cast<int64_t>(common_.min_num_values()) == n &&
                  static_cast<int64_t>(common_.max_num_values()) == n;
      if (!fits) {
        Add(tfmd::AnomalyInfo::INVALID_FEATURE_SHAPE, "Invalid shape",
            absl::StrCat("The schema gives the feature a fixed shape of ", n,
                         " value(s) per example, but ", common_.num_missing(),
                         " example(s) miss it and present examples have between ",
                         common_.min_num_values(), " and ", common_.max_num_values(), " values."));
      }
    }
  }

  void CheckPresence() {
    if (!feature_.has_presence()) return;
    const tfmd::FeaturePresence& p = feature_.presence();
    double present = static_cast<double>(common_.num_non_missing());
    double missing = static_cast<double>(common_.num_missing());
    if (p.has_min_count() && present < static_cast<double>(p.min_count())) {
      Add(tfmd::AnomalyInfo::FEATURE_TYPE_LOW_NUMBER_PRESENT, kColumnDropped,
          absl::StrCat("The feature was present in fewer examples than expected: ", present,
                       ", expected at least ", p.min_count(), "."));
    }
    if (!p.has_min_fraction()) return;
    if (p.min_fraction() >= 1.0) {
      if (missing > 0) {
        Add(tfmd::AnomalyInfo::FEATURE_TYPE_LOW_FRACTION_PRESENT, kColumnDropped,
            absl::StrCat("The feature was expected everywhere, but was missing in ", missing,
                         " examples."));
      }
      return;
    }
    if (missing == 0 || num_examples_ <= 0) return;
    double fraction = present / num_examples_;
    if (fraction < p.min_fraction()) {
      Add(tfmd::AnomalyInfo::FEATURE_TYPE_LOW_FRACTION_PRESENT, kColumnDropped,
          absl::StrCat(
              "The feature was present in fewer examples than expected: ", Fraction(fraction),
              " of examples, expected at least ", Fraction(p.min_fraction()), "."));
    }
  }

  void TypeMismatch() {
    std::string expected = tfmd::FeatureType_Name(feature_.type());
    std::string got = tfmd::FeatureNameStatistics::Type_Name(stats_.type());
    Add(tfmd::AnomalyInfo::UNEXPECTED_DATA_TYPE,
        absl::StrCat("Expected data of type: ", expected, " but got ", got),
        absl::StrCat("The schema expects ", expected, " values but the data holds ", got,
                     " values."));
  }

  // Checks string data against a numeric schema type; fills range_ when every value
  // parses. Returns false when the values are not all numbers.
  bool CheckNumericStrings(bool want_int) {
    std::optional<ValueCounts> values = GetValueCounts(stats_);
    ParsedStrings parsed;
    if (values) parsed = ParseValues(*values, want_int ? ParseInt : ParseFloat);
    std::optional<double> bad = CustomNum(stats_, want_int ? kNonIntCountStat : kNonFloatCountStat);
    if (!bad && values && values->complete) bad = parsed.bad;
    if (bad && *bad == 0) {
      if (values && values->complete) range_ = parsed.range;
      strings_have_nan_ = parsed.has_nan;
      return true;
    }
    std::string what = want_int ? "ints" : "floats";
    std::string description =
        parsed.example.empty()
            ? absl::StrCat("String values that were not ", what, " were found.")
            : absl::StrCat("String values that were not ", what, " were found, such as \"",
                           absl::Utf8SafeCEscape(parsed.example), "\".");
    if (bad) {
      absl::StrAppend(&description, " ", *bad, " of ", TotalValueCount(stats_),
                      " values do not parse.");
    }
    Add(want_int ? tfmd::AnomalyInfo::INT_TYPE_NOT_INT_STRING
                 : tfmd::AnomalyInfo::FLOAT_TYPE_STRING_NOT_FLOAT,
        kInvalidValues, description);
    return false;
  }

  // Returns false when the data's type rules out further checks.
  bool CheckType() {
    using S = tfmd::FeatureNameStatistics;
    const bool is_string = stats_.type() == S::STRING || stats_.type() == S::BYTES;
    if (stats_.has_num_stats() && common_.tot_num_values() > 0) {
      range_ = Range{stats_.num_stats().min(), stats_.num_stats().max()};
    }
    if (!feature_.has_type()) return true;
    switch (feature_.type()) {
      case tfmd::BYTES:
        // A numeric domain on a BYTES feature means numbers written as strings (TFDV).
        if (is_string && feature_.has_int_domain()) return CheckNumericStrings(true);
        if (is_string && feature_.has_float_domain()) return CheckNumericStrings(false);
        if (is_string) return true;
        break;
      case tfmd::INT:
        if (stats_.type() == S::INT) return true;
        if (is_string) return CheckNumericStrings(/*want_int=*/true);
        break;
      case tfmd::FLOAT:
        // Integers are valid floats; a CSV column of whole numbers reads as INT.
        if (stats_.type() == S::FLOAT || stats_.type() == S::INT) return true;
        if (is_string) return CheckNumericStrings(/*want_int=*/false);
        break;
      case tfmd::STRUCT:
        if (stats_.type() == S::STRUCT) return true;
        break;
      default:
        return true;
    }
    TypeMismatch();
    return false;
  }

  void CheckIntDomain() {
    if (!feature_.has_int_domain() || !range_) return;
    const tfmd::IntDomain& d = feature_.int_domain();
    if (d.has_min() && range_->min < static_cast<double>(d.min())) {
      Add(tfmd::AnomalyInfo::INT_TYPE_SMALL_INT, kOutOfRange,
          absl::StrCat("Unexpectedly small value: ", static_cast<int64_t>(range_->min),
                       " (the domain's min is ", d.min(), ")."));
    }
    if (d.has_max() && range_->max > static_cast<double>(d.max())) {
      Add(tfmd::AnomalyInfo::INT_TYPE_BIG_INT, kOutOfRange,
          absl::StrCat("Unexpectedly large value: ", static_cast<int64_t>(range_->max),
                       " (the domain's max is ", d.max(), ")."));
    }
  }

  void CheckFloatDomain() {
    if (!feature_.has_float_domain()) return;
    const tfmd::FloatDomain& d = feature_.float_domain();
    if (d.disallow_nan() && (NumNan(stats_) > 0 || strings_have_nan_)) {
      Add(tfmd::AnomalyInfo::FLOAT_TYPE_HAS_NAN, kInvalidValues, "Float feature has NaN values.");
    }
    if (!range_) return;
    // Compared as float, like TFDV: the bounds are floats.
    float lo = static_cast<float>(range_->min), hi = static_cast<float>(range_->max);
    if (d.has_min() && lo < d.min()) {
      Add(tfmd::AnomalyInfo::FLOAT_TYPE_SMALL_FLOAT, kOutOfRange,
          absl::StrCat("Unexpectedly low values: ", absl::SixDigits(lo), " < ",
                       absl::SixDigits(d.min()), " (up to six significant digits)."));
    }
    if (d.has_max() && hi > d.max()) {
      Add(tfmd::AnomalyInfo::FLOAT_TYPE_BIG_FLOAT, kOutOfRange,
          absl::StrCat("Unexpectedly high value: ", absl::SixDigits(hi), " > ",
                       absl::SixDigits(d.max()), " (up to six significant digits)."));
    }
    std::optional<double> num_inf = CustomNum(stats_, kNumInfStat);
    if (d.disallow_inf() && (std::isinf(lo) || std::isinf(hi) || (num_inf && *num_inf > 0))) {
      Add(tfmd::AnomalyInfo::FLOAT_TYPE_HAS_INF, kInvalidValues, "Float feature has Inf values.");
    }
  }

  void CheckStringDomain() {
    if (!feature_.has_domain() && !feature_.has_string_domain()) return;
    const tfmd::StringDomain* domain = GetStringDomain(schema_, feature_);
    if (domain == nullptr) {
      Add(tfmd::AnomalyInfo::INVALID_SCHEMA_SPECIFICATION, "Missing domain",
          absl::StrCat("The feature uses the string domain \"", feature_.domain(),
                       "\", which the schema does not declare."));
      return;
    }
    std::optional<ValueCounts> values = GetValueCounts(stats_);
    if (!values) return;
    std::set<std::string> allowed(domain->value().begin(), domain->value().end());
    std::vector<std::pair<std::string, double>> unexpected;  // sorted by value
    double unexpected_count = 0;
    for (const auto& [value, count] : values->counts) {
      if (allowed.count(value)) continue;
      unexpected.emplace_back(value, count);
      unexpected_count += count;
    }
    if (unexpected.empty()) return;
    double total = TotalValueCount(stats_);
    if (total <= 0) {
      for (const auto& [v, c] : values->counts) total += c;
    }
    const tfmd::DistributionConstraints& dc = feature_.distribution_constraints();
    double max_off_domain = dc.has_min_domain_mass() ? 1.0 - dc.min_domain_mass() : 0.0;
    if (max_off_domain > 0 && unexpected_count / total <= max_off_domain) return;
    std::vector<std::string> listed;
    for (size_t i = 0; i < unexpected.size() && i < kMaxListedValues; ++i) {
      listed.push_back(absl::StrCat(absl::Utf8SafeCEscape(unexpected[i].first), " (",
                                    Percentage(unexpected[i].second, total), ")"));
    }
    if (unexpected.size() > kMaxListedValues) {
      double rest = 0;
      for (size_t i = kMaxListedValues; i < unexpected.size(); ++i) rest += unexpected[i].second;
      listed.push_back(absl::StrCat("and ", unexpected.size() - kMaxListedValues, " more (",
                                    Percentage(rest, total), ")"));
    }
    std::string description = absl::StrCat(
        "Examples contain values missing from the schema: ", absl::StrJoin(listed, ", "), ".");
    if (max_off_domain > 0) {
      absl::StrAppend(&description, " Values outside the domain make up ",
                      Percentage(unexpected_count, total), " of all values, more than the allowed ",
                      Fraction(max_off_domain), ".");
    } else if (unexpected.size() > 1) {
      // Each value may be rare; say how much they are together.
      absl::StrAppend(&description, " Together ", Percentage(unexpected_count, total),
                      " of all values.");
    }
    Add(tfmd::AnomalyInfo::ENUM_TYPE_UNEXPECTED_STRING_VALUES, "Unexpected string values",
        description);
  }

  void CheckUnique() {
    if (!feature_.has_unique_constraints()) return;
    const tfmd::UniqueConstraints& u = feature_.unique_constraints();
    if (!stats_.has_string_stats()) {
      Add(tfmd::AnomalyInfo::FEATURE_TYPE_NO_UNIQUE, "No unique values",
          "UniqueConstraints specified for the feature, but unique values were not counted "
          "(i.e., feature is not string or categorical).");
      return;
    }
    int64_t unique = static_cast<int64_t>(stats_.string_stats().unique());
    if (u.has_min() && unique < u.min()) {
      Add(tfmd::AnomalyInfo::FEATURE_TYPE_LOW_UNIQUE, "Low number of unique values",
          absl::StrCat("Expected at least ", u.min(), " unique values but found only ", unique,
                       "."));
    }
    if (u.has_max() && unique > u.max()) {
      Add(tfmd::AnomalyInfo::FEATURE_TYPE_HIGH_UNIQUE, "High number of unique values",
          absl::StrCat("Expected no more than ", u.max(), " unique values but found ", unique,
                       "."));
    }
  }

  const tfmd::Schema& schema_;
  const tfmd::Feature& feature_;
  const tfmd::FeatureNameStatistics& stats_;
  double num_examples_;
  const tfmd::CommonStatistics& common_;
  std::optional<Range> range_;
  bool strings_have_nan_ = false;
  std::vector<Reason> reasons_;
};

tfmd::AnomalyInfo MakeInfo(const std::vector<Reason>& reasons) {
  tfmd::AnomalyInfo info;
  info.set_severity(tfmd::AnomalyInfo::ERROR);
  for (const Reason& r : reasons) *info.add_reason() = r;
  if (reasons.size() == 1) {
    info.set_short_description(reasons[0].short_description());
    info.set_description(reasons[0].description());
  } else {
    info.set_short_description("Multiple errors");
    std::vector<std::string> parts;
    for (const Reason& r : reasons) {
      if (!r.description().empty()) parts.push_back(r.description());
    }
    info.set_description(absl::StrJoin(parts, " "));
  }
  return info;
}

std::vector<Reason> CheckDataset(const tfmd::DatasetFeatureStatistics& stats,
                                 const tfmd::Schema& schema, const ValidationOptions& options) {
  std::vector<Reason> reasons;
  if (!schema.has_dataset_constraints()) return reasons;
  const tfmd::DatasetConstraints& dc = schema.dataset_constraints();
  const uint64_t n = stats.num_examples();
  if (dc.has_min_examples_count() && static_cast<int64_t>(n) < dc.min_examples_count()) {
    reasons.push_back(MakeReason(
        tfmd::AnomalyInfo::DATASET_LOW_NUM_EXAMPLES, "Low num examples in dataset.",
        absl::StrCat("The dataset has ", n, " examples, which is fewer than expected (at least ",
                     dc.min_examples_count(), ").")));
  }
  if (dc.has_max_examples_count() && static_cast<int64_t>(n) > dc.max_examples_count()) {
    reasons.push_back(MakeReason(
        tfmd::AnomalyInfo::DATASET_HIGH_NUM_EXAMPLES, "High num examples in dataset.",
        absl::StrCat("The dataset has ", n, " examples, which is more than expected (at most ",
                     dc.max_examples_count(), ").")));
  }
  if (options.previous != nullptr && dc.has_num_examples_drift_comparator()) {
    const tfmd::NumericValueComparator& c = dc.num_examples_drift_comparator();
    const uint64_t prev = options.previous->num_examples();
    if (prev == 0) {
      if (c.has_max_fraction_threshold()) {
        reasons.push_back(MakeReason(
            tfmd::AnomalyInfo::COMPARATOR_HIGH_NUM_EXAMPLES,
            "High num examples in current dataset versus the previous span, which has 0.",
            "The previous span has 0 examples, so there is a high number of examples in the "
            "current dataset versus the previous span."));
      }
    } else {
      double ratio = static_cast<double>(n) / static_cast<double>(prev);
      if (c.has_max_fraction_threshold() && ratio > c.max_fraction_threshold()) {
        reasons.push_back(MakeReason(
            tfmd::AnomalyInfo::COMPARATOR_HIGH_NUM_EXAMPLES,
            "High num examples in current dataset versus the previous span.",
            absl::StrCat("The ratio of num examples in the current dataset versus the previous "
                         "span is ",
                         absl::SixDigits(ratio),
                         " (up to six significant digits), which is above the threshold ",
                         absl::SixDigits(c.max_fraction_threshold()), ".")));
      }
      if (c.has_min_fraction_threshold() && ratio < c.min_fraction_threshold()) {
        reasons.push_back(MakeReason(
            tfmd::AnomalyInfo::COMPARATOR_LOW_NUM_EXAMPLES,
            "Low num examples in current dataset versus the previous span.",
            absl::StrCat("The ratio of num examples in the current dataset versus the previous "
                         "span is ",
                         absl::SixDigits(ratio),
                         " (up to six significant digits), which is below the threshold ",
                         absl::SixDigits(c.min_fraction_threshold()), ".")));
      }
    }
  }
  return reasons;
}

}  // namespace

absl::StatusOr<ValidationResult> ValidateStatistics(const tfmd::DatasetFeatureStatistics& stats,
                                                    const tfmd::Schema& schema,
                                                    const ValidationOptions& options) {
  std::set<std::string> names;
  for (const auto& f : schema.feature()) {
    if (!names.insert(f.name()).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("the schema lists feature '", f.name(), "' twice"));
    }
  }

  ValidationResult result;
  tfmd::Anomalies& anomalies = result.anomalies;
  *anomalies.mutable_baseline() = schema;
  anomalies.set_anomaly_name_format(tfmd::Anomalies::SERIALIZED_PATH);
  if (stats.num_examples() == 0) {
    // TFDV checks nothing else on an empty dataset.
    anomalies.set_data_missing(true);
    return result;
  }

  // Findings per feature, in schema order then new columns in statistics order.
  std::vector<std::string> order;
  std::map<std::string, std::vector<Reason>> findings;
  auto add = [&](const std::string& name, std::vector<Reason> reasons) {
    if (reasons.empty()) return;
    auto [it, inserted] = findings.try_emplace(name);
    if (inserted) order.push_back(name);
    for (auto& r : reasons) it->second.push_back(std::move(r));
  };

  const double num_examples = static_cast<double>(stats.num_examples());
  for (const tfmd::Feature& feature : schema.feature()) {
    if (IsDeprecated(feature)) continue;
    const tfmd::FeatureNameStatistics* fs = FindFeature(stats, feature.name());
    if (fs == nullptr) {
      if (FeatureCheck::IsRequired(feature)) {
        add(feature.name(), {MakeReason(tfmd::AnomalyInfo::SCHEMA_MISSING_COLUMN, kColumnDropped,
                                        "Column is completely missing")});
      }
      continue;
    }
    add(feature.name(), FeatureCheck(schema, feature, *fs, num_examples).Run());
  }
  for (const auto& fs : stats.features()) {
    if (HasNoStats(fs)) continue;
    std::string name = FeatureName(fs);
    if (names.count(name)) continue;
    add(name, {MakeReason(tfmd::AnomalyInfo::SCHEMA_NEW_COLUMN, "New column",
                          "New column (column in data but not in schema)")});
  }

  // Drift, then skew, as TFDV orders the measurements.
  CompareOptions compare_options;
  compare_options.threshold = options.drift_threshold;
  std::map<std::string, tfmd::DriftSkewInfo> drift_skew;
  std::vector<std::string> drift_skew_order;
  for (auto [control, kind] : {std::pair{options.previous, ComparisonKind::kDrift},
                               std::pair{options.serving, ComparisonKind::kSkew}}) {
    if (control == nullptr) continue;
    for (FeatureComparison& c : Compare(stats, *control, schema, kind, compare_options)) {
      add(c.feature, c.reasons);
      if (!c.measurements.empty()) {
        auto [it, inserted] = drift_skew.try_emplace(c.feature);
        if (inserted) {
          drift_skew_order.push_back(c.feature);
          it->second.mutable_path()->add_step(c.feature);
        }
        for (const auto& m : c.measurements) {
          *(kind == ComparisonKind::kDrift ? it->second.add_drift_measurements()
                                           : it->second.add_skew_measurements()) = m;
        }
      }
      result.comparisons.push_back(std::move(c));
    }
  }

  for (const std::string& name : order) {
    tfmd::AnomalyInfo info = MakeInfo(findings[name]);
    info.mutable_path()->add_step(name);
    (*anomalies.mutable_anomaly_info())[SerializePathStep(name)] = std::move(info);
  }
  for (const std::string& name : drift_skew_order) {
    *anomalies.add_drift_skew_info() = std::move(drift_skew[name]);
  }
  std::vector<Reason> dataset_reasons = CheckDataset(stats, schema, options);
  if (!dataset_reasons.empty()) {
    *anomalies.mutable_dataset_anomaly_info() = MakeInfo(dataset_reasons);
  }
  return result;
}

bool HasAnomalies(const tfmd::Anomalies& anomalies) {
  return anomalies.anomaly_info_size() > 0 || anomalies.data_missing() ||
         anomalies.dataset_anomaly_info().reason_size() > 0;
}

}  // namespace kiln::validation
