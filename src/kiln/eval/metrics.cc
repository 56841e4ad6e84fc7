#include "kiln/eval/metrics.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <functional>
#include <limits>
#include <numeric>
#include <unordered_map>

#include "absl/status/status.h"
#include "kiln/base/status.h"
#include "kiln/base/str.h"

namespace kiln::eval {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
// sklearn >= 1.5 clips probabilities at the machine epsilon of their dtype (float64 here).
constexpr double kLogLossEps = DBL_EPSILON;
constexpr int kCalibrationBuckets = 10;

double Div(double a, double b) { return b != 0 ? a / b : kNaN; }

double ClippedLogLoss(double p) { return -std::log(std::clamp(p, kLogLossEps, 1 - kLogLossEps)); }

// The calibration bucket of a prediction: [i/10, (i+1)/10), the last one closed. Compared
// at the score's float precision, so a score that prints as 0.7 is in [0.7, 0.8).
int CalibrationBucketOf(float p) {
  int b = 0;
  for (int j = 1; j < kCalibrationBuckets; ++j) {
    if (p >= static_cast<float>(static_cast<double>(j) / kCalibrationBuckets)) b = j;
  }
  return b;
}

// NDCG at each cutoff of one query's rows (sklearn's tie-averaged DCG over the ideal DCG).
std::vector<double> QueryNdcg(const std::vector<uint32_t>& rows, std::span<const float> scores,
                              std::span<const double> gains, const std::vector<int>& cutoffs) {
  const size_t n = rows.size();
  std::vector<uint32_t> order(rows);
  std::stable_sort(order.begin(), order.end(),
                   [&](uint32_t a, uint32_t b) { return scores[a] > scores[b]; });
  std::vector<double> ideal(n);
  for (size_t i = 0; i < n; ++i) ideal[i] = gains[rows[i]];
  std::sort(ideal.begin(), ideal.end(), std::greater<double>());
  std::vector<double> out;
  for (int k : cutoffs) {
    auto discount = [k](size_t rank) {
      return rank < static_cast<size_t>(k) ? 1.0 / std::log2(static_cast<double>(rank) + 2) : 0.0;
    };
    double dcg = 0, idcg = 0;
    for (size_t i = 0; i < n;) {
      size_t j = i;
      double gain = 0, disc = 0;
      for (; j < n && scores[order[j]] == scores[order[i]]; ++j) {
        gain += gains[order[j]];
        disc += discount(j);
      }
      dcg += gain / static_cast<double>(j - i) * disc;
      i = j;
    }
    for (size_t i = 0; i < n; ++i) idcg += ideal[i] * discount(i);
    out.push_back(idcg > 0 ? dcg / idcg : 0.0);
  }
  return out;
}

}  // namespace

std::vector<std::string> MetricNames(const MetricOptions& o) {
  std::vector<std::string> names = {"example_count"};
  if (o.weighted) names.push_back("weighted_example_count");
  switch (o.task) {
    case model::Task::kBinary:
      for (const char* m : {"auc", "auc_pr", "log_loss", "accuracy", "precision", "recall", "f1",
                            "calibration", "mean_prediction", "mean_label"}) {
        names.push_back(m);
      }
      break;
    case model::Task::kMulticlass:
      for (const char* m : {"accuracy", "log_loss", "top_k_accuracy"}) names.push_back(m);
      break;
    case model::Task::kRegression:
      for (const char* m : {"rmse", "mae", "r2", "mean_prediction", "mean_label"}) {
        names.push_back(m);
      }
      break;
  }
  for (int k : o.ndcg_k) names.push_back(StrCat("ndcg@", k));
  return names;
}

int MetricDirection(std::string_view m) {
  if (m.starts_with("ndcg@")) return 1;
  for (const char* up :
       {"auc", "auc_pr", "accuracy", "precision", "recall", "f1", "r2", "top_k_accuracy"}) {
    if (m == up) return 1;
  }
  for (const char* down : {"log_loss", "rmse", "mae"}) {
    if (m == down) return -1;
  }
  return 0;
}

absl::StatusOr<MetricsCalculator> MetricsCalculator::Create(const MetricOptions& options,
                                                            const ScoredRows& rows) {
  MetricsCalculator c;
  c.options_ = options;
  const size_t n = rows.labels.size();
  const model::Task task = options.task;
  const size_t k = task == model::Task::kMulticlass ? static_cast<size_t>(options.num_classes) : 1;
  if (task == model::Task::kMulticlass && options.num_classes < 2) {
    return absl::InvalidArgumentError("a multiclass model needs at least 2 classes");
  }
  if (rows.scores.size() != n * k) {
    return absl::InvalidArgumentError(
        StrCat(rows.scores.size(), " scores for ", n, " rows of ", k, " outputs"));
  }
  if (!rows.weights.empty() && rows.weights.size() != n) {
    return absl::InvalidArgumentError(StrCat(rows.weights.size(), " weights for ", n, " rows"));
  }
  if (!options.ndcg_k.empty()) {
    if (task == model::Task::kMulticlass) {
      return absl::InvalidArgumentError(
          "ranking metrics need a binary or regression model (one score per row)");
    }
    if (rows.query.size() != n) {
      return absl::InvalidArgumentError(StrCat(rows.query.size(), " query ids for ", n, " rows"));
    }
    for (int cutoff : options.ndcg_k) {
      if (cutoff < 1) return absl::InvalidArgumentError(StrCat("ndcg cutoff ", cutoff, " < 1"));
    }
  }
  if (task == model::Task::kMulticlass && options.top_k < 1) {
    return absl::InvalidArgumentError(StrCat("top_k ", options.top_k, " < 1"));
  }
  for (size_t i = 0; i < n * k; ++i) {
    if (!std::isfinite(rows.scores[i])) {
      return absl::FailedPreconditionError(
          StrCat("the model gave a non-finite score (", rows.scores[i], ") for row ", i / k));
    }
  }
  for (size_t i = 0; i < n; ++i) {
    const double y = rows.labels[i];
    if (!std::isfinite(y)) return absl::InvalidArgumentError(StrCat("row ", i, ": label ", y));
    if (task == model::Task::kBinary && y != 0 && y != 1) {
      return absl::InvalidArgumentError(StrCat("row ", i, ": binary label ", y, " is not 0 or 1"));
    }
    if (task == model::Task::kMulticlass &&
        (y != std::floor(y) || y < 0 || y >= options.num_classes)) {
      return absl::InvalidArgumentError(
          StrCat("row ", i, ": class ", y, " is not in [0, ", options.num_classes, ")"));
    }
    if (!options.ndcg_k.empty() && y < 0) {
      return absl::InvalidArgumentError(
          StrCat("row ", i, ": ranking gain ", y, " is negative (gains must be >= 0)"));
    }
    if (!rows.weights.empty() && !(rows.weights[i] >= 0 && std::isfinite(rows.weights[i]))) {
      return absl::InvalidArgumentError(
          StrCat("row ", i, ": weight ", rows.weights[i], " is not a finite number >= 0"));
    }
  }
  c.labels_.assign(rows.labels.begin(), rows.labels.end());
  c.weights_.assign(rows.weights.begin(), rows.weights.end());
  c.scores_.assign(rows.scores.begin(), rows.scores.end());

  if (task == model::Task::kBinary) {
    c.order_.resize(n);
    std::iota(c.order_.begin(), c.order_.end(), 0);
    std::stable_sort(c.order_.begin(), c.order_.end(),
                     [&](uint32_t a, uint32_t b) { return c.scores_[a] > c.scores_[b]; });
    for (size_t i = 0; i < n; ++i) {
      if (i == 0 || c.scores_[c.order_[i]] != c.scores_[c.order_[i - 1]]) {
        c.tie_starts_.push_back(static_cast<uint32_t>(i));
      }
    }
    c.tie_starts_.push_back(static_cast<uint32_t>(n));
    c.row_loss_.resize(n);
    for (size_t i = 0; i < n; ++i) {
      const double p = c.scores_[i];
      // As sklearn: the negative class's probability is 1 - p, clipped itself.
      c.row_loss_[i] = c.labels_[i] == 1 ? ClippedLogLoss(p) : ClippedLogLoss(1 - p);
    }
  } else if (task == model::Task::kMulticlass) {
    c.row_loss_.resize(n);
    c.row_top_k_.resize(n);
    c.row_pred_.resize(n);
    for (size_t i = 0; i < n; ++i) {
      const float* s = &c.scores_[i * k];
      const size_t y = static_cast<size_t>(c.labels_[i]);
      c.row_pred_[i] = static_cast<int>(std::max_element(s, s + k) - s);
      c.row_loss_[i] = ClippedLogLoss(s[y]);
      size_t above = 0;
      for (size_t j = 0; j < k; ++j) above += s[j] > s[y] || (s[j] == s[y] && j > y);
      c.row_top_k_[i] = above < static_cast<size_t>(options.top_k);
    }
  }

  if (!options.ndcg_k.empty()) {
    std::unordered_map<uint32_t, size_t> local;
    std::vector<std::vector<uint32_t>> groups;
    for (size_t i = 0; i < n; ++i) {
      auto [it, added] = local.try_emplace(rows.query[i], groups.size());
      if (added) groups.emplace_back();
      groups[it->second].push_back(static_cast<uint32_t>(i));
    }
    c.query_ndcg_.assign(options.ndcg_k.size(), {});
    for (auto& g : groups) {
      if (g.size() < 2) continue;
      std::vector<double> ndcg = QueryNdcg(g, c.scores_, c.labels_, options.ndcg_k);
      for (size_t j = 0; j < ndcg.size(); ++j) c.query_ndcg_[j].push_back(ndcg[j]);
      c.query_rows_.push_back(std::move(g));
    }
  }
  return c;
}

Metrics MetricsCalculator::Compute() const {
  Metrics m;
  Evaluate({}, {}, &m, /*details=*/true);
  return m;
}

MetricValues MetricsCalculator::ComputeResampled(std::span<const double> row_multiplicity,
                                                 std::span<const double> query_multiplicity) const {
  Metrics m;
  Evaluate(row_multiplicity, query_multiplicity, &m, /*details=*/false);
  return std::move(m.values);
}

void MetricsCalculator::Evaluate(std::span<const double> row_mult,
                                 std::span<const double> query_mult, Metrics* out,
                                 bool details) const {
  const size_t n = labels_.size();
  auto mult = [&](size_t i) { return row_mult.empty() ? 1.0 : row_mult[i]; };
  auto weight = [&](size_t i) { return (weights_.empty() ? 1.0 : weights_[i]) * mult(i); };
  MetricValues& v = out->values;
  double count = 0, wsum = 0;
  for (size_t i = 0; i < n; ++i) {
    count += mult(i);
    wsum += weight(i);
  }
  v["example_count"] = count;
  if (options_.weighted) v["weighted_example_count"] = wsum;

  switch (options_.task) {
    case model::Task::kBinary: {
      double pos = 0, neg = 0, loss = 0, sum_pred = 0;
      double tp = 0, fp = 0, tn = 0, fn = 0;
      std::vector<CalibrationBucket> table;
      if (details) {
        table.resize(kCalibrationBuckets);
        for (int b = 0; b < kCalibrationBuckets; ++b) {
          table[b].lower = static_cast<double>(b) / kCalibrationBuckets;
          table[b].upper = static_cast<double>(b + 1) / kCalibrationBuckets;
        }
      }
      for (size_t i = 0; i < n; ++i) {
        const double w = weight(i), y = labels_[i], p = scores_[i];
        pos += w * y;
        neg += w * (1 - y);
        loss += w * row_loss_[i];
        sum_pred += w * p;
        // At the score's precision: a score that prints as the threshold meets it.
        const bool predicted = scores_[i] >= static_cast<float>(options_.threshold);
        if (y == 1) {
          (predicted ? tp : fn) += w;
        } else {
          (predicted ? fp : tn) += w;
        }
        if (details) {
          CalibrationBucket& b = table[CalibrationBucketOf(scores_[i])];
          ++b.count;
          b.weight += w;
          b.mean_prediction += w * p;  // sums until divided below
          b.mean_label += w * y;
        }
      }
      // One sweep over runs of equal scores, highest first: ROC AUC as the weighted
      // Mann-Whitney statistic (ties half), and average precision as sklearn's step sum
      // over distinct thresholds.
      double auc_sum = 0, ap = 0, pos_above = 0, tps = 0, fps = 0;
      for (size_t g = 0; g + 1 < tie_starts_.size(); ++g) {
        double p_g = 0, n_g = 0;
        for (uint32_t j = tie_starts_[g]; j < tie_starts_[g + 1]; ++j) {
          const uint32_t r = order_[j];
          const double w = weight(r);
          p_g += w * labels_[r];
          n_g += w * (1 - labels_[r]);
        }
        auc_sum += n_g * (pos_above + p_g / 2);
        pos_above += p_g;
        tps += p_g;
        fps += n_g;
        if (p_g > 0) ap += p_g / pos * (tps / (tps + fps));
      }
      v["auc"] = pos > 0 && neg > 0 ? auc_sum / (pos * neg) : kNaN;
      v["auc_pr"] = pos > 0 ? ap : kNaN;
      v["log_loss"] = Div(loss, wsum);
      v["accuracy"] = Div(tp + tn, wsum);
      v["precision"] = Div(tp, tp + fp);
      v["recall"] = Div(tp, tp + fn);
      v["f1"] = Div(2 * tp, 2 * tp + fp + fn);
      v["mean_prediction"] = Div(sum_pred, wsum);
      v["mean_label"] = Div(pos, wsum);
      v["calibration"] = Div(v["mean_prediction"], v["mean_label"]);
      if (details) {
        out->confusion_matrix = {{tn, fp}, {fn, tp}};
        for (CalibrationBucket& b : table) {
          b.mean_prediction = Div(b.mean_prediction, b.weight);
          b.mean_label = Div(b.mean_label, b.weight);
        }
        out->calibration_table = std::move(table);
      }
      break;
    }
    case model::Task::kMulticlass: {
      const size_t k = static_cast<size_t>(options_.num_classes);
      double correct = 0, loss = 0, top_k = 0;
      if (details) out->confusion_matrix.assign(k, std::vector<double>(k, 0.0));
      for (size_t i = 0; i < n; ++i) {
        const double w = weight(i);
        const size_t y = static_cast<size_t>(labels_[i]);
        correct += w * (static_cast<size_t>(row_pred_[i]) == y);
        loss += w * row_loss_[i];
        top_k += w * row_top_k_[i];
        if (details) out->confusion_matrix[y][row_pred_[i]] += w;
      }
      v["accuracy"] = Div(correct, wsum);
      v["log_loss"] = Div(loss, wsum);
      v["top_k_accuracy"] = Div(top_k, wsum);
      break;
    }
    case model::Task::kRegression: {
      double sum_y = 0, sum_pred = 0, se = 0, ae = 0;
      for (size_t i = 0; i < n; ++i) {
        const double w = weight(i), y = labels_[i], p = scores_[i];
        sum_y += w * y;
        sum_pred += w * p;
        se += w * (p - y) * (p - y);
        ae += w * std::abs(p - y);
      }
      const double mean_y = Div(sum_y, wsum);
      double ss_tot = 0;
      for (size_t i = 0; i < n; ++i) {
        const double d = labels_[i] - mean_y;
        ss_tot += weight(i) * d * d;
      }
      v["rmse"] = std::sqrt(Div(se, wsum));
      v["mae"] = Div(ae, wsum);
      v["r2"] = ss_tot > 0 ? 1 - se / ss_tot : kNaN;
      v["mean_prediction"] = Div(sum_pred, wsum);
      v["mean_label"] = mean_y;
      break;
    }
  }

  if (!options_.ndcg_k.empty()) {
    const size_t q = query_rows_.size();
    for (size_t j = 0; j < options_.ndcg_k.size(); ++j) {
      double sum = 0, total = 0;
      for (size_t i = 0; i < q; ++i) {
        const double m = query_mult.empty() ? 1.0 : query_mult[i];
        sum += m * query_ndcg_[j][i];
        total += m;
      }
      v[StrCat("ndcg@", options_.ndcg_k[j])] = Div(sum, total);
    }
    if (details) out->queries = q;
  }
}

absl::StatusOr<Metrics> ComputeMetrics(const MetricOptions& options, const ScoredRows& rows) {
  KILN_ASSIGN_OR_RETURN(MetricsCalculator c, MetricsCalculator::Create(options, rows));
  return c.Compute();
}

}  // namespace kiln::eval
