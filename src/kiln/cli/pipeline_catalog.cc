#include "kiln/cli/pipeline_catalog.h"

#include <string>

namespace kiln::cli {

pipeline::FlagCatalog PipelineFlagCatalog(CLI::App& root) {
  pipeline::FlagCatalog catalog;
  for (const std::string& name : pipeline::KindNames()) {
    const pipeline::Kind* kind = pipeline::FindKind(name);
    if (!kind) continue;
    CLI::App* app = &root;
    for (const std::string& word : kind->subcommand) {
      CLI::App* next = nullptr;
      for (CLI::App* sub : app->get_subcommands({})) {
        if (sub->get_name() == word) next = sub;
      }
      app = next;
      if (!app) break;
    }
    if (!app) continue;
    pipeline::CommandFlags& flags = catalog[name];
    for (const CLI::Option* opt : app->get_options()) {
      for (const std::string& lname : opt->get_lnames()) {
        flags.options[lname] = opt->get_type_size() != 0;
      }
    }
  }
  return catalog;
}

}  // namespace kiln::cli
