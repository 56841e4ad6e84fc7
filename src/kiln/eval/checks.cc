#include "kiln/eval/checks.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>

#include "absl/status/status.h"
#include "kiln/base/status.h"
#include "kiln/base/str.h"

namespace kiln::eval {
namespace {

std::string Fmt(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

std::string FmtInterval(const Interval& i, double confidence) {
  return StrCat(Fmt(confidence * 100), "% CI [", Fmt(i.lower), ", ", Fmt(i.upper), "]");
}

// Why `metric` can be undefined on a slice.
std::string UndefinedWhy(std::string_view metric) {
  if (metric == "auc") return "it needs rows of both classes";
  if (metric == "auc_pr" || metric == "recall") return "the slice has no positive rows";
  if (metric == "precision") return "no row of the slice is predicted positive";
  if (metric == "f1") return "the slice has no positive row and none predicted positive";
  if (metric == "calibration") return "the slice's mean label is 0";
  if (metric == "r2") return "the slice's labels are constant";
  if (metric.starts_with("ndcg@")) return "the slice has no query of two or more rows";
  return "the slice has no rows (or no weight)";
}

// The slices a threshold applies to, in report order; names that match no slice are
// returned in `missing`.
std::vector<const SliceResult*> SelectSlices(const MetricThreshold& t,
                                             const std::vector<SliceResult>& slices,
                                             std::vector<std::string>* missing) {
  std::set<const SliceResult*> chosen;
  for (const std::string& ref : t.slices) {
    bool any = false;
    for (const SliceResult& s : slices) {
      const bool match = ref == "all" || ref == s.name || (!s.spec.empty() && ref == s.spec);
      if (match) {
        chosen.insert(&s);
        any = true;
      }
    }
    if (!any) missing->push_back(ref);
  }
  std::vector<const SliceResult*> out;
  for (const SliceResult& s : slices) {
    if (chosen.count(&s)) out.push_back(&s);
  }
  return out;
}

}  // namespace

std::string_view CheckStatusName(CheckStatus s) {
  switch (s) {
    case CheckStatus::kPass:
      return "pass";
    case CheckStatus::kFail:
      return "fail";
    case CheckStatus::kSkipped:
      return "skipped";
  }
  return "";
}

absl::Status ValidateThresholds(const EvalConfig& config,
                                const std::vector<std::string>& metric_names) {
  for (const MetricThreshold& t : config.thresholds) {
    auto bad = [&](std::string_view what) {
      return absl::InvalidArgumentError(StrCat(config.source, " line ", t.line, ": ", what));
    };
    if (std::find(metric_names.begin(), metric_names.end(), t.metric) == metric_names.end()) {
      return bad(StrCat("unknown metric '", t.metric,
                        "' for this model; metrics: ", StrJoin(metric_names, ", ")));
    }
    if (t.change && t.change->direction == 0 && MetricDirection(t.metric) == 0) {
      return bad(StrCat(t.metric,
                        " is neither higher- nor lower-is-better: give the change "
                        "threshold a direction (higher_is_better or lower_is_better)"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<CheckResult>> RunChecks(const EvalConfig& config,
                                                   const std::vector<SliceResult>& slices,
                                                   const std::vector<std::string>& metric_names,
                                                   bool has_baseline) {
  KILN_RETURN_IF_ERROR(ValidateThresholds(config, metric_names));
  std::vector<CheckResult> out;
  const double confidence = config.bootstrap.confidence;
  for (const MetricThreshold& t : config.thresholds) {
    int direction = 0;
    if (t.change) {
      direction = t.change->direction != 0 ? t.change->direction : MetricDirection(t.metric);
    }
    // The kinds of check this threshold makes, with their thresholds.
    std::vector<std::pair<std::string, double>> kinds;
    if (t.lower) kinds.push_back({"lower", *t.lower});
    if (t.upper) kinds.push_back({"upper", *t.upper});
    if (t.change && t.change->absolute) kinds.push_back({"change_absolute", *t.change->absolute});
    if (t.change && t.change->relative) kinds.push_back({"change_relative", *t.change->relative});

    std::vector<std::string> missing;
    const std::vector<const SliceResult*> chosen = SelectSlices(t, slices, &missing);
    for (const std::string& name : missing) {
      for (const auto& [kind, threshold] : kinds) {
        CheckResult c;
        c.metric = t.metric;
        c.slice = name;
        c.kind = kind;
        c.threshold = threshold;
        c.value = std::nan("");
        c.line = t.line;
        c.status = CheckStatus::kFail;
        c.reason = StrCat("slice ", name, " has no rows in the data");
        out.push_back(std::move(c));
      }
    }
    for (const SliceResult* s : chosen) {
      for (const auto& [kind, threshold] : kinds) {
        CheckResult c;
        c.metric = t.metric;
        c.slice = s->name;
        c.kind = kind;
        c.threshold = threshold;
        c.line = t.line;
        const std::string what = StrCat(t.metric, " on ", s->name);
        if (s->rows < t.min_examples) {
          c.value = std::nan("");
          c.status = CheckStatus::kSkipped;
          c.reason =
              StrCat(s->name, " has ", s->rows, " rows, fewer than min_examples ", t.min_examples);
          out.push_back(std::move(c));
          continue;
        }
        if (kind == "lower" || kind == "upper") {
          auto v = s->candidate.values.find(t.metric);
          c.value = v == s->candidate.values.end() ? std::nan("") : v->second;
          const bool lower = kind == "lower";
          if (std::isnan(c.value)) {
            c.status = CheckStatus::kFail;
            c.reason = StrCat(what, " is undefined: ", UndefinedWhy(t.metric));
          } else if (lower ? c.value < threshold : c.value > threshold) {
            c.status = CheckStatus::kFail;
            c.reason =
                StrCat(what, " is ", Fmt(c.value), ", ",
                       lower ? "below the lower" : "above the upper", " bound ", Fmt(threshold));
          } else {
            c.reason = StrCat(what, " is ", Fmt(c.value), ", within the ",
                              lower ? "lower" : "upper", " bound ", Fmt(threshold));
          }
          out.push_back(std::move(c));
          continue;
        }
        // A change check.
        const bool relative = kind == "change_relative";
        const char* unit = relative ? "relative improvement" : "improvement";
        if (!has_baseline) {
          c.value = std::nan("");
          c.status = CheckStatus::kSkipped;
          c.reason = "no baseline given (--baseline): change thresholds are skipped";
          out.push_back(std::move(c));
          continue;
        }
        auto d = s->changes.find(t.metric);
        if (d == s->changes.end()) {
          c.value = std::nan("");
          c.status = CheckStatus::kFail;
          c.reason = StrCat(what, ": no comparison with the baseline");
          out.push_back(std::move(c));
          continue;
        }
        const MetricDelta& delta = d->second;
        const double diff = relative ? delta.relative : delta.absolute;
        const std::optional<Interval>& ci = relative ? delta.relative_ci : delta.absolute_ci;
        c.value = direction * diff;
        if (ci) {
          c.interval = direction > 0 ? *ci : Interval{-ci->upper, -ci->lower};
        }
        if (std::isnan(c.value)) {
          c.status = CheckStatus::kFail;
          if (std::isnan(delta.candidate) || std::isnan(delta.baseline)) {
            c.reason = StrCat(what, " is undefined: ", UndefinedWhy(t.metric));
          } else {
            c.reason = StrCat(what, ": the relative change is undefined (the baseline's ", t.metric,
                              " is 0)");
          }
        } else if (c.interval) {
          const bool worse = c.interval->upper < threshold;
          c.status = worse ? CheckStatus::kFail : CheckStatus::kPass;
          c.reason = StrCat(what, ": ", unit, " ", Fmt(c.value), " (",
                            FmtInterval(*c.interval, confidence), ") is ",
                            worse ? "significantly below" : "not significantly below",
                            " the required ", Fmt(threshold), " (candidate ", Fmt(delta.candidate),
                            ", baseline ", Fmt(delta.baseline), ")");
        } else {
          const bool worse = c.value < threshold;
          c.status = worse ? CheckStatus::kFail : CheckStatus::kPass;
          c.reason =
              StrCat(what, ": ", unit, " ", Fmt(c.value), " is ", worse ? "below" : "at or above",
                     " the required ", Fmt(threshold), " (candidate ", Fmt(delta.candidate),
                     ", baseline ", Fmt(delta.baseline), "; no confidence interval",
                     config.bootstrap.samples == 0 ? ": bootstrap is off"
                                                   : ": too few resamples define the metric",
                     ")");
        }
        out.push_back(std::move(c));
      }
    }
  }
  return out;
}

}  // namespace kiln::eval
