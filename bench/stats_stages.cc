// Where the time of `kiln stats` on a CSV goes, stage by stage, on the same threads the
// command uses (bench/stats_vs_pandas prints it beside `wc -l`):
//   read   the file read and cut into row-aligned blocks (the reader thread alone)
//   decode read + split into fields + typed columns on the worker threads
//   stats  read + decode + every statistic (what `kiln stats` computes)
// Each stage is the best of --repeat runs, in seconds, one JSON object on stdout.
//
//   stats_stages FILE.csv [--threads N] [--repeat R]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>

#include "kiln/base/env.h"
#include "kiln/data/input.h"
#include "kiln/data/source.h"
#include "kiln/stats/generator.h"

namespace {

double Seconds(const std::function<absl::Status()>& fn, int repeat) {
  double best = 1e300;
  for (int i = 0; i < repeat; ++i) {
    const auto start = std::chrono::steady_clock::now();
    if (absl::Status st = fn(); !st.ok()) {
      std::fprintf(stderr, "stats_stages: %s\n", std::string(st.message()).c_str());
      std::exit(2);
    }
    best = std::min(
        best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: stats_stages FILE.csv [--threads N] [--repeat R]\n");
    return 2;
  }
  const std::string path = argv[1];
  int threads = kiln::data::DefaultThreads();
  int repeat = 3;
  for (int i = 2; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--threads") == 0) threads = std::atoi(argv[i + 1]);
    if (std::strcmp(argv[i], "--repeat") == 0) repeat = std::atoi(argv[i + 1]);
  }
  kiln::Env* env = kiln::Env::Default();
  auto input = kiln::data::ResolveInput(env, path);
  if (!input.ok()) {
    std::fprintf(stderr, "stats_stages: %s\n", std::string(input.status().message()).c_str());
    return 2;
  }
  kiln::data::ReadOptions read;
  const double read_s = Seconds(
      [&]() -> absl::Status {
        KILN_ASSIGN_OR_RETURN(auto source, kiln::data::OpenSource(env, *input, read));
        kiln::data::RawBlock block;
        for (;;) {
          KILN_ASSIGN_OR_RETURN(bool more, source->NextBlock(&block));
          if (!more) return absl::OkStatus();
        }
      },
      repeat);
  const double decode_s = Seconds(
      [&]() -> absl::Status {
        KILN_ASSIGN_OR_RETURN(auto source, kiln::data::OpenSource(env, *input, read));
        kiln::data::BadRowSink bad(kiln::data::BadRowPolicy::kError);
        return kiln::data::ForEachBatchParallel(
            source.get(), &bad, threads, [](int, kiln::data::Batch&) { return absl::OkStatus(); });
      },
      repeat);
  kiln::stats::StatsOptions options;
  options.threads = threads;
  const double stats_s = Seconds(
      [&]() -> absl::Status {
        kiln::data::BadRowSink bad(kiln::data::BadRowPolicy::kError);
        return kiln::stats::ComputeStatistics(env, *input, read, options, &bad).status();
      },
      repeat);
  std::printf("{\"threads\": %d, \"read_s\": %.4f, \"decode_s\": %.4f, \"stats_s\": %.4f}\n",
              threads, read_s, decode_s, stats_s);
  return 0;
}
