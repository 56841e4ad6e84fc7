// The `kiln` binary: one subcommand per step of the loop (see `kiln --help`).
#include <cstdio>
#include <string>
#include <vector>

#include "kiln/base/build_info.h"
#include "kiln/base/str.h"
#include "kiln/cli/command.h"

int main(int argc, char** argv) {
  CLI::App app{
      "kiln: the life of a production model, from raw data to a served model, in one "
      "binary.\nData validation in TFX and TFDV formats, transforms and training, "
      "evaluation per slice, serving compatible with TF Serving and KServe, pipelines that "
      "cache, gate, hold and alert, a scheduler and a dashboard. Every step records what it "
      "read, with which parameters, and what it wrote (ML Metadata), so any artifact's "
      "lineage can be traced and two models diffed."};
  app.footer(
      "Typical loop:\n"
      "  kiln import data/span-{SPAN}/*.csv --out ds/          # ExampleGen\n"
      "  kiln stats ds/ --out stats/                           # StatisticsGen\n"
      "  kiln schema infer --stats stats/ --split train --out schema.pbtxt   # SchemaGen\n"
      "  kiln validate new.csv --schema schema.pbtxt --previous stats/ --previous-split "
      "train --drift-threshold 0.1 --out checks/   # ExampleValidator\n"
      "  kiln transform --config train.yaml --data ds/ --out tf/   # Transform\n"
      "  kiln train --config train.yaml --data ds/ --transform tf/ --out m/1   # Trainer\n"
      "  kiln evaluate --model m/2 --baseline m/1 --data ds/ --split eval --config eval.yaml "
      "--out ev/   # Evaluator\n"
      "  kiln push --model m/2 --blessing ev/blessing.json --to /srv/models/clicks   # Pusher\n"
      "  kiln serve --model_name clicks --model_base_path /srv/models/clicks   # TF Serving\n"
      "  kiln run pipeline.yaml                                 # every step, cached\n"
      "  kiln approve RUN --pipeline pipeline.yaml              # push a run held for drift\n"
      "  kiln schedule pipeline.yaml                            # run it on cron / new spans\n"
      "  kiln ui                                                # the dashboard\n"
      "  kiln meta ls artifacts --type ExampleStatistics        # what was recorded\n"
      "  kiln lineage 7                                         # what made artifact 7\n\n"
      "Records go to $KILN_HOME/metadata.sqlite (KILN_HOME defaults to ~/.kiln) or to "
      "--metadata sqlite:PATH | postgresql://USER@HOST:PORT/DB.\n\n"
      "Run `kiln COMMAND --help` for a command's flags and examples.");
  app.name("kiln");
  app.require_subcommand(1);
  app.set_version_flag("--version",
                       kiln::StrCat("kiln ", kiln::KilnVersion(), " (", kiln::GitSha(), ")"));
  kiln::cli::AddImportCommand(app);
  kiln::cli::AddStatsCommand(app);
  kiln::cli::AddSchemaCommand(app);
  kiln::cli::AddValidateCommand(app);
  kiln::cli::AddTransformCommand(app);
  kiln::cli::AddTrainCommand(app);
  kiln::cli::AddPredictCommand(app);
  kiln::cli::AddEvaluateCommand(app);
  kiln::cli::AddImportModelCommand(app);
  kiln::cli::AddMetaCommand(app);
  kiln::cli::AddLineageCommand(app);
  kiln::cli::AddServeCommand(app);
  kiln::cli::AddInfraValidateCommand(app);
  kiln::cli::AddPushCommand(app);
  kiln::cli::AddRunCommand(app);
  kiln::cli::AddScheduleCommand(app);
  kiln::cli::AddApproveCommand(app);
  kiln::cli::AddUiCommand(app);
  // Name an unknown command or subcommand (`kiln meta foo`) instead of CLI11's generic
  // complaint.
  CLI::App* parent = &app;
  std::string path = "kiln";
  for (int i = 1; i < argc && argv[i][0] != '-'; ++i) {
    std::vector<CLI::App*> subs = parent->get_subcommands({});
    if (subs.empty()) break;
    CLI::App* match = nullptr;
    std::string names;
    for (CLI::App* sub : subs) {
      if (sub->get_name() == argv[i]) match = sub;
      names += (names.empty() ? "" : ", ") + sub->get_name();
    }
    if (!match) {
      std::fprintf(stderr, "%s: unknown command '%s'; commands: %s (see %s --help)\n", path.c_str(),
                   argv[i], names.c_str(), path.c_str());
      return kiln::cli::kExitUsage;
    }
    path = kiln::StrCat(path, " ", argv[i]);
    parent = match;
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
