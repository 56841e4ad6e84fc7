// JSON Lines as a BlockSource: one JSON object per line; scalars become single values
// (true/false as INT 1/0), arrays of scalars become list-valued features, null or an
// absent key is missing. A line that is not an object of scalars and arrays is a bad row.
// Within a block a feature seen with mixed number kinds is FLOAT; numbers mixed with
// strings make it STRING. Thread-safety as BlockSource.
#ifndef KILN_DATA_JSONL_H_
#define KILN_DATA_JSONL_H_

#include <memory>
#include <string>
#include <vector>

#include "kiln/base/env.h"
#include "kiln/data/source.h"

namespace kiln::data {

absl::StatusOr<std::unique_ptr<BlockSource>> OpenJsonlSource(Env* env,
                                                             std::vector<std::string> files,
                                                             const ReadOptions& options);

// Converts `col` in place to the wider type `to` (INT -> FLOAT, numbers -> STRING).
void WidenColumn(Column* col, ValueType to);

}  // namespace kiln::data

#endif  // KILN_DATA_JSONL_H_
