// Feature transforms (TFX Transform in C++). Fit() runs a TransformSpec's analyzers (means,
// variances, quantiles, vocabularies) over the training split in one streaming pass and
// returns a FittedTransform; FittedTransform::Apply() turns raw rows into model inputs. Apply
// is the one code path for training, batch inference and serving, so the same raw row gives
// bit-identical features everywhere. The fitted transform is stored in the model bundle as
// JSON (ToJson / FromJson round-trip exactly, doubles included).
//
// Output. Apply writes a TransformedBatch: a row-major float32 matrix of the dense outputs
// (numeric features after their ops, one column each) and a row-major int64 matrix of the
// categorical outputs (bucketize, vocabulary, hash_buckets, pii salted_hash, crosses). Columns
// follow the schema's column order, crosses last in spec order; output_signature() names them
// and gives each categorical column its cardinality. Ids:
//  - vocabulary: 0..V-1 for the vocabulary (most frequent first, ties by value, bytewise),
//    V..V+O-1 for the O oov_buckets (Hash64(value) mod O), V+O for a missing value (and for
//    an unknown value when O = 0); cardinality V+O+1.
//  - hash_buckets N: Hash64(value) mod N; N for missing; cardinality N+1.
//  - pii salted_hash N: the first 8 bytes of HMAC-SHA256(salt, value), little-endian, mod N;
//    N for missing; cardinality N+1.
//  - bucketize with B boundaries b1 < ... < bB: the number of boundaries <= x (0..B); B+1 for
//    missing; cardinality B+2.
//  - cross of ids i1..im with N buckets: Hash64 of the ids as little-endian int64s, mod N
//    (a missing input takes part through its missing id); cardinality N.
// Hash64 is kiln's stable hash (base/hash.h): the same on every machine and version.
//
// Raw values. A feature's value in a row is the first value of its list; a missing feature,
// an empty list and a non-finite number (NaN, +-inf) are all "missing". Numeric features
// read INT or FLOAT columns (and STRING columns holding numbers, as a JSON client may send);
// STRING features read numbers as their text (integers in decimal, other numbers in
// shortest round-trip form). A column absent from the batch is missing in every row
// (serving clients may omit optional features); columns the transform does not use are
// ignored. After every op a non-finite result (log1p(-1), an overflow) is missing too. A
// numeric feature still missing after its last op is written as 0.0 (fill it, or bucketize
// it, to give missing values a meaning); dense values beyond float32's range saturate at
// +-FLT_MAX.
//
// Thread safety: a FittedTransform is immutable after Fit/FromJson; Apply may run on many
// threads at once. TransformFitter is not thread-safe.
#ifndef KILN_TRANSFORM_TRANSFORM_H_
#define KILN_TRANSFORM_TRANSFORM_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/base/env.h"
#include "kiln/base/status.h"
#include "kiln/base/string_map.h"
#include "kiln/data/batch.h"
#include "kiln/data/source.h"
#include "kiln/stats/string_counter.h"
#include "kiln/transform/transform_spec.h"

namespace kiln::transform {

inline constexpr char kTransformFormat[] = "kiln.transform";
inline constexpr int kTransformFormatVersion = 1;

// Finds the salt of a pii salted_hash op by its environment variable name; nullopt when
// unset. The salt is never written into the fitted transform, only a check value, so the
// serving process needs the same variable.
using SaltLookup = std::function<std::optional<std::string>(const std::string& env_name)>;
// Reads the process environment (getenv).
SaltLookup EnvironmentSalts();

struct FitOptions {
  // KLL sketch size for medians and quantile boundaries: exact while a feature has fewer
  // than 2 * kll_k values; beyond that the rank error bound (stats/kll.h) is about 0.3% at a
  // million values. Memory: about 5 * kll_k doubles per sketch. Default 1024.
  int kll_k = 1024;
  // Per vocabulary feature: counts stay exact up to exact_cap distinct values (and
  // exact_byte_cap bytes of them); beyond that the vocabulary comes from a heavy-hitter
  // table (stats/string_counter.h) and is marked inexact. top_capacity is raised to
  // 2 * top_k when that is larger.
  stats::StringCounterOptions vocabulary;
  // Where pii salts come from. Default: the process environment.
  SaltLookup salts = EnvironmentSalts();
  // Fit over a BlockSource: threads decoding blocks (0 = data::DefaultThreads()). Rows are
  // analyzed in input order whatever the thread count, so the result does not depend on it.
  int num_threads = 0;
};

struct LoadOptions {
  SaltLookup salts = EnvironmentSalts();
};

enum class OutputKind : uint8_t { kDense, kCategorical };

struct OutputColumn {
  std::string name;  // the feature's name, or the cross's
  OutputKind kind = OutputKind::kDense;
  int64_t cardinality = 0;  // categorical: ids are in [0, cardinality)
  int64_t missing_id = -1;  // categorical: the id of a missing value (-1 for crosses)
  bool operator==(const OutputColumn&) const = default;
};

struct OutputSignature {
  std::vector<OutputColumn> dense;        // column j of TransformedBatch::dense
  std::vector<OutputColumn> categorical;  // column j of TransformedBatch::ids
  bool operator==(const OutputSignature&) const = default;
};

struct TransformedBatch {
  size_t num_rows = 0;
  size_t dense_dim = 0;
  size_t num_categorical = 0;
  std::vector<float> dense;  // num_rows x dense_dim, row-major
  std::vector<int64_t> ids;  // num_rows x num_categorical, row-major

  float dense_at(size_t row, size_t col) const { return dense[row * dense_dim + col]; }
  int64_t id_at(size_t row, size_t col) const { return ids[row * num_categorical + col]; }
};

// One op with its fitted state.
struct FittedOp {
  Op op;
  double value = 0;                 // kFill on a numeric feature: the fill value
  std::string text;                 // kFill on a STRING feature: the fill value
  double mean = 0, std = 0;         // kZScore (population standard deviation)
  double min = 0, max = 0;          // kMinMax
  std::vector<double> boundaries;   // kBucketize: the boundaries used (fitted or given)
  std::vector<std::string> tokens;  // kVocabulary: token of id i
  // Analyzers: false when the statistics came from a sketch (KLL compacted, or vocabulary
  // counts past the exact cap) rather than exact counts.
  bool exact = true;
  std::string salt_check;  // kPiiSaltedHash: HMAC-SHA256(salt, "kiln.transform.salt")[0:16]

  // Not serialized: rebuilt from the above (and the salt) when loading.
  StringMap<int64_t> token_ids;
  std::string salt;
};

struct FittedFeature {
  std::string name;
  data::ValueType type = data::ValueType::kFloat;
  std::vector<FittedOp> ops;
  OutputColumn output;
  size_t output_index = 0;  // column in TransformedBatch::dense or ::ids
};

struct FittedCross {
  CrossSpec spec;
  std::vector<size_t> inputs;  // categorical column of each crossed feature
  size_t output_index = 0;
};

class FittedTransform {
 public:
  // Transforms every row of `raw` into `out` (resized; previous contents replaced). Errors
  // (kInvalidArgument): a column whose row count differs from raw.num_rows; a numeric
  // feature's STRING value that is not a number (naming feature and row).
  absl::Status Apply(const data::Batch& raw, TransformedBatch* out) const;

  // Names, kinds and cardinalities of the output columns (for the model builder).
  const OutputSignature& output_signature() const { return signature_; }
  const TransformSpec& spec() const { return spec_; }
  // Output features in output order (pii-dropped, excluded and unlisted-without-defaults
  // features are absent).
  const std::vector<FittedFeature>& features() const { return features_; }
  const std::vector<FittedCross>& crosses() const { return crosses_; }
  const FittedFeature* FindFeature(std::string_view name) const;
  // Rows the analyzers saw.
  uint64_t num_rows() const { return num_rows_; }
  // Things a person should know: features with no values to analyze, inexact vocabularies.
  const std::vector<std::string>& warnings() const { return warnings_; }

  // The spec, the fitted state of every op and the output signature, as JSON. Doubles are
  // written in shortest round-trip form, so FromJson(ToJson()) applies bit-identically.
  std::string ToJson() const;
  // Errors: kInvalidArgument for malformed JSON, an invalid op chain or fitted state, or
  // "outputs" that do not match the features; kFailedPrecondition for a newer format
  // version, or when a pii salt is unset or differs from the one used to fit (checked
  // against salt_check).
  static absl::StatusOr<FittedTransform> FromJson(std::string_view json,
                                                  const LoadOptions& options = {});

 private:
  friend class TransformFitter;
  absl::Status Finalize(const SaltLookup& salts);  // builds lookups and the signature

  TransformSpec spec_;
  std::vector<FittedFeature> features_;
  std::vector<FittedCross> crosses_;
  OutputSignature signature_;
  uint64_t num_rows_ = 0;
  std::vector<std::string> warnings_;
};

// Streams batches through the analyzers. What is exact and what is approximate:
//  - counts, min, max: exact;
//  - mean and variance: Welford's one-pass update (exact up to floating-point rounding);
//    rows filled by a fitted fill (mean/median) before a zscore are folded in afterwards as
//    k copies of the fill value (Chan's merge: mean' = (n mean + k v) / (n + k), and M2
//    likewise), so zscore sees exactly the statistics of the filled values;
//  - medians and quantile boundaries: a KLL sketch over the present values (exact while it
//    holds every value, i.e. below 2 * kll_k values per feature), with filled values added
//    afterwards at weight k; FittedOp::exact says which;
//  - vocabularies: exact counts up to the StringCounter cap, heavy hitters beyond it.
// Ops before the first fitted op (clip, log1p, fill constant) are applied while streaming,
// so analyzers see transformed values. After a zscore or minmax (affine maps) the
// statistics are carried through algebraically: moments and order statistics map exactly;
// a clip maps order statistics (so minmax or bucketize may follow it, zscore may not).
// A quantile q is the smallest value whose rank (values <= it) exceeds q * n, i.e. the value
// at 0-based position floor(q * n) of the sorted values; the median is q = 1/2 (the upper
// median for an even count). Quantile boundaries are the distinct quantiles i/N (i = 1..N-1)
// above the minimum, so a feature with few distinct values gets fewer buckets.
// An analyzer with no values to look at fits neutral parameters (fill 0, mean 0, std 0,
// min = max = 0, no boundaries, empty vocabulary) and records a warning.
class TransformFitter {
 public:
  // Resolves the spec against the schema: listed features must exist and their ops fit their
  // types; unlisted ones get DefaultOps() when spec.defaults, else are dropped; excluded ones
  // are skipped (and must exist, so a misspelt label cannot leak into the features); crosses
  // must name categorical output features. Errors are kInvalidArgument naming the feature;
  // a pii salt that is unset is kFailedPrecondition.
  static absl::StatusOr<std::unique_ptr<TransformFitter>> Create(const TransformSpec& spec,
                                                                 const data::TableSchema& schema,
                                                                 const FitOptions& options = {});
  ~TransformFitter();

  // Errors as FittedTransform::Apply.
  absl::Status Add(const data::Batch& batch);
  // Call once.
  absl::StatusOr<FittedTransform> Finish();

 private:
  struct FeatureState;
  TransformFitter() = default;

  FitOptions options_;
  FittedTransform result_;
  std::vector<std::unique_ptr<FeatureState>> states_;  // one per fitted feature
  uint64_t rows_ = 0;
};

// Fits over every block of `source` (decoded on options.num_threads threads, analyzed in
// order). `schema` fixes the features' types; an empty schema means source->KnownSchema().
absl::StatusOr<FittedTransform> Fit(const TransformSpec& spec, const data::TableSchema& schema,
                                    data::BlockSource* source, data::BadRowSink* bad,
                                    const FitOptions& options = {});

// Fits over split `split` (e.g. "train") of the kiln dataset in `dir`, with its schema.
absl::StatusOr<FittedTransform> FitDatasetSplit(Env* env, const std::string& dir,
                                                const std::string& split, const TransformSpec& spec,
                                                const FitOptions& options = {});

}  // namespace kiln::transform

#endif  // KILN_TRANSFORM_TRANSFORM_H_
