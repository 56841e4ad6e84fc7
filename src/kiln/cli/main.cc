// The `kiln` binary: one subcommand per step of the loop (see `kiln --help`).
#include <cstdio>
#include <string>

#include "kiln/base/build_info.h"
#include "kiln/base/str.h"
#include "kiln/cli/command.h"

int main(int argc, char** argv) {
  CLI::App app{
      "kiln: the life of a production model, from raw data to a served model, in one "
      "binary.\nThis release covers data validation: import, statistics, schema and "
      "anomaly/drift checks that speak TFX and TFDV formats."};
  app.footer(
      "Typical loop:\n"
      "  kiln import data/span-{SPAN}/*.csv --out ds/          # ExampleGen\n"
      "  kiln stats ds/ --out stats/                           # StatisticsGen\n"
      "  kiln schema infer --stats stats/ --split train --out schema.pbtxt   # SchemaGen\n"
      "  kiln validate new.csv --schema schema.pbtxt --previous stats/ --previous-split "
      "train --drift-threshold 0.1 --out checks/   # ExampleValidator\n\n"
      "Run `kiln COMMAND --help` for a command's flags and examples.");
  app.name("kiln");
  app.require_subcommand(1);
  app.set_version_flag("--version",
                       kiln::StrCat("kiln ", kiln::KilnVersion(), " (", kiln::GitSha(), ")"));
  kiln::cli::AddImportCommand(app);
  kiln::cli::AddStatsCommand(app);
  kiln::cli::AddSchemaCommand(app);
  kiln::cli::AddValidateCommand(app);
  // Name an unknown command instead of CLI11's generic complaint.
  if (argc > 1 && argv[1][0] != '-') {
    bool known = false;
    std::string names;
    for (const CLI::App* sub : app.get_subcommands({})) {
      known = known || sub->get_name() == argv[1];
      names += (names.empty() ? "" : ", ") + sub->get_name();
    }
    if (!known) {
      std::fprintf(stderr, "kiln: unknown command '%s'; commands: %s (see kiln --help)\n", argv[1],
                   names.c_str());
      return kiln::cli::kExitUsage;
    }
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::RuntimeError& e) {
    return e.get_exit_code();
  } catch (const CLI::ParseError& e) {
    app.exit(e);  // prints the message
    return kiln::cli::kExitUsage;
  }
  return 0;
}
