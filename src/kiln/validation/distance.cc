#include "kiln/validation/distance.h"

#include <algorithm>
#include <cmath>
#include <set>

namespace kiln::validation {
namespace {

using tensorflow::metadata::v0::Histogram;

constexpr double kKlSmoothing = 1e-6;

double Sum(const ValueDistribution& d) {
  double s = 0;
  for (const auto& [v, c] : d) s += c;
  return s;
}

// A histogram split into the parts that are aligned differently.
struct Parts {
  struct Interval {
    double low, high, count;
  };
  std::vector<Interval> intervals;  // finite, low < high
  std::map<double, double> points;  // finite, low == high
  double neg_inf = 0, pos_inf = 0, nan = 0;
};

Parts Split(const Histogram& h) {
  Parts p;
  p.nan = static_cast<double>(h.num_nan());
  for (const auto& b : h.buckets()) {
    double lo = b.low_value(), hi = b.high_value(), n = b.sample_count();
    if (n <= 0) continue;
    if (std::isnan(lo) || std::isnan(hi)) {
      p.nan += n;
    } else if (std::isinf(lo) && lo < 0) {
      p.neg_inf += n;
    } else if (std::isinf(hi) || std::isinf(lo)) {
      p.pos_inf += n;
    } else if (lo == hi) {
      p.points[lo] += n;
    } else {
      p.intervals.push_back({std::min(lo, hi), std::max(lo, hi), n});
    }
  }
  return p;
}

// Spreads each interval's count uniformly over the cells of `bounds` it overlaps.
std::vector<double> Rebucket(const std::vector<Parts::Interval>& intervals,
                             const std::vector<double>& bounds) {
  std::vector<double> cells(bounds.empty() ? 0 : bounds.size() - 1, 0.0);
  for (const auto& iv : intervals) {
    double width = iv.high - iv.low;
    auto first = std::upper_bound(bounds.begin(), bounds.end(), iv.low);
    size_t i = first == bounds.begin() ? 0 : static_cast<size_t>(first - bounds.begin()) - 1;
    for (; i < cells.size() && bounds[i] < iv.high; ++i) {
      double overlap = std::min(bounds[i + 1], iv.high) - std::max(bounds[i], iv.low);
      if (overlap > 0) cells[i] += iv.count * overlap / width;
    }
  }
  return cells;
}

absl::Status Normalize(std::vector<double>* v, const char* side) {
  double total = 0;
  for (double x : *v) total += x;
  if (!(total > 0)) {
    return absl::InvalidArgumentError(std::string("the ") + side + " distribution is empty");
  }
  for (double& x : *v) x /= total;
  return absl::OkStatus();
}

}  // namespace

LInfinityResult LInfinityDistance(const ValueDistribution& a, const ValueDistribution& b) {
  double sa = Sum(a), sb = Sum(b);
  std::set<std::string> keys;
  for (const auto& [v, c] : a) keys.insert(v);
  for (const auto& [v, c] : b) keys.insert(v);
  LInfinityResult best;
  for (const std::string& key : keys) {
    auto ia = a.find(key), ib = b.find(key);
    double pa = (ia != a.end() && sa > 0) ? ia->second / sa : 0;
    double pb = (ib != b.end() && sb > 0) ? ib->second / sb : 0;
    double diff = std::abs(pa - pb);
    if (diff >= best.distance) best = {diff, key};
  }
  return best;
}

absl::StatusOr<AlignedDistributions> AlignValues(const ValueDistribution& a,
                                                 const ValueDistribution& b) {
  std::set<std::string> keys;
  for (const auto& [v, c] : a) keys.insert(v);
  for (const auto& [v, c] : b) keys.insert(v);
  AlignedDistributions d;
  for (const std::string& key : keys) {
    auto ia = a.find(key), ib = b.find(key);
    d.p.push_back(ia == a.end() ? 0 : std::max(0.0, ia->second));
    d.q.push_back(ib == b.end() ? 0 : std::max(0.0, ib->second));
  }
  KILN_RETURN_IF_ERROR(Normalize(&d.p, "first"));
  KILN_RETURN_IF_ERROR(Normalize(&d.q, "second"));
  return d;
}

absl::StatusOr<AlignedDistributions> AlignHistograms(const Histogram& a, const Histogram& b) {
  Parts pa = Split(a), pb = Split(b);
  std::set<double> bound_set;
  for (const Parts* p : {&pa, &pb}) {
    for (const auto& iv : p->intervals) {
      bound_set.insert(iv.low);
      bound_set.insert(iv.high);
    }
  }
  std::vector<double> bounds(bound_set.begin(), bound_set.end());
  AlignedDistributions d;
  d.p = Rebucket(pa.intervals, bounds);
  d.q = Rebucket(pb.intervals, bounds);

  std::set<double> points;
  for (const auto& [v, n] : pa.points) points.insert(v);
  for (const auto& [v, n] : pb.points) points.insert(v);
  for (double v : points) {
    d.p.push_back(pa.points.count(v) ? pa.points[v] : 0);
    d.q.push_back(pb.points.count(v) ? pb.points[v] : 0);
  }
  auto add_if_any = [&d](double x, double y) {
    if (x > 0 || y > 0) {
      d.p.push_back(x);
      d.q.push_back(y);
    }
  };
  add_if_any(pa.neg_inf, pb.neg_inf);
  add_if_any(pa.pos_inf, pb.pos_inf);
  add_if_any(pa.nan, pb.nan);
  KILN_RETURN_IF_ERROR(Normalize(&d.p, "first"));
  KILN_RETURN_IF_ERROR(Normalize(&d.q, "second"));
  return d;
}

double JensenShannon(const AlignedDistributions& d) {
  double sum = 0;
  for (size_t i = 0; i < d.p.size(); ++i) {
    double p = d.p[i], q = d.q[i], m = (p + q) / 2;
    if (p > 0) sum += p * std::log2(p / m);
    if (q > 0) sum += q * std::log2(q / m);
  }
  // Rounding can push a disjoint pair a hair above 1.
  return std::min(std::max(sum / 2, 0.0), 1.0);
}

double KullbackLeibler(const AlignedDistributions& d) {
  double n = static_cast<double>(d.p.size());
  double norm = 1 + n * kKlSmoothing;
  double sum = 0;
  for (size_t i = 0; i < d.p.size(); ++i) {
    double p = (d.p[i] + kKlSmoothing) / norm, q = (d.q[i] + kKlSmoothing) / norm;
    sum += p * std::log2(p / q);
  }
  return std::max(sum, 0.0);
}

absl::StatusOr<double> JensenShannonDivergence(const Histogram& a, const Histogram& b) {
  KILN_ASSIGN_OR_RETURN(AlignedDistributions d, AlignHistograms(a, b));
  return JensenShannon(d);
}

absl::StatusOr<double> JensenShannonDivergence(const ValueDistribution& a,
                                               const ValueDistribution& b) {
  KILN_ASSIGN_OR_RETURN(AlignedDistributions d, AlignValues(a, b));
  return JensenShannon(d);
}

}  // namespace kiln::validation
