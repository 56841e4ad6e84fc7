// Resolving what the user named (a file, a glob, a span directory, an imported dataset)
// into files of one format, and opening them as a BlockSource. Mirrors TFX ExampleGen's
// input conventions: `data/span-{SPAN}/*.csv` picks the newest span unless one is named.
#ifndef KILN_DATA_INPUT_H_
#define KILN_DATA_INPUT_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "kiln/base/env.h"
#include "kiln/base/status.h"
#include "kiln/data/source.h"

namespace kiln::data {

enum class Format { kCsv, kJsonl, kTfRecord, kDataset };
std::string_view FormatName(Format f);

struct InputSet {
  Format format = Format::kCsv;
  std::vector<std::string> files;  // sorted; for kDataset, the dataset directory
  std::optional<int64_t> span;     // the span picked, when the input had spans
  std::string split;               // for kDataset: the split to read ("" = all)
};

struct ResolveOptions {
  std::optional<int64_t> span;   // pick this span instead of the newest
  std::optional<Format> format;  // override detection by extension
  std::string split;             // dataset artifacts: read only this split
};

// Resolves `spec`:
//  - a file: its format from the extension (.csv .tsv .txt, .jsonl .ndjson .json,
//    .tfrecord .tfrecords .tfr, optionally + .gz), or the override;
//  - a glob (`*`, `?`, `[...]` in the last path components);
//  - a pattern with `{SPAN}`: every matching span, the newest (or the named one) used;
//  - a directory holding `span-N` subdirectories: as `DIR/span-{SPAN}`;
//  - a directory holding a kiln dataset (manifest.json): format kDataset;
//  - any other directory: its data files (all of one format).
// Errors: kNotFound when nothing matches (naming the pattern); kInvalidArgument for
// mixed formats or an unknown extension.
absl::StatusOr<InputSet> ResolveInput(Env* env, const std::string& spec,
                                      const ResolveOptions& options = {});

// Opens the resolved files as one source (files read in order).
absl::StatusOr<std::unique_ptr<BlockSource>> OpenSource(Env* env, const InputSet& input,
                                                        const ReadOptions& options);

// Reads the whole input once to find each column's type (the widest seen: INT, then
// FLOAT, then STRING), in first-seen column order. Honors options.type_overrides.
absl::StatusOr<TableSchema> InferTableSchema(Env* env, const InputSet& input,
                                             const ReadOptions& options, BadRowSink* bad,
                                             Progress* progress = nullptr);

}  // namespace kiln::data

#endif  // KILN_DATA_INPUT_H_
