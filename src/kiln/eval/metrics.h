// Evaluation metrics of one model's scores on one slice of rows (TFMA's metrics).
//
// Scores are what train::Predictor::Predict gives: binary P(positive); multiclass one
// probability per class; regression the prediction. Labels: binary 0/1; multiclass the
// class index; regression the target; for ranking the label is the gain (>= 0).
//
// Metrics, by task (every weighted by the row weights when a weight column is given):
//   every task   example_count (rows; not weighted), weighted_example_count (with weights)
//   binary       auc (ROC, tied scores counted half), auc_pr (average precision, the step
//                sum of scikit-learn's average_precision_score), log_loss, accuracy,
//                precision, recall, f1 (positive when score >= threshold), mean_prediction,
//                mean_label, calibration (mean_prediction / mean_label); details: the
//                confusion matrix and a 10-bucket calibration table
//   multiclass   accuracy (argmax, the first of tied classes), log_loss, top_k_accuracy;
//                details: the confusion matrix by class
//   regression   rmse, mae, r2, mean_prediction, mean_label
//   ranking      ndcg@K for each cutoff K (binary and regression models with a query key)
//
// Conventions, chosen to agree with scikit-learn 1.9 on the same numbers:
//  - log_loss clips probabilities to [eps, 1 - eps] with eps = 2^-52 (double's machine
//    epsilon, as sklearn >= 1.5 does for float64 input); binary clips 1 - p, not p, for
//    negatives, as sklearn does.
//  - top_k_accuracy: the label's class is a hit when fewer than k classes rank above it,
//    where a class ranks above when its probability is higher, or equal with a higher class
//    index (sklearn's reversed stable sort).
//  - ndcg@K: linear gains, log2 discounts, tied scores share their gains (sklearn's
//    ndcg_score with ignore_ties=False); a query whose gains are all 0 scores 0; queries of
//    one row are left out (there is nothing to rank); the metric is the unweighted mean over
//    queries (row weights do not apply).
//  - A value that is undefined on the rows is NaN, never a made-up number: auc with one
//    class present, auc_pr without positives, precision with no predicted positive, recall
//    without positives, f1 when tp + fp + fn = 0, calibration when mean_label is 0, r2 when
//    the labels are constant, ndcg without a query of two rows, any metric of zero rows.
//
// Thread safety: a MetricsCalculator is immutable after Create; Compute may run on many
// threads at once.
#ifndef KILN_EVAL_METRICS_H_
#define KILN_EVAL_METRICS_H_

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "kiln/model/model.h"

namespace kiln::eval {

struct MetricOptions {
  model::Task task = model::Task::kBinary;
  int num_classes = 2;  // multiclass: probabilities per row
  // Binary: predicted positive when score >= threshold, compared in float (the scores'
  // precision), so a score printed as 0.35 meets a threshold of 0.35.
  double threshold = 0.5;
  int top_k = 3;            // multiclass: top_k_accuracy's k
  std::vector<int> ndcg_k;  // ranking cutoffs; empty: no ranking metrics
  bool weighted = false;    // whether to report weighted_example_count
};

// The rows of one slice as one model scored them. Spans must outlive Create only.
struct ScoredRows {
  std::span<const float> scores;    // rows * (multiclass ? num_classes : 1)
  std::span<const double> labels;   // one per row
  std::span<const double> weights;  // one per row (>= 0), or empty: all 1
  std::span<const uint32_t> query;  // ranking: a query id per row; empty otherwise
};

// Scalar metric values by name; NaN where undefined.
using MetricValues = std::map<std::string, double>;

struct CalibrationBucket {
  double lower = 0, upper = 0;  // predictions in [lower, upper); the last bucket holds 1.0
  uint64_t count = 0;           // rows
  double weight = 0;            // sum of row weights (= count without weights)
  double mean_prediction = 0;   // weighted; NaN for an empty bucket
  double mean_label = 0;
};

// Scalars and the tables that go with them.
struct Metrics {
  MetricValues values;
  // Binary: [[tn, fp], [fn, tp]]; multiclass: [true class][predicted class]. Weighted.
  std::vector<std::vector<double>> confusion_matrix;
  std::vector<CalibrationBucket> calibration_table;  // binary only: 10 equal-width buckets
  uint64_t queries = 0;                              // ranking: queries of >= 2 rows
};

// The names of the scalar metrics computed for `options`, in report order.
std::vector<std::string> MetricNames(const MetricOptions& options);

class MetricsCalculator {
 public:
  // Checks the rows and precomputes what does not depend on weights (the score order,
  // per-row losses), so bootstrap resamples cost one linear pass each.
  // Errors: kInvalidArgument for mismatched sizes, a binary label other than 0/1, a class
  // index out of range, a negative weight or gain, a non-finite label, or ranking metrics
  // for a multiclass model.
  static absl::StatusOr<MetricsCalculator> Create(const MetricOptions& options,
                                                  const ScoredRows& rows);

  size_t num_rows() const { return labels_.size(); }
  size_t num_queries() const { return query_rows_.size(); }

  // Metrics and tables of the rows as given.
  Metrics Compute() const;
  // Scalar metrics of a resample: row i counts row_multiplicity[i] times in the row
  // metrics, query q query_multiplicity[q] times in the ranking ones (sizes num_rows() and
  // num_queries(); an empty span means 1 each).
  MetricValues ComputeResampled(std::span<const double> row_multiplicity,
                                std::span<const double> query_multiplicity) const;

 private:
  MetricsCalculator() = default;
  void Evaluate(std::span<const double> row_mult, std::span<const double> query_mult, Metrics* out,
                bool details) const;

  MetricOptions options_;
  std::vector<double> labels_;
  std::vector<double> weights_;  // empty: all 1
  std::vector<float> scores_;
  // Binary: row indices by descending score, and where each run of equal scores starts
  // (plus the end).
  std::vector<uint32_t> order_;
  std::vector<uint32_t> tie_starts_;
  // Per-row log loss (binary and multiclass), hit at top-k, predicted class (multiclass).
  std::vector<double> row_loss_;
  std::vector<uint8_t> row_top_k_;
  std::vector<int> row_pred_;
  // Ranking: the rows of each query of >= 2 rows, and ndcg@K per query per cutoff.
  std::vector<std::vector<uint32_t>> query_rows_;
  std::vector<std::vector<double>> query_ndcg_;  // [cutoff][query]
};

// Convenience for one computation: Create + Compute.
absl::StatusOr<Metrics> ComputeMetrics(const MetricOptions& options, const ScoredRows& rows);

// Whether a higher value of `metric` is better: +1 (auc, accuracy, ...), -1 (log_loss,
// rmse, mae), 0 when neither is (example counts, calibration, means).
int MetricDirection(std::string_view metric);

}  // namespace kiln::eval

#endif  // KILN_EVAL_METRICS_H_
