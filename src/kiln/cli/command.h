// Shared plumbing for `kiln` subcommands. Each subcommand lives in its own file and
// exposes one Add<Name>Command(CLI::App& root) that declares its flags and sets the
// callback; main.cc lists them. A callback finishes by calling Exit(code): non-zero
// codes unwind through CLI11 and become the process exit status.
#ifndef KILN_CLI_COMMAND_H_
#define KILN_CLI_COMMAND_H_

#include <string_view>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"

namespace kiln::cli {

// Exit codes, the same for every subcommand (documented in each --help).
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;   // kiln itself failed (a bug, an I/O error)
inline constexpr int kExitUsage = 2;     // bad flags or bad input data
inline constexpr int kExitFindings = 3;  // ran fine and found problems (e.g. anomalies)

// Text appended to every subcommand's --help.
inline constexpr const char* kExitCodesHelp =
    "Exit codes: 0 success, 1 internal or I/O failure, 2 usage or input error";

// Prints "kiln CMD: error: MESSAGE" on stderr and returns the exit code for `status`:
// kExitUsage for errors in what the user gave (bad argument, missing or corrupt input),
// kExitFailure otherwise.
int ReportError(std::string_view command, const absl::Status& status);

// Ends the running subcommand with `code` (no-op for 0).
void Exit(int code);

void AddStatsCommand(CLI::App& root);
void AddImportCommand(CLI::App& root);
void AddSchemaCommand(CLI::App& root);
void AddValidateCommand(CLI::App& root);
void AddTransformCommand(CLI::App& root);
void AddTrainCommand(CLI::App& root);
void AddPredictCommand(CLI::App& root);
void AddImportModelCommand(CLI::App& root);
void AddMetaCommand(CLI::App& root);
void AddLineageCommand(CLI::App& root);
void AddServeCommand(CLI::App& root);
void AddEvaluateCommand(CLI::App& root);
void AddInfraValidateCommand(CLI::App& root);
void AddPushCommand(CLI::App& root);
void AddRunCommand(CLI::App& root);
void AddScheduleCommand(CLI::App& root);
void AddApproveCommand(CLI::App& root);
void AddUiCommand(CLI::App& root);

}  // namespace kiln::cli

#endif  // KILN_CLI_COMMAND_H_
