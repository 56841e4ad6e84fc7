// The transform spec: what happens to each raw feature before a model sees it (the data
// form of TFX Transform's preprocessing_fn). It is written as the `transform:` section of a
// YAML config, checked here for shape, checked against the data's column types when it is
// fitted (transform.h), and stored as JSON inside the fitted transform.
//
// Grammar (docs/transform.md has a worked example):
//
//   transform:
//     features:                 # feature name -> list of ops, applied in order
//       age: [{fill: median}, {clip: [0, 100]}, zscore]
//     crosses:                  # optional
//       - {features: [country, hour], hash_buckets: 1000, name: country_x_hour}
//     defaults: true            # optional (default true): unlisted features get the defaults
//     exclude: [label]          # optional: never transformed, never output
//
// An op is a bare name or a one-key map {name: argument}:
//   fill: mean | median | {constant: VALUE}      missing values (numeric; STRING: constant only)
//   clip: [LO, HI]                               either bound may be null (unbounded)
//   log1p                                        log(1 + x); x <= -1 becomes missing
//   zscore                                       (x - mean) / std, population std
//   minmax                                       (x - min) / (max - min)
//   bucketize: {quantiles: N} | {boundaries: [B1, B2, ...]}         -> categorical
//   vocabulary | {vocabulary: {top_k: K, min_frequency: F, oov_buckets: O}}   -> categorical
//   hash_buckets: N                              STRING or INT features -> categorical
//   pii: drop | {salted_hash: {salt_env: VAR, buckets: N}}   the only op of its feature
//   passthrough                                  the raw number; the only op of its feature
//
// Rules checked by ValidateOps (type-free) and ValidateOpsForType (against the column
// type) are listed at those functions. Thread-safe: plain values and pure functions.
#ifndef KILN_TRANSFORM_TRANSFORM_SPEC_H_
#define KILN_TRANSFORM_TRANSFORM_SPEC_H_

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/base/status.h"
#include "kiln/data/batch.h"
#include "nlohmann/json.hpp"
#include "yaml-cpp/yaml.h"

namespace kiln::transform {

using Json = nlohmann::ordered_json;

enum class OpKind : uint8_t {
  kFill,
  kClip,
  kLog1p,
  kZScore,
  kMinMax,
  kBucketize,
  kVocabulary,
  kHashBuckets,
  kPiiDrop,
  kPiiSaltedHash,
  kPassthrough,
};

// The op's name in JSON and in error messages: "fill", "clip", "log1p", "zscore", "minmax",
// "bucketize", "vocabulary", "hash_buckets", "pii_drop", "pii_salted_hash", "passthrough".
std::string_view OpName(OpKind kind);

enum class FillMethod : uint8_t { kMean, kMedian, kConstant };
std::string_view FillMethodName(FillMethod m);  // "mean", "median", "constant"

inline constexpr int64_t kDefaultTopK = 10000;
inline constexpr int64_t kMaxQuantiles = 10000;
inline constexpr int64_t kMaxBuckets = int64_t{1} << 40;

// One op with its spec-level parameters. Only the fields of its kind are meaningful; the
// others keep their defaults (so two equal ops compare equal).
struct Op {
  OpKind kind = OpKind::kPassthrough;
  // kFill.
  FillMethod fill = FillMethod::kConstant;
  std::string constant;  // kConstant: the value as written (a number for numeric features)
  // kClip. Infinite = unbounded on that side.
  double clip_min = -std::numeric_limits<double>::infinity();
  double clip_max = std::numeric_limits<double>::infinity();
  // kBucketize: quantiles > 0 (fitted boundaries), or the explicit boundaries.
  int64_t quantiles = 0;
  std::vector<double> boundaries;
  // kVocabulary.
  int64_t top_k = kDefaultTopK;
  int64_t min_frequency = 1;
  int64_t oov_buckets = 1;
  // kHashBuckets, kPiiSaltedHash.
  int64_t buckets = 0;
  // kPiiSaltedHash: the environment variable holding the salt (never the salt itself).
  std::string salt_env;

  bool operator==(const Op&) const = default;
};

// Human form of one op for messages, e.g. "fill: median", "bucketize: quantiles 4".
std::string DescribeOp(const Op& op);

struct FeatureSpec {
  std::string name;
  std::vector<Op> ops;
  bool operator==(const FeatureSpec&) const = default;
};

struct CrossSpec {
  std::string name;  // default: the feature names joined with "_x_"
  std::vector<std::string> features;
  int64_t hash_buckets = 0;
  bool operator==(const CrossSpec&) const = default;
};

struct TransformSpec {
  std::vector<FeatureSpec> features;  // in the order written
  std::vector<CrossSpec> crosses;
  // Unlisted features get DefaultOps(type) when true; they are dropped when false.
  bool defaults = true;
  // Not from YAML: set for tree models (gbdt), which need neither imputation nor scaling
  // and treat a missing value as missing: unlisted numeric features pass through.
  bool tree_defaults = false;
  std::vector<std::string> exclude;

  const FeatureSpec* FindFeature(std::string_view name) const;
  bool IsExcluded(std::string_view name) const;
  bool operator==(const TransformSpec&) const = default;
};

// The ops an unlisted feature gets when `defaults` is on: numeric (INT, FLOAT) ->
// [{fill: median}, zscore] ([passthrough] for tree models); STRING ->
// [{vocabulary: {top_k: 10000, min_frequency: 1, oov_buckets: 1}}].
std::vector<Op> DefaultOps(data::ValueType type, bool tree_model = false);

// Parses the value of the `transform:` key (a map with features / crosses / defaults /
// exclude; a null node is the empty spec: every feature gets the defaults). Every error is
// kInvalidArgument and names where it is (feature, op position, YAML line), what is wrong
// and what is valid (for an unknown op: the list of op names).
absl::StatusOr<TransformSpec> ParseTransformSpec(const YAML::Node& node);
// Parses a YAML document: its `transform:` section when the root map has one, else the
// root itself.
absl::StatusOr<TransformSpec> ParseTransformSpecYaml(std::string_view yaml);

// Checks the shape of one feature's op chain, whatever its type (kInvalidArgument naming the
// feature and the op):
//  - at least one op; passthrough and pii ops stand alone;
//  - bucketize, vocabulary and hash_buckets end the chain (they make it categorical), and
//    vocabulary and hash_buckets may follow only {fill: {constant: ...}};
//  - log1p may not follow zscore or minmax (its input would be centred around 0);
//  - zscore and {fill: mean} need the mean and variance of their input, which one streaming
//    pass cannot know once a clip follows a zscore or minmax; that order is rejected.
absl::Status ValidateOps(std::string_view feature, const std::vector<Op>& ops);
// Checks the ops against the feature's column type (kInvalidArgument naming the feature,
// its type and the op, and saying which ops fit):
//  - STRING: fill constant, vocabulary, hash_buckets, pii;
//  - INT: fill, clip, log1p, zscore, minmax, bucketize, hash_buckets, pii, passthrough;
//  - FLOAT: as INT but no hash_buckets;
//  - a numeric feature's fill constant must be a finite number.
absl::Status ValidateOpsForType(std::string_view feature, data::ValueType type,
                                const std::vector<Op>& ops);

// JSON forms (canonical, one object per op: {"op": "fill", "method": "median"}, ...), used
// inside the fitted transform. FromJson accepts what ToJson writes and ignores keys it does
// not know (the fitted state sits next to the spec fields); errors are kInvalidArgument.
Json OpToJson(const Op& op);
absl::StatusOr<Op> OpFromJson(const Json& j, std::string_view where);
Json SpecToJson(const TransformSpec& spec);
absl::StatusOr<TransformSpec> SpecFromJson(const Json& j);

}  // namespace kiln::transform

#endif  // KILN_TRANSFORM_TRANSFORM_SPEC_H_
