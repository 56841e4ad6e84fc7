// Status helpers. kiln uses absl::Status / absl::StatusOr everywhere inside; exceptions
// from third-party libraries are caught at their edge and turned into a Status here.
//
// Codes are chosen by what the caller should do: kInvalidArgument (bad input, do not
// retry), kNotFound, kFailedPrecondition (fix state first), kDataLoss (corrupt bytes),
// kUnavailable (retry may succeed), kInternal (a kiln bug).
#ifndef KILN_BASE_STATUS_H_
#define KILN_BASE_STATUS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define KILN_STATUS_CONCAT_INNER_(a, b) a##b
#define KILN_STATUS_CONCAT_(a, b) KILN_STATUS_CONCAT_INNER_(a, b)

// Returns from the current function when `expr` yields a non-OK Status.
#define KILN_RETURN_IF_ERROR(expr)               \
  do {                                           \
    ::absl::Status kiln_status_ = (expr);        \
    if (!kiln_status_.ok()) return kiln_status_; \
  } while (0)

// `lhs = value of expr` or returns its error. `lhs` may declare a variable.
#define KILN_ASSIGN_OR_RETURN(lhs, expr) \
  KILN_ASSIGN_OR_RETURN_IMPL_(KILN_STATUS_CONCAT_(kiln_statusor_, __LINE__), lhs, expr)
#define KILN_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                \
  if (!tmp.ok()) return std::move(tmp).status();    \
  lhs = std::move(tmp).value()

#endif  // KILN_BASE_STATUS_H_
