#include "kiln/cli/command.h"

#include <cstdio>
#include <string>

namespace kiln::cli {

int ReportError(std::string_view command, const absl::Status& status) {
  std::string msg(status.message());
  std::fprintf(stderr, "kiln %.*s: error: %s\n", static_cast<int>(command.size()), command.data(),
               msg.c_str());
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kNotFound:
    case absl::StatusCode::kDataLoss:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kOutOfRange:
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kPermissionDenied:
      return kExitUsage;
    default:
      return kExitFailure;
  }
}

void Exit(int code) {
  if (code != 0) throw CLI::RuntimeError(code);
}

}  // namespace kiln::cli
