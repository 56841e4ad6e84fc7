#include "kiln/transform/transform_spec.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <set>

#include "kiln/base/str.h"
#include "kiln/data/csv.h"

namespace kiln::transform {

std::string_view OpName(OpKind kind) {
  switch (kind) {
    case OpKind::kFill:
      return "fill";
    case OpKind::kClip:
      return "clip";
    case OpKind::kLog1p:
      return "log1p";
    case OpKind::kZScore:
      return "zscore";
    case OpKind::kMinMax:
      return "minmax";
    case OpKind::kBucketize:
      return "bucketize";
    case OpKind::kVocabulary:
      return "vocabulary";
    case OpKind::kHashBuckets:
      return "hash_buckets";
    case OpKind::kPiiDrop:
      return "pii_drop";
    case OpKind::kPiiSaltedHash:
      return "pii_salted_hash";
    case OpKind::kPassthrough:
      return "passthrough";
  }
  return "unknown";
}

std::string_view FillMethodName(FillMethod m) {
  switch (m) {
    case FillMethod::kMean:
      return "mean";
    case FillMethod::kMedian:
      return "median";
    case FillMethod::kConstant:
      return "constant";
  }
  return "unknown";
}

std::string DescribeOp(const Op& op) {
  switch (op.kind) {
    case OpKind::kFill:
      return op.fill == FillMethod::kConstant ? StrCat("fill: constant ", op.constant)
                                              : StrCat("fill: ", FillMethodName(op.fill));
    case OpKind::kClip:
      return StrCat("clip: [", op.clip_min, ", ", op.clip_max, "]");
    case OpKind::kBucketize:
      return op.quantiles > 0
                 ? StrCat("bucketize: quantiles ", op.quantiles)
                 : StrCat("bucketize: boundaries [", StrJoin(op.boundaries, ", "), "]");
    case OpKind::kHashBuckets:
      return StrCat("hash_buckets: ", op.buckets);
    case OpKind::kPiiDrop:
      return "pii: drop";
    case OpKind::kPiiSaltedHash:
      return "pii: salted_hash";
    default:
      return std::string(OpName(op.kind));
  }
}

const FeatureSpec* TransformSpec::FindFeature(std::string_view name) const {
  for (const auto& f : features)
    if (f.name == name) return &f;
  return nullptr;
}

bool TransformSpec::IsExcluded(std::string_view name) const {
  return std::find(exclude.begin(), exclude.end(), name) != exclude.end();
}

std::vector<Op> DefaultOps(data::ValueType type, bool tree_model) {
  if (type == data::ValueType::kString) {
    Op vocab;
    vocab.kind = OpKind::kVocabulary;
    return {vocab};
  }
  if (tree_model) return {Op{}};  // passthrough
  Op fill;
  fill.kind = OpKind::kFill;
  fill.fill = FillMethod::kMedian;
  Op z;
  z.kind = OpKind::kZScore;
  return {fill, z};
}

// ---- Chain checks -----------------------------------------------------------------------

namespace {

absl::Status ChainError(std::string_view feature, size_t i, const Op& op, std::string_view msg) {
  return absl::InvalidArgumentError(StrCat("transform spec: feature '", feature, "', op ", i + 1,
                                           " (", DescribeOp(op), "): ", msg));
}

bool IsTerminal(OpKind k) {
  return k == OpKind::kBucketize || k == OpKind::kVocabulary || k == OpKind::kHashBuckets;
}
bool StandsAlone(OpKind k) {
  return k == OpKind::kPassthrough || k == OpKind::kPiiDrop || k == OpKind::kPiiSaltedHash;
}
bool IsFillConstant(const Op& op) {
  return op.kind == OpKind::kFill && op.fill == FillMethod::kConstant;
}

}  // namespace

absl::Status ValidateOps(std::string_view feature, const std::vector<Op>& ops) {
  if (ops.empty()) {
    return absl::InvalidArgumentError(
        StrCat("transform spec: feature '", feature,
               "' has no ops; write [passthrough] to pass a number through unchanged"));
  }
  int fitted_affine = -1;  // index of the first zscore / minmax
  int clip_after = -1;     // index of a clip that follows it
  for (size_t i = 0; i < ops.size(); ++i) {
    const Op& op = ops[i];
    if (StandsAlone(op.kind) && ops.size() > 1) {
      return ChainError(feature, i, op, "must be the only op of its feature");
    }
    if (IsTerminal(op.kind) && i + 1 != ops.size()) {
      return ChainError(feature, i, op,
                        StrCat("must be the last op (it makes the feature categorical), but '",
                               DescribeOp(ops[i + 1]), "' follows it"));
    }
    if (op.kind == OpKind::kVocabulary || op.kind == OpKind::kHashBuckets) {
      for (size_t j = 0; j < i; ++j) {
        if (!IsFillConstant(ops[j])) {
          return ChainError(
              feature, i, op,
              StrCat("may follow only {fill: {constant: ...}}, not '", DescribeOp(ops[j]), "'"));
        }
      }
    }
    if (op.kind == OpKind::kLog1p && fitted_affine >= 0) {
      return ChainError(
          feature, i, op,
          StrCat("cannot follow '", DescribeOp(ops[fitted_affine]), "' (op ", fitted_affine + 1,
                 "), whose output is centred near 0; put log1p before it"));
    }
    const bool needs_moments =
        op.kind == OpKind::kZScore || (op.kind == OpKind::kFill && op.fill == FillMethod::kMean);
    if (needs_moments && clip_after >= 0) {
      return ChainError(
          feature, i, op,
          StrCat("needs the mean and variance of its input, which one pass over the data "
                 "cannot compute after 'clip' (op ",
                 clip_after + 1, ") follows '", DescribeOp(ops[fitted_affine]), "' (op ",
                 fitted_affine + 1, "); move the clip before it"));
    }
    if (op.kind == OpKind::kClip && fitted_affine >= 0 && clip_after < 0) {
      clip_after = static_cast<int>(i);
    }
    if ((op.kind == OpKind::kZScore || op.kind == OpKind::kMinMax) && fitted_affine < 0) {
      fitted_affine = static_cast<int>(i);
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateOpsForType(std::string_view feature, data::ValueType type,
                                const std::vector<Op>& ops) {
  const std::string_view tname = data::ValueTypeName(type);
  for (size_t i = 0; i < ops.size(); ++i) {
    const Op& op = ops[i];
    if (type == data::ValueType::kString) {
      switch (op.kind) {
        case OpKind::kVocabulary:
        case OpKind::kHashBuckets:
        case OpKind::kPiiDrop:
        case OpKind::kPiiSaltedHash:
          continue;
        case OpKind::kFill:
          if (op.fill == FillMethod::kConstant) continue;
          return ChainError(feature, i, op,
                            StrCat("needs a numeric feature; '", feature,
                                   "' is STRING (use {fill: {constant: VALUE}})"));
        default:
          return ChainError(feature, i, op,
                            StrCat("needs a numeric (INT or FLOAT) feature; '", feature,
                                   "' is STRING. Ops for STRING features: fill (constant), "
                                   "vocabulary, hash_buckets, pii"));
      }
    }
    switch (op.kind) {
      case OpKind::kVocabulary:
        return ChainError(feature, i, op,
                          StrCat("needs a STRING feature; '", feature, "' is ", tname,
                                 " (for numbers use bucketize, or hash_buckets for INT ids)"));
      case OpKind::kHashBuckets:
        if (type == data::ValueType::kFloat) {
          return ChainError(
              feature, i, op,
              StrCat("needs a STRING or INT feature; '", feature, "' is FLOAT (use bucketize)"));
        }
        break;
      case OpKind::kFill:
        if (op.fill == FillMethod::kConstant) {
          double v;
          if (!data::ParseDouble(op.constant, &v) || !std::isfinite(v)) {
            return ChainError(feature, i, op,
                              StrCat("the constant '", op.constant, "' is not a finite number ('",
                                     feature, "' is ", tname, ")"));
          }
        }
        break;
      default:
        break;
    }
  }
  return absl::OkStatus();
}

// ---- YAML ---------------------------------------------------------------------------------

namespace {

// Where in the spec a node is, for messages.
struct Where {
  std::string path;
  int line = -1;  // 1-based; -1 when unknown
};

Where At(const Where& parent, std::string_view child, const YAML::Node& node) {
  Where w{StrCat(parent.path, child), parent.line};
  const int line = node.Mark().line;
  if (line >= 0) w.line = line + 1;
  return w;
}

absl::Status Error(const Where& w, std::string_view msg) {
  std::string at =
      w.path.empty() ? std::string("transform spec") : StrCat("transform spec, ", w.path);
  if (w.line > 0) StrAppend(&at, " (line ", w.line, ")");
  return absl::InvalidArgumentError(StrCat(at, ": ", msg));
}

absl::Status CheckKeys(const YAML::Node& map, const Where& w,
                       const std::vector<std::string_view>& valid) {
  if (!map.IsMap()) return Error(w, StrCat("expected a map with keys ", StrJoin(valid, ", ")));
  std::set<std::string> seen;
  for (auto it = map.begin(); it != map.end(); ++it) {
    const std::string key = it->first.as<std::string>();
    if (std::find(valid.begin(), valid.end(), key) == valid.end()) {
      return Error(w, StrCat("unknown key '", key, "'; valid keys: ", StrJoin(valid, ", ")));
    }
    if (!seen.insert(key).second) return Error(w, StrCat("key '", key, "' appears twice"));
  }
  return absl::OkStatus();
}

absl::StatusOr<double> ParseNumber(const YAML::Node& node, const Where& w, std::string_view what) {
  if (!node.IsScalar()) return Error(w, StrCat(what, " must be a number"));
  std::string s = node.Scalar();
  // YAML's spellings of infinity.
  std::string_view body = s;
  bool negative = false;
  if (!body.empty() && (body.front() == '-' || body.front() == '+')) {
    negative = body.front() == '-';
    body.remove_prefix(1);
  }
  if (body == ".inf" || body == ".Inf" || body == ".INF") {
    return negative ? -std::numeric_limits<double>::infinity()
                    : std::numeric_limits<double>::infinity();
  }
  double v;
  if (!data::ParseDouble(s, &v) || std::isnan(v)) {
    return Error(w, StrCat(what, " must be a number, not '", s, "'"));
  }
  return v;
}

absl::StatusOr<int64_t> ParseInt(const YAML::Node& node, const Where& w, std::string_view what,
                                 int64_t lo, int64_t hi) {
  if (!node.IsScalar()) return Error(w, StrCat(what, " must be an integer"));
  const std::string& s = node.Scalar();
  int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) {
    return Error(w, StrCat(what, " must be an integer, not '", s, "'"));
  }
  if (v < lo || v > hi) {
    return Error(w, StrCat(what, " must be between ", lo, " and ", hi, ", not ", v));
  }
  return v;
}

absl::StatusOr<std::string> ParseName(const YAML::Node& node, const Where& w,
                                      std::string_view what) {
  if (!node.IsScalar() || node.Scalar().empty()) {
    return Error(w, StrCat(what, " must be a non-empty string"));
  }
  return node.Scalar();
}

// ---- The op registry: one entry per YAML op name. -----------------------------------------

using ParseFn = absl::Status (*)(const YAML::Node& arg, const Where& w, Op* op);

struct OpDef {
  std::string_view name;
  std::string_view usage;
  bool bare_ok;  // may be written as a bare name (no argument)
  bool arg_ok;   // takes an argument
  ParseFn parse;
};

absl::Status ParseFill(const YAML::Node& arg, const Where& w, Op* op) {
  op->kind = OpKind::kFill;
  if (arg.IsScalar() && arg.Scalar() == "mean") {
    op->fill = FillMethod::kMean;
  } else if (arg.IsScalar() && arg.Scalar() == "median") {
    op->fill = FillMethod::kMedian;
  } else if (arg.IsMap()) {
    KILN_RETURN_IF_ERROR(CheckKeys(arg, w, {"constant"}));
    const YAML::Node c = arg["constant"];
    if (!c.IsScalar()) return Error(w, "fill constant must be a number or a string");
    op->fill = FillMethod::kConstant;
    op->constant = c.Scalar();
  } else {
    return Error(w, "fill takes mean, median or {constant: VALUE}");
  }
  return absl::OkStatus();
}

absl::Status ParseClip(const YAML::Node& arg, const Where& w, Op* op) {
  op->kind = OpKind::kClip;
  if (!arg.IsSequence() || arg.size() != 2) {
    return Error(w, "clip takes [LO, HI] (either may be null for no bound)");
  }
  if (!arg[0].IsNull()) {
    KILN_ASSIGN_OR_RETURN(op->clip_min, ParseNumber(arg[0], w, "clip LO"));
  }
  if (!arg[1].IsNull()) {
    KILN_ASSIGN_OR_RETURN(op->clip_max, ParseNumber(arg[1], w, "clip HI"));
  }
  if (!(op->clip_min <= op->clip_max)) {
    return Error(w, StrCat("clip LO (", op->clip_min, ") is above HI (", op->clip_max, ")"));
  }
  if (std::isinf(op->clip_min) && std::isinf(op->clip_max)) {
    return Error(w, "clip needs at least one finite bound");
  }
  return absl::OkStatus();
}

absl::Status ParseBucketize(const YAML::Node& arg, const Where& w, Op* op) {
  op->kind = OpKind::kBucketize;
  KILN_RETURN_IF_ERROR(CheckKeys(arg, w, {"quantiles", "boundaries"}));
  const bool q = static_cast<bool>(arg["quantiles"]), b = static_cast<bool>(arg["boundaries"]);
  if (q == b)
    return Error(w, "bucketize takes exactly one of {quantiles: N} or {boundaries: [...]}");
  if (q) {
    KILN_ASSIGN_OR_RETURN(op->quantiles,
                          ParseInt(arg["quantiles"], w, "bucketize quantiles", 2, kMaxQuantiles));
    return absl::OkStatus();
  }
  const YAML::Node list = arg["boundaries"];
  if (!list.IsSequence() || list.size() == 0) {
    return Error(w, "bucketize boundaries must be a non-empty list of numbers");
  }
  for (size_t i = 0; i < list.size(); ++i) {
    KILN_ASSIGN_OR_RETURN(double v, ParseNumber(list[i], w, "a bucketize boundary"));
    if (!std::isfinite(v)) return Error(w, "bucketize boundaries must be finite");
    if (!op->boundaries.empty() && !(v > op->boundaries.back())) {
      return Error(w, StrCat("bucketize boundaries must be strictly increasing (", v, " follows ",
                             op->boundaries.back(), ")"));
    }
    op->boundaries.push_back(v);
  }
  return absl::OkStatus();
}

absl::Status ParseVocabulary(const YAML::Node& arg, const Where& w, Op* op) {
  op->kind = OpKind::kVocabulary;
  if (!arg || arg.IsNull()) return absl::OkStatus();
  KILN_RETURN_IF_ERROR(CheckKeys(arg, w, {"top_k", "min_frequency", "oov_buckets"}));
  if (arg["top_k"]) {
    KILN_ASSIGN_OR_RETURN(op->top_k, ParseInt(arg["top_k"], w, "vocabulary top_k", 1,
                                              std::numeric_limits<int32_t>::max()));
  }
  if (arg["min_frequency"]) {
    KILN_ASSIGN_OR_RETURN(op->min_frequency,
                          ParseInt(arg["min_frequency"], w, "vocabulary min_frequency", 1,
                                   std::numeric_limits<int64_t>::max()));
  }
  if (arg["oov_buckets"]) {
    KILN_ASSIGN_OR_RETURN(
        op->oov_buckets, ParseInt(arg["oov_buckets"], w, "vocabulary oov_buckets", 0, kMaxBuckets));
  }
  return absl::OkStatus();
}

absl::Status ParseHashBuckets(const YAML::Node& arg, const Where& w, Op* op) {
  op->kind = OpKind::kHashBuckets;
  KILN_ASSIGN_OR_RETURN(op->buckets, ParseInt(arg, w, "hash_buckets", 1, kMaxBuckets));
  return absl::OkStatus();
}

absl::Status ParsePii(const YAML::Node& arg, const Where& w, Op* op) {
  if (arg.IsScalar() && arg.Scalar() == "drop") {
    op->kind = OpKind::kPiiDrop;
    return absl::OkStatus();
  }
  if (!arg.IsMap()) {
    return Error(w, "pii takes drop or {salted_hash: {salt_env: VAR, buckets: N}}");
  }
  KILN_RETURN_IF_ERROR(CheckKeys(arg, w, {"salted_hash"}));
  const YAML::Node sh = arg["salted_hash"];
  KILN_RETURN_IF_ERROR(CheckKeys(sh, w, {"salt_env", "buckets"}));
  if (!sh["salt_env"] || !sh["buckets"]) {
    return Error(w,
                 "pii salted_hash needs salt_env (the environment variable holding the salt) "
                 "and buckets");
  }
  op->kind = OpKind::kPiiSaltedHash;
  KILN_ASSIGN_OR_RETURN(op->salt_env, ParseName(sh["salt_env"], w, "salt_env"));
  KILN_ASSIGN_OR_RETURN(op->buckets, ParseInt(sh["buckets"], w, "buckets", 1, kMaxBuckets));
  return absl::OkStatus();
}

template <OpKind K>
absl::Status ParseBare(const YAML::Node&, const Where&, Op* op) {
  op->kind = K;
  return absl::OkStatus();
}

// Sorted by name: the error for an unknown op lists them in this order.
constexpr OpDef kOpDefs[] = {
    {"bucketize", "{bucketize: {quantiles: N}} or {bucketize: {boundaries: [B1, B2, ...]}}", false,
     true, ParseBucketize},
    {"clip", "{clip: [LO, HI]}", false, true, ParseClip},
    {"fill", "{fill: mean}, {fill: median} or {fill: {constant: VALUE}}", false, true, ParseFill},
    {"hash_buckets", "{hash_buckets: N}", false, true, ParseHashBuckets},
    {"log1p", "log1p", true, false, ParseBare<OpKind::kLog1p>},
    {"minmax", "minmax", true, false, ParseBare<OpKind::kMinMax>},
    {"passthrough", "passthrough", true, false, ParseBare<OpKind::kPassthrough>},
    {"pii", "{pii: drop} or {pii: {salted_hash: {salt_env: VAR, buckets: N}}}", false, true,
     ParsePii},
    {"vocabulary", "vocabulary or {vocabulary: {top_k: K, min_frequency: F, oov_buckets: O}}", true,
     true, ParseVocabulary},
    {"zscore", "zscore", true, false, ParseBare<OpKind::kZScore>},
};

std::string ValidOpNames() {
  std::vector<std::string_view> names;
  for (const auto& d : kOpDefs) names.push_back(d.name);
  return StrJoin(names, ", ");
}

absl::StatusOr<Op> ParseOp(const YAML::Node& node, const Where& w) {
  std::string name;
  YAML::Node arg;
  bool has_arg = false;
  if (node.IsScalar()) {
    name = node.Scalar();
  } else if (node.IsMap() && node.size() == 1) {
    name = node.begin()->first.as<std::string>();
    arg = node.begin()->second;
    has_arg = !arg.IsNull();
  } else {
    return Error(w, "an op is a name (zscore) or a one-key map ({fill: median})");
  }
  const OpDef* def = nullptr;
  for (const auto& d : kOpDefs)
    if (d.name == name) def = &d;
  if (def == nullptr) {
    return Error(w, StrCat("unknown op '", name, "'; valid ops: ", ValidOpNames()));
  }
  if (!has_arg && !def->bare_ok) {
    return Error(w, StrCat("op '", name, "' needs an argument: ", def->usage));
  }
  if (has_arg && !def->arg_ok) {
    return Error(w, StrCat("op '", name, "' takes no argument: write it as ", def->usage));
  }
  Op op;
  KILN_RETURN_IF_ERROR(def->parse(arg, w, &op));
  return op;
}

absl::StatusOr<std::vector<std::string>> ParseNameList(const YAML::Node& node, const Where& w,
                                                       std::string_view what) {
  if (!node.IsSequence()) return Error(w, StrCat(what, " must be a list of feature names"));
  std::vector<std::string> out;
  for (size_t i = 0; i < node.size(); ++i) {
    KILN_ASSIGN_OR_RETURN(std::string name, ParseName(node[i], w, StrCat(what, " entries")));
    out.push_back(std::move(name));
  }
  return out;
}

absl::StatusOr<TransformSpec> ParseSpecNode(const YAML::Node& node) {
  TransformSpec spec;
  if (!node || node.IsNull()) return spec;
  const Where root = At(Where{}, "", node);
  KILN_RETURN_IF_ERROR(CheckKeys(node, root, {"features", "crosses", "defaults", "exclude"}));

  if (const YAML::Node d = node["defaults"]) {
    bool value = true;
    if (!d.IsScalar() || !YAML::convert<bool>::decode(d, value)) {
      return Error(At(root, "defaults", d), "defaults must be true or false");
    }
    spec.defaults = value;
  }
  if (const YAML::Node ex = node["exclude"]) {
    KILN_ASSIGN_OR_RETURN(auto names, ParseNameList(ex, At(root, "exclude", ex), "exclude"));
    for (auto& n : names)
      if (!spec.IsExcluded(n)) spec.exclude.push_back(std::move(n));
  }
  if (const YAML::Node fs = node["features"]) {
    const Where fw = At(root, "features", fs);
    if (!fs.IsMap()) return Error(fw, "features must be a map of feature name -> list of ops");
    for (auto it = fs.begin(); it != fs.end(); ++it) {
      FeatureSpec f;
      const Where w = At(Where{"features."}, it->first.Scalar(), it->first);
      KILN_ASSIGN_OR_RETURN(f.name, ParseName(it->first, w, "a feature name"));
      if (spec.FindFeature(f.name) != nullptr) return Error(w, "feature listed twice");
      if (spec.IsExcluded(f.name)) return Error(w, "feature is both listed and excluded");
      const YAML::Node ops = it->second;
      if (!ops.IsSequence()) {
        return Error(w, "a feature's ops must be a list, e.g. [{fill: median}, zscore]");
      }
      for (size_t i = 0; i < ops.size(); ++i) {
        const Where ow = At(w, StrCat("[", i + 1, "]"), ops[i]);
        KILN_ASSIGN_OR_RETURN(Op op, ParseOp(ops[i], ow));
        f.ops.push_back(std::move(op));
      }
      KILN_RETURN_IF_ERROR(ValidateOps(f.name, f.ops));
      spec.features.push_back(std::move(f));
    }
  }
  if (const YAML::Node cs = node["crosses"]) {
    const Where cw = At(root, "crosses", cs);
    if (!cs.IsSequence()) return Error(cw, "crosses must be a list");
    for (size_t i = 0; i < cs.size(); ++i) {
      const Where w = At(cw, StrCat("[", i + 1, "]"), cs[i]);
      KILN_RETURN_IF_ERROR(CheckKeys(cs[i], w, {"features", "hash_buckets", "name"}));
      if (!cs[i]["features"] || !cs[i]["hash_buckets"]) {
        return Error(w, "a cross needs features: [A, B, ...] and hash_buckets: N");
      }
      CrossSpec c;
      KILN_ASSIGN_OR_RETURN(c.features, ParseNameList(cs[i]["features"], w, "cross features"));
      if (c.features.size() < 2) return Error(w, "a cross needs at least two features");
      for (size_t a = 0; a < c.features.size(); ++a) {
        for (size_t b = 0; b < a; ++b) {
          if (c.features[a] == c.features[b]) {
            return Error(w, StrCat("cross lists '", c.features[a], "' twice"));
          }
        }
        if (spec.IsExcluded(c.features[a])) {
          return Error(w, StrCat("cross uses '", c.features[a], "', which is excluded"));
        }
      }
      KILN_ASSIGN_OR_RETURN(
          c.hash_buckets, ParseInt(cs[i]["hash_buckets"], w, "cross hash_buckets", 1, kMaxBuckets));
      if (cs[i]["name"]) {
        KILN_ASSIGN_OR_RETURN(c.name, ParseName(cs[i]["name"], w, "cross name"));
      } else {
        c.name = StrJoin(c.features, "_x_");
      }
      for (const auto& other : spec.crosses) {
        if (other.name == c.name) return Error(w, StrCat("two crosses are named '", c.name, "'"));
      }
      if (spec.FindFeature(c.name) != nullptr) {
        return Error(w, StrCat("cross name '", c.name, "' is also a feature name"));
      }
      spec.crosses.push_back(std::move(c));
    }
  }
  return spec;
}

}  // namespace

absl::StatusOr<TransformSpec> ParseTransformSpec(const YAML::Node& node) {
  try {
    return ParseSpecNode(node);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(StrCat("transform spec: ", e.what()));
  }
}

absl::StatusOr<TransformSpec> ParseTransformSpecYaml(std::string_view yaml) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
    if (root.IsMap() && root["transform"]) return ParseTransformSpec(root["transform"]);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(StrCat("transform spec: ", e.what()));
  }
  return ParseTransformSpec(root);
}

// ---- JSON ---------------------------------------------------------------------------------

namespace {

Json Bound(double v) { return std::isinf(v) ? Json(nullptr) : Json(v); }

absl::Status JsonError(std::string_view where, std::string_view msg) {
  return absl::InvalidArgumentError(StrCat("transform JSON, ", where, ": ", msg));
}

}  // namespace

Json OpToJson(const Op& op) {
  Json j = {{"op", OpName(op.kind)}};
  switch (op.kind) {
    case OpKind::kFill:
      j["method"] = FillMethodName(op.fill);
      if (op.fill == FillMethod::kConstant) j["constant"] = op.constant;
      break;
    case OpKind::kClip:
      j["min"] = Bound(op.clip_min);
      j["max"] = Bound(op.clip_max);
      break;
    case OpKind::kBucketize:
      if (op.quantiles > 0) {
        j["quantiles"] = op.quantiles;
      } else {
        j["boundaries"] = op.boundaries;
      }
      break;
    case OpKind::kVocabulary:
      j["top_k"] = op.top_k;
      j["min_frequency"] = op.min_frequency;
      j["oov_buckets"] = op.oov_buckets;
      break;
    case OpKind::kHashBuckets:
      j["buckets"] = op.buckets;
      break;
    case OpKind::kPiiSaltedHash:
      j["salt_env"] = op.salt_env;
      j["buckets"] = op.buckets;
      break;
    default:
      break;
  }
  return j;
}

absl::StatusOr<Op> OpFromJson(const Json& j, std::string_view where) {
  try {
    Op op;
    const std::string name = j.at("op").get<std::string>();
    bool found = false;
    for (int k = 0; k <= static_cast<int>(OpKind::kPassthrough); ++k) {
      if (OpName(static_cast<OpKind>(k)) == name) {
        op.kind = static_cast<OpKind>(k);
        found = true;
      }
    }
    if (!found) return JsonError(where, StrCat("unknown op '", name, "'"));
    auto number_or_inf = [&](const char* key, double inf) {
      const Json& v = j.at(key);
      return v.is_null() ? inf : v.get<double>();
    };
    switch (op.kind) {
      case OpKind::kFill: {
        const std::string m = j.at("method").get<std::string>();
        if (m == "mean") {
          op.fill = FillMethod::kMean;
        } else if (m == "median") {
          op.fill = FillMethod::kMedian;
        } else if (m == "constant") {
          op.fill = FillMethod::kConstant;
          op.constant = j.at("constant").get<std::string>();
        } else {
          return JsonError(where, StrCat("unknown fill method '", m, "'"));
        }
        break;
      }
      case OpKind::kClip:
        op.clip_min = number_or_inf("min", -std::numeric_limits<double>::infinity());
        op.clip_max = number_or_inf("max", std::numeric_limits<double>::infinity());
        if (!(op.clip_min <= op.clip_max)) return JsonError(where, "clip min is above max");
        break;
      case OpKind::kBucketize:
        if (j.contains("quantiles")) {
          op.quantiles = j.at("quantiles").get<int64_t>();
          if (op.quantiles < 2 || op.quantiles > kMaxQuantiles) {
            return JsonError(where, "bucketize quantiles out of range");
          }
        } else {
          op.boundaries = j.at("boundaries").get<std::vector<double>>();
          if (op.boundaries.empty()) return JsonError(where, "bucketize has no boundaries");
          for (size_t i = 1; i < op.boundaries.size(); ++i) {
            if (!(op.boundaries[i] > op.boundaries[i - 1])) {
              return JsonError(where, "bucketize boundaries are not strictly increasing");
            }
          }
        }
        break;
      case OpKind::kVocabulary:
        op.top_k = j.at("top_k").get<int64_t>();
        op.min_frequency = j.at("min_frequency").get<int64_t>();
        op.oov_buckets = j.at("oov_buckets").get<int64_t>();
        if (op.top_k < 1 || op.min_frequency < 1 || op.oov_buckets < 0 ||
            op.oov_buckets > kMaxBuckets) {
          return JsonError(where, "vocabulary parameters out of range");
        }
        break;
      case OpKind::kHashBuckets:
      case OpKind::kPiiSaltedHash:
        op.buckets = j.at("buckets").get<int64_t>();
        if (op.buckets < 1 || op.buckets > kMaxBuckets) {
          return JsonError(where, "buckets out of range");
        }
        if (op.kind == OpKind::kPiiSaltedHash) {
          op.salt_env = j.at("salt_env").get<std::string>();
          if (op.salt_env.empty()) return JsonError(where, "salt_env is empty");
        }
        break;
      default:
        break;
    }
    return op;
  } catch (const Json::exception& e) {
    return JsonError(where, e.what());
  }
}

Json SpecToJson(const TransformSpec& spec) {
  Json features = Json::array();
  for (const auto& f : spec.features) {
    Json ops = Json::array();
    for (const auto& op : f.ops) ops.push_back(OpToJson(op));
    features.push_back({{"name", f.name}, {"ops", std::move(ops)}});
  }
  Json crosses = Json::array();
  for (const auto& c : spec.crosses) {
    crosses.push_back(
        {{"name", c.name}, {"features", c.features}, {"hash_buckets", c.hash_buckets}});
  }
  return {{"features", std::move(features)},
          {"crosses", std::move(crosses)},
          {"defaults", spec.defaults},
          {"exclude", spec.exclude}};
}

absl::StatusOr<TransformSpec> SpecFromJson(const Json& j) {
  try {
    TransformSpec spec;
    spec.defaults = j.at("defaults").get<bool>();
    spec.exclude = j.at("exclude").get<std::vector<std::string>>();
    for (const Json& f : j.at("features")) {
      FeatureSpec fs;
      fs.name = f.at("name").get<std::string>();
      for (const Json& o : f.at("ops")) {
        KILN_ASSIGN_OR_RETURN(Op op, OpFromJson(o, StrCat("spec feature '", fs.name, "'")));
        fs.ops.push_back(std::move(op));
      }
      KILN_RETURN_IF_ERROR(ValidateOps(fs.name, fs.ops));
      spec.features.push_back(std::move(fs));
    }
    for (const Json& c : j.at("crosses")) {
      CrossSpec cs;
      cs.name = c.at("name").get<std::string>();
      cs.features = c.at("features").get<std::vector<std::string>>();
      cs.hash_buckets = c.at("hash_buckets").get<int64_t>();
      if (cs.features.size() < 2 || cs.hash_buckets < 1 || cs.hash_buckets > kMaxBuckets) {
        return JsonError(StrCat("cross '", cs.name, "'"), "needs two features and 1+ buckets");
      }
      spec.crosses.push_back(std::move(cs));
    }
    return spec;
  } catch (const Json::exception& e) {
    return JsonError("spec", e.what());
  }
}

}  // namespace kiln::transform
