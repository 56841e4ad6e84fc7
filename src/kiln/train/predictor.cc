#include "kiln/train/predictor.h"

#include <algorithm>
#include <cmath>

#include "absl/status/status.h"
#include "kiln/base/status.h"
#include "kiln/base/str.h"
#include "kiln/data/input.h"
#include "nlohmann/json.hpp"

namespace kiln::train {
namespace {

constexpr const char* kWarmupFile = "warmup.jsonl";

// CSV field quoting per RFC 4180.
std::string CsvField(std::string_view s) {
  if (s.find_first_of(",\"\r\n") == std::string_view::npos) return std::string(s);
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

}  // namespace

absl::StatusOr<std::unique_ptr<Predictor>> Predictor::Load(Env* env, const std::string& dir,
                                                           std::optional<std::string> key) {
  std::unique_ptr<Predictor> p(new Predictor);
  KILN_ASSIGN_OR_RETURN(p->bundle_, model::Bundle::Open(env, dir, std::move(key)));
  const nlohmann::json& config = p->bundle_->manifest().config;
  auto task = model::ParseTask(config.value("task", ""));
  if (!task.ok()) {
    return absl::FailedPreconditionError(StrCat(dir, ": ", task.status().message()));
  }
  p->task_ = *task;
  p->classes_ = config.value("classes", std::vector<std::string>());
  KILN_ASSIGN_OR_RETURN(std::string transform_json, p->bundle_->ReadFile("transform.json"));
  auto fitted = transform::FittedTransform::FromJson(transform_json);
  if (!fitted.ok()) {
    return absl::Status(fitted.status().code(),
                        StrCat(dir, ": transform.json: ", fitted.status().message()));
  }
  p->transform_ = std::move(*fitted);
  auto m = model::LoadModel(*p->bundle_, p->task_, static_cast<int>(p->classes_.size()));
  if (!m.ok()) return absl::FailedPreconditionError(StrCat(dir, ": ", m.status().message()));
  p->model_ = std::move(*m);
  auto inputs = SignatureInputs(p->bundle_->manifest());
  if (!inputs.ok()) return absl::DataLossError(StrCat(dir, ": ", inputs.status().message()));
  p->inputs_ = std::move(*inputs);
  if (p->bundle_->HasFile(kWarmupFile)) {
    KILN_RETURN_IF_ERROR(p->WarmUp(dir));
  }
  return p;
}

absl::Status Predictor::WarmUp(const std::string& dir) {
  KILN_ASSIGN_OR_RETURN(std::string text, bundle_->ReadFile(kWarmupFile));
  auto fail = [&](std::string_view why) {
    return absl::FailedPreconditionError(StrCat(dir, ": warm-up: ", why));
  };
  nlohmann::json rows = nlohmann::json::array();
  std::vector<std::vector<double>> expected;
  size_t line_no = 0;
  for (std::string_view rest = text; !rest.empty();) {
    const size_t eol = rest.find('\n');
    std::string_view line = rest.substr(0, eol);
    rest = eol == std::string_view::npos ? std::string_view() : rest.substr(eol + 1);
    ++line_no;
    if (line.empty()) continue;
    nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_object() || !j.contains("inputs") || !j.contains("expected") ||
        !j["expected"].is_array()) {
      return fail(StrCat(kWarmupFile, " line ", line_no, " is not {inputs, expected}"));
    }
    rows.push_back(j["inputs"]);
    expected.emplace_back();
    for (const nlohmann::json& v : j["expected"]) {
      if (!v.is_number()) return fail(StrCat(kWarmupFile, " line ", line_no, ": bad expected"));
      expected.back().push_back(v.get<double>());
    }
  }
  auto batch = RowsFromJson(rows, inputs_);
  if (!batch.ok()) return fail(std::string(batch.status().message()));
  std::vector<float> scores;
  if (absl::Status st = Predict(*batch, &scores); !st.ok()) return fail(std::string(st.message()));
  const size_t per_row = rows.empty() ? 0 : scores.size() / rows.size();
  for (size_t r = 0; r < rows.size(); ++r) {
    if (expected[r].size() != per_row) {
      return fail(StrCat("row ", r, " expects ", expected[r].size(), " outputs; the model gives ",
                         per_row));
    }
    for (size_t k = 0; k < per_row; ++k) {
      const double got = scores[r * per_row + k], want = expected[r][k];
      if (!(std::abs(got - want) <= 1e-5 + 1e-4 * std::abs(want))) {
        return fail(StrCat("row ", r, " scores ", got, " where the model scored ", want,
                           " when it was written: it does not reproduce its own outputs"));
      }
    }
  }
  warmup_rows_ = rows.size();
  warmup_inputs_ = std::move(rows);
  return absl::OkStatus();
}

absl::Status Predictor::Predict(const data::Batch& raw, std::vector<float>* scores) const {
  transform::TransformedBatch x;
  KILN_RETURN_IF_ERROR(transform_.Apply(raw, &x));
  return model_->Predict(x, scores);
}

absl::StatusOr<std::unique_ptr<data::BatchReader>> OpenRowsTypedAs(
    Env* env, const std::string& data, const data::ResolveOptions& resolve,
    const std::vector<const data::TableSchema*>& inputs, data::BadRowSink* bad) {
  KILN_ASSIGN_OR_RETURN(data::InputSet input, data::ResolveInput(env, data, resolve));
  data::ReadOptions options;
  if (input.format != data::Format::kDataset) {  // a dataset's columns are typed already
    for (const data::TableSchema* schema : inputs) {
      for (const data::ColumnSpec& col : *schema) {
        const bool named =
            std::any_of(options.type_overrides.begin(), options.type_overrides.end(),
                        [&](const data::ColumnSpec& c) { return c.name == col.name; });
        if (!named) options.type_overrides.push_back(col);
      }
    }
  }
  KILN_ASSIGN_OR_RETURN(auto source, data::OpenSource(env, input, options));
  return std::make_unique<data::BatchReader>(std::move(source), bad);
}

absl::StatusOr<std::unique_ptr<data::BatchReader>> Predictor::OpenRows(
    Env* env, const std::string& data, data::BadRowSink* bad) const {
  return OpenRowsTypedAs(env, data, {}, {&inputs_}, bad);
}

absl::StatusOr<uint64_t> PredictFile(Env* env, const Predictor& predictor, const std::string& data,
                                     const std::string& out) {
  const bool jsonl = out.ends_with(".jsonl") || out.ends_with(".json");
  if (!jsonl && !out.ends_with(".csv")) {
    return absl::InvalidArgumentError(StrCat("--out ", out, ": write .csv or .jsonl"));
  }
  data::BadRowSink bad(data::BadRowPolicy::kError);
  KILN_ASSIGN_OR_RETURN(std::unique_ptr<data::BatchReader> reader,
                        predictor.OpenRows(env, data, &bad));
  KILN_ASSIGN_OR_RETURN(auto writer, AtomicFileWriter::Create(env, out));
  const model::Task task = predictor.task();
  const std::vector<std::string>& classes = predictor.classes();
  const size_t k = task == model::Task::kMulticlass ? classes.size() : 1;
  if (!jsonl) {
    std::string header;
    if (task == model::Task::kBinary) header = "score";
    if (task == model::Task::kRegression) header = "prediction";
    if (task == model::Task::kMulticlass) {
      header = "class";
      for (const std::string& c : classes) StrAppend(&header, ",", CsvField("prob_" + c));
    }
    KILN_RETURN_IF_ERROR(writer->Append(header + "\n"));
  }
  data::Batch batch;
  std::vector<float> scores;
  uint64_t rows = 0;
  std::string buf;
  for (;;) {
    KILN_ASSIGN_OR_RETURN(bool more, reader->Next(&batch));
    if (!more) break;
    KILN_RETURN_IF_ERROR(predictor.Predict(batch, &scores));
    buf.clear();
    for (size_t r = 0; r < batch.num_rows; ++r) {
      const float* s = &scores[r * k];
      if (task == model::Task::kMulticlass) {
        size_t best = std::max_element(s, s + k) - s;
        if (jsonl) {
          nlohmann::json j;
          j["class"] = classes[best];
          for (size_t c = 0; c < k; ++c) j["prob_" + classes[c]] = s[c];
          buf += j.dump() + "\n";
        } else {
          buf += CsvField(classes[best]);
          for (size_t c = 0; c < k; ++c) StrAppend(&buf, ",", s[c]);
          buf += "\n";
        }
      } else {
        const char* name = task == model::Task::kBinary ? "score" : "prediction";
        if (jsonl) {
          StrAppend(&buf, "{\"", name, "\":", s[0], "}\n");
        } else {
          StrAppend(&buf, s[0], "\n");
        }
      }
    }
    KILN_RETURN_IF_ERROR(writer->Append(buf));
    rows += batch.num_rows;
  }
  KILN_RETURN_IF_ERROR(bad.Finish());
  KILN_RETURN_IF_ERROR(writer->Commit());
  return rows;
}

}  // namespace kiln::train
