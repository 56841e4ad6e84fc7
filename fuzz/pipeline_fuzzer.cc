// libFuzzer target: arbitrary bytes through the parsers of `kiln run` and `kiln schedule`:
// the first byte picks one. 0: a pipeline file (ParsePipeline, with its schedule: section)
// — one that parses has a DAG whose order holds every component once, after its
// upstream ones. 1: a cron expression — one that parses fires strictly after any time,
// at a time it matches, and again after that. 2: ROOT/schedule_state.json — a state that
// reads back is written and read again to the same JSON. Errors are statuses; nothing
// may crash, hang or trip a sanitizer.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "fuzz/fuzz_util.h"
#include "kiln/pipeline/cron.h"
#include "kiln/pipeline/pipeline_spec.h"
#include "kiln/pipeline/scheduler.h"

namespace {

namespace pipeline = kiln::pipeline;

void Require(bool ok) {
  if (!ok) std::abort();
}

void Pipeline(std::string_view text) {
  auto p = pipeline::ParsePipeline(text, "/fuzz/pipeline.yaml", nullptr);
  if (!p.ok()) {
    Require(p.status().code() == absl::StatusCode::kInvalidArgument);
    return;
  }
  const size_t n = p->components.size();
  Require(p->dag.order.size() == n && p->dag.upstream.size() == n);
  std::vector<int> position(n, -1);
  for (size_t i = 0; i < n; ++i) {
    const int c = p->dag.order[i];
    Require(c >= 0 && static_cast<size_t>(c) < n && position[c] == -1);
    position[c] = static_cast<int>(i);
  }
  for (size_t c = 0; c < n; ++c) {
    for (int u : p->dag.upstream[c]) Require(position[u] < position[c]);
  }
}

void Cron(std::string_view text) {
  auto cron = pipeline::CronExpr::Parse(text);
  if (!cron.ok()) {
    Require(cron.status().code() == absl::StatusCode::kInvalidArgument);
    return;
  }
  static const absl::TimeZone* const zone = [] {
    auto z = pipeline::LoadZone("America/New_York");
    return new absl::TimeZone(z.ok() ? *z : absl::UTCTimeZone());
  }();
  const absl::Time start = absl::FromUnixSeconds(1710050400);  // 2024-03-10, a DST change
  const absl::Time first = cron->Next(start, *zone);
  Require(first > start && first != absl::InfiniteFuture());
  Require(cron->MatchesDay(absl::ToCivilDay(first, *zone)));
  Require(cron->Next(first, *zone) > first);
}

void State(const uint8_t* data, size_t size) {
  const std::string path = kiln::fuzz::WriteInput(data, size, ".json");
  auto state = pipeline::ReadScheduleState(kiln::Env::Default(), path);
  if (!state.ok()) return;
  const std::string json = pipeline::ScheduleStateJson(*state);
  const std::string again_path = path + ".again";
  Require(pipeline::WriteScheduleState(kiln::Env::Default(), again_path, *state).ok());
  auto again = pipeline::ReadScheduleState(kiln::Env::Default(), again_path);
  Require(again.ok() && pipeline::ScheduleStateJson(*again) == json);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 3) {
    case 0:
      Pipeline(text);
      break;
    case 1:
      Cron(text);
      break;
    default:
      State(data + 1, size - 1);
      break;
  }
  return 0;
}
