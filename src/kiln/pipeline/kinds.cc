#include "kiln/pipeline/kinds.h"

namespace kiln::pipeline {
namespace {

// One entry per kind. Flags are those of `kiln <subcommand> --help`; every kind writes
// its output where the runner says (--out) and its other flags come from `args:`.
const std::vector<Kind>& Table() {
  static const std::vector<Kind>* const kinds = new std::vector<Kind>{
      {.name = "import",
       .subcommand = {"import"},
       .execution_type = "Import",
       .inputs = {{.name = "data", .flag = "", .required = true, .accepts = {"Examples"}}},
       .outputs = {{.name = "out", .flag = "--out", .artifact_type = "Examples"}}},
      {.name = "stats",
       .subcommand = {"stats"},
       .execution_type = "StatisticsGen",
       .inputs = {{.name = "data", .flag = "", .required = true, .accepts = {"Examples"}},
                  {.name = "schema", .flag = "--schema", .accepts = {"Schema"}}},
       .outputs = {{.name = "out", .flag = "--out", .artifact_type = "ExampleStatistics"}}},
      {.name = "schema",
       .subcommand = {"schema", "infer"},
       .execution_type = "SchemaGen",
       .inputs = {{.name = "stats",
                   .flag = "--stats",
                   .required = true,
                   .accepts = {"ExampleStatistics"}}},
       .inout_args = {"curated"},
       .outputs =
           {{.name = "out", .flag = "--out", .file = "schema.pbtxt", .artifact_type = "Schema"}}},
      {.name = "validate",
       .subcommand = {"validate"},
       .execution_type = "ExampleValidator",
       .inputs = {{.name = "data",
                   .flag = "",
                   .required = true,
                   .accepts = {"Examples", "ExampleStatistics"}},
                  {.name = "schema", .flag = "--schema", .required = true, .accepts = {"Schema"}},
                  {.name = "previous", .flag = "--previous", .accepts = {"ExampleStatistics"}},
                  {.name = "serving", .flag = "--serving", .accepts = {"ExampleStatistics"}}},
       .outputs = {{.name = "out", .flag = "--out", .artifact_type = "ExampleAnomalies"}},
       .findings = "found ERROR anomalies"},
      {.name = "transform",
       .subcommand = {"transform"},
       .execution_type = "Transform",
       .inputs = {{.name = "data", .flag = "--data", .required = true, .accepts = {"Examples"}},
                  {.name = "schema", .flag = "--schema", .accepts = {"Schema"}}},
       .required_args = {"config"},
       .outputs = {{.name = "out", .flag = "--out", .artifact_type = "TransformGraph"}}},
      {.name = "train",
       .subcommand = {"train"},
       .execution_type = "Trainer",
       .inputs = {{.name = "data", .flag = "--data", .required = true, .accepts = {"Examples"}},
                  {.name = "eval_data", .flag = "--eval-data", .accepts = {"Examples"}},
                  {.name = "transform", .flag = "--transform", .accepts = {"TransformGraph"}}},
       .required_args = {"config"},
       .destination_args = {"checkpoint-dir"},
       .outputs = {{.name = "out", .flag = "--out", .artifact_type = "Model"}}},
      {.name = "evaluate",
       .subcommand = {"evaluate"},
       .execution_type = "Evaluator",
       .inputs = {{.name = "model", .flag = "--model", .required = true, .accepts = {"Model"}},
                  {.name = "baseline", .flag = "--baseline", .accepts = {"Model"}},
                  {.name = "data", .flag = "--data", .required = true, .accepts = {"Examples"}}},
       .outputs = {{.name = "out", .flag = "--out", .artifact_type = "ModelBlessing"}},
       .findings = "NOT_BLESSED"},
      {.name = "infra_validate",
       .subcommand = {"infra-validate"},
       .execution_type = "InfraValidator",
       .inputs = {{.name = "model", .flag = "--model", .required = true, .accepts = {"Model"}},
                  {.name = "data", .flag = "--data", .accepts = {"Examples"}}},
       .outputs = {{.name = "out", .flag = "--out", .artifact_type = "InfraBlessing"}},
       .findings = "not infra-blessed"},
      {.name = "push",
       .subcommand = {"push"},
       .execution_type = "Pusher",
       .inputs = {{.name = "model", .flag = "--model", .required = true, .accepts = {"Model"}},
                  {.name = "blessing", .flag = "--blessing", .accepts = {"ModelBlessing"}},
                  {.name = "infra_blessing",
                   .flag = "--infra-blessing",
                   .accepts = {"InfraBlessing"}}},
       .required_args = {"to"},
       .destination_args = {"to"},
       .findings = "refused an unblessed model"},
  };
  return *kinds;
}

}  // namespace

bool IsKilnArtifactType(std::string_view type) {
  for (const Kind& k : Table()) {
    for (const KindOutput& o : k.outputs) {
      if (o.artifact_type == type) return true;
    }
  }
  return false;
}

const Kind* FindKind(std::string_view name) {
  for (const Kind& k : Table()) {
    if (k.name == name) return &k;
  }
  return nullptr;
}

std::vector<std::string> KindNames() {
  std::vector<std::string> names;
  for (const Kind& k : Table()) names.push_back(k.name);
  names.emplace_back(kCommandKind);
  return names;
}

}  // namespace kiln::pipeline
