// Times kiln's metadata store the way kiln's pipeline uses it, against the targets of the
// metadata issue: at least 5,000 events/s into SQLite, and the lineage of one model in at
// most 10 ms (p99) in a store of 10,000 runs.
//
//   metadata_bench --metadata URL [--runs 10000] [--queries 1000] [--span-size 10]
//
// URL is what kiln's --metadata flag takes (sqlite:PATH, postgresql://...); the store must
// be empty, so the figures describe a store of exactly RUNS runs.
//
// Phase 1 records RUNS pipeline runs through metadata::Recorder. Each run is one Trainer
// execution with three artifacts: INPUT the Examples of its span (registered once per
// span of --span-size runs with RegisterExternal, as kiln registers raw data), OUTPUT a
// Model and OUTPUT its ModelMetrics; three events per execution, in the pipeline,
// component and pipeline-run contexts, with the trainer's parameters. Timed as a whole
// (executions/s, events/s) and per Record call.
//
// Phase 2 times, for QUERIES random picks each: GetLineage of a model with the default
// options (both directions, 5 hops) and upstream only; GetLineage of an Examples artifact
// (the fan-out to the span's trainers and their outputs); Diff of two models; and
// GetArtifacts of the Model whose "run" property has a given value. Each reports
// p50/p90/p99/max in ms and how many nodes (artifacts + executions) the result held.
//
// Besides the readable lines, every measurement ends in one line for scripts:
//   RESULT backend=sqlite metric=record ... events_per_s=...
//   RESULT backend=sqlite metric=lineage n=... p50_ms=... p99_ms=... avg_nodes=...
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "kiln/base/status.h"
#include "kiln/base/str.h"
#include "kiln/metadata/open_store.h"
#include "kiln/metadata/recorder.h"

namespace kiln::metadata {
namespace {

using Clock = std::chrono::steady_clock;

double MsSince(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

// CPU seconds (user + system) this process has used: on a shared machine, wall time
// includes waiting for the CPU; this does not (nor the PostgreSQL server's share).
double CpuSeconds() {
  struct rusage u;
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

struct Flags {
  std::string metadata;
  int runs = 10000;
  int queries = 1000;
  int span_size = 10;
};

// Latencies of one kind of call and the sizes of what it returned.
struct Series {
  std::vector<double> ms;
  double total_size = 0;

  // Nearest-rank percentile, p in (0, 100].
  double Percentile(double p) const {
    std::vector<double> sorted = ms;
    std::sort(sorted.begin(), sorted.end());
    size_t rank = static_cast<size_t>(std::ceil(p / 100.0 * sorted.size()));
    return sorted[std::clamp<size_t>(rank, 1, sorted.size()) - 1];
  }
  double AvgSize() const { return ms.empty() ? 0 : total_size / ms.size(); }
};

void Report(const std::string& backend, const std::string& metric, const std::string& what,
            const Series& s, const char* size_unit) {
  std::printf("%-44s p50 %7.3f  p90 %7.3f  p99 %7.3f  max %8.3f ms   %.1f %s\n", what.c_str(),
              s.Percentile(50), s.Percentile(90), s.Percentile(99), s.Percentile(100), s.AvgSize(),
              size_unit);
  std::printf(
      "RESULT backend=%s metric=%s n=%zu p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f "
      "avg_%s=%.2f\n",
      backend.c_str(), metric.c_str(), s.ms.size(), s.Percentile(50), s.Percentile(90),
      s.Percentile(99), s.Percentile(100), size_unit, s.AvgSize());
  std::fflush(stdout);
}

std::string RunName(int i) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "run-%06d", i);
  return buf;
}

// A stable stand-in for a content fingerprint of span `span`'s data.
std::string Fingerprint(int span) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%016" PRIx64,
                static_cast<uint64_t>(span + 1) * uint64_t{0x9E3779B97F4A7C15});
  return buf;
}

absl::Status Run(const Flags& flags) {
  KILN_ASSIGN_OR_RETURN(std::unique_ptr<MetadataStore> store, OpenStore(flags.metadata));
  const std::string where = store->Describe();
  const std::string backend = where.substr(0, where.find(':'));
  {
    Query any;
    any.limit = 1;
    KILN_ASSIGN_OR_RETURN(auto existing, store->GetExecutions(any));
    if (!existing.empty()) {
      return absl::FailedPreconditionError(
          StrCat(where, " already holds executions; give metadata_bench an empty store"));
    }
  }
  std::printf("metadata_bench: %s, %d runs, %d queries per measurement\n", where.c_str(),
              flags.runs, flags.queries);

  // Phase 1: record.
  Recorder recorder(store.get());
  std::vector<int64_t> models, examples, executions;
  models.reserve(flags.runs);
  executions.reserve(flags.runs);
  std::mt19937_64 rng(42);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  Series record;
  int64_t events = 0;
  const Clock::time_point start = Clock::now();
  const double cpu_start = CpuSeconds();
  for (int i = 0; i < flags.runs; ++i) {
    const int span = i / flags.span_size;
    if (i % flags.span_size == 0) {
      Artifact ex;
      ex.type = "Examples";
      ex.uri = StrCat("file:///data/bench/examples/span-", span);
      ex.properties["span"] = int64_t{span};
      ex.properties["fingerprint"] = Fingerprint(span);
      ex.properties["num_examples"] = int64_t{100000 + span};
      KILN_ASSIGN_OR_RETURN(int64_t id, recorder.RegisterExternal(ex));
      examples.push_back(id);
    }
    const Clock::time_point t = Clock::now();
    ExecutionRecord r;
    r.type = "Trainer";
    r.pipeline = "bench";
    r.run = RunName(i);
    r.component = "trainer";
    r.parameters["learning_rate"] = 0.05 + 0.01 * (i % 7);
    r.parameters["num_rounds"] = int64_t{100 + 10 * (i % 5)};
    r.parameters["seed"] = int64_t{i};
    r.parameters["objective"] = std::string("binary:logistic");
    r.inputs.emplace_back("examples", examples.back());
    Artifact model;
    model.type = "Model";
    model.uri = StrCat("file:///data/bench/runs/", RunName(i), "/model");
    model.properties["run"] = RunName(i);
    model.properties["format"] = std::string("xgboost-json");
    Artifact metrics;
    metrics.type = "ModelMetrics";
    metrics.uri = StrCat("file:///data/bench/runs/", RunName(i), "/metrics.json");
    metrics.properties["auc"] = 0.80 + 0.1 * unit(rng);
    metrics.properties["logloss"] = 0.30 + 0.1 * unit(rng);
    r.outputs.emplace_back("model", std::move(model));
    r.outputs.emplace_back("metrics", std::move(metrics));
    KILN_ASSIGN_OR_RETURN(RecordedExecution out, recorder.Record(r));
    record.ms.push_back(MsSince(t));
    record.total_size += 3;
    events += static_cast<int64_t>(r.inputs.size() + r.outputs.size());
    executions.push_back(out.execution_id);
    models.push_back(out.output_ids[0]);
  }
  const double seconds = MsSince(start) / 1000.0;
  const double cpu_seconds = CpuSeconds() - cpu_start;
  // Outside the timing: the store holds what was recorded.
  KILN_ASSIGN_OR_RETURN(auto stored_events, store->GetEventsByExecutionIds(executions));
  if (static_cast<int64_t>(stored_events.size()) != events) {
    return absl::InternalError(
        StrCat("recorded ", events, " events but the store holds ", stored_events.size()));
  }
  std::printf("record: %d executions, %" PRId64
              " events (%zu Examples registered) in %.2f s: "
              "%.0f executions/s, %.0f events/s (%.2f s CPU in this process)\n",
              flags.runs, events, examples.size(), seconds, flags.runs / seconds, events / seconds,
              cpu_seconds);
  std::printf("RESULT backend=%s metric=record executions=%d events=%" PRId64
              " seconds=%.3f executions_per_s=%.0f events_per_s=%.0f client_cpu_s=%.3f\n",
              backend.c_str(), flags.runs, events, seconds, flags.runs / seconds, events / seconds,
              cpu_seconds);
  Report(backend, "record_call", "Recorder::Record (one execution)", record, "artifacts");

  // Phase 2: queries.
  std::uniform_int_distribution<size_t> pick_model(0, models.size() - 1);
  std::uniform_int_distribution<size_t> pick_examples(0, examples.size() - 1);
  auto lineage = [&](const std::vector<int64_t>& from, std::uniform_int_distribution<size_t>& pick,
                     const LineageOptions& options) -> absl::StatusOr<Series> {
    Series s;
    for (int q = 0; q < flags.queries; ++q) {
      int64_t id = from[pick(rng)];
      Clock::time_point t = Clock::now();
      KILN_ASSIGN_OR_RETURN(LineageGraph g, store->GetLineage(id, options));
      s.ms.push_back(MsSince(t));
      s.total_size += g.artifacts.size() + g.executions.size();
    }
    return s;
  };
  KILN_ASSIGN_OR_RETURN(Series both, lineage(models, pick_model, LineageOptions()));
  Report(backend, "lineage", "GetLineage(model) default: both, 5 hops", both, "nodes");
  LineageOptions upstream;
  upstream.direction = LineageDirection::kUpstream;
  KILN_ASSIGN_OR_RETURN(Series up, lineage(models, pick_model, upstream));
  Report(backend, "lineage_upstream", "GetLineage(model) upstream, 5 hops", up, "nodes");
  KILN_ASSIGN_OR_RETURN(Series fan, lineage(examples, pick_examples, LineageOptions()));
  Report(backend, "lineage_examples", "GetLineage(examples) default", fan, "nodes");

  Series diff;
  for (int q = 0; q < flags.queries; ++q) {
    int64_t a = models[pick_model(rng)];
    int64_t b = models[pick_model(rng)];
    Clock::time_point t = Clock::now();
    KILN_ASSIGN_OR_RETURN(ModelDiff d, store->Diff(a, b));
    diff.ms.push_back(MsSince(t));
    diff.total_size += d.differences.size();
  }
  Report(backend, "diff", "Diff(model, model)", diff, "differences");

  Series by_property;
  for (int q = 0; q < flags.queries; ++q) {
    Query query;
    query.type = "Model";
    query.property = {"run", RunName(static_cast<int>(pick_model(rng)))};
    Clock::time_point t = Clock::now();
    KILN_ASSIGN_OR_RETURN(auto found, store->GetArtifacts(query));
    by_property.ms.push_back(MsSince(t));
    if (found.size() != 1) {
      return absl::InternalError(StrCat("expected one model per run, found ", found.size()));
    }
    by_property.total_size += found.size();
  }
  Report(backend, "property_query", "GetArtifacts(type Model, property run=...)", by_property,
         "artifacts");
  return absl::OkStatus();
}

}  // namespace
}  // namespace kiln::metadata

int main(int argc, char** argv) {
  kiln::metadata::Flags flags;
  CLI::App app{"Times kiln's metadata store: recording runs, lineage, diff, property queries."};
  app.add_option("--metadata", flags.metadata, "store URL (sqlite:PATH, postgresql://...)")
      ->required();
  app.add_option("--runs", flags.runs, "pipeline runs to record")->check(CLI::Range(1, 100000000));
  app.add_option("--queries", flags.queries, "calls timed per query kind")
      ->check(CLI::Range(1, 100000000));
  app.add_option("--span-size", flags.span_size, "runs sharing one Examples artifact")
      ->check(CLI::Range(1, 100000000));
  CLI11_PARSE(app, argc, argv);
  absl::Status s = kiln::metadata::Run(flags);
  if (!s.ok()) {
    std::fprintf(stderr, "metadata_bench: %s\n", std::string(s.message()).c_str());
    return 1;
  }
  return 0;
}
