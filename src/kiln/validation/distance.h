// Distances between two distributions of one feature, as TFDV's drift and skew
// comparators measure them: L-infinity between categorical value frequencies, and the
// Jensen-Shannon divergence between histograms (rebucketed onto common boundaries) or
// between value frequencies. Pure functions; thread-safe.
//
// Logarithms are base 2, as in TFDV, so the divergence lies in [0, 1].
#ifndef KILN_VALIDATION_DISTANCE_H_
#define KILN_VALIDATION_DISTANCE_H_

#include <map>
#include <string>
#include <vector>

#include "kiln/base/status.h"
#include "tensorflow_metadata/proto/v0/statistics.pb.h"

namespace kiln::validation {

// Value → count (or frequency). Counts need not be normalized.
using ValueDistribution = std::map<std::string, double>;

struct LInfinityResult {
  double distance = 0;
  std::string value;  // a value where the largest difference occurs ("" when none)
};

// max over values v of |a(v)/sum(a) - b(v)/sum(b)|, a value absent on one side counting 0
// there. An empty side contributes 0 everywhere. Ties go to the last value in sorted
// order, as in TFDV.
LInfinityResult LInfinityDistance(const ValueDistribution& a, const ValueDistribution& b);

// Two discrete distributions over the same buckets, each summing to 1.
struct AlignedDistributions {
  std::vector<double> p;
  std::vector<double> q;
};

// Aligns value frequencies: one bucket per value seen on either side.
// Errors: kInvalidArgument when either side has no positive count.
absl::StatusOr<AlignedDistributions> AlignValues(const ValueDistribution& a,
                                                 const ValueDistribution& b);

// Aligns two histograms the way TFDV does before its divergence:
//  - finite buckets of both are cut at the union of all their boundaries, each bucket's
//    count spread uniformly over its width;
//  - zero-width buckets (low == high) become one point bucket per distinct value;
//  - mass in buckets with an infinite bound is kept in a "-inf" and a "+inf" bucket, and
//    the NaN counts (num_nan) in a "NaN" bucket, present when either side has any.
// (TFDV places the infinite and NaN masses of the two sides in different buckets, which
// makes identical data look divergent; kiln lines them up.)
// Errors: kInvalidArgument when either side has no mass at all.
absl::StatusOr<AlignedDistributions> AlignHistograms(const tensorflow::metadata::v0::Histogram& a,
                                                     const tensorflow::metadata::v0::Histogram& b);

// JSD(P, Q) = (KL(P || M) + KL(Q || M)) / 2 with M = (P + Q) / 2, in bits, capped at 1.
double JensenShannon(const AlignedDistributions& d);

// KL(P || Q) in bits, with every bucket of both sides given an extra 1e-6 of probability
// (then renormalized) so that a bucket empty on one side gives a large, finite value.
double KullbackLeibler(const AlignedDistributions& d);

// Convenience: align, then JensenShannon.
absl::StatusOr<double> JensenShannonDivergence(const tensorflow::metadata::v0::Histogram& a,
                                               const tensorflow::metadata::v0::Histogram& b);
absl::StatusOr<double> JensenShannonDivergence(const ValueDistribution& a,
                                               const ValueDistribution& b);

}  // namespace kiln::validation

#endif  // KILN_VALIDATION_DISTANCE_H_
