#include "kiln/validation/schema_infer.h"

#include <cmath>
#include <limits>
#include <set>
#include <string>

#include "absl/strings/str_cat.h"
#include "kiln/validation/stats_view.h"

namespace kiln::validation {
namespace {

// TFDV's statistics generator writes this in place of values that are not valid UTF-8;
// such features get no domain.
constexpr std::string_view kInvalidUtf8Marker = "__BYTES_VALUE__";

// A domain name not yet used in `schema`: `base`, else base2, base3, ...
std::string FreshDomainName(const tfmd::Schema& schema, const std::string& base) {
  std::set<std::string> used;
  for (const auto& d : schema.string_domain()) used.insert(d.name());
  std::string name = base;
  for (int i = 2; used.count(name) > 0; ++i) name = absl::StrCat(base, i);
  return name;
}

void InferPresenceAndShape(const tfmd::FeatureNameStatistics& stats,
                           const InferSchemaOptions& options, tfmd::Feature* feature) {
  const tfmd::CommonStatistics& c = Common(stats);
  feature->mutable_presence()->set_min_count(c.num_non_missing() >= 1 ? 1 : 0);
  if (c.num_non_missing() == 0) return;
  if (c.num_missing() == 0) feature->mutable_presence()->set_min_fraction(1.0);
  // An example present with zero values allows no lower bound at all.
  if (c.min_num_values() == 0) return;
  if (options.infer_feature_shape && c.num_missing() == 0 &&
      c.min_num_values() == c.max_num_values()) {
    feature->mutable_shape()->add_dim()->set_size(static_cast<int64_t>(c.min_num_values()));
    return;
  }
  tfmd::ValueCount* vc = feature->mutable_value_count();
  if (c.min_num_values() == c.max_num_values()) {
    vc->set_min(static_cast<int64_t>(c.min_num_values()));
    vc->set_max(static_cast<int64_t>(c.max_num_values()));
  } else {
    vc->set_min(1);
  }
}

void InferStringDomain(const tfmd::FeatureNameStatistics& stats, const std::string& name,
                       const InferSchemaOptions& options, tfmd::Schema* schema,
                       tfmd::Feature* feature) {
  if (stats.type() != tfmd::FeatureNameStatistics::STRING) return;
  std::optional<ValueCounts> values = GetValueCounts(stats);
  if (!values || !values->complete || values->counts.empty()) return;
  if (static_cast<int64_t>(values->counts.size()) > options.max_string_domain_size) return;
  if (values->counts.count(std::string(kInvalidUtf8Marker)) > 0) return;
  std::string domain_name = FreshDomainName(*schema, name);
  tfmd::StringDomain* domain = schema->add_string_domain();
  domain->set_name(domain_name);
  for (const auto& [value, count] : values->counts) domain->add_value(value);  // map: sorted
  feature->set_domain(domain_name);
}

void InferRange(const tfmd::FeatureNameStatistics& stats, tfmd::Feature* feature) {
  if (!stats.has_num_stats() || Common(stats).num_non_missing() == 0) return;
  const tfmd::NumericStatistics& n = stats.num_stats();
  if (!std::isfinite(n.min()) || !std::isfinite(n.max())) return;
  if (stats.type() == tfmd::FeatureNameStatistics::INT) {
    tfmd::IntDomain* d = feature->mutable_int_domain();
    d->set_min(static_cast<int64_t>(std::floor(n.min())));
    d->set_max(static_cast<int64_t>(std::ceil(n.max())));
  } else if (stats.type() == tfmd::FeatureNameStatistics::FLOAT) {
    // Validation compares the observed range cast to float with the float bounds (as
    // TFDV does), so the cast values are exactly the tightest bounds that accept this data.
    tfmd::FloatDomain* d = feature->mutable_float_domain();
    d->set_min(static_cast<float>(n.min()));
    d->set_max(static_cast<float>(n.max()));
  }
}

}  // namespace

absl::StatusOr<tfmd::Schema> InferSchema(const tfmd::DatasetFeatureStatistics& stats,
                                         const InferSchemaOptions& options) {
  tfmd::Schema schema;
  std::set<std::string> seen;
  for (const auto& fs : stats.features()) {
    if (HasNoStats(fs)) continue;
    std::string name = FeatureName(fs);
    if (!seen.insert(name).second) {
      return absl::InvalidArgumentError(absl::StrCat("statistics list feature '", name, "' twice"));
    }
    tfmd::Feature* feature = schema.add_feature();
    feature->set_name(name);
    feature->set_type(SchemaTypeOf(fs.type()));
    InferPresenceAndShape(fs, options, feature);
    InferStringDomain(fs, name, options, &schema, feature);
    if (options.infer_ranges) InferRange(fs, feature);
  }
  return schema;
}

}  // namespace kiln::validation
