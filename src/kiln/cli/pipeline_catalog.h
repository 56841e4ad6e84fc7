// The flags of each built-in pipeline kind's command, read from this binary's own parser,
// so that `kiln run` and `kiln schedule` check a pipeline file against the real flags.
#ifndef KILN_CLI_PIPELINE_CATALOG_H_
#define KILN_CLI_PIPELINE_CATALOG_H_

#include "CLI/CLI.hpp"
#include "kiln/pipeline/kinds.h"

namespace kiln::cli {

pipeline::FlagCatalog PipelineFlagCatalog(CLI::App& root);

}  // namespace kiln::cli

#endif  // KILN_CLI_PIPELINE_CATALOG_H_
