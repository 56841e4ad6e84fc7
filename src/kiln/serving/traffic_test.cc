#include "kiln/serving/traffic.h"

#include <atomic>
#include <map>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kiln/base/str.h"

namespace kiln::serving {
namespace {

using ::testing::HasSubstr;

ServerConfig Config(const std::string& yaml) {
  absl::StatusOr<ServerConfig> c = ParseServerConfig(yaml);
  EXPECT_TRUE(c.ok()) << c.status();
  return c.ok() ? *c : ServerConfig{};
}

// clicks: stable 6, canary 7 split 90/10, with a rollback rule (min 100 per side).
std::string CanaryYaml(int64_t canary_version = 7, const std::string& extra_labels = "",
                       const std::string& rollback_extra = "") {
  return StrCat(R"(
models:
  - name: clicks
    base_path: /srv/clicks
    version_labels: {stable: 6, canary: )",
                canary_version, extra_labels, R"(}
    traffic:
      split: {stable: 90, canary: 10}
    rollback:
      canary: canary
      stable: stable
      window_seconds: 60
      min_requests: 100
      max_error_rate_increase: 0.02
      webhook: http://127.0.0.1:9/alert
)",
                rollback_extra, R"(
  - {name: plain, base_path: /srv/plain}
)");
}

const TrafficController::HeaderFn kNoHeaders = nullptr;

std::map<int64_t, int> CountPicks(const TrafficController& t, const std::string& model, int n) {
  std::map<int64_t, int> counts;
  for (int i = 0; i < n; ++i) {
    std::optional<int64_t> v = t.Pick(model, kNoHeaders);
    counts[v ? *v : -1]++;
  }
  return counts;
}

TEST(Fnv1a64Test, KnownVectors) {
  EXPECT_EQ(Fnv1a64(""), 0xcbf29ce484222325ull);
  EXPECT_EQ(Fnv1a64("a"), 0xaf63dc4c8601ec8cull);
  EXPECT_EQ(Fnv1a64("foobar"), 0x85944171f73967e8ull);
  EXPECT_EQ(Fnv1a64("bar", Fnv1a64("foo")), Fnv1a64("foobar"));  // continues
}

TEST(TrafficControllerTest, ModelsWithoutSplitUseTheDefault) {
  TrafficController t;
  EXPECT_EQ(t.Pick("clicks", kNoHeaders), std::nullopt);  // no config yet
  ASSERT_TRUE(t.SetConfig(Config(CanaryYaml())).ok());
  EXPECT_EQ(t.Pick("plain", kNoHeaders), std::nullopt);
  EXPECT_EQ(t.Pick("unknown", kNoHeaders), std::nullopt);
  t.Record("plain", 1, true, 0.1, 0);  // ignored
  EXPECT_EQ(t.Status("plain", 0).status().code(), absl::StatusCode::kNotFound);
  std::vector<TrafficStatus> all = t.Status(0);
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].model, "clicks");
}

TEST(TrafficControllerTest, SplitProportionsFollowNormalizedWeights) {
  TrafficController t;
  ASSERT_TRUE(t.SetConfig(Config(CanaryYaml())).ok());
  std::map<int64_t, int> counts = CountPicks(t, "clicks", 10000);
  EXPECT_EQ(counts.size(), 2u);
  // 10% of 10000: sd 30, so +-150 is 5 sd.
  EXPECT_NEAR(counts[7], 1000, 150);
  EXPECT_EQ(counts[6] + counts[7], 10000);

  // Version-number keys and weights that do not sum to 100.
  ASSERT_TRUE(t.SetConfig(Config(R"(
models:
  - {name: risk, base_path: /r, traffic: {split: {'1': 0.3, '2': 0.1, '3': 0.6}}}
)"))
                  .ok());
  counts = CountPicks(t, "risk", 10000);
  EXPECT_NEAR(counts[1], 3000, 250);
  EXPECT_NEAR(counts[2], 1000, 150);
  EXPECT_NEAR(counts[3], 6000, 250);
  EXPECT_EQ(counts[1] + counts[2] + counts[3], 10000);

  absl::StatusOr<TrafficStatus> s = t.Status("risk", 0);
  ASSERT_TRUE(s.ok());
  ASSERT_EQ(s->split.size(), 3u);  // newest first
  EXPECT_EQ(s->split[0].version, 3);
  EXPECT_DOUBLE_EQ(s->split[0].share, 0.6);
  EXPECT_EQ(s->split[2].key, "1");
  EXPECT_DOUBLE_EQ(s->split[2].share, 0.3);
  EXPECT_FALSE(s->canary_version.has_value());
}

TEST(TrafficControllerTest, StickyHeaderGivesEachKeyOneVersion) {
  TrafficController t;
  ServerConfig config = Config(CanaryYaml());
  config.models[0].traffic->sticky_header = "x-user-id";
  ASSERT_TRUE(t.SetConfig(config).ok());

  std::map<std::string, int64_t> first;
  int canary_keys = 0;
  constexpr int kKeys = 4000;
  for (int round = 0; round < 3; ++round) {
    for (int k = 0; k < kKeys; ++k) {
      const std::string key = StrCat("user-", k);
      std::string asked;
      std::optional<int64_t> v = t.Pick("clicks", [&](std::string_view name) {
        asked = std::string(name);
        return key;
      });
      ASSERT_TRUE(v.has_value());
      EXPECT_EQ(asked, "x-user-id");
      if (round == 0) {
        first[key] = *v;
        canary_keys += *v == 7;
      } else {
        EXPECT_EQ(*v, first[key]) << key;  // same key, same version
      }
    }
  }
  // 10% of 4000 keys: sd 19, +-100 is 5 sd.
  EXPECT_NEAR(canary_keys, 400, 100);

  // Another controller (another replica, a restart) routes every key the same way.
  TrafficController other;
  ASSERT_TRUE(other.SetConfig(config).ok());
  for (int k = 0; k < 200; ++k) {
    const std::string key = StrCat("user-", k);
    EXPECT_EQ(other.Pick("clicks", [&](std::string_view) { return key; }), first[key]);
  }

  // Growing the canary's share keeps the keys it had.
  config.models[0].traffic->split["canary"] = 20;
  config.models[0].traffic->split["stable"] = 80;
  ASSERT_TRUE(t.SetConfig(config).ok());
  int grown = 0;
  for (int k = 0; k < kKeys; ++k) {
    const std::string key = StrCat("user-", k);
    std::optional<int64_t> v = t.Pick("clicks", [&](std::string_view) { return key; });
    if (first[key] == 7) {
      EXPECT_EQ(v, 7) << key;
    }
    grown += v == 7;
  }
  EXPECT_NEAR(grown, 800, 130);

  // Without the header the pick is random: both versions show up.
  std::map<int64_t, int> counts;
  for (int i = 0; i < 2000; ++i) counts[*t.Pick("clicks", [](std::string_view) { return ""; })]++;
  EXPECT_NEAR(counts[7], 400, 110);
}

TEST(TrafficControllerTest, UnavailableVersionsAreSkipped) {
  TrafficController t;
  ServerConfig config = Config(CanaryYaml());
  config.models[0].traffic->sticky_header = "x-user-id";
  ASSERT_TRUE(t.SetConfig(config).ok());
  for (int k = 0; k < 500; ++k) {
    const std::string key = StrCat("u", k);
    auto header = [&](std::string_view) { return key; };
    EXPECT_EQ(t.Pick("clicks", header, [](int64_t v) { return v != 7; }), 6);
    EXPECT_EQ(t.Pick("clicks", header, [](int64_t v) { return v != 6; }), 7);
    EXPECT_EQ(t.Pick("clicks", header, [](int64_t) { return false; }), std::nullopt);
  }
}

// Records `n` outcomes of `version` at `now_ms`, every `error_every`-th one failed
// (0: none), each taking `latency` seconds.
void RecordMany(TrafficController& t, int64_t version, int n, int error_every, double latency,
                int64_t now_ms) {
  for (int i = 0; i < n; ++i) {
    t.Record("clicks", version, error_every > 0 && i % error_every == 0, latency, now_ms);
  }
}

TEST(TrafficControllerTest, RollbackFiresOnlyOnceBothSidesHaveMinRequests) {
  std::vector<RollbackEvent> events;
  TrafficController t([&](const RollbackEvent& e) { events.push_back(e); });
  ASSERT_TRUE(t.SetConfig(Config(CanaryYaml())).ok());

  // The canary fails 20% of its requests, stable none; judged at 100 per side.
  for (int i = 0; i < 100; ++i) {
    t.Record("clicks", 6, false, 0.01, 1000 + i);
    EXPECT_TRUE(events.empty()) << i;
    t.Record("clicks", 7, i % 5 == 0, 0.01, 1000 + i);
    if (i < 99) {
      ASSERT_TRUE(events.empty()) << "fired after " << i + 1 << " requests per side";
    }
  }
  ASSERT_EQ(events.size(), 1u);
  const RollbackEvent& e = events[0];
  EXPECT_EQ(e.model, "clicks");
  EXPECT_EQ(e.canary_version, 7);
  EXPECT_EQ(e.stable_version, 6);
  EXPECT_EQ(e.canary.requests, 100);
  EXPECT_EQ(e.canary.errors, 20);
  EXPECT_DOUBLE_EQ(e.canary.error_rate, 0.2);
  EXPECT_EQ(e.stable.requests, 100);
  EXPECT_EQ(e.stable.errors, 0);
  EXPECT_DOUBLE_EQ(e.stable.error_rate, 0);
  EXPECT_GT(e.canary.p99_seconds, 0);  // both measures are reported
  EXPECT_EQ(e.time_ms, 1099);
  EXPECT_EQ(e.webhook, "http://127.0.0.1:9/alert");
  EXPECT_EQ(e.reason,
            "model 'clicks' version 7 rolled back to version 6: canary error rate 0.2 exceeds "
            "stable's 0 by more than 0.02 over the last 60 s");

  // All traffic goes to stable; further outcomes do not fire again.
  EXPECT_EQ(CountPicks(t, "clicks", 1000), (std::map<int64_t, int>{{6, 1000}}));
  RecordMany(t, 7, 200, 2, 0.01, 1200);
  RecordMany(t, 6, 200, 0, 0.01, 1200);
  EXPECT_EQ(events.size(), 1u);

  absl::StatusOr<TrafficStatus> s = t.Status("clicks", 1300);
  ASSERT_TRUE(s.ok());
  ASSERT_EQ(s->split.size(), 1u);
  EXPECT_EQ(s->split[0].key, "stable");
  EXPECT_EQ(s->split[0].version, 6);
  EXPECT_DOUBLE_EQ(s->split[0].share, 1.0);
  EXPECT_EQ(s->canary_version, 7);
  EXPECT_EQ(s->stable_version, 6);
  ASSERT_EQ(s->rolled_back.size(), 1u);
  EXPECT_EQ(s->rolled_back[0].canary_version, 7);
  EXPECT_EQ(s->rolled_back[0].time_ms, 1099);
  ASSERT_EQ(s->windows.size(), 2u);
  EXPECT_EQ(s->windows[0], (WindowStats{6, 300, 0, 0, s->windows[0].p99_seconds}));
  EXPECT_EQ(s->windows[1].version, 7);
  EXPECT_EQ(s->windows[1].requests, 300);
  EXPECT_EQ(s->windows[1].errors, 120);

  const nlohmann::json status = TrafficStatusJson(*s);
  EXPECT_EQ(status["split"][0]["version"], 6);
  EXPECT_EQ(status["rolled_back"][0]["version"], 7);
  EXPECT_EQ(status["canary_version"], 7);
  EXPECT_EQ(status["windows"][1]["errors"], 120);

  const nlohmann::json body = RollbackEventJson(e);
  EXPECT_EQ(body["event"], "kiln.rollback");
  EXPECT_EQ(body["model"], "clicks");
  EXPECT_EQ(body["canary_version"], 7);
  EXPECT_EQ(body["stable_version"], 6);
  EXPECT_EQ(body["canary"]["errors"], 20);
  EXPECT_EQ(body["stable"]["requests"], 100);
  EXPECT_EQ(body["time_ms"], 1099);
  EXPECT_EQ(body["reason"], e.reason);
  EXPECT_EQ(body["text"], "kiln serve: " + e.reason);
}

TEST(TrafficControllerTest, NoRollbackWhenErrorRatesAreEqual) {
  int fired = 0;
  TrafficController t([&](const RollbackEvent&) { ++fired; });
  ASSERT_TRUE(t.SetConfig(Config(CanaryYaml())).ok());
  for (int i = 0; i < 1000; ++i) {  // 5% errors on both sides
    t.Record("clicks", 6, i % 20 == 0, 0.01, 5000);
    t.Record("clicks", 7, i % 20 == 3, 0.01, 5000);
  }
  // Canary 1 point worse: under the 0.02 allowed.
  RecordMany(t, 7, 100, 10, 0.01, 5000);  // canary now 60/1100
  EXPECT_EQ(fired, 0);
  EXPECT_EQ(CountPicks(t, "clicks", 2000).size(), 2u);
  EXPECT_TRUE(t.Status("clicks", 5000)->rolled_back.empty());
}

TEST(TrafficControllerTest, P99LatencyRule) {
  std::vector<RollbackEvent> events;
  TrafficController t([&](const RollbackEvent& e) { events.push_back(e); });
  ASSERT_TRUE(t.SetConfig(Config(CanaryYaml(7, "", "      max_p99_latency_ratio: 1.5\n"))).ok());

  // 12 ms against 10 ms: within 1.5x.
  RecordMany(t, 6, 500, 0, 0.010, 0);
  RecordMany(t, 7, 500, 0, 0.012, 0);
  EXPECT_TRUE(events.empty());
  absl::StatusOr<TrafficStatus> s = t.Status("clicks", 0);
  ASSERT_TRUE(s.ok());
  // p99s at bucket resolution: at most 19% above the true value.
  EXPECT_GE(s->windows[0].p99_seconds, 0.010);
  EXPECT_LT(s->windows[0].p99_seconds, 0.010 * 1.19);
  EXPECT_GE(s->windows[1].p99_seconds, 0.012);
  EXPECT_LT(s->windows[1].p99_seconds, 0.012 * 1.19);

  // A few of the canary's requests take 100 ms: its p99 jumps, its error rate does not.
  RecordMany(t, 7, 20, 0, 0.100, 100);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].canary.errors, 0);
  EXPECT_GE(events[0].canary.p99_seconds, 0.100);
  EXPECT_LT(events[0].canary.p99_seconds, 0.119);
  EXPECT_THAT(events[0].reason, HasSubstr("canary p99 latency "));
  EXPECT_THAT(events[0].reason, HasSubstr(" s is more than 1.5 times stable's "));
  EXPECT_EQ(CountPicks(t, "clicks", 500), (std::map<int64_t, int>{{6, 500}}));
}

TEST(TrafficControllerTest, RolledBackVersionStaysOutUntilANewCanary) {
  std::vector<RollbackEvent> events;
  TrafficController t([&](const RollbackEvent& e) { events.push_back(e); });
  ASSERT_TRUE(t.SetConfig(Config(CanaryYaml(7))).ok());
  RecordMany(t, 6, 100, 0, 0.01, 0);
  RecordMany(t, 7, 100, 2, 0.01, 0);
  ASSERT_EQ(events.size(), 1u);

  // A reload that still names version 7 keeps it out of the split.
  ASSERT_TRUE(t.SetConfig(Config(CanaryYaml(7))).ok());
  EXPECT_EQ(CountPicks(t, "clicks", 500), (std::map<int64_t, int>{{6, 500}}));
  EXPECT_EQ(t.Status("clicks", 0)->rolled_back.size(), 1u);

  // The canary label moves to version 8: 8 is routed; 7, still labelled `old`, is not.
  ASSERT_TRUE(t.SetConfig(Config(CanaryYaml(8, ", old: 7"))).ok());
  std::map<int64_t, int> counts = CountPicks(t, "clicks", 5000);
  EXPECT_EQ(counts.count(7), 0u);
  EXPECT_NEAR(counts[8], 500, 110);
  absl::StatusOr<TrafficStatus> s = t.Status("clicks", 0);
  ASSERT_EQ(s->rolled_back.size(), 1u);
  EXPECT_EQ(s->rolled_back[0].canary_version, 7);
  EXPECT_EQ(s->canary_version, 8);

  // Once no label names 7 it is forgotten. The new canary is judged on its own window
  // (stable's carries over): 8 is healthy, so it stays.
  ASSERT_TRUE(t.SetConfig(Config(CanaryYaml(8))).ok());
  s = t.Status("clicks", 0);
  EXPECT_TRUE(s->rolled_back.empty());
  ASSERT_EQ(s->windows.size(), 2u);
  EXPECT_EQ(s->windows[0].requests, 100);  // version 6 carried over
  EXPECT_EQ(s->windows[1].requests, 0);    // version 8 starts empty
  RecordMany(t, 8, 150, 0, 0.01, 10);
  EXPECT_EQ(events.size(), 1u);
  // ...until it fails too.
  RecordMany(t, 8, 100, 1, 0.01, 20);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[1].canary_version, 8);
  EXPECT_EQ(CountPicks(t, "clicks", 500), (std::map<int64_t, int>{{6, 500}}));
}

TEST(TrafficControllerTest, OldWindowDataExpires) {
  std::vector<RollbackEvent> events;
  TrafficController t([&](const RollbackEvent& e) { events.push_back(e); });
  std::string yaml = CanaryYaml();
  yaml.replace(yaml.find("window_seconds: 60"), 18, "window_seconds: 10");
  ASSERT_TRUE(t.SetConfig(Config(yaml)).ok());

  RecordMany(t, 6, 60, 0, 0.01, 0);
  RecordMany(t, 7, 60, 5, 0.01, 0);
  EXPECT_EQ(t.Status("clicks", 9999)->windows[1].requests, 60);
  EXPECT_EQ(t.Status("clicks", 9999)->windows[1].errors, 12);
  EXPECT_EQ(t.Status("clicks", 10000)->windows[1].requests, 0);  // 10 s later: gone
  EXPECT_EQ(t.Status("clicks", 10000)->windows[1].p99_seconds, 0);

  // 60 more per side 11 s later: 120 requests ever, but only 60 in the window.
  RecordMany(t, 6, 60, 0, 0.01, 11000);
  RecordMany(t, 7, 60, 5, 0.01, 11000);
  EXPECT_TRUE(events.empty());
  // 40 more fill the window to 100 per side.
  RecordMany(t, 6, 40, 0, 0.01, 12000);
  RecordMany(t, 7, 40, 5, 0.01, 12000);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].canary.requests, 100);
  EXPECT_EQ(events[0].stable.requests, 100);

  // A clock far ahead empties the window, and one stepping back counts as now.
  t.Record("clicks", 6, false, 0.01, 1'000'000);
  t.Record("clicks", 6, false, 0.01, 500'000);
  EXPECT_EQ(t.Status("clicks", 1'000'000)->windows[0].requests, 2);
}

TEST(TrafficControllerTest, SetConfigErrorsKeepThePreviousRouting) {
  TrafficController t;
  ASSERT_TRUE(t.SetConfig(Config(CanaryYaml())).ok());
  ServerConfig bad = Config(CanaryYaml());
  bad.models[0].traffic->split["shadow"] = 5;  // not a label, not a number
  absl::Status status = t.SetConfig(bad);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("traffic split key 'shadow'"));
  bad = Config(CanaryYaml());
  bad.models[0].rollback->canary = "9";
  status = t.SetConfig(bad);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("rollback side '9' is not a key of the traffic split"));
  EXPECT_EQ(CountPicks(t, "clicks", 2000).size(), 2u);
}

TEST(TrafficControllerTest, ConcurrentPicksRecordsAndReloads) {
  std::atomic<int> fired{0};
  TrafficController t([&](const RollbackEvent&) { ++fired; });
  ASSERT_TRUE(t.SetConfig(Config(CanaryYaml())).ok());
  std::vector<std::thread> threads;
  std::atomic<int> picked{0};
  for (int w = 0; w < 4; ++w) {
    threads.emplace_back([&, w] {
      for (int i = 0; i < 5000; ++i) {
        std::optional<int64_t> v = t.Pick("clicks", kNoHeaders);
        if (!v) continue;
        ++picked;
        t.Record("clicks", *v, *v == 7 && i % 2 == 0, 0.001 * (w + 1), i / 10);
      }
    });
  }
  threads.emplace_back([&] {
    for (int i = 0; i < 50; ++i) {
      ASSERT_TRUE(t.SetConfig(Config(CanaryYaml())).ok());
      t.Status(0);
    }
  });
  for (auto& th : threads) th.join();
  EXPECT_EQ(picked.load(), 20000);
  EXPECT_EQ(fired.load(), 1);  // once per version, whatever the interleaving
}

}  // namespace
}  // namespace kiln::serving
