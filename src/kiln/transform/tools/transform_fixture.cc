// Test fixture for tests/test_transform_reference.py: fits a transform spec on a CSV (types
// inferred as `kiln import` would), applies it to the same rows and writes the fitted
// transform and every output row as JSON, for comparison against numpy/pandas.
//
// Usage: kiln_transform_fixture SPEC.yaml DATA.csv OUT.json
// pii salts come from the environment (the spec's salt_env variables).
#include <cstdio>
#include <string>

#include "kiln/base/env.h"
#include "kiln/base/str.h"
#include "kiln/data/input.h"
#include "kiln/transform/transform.h"

namespace kiln::transform {
namespace {

absl::Status Run(const std::string& spec_path, const std::string& data_path,
                 const std::string& out_path) {
  Env* env = Env::Default();
  KILN_ASSIGN_OR_RETURN(std::string yaml, ReadFileToString(env, spec_path));
  KILN_ASSIGN_OR_RETURN(TransformSpec spec, ParseTransformSpecYaml(yaml));
  KILN_ASSIGN_OR_RETURN(data::InputSet input, data::ResolveInput(env, data_path));
  data::BadRowSink bad(data::BadRowPolicy::kError);
  KILN_ASSIGN_OR_RETURN(data::TableSchema schema, data::InferTableSchema(env, input, {}, &bad));
  data::ReadOptions read;
  read.type_overrides = schema;
  KILN_ASSIGN_OR_RETURN(auto fit_source, data::OpenSource(env, input, read));
  KILN_ASSIGN_OR_RETURN(FittedTransform t, Fit(spec, schema, fit_source.get(), &bad));

  KILN_ASSIGN_OR_RETURN(auto source, data::OpenSource(env, input, read));
  data::BatchReader reader(std::move(source), &bad);
  Json dense = Json::array(), ids = Json::array();
  data::Batch batch;
  TransformedBatch out;
  while (true) {
    KILN_ASSIGN_OR_RETURN(bool more, reader.Next(&batch));
    if (!more) break;
    KILN_RETURN_IF_ERROR(t.Apply(batch, &out));
    for (size_t r = 0; r < out.num_rows; ++r) {
      Json d = Json::array(), c = Json::array();
      for (size_t j = 0; j < out.dense_dim; ++j) d.push_back(out.dense_at(r, j));
      for (size_t j = 0; j < out.num_categorical; ++j) c.push_back(out.id_at(r, j));
      dense.push_back(std::move(d));
      ids.push_back(std::move(c));
    }
  }
  Json doc = {{"transform", Json::parse(t.ToJson())}, {"dense", dense}, {"ids", ids}};
  return WriteFileAtomically(env, out_path, doc.dump());
}

}  // namespace
}  // namespace kiln::transform

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s SPEC.yaml DATA.csv OUT.json\n", argv[0]);
    return 2;
  }
  absl::Status s = kiln::transform::Run(argv[1], argv[2], argv[3]);
  if (!s.ok()) {
    std::fprintf(stderr, "%s\n", std::string(s.message()).c_str());
    return 1;
  }
  return 0;
}
