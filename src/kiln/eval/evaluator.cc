#include "kiln/eval/evaluator.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <memory>
#include <unordered_map>

#include "absl/status/status.h"
#include "kiln/base/status.h"
#include "kiln/base/str.h"
#include "kiln/data/input.h"
#include "kiln/eval/bootstrap.h"
#include "kiln/eval/slicing.h"
#include "kiln/train/predictor.h"

namespace kiln::eval {
namespace {

using nlohmann::json;

bool HasValue(const data::Column* c, size_t row) {
  return c != nullptr && c->is_present(row) && c->value_count(row) > 0;
}

// "FILE line N" for messages.
std::string Where(const data::Batch& b, size_t row) {
  if (row < b.row_positions.size()) return StrCat(b.source, " line ", b.row_positions[row]);
  return StrCat(b.source, " row ", row + 1);
}

absl::StatusOr<double> NumberValue(const data::Batch& b, const data::Column& c, size_t row,
                                   std::string_view what) {
  const size_t i = c.offsets[row];
  if (c.type == data::ValueType::kInt) return static_cast<double>(c.ints[i]);
  if (c.type == data::ValueType::kFloat) return c.floats[i];
  const std::string_view s = c.str(i);
  double v = 0;
  auto res = std::from_chars(s.data(), s.data() + s.size(), v);
  if (res.ec != std::errc() || res.ptr != s.data() + s.size()) {
    return absl::InvalidArgumentError(
        StrCat(Where(b, row), ": ", what, " '", s, "' is not a number"));
  }
  return v;
}

json Number(double v) { return std::isfinite(v) ? json(v) : json(); }

json IntervalJson(const std::optional<Interval>& i) {
  return i ? json::array({Number(i->lower), Number(i->upper)}) : json();
}

json ModelJson(const train::Predictor& p, const std::string& dir) {
  const model::BundleManifest& m = p.manifest();
  return {
      {"path", dir}, {"model_type", m.model_type}, {"backend", m.backend}, {"created", m.created}};
}

json MetricsJson(const Metrics& m, const EvalResult& r) {
  json j;
  json values = json::object();
  for (const std::string& name : r.metric_names) {
    auto it = m.values.find(name);
    if (it == m.values.end()) continue;
    // Row counts are integers; everything else is a real number (null when undefined).
    values[name] =
        name == "example_count" ? json(static_cast<uint64_t>(it->second)) : Number(it->second);
  }
  j["metrics"] = values;
  if (r.task == model::Task::kBinary) {
    const auto& cm = m.confusion_matrix;
    j["confusion_matrix"] = {
        {"tp", cm[1][1]}, {"fp", cm[0][1]}, {"tn", cm[0][0]}, {"fn", cm[1][0]}};
    json table = json::array();
    for (const CalibrationBucket& b : m.calibration_table) {
      table.push_back({{"lower", b.lower},
                       {"upper", b.upper},
                       {"count", b.count},
                       {"weight", b.weight},
                       {"mean_prediction", Number(b.mean_prediction)},
                       {"mean_label", Number(b.mean_label)}});
    }
    j["calibration_table"] = table;
  } else if (r.task == model::Task::kMulticlass) {
    j["confusion_matrix"] = {{"classes", r.classes}, {"matrix", m.confusion_matrix}};
  }
  const bool ranking = std::any_of(r.metric_names.begin(), r.metric_names.end(),
                                   [](const std::string& n) { return n.starts_with("ndcg@"); });
  if (ranking) j["queries"] = m.queries;
  return j;
}

// Everything the metrics need of the evaluated rows, in input order.
struct Rows {
  std::vector<float> candidate;  // rows * outputs
  std::vector<float> baseline;
  std::vector<double> labels;
  std::vector<double> weights;
  std::vector<uint32_t> query;
  size_t size() const { return labels.size(); }
};

}  // namespace

absl::StatusOr<EvalResult> Evaluate(Env* env, const EvalRequest& req) {
  const EvalConfig& config = req.config;
  KILN_ASSIGN_OR_RETURN(std::unique_ptr<train::Predictor> cand,
                        train::Predictor::Load(env, req.model, req.key));
  std::unique_ptr<train::Predictor> base;
  if (!req.baseline.empty()) {
    KILN_ASSIGN_OR_RETURN(base, train::Predictor::Load(env, req.baseline, req.key));
    if (base->task() != cand->task()) {
      return absl::FailedPreconditionError(
          StrCat("the baseline ", req.baseline, " is a ", model::TaskName(base->task()),
                 " model and the candidate ", req.model, " a ", model::TaskName(cand->task()),
                 " one: they cannot be compared"));
    }
    if (base->classes() != cand->classes()) {
      return absl::FailedPreconditionError(
          StrCat("the baseline's classes (", StrJoin(base->classes(), ", "),
                 ") differ from the candidate's (", StrJoin(cand->classes(), ", "), ")"));
    }
  }

  EvalResult result;
  result.task = cand->task();
  result.classes = cand->classes();
  result.has_baseline = base != nullptr;
  result.label =
      config.label.empty() ? cand->manifest().config.value("label", std::string()) : config.label;
  if (result.label.empty()) {
    return absl::InvalidArgumentError(
        StrCat("the model ", req.model,
               " records no label column: set `label: COLUMN` in the eval config (--config)"));
  }
  const model::Task task = result.task;
  if (config.ranking && task == model::Task::kMulticlass) {
    return absl::InvalidArgumentError(
        StrCat(config.source,
               ": ranking metrics need a binary or regression model (one score "
               "per row); this one is multiclass"));
  }
  MetricOptions mo;
  mo.task = task;
  mo.num_classes = static_cast<int>(result.classes.size());
  mo.threshold = config.decision_threshold;
  mo.top_k = config.top_k;
  if (config.ranking) mo.ndcg_k = config.ranking->k;
  mo.weighted = !config.weight.empty();
  result.metric_names = MetricNames(mo);
  // A config that does not fit the model fails now, not after reading the data.
  KILN_RETURN_IF_ERROR(ValidateThresholds(config, result.metric_names));
  const size_t k = task == model::Task::kMulticlass ? result.classes.size() : 1;

  // Read the rows, typed as the models' signatures declare their inputs.
  data::ResolveOptions ro;
  ro.split = req.split;
  std::vector<const data::TableSchema*> inputs = {&cand->inputs()};
  if (base) inputs.push_back(&base->inputs());
  data::BadRowSink bad(data::BadRowPolicy::kError);
  KILN_ASSIGN_OR_RETURN(std::unique_ptr<data::BatchReader> reader,
                        train::OpenRowsTypedAs(env, req.data, ro, inputs, &bad));
  Slicer slicer(config.slicing);
  Rows rows;
  std::unordered_map<std::string, uint32_t> query_ids;
  bool label_seen = false;
  data::Batch batch;
  std::vector<float> cand_scores, base_scores;
  std::vector<uint8_t> keep;
  for (;;) {
    KILN_ASSIGN_OR_RETURN(bool more, reader->Next(&batch));
    if (!more) break;
    if (req.progress) req.progress->Update(reader->bytes_read(), 0, "");
    KILN_RETURN_IF_ERROR(cand->Predict(batch, &cand_scores));
    if (base) {
      KILN_RETURN_IF_ERROR(base->Predict(batch, &base_scores));
    }
    if (cand_scores.size() != batch.num_rows * k ||
        (base && base_scores.size() != cand_scores.size())) {
      return absl::InternalError(
          StrCat("a model gave ", cand_scores.size(), " scores for ", batch.num_rows, " rows"));
    }
    auto column = [&](const std::string& name) -> const data::Column* {
      if (name.empty()) return nullptr;
      const int i = batch.FindColumn(name);
      return i < 0 ? nullptr : &batch.columns[i];
    };
    const data::Column* label = column(result.label);
    const data::Column* weight = column(config.weight);
    const data::Column* query = config.ranking ? column(config.ranking->query_key) : nullptr;
    label_seen = label_seen || label != nullptr;
    keep.assign(batch.num_rows, 0);
    const uint32_t first_row = static_cast<uint32_t>(rows.size());
    for (size_t r = 0; r < batch.num_rows; ++r) {
      if (!HasValue(label, r)) {
        ++result.rows_without_label;
        continue;
      }
      double y = 0;
      if (task == model::Task::kRegression) {
        KILN_ASSIGN_OR_RETURN(y, NumberValue(batch, *label, r, "label"));
      } else {
        const std::string text = data::FirstValueText(*label, r);
        auto it = std::find(result.classes.begin(), result.classes.end(), text);
        if (it == result.classes.end()) {
          return absl::InvalidArgumentError(StrCat(Where(batch, r), ": label '", text,
                                                   "' is not a class of the model (",
                                                   StrJoin(result.classes, ", "), ")"));
        }
        y = static_cast<double>(it - result.classes.begin());
      }
      if (!config.weight.empty()) {
        if (!HasValue(weight, r)) {
          return absl::InvalidArgumentError(
              StrCat(Where(batch, r), ": no weight (column '", config.weight, "')"));
        }
        KILN_ASSIGN_OR_RETURN(double w, NumberValue(batch, *weight, r, "weight"));
        if (!(w >= 0) || !std::isfinite(w)) {
          return absl::InvalidArgumentError(
              StrCat(Where(batch, r), ": weight ", w, " is not a finite number >= 0"));
        }
        rows.weights.push_back(w);
      }
      if (config.ranking) {
        if (!HasValue(query, r)) {
          return absl::InvalidArgumentError(
              StrCat(Where(batch, r), ": no query key (column '", config.ranking->query_key, "')"));
        }
        auto [it, added] = query_ids.try_emplace(data::FirstValueText(*query, r),
                                                 static_cast<uint32_t>(query_ids.size()));
        rows.query.push_back(it->second);
      }
      rows.labels.push_back(y);
      rows.candidate.insert(rows.candidate.end(), cand_scores.begin() + r * k,
                            cand_scores.begin() + (r + 1) * k);
      if (base) {
        rows.baseline.insert(rows.baseline.end(), base_scores.begin() + r * k,
                             base_scores.begin() + (r + 1) * k);
      }
      keep[r] = 1;
    }
    KILN_RETURN_IF_ERROR(slicer.Add(batch, keep, first_row));
  }
  KILN_RETURN_IF_ERROR(bad.Finish());
  if (!label_seen) {
    return absl::InvalidArgumentError(
        StrCat(req.data, " has no label column '", result.label, "'"));
  }
  if (rows.size() == 0) {
    return absl::InvalidArgumentError(
        StrCat(req.data, " has no rows with a label ('", result.label, "')"));
  }
  result.rows = rows.size();
  KILN_ASSIGN_OR_RETURN(std::vector<Slice> slices,
                        slicer.Finish(static_cast<uint32_t>(rows.size())));

  // Metrics per slice, and the comparison with the baseline.
  for (const Slice& slice : slices) {
    const size_t n = slice.rows.size();
    std::vector<float> cs(n * k), bs(base ? n * k : 0);
    std::vector<double> labels(n), weights(rows.weights.empty() ? 0 : n);
    std::vector<uint32_t> query(rows.query.empty() ? 0 : n);
    for (size_t i = 0; i < n; ++i) {
      const uint32_t r = slice.rows[i];
      std::copy_n(rows.candidate.begin() + r * k, k, cs.begin() + i * k);
      if (base) std::copy_n(rows.baseline.begin() + r * k, k, bs.begin() + i * k);
      labels[i] = rows.labels[r];
      if (!weights.empty()) weights[i] = rows.weights[r];
      if (!query.empty()) query[i] = rows.query[r];
    }
    auto calc = [&](const std::vector<float>& scores) {
      return MetricsCalculator::Create(mo, ScoredRows{scores, labels, weights, query});
    };
    KILN_ASSIGN_OR_RETURN(MetricsCalculator c, calc(cs));
    SliceResult sr;
    sr.name = slice.name;
    sr.spec = slice.spec;
    sr.rows = n;
    sr.candidate = c.Compute();
    if (base) {
      KILN_ASSIGN_OR_RETURN(MetricsCalculator b, calc(bs));
      sr.baseline = b.Compute();
      KILN_ASSIGN_OR_RETURN(sr.changes, CompareModels(c, b, config.bootstrap, slice.name));
    }
    result.slices.push_back(std::move(sr));
  }
  KILN_ASSIGN_OR_RETURN(result.checks,
                        RunChecks(config, result.slices, result.metric_names, result.has_baseline));
  result.blessed =
      std::none_of(result.checks.begin(), result.checks.end(),
                   [](const CheckResult& c) { return c.status == CheckStatus::kFail; });

  // evaluation.json
  json& e = result.evaluation;
  e["format"] = "kiln.evaluation";
  e["format_version"] = 1;
  e["candidate"] = ModelJson(*cand, req.model);
  e["baseline"] = base ? ModelJson(*base, req.baseline) : json();
  e["data"] = req.data;
  e["config"] = config.source.empty() ? json() : json(config.source);
  e["task"] = std::string(model::TaskName(task));
  e["label"] = result.label;
  if (task != model::Task::kRegression) e["classes"] = result.classes;
  e["weight"] = config.weight.empty() ? json() : json(config.weight);
  if (task == model::Task::kBinary) e["decision_threshold"] = config.decision_threshold;
  if (task == model::Task::kMulticlass) e["top_k"] = config.top_k;
  if (config.ranking) {
    e["ranking"] = {{"query_key", config.ranking->query_key}, {"k", config.ranking->k}};
  }
  e["bootstrap"] = base ? json{{"samples", config.bootstrap.samples},
                               {"seed", config.bootstrap.seed},
                               {"confidence", config.bootstrap.confidence}}
                        : json();
  e["rows"] = result.rows;
  e["rows_without_label"] = result.rows_without_label;
  json slices_json = json::array();
  for (const SliceResult& s : result.slices) {
    json j;
    j["slice"] = s.name;
    j["spec"] = s.spec.empty() ? json() : json(s.spec);
    j["example_count"] = s.rows;
    j["candidate"] = MetricsJson(s.candidate, result);
    if (s.baseline) {
      j["baseline"] = MetricsJson(*s.baseline, result);
      json changes = json::object();
      for (const std::string& name : result.metric_names) {
        auto it = s.changes.find(name);
        if (it == s.changes.end()) continue;
        const MetricDelta& d = it->second;
        changes[name] = {{"absolute", Number(d.absolute)},
                         {"relative", Number(d.relative)},
                         {"absolute_ci", IntervalJson(d.absolute_ci)},
                         {"relative_ci", IntervalJson(d.relative_ci)},
                         {"resamples", d.resamples}};
      }
      j["changes"] = changes;
    }
    slices_json.push_back(std::move(j));
  }
  e["slices"] = std::move(slices_json);
  json checks = json::array();
  json failing = json::array();
  for (const CheckResult& c : result.checks) {
    json j = {{"metric", c.metric},       {"slice", c.slice},
              {"kind", c.kind},           {"threshold", c.threshold},
              {"value", Number(c.value)}, {"status", std::string(CheckStatusName(c.status))},
              {"reason", c.reason},       {"config_line", c.line}};
    if (c.kind.starts_with("change")) j["interval"] = IntervalJson(c.interval);
    if (c.status == CheckStatus::kFail) failing.push_back(j);
    checks.push_back(std::move(j));
  }
  e["checks"] = std::move(checks);
  e["blessed"] = result.blessed;
  result.blessing = {{"blessed", result.blessed},
                     {"status", result.blessed ? "BLESSED" : "NOT_BLESSED"},
                     {"candidate", req.model},
                     {"baseline", base ? json(req.baseline) : json()},
                     {"failing_checks", std::move(failing)}};
  return result;
}

absl::Status WriteEvaluation(Env* env, const std::string& dir, const EvalResult& result) {
  KILN_RETURN_IF_ERROR(env->CreateDirs(dir));
  KILN_RETURN_IF_ERROR(
      WriteFileAtomically(env, JoinPath(dir, kEvaluationFile), result.evaluation.dump(2) + "\n"));
  // The blessing last: its presence says the evaluation is complete.
  return WriteFileAtomically(env, JoinPath(dir, kBlessingFile), result.blessing.dump(2) + "\n");
}

namespace {

std::string Cell(double v, bool signed_) {
  if (!std::isfinite(v)) return "-";
  if (v == 0) v = 0;  // no "-0.0000"
  char buf[32];
  std::snprintf(buf, sizeof buf, signed_ ? "%+.4f" : "%.4f", v);
  return buf;
}

std::string Pad(std::string s, size_t width, bool right) {
  if (s.size() >= width) return s;
  return right ? std::string(width - s.size(), ' ') + s : s + std::string(width - s.size(), ' ');
}

}  // namespace

std::string FormatReport(const EvalResult& r) {
  // The table shows the headline metrics; evaluation.json has them all.
  std::vector<std::string> cols;
  switch (r.task) {
    case model::Task::kBinary:
      cols = {"auc", "auc_pr", "log_loss", "accuracy", "precision", "recall", "f1", "calibration"};
      break;
    case model::Task::kMulticlass:
      cols = {"accuracy", "log_loss", "top_k_accuracy"};
      break;
    case model::Task::kRegression:
      cols = {"rmse", "mae", "r2"};
      break;
  }
  for (const std::string& m : r.metric_names) {
    if (m.starts_with("ndcg@")) cols.push_back(m);
  }
  size_t name_width = 5;
  for (const SliceResult& s : r.slices) name_width = std::max(name_width, s.name.size());
  auto table = [&](std::string_view title, auto value, bool signed_) {
    std::string out =
        StrCat(title, "\n", Pad("slice", name_width, false), "  ", Pad("examples", 8, true));
    std::vector<size_t> widths;
    for (const std::string& c : cols) {
      widths.push_back(std::max<size_t>(c.size(), 7));
      StrAppend(&out, "  ", Pad(c, widths.back(), true));
    }
    out += "\n";
    for (const SliceResult& s : r.slices) {
      StrAppend(&out, Pad(s.name, name_width, false), "  ", Pad(StrCat(s.rows), 8, true));
      for (size_t i = 0; i < cols.size(); ++i) {
        StrAppend(&out, "  ", Pad(Cell(value(s, cols[i]), signed_), widths[i], true));
      }
      out += "\n";
    }
    return out;
  };
  auto get = [](const MetricValues& v, const std::string& m) {
    auto it = v.find(m);
    return it == v.end() ? std::nan("") : it->second;
  };
  std::string out =
      StrCat(r.rows, " rows evaluated (", model::TaskName(r.task), ", label '", r.label, "')");
  if (r.rows_without_label > 0)
    StrAppend(&out, "; ", r.rows_without_label, " without a label left out");
  out += "\n\n";
  out += table(
      "candidate",
      [&](const SliceResult& s, const std::string& m) { return get(s.candidate.values, m); },
      false);
  if (r.has_baseline) {
    out += "\n";
    out += table(
        "candidate - baseline",
        [&](const SliceResult& s, const std::string& m) {
          auto it = s.changes.find(m);
          return it == s.changes.end() ? std::nan("") : it->second.absolute;
        },
        true);
  }
  size_t pass = 0, fail = 0, skipped = 0;
  std::string failing;
  for (const CheckResult& c : r.checks) {
    if (c.status == CheckStatus::kPass) ++pass;
    if (c.status == CheckStatus::kSkipped) ++skipped;
    if (c.status == CheckStatus::kFail) {
      ++fail;
      StrAppend(&failing, "  FAIL ", c.kind, ": ", c.reason, "\n");
    }
  }
  StrAppend(&out, "\nchecks: ", pass, " passed, ", fail, " failed, ", skipped, " skipped\n",
            failing);
  StrAppend(&out, r.blessed ? "BLESSED" : "NOT_BLESSED", "\n");
  return out;
}

}  // namespace kiln::eval
