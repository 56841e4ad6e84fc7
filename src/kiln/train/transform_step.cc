#include "kiln/train/transform_step.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>

#include "absl/status/status.h"
#include "kiln/base/sha256.h"
#include "kiln/base/status.h"
#include "kiln/base/str.h"
#include "kiln/train/trainer.h"

namespace kiln::train {
namespace {

using transform::Json;
using transform::OpKind;

std::string Num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

// An op as a person reads it, with every parameter that changes what it does.
std::string OpText(const transform::Op& op) {
  switch (op.kind) {
    case OpKind::kVocabulary:
      return StrCat("vocabulary {top_k: ", op.top_k, ", min_frequency: ", op.min_frequency,
                    ", oov_buckets: ", op.oov_buckets, "}");
    case OpKind::kPiiSaltedHash:
      return StrCat("pii: salted_hash {salt_env: ", op.salt_env, ", buckets: ", op.buckets, "}");
    default:
      return transform::DescribeOp(op);
  }
}

std::string OpsText(const std::vector<transform::Op>& ops) {
  std::vector<std::string> parts;
  for (const auto& op : ops) parts.push_back(OpText(op));
  return StrCat("[", StrJoin(parts, ", "), "]");
}

std::string CrossText(const transform::CrossSpec& c) {
  return StrCat(c.name, " (", StrJoin(c.features, " x "), ", ", c.hash_buckets, " buckets)");
}

std::string CrossesText(const std::vector<transform::CrossSpec>& crosses) {
  std::vector<std::string> parts;
  for (const auto& c : crosses) parts.push_back(CrossText(c));
  return StrCat("[", StrJoin(parts, ", "), "]");
}

// One fitted op with its statistics.
Json FittedOpJson(const transform::FittedFeature& f, const transform::FittedOp& fo) {
  Json j = transform::OpToJson(fo.op);
  switch (fo.op.kind) {
    case OpKind::kFill:
      if (f.type == data::ValueType::kString) {
        j["value"] = fo.text;
      } else {
        j["value"] = fo.value;
      }
      break;
    case OpKind::kZScore:
      j["mean"] = fo.mean;
      j["std"] = fo.std;
      break;
    case OpKind::kMinMax:
      j["min"] = fo.min;
      j["max"] = fo.max;
      break;
    case OpKind::kBucketize:
      j["boundaries"] = fo.boundaries;
      break;
    case OpKind::kVocabulary: {
      j["vocab_size"] = fo.tokens.size();
      const size_t shown = std::min<size_t>(fo.tokens.size(), 10);
      j["top_tokens"] = std::vector<std::string>(fo.tokens.begin(), fo.tokens.begin() + shown);
      break;
    }
    default:
      break;
  }
  if (fo.op.kind == OpKind::kVocabulary ||
      (fo.op.kind == OpKind::kFill && fo.op.fill == transform::FillMethod::kMedian) ||
      (fo.op.kind == OpKind::kBucketize && fo.op.quantiles > 0)) {
    j["exact"] = fo.exact;
  }
  return j;
}

// The fitted state of one op, short: "fill: median 13.37", "zscore (mean 14.1, std 3.52)".
std::string FittedOpText(const transform::FittedFeature& f, const transform::FittedOp& fo) {
  const std::string op = transform::DescribeOp(fo.op);
  switch (fo.op.kind) {
    case OpKind::kFill:
      if (fo.op.fill == transform::FillMethod::kConstant) return op;
      return StrCat(op, " ", f.type == data::ValueType::kString ? fo.text : Num(fo.value));
    case OpKind::kZScore:
      return StrCat(op, " (mean ", Num(fo.mean), ", std ", Num(fo.std), ")");
    case OpKind::kMinMax:
      return StrCat(op, " (min ", Num(fo.min), ", max ", Num(fo.max), ")");
    case OpKind::kBucketize: {
      if (fo.op.quantiles == 0) return op;
      std::vector<std::string> b;
      for (double v : fo.boundaries) b.push_back(Num(v));
      return StrCat(op, " (boundaries ", StrJoin(b, ", "), ")");
    }
    case OpKind::kVocabulary:
      return StrCat("vocabulary (", fo.tokens.size(), " tokens, ", fo.op.oov_buckets, " oov)");
    default:
      return op;
  }
}

const transform::FittedCross* FindCross(const transform::FittedTransform& t,
                                        std::string_view name) {
  for (const auto& c : t.crosses()) {
    if (c.spec.name == name) return &c;
  }
  return nullptr;
}

// Output columns in TransformedBatch order.
std::vector<const transform::OutputColumn*> Outputs(const transform::FittedTransform& t) {
  std::vector<const transform::OutputColumn*> out;
  for (const auto& c : t.output_signature().dense) out.push_back(&c);
  for (const auto& c : t.output_signature().categorical) out.push_back(&c);
  return out;
}

bool IsText(data::ValueType t) { return t == data::ValueType::kString; }

}  // namespace

std::string TransformSpecSha256(const transform::TransformSpec& spec) {
  Json j = {{"spec", transform::SpecToJson(spec)}, {"tree_defaults", spec.tree_defaults}};
  return Sha256Hex(j.dump());
}

Json TransformOutputsSummary(const transform::FittedTransform& t) {
  Json outputs = Json::array();
  for (const transform::OutputColumn* oc : Outputs(t)) {
    const bool dense = oc->kind == transform::OutputKind::kDense;
    Json o = {{"name", oc->name},
              {"kind", dense ? "dense" : "categorical"},
              {"cardinality", dense ? Json() : Json(oc->cardinality)}};
    if (const transform::FittedFeature* f = t.FindFeature(oc->name)) {
      o["input_type"] = data::ValueTypeName(f->type);
      Json ops = Json::array();
      for (const auto& fo : f->ops) ops.push_back(FittedOpJson(*f, fo));
      o["ops"] = std::move(ops);
    } else if (const transform::FittedCross* c = FindCross(t, oc->name)) {
      o["cross"] = c->spec.features;
      o["hash_buckets"] = c->spec.hash_buckets;
    }
    outputs.push_back(std::move(o));
  }
  return outputs;
}

std::string FormatTransformSummary(const transform::FittedTransform& t) {
  size_t width = 6;
  for (const transform::OutputColumn* oc : Outputs(t)) width = std::max(width, oc->name.size());
  std::string out;
  auto line = [&](std::string_view name, std::string_view kind, std::string_view card,
                  std::string_view ops) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "  %-11.*s %11.*s  ", static_cast<int>(kind.size()), kind.data(),
                  static_cast<int>(card.size()), card.data());
    StrAppend(&out, name, std::string(width - name.size(), ' '), buf, ops, "\n");
  };
  line("output", "kind", "cardinality", "ops (fitted)");
  for (const transform::OutputColumn* oc : Outputs(t)) {
    const bool dense = oc->kind == transform::OutputKind::kDense;
    std::string ops;
    if (const transform::FittedFeature* f = t.FindFeature(oc->name)) {
      std::vector<std::string> parts;
      for (const auto& fo : f->ops) parts.push_back(FittedOpText(*f, fo));
      ops = StrCat(data::ValueTypeName(f->type), ": ", StrJoin(parts, ", "));
    } else if (const transform::FittedCross* c = FindCross(t, oc->name)) {
      ops = StrCat("cross of ", StrJoin(c->spec.features, " x "));
    }
    line(oc->name, dense ? "dense" : "categorical", dense ? "-" : StrCat(oc->cardinality), ops);
  }
  return out;
}

absl::StatusOr<TransformStepResult> FitTransformStep(Env* env, const TransformStepRequest& req) {
  RowSelection selection;
  selection.data = req.data;
  selection.train_split = req.split;
  selection.with_eval = false;
  selection.type_overrides = req.type_overrides;
  KILN_ASSIGN_OR_RETURN(TrainingRows rows, ReadTrainingRows(env, req.config, selection));
  KILN_ASSIGN_OR_RETURN(LabelledRows labelled, ExtractLabels(req.config, req.data, &rows));
  KILN_ASSIGN_OR_RETURN(transform::FittedTransform fitted, FitTransform(req.config, rows));
  TransformStepResult result{.fitted = std::move(fitted)};
  result.data_fingerprint = rows.data_fingerprint;
  result.rows = labelled.train.size();
  result.dropped_rows = labelled.dropped_rows;
  const transform::TransformSpec spec = EffectiveTransformSpec(req.config);
  const auto& sig = result.fitted.output_signature();
  result.summary = {{"format", kTransformSummaryFormat},
                    {"version", 1},
                    {"spec_sha256", TransformSpecSha256(spec)},
                    {"spec", transform::SpecToJson(spec)},
                    {"tree_defaults", spec.tree_defaults},
                    {"label", req.config.label},
                    {"model_type", req.config.model_type},
                    {"data", req.data},
                    {"data_fingerprint", result.data_fingerprint},
                    {"split", req.split.empty() ? Json() : Json(req.split)},
                    {"split_config", req.config.split},
                    {"rows", result.rows},
                    {"dropped_rows", result.dropped_rows},
                    {"num_dense", sig.dense.size()},
                    {"num_categorical", sig.categorical.size()},
                    {"outputs", TransformOutputsSummary(result.fitted)},
                    {"warnings", result.fitted.warnings()}};
  return result;
}

absl::Status WriteTransformStep(Env* env, const std::string& dir,
                                const TransformStepResult& result) {
  KILN_RETURN_IF_ERROR(env->CreateDirs(dir));
  // Tokens are bytes: invalid UTF-8 is written as U+FFFD here (transform.json keeps them).
  KILN_RETURN_IF_ERROR(WriteFileAtomically(
      env, JoinPath(dir, kTransformSummaryFile),
      result.summary.dump(2, ' ', false, Json::error_handler_t::replace) + "\n"));
  return WriteFileAtomically(env, JoinPath(dir, kTransformFile), result.fitted.ToJson());
}

absl::StatusOr<transform::FittedTransform> LoadFittedTransform(Env* env, const std::string& path) {
  const std::string file = env->IsDirectory(path) ? JoinPath(path, kTransformFile) : path;
  if (!env->FileExists(file)) {
    return absl::NotFoundError(env->IsDirectory(path) ? StrCat(path, " has no ", kTransformFile,
                                                               " (write one with `kiln transform`)")
                                                      : StrCat(path, " does not exist"));
  }
  KILN_ASSIGN_OR_RETURN(std::string json, ReadFileToString(env, file));
  auto fitted = transform::FittedTransform::FromJson(json);
  if (!fitted.ok()) {
    return absl::Status(fitted.status().code(), StrCat(file, ": ", fitted.status().message()));
  }
  return fitted;
}

absl::Status CheckTransformSpec(const TrainConfig& config, const transform::FittedTransform& fitted,
                                std::string_view where) {
  const transform::TransformSpec want = EffectiveTransformSpec(config);
  const transform::TransformSpec& have = fitted.spec();
  std::vector<std::string> diffs;
  if (want.defaults != have.defaults) {
    diffs.push_back(StrCat("defaults: the config says ", want.defaults ? "true" : "false",
                           ", the fitted transform ", have.defaults ? "true" : "false"));
  }
  const std::set<std::string> want_ex(want.exclude.begin(), want.exclude.end());
  const std::set<std::string> have_ex(have.exclude.begin(), have.exclude.end());
  if (want_ex != have_ex) {
    diffs.push_back(StrCat("exclude: the config's [",
                           StrJoin(std::vector<std::string>(want_ex.begin(), want_ex.end()), ", "),
                           "] (the label included), the fitted transform's [",
                           StrJoin(std::vector<std::string>(have_ex.begin(), have_ex.end()), ", "),
                           "]"));
  }
  for (const auto& f : want.features) {
    const transform::FeatureSpec* h = have.FindFeature(f.name);
    if (h == nullptr) {
      diffs.push_back(StrCat("feature '", f.name, "': the config lists ", OpsText(f.ops),
                             ", the fitted transform's spec does not list it"));
    } else if (h->ops != f.ops) {
      diffs.push_back(StrCat("feature '", f.name, "': the config says ", OpsText(f.ops),
                             ", the fitted transform ", OpsText(h->ops)));
    }
  }
  for (const auto& h : have.features) {
    if (want.FindFeature(h.name) == nullptr) {
      diffs.push_back(StrCat("feature '", h.name, "': the fitted transform's spec lists ",
                             OpsText(h.ops), ", the config does not list it"));
    }
  }
  if (want.crosses != have.crosses) {
    diffs.push_back(StrCat("crosses: the config's ", CrossesText(want.crosses),
                           ", the fitted transform's ", CrossesText(have.crosses)));
  }
  if (diffs.empty()) {
    // The written spec agrees; the defaults that unlisted features got depend on the model
    // type (gbdt: numbers pass through), which the stored spec does not say.
    for (const transform::FittedFeature& f : fitted.features()) {
      if (want.FindFeature(f.name) != nullptr) continue;
      std::vector<transform::Op> ops;
      for (const auto& fo : f.ops) ops.push_back(fo.op);
      const std::vector<transform::Op> defaults = transform::DefaultOps(f.type, want.tree_defaults);
      if (ops != defaults) {
        diffs.push_back(
            StrCat("unlisted feature '", f.name, "' (", data::ValueTypeName(f.type),
                   ") was fitted with the defaults ", OpsText(ops), ", but model type '",
                   config.model_type, "' gives ", OpsText(defaults),
                   " (gbdt's numbers pass through, the other models' are filled and z-scored)"));
        break;  // one says it: every unlisted number differs alike
      }
    }
  }
  if (diffs.empty()) return absl::OkStatus();
  return absl::FailedPreconditionError(
      StrCat(where,
             ": the fitted transform was made from another transform spec than the "
             "config's: ",
             StrJoin(diffs, "; "), ". Fit it again with `kiln transform` and this config"));
}

absl::Status CheckTransformColumns(const data::TableSchema& schema,
                                   const transform::FittedTransform& fitted,
                                   std::string_view where) {
  const transform::TransformSpec& spec = fitted.spec();
  auto find = [&](std::string_view name) -> const data::ColumnSpec* {
    for (const auto& c : schema) {
      if (c.name == name) return &c;
    }
    return nullptr;
  };
  std::vector<std::string> problems;
  std::set<std::string> reported;
  for (const transform::FittedFeature& f : fitted.features()) {
    const data::ColumnSpec* col = find(f.name);
    if (col == nullptr) {
      problems.push_back(StrCat("column '", f.name, "' is not in the data"));
      reported.insert(f.name);
    } else if (IsText(col->type) != IsText(f.type)) {
      problems.push_back(StrCat("column '", f.name, "' is ", data::ValueTypeName(col->type),
                                " in the data but was ", data::ValueTypeName(f.type),
                                " when the transform was fitted"));
    }
  }
  for (const auto& f : spec.features) {
    if (!reported.count(f.name) && find(f.name) == nullptr) {
      problems.push_back(StrCat("column '", f.name, "' (listed in the spec) is not in the data"));
      reported.insert(f.name);
    }
  }
  for (const auto& name : spec.exclude) {
    if (find(name) == nullptr) {
      problems.push_back(StrCat("column '", name, "' (excluded) is not in the data"));
    }
  }
  if (spec.defaults) {
    for (const auto& c : schema) {
      if (spec.IsExcluded(c.name) || spec.FindFeature(c.name) != nullptr ||
          fitted.FindFeature(c.name) != nullptr) {
        continue;
      }
      problems.push_back(
          StrCat("column '", c.name,
                 "' is in the data but not in the fitted transform (fitting on this data "
                 "would give it the default ops)"));
    }
  }
  if (problems.empty()) return absl::OkStatus();
  std::vector<std::string> names;
  for (const auto& c : schema) names.push_back(c.name);
  return absl::FailedPreconditionError(StrCat(
      where, ": the fitted transform does not fit the data's columns: ", StrJoin(problems, "; "),
      " (data columns: ", StrJoin(names, ", "),
      "). Fit it again with `kiln transform` on this data"));
}

}  // namespace kiln::train
