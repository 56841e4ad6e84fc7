// Human-readable differences between two tensorflow.metadata Schemas, for `kiln schema
// diff` and for reviewing a re-inferred schema. Pure function; thread-safe.
#ifndef KILN_VALIDATION_SCHEMA_DIFF_H_
#define KILN_VALIDATION_SCHEMA_DIFF_H_

#include <string>
#include <vector>

#include "tensorflow_metadata/proto/v0/schema.pb.h"

namespace kiln::validation {

// Lists how `b` differs from `a`, one line per difference; empty when they are
// equivalent. Features are matched by name, so reordering them is no difference, and
// the order of string domain values is ignored. Lines look like
//   feature 'age' added (INT)
//   feature 'zip' removed
//   feature 'age': type: INT -> FLOAT
//   feature 'age': presence.min_fraction: 1 -> (unset)
//   feature 'city': domain values added: "Oslo", "Rome"
//   feature 'city': domain values removed: "Paris"
//   dataset_constraints.min_examples_count: (unset) -> 100
// A domain's values are compared whether the feature lists them inline or names a
// schema-level string_domain.
std::vector<std::string> SchemaDiff(const tensorflow::metadata::v0::Schema& a,
                                    const tensorflow::metadata::v0::Schema& b);

}  // namespace kiln::validation

#endif  // KILN_VALIDATION_SCHEMA_DIFF_H_
