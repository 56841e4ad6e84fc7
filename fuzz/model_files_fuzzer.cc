// libFuzzer target: arbitrary bytes as the files of a model bundle and a training config —
// the bundle manifest, the fitted transform (then applied to a few rows), train.yaml and
// the transform spec. None may crash; malformed input is an error Status.
#include <cstdint>
#include <string>

#include "kiln/data/batch.h"
#include "kiln/model/bundle.h"
#include "kiln/train/train_config.h"
#include "kiln/transform/transform.h"
#include "kiln/transform/transform_spec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)kiln::model::ManifestFromJson(text);
  (void)kiln::train::ParseTrainConfig(text);
  (void)kiln::transform::ParseTransformSpecYaml(text);
  kiln::transform::LoadOptions options;
  options.salts = [](const std::string&) { return std::optional<std::string>("salt"); };
  auto fitted = kiln::transform::FittedTransform::FromJson(text, options);
  if (fitted.ok()) {
    // Rows with every column name the transform knows, as numbers and as strings.
    kiln::data::Batch batch;
    batch.num_rows = 3;
    for (const auto& f : fitted->features()) {
      for (auto type : {kiln::data::ValueType::kFloat, kiln::data::ValueType::kString}) {
        kiln::data::Column c;
        c.name = f.name;
        c.type = type;
        if (type == kiln::data::ValueType::kFloat) {
          c.AddFloat(1.5);
          c.AddFloat(-1e300);
        } else {
          c.AddString("x");
          c.AddString("");
        }
        c.AddMissing();
        batch.columns.push_back(std::move(c));
        if (batch.columns.size() > 64) break;
      }
    }
    kiln::transform::TransformedBatch out;
    (void)fitted->Apply(batch, &out);
  }
  return 0;
}
