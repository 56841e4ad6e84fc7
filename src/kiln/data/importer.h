// `kiln import` as a library call (TFX ExampleGen): reads an input of any format, fixes the
// column types, assigns every row to a split by hash and writes a dataset directory
// (dataset.h) with one .kds file per split and a manifest.json. Re-running on the same input
// with the same options yields byte-identical files and the same fingerprints.
//
// Atomicity: every file is written to a temporary name and renamed; the manifest is written
// last, so a crashed import leaves a directory without a manifest, which no reader takes
// for a dataset. Thread safety: ImportDataset may run concurrently for different out dirs.
#ifndef KILN_DATA_IMPORTER_H_
#define KILN_DATA_IMPORTER_H_

#include <optional>
#include <string>
#include <vector>

#include "kiln/base/env.h"
#include "kiln/base/status.h"
#include "kiln/data/dataset.h"
#include "kiln/data/input.h"
#include "kiln/data/source.h"
#include "kiln/data/split.h"

namespace kiln::data {

struct ImportOptions {
  // Told of the bytes read by both passes (type inference, then the import); may be null.
  Progress* progress = nullptr;
  // The dataset directory to write (created if needed). Required.
  std::string out_dir;
  // How to read the input (delimiter, null tokens, type overrides, bad-row policy).
  ReadOptions read;
  // Splits and their weights; default train:2,eval:1 by whole-row hash.
  SplitConfig splits;
  // Recorded in the manifest; default: the span the input resolved to, if any.
  std::optional<int64_t> span;
  // Chunking and compression of the written files.
  DatasetWriterOptions writer;
  // Replace a dataset already at out_dir (default false: kAlreadyExists). The old manifest
  // is deleted first, so readers see the old dataset or none, then the new one.
  bool overwrite = false;
};

struct ImportResult {
  DatasetManifest manifest;      // as written to out_dir/manifest.json
  std::vector<BadRow> bad_rows;  // the first few rows skipped or quarantined
};

// Imports `input` into options.out_dir. Steps: infer the table schema (unless the source
// knows it), reopen the input with those types fixed, stream the rows into one
// DatasetWriter per split (memory: about one chunk per split plus one batch), then write
// the manifest.
//
// Errors: kInvalidArgument for bad options (no out_dir, bad splits, a partition feature
// that is not a column, importing a dataset onto itself); kAlreadyExists when out_dir holds
// a dataset and !overwrite; the first bad row under BadRowPolicy::kError; read and write
// errors of the input and the Env.
absl::StatusOr<ImportResult> ImportDataset(Env* env, const InputSet& input,
                                           const ImportOptions& options);

// ReadManifest(env, dir) (declared in dataset.h) reads what ImportDataset wrote.

}  // namespace kiln::data

#endif  // KILN_DATA_IMPORTER_H_
