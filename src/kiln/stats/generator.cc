#include "kiln/stats/generator.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <optional>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_format.h"
#include "google/protobuf/util/json_util.h"
#include "kiln/base/hash.h"
#include "kiln/base/str.h"
#include "kiln/base/utf8.h"
#include "kiln/data/csv.h"
#include "kiln/stats/hll.h"
#include "kiln/stats/kll.h"
#include "kiln/stats/string_counter.h"

namespace kiln::stats {

namespace tfmd = ::tensorflow::metadata::v0;
using data::Batch;
using data::Column;
using data::ValueType;

namespace {

// Running moments merged with Chan et al.'s parallel formula; each batch's own moments
// are computed in two passes, which keeps std_dev accurate for large means.
struct Moments {
  uint64_t n = 0;
  double mean = 0;
  double m2 = 0;
  void Merge(uint64_t bn, double bmean, double bm2) {
    if (bn == 0) return;
    if (n == 0) {
      n = bn;
      mean = bmean;
      m2 = bm2;
      return;
    }
    double delta = bmean - mean;
    uint64_t total = n + bn;
    mean += delta * static_cast<double>(bn) / static_cast<double>(total);
    m2 += bm2 + delta * delta * static_cast<double>(n) * static_cast<double>(bn) /
                    static_cast<double>(total);
    n = total;
  }
};

// Whether `v` starts with "inf" or "nan" in any case.
bool LooksLikeInfOrNan(std::string_view v) {
  if (v.size() < 3) return false;
  char low[3];
  for (int i = 0; i < 3; ++i) low[i] = static_cast<char>(v[i] | 0x20);
  return std::string_view(low, 3) == "inf" || std::string_view(low, 3) == "nan";
}

struct FeatureAcc {
  explicit FeatureAcc(const StatsOptions& o)
      : num_values(o.kll_k),
        kll(o.kll_k),
        int_counts_cap(o.value_counts_cap),
        strings(CounterOptions(o)) {}
  static StringCounterOptions CounterOptions(const StatsOptions& o) {
    StringCounterOptions c;
    c.exact_cap = o.max_exact_unique;
    // Long distinct values (free text, ids) switch to the sketch early, so memory stays
    // bounded per feature (and per thread) whatever the data.
    c.exact_byte_cap = size_t{16} << 20;
    return c;
  }
  std::string name;
  ValueType type = ValueType::kInt;
  uint64_t first_block = UINT64_MAX;
  size_t first_position = 0;
  bool numeric_blocks = false;  // some block was accumulated as numbers
  bool string_blocks = false;   // some block was accumulated as strings

  // Common.
  uint64_t num_non_missing = 0, tot_num_values = 0;
  uint64_t min_num_values = UINT64_MAX, max_num_values = 0;
  bool all_single = true;  // every present row had exactly one value
  KllSketch num_values;    // only fed when some row has a value count other than 1

  // Numeric.
  // Moments of (value - shift) over non-NaN values, where shift is the first finite value
  // seen: subtracting a typical value first keeps std_dev accurate when the mean is large
  // compared with the spread (e.g. timestamps). Infinities make mean/std inf or NaN.
  Moments moments;
  double shift = 0;
  bool has_shift = false;
  uint64_t num_nan = 0, num_pos_inf = 0, num_neg_inf = 0, num_zeros = 0;
  double min = std::numeric_limits<double>::infinity();
  double max = -std::numeric_limits<double>::infinity();
  KllSketch kll;  // finite values

  // INT value counts while there are few distinct values (categorical ints: L-infinity
  // drift and domain checks need them); dropped once value_counts_cap is exceeded.
  absl::flat_hash_map<int64_t, uint64_t> int_counts;
  bool int_counts_overflow = false;
  size_t int_counts_cap = 0;

  // String.
  StringCounter strings;
  uint64_t non_int = 0, non_float = 0, invalid_utf8 = 0;

  void Note(uint64_t block, size_t position) {
    if (std::tie(block, position) < std::tie(first_block, first_position)) {
      first_block = block;
      first_position = position;
    }
  }

  void AddCommon(const Column& col) {
    const size_t rows = col.num_rows();
    // The common case (one value in every present row, none in a missing one) is settled
    // by one branch-free pass over the offsets instead of the per-row bookkeeping below
    // (about 5% of a CSV stats run).
    if (rows > 0 && all_single) {
      const uint32_t* offsets = col.offsets.data();
      const uint8_t* present = col.present.data();
      uint32_t mismatches = 0;
      uint64_t num_present = 0;
      for (size_t r = 0; r < rows; ++r) {
        const uint32_t here = present[r] != 0;
        mismatches |= (offsets[r + 1] - offsets[r]) ^ here;
        num_present += here;
      }
      if (mismatches == 0) {
        if (num_present > 0) {
          num_non_missing += num_present;
          tot_num_values += num_present;
          min_num_values = std::min<uint64_t>(min_num_values, 1);
          max_num_values = std::max<uint64_t>(max_num_values, 1);
        }
        return;
      }
    }
    for (size_t r = 0; r < rows; ++r) {
      if (!col.present[r]) continue;
      uint32_t k = col.offsets[r + 1] - col.offsets[r];
      ++num_non_missing;
      tot_num_values += k;
      if (k < min_num_values) min_num_values = k;
      if (k > max_num_values) max_num_values = k;
      if (k != 1 && all_single) {
        // Backfill the ones seen so far so the sketch covers every present row.
        all_single = false;
        for (uint64_t i = 0; i + 1 < num_non_missing; ++i) num_values.Add(1);
      }
      if (!all_single) num_values.Add(k);
    }
  }

  void CountInts(const std::vector<int64_t>& values) {
    if (int_counts_overflow) return;
    for (int64_t v : values) {
      ++int_counts[v];
      if (int_counts.size() > int_counts_cap) {
        int_counts_overflow = true;
        int_counts = {};
        return;
      }
    }
  }

  template <typename T>
  void AddNumbers(const std::vector<T>& values) {
    numeric_blocks = true;
    uint64_t n = 0;
    double sum = 0;
    if (!has_shift) {
      for (T tv : values) {
        double v = static_cast<double>(tv);
        if (std::isfinite(v)) {
          shift = v;
          has_shift = true;
          break;
        }
      }
    }
    for (T tv : values) {
      double v = static_cast<double>(tv);
      if (std::isnan(v)) {
        ++num_nan;
        continue;
      }
      if (v == 0) ++num_zeros;
      if (v < min) min = v;
      if (v > max) max = v;
      if (std::isinf(v)) {
        if (v > 0)
          ++num_pos_inf;
        else
          ++num_neg_inf;
      } else {
        kll.Add(v);
      }
      sum += v - shift;
      ++n;
    }
    if (n == 0) return;
    double mean = sum / static_cast<double>(n);
    double m2 = 0;
    for (T tv : values) {
      double v = static_cast<double>(tv);
      if (std::isnan(v)) continue;
      m2 += (v - shift - mean) * (v - shift - mean);
    }
    moments.Merge(n, mean, m2);
  }

  void AddStrings(const Column& col) {
    string_blocks = true;
    const size_t n = col.num_values();
    // Text columns are mostly ASCII: then no value needs its own UTF-8 check.
    const bool ascii = IsAscii(col.str_data);
    for (size_t i = 0; i < n; ++i) {
      std::string_view v = col.str(i);
      strings.Add(v, Hash64(v));
      // Most strings are plainly not numbers: decide those from the first bytes (words
      // start with a letter; of those only inf, infinity and nan can be numbers).
      const unsigned char c0 = v.empty() ? 0 : static_cast<unsigned char>(v[0]);
      const bool maybe_number = (c0 >= '0' && c0 <= '9') || c0 == '-' || c0 == '+' || c0 == '.' ||
                                c0 == ' ' || LooksLikeInfOrNan(v);
      int64_t iv;
      double dv;
      if (!maybe_number) {
        ++non_int;
        ++non_float;
      } else if (!data::ParseInt64(v, &iv)) {
        ++non_int;
        if (!data::ParseDouble(v, &dv)) ++non_float;
      }
      if (!ascii && !IsValidUtf8(v)) ++invalid_utf8;
    }
  }

  void Merge(FeatureAcc& o) {
    Note(o.first_block, o.first_position);
    type = data::WiderType(type, o.type);
    numeric_blocks |= o.numeric_blocks;
    string_blocks |= o.string_blocks;
    num_non_missing += o.num_non_missing;
    tot_num_values += o.tot_num_values;
    min_num_values = std::min(min_num_values, o.min_num_values);
    max_num_values = std::max(max_num_values, o.max_num_values);
    if (all_single && !o.all_single) {
      for (uint64_t i = 0; i < num_non_missing - o.num_non_missing; ++i) num_values.Add(1);
    }
    if (!all_single && o.all_single) {
      for (uint64_t i = 0; i < o.num_non_missing; ++i) num_values.Add(1);
    }
    all_single = all_single && o.all_single;
    num_values.Merge(o.num_values);
    if (!has_shift && o.has_shift) {
      // Adopt the other shift; our moments (if any) hold only infinities.
      moments.mean -= o.shift;
      shift = o.shift;
      has_shift = true;
    }
    moments.Merge(o.moments.n, o.moments.mean + (o.shift - shift), o.moments.m2);
    num_nan += o.num_nan;
    num_pos_inf += o.num_pos_inf;
    num_neg_inf += o.num_neg_inf;
    num_zeros += o.num_zeros;
    min = std::min(min, o.min);
    max = std::max(max, o.max);
    kll.Merge(o.kll);
    strings.Merge(o.strings);
    if (o.int_counts_overflow) {
      int_counts_overflow = true;
      int_counts = {};
    } else if (!int_counts_overflow) {
      for (const auto& [v, c] : o.int_counts) int_counts[v] += c;
      if (int_counts.size() > int_counts_cap) {
        int_counts_overflow = true;
        int_counts = {};
      }
    }
    non_int += o.non_int;
    non_float += o.non_float;
    invalid_utf8 += o.invalid_utf8;
  }
};

using AccMap = absl::flat_hash_map<std::string, std::unique_ptr<FeatureAcc>>;

struct ThreadState {
  AccMap features;
  uint64_t num_examples = 0;
};

// Accumulates one batch. With `only` set, just those features (the rescan pass).
// Distinct values counted exactly, summed over every feature and thread (about 80 bytes
// each): wide tables get a smaller exact phase per feature, so memory stays bounded
// however many columns there are.
constexpr size_t kExactValuesBudget = size_t{1} << 21;

void Accumulate(const Batch& batch, const StatsOptions& options, int threads, ThreadState* state,
                const absl::flat_hash_map<std::string, bool>* only) {
  state->num_examples += batch.num_rows;
  for (size_t c = 0; c < batch.columns.size(); ++c) {
    const Column& col = batch.columns[c];
    if (only && !only->contains(col.name)) continue;
    auto& slot = state->features[col.name];
    if (!slot) {
      StatsOptions feature_options = options;
      const size_t share =
          kExactValuesBudget / (batch.columns.size() * static_cast<size_t>(threads));
      feature_options.max_exact_unique =
          std::min(options.max_exact_unique, std::max<size_t>(share, 4096));
      slot = std::make_unique<FeatureAcc>(feature_options);
      slot->name = col.name;
    }
    FeatureAcc& acc = *slot;
    acc.Note(batch.block_index, c);
    acc.type = data::WiderType(acc.type, col.type);
    acc.AddCommon(col);
    switch (col.type) {
      case ValueType::kInt:
        acc.AddNumbers(col.ints);
        acc.CountInts(col.ints);
        break;
      case ValueType::kFloat:
        acc.AddNumbers(col.floats);
        break;
      case ValueType::kString:
        acc.AddStrings(col);
        break;
    }
  }
}

// Runs one pass and merges the per-thread states.
absl::StatusOr<ThreadState> Pass(Env* env, const data::InputSet& input,
                                 const data::ReadOptions& read, const StatsOptions& options,
                                 data::BadRowSink* bad,
                                 const absl::flat_hash_map<std::string, bool>* only) {
  KILN_ASSIGN_OR_RETURN(auto source, data::OpenSource(env, input, read));
  int threads = std::clamp(options.threads > 0 ? options.threads : data::DefaultThreads(), 1, 256);
  std::vector<ThreadState> states(threads);
  KILN_RETURN_IF_ERROR(data::ForEachBatchParallel(
      source.get(), bad, threads,
      [&](int t, Batch& batch) -> absl::Status {
        Accumulate(batch, options, threads, &states[t], only);
        return absl::OkStatus();
      },
      options.progress));
  ThreadState total = std::move(states[0]);
  for (size_t t = 1; t < states.size(); ++t) {
    total.num_examples += states[t].num_examples;
    for (auto& [name, acc] : states[t].features) {
      auto& slot = total.features[name];
      if (!slot)
        slot = std::move(acc);
      else
        slot->Merge(*acc);
    }
  }
  return total;
}

// Fills `h` with `buckets` quantile buckets (equal counts) or equal-width buckets, from
// the sketch. Infinities go to the outer buckets of the equal-width histogram.
void FillQuantilesHistogram(const KllSketch& kll, int buckets, tfmd::Histogram* h) {
  h->set_type(tfmd::Histogram::QUANTILES);
  if (kll.count() == 0 || buckets <= 0) return;
  std::vector<double> qs;
  for (int i = 0; i <= buckets; ++i) qs.push_back(static_cast<double>(i) / buckets);
  std::vector<double> b = kll.Quantiles(qs);
  double per = static_cast<double>(kll.count()) / buckets;
  for (int i = 0; i < buckets; ++i) {
    auto* bucket = h->add_buckets();
    bucket->set_low_value(b[i]);
    bucket->set_high_value(b[i + 1]);
    bucket->set_sample_count(per);
  }
}

void FillStandardHistogram(const FeatureAcc& acc, int buckets, tfmd::Histogram* h) {
  h->set_type(tfmd::Histogram::STANDARD);
  h->set_num_nan(acc.num_nan);
  const KllSketch& kll = acc.kll;
  uint64_t finite = kll.count();
  if (buckets <= 0 || (finite == 0 && acc.num_pos_inf + acc.num_neg_inf == 0)) return;
  double lo = finite ? kll.min() : 0, hi = finite ? kll.max() : 0;
  std::vector<double> counts(buckets, 0.0);
  if (finite > 0) {
    // Every retained value of the sketch, with its weight, into its bucket: exact while
    // the sketch is exact (small inputs), within the sketch's rank error otherwise. A
    // value on an inner edge belongs to the bucket above it; the last bucket is closed.
    const double width = (hi - lo) / buckets;
    double total = 0;
    kll.ForEachRetained([&](double v, uint64_t w) {
      int i = width > 0 ? static_cast<int>((v - lo) / width) : 0;
      i = std::clamp(i, 0, buckets - 1);
      counts[i] += static_cast<double>(w);
      total += static_cast<double>(w);
    });
    if (total > 0 && total != static_cast<double>(finite)) {
      for (double& c : counts) c *= static_cast<double>(finite) / total;
    }
  }
  counts.front() += static_cast<double>(acc.num_neg_inf);
  counts.back() += static_cast<double>(acc.num_pos_inf);
  double width = (hi - lo) / buckets;
  for (int i = 0; i < buckets; ++i) {
    auto* bucket = h->add_buckets();
    double low = lo + width * i, high = (i + 1 == buckets) ? hi : lo + width * (i + 1);
    if (i == 0 && acc.num_neg_inf) low = -std::numeric_limits<double>::infinity();
    if (i + 1 == buckets && acc.num_pos_inf) high = std::numeric_limits<double>::infinity();
    bucket->set_low_value(low);
    bucket->set_high_value(high);
    bucket->set_sample_count(counts[i]);
  }
}

void FillCommon(const FeatureAcc& acc, const StatsOptions& options, uint64_t num_examples,
                tfmd::CommonStatistics* c) {
  c->set_num_non_missing(acc.num_non_missing);
  // As TFDV: every example without the feature is missing, including those of blocks
  // (JSON Lines, TFRecord) in which the feature never appeared.
  c->set_num_missing(num_examples - acc.num_non_missing);
  c->set_tot_num_values(acc.tot_num_values);
  if (acc.num_non_missing > 0) {
    c->set_min_num_values(acc.min_num_values);
    c->set_max_num_values(acc.max_num_values);
    c->set_avg_num_values(static_cast<float>(static_cast<double>(acc.tot_num_values) /
                                             static_cast<double>(acc.num_non_missing)));
    auto* h = c->mutable_num_values_histogram();
    if (acc.all_single) {
      h->set_type(tfmd::Histogram::QUANTILES);
      double per =
          static_cast<double>(acc.num_non_missing) / options.num_quantiles_histogram_buckets;
      for (int i = 0; i < options.num_quantiles_histogram_buckets; ++i) {
        auto* b = h->add_buckets();
        b->set_low_value(1);
        b->set_high_value(1);
        b->set_sample_count(per);
      }
    } else {
      FillQuantilesHistogram(acc.num_values, options.num_quantiles_histogram_buckets, h);
    }
  }
}

void AddCustomNum(tfmd::FeatureNameStatistics* f, const std::string& name, double v) {
  auto* cs = f->add_custom_stats();
  cs->set_name(name);
  cs->set_num(v);
}

tfmd::FeatureNameStatistics BuildFeature(const FeatureAcc& acc, const StatsOptions& options,
                                         uint64_t num_examples) {
  tfmd::FeatureNameStatistics f;
  f.set_name(acc.name);
  if (acc.type == ValueType::kString) {
    f.set_type(tfmd::FeatureNameStatistics::STRING);
    auto* s = f.mutable_string_stats();
    FillCommon(acc, options, num_examples, s->mutable_common_stats());
    s->set_unique(acc.strings.Unique());
    auto top =
        acc.strings.Top(std::max(options.num_top_values, options.num_rank_histogram_buckets));
    for (size_t i = 0; i < top.size() && i < static_cast<size_t>(options.num_top_values); ++i) {
      auto* tv = s->add_top_values();
      tv->set_value(SanitizeUtf8(top[i].first));
      tv->set_frequency(static_cast<double>(top[i].second));
    }
    if (acc.strings.total() > 0) {
      s->set_avg_length(static_cast<float>(static_cast<double>(acc.strings.total_length()) /
                                           static_cast<double>(acc.strings.total())));
    }
    auto* rh = s->mutable_rank_histogram();
    for (size_t i = 0;
         i < top.size() && i < static_cast<size_t>(options.num_rank_histogram_buckets); ++i) {
      auto* b = rh->add_buckets();
      b->set_low_rank(i);
      b->set_high_rank(i);
      b->set_label(SanitizeUtf8(top[i].first));
      b->set_sample_count(static_cast<double>(top[i].second));
    }
    s->set_invalid_utf8_count(acc.invalid_utf8);
    AddCustomNum(&f, "kiln_non_int_count", static_cast<double>(acc.non_int));
    AddCustomNum(&f, "kiln_non_float_count", static_cast<double>(acc.non_float));
    if (acc.strings.exact() && acc.strings.Unique() <= options.value_counts_cap) {
      auto* cs = f.add_custom_stats();
      cs->set_name("kiln_value_counts");
      auto* all = cs->mutable_rank_histogram();
      auto every = acc.strings.Top(acc.strings.Unique());
      for (size_t i = 0; i < every.size(); ++i) {
        auto* b = all->add_buckets();
        b->set_low_rank(i);
        b->set_high_rank(i);
        b->set_label(SanitizeUtf8(every[i].first));
        b->set_sample_count(static_cast<double>(every[i].second));
      }
    }
    return f;
  }
  f.set_type(acc.type == ValueType::kInt ? tfmd::FeatureNameStatistics::INT
                                         : tfmd::FeatureNameStatistics::FLOAT);
  auto* n = f.mutable_num_stats();
  FillCommon(acc, options, num_examples, n->mutable_common_stats());
  if (acc.moments.n > 0) {
    n->set_mean(acc.moments.mean + acc.shift);
    // The population standard deviation, as TFDV reports it.
    n->set_std_dev(std::sqrt(acc.moments.m2 / static_cast<double>(acc.moments.n)));
    if (acc.num_pos_inf + acc.num_neg_inf > 0) {
      double inf = std::numeric_limits<double>::infinity();
      n->set_mean(acc.num_pos_inf && acc.num_neg_inf ? std::nan("")
                                                     : (acc.num_pos_inf ? inf : -inf));
      n->set_std_dev(std::nan(""));
    }
    n->set_min(acc.min);
    n->set_max(acc.max);
  }
  n->set_num_zeros(acc.num_zeros);
  if (acc.kll.count() > 0) n->set_median(acc.kll.Quantile(0.5));
  FillStandardHistogram(acc, options.num_histogram_buckets, n->add_histograms());
  tfmd::Histogram* quantiles = n->add_histograms();
  FillQuantilesHistogram(acc.kll, options.num_quantiles_histogram_buckets, quantiles);
  quantiles->set_num_nan(acc.num_nan);
  AddCustomNum(&f, "num_inf", static_cast<double>(acc.num_pos_inf + acc.num_neg_inf));
  // A FLOAT feature that was INT in some blocks has partial counts: only pure INT ones
  // report them.
  if (acc.type == ValueType::kInt && !acc.int_counts_overflow && !acc.int_counts.empty()) {
    std::vector<std::pair<int64_t, uint64_t>> counts(acc.int_counts.begin(), acc.int_counts.end());
    std::sort(counts.begin(), counts.end(), [](const auto& a, const auto& b) {
      return a.second != b.second ? a.second > b.second : a.first < b.first;
    });
    auto* cs = f.add_custom_stats();
    cs->set_name("kiln_value_counts");
    auto* all = cs->mutable_rank_histogram();
    for (size_t i = 0; i < counts.size(); ++i) {
      auto* b = all->add_buckets();
      b->set_low_rank(i);
      b->set_high_rank(i);
      b->set_label(std::to_string(counts[i].first));
      b->set_sample_count(static_cast<double>(counts[i].second));
    }
  }
  return f;
}

}  // namespace

absl::StatusOr<tfmd::DatasetFeatureStatistics> ComputeStatistics(
    Env* env, const data::InputSet& input, const data::ReadOptions& read,
    const StatsOptions& options, data::BadRowSink* bad, const std::string& name) {
  KILN_ASSIGN_OR_RETURN(ThreadState state, Pass(env, input, read, options, bad, nullptr));

  // Blocks are typed one at a time; a feature that was numbers in some blocks and text
  // in others is STRING, and its string statistics need a second look at every value.
  absl::flat_hash_map<std::string, bool> rescan;
  for (auto& [fname, acc] : state.features) {
    if (acc->string_blocks && acc->numeric_blocks) rescan[fname] = true;
  }
  if (!rescan.empty()) {
    data::ReadOptions again = read;
    for (const auto& [fname, _] : rescan)
      again.type_overrides.push_back({fname, ValueType::kString});
    // Bad rows were already reported by the first pass.
    data::BadRowSink quiet(data::BadRowPolicy::kSkip);
    KILN_ASSIGN_OR_RETURN(ThreadState second, Pass(env, input, again, options, &quiet, &rescan));
    // The second pass must see exactly the rows the first one did; anything else would
    // silently change the statistics.
    if (second.num_examples != state.num_examples) {
      return absl::InternalError(kiln::StrCat(
          "re-reading features of mixed type saw ", second.num_examples, " rows, the first pass ",
          state.num_examples, "; please report this with the input"));
    }
    for (auto& [fname, acc] : second.features) {
      FeatureAcc& old = *state.features[fname];
      acc->first_block = old.first_block;
      acc->first_position = old.first_position;
      acc->numeric_blocks = false;
      state.features[fname] = std::move(acc);
    }
  }

  std::vector<FeatureAcc*> order;
  for (auto& [fname, acc] : state.features) order.push_back(acc.get());
  std::sort(order.begin(), order.end(), [](const FeatureAcc* a, const FeatureAcc* b) {
    return std::tie(a->first_block, a->first_position, a->name) <
           std::tie(b->first_block, b->first_position, b->name);
  });
  tfmd::DatasetFeatureStatistics ds;
  ds.set_name(name);
  ds.set_num_examples(state.num_examples);
  for (FeatureAcc* acc : order)
    *ds.add_features() = BuildFeature(*acc, options, state.num_examples);
  return ds;
}

absl::Status WriteStatistics(Env* env, const std::string& dir,
                             const tfmd::DatasetFeatureStatisticsList& stats) {
  KILN_RETURN_IF_ERROR(env->CreateDirs(dir));
  std::string binary;
  if (!stats.SerializeToString(&binary)) return absl::InternalError("cannot serialize statistics");
  KILN_RETURN_IF_ERROR(WriteFileAtomically(env, JoinPath(dir, "statistics.pb"), binary));
  std::string json;
  google::protobuf::util::JsonPrintOptions opts;
  opts.add_whitespace = true;
  auto st = google::protobuf::util::MessageToJsonString(stats, &json, opts);
  if (!st.ok()) return absl::InternalError(kiln::StrCat("statistics to JSON: ", st.ToString()));
  return WriteFileAtomically(env, JoinPath(dir, "statistics.json"), json);
}

std::string FormatStatisticsTable(const tfmd::DatasetFeatureStatistics& ds) {
  std::string out = absl::StrFormat("dataset '%s': %d examples, %d features\n", ds.name(),
                                    ds.num_examples(), ds.features_size());
  out += absl::StrFormat("  %-24s %-6s %8s  %s\n", "feature", "type", "missing", "summary");
  for (const auto& f : ds.features()) {
    const tfmd::CommonStatistics& c =
        f.has_num_stats() ? f.num_stats().common_stats() : f.string_stats().common_stats();
    double total = static_cast<double>(c.num_missing() + c.num_non_missing());
    double missing = total > 0 ? 100.0 * c.num_missing() / total : 0.0;
    std::string summary;
    if (c.num_non_missing() == 0) {
      summary = "no values";
    } else if (f.has_num_stats()) {
      const auto& n = f.num_stats();
      summary = absl::StrFormat("mean %.6g  std %.6g  min %.6g  median %.6g  max %.6g  zeros %d",
                                n.mean(), n.std_dev(), n.min(), n.median(), n.max(), n.num_zeros());
    } else {
      const auto& s = f.string_stats();
      summary = absl::StrFormat("unique %d  avg_len %.1f", s.unique(), s.avg_length());
      if (s.top_values_size() > 0) {
        std::string top = s.top_values(0).value();
        if (top.size() > 24) top = top.substr(0, 21) + "...";
        summary += absl::StrFormat("  top '%s' (%d)", top,
                                   static_cast<int64_t>(s.top_values(0).frequency()));
      }
    }
    std::string fname = f.name();
    if (fname.size() > 24) fname = fname.substr(0, 21) + "...";
    const char* type = f.type() == tfmd::FeatureNameStatistics::INT     ? "INT"
                       : f.type() == tfmd::FeatureNameStatistics::FLOAT ? "FLOAT"
                                                                        : "STRING";
    out += absl::StrFormat("  %-24s %-6s %7.1f%%  %s\n", fname, type, missing, summary);
  }
  return out;
}

}  // namespace kiln::stats
