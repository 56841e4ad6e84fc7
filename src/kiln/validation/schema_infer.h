// Schema inference (SchemaGen): a first tensorflow.metadata Schema derived from the
// statistics of one dataset, following tfdv.infer_schema's rules so that the result reads
// like TFDV's. Pure function; thread-safe.
#ifndef KILN_VALIDATION_SCHEMA_INFER_H_
#define KILN_VALIDATION_SCHEMA_INFER_H_

#include "kiln/base/status.h"
#include "tensorflow_metadata/proto/v0/schema.pb.h"
#include "tensorflow_metadata/proto/v0/statistics.pb.h"

namespace kiln::validation {

struct InferSchemaOptions {
  // A STRING feature with at least one and at most this many distinct values gets a
  // string domain listing them (sorted). Default 100, tfdv.infer_schema's
  // max_string_domain_size.
  int max_string_domain_size = 100;
  // Record the observed min and max as int_domain / float_domain (float bounds are the
  // observed values rounded to float, as TFDV compares them). Default false: TFDV never
  // infers ranges.
  bool infer_ranges = false;
  // For a feature present in every example with exactly N values each, write
  // `shape { dim { size: N } }` instead of `value_count { min: N max: N }` (TFDV's
  // infer_feature_shape=True). Default false.
  bool infer_feature_shape = false;
};

// Infers a schema from `stats`. Per feature, in the statistics' order:
//  - type: INT → INT, FLOAT → FLOAT, STRING/BYTES → BYTES;
//  - presence: min_count 1 when present at all (else 0); min_fraction 1.0 when never
//    missing;
//  - value_count (only when every present example has at least one value): min = max = N
//    when every example has exactly N values, else min 1;
//  - string domain: a schema-level `string_domain` named after the feature (a numeric
//    suffix on a name clash) referenced by `domain: "name"`, for STRING features whose
//    complete value list is known and small enough (see options);
//  - int_domain / float_domain bounds with options.infer_ranges.
// Errors: kInvalidArgument when two features share a name.
absl::StatusOr<tensorflow::metadata::v0::Schema> InferSchema(
    const tensorflow::metadata::v0::DatasetFeatureStatistics& stats,
    const InferSchemaOptions& options = {});

}  // namespace kiln::validation

#endif  // KILN_VALIDATION_SCHEMA_INFER_H_
