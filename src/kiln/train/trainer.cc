#include "kiln/train/trainer.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <functional>
#include <optional>
#include <set>

#include "absl/status/status.h"
#include "kiln/base/build_info.h"
#include "kiln/base/sha256.h"
#include "kiln/base/status.h"
#include "kiln/base/str.h"
#include "kiln/data/dataset.h"
#include "kiln/data/input.h"
#include "kiln/data/jsonl.h"
#include "kiln/data/split.h"
#include "kiln/model/bundle.h"
#include "kiln/observe/event_writer.h"
#include "kiln/train/json_rows.h"
#include "kiln/train/transform_step.h"
#include "kiln/transform/transform.h"

namespace kiln::train {
namespace {

// Appends every row of `from` to `to` (both of one type).
void AppendRows(const data::Column& from, data::Column* to) {
  to->present.insert(to->present.end(), from.present.begin(), from.present.end());
  const uint32_t base = to->offsets.back();
  for (size_t r = 1; r < from.offsets.size(); ++r) to->offsets.push_back(base + from.offsets[r]);
  switch (to->type) {
    case data::ValueType::kInt:
      to->ints.insert(to->ints.end(), from.ints.begin(), from.ints.end());
      break;
    case data::ValueType::kFloat:
      to->floats.insert(to->floats.end(), from.floats.begin(), from.floats.end());
      break;
    case data::ValueType::kString: {
      const uint32_t sbase = static_cast<uint32_t>(to->str_data.size());
      to->str_data.append(from.str_data);
      for (size_t i = 1; i < from.str_offsets.size(); ++i) {
        to->str_offsets.push_back(sbase + from.str_offsets[i]);
      }
      break;
    }
  }
}

// Appends `batch` to `all`, matching columns by name (sources such as JSON Lines may
// leave a column out of a batch).
void AppendBatch(const data::Batch& batch, data::Batch* all) {
  for (data::Column& col : all->columns) {
    int idx = batch.FindColumn(col.name);
    if (idx >= 0 && batch.columns[idx].type == col.type) {
      AppendRows(batch.columns[idx], &col);
      continue;
    }
    for (size_t r = 0; r < batch.num_rows; ++r) {
      if (idx < 0 || !batch.columns[idx].is_present(r)) {
        col.AddMissing();
      } else {
        col.AppendRowFrom(batch.columns[idx], r);
      }
    }
  }
  all->num_rows += batch.num_rows;
}

// Appends `batch`, decoded with the types its own values give, to `all`, adding columns
// `all` lacks and widening INT to FLOAT where the two disagree (exact). Returns false when
// a column holds numbers on one side and text on the other: the text must then be read as
// written, so the caller reads the input again with the types of the whole input.
bool AppendInferred(data::Batch& batch, data::Batch* all) {
  for (data::Column& col : batch.columns) {
    int idx = all->FindColumn(col.name);
    if (idx < 0) {
      data::Column c;
      c.name = col.name;
      c.type = col.type;
      for (size_t r = 0; r < all->num_rows; ++r) c.AddMissing();
      all->columns.push_back(std::move(c));
      idx = static_cast<int>(all->columns.size()) - 1;
    }
    data::Column& to = all->columns[idx];
    if (to.type == col.type) continue;
    if (col.num_values() == 0) {
      col.type = to.type;  // no values: its type says nothing
    } else if (to.num_values() == 0) {
      to.type = col.type;
    } else if (to.type == data::ValueType::kString || col.type == data::ValueType::kString) {
      return false;
    } else {
      data::WidenColumn(to.type == data::ValueType::kInt ? &to : &col, data::ValueType::kFloat);
    }
  }
  AppendBatch(batch, all);
  return true;
}

// Rows of `batch` whose row_tags equal `tag`, as a new batch.
data::Batch SelectRows(const data::Batch& batch, const std::vector<int>& tags, int tag) {
  data::Batch out;
  for (const data::Column& c : batch.columns) {
    data::Column n;
    n.name = c.name;
    n.type = c.type;
    out.columns.push_back(std::move(n));
  }
  for (size_t r = 0; r < batch.num_rows; ++r) {
    if (tags[r] != tag) continue;
    for (size_t j = 0; j < batch.columns.size(); ++j) {
      if (batch.columns[j].is_present(r)) {
        out.columns[j].AppendRowFrom(batch.columns[j], r);
      } else {
        out.columns[j].AddMissing();
      }
    }
    ++out.num_rows;
  }
  return out;
}

struct Labels {
  std::vector<std::string> classes;
  std::string positive;
};

// Decides the classes from the train rows' labels.
absl::StatusOr<Labels> ChooseClasses(const TrainConfig& c, const data::Column& label) {
  Labels l;
  if (c.task == model::Task::kRegression) return l;
  std::set<std::string> seen;
  bool all_numeric = label.type != data::ValueType::kString;
  for (size_t r = 0; r < label.num_rows(); ++r) {
    if (!label.is_present(r) || label.value_count(r) == 0) continue;
    std::string v = data::FirstValueText(label, r);
    seen.insert(v);
  }
  l.classes.assign(seen.begin(), seen.end());
  if (all_numeric) {
    // Numeric labels sort by value: "2" before "10".
    std::sort(l.classes.begin(), l.classes.end(), [](const std::string& a, const std::string& b) {
      return std::stod(a) < std::stod(b);
    });
  }
  if (c.task == model::Task::kBinary) {
    if (l.classes.size() > 2) {
      return absl::InvalidArgumentError(StrCat("task binary, but label '", c.label, "' has ",
                                               l.classes.size(), " values (use task: multiclass)"));
    }
    if (l.classes.size() < 2) {
      return absl::InvalidArgumentError(
          StrCat("task binary needs two label values in the train split; '", c.label, "' has ",
                 l.classes.size()));
    }
    if (c.positive_class) {
      if (!seen.count(*c.positive_class)) {
        return absl::InvalidArgumentError(StrCat("positive_class '", *c.positive_class,
                                                 "' is not a value of '", c.label,
                                                 "' (values: ", StrJoin(l.classes, ", "), ")"));
      }
      l.positive = *c.positive_class;
    } else {
      l.positive = seen.count("1") ? "1" : l.classes[1];
    }
    // classes: [negative, positive]
    if (l.classes[1] != l.positive) std::swap(l.classes[0], l.classes[1]);
  } else if (l.classes.size() < 2) {
    return absl::InvalidArgumentError(StrCat("task multiclass needs at least two label values; '",
                                             c.label, "' has ", l.classes.size()));
  }
  return l;
}

// Label values and weights of `batch`'s rows; rows without a label are dropped from
// `batch` (returned count).
absl::StatusOr<uint64_t> LabelBatch(const TrainConfig& c, const Labels& l, data::Batch* batch,
                                    model::Examples* ex) {
  int idx = batch->FindColumn(c.label);
  if (idx < 0) return absl::InvalidArgumentError(StrCat("no label column '", c.label, "'"));
  std::vector<int> keep(batch->num_rows, 1);
  uint64_t dropped = 0;
  const data::Column& col = batch->columns[idx];
  for (size_t r = 0; r < batch->num_rows; ++r) {
    if (!col.is_present(r) || col.value_count(r) == 0) {
      keep[r] = 0;
      ++dropped;
      continue;
    }
    float y = 0;
    std::string text = data::FirstValueText(col, r);
    if (c.task == model::Task::kRegression) {
      if (col.type == data::ValueType::kString) {
        double d;
        auto res = std::from_chars(text.data(), text.data() + text.size(), d);
        if (res.ec != std::errc() || res.ptr != text.data() + text.size()) {
          return absl::InvalidArgumentError(
              StrCat("task regression, but label '", c.label, "' has the value '", text, "'"));
        }
        y = static_cast<float>(d);
      } else {
        y = static_cast<float>(col.type == data::ValueType::kInt ? col.ints[col.offsets[r]]
                                                                 : col.floats[col.offsets[r]]);
      }
    } else if (c.task == model::Task::kBinary) {
      y = text == l.positive ? 1.f : 0.f;
    } else {
      auto it = std::find(l.classes.begin(), l.classes.end(), text);
      if (it == l.classes.end()) {
        // A class only the eval split has: no model output can be right for it.
        keep[r] = 0;
        ++dropped;
        continue;
      }
      y = static_cast<float>(it - l.classes.begin());
    }
    ex->labels.push_back(y);
    if (!c.class_weights.empty()) {
      auto w = c.class_weights.find(text);
      ex->weights.push_back(w == c.class_weights.end() ? 1.f : static_cast<float>(w->second));
    }
  }
  if (dropped > 0) {
    std::vector<int> tags(keep.begin(), keep.end());
    *batch = SelectRows(*batch, tags, 1);
  }
  return dropped;
}

nlohmann::json OutputsSignature(model::Task task, const Labels& l) {
  using J = nlohmann::json;
  switch (task) {
    case model::Task::kBinary:
      return J::array({J{{"name", "scores"}, {"dtype", "float32"}, {"shape", {-1}}},
                       J{{"name", "class_ids"}, {"dtype", "int64"}, {"shape", {-1}}}});
    case model::Task::kMulticlass:
      return J::array({J{{"name", "probabilities"},
                         {"dtype", "float32"},
                         {"shape", {-1, static_cast<int64_t>(l.classes.size())}}},
                       J{{"name", "class_ids"}, {"dtype", "int64"}, {"shape", {-1}}}});
    case model::Task::kRegression:
      return J::array({J{{"name", "predictions"}, {"dtype", "float32"}, {"shape", {-1}}}});
  }
  return J::array();
}

// Adds what identifies `input`'s content to `fp`: a dataset's own fingerprint, else the
// bytes of its files, streamed (a training file is not held in memory twice).
absl::Status AddFingerprint(Env* env, const data::InputSet& input, Sha256* fp) {
  for (const std::string& f : input.files) {
    if (input.format == data::Format::kDataset) {
      KILN_ASSIGN_OR_RETURN(auto m, data::ReadManifest(env, f));
      fp->Update(m.fingerprint);
      continue;
    }
    KILN_ASSIGN_OR_RETURN(auto file, env->NewSequentialFile(f));
    std::string buf(1 << 20, '\0');
    for (;;) {
      KILN_ASSIGN_OR_RETURN(size_t n, file->Read(buf.size(), buf.data()));
      if (n == 0) break;
      fp->Update(std::string_view(buf.data(), n));
    }
  }
  return absl::OkStatus();
}

// A checkpoint file: this line, a JSON line (the run it belongs to, the model type, the
// step, SHA-256 and size of the state), then the model's state bytes.
constexpr std::string_view kCheckpointMagic = "kiln-checkpoint 1\n";
constexpr const char* kCheckpointFile = "checkpoint";
constexpr const char* kWarmupFile = "warmup.jsonl";
constexpr size_t kWarmupRows = 10;

// What a checkpoint must match to be resumed: the data and every setting that changes
// what is trained (how often checkpoints are taken does not).
std::string RunFingerprint(const TrainConfig& c, const std::string& data_fingerprint,
                           const std::string& transform_json) {
  nlohmann::json j = TrainConfigToJson(c);
  j["training"].erase("checkpoint_every");
  Sha256 h;
  h.Update(data_fingerprint);
  h.Update("\n");
  h.Update(j.dump());
  // The fitted transform too: one given with --transform may have been fitted on other rows.
  h.Update("\n");
  h.Update(Sha256Hex(transform_json));
  return h.HexDigest();
}

absl::Status WriteCheckpoint(Env* env, const std::string& path, const std::string& run,
                             const std::string& model_type, int64_t step, std::string_view state) {
  nlohmann::json head = {{"run", run},
                         {"model_type", model_type},
                         {"step", step},
                         {"sha256", Sha256Hex(state)},
                         {"size", state.size()}};
  std::string out = StrCat(kCheckpointMagic, head.dump(), "\n");
  out.append(state);
  return WriteFileAtomically(env, path, out);
}

// The state bytes of the checkpoint at `path`, and its step. Errors: kDataLoss for a
// damaged file, kFailedPrecondition for a checkpoint of another run.
absl::StatusOr<std::string> ReadCheckpoint(Env* env, const std::string& path,
                                           const std::string& run, int64_t* step) {
  KILN_ASSIGN_OR_RETURN(std::string bytes, ReadFileToString(env, path));
  const size_t eol = bytes.find('\n', kCheckpointMagic.size());
  nlohmann::json head;
  if (bytes.compare(0, kCheckpointMagic.size(), kCheckpointMagic) == 0 &&
      eol != std::string::npos) {
    head = nlohmann::json::parse(
        std::string_view(bytes).substr(kCheckpointMagic.size(), eol - kCheckpointMagic.size()),
        nullptr, false);
  }
  if (!head.is_object() || !head["run"].is_string() || !head["step"].is_number_integer() ||
      !head["sha256"].is_string() || !head["size"].is_number_unsigned()) {
    return absl::DataLossError(StrCat(path, ": not a kiln checkpoint"));
  }
  std::string state = bytes.substr(eol + 1);
  if (state.size() != head["size"].get<uint64_t>() ||
      Sha256Hex(state) != head["sha256"].get<std::string>()) {
    return absl::DataLossError(
        StrCat(path, ": the checkpoint is damaged (its size or SHA-256 differs from its header)"));
  }
  if (head["run"].get<std::string>() != run) {
    return absl::FailedPreconditionError(
        StrCat(path,
               " is a checkpoint of another run: the data or the train config changed since. "
               "Pass --no-resume to discard it and start over"));
  }
  *step = head["step"].get<int64_t>();
  return state;
}

// The bundle's warm-up rows: the first eval rows' raw inputs as JSON with the scores the
// trained model gives them through the serving path (JSON → Batch → transform → model).
// A loader runs them before use and refuses a model that no longer reproduces them.
absl::StatusOr<std::string> WarmupRows(const data::Batch& rows, const data::TableSchema& inputs,
                                       const transform::FittedTransform& fitted,
                                       const model::Model& trained) {
  nlohmann::json objects = nlohmann::json::array();
  for (size_t r = 0; r < rows.num_rows && objects.size() < kWarmupRows; ++r) {
    nlohmann::json o = RowToJson(rows, r, inputs);
    try {
      (void)o.dump();
    } catch (const nlohmann::json::exception&) {
      continue;  // a string that is not UTF-8 cannot travel as JSON
    }
    objects.push_back(std::move(o));
  }
  if (objects.empty()) return std::string();
  auto converted = RowsFromJson(objects, inputs);
  if (!converted.ok()) return std::string();  // rows JSON cannot carry: no warm-up rows
  data::Batch& batch = *converted;
  transform::TransformedBatch x;
  KILN_RETURN_IF_ERROR(fitted.Apply(batch, &x));
  std::vector<float> scores;
  KILN_RETURN_IF_ERROR(trained.Predict(x, &scores));
  const size_t per_row = scores.size() / objects.size();
  std::string out;
  for (size_t r = 0; r < objects.size(); ++r) {
    nlohmann::json expected = nlohmann::json::array();
    for (size_t k = 0; k < per_row; ++k) expected.push_back(scores[r * per_row + k]);
    StrAppend(&out, nlohmann::json{{"inputs", objects[r]}, {"expected", expected}}.dump(), "\n");
  }
  return out;
}

// Removes what kiln keeps in a checkpoint directory (the checkpoint, its temporary file,
// the logs of the run in progress), then the directory if nothing else is in it: it may be
// one the user named, holding other files.
absl::Status RemoveCheckpoint(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return absl::OkStatus();
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name == kCheckpointFile || name == "logs" ||
        name.rfind(StrCat(kCheckpointFile, "."), 0) == 0) {
      std::error_code rm;
      fs::remove_all(entry.path(), rm);
      if (rm)
        return absl::InternalError(StrCat("removing ", entry.path().string(), ": ", rm.message()));
    }
  }
  if (fs::is_empty(dir, ec)) fs::remove(dir, ec);
  return absl::OkStatus();
}

// Moves directory `from` to `to` (which UnlistedDir made, empty): a rename, or a copy
// when the two are on different file systems.
absl::Status MoveDir(Env* env, const std::string& from, const std::string& to) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::remove(to, ec);
  if (env->RenameFile(from, to).ok()) return absl::OkStatus();
  fs::copy(from, to, fs::copy_options::recursive, ec);
  if (ec) return absl::InternalError(StrCat("copying ", from, " to ", to, ": ", ec.message()));
  fs::remove_all(from, ec);
  return absl::OkStatus();
}

std::string StripTrailingSlashes(std::string path) {
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  return path;
}

// Sets the types `overrides` gives to the columns of `schema` that have them; true when a
// type changed.
bool OverrideTypes(const data::TableSchema& overrides, data::TableSchema* schema) {
  bool changed = false;
  for (data::ColumnSpec& col : *schema) {
    for (const data::ColumnSpec& o : overrides) {
      if (o.name == col.name && o.type != col.type) {
        col.type = o.type;
        changed = true;
      }
    }
  }
  return changed;
}

// ReadAllRows, then again with `overrides` applied when they change a type.
absl::StatusOr<data::Batch> ReadRows(Env* env, const std::string& data, const std::string& split,
                                     const data::TableSchema& overrides,
                                     data::TableSchema* schema) {
  KILN_ASSIGN_OR_RETURN(data::Batch rows, ReadAllRows(env, data, split, schema));
  if (!OverrideTypes(overrides, schema)) return rows;
  return ReadAllRows(env, data, split, schema);
}

}  // namespace

absl::StatusOr<data::Batch> ReadAllRows(Env* env, const std::string& spec, const std::string& split,
                                        data::TableSchema* schema) {
  data::ResolveOptions ro;
  ro.split = split;
  KILN_ASSIGN_OR_RETURN(data::InputSet input, data::ResolveInput(env, spec, ro));
  if (!split.empty()) input.split = split;
  data::ReadOptions options;
  data::BadRowSink bad(data::BadRowPolicy::kError);
  // Blocks are decoded on every core and appended in input order.
  auto read = [&](const std::function<bool(data::Batch&)>& append) -> absl::Status {
    KILN_ASSIGN_OR_RETURN(auto source, data::OpenSource(env, input, options));
    return data::ForEachBatchOrdered(
        source.get(), &bad, data::DefaultThreads(), [](data::Batch&) { return absl::OkStatus(); },
        [&](data::Batch& batch) {
          append(batch);
          return absl::OkStatus();
        });
  };
  if (schema->empty() && input.format == data::Format::kDataset) {
    KILN_ASSIGN_OR_RETURN(auto m, data::ReadManifest(env, input.files[0]));
    *schema = m.schema;
  }
  if (schema->empty()) {
    // One pass, types inferred on the way (the common case: no column mixes numbers and
    // text); else a second, with the types of the whole input.
    data::Batch all;
    bool one_pass = true;
    KILN_RETURN_IF_ERROR(read([&](data::Batch& batch) {
      one_pass = one_pass && AppendInferred(batch, &all);
      return true;
    }));
    KILN_RETURN_IF_ERROR(bad.Finish());
    if (one_pass) {
      for (const data::Column& c : all.columns) schema->push_back({c.name, c.type});
      return all;
    }
    KILN_ASSIGN_OR_RETURN(*schema, data::InferTableSchema(env, input, options, &bad));
  }
  options.type_overrides = *schema;
  data::Batch all;
  for (const data::ColumnSpec& c : *schema) {
    data::Column col;
    col.name = c.name;
    col.type = c.type;
    all.columns.push_back(std::move(col));
  }
  KILN_RETURN_IF_ERROR(read([&](data::Batch& batch) {
    AppendBatch(batch, &all);
    return true;
  }));
  KILN_RETURN_IF_ERROR(bad.Finish());
  return all;
}

absl::StatusOr<TrainingRows> ReadTrainingRows(Env* env, const TrainConfig& c,
                                              const RowSelection& sel) {
  TrainingRows rows;
  KILN_ASSIGN_OR_RETURN(data::InputSet input, data::ResolveInput(env, sel.data));
  if (!sel.eval_data.empty() || sel.train_split.empty()) {
    Sha256 fp;
    KILN_RETURN_IF_ERROR(AddFingerprint(env, input, &fp));
    std::optional<data::InputSet> eval_input;
    if (!sel.eval_data.empty()) {
      KILN_ASSIGN_OR_RETURN(eval_input, data::ResolveInput(env, sel.eval_data));
      KILN_RETURN_IF_ERROR(AddFingerprint(env, *eval_input, &fp));
    }
    rows.data_fingerprint = fp.HexDigest();
    KILN_ASSIGN_OR_RETURN(rows.train,
                          ReadRows(env, sel.data, "", sel.type_overrides, &rows.schema));
    if (eval_input) {
      KILN_ASSIGN_OR_RETURN(rows.eval, ReadAllRows(env, sel.eval_data, "", &rows.schema));
    }
  } else if (input.format == data::Format::kDataset) {
    KILN_ASSIGN_OR_RETURN(auto m, data::ReadManifest(env, input.files[0]));
    if (sel.train_split == "train" && sel.with_eval &&
        (!m.FindSplit("train") || !m.FindSplit("eval"))) {
      return absl::InvalidArgumentError(
          StrCat(sel.data, ": an imported dataset needs splits named train and eval"));
    }
    for (const std::string& name : {sel.train_split, std::string(sel.with_eval ? "eval" : "")}) {
      if (name.empty() || m.FindSplit(name)) continue;
      std::vector<std::string> names;
      for (const auto& s : m.splits) names.push_back(s.name);
      return absl::InvalidArgumentError(StrCat(sel.data, ": the imported dataset has no split '",
                                               name, "' (splits: ", StrJoin(names, ", "), ")"));
    }
    rows.data_fingerprint = m.fingerprint;
    rows.schema = m.schema;
    OverrideTypes(sel.type_overrides, &rows.schema);
    KILN_ASSIGN_OR_RETURN(rows.train,
                          ReadAllRows(env, input.files[0], sel.train_split, &rows.schema));
    if (sel.with_eval) {
      KILN_ASSIGN_OR_RETURN(rows.eval, ReadAllRows(env, input.files[0], "eval", &rows.schema));
    }
  } else {
    Sha256 fp;
    KILN_RETURN_IF_ERROR(AddFingerprint(env, input, &fp));
    rows.data_fingerprint = fp.HexDigest();
    KILN_ASSIGN_OR_RETURN(data::Batch all,
                          ReadRows(env, sel.data, "", sel.type_overrides, &rows.schema));
    KILN_ASSIGN_OR_RETURN(data::SplitConfig sc, data::ParseSplitConfig(c.split));
    int train_index = -1, eval_index = -1;
    for (size_t i = 0; i < sc.splits.size(); ++i) {
      if (sc.splits[i].first == sel.train_split) train_index = static_cast<int>(i);
      if (sc.splits[i].first == "eval") eval_index = static_cast<int>(i);
    }
    if (sel.train_split == "train" && sel.with_eval && (train_index < 0 || eval_index < 0)) {
      return absl::InvalidArgumentError("training.split must name a train and an eval split");
    }
    if (train_index < 0) {
      return absl::InvalidArgumentError(
          StrCat("training.split '", c.split, "' has no split named '", sel.train_split, "'"));
    }
    if (sel.with_eval && eval_index < 0) {
      return absl::InvalidArgumentError(
          StrCat("training.split '", c.split, "' has no split named 'eval'"));
    }
    KILN_ASSIGN_OR_RETURN(data::SplitAssigner assigner, data::SplitAssigner::Create(sc));
    std::vector<int> tags;
    assigner.Assign(all, &tags);
    rows.train = SelectRows(all, tags, train_index);
    if (sel.with_eval) rows.eval = SelectRows(all, tags, eval_index);
  }
  return rows;
}

absl::StatusOr<LabelledRows> ExtractLabels(const TrainConfig& c, const std::string& data,
                                           TrainingRows* rows) {
  int label_idx = rows->train.FindColumn(c.label);
  if (label_idx < 0) {
    std::vector<std::string> names;
    for (const auto& col : rows->schema) names.push_back(col.name);
    return absl::InvalidArgumentError(StrCat("label column '", c.label, "' is not in ", data,
                                             " (columns: ", StrJoin(names, ", "), ")"));
  }
  KILN_ASSIGN_OR_RETURN(Labels labels, ChooseClasses(c, rows->train.columns[label_idx]));
  LabelledRows out;
  out.classes = labels.classes;
  out.positive = labels.positive;
  KILN_ASSIGN_OR_RETURN(uint64_t d1, LabelBatch(c, labels, &rows->train, &out.train));
  uint64_t d2 = 0;
  if (!rows->eval.columns.empty()) {
    KILN_ASSIGN_OR_RETURN(d2, LabelBatch(c, labels, &rows->eval, &out.eval));
  }
  out.dropped_rows = d1 + d2;
  if (out.train.size() == 0) {
    return absl::InvalidArgumentError("the train split has no labelled rows");
  }
  return out;
}

transform::TransformSpec EffectiveTransformSpec(const TrainConfig& c) {
  transform::TransformSpec spec = c.transform;
  spec.tree_defaults = c.model_type == "gbdt";
  return spec;
}

absl::StatusOr<transform::FittedTransform> FitTransform(const TrainConfig& c,
                                                        const TrainingRows& rows) {
  transform::FitOptions fo;
  fo.num_threads = c.threads;
  KILN_ASSIGN_OR_RETURN(
      auto fitter, transform::TransformFitter::Create(EffectiveTransformSpec(c), rows.schema, fo));
  KILN_RETURN_IF_ERROR(fitter->Add(rows.train));
  return fitter->Finish();
}

absl::StatusOr<TrainResult> Train(Env* env, const TrainRequest& req) {
  const TrainConfig& c = req.config;
  TrainResult result;
  if (req.world_size > 1 && c.model_type == "gbdt") {
    return absl::InvalidArgumentError(
        "--world-size: gbdt trains in one process, on XGBoost's own threads; distributed "
        "training is for the libtorch models");
  }
  // Only rank 0 writes. Fail on a bad destination or key before spending time on training.
  const bool writes = req.rank == 0;
  std::unique_ptr<model::BundleWriter> writer;
  if (writes) {
    model::BundleWriteOptions bo;
    bo.overwrite = req.overwrite;
    bo.key = req.key;
    KILN_ASSIGN_OR_RETURN(writer, model::BundleWriter::Create(env, req.out_dir, bo));
  }

  // Read and split.
  int64_t phase_start = env->NowMicros();
  auto phase = [&](const char* name) {
    const int64_t now = env->NowMicros();
    result.phase_seconds.emplace_back(name, static_cast<double>(now - phase_start) / 1e6);
    phase_start = now;
  };
  // Fail on a fitted transform of another spec before reading the data.
  std::optional<transform::FittedTransform> given;
  if (!req.transform.empty()) {
    KILN_ASSIGN_OR_RETURN(given, LoadFittedTransform(env, req.transform));
    KILN_RETURN_IF_ERROR(CheckTransformSpec(c, *given, req.transform));
  }
  RowSelection selection;
  selection.data = req.data;
  selection.eval_data = req.eval_data;
  KILN_ASSIGN_OR_RETURN(TrainingRows rows, ReadTrainingRows(env, c, selection));
  result.data_fingerprint = rows.data_fingerprint;
  KILN_ASSIGN_OR_RETURN(LabelledRows labelled, ExtractLabels(c, req.data, &rows));
  const Labels labels{labelled.classes, labelled.positive};
  result.classes = labels.classes;
  model::Examples& train = labelled.train;
  model::Examples& eval = labelled.eval;
  result.dropped_rows = labelled.dropped_rows;
  result.train_rows = train.size();
  result.eval_rows = eval.size();
  const data::TableSchema& schema = rows.schema;
  const data::Batch& train_rows = rows.train;
  const data::Batch& eval_rows = rows.eval;

  phase("read");
  // Fit the transform on the train split (or take the given one); apply it to both.
  transform::FittedTransform fitted;
  if (given) {
    KILN_RETURN_IF_ERROR(CheckTransformColumns(schema, *given, req.transform));
    fitted = *std::move(given);
  } else {
    KILN_ASSIGN_OR_RETURN(fitted, FitTransform(c, rows));
  }
  result.warnings = fitted.warnings();
  transform::TransformedBatch xtrain, xeval;
  KILN_RETURN_IF_ERROR(fitted.Apply(train_rows, &xtrain));
  KILN_RETURN_IF_ERROR(fitted.Apply(eval_rows, &xeval));
  train.x = &xtrain;
  eval.x = &xeval;

  phase("transform");
  // Checkpoints and logs live in the checkpoint directory until the bundle is published
  // (without checkpoints, the logs go straight into the bundle).
  const std::string ckpt_dir = req.checkpoint_dir.empty()
                                   ? StrCat(StripTrailingSlashes(req.out_dir), ".ckpt")
                                   : req.checkpoint_dir;
  const std::string ckpt_file = JoinPath(ckpt_dir, kCheckpointFile);
  const std::string transform_json = fitted.ToJson();
  const std::string run = RunFingerprint(c, result.data_fingerprint, transform_json);
  std::string resume_state;
  const bool checkpointing = c.checkpoint_every > 0 && writes;
  if (!checkpointing) {
    // Without checkpoints (or on ranks > 0, which rank 0's checkpoint reaches through the
    // process group) the checkpoint directory is not touched.
  } else if (env->FileExists(ckpt_file) && req.resume) {
    KILN_ASSIGN_OR_RETURN(resume_state,
                          ReadCheckpoint(env, ckpt_file, run, &result.resumed_from_step));
  } else {
    // Nothing to resume from: what kiln left there (logs of a run killed before its first
    // checkpoint, or a checkpoint the caller discards) would only mislead.
    KILN_RETURN_IF_ERROR(RemoveCheckpoint(ckpt_dir));
  }
  std::string logdir;
  std::unique_ptr<observe::EventWriter> events;
  if (writes) {
    if (checkpointing) {
      logdir = JoinPath(ckpt_dir, "logs");
      KILN_RETURN_IF_ERROR(env->CreateDirs(logdir));
    } else {
      KILN_ASSIGN_OR_RETURN(logdir, writer->UnlistedDir("logs"));
    }
    // Train, logging eval metrics to TensorBoard.
    KILN_ASSIGN_OR_RETURN(events, observe::EventWriter::Create(env, logdir));
    std::map<std::string, observe::HparamValue> hparams;
    for (const auto& [k, v] : c.model_params.items()) {
      if (v.is_number()) hparams[k] = v.get<double>();
      if (v.is_string()) hparams[k] = v.get<std::string>();
      if (v.is_boolean()) hparams[k] = v.get<bool>();
    }
    const double start = static_cast<double>(env->NowMicros()) / 1e6;
    KILN_RETURN_IF_ERROR(events->WriteHparamsSessionStart(hparams, "", start));
  }
  model::TrainOptions to;
  to.task = c.task;
  to.num_classes = static_cast<int>(labels.classes.size());
  to.params = c.model_params;
  to.seed = c.seed;
  to.threads = c.threads;
  to.eval_every = c.eval_every;
  to.early_stopping_metric = c.early_stopping_metric;
  to.patience = c.patience;
  to.world_size = req.world_size;
  to.run_id = run;
  to.rank = req.rank;
  to.rendezvous = req.rendezvous;
  if (checkpointing) {
    to.checkpoint_every = c.checkpoint_every;
    to.on_checkpoint = [&](int64_t step, std::string state) {
      // The logs up to here survive a kill too.
      KILN_RETURN_IF_ERROR(events->Flush());
      return WriteCheckpoint(env, ckpt_file, run, c.model_type, step, state);
    };
    to.resume_from = std::move(resume_state);
  }
  TrainProgress progress;
  to.on_step = [&](int64_t step, int64_t total) {
    progress.step = step;
    progress.total_steps = total;
    if (req.on_progress) req.on_progress(progress);
  };
  absl::Status log_status;
  to.on_eval = [&](int64_t step, const model::Metrics& m) {
    progress.eval = m;
    for (const auto& [name, value] : m) {
      if (events && std::isfinite(value) && log_status.ok()) {
        log_status = events->AddScalar(StrCat("eval/", name), step, static_cast<float>(value));
      }
    }
  };
  to.on_loss = [&](int64_t step, double loss) {
    progress.loss = loss;
    if (events && std::isfinite(loss) && log_status.ok()) {
      log_status = events->AddScalar("train/loss", step, static_cast<float>(loss));
    }
  };
  to.on_histogram = [&](const std::string& tag, int64_t step, std::span<const float> values) {
    if (events && log_status.ok()) log_status = events->AddHistogram(tag, step, values);
  };
  std::vector<float> train_scores, eval_scores;
  to.final_train_scores = &train_scores;
  to.final_eval_scores = &eval_scores;
  auto trained = model::TrainModel(c.model_type, to, fitted.output_signature(), train, eval);
  if (!trained.ok()) {
    if (events) {
      events
          ->WriteHparamsSessionEnd(tensorboard::hparams::STATUS_FAILURE,
                                   static_cast<double>(env->NowMicros()) / 1e6)
          .IgnoreError();
    }
    return trained.status();
  }
  KILN_RETURN_IF_ERROR(log_status);
  if (eval_scores.empty()) KILN_RETURN_IF_ERROR((*trained)->Predict(xeval, &eval_scores));
  result.eval = model::ComputeMetrics(c.task, to.num_classes, eval_scores, eval.labels);
  if (train_scores.empty()) KILN_RETURN_IF_ERROR((*trained)->Predict(xtrain, &train_scores));
  result.train = model::ComputeMetrics(c.task, to.num_classes, train_scores, train.labels);
  if (!writes) return result;
  KILN_RETURN_IF_ERROR(events->WriteHparamsSessionEnd(tensorboard::hparams::STATUS_SUCCESS,
                                                      static_cast<double>(env->NowMicros()) / 1e6));
  KILN_RETURN_IF_ERROR(events->Close());

  phase("train");
  // The bundle.
  if (checkpointing) {
    KILN_ASSIGN_OR_RETURN(std::string bundle_logs, writer->UnlistedDir("logs"));
    KILN_RETURN_IF_ERROR(MoveDir(env, logdir, bundle_logs));
  }
  KILN_RETURN_IF_ERROR(writer->AddFile(kTransformFile, transform_json));
  KILN_RETURN_IF_ERROR((*trained)->Save(writer.get()));
  model::BundleManifest m;
  m.backend = std::string((*trained)->backend());
  m.model_type = c.model_type;
  nlohmann::json inputs = nlohmann::json::array();
  data::TableSchema input_schema;
  for (const data::ColumnSpec& col : schema) {
    if (c.transform.IsExcluded(col.name)) continue;
    input_schema.push_back(col);
    inputs.push_back({{"name", col.name},
                      {"dtype", col.type == data::ValueType::kInt     ? "int64"
                                : col.type == data::ValueType::kFloat ? "float64"
                                                                      : "string"},
                      {"shape", {-1}}});
  }
  m.signature = {{"inputs", inputs}, {"outputs", OutputsSignature(c.task, labels)}};
  KILN_ASSIGN_OR_RETURN(std::string warmup, WarmupRows(eval_rows, input_schema, fitted, **trained));
  if (!warmup.empty()) KILN_RETURN_IF_ERROR(writer->AddFile(kWarmupFile, warmup));
  auto metrics_json = [](const model::Metrics& mm) {
    nlohmann::json j = nlohmann::json::object();
    for (const auto& [k, v] : mm) j[k] = std::isfinite(v) ? nlohmann::json(v) : nlohmann::json();
    return j;
  };
  m.config = {
      {"task", std::string(model::TaskName(c.task))},
      {"label", c.label},
      {"classes", labels.classes},
      {"train_config", TrainConfigToJson(c)},
      {"model_summary", (*trained)->Summary()},
      {"metrics", {{"eval", metrics_json(result.eval)}, {"train", metrics_json(result.train)}}}};
  m.provenance = {{"data", req.data},
                  {"data_fingerprint", result.data_fingerprint},
                  {"train_rows", StrCat(result.train_rows)},
                  {"eval_rows", StrCat(result.eval_rows)},
                  {"kiln_version", std::string(KilnVersion())},
                  {"git_sha", std::string(GitSha())}};
  if (!req.transform.empty()) m.provenance["transform"] = req.transform;
  KILN_RETURN_IF_ERROR(writer->Finish(std::move(m)));
  phase("write");
  if (checkpointing) {
    // The bundle is published; the checkpoint is of no further use.
    if (absl::Status st = RemoveCheckpoint(ckpt_dir); !st.ok()) {
      result.warnings.push_back(std::string(st.message()));
    }
  }
  return result;
}

}  // namespace kiln::train
