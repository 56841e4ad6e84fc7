// simdjson's header, without the warnings GCC 12 gives on it (it misreads simdjson's
// result types as dangling; clang has no such warning). Include this, not "simdjson.h".
#ifndef KILN_DATA_SIMDJSON_QUIET_H_
#define KILN_DATA_SIMDJSON_QUIET_H_

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdangling-pointer"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <simdjson.h>
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

#endif  // KILN_DATA_SIMDJSON_QUIET_H_
