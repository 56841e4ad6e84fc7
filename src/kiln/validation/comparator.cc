#include "kiln/validation/comparator.h"

#include "absl/strings/str_cat.h"
#include "kiln/validation/distance.h"
#include "kiln/validation/stats_view.h"

namespace kiln::validation {
namespace {

using Measurement = tfmd::DriftSkewInfo::Measurement;
using Reason = tfmd::AnomalyInfo::Reason;

struct Context {
  const char* treatment;
  const char* control;
};

Context ContextOf(ComparisonKind kind) {
  // The names TFDV uses in its comparator messages.
  return kind == ComparisonKind::kDrift ? Context{"current", "previous"}
                                        : Context{"training", "serving"};
}

bool IsCategorical(const tfmd::Feature& f) {
  if (f.type() == tfmd::BYTES) return true;
  if (f.has_int_domain() && f.int_domain().is_categorical()) return true;
  if (f.has_float_domain() && f.float_domain().is_categorical()) return true;
  return false;
}

// The comparator that applies to `f`, or nullopt when nothing is to be measured.
std::optional<tfmd::FeatureComparator> ComparatorFor(const tfmd::Feature& f, ComparisonKind kind,
                                                     const CompareOptions& options) {
  tfmd::FeatureComparator c;
  if (options.threshold) {
    if (IsCategorical(f)) {
      c.mutable_infinity_norm()->set_threshold(*options.threshold);
    } else {
      c.mutable_jensen_shannon_divergence()->set_threshold(*options.threshold);
    }
    return c;
  }
  c = kind == ComparisonKind::kDrift ? f.drift_comparator() : f.skew_comparator();
  if (!c.infinity_norm().has_threshold() && !c.jensen_shannon_divergence().has_threshold()) {
    return std::nullopt;
  }
  return c;
}

Measurement MakeMeasurement(Measurement::Type type, double value, double threshold) {
  Measurement m;
  m.set_type(type);
  m.set_value(value);
  m.set_threshold(threshold);
  return m;
}

Reason MakeReason(tfmd::AnomalyInfo::Type type, std::string short_description,
                  std::string description) {
  Reason r;
  r.set_type(type);
  r.set_short_description(std::move(short_description));
  r.set_description(std::move(description));
  return r;
}

void AppendNote(std::string* note, std::string_view text) {
  if (!note->empty()) note->append(" ");
  note->append(text);
}

FeatureComparison CompareFeature(const tfmd::Feature& feature, const tfmd::FeatureComparator& comp,
                                 const tfmd::FeatureNameStatistics& cur,
                                 const tfmd::FeatureNameStatistics& ctl, ComparisonKind kind) {
  FeatureComparison out;
  out.feature = feature.name();
  out.kind = kind;
  const Context ctx = ContextOf(kind);
  std::optional<ValueCounts> cur_values = GetValueCounts(cur);
  std::optional<ValueCounts> ctl_values = GetValueCounts(ctl);
  bool have_values = cur_values && ctl_values;
  std::optional<AlignedDistributions> compared;  // what KL is computed on

  auto kl_sentence = [&]() {
    return out.kl_divergence ? absl::StrCat(" KL divergence (", ctx.treatment, " || ", ctx.control,
                                            "): ", absl::SixDigits(*out.kl_divergence), " bits.")
                             : std::string();
  };

  // Decide the distributions first, so that KL is known when descriptions are written.
  std::optional<LInfinityResult> linf;
  if (comp.infinity_norm().has_threshold()) {
    if (have_values) {
      linf = LInfinityDistance(cur_values->counts, ctl_values->counts);
      auto aligned = AlignValues(cur_values->counts, ctl_values->counts);
      if (aligned.ok()) compared = *aligned;
    } else {
      AppendNote(&out.note,
                 "L-infinity distance needs value counts on both sides, which the statistics "
                 "do not hold for this feature.");
    }
  }
  std::optional<double> jsd;
  if (comp.jensen_shannon_divergence().has_threshold()) {
    absl::StatusOr<AlignedDistributions> aligned =
        absl::InvalidArgumentError("no histogram or value counts to compare");
    bool use_values = have_values && (IsCategorical(feature) || !cur.has_num_stats());
    if (use_values) {
      aligned = AlignValues(cur_values->counts, ctl_values->counts);
    } else {
      auto type =
          comp.jensen_shannon_divergence().source().type() == tfmd::HistogramSelection::QUANTILES
              ? tfmd::Histogram::QUANTILES
              : tfmd::Histogram::STANDARD;
      auto hc = GetHistogram(cur, type), hp = GetHistogram(ctl, type);
      if (hc && hp) {
        aligned = AlignHistograms(*hc, *hp);
      } else if (have_values) {
        aligned = AlignValues(cur_values->counts, ctl_values->counts);
      }
    }
    if (aligned.ok()) {
      jsd = JensenShannon(*aligned);
      compared = *aligned;
    } else {
      AppendNote(&out.note, absl::StrCat("Jensen-Shannon divergence not computed: ",
                                         aligned.status().message(), "."));
    }
  }
  if (compared) out.kl_divergence = KullbackLeibler(*compared);

  if (linf) {
    double threshold = comp.infinity_norm().threshold();
    out.measurements.push_back(MakeMeasurement(Measurement::L_INFTY, linf->distance, threshold));
    if (linf->distance > threshold) {
      out.reasons.push_back(MakeReason(
          tfmd::AnomalyInfo::COMPARATOR_L_INFTY_HIGH,
          absl::StrCat("High Linfty distance between ", ctx.treatment, " and ", ctx.control),
          absl::StrCat("The Linfty distance between ", ctx.treatment, " and ", ctx.control, " is ",
                       absl::SixDigits(linf->distance),
                       " (up to six significant digits), above the threshold ",
                       absl::SixDigits(threshold),
                       ". The feature value with maximum difference is: ", linf->value, ".",
                       kl_sentence())));
    }
  }
  if (jsd) {
    double threshold = comp.jensen_shannon_divergence().threshold();
    out.measurements.push_back(
        MakeMeasurement(Measurement::JENSEN_SHANNON_DIVERGENCE, *jsd, threshold));
    if (*jsd > threshold) {
      out.reasons.push_back(MakeReason(
          tfmd::AnomalyInfo::COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH,
          absl::StrCat("High approximate Jensen-Shannon divergence between ", ctx.treatment,
                       " and ", ctx.control),
          absl::StrCat("The approximate Jensen-Shannon divergence between ", ctx.treatment, " and ",
                       ctx.control, " is ", absl::SixDigits(*jsd),
                       " (up to six significant digits), above the threshold ",
                       absl::SixDigits(threshold), ".", kl_sentence())));
    }
  }
  return out;
}

}  // namespace

std::vector<FeatureComparison> Compare(const tfmd::DatasetFeatureStatistics& current,
                                       const tfmd::DatasetFeatureStatistics& control,
                                       const tfmd::Schema& schema, ComparisonKind kind,
                                       const CompareOptions& options) {
  std::vector<FeatureComparison> out;
  for (const tfmd::Feature& feature : schema.feature()) {
    if (IsDeprecated(feature)) continue;
    std::optional<tfmd::FeatureComparator> comp = ComparatorFor(feature, kind, options);
    if (!comp) continue;
    const tfmd::FeatureNameStatistics* cur = FindFeature(current, feature.name());
    if (cur == nullptr || Common(*cur).num_non_missing() == 0) continue;
    const tfmd::FeatureNameStatistics* ctl = FindFeature(control, feature.name());
    if (ctl == nullptr) {
      const Context ctx = ContextOf(kind);
      FeatureComparison missing;
      missing.feature = feature.name();
      missing.kind = kind;
      missing.reasons.push_back(MakeReason(tfmd::AnomalyInfo::COMPARATOR_CONTROL_DATA_MISSING,
                                           absl::StrCat(ctx.control, " data missing"),
                                           absl::StrCat(ctx.control, " data is missing.")));
      out.push_back(std::move(missing));
      continue;
    }
    out.push_back(CompareFeature(feature, *comp, *cur, *ctl, kind));
  }
  return out;
}

}  // namespace kiln::validation
