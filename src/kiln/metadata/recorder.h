// The metadata API for kiln's components: "record this execution, with these inputs and
// outputs, in this run". Callers never register types, build events or pick context
// names; the recorder does, the same way for every component, so lineage and diffs line
// up across the pipeline runner, trainer, evaluator, pusher and server.
//
// Conventions it writes (and MetadataStore::Diff reads):
//   contexts   "pipeline" (name: pipeline), "pipeline_run" (name: run id),
//              "component" (name: "<pipeline>.<component>")
//   execution  type = the component's kind ("Trainer"); custom properties: the caller's
//              parameters, kiln_version, git_sha, env.host, env.os, env.user
//   artifacts  type = the artifact kind ("Model"); the caller's properties become the
//              type's declared properties (registered on first use)
#ifndef KILN_METADATA_RECORDER_H_
#define KILN_METADATA_RECORDER_H_

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "kiln/metadata/metadata_store.h"

namespace kiln::metadata {

struct ExecutionRecord {
  std::string type;       // the component kind, e.g. "Trainer"
  std::string name;       // optional, unique within the type
  std::string pipeline;   // optional; with `run`, groups the execution in contexts
  std::string run;        // optional pipeline run id
  std::string component;  // optional node name in the pipeline (default: `type`)
  ExecutionState state = ExecutionState::kComplete;
  Properties parameters;
  std::vector<std::pair<std::string, int64_t>> inputs;    // role -> stored artifact id
  std::vector<std::pair<std::string, Artifact>> outputs;  // role -> new artifact
};

struct RecordedExecution {
  int64_t execution_id = 0;
  std::vector<int64_t> output_ids;  // in the order of ExecutionRecord::outputs
};

class Recorder {
 public:
  explicit Recorder(MetadataStore* store) : store_(store) {}

  // Writes the execution, its outputs, events and contexts in one transaction.
  // Errors: kNotFound for an input id that does not exist; kInvalidArgument for a
  // missing type or a property whose data type differs from the one first recorded.
  absl::StatusOr<RecordedExecution> Record(const ExecutionRecord& record);

  // Registers an artifact that no kiln execution produced (raw input data), returning
  // the id of the existing artifact when one with the same type, uri and properties is
  // already stored, so re-runs over the same data share one node.
  absl::StatusOr<int64_t> RegisterExternal(const Artifact& artifact);

 private:
  absl::Status EnsureArtifactType(const Artifact& a);
  absl::Status EnsureType(TypeKind kind, const std::string& name);

  MetadataStore* store_;
};

}  // namespace kiln::metadata

#endif  // KILN_METADATA_RECORDER_H_
