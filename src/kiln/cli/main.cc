// The `kiln` binary: one subcommand per step of the loop (see `kiln --help`).
#include <cstdio>

#include "kiln/cli/command.h"

int main(int argc, char** argv) {
  CLI::App app{
      "kiln: data validation, training and serving for production ML, in one binary.\n"
      "Run `kiln COMMAND --help` for a command's flags and examples."};
  app.name("kiln");
  app.require_subcommand(1);
  app.set_version_flag("--version", "kiln 0.1.0");
  kiln::cli::AddImportCommand(app);
  kiln::cli::AddStatsCommand(app);
  kiln::cli::AddSchemaCommand(app);
  kiln::cli::AddValidateCommand(app);
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
