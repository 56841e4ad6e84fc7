// Opening a metadata store from the --metadata flag's URL.
//
//   sqlite:PATH  or  sqlite://PATH   an SQLite file (created when missing)
//   PATH                             the same, for a plain file path
//   postgresql://user@host:port/db   PostgreSQL (also postgres://)
//   (empty)                          $KILN_HOME/metadata.sqlite, KILN_HOME defaulting
//                                    to ~/.kiln
#ifndef KILN_METADATA_OPEN_STORE_H_
#define KILN_METADATA_OPEN_STORE_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "kiln/metadata/metadata_store.h"

namespace kiln::metadata {

// The SQLite path used when no URL is given.
std::string DefaultStorePath();

// Errors: kInvalidArgument for an unknown scheme; kNotFound for a missing SQLite file
// with options.must_exist; and those of MetadataStore::Create.
absl::StatusOr<std::unique_ptr<MetadataStore>> OpenStore(const std::string& url,
                                                         StoreOptions options = {});

}  // namespace kiln::metadata

#endif  // KILN_METADATA_OPEN_STORE_H_
