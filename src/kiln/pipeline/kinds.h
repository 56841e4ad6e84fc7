// The built-in component kinds of a pipeline: which `kiln` subcommand each runs, how its
// inputs reach that command's flags, which outputs it declares and what it records.
// Adding a kind is adding one entry to the table in kinds.cc. Thread-safe (immutable).
#ifndef KILN_PIPELINE_KINDS_H_
#define KILN_PIPELINE_KINDS_H_

#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::pipeline {

// The kind of components that run any executable (see the `command:` contract in
// `kiln run --help`).
inline constexpr std::string_view kCommandKind = "command";

struct KindInput {
  std::string name;  // as written under `inputs:` or `args:` ("data")
  std::string flag;  // "--data"; empty: the command's positional argument
  bool required = false;
  // Artifact types of kiln's kinds a reference may name (a command component's outputs
  // of other types are not checked).
  std::vector<std::string> accepts;
};

struct KindOutput {
  std::string name;  // "out": referenced as COMPONENT.out
  std::string flag;  // the command's flag naming where to write ("--out")
  // Empty: the output is the directory the flag names. Otherwise the flag names this
  // file inside the output directory (schema.pbtxt), which is the artifact's path.
  std::string file;
  std::string artifact_type;  // recorded type ("Examples")
};

struct Kind {
  std::string name;                     // "schema"
  std::vector<std::string> subcommand;  // {"schema", "infer"}
  std::string execution_type;           // the execution type recorded ("SchemaGen")
  std::vector<KindInput> inputs;        // artifacts it reads: references or paths
  std::vector<std::string> required_args;
  // Path arguments the command writes to rather than reads (push's `to`): not fingerprinted
  // by content, or every write would change the cache key of the next run.
  std::vector<std::string> destination_args;
  // Path arguments the command may create (schema's `curated`: written on the first run,
  // read on later ones): the cache key recorded is computed again after the command ran,
  // so the next run, which finds the file, is not a cache miss.
  std::vector<std::string> inout_args;
  std::vector<KindOutput> outputs;
  // What exit code 3 means for this command ("ERROR anomalies").
  std::string findings = "found problems";
};

// The kind named `name`, or nullptr (also for "command", which has no table entry).
const Kind* FindKind(std::string_view name);

// Every kind name, "command" last, for error messages.
std::vector<std::string> KindNames();

// Whether `type` is the artifact type of some built-in kind's output ("Examples").
bool IsKilnArtifactType(std::string_view type);

// The flags a `kiln` subcommand accepts, read from the binary's own command-line parser
// so a pipeline file is checked against the real flags. Keys are long names without
// dashes ("eval-data"); the value is true for an option that takes a value, false for a
// flag that does not (--overwrite).
struct CommandFlags {
  std::map<std::string, bool> options;
};
// Per kind name. A kind missing here is not available in this binary.
using FlagCatalog = std::map<std::string, CommandFlags>;

}  // namespace kiln::pipeline

#endif  // KILN_PIPELINE_KINDS_H_
