#include "kiln/pipeline/scheduler.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "kiln/base/str.h"
#include "kiln/testing/temp_dir.h"

namespace kiln::pipeline {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

absl::Time Iso(const std::string& s) {
  absl::Time t;
  std::string err;
  EXPECT_TRUE(absl::ParseTime(absl::RFC3339_full, s, &t, &err)) << s << ": " << err;
  return t;
}

std::string Utc(absl::Time t) { return FormatIsoTime(t, absl::UTCTimeZone()); }

TEST(ScheduleStateTest, RoundTripsThroughTheFile) {
  testing::TempDir dir;
  const std::string path = dir.File("schedule_state.json");
  auto empty = ReadScheduleState(Env::Default(), path);
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_FALSE(empty->last_fire.has_value());
  EXPECT_FALSE(empty->newest_span.has_value());
  EXPECT_FALSE(empty->catch_up);

  ScheduleState s;
  s.last_fire = Iso("2024-03-10T07:00:00Z");
  s.newest_span = 12;
  s.catch_up = true;
  s.last_run_id = "20240310-070000-ab12";
  s.last_run_trigger = "cron 2024-03-10T03:00:00-04:00";
  s.last_run_started = Iso("2024-03-10T07:00:01Z");
  s.last_run_exit_code = 0;
  ASSERT_TRUE(WriteScheduleState(Env::Default(), path, s).ok());
  EXPECT_THAT(testing::ReadAll(path), HasSubstr("\"last_fire\": \"2024-03-10T07:00:00+00:00\""));
  auto back = ReadScheduleState(Env::Default(), path);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->last_fire, s.last_fire);
  EXPECT_EQ(back->newest_span, 12);
  EXPECT_TRUE(back->catch_up);
  EXPECT_EQ(back->last_run_id, s.last_run_id);
  EXPECT_EQ(back->last_run_trigger, s.last_run_trigger);
  EXPECT_EQ(back->last_run_started, s.last_run_started);
  EXPECT_EQ(back->last_run_exit_code, 0);
}

TEST(ScheduleStateTest, AcceptsZuluAndNullsRejectsGarbage) {
  testing::TempDir dir;
  auto s = ReadScheduleState(
      Env::Default(),
      dir.Write("a.json", R"({"last_fire": "2020-01-01T00:00:00Z", "newest_span": null})"));
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->last_fire, Iso("2020-01-01T00:00:00+00:00"));
  EXPECT_FALSE(s->newest_span.has_value());
  for (const char* bad : {"[1]", "{\"last_fire\": \"yesterday\"}", "{\"newest_span\": \"3\"}",
                          "{\"catch_up\": 1}", "not json"}) {
    auto r = ReadScheduleState(Env::Default(), dir.Write("b.json", bad));
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss);
    EXPECT_THAT(std::string(r.status().message()), HasSubstr("delete it to start afresh"));
  }
}

class ScheduleCronCheckTest : public ::testing::Test {
 protected:
  CronCheck Check(const std::string& expr, const std::string& last_fire,
                  const std::string& window_start, const std::string& now) {
    auto cron = CronExpr::Parse(expr);
    EXPECT_TRUE(cron.ok());
    return CheckCron(*cron, absl::UTCTimeZone(), Iso(last_fire), Iso(window_start), Iso(now));
  }
};

TEST_F(ScheduleCronCheckTest, OnTimeFireIsDue) {
  const CronCheck c =
      Check("0 * * * *", "2024-01-01T01:00:00Z", "2024-01-01T01:59:10Z", "2024-01-01T02:00:10Z");
  ASSERT_TRUE(c.due.has_value());
  EXPECT_EQ(Utc(*c.due), "2024-01-01T02:00:00+00:00");
  EXPECT_EQ(c.missed, 0);
  EXPECT_EQ(Utc(c.handled_through), "2024-01-01T02:00:00+00:00");
  EXPECT_EQ(Utc(c.next), "2024-01-01T03:00:00+00:00");
}

TEST_F(ScheduleCronCheckTest, NothingDueBeforeTheNextFire) {
  const CronCheck c =
      Check("0 * * * *", "2024-01-01T02:00:00Z", "2024-01-01T02:29:00Z", "2024-01-01T02:30:00Z");
  EXPECT_FALSE(c.due.has_value());
  EXPECT_EQ(c.missed, 0);
  EXPECT_EQ(Utc(c.handled_through), "2024-01-01T02:00:00+00:00");
  EXPECT_EQ(Utc(c.next), "2024-01-01T03:00:00+00:00");
}

TEST_F(ScheduleCronCheckTest, FiresWhileDownAreMissed) {
  // Down from 01:30 to 05:20: 02:00, 03:00, 04:00 and 05:00 passed; none is on time.
  const CronCheck c =
      Check("0 * * * *", "2024-01-01T01:00:00Z", "2024-01-01T05:19:00Z", "2024-01-01T05:20:00Z");
  EXPECT_FALSE(c.due.has_value());
  EXPECT_EQ(c.missed, 4);
  EXPECT_EQ(Utc(*c.first_missed), "2024-01-01T02:00:00+00:00");
  EXPECT_EQ(Utc(*c.last_missed), "2024-01-01T05:00:00+00:00");
  EXPECT_EQ(Utc(c.handled_through), "2024-01-01T05:00:00+00:00");
  EXPECT_EQ(Utc(c.next), "2024-01-01T06:00:00+00:00");
}

TEST_F(ScheduleCronCheckTest, MissedAndDueTogether) {
  // A run lasted from 02:00 to 04:00:30: 03:00 and 04:00 passed during it (the window
  // starts at its end), so both are missed though 04:00 is less than a minute old.
  CronCheck c =
      Check("0 * * * *", "2024-01-01T02:00:00Z", "2024-01-01T04:00:30Z", "2024-01-01T04:00:31Z");
  EXPECT_FALSE(c.due.has_value());
  EXPECT_EQ(c.missed, 2);
  // Down until 05:00:20: 03:00 and 04:00 missed, 05:00 on time.
  c = Check("0 * * * *", "2024-01-01T02:00:00Z", "2024-01-01T04:59:20Z", "2024-01-01T05:00:20Z");
  EXPECT_EQ(Utc(*c.due), "2024-01-01T05:00:00+00:00");
  EXPECT_EQ(c.missed, 2);
  EXPECT_EQ(Utc(*c.last_missed), "2024-01-01T04:00:00+00:00");
  EXPECT_EQ(Utc(c.handled_through), "2024-01-01T05:00:00+00:00");
}

TEST_F(ScheduleCronCheckTest, TooManyToCountStillEnds) {
  const CronCheck c =
      Check("* * * * *", "2000-01-01T00:00:00Z", "2023-12-31T23:59:30Z", "2024-01-01T00:00:30Z");
  EXPECT_EQ(c.missed, CronCheck::kMaxCounted);
  EXPECT_FALSE(c.last_missed.has_value());
  EXPECT_EQ(Utc(*c.first_missed), "2000-01-01T00:01:00+00:00");
  EXPECT_EQ(Utc(*c.due), "2024-01-01T00:00:00+00:00");
  EXPECT_EQ(Utc(c.handled_through), "2024-01-01T00:00:00+00:00");
}

class ScheduleSpanTest : public ::testing::Test {
 protected:
  testing::TempDir dir_;
  SpanWatcher watcher_{Env::Default(), dir_.File("data/span-{SPAN}")};
};

TEST_F(ScheduleSpanTest, ListsOnlyMatchingDirectories) {
  auto none = watcher_.List();
  ASSERT_TRUE(none.ok()) << none.status();  // no data/ yet
  EXPECT_TRUE(none->empty());
  dir_.Write("data/span-3/a.csv", "x\n");
  dir_.Write("data/span-12/a.csv", "x\n");
  dir_.Write("data/span-7", "a file, not a span directory");
  dir_.Write("data/span-x/a.csv", "x\n");
  dir_.Write("data/other-9/a.csv", "x\n");
  auto spans = watcher_.List();
  ASSERT_TRUE(spans.ok()) << spans.status();
  EXPECT_THAT(*spans,
              ElementsAre(Pair(3, dir_.File("data/span-3")), Pair(12, dir_.File("data/span-12"))));
}

TEST_F(ScheduleSpanTest, NewSpanIsReadyWhenUnchangedAcrossTwoPolls) {
  dir_.Write("data/span-1/a.csv", "x\n");
  // Nothing newer than span 1.
  EXPECT_EQ(*watcher_.Poll(1), std::nullopt);
  std::filesystem::create_directories(dir_.File("data/span-2"));
  EXPECT_EQ(*watcher_.Poll(1), std::nullopt);  // empty: not ready
  EXPECT_EQ(*watcher_.Poll(1), std::nullopt);  // still empty
  dir_.Write("data/span-2/a.csv", "x\n");
  EXPECT_EQ(*watcher_.Poll(1), std::nullopt);  // changed since the last poll
  EXPECT_EQ(watcher_.pending(), 2);
  dir_.Write("data/span-2/a.csv", "x\ny\n");
  EXPECT_EQ(*watcher_.Poll(1), std::nullopt);  // grew
  dir_.Write("data/span-2/sub/b.csv", "z\n");
  EXPECT_EQ(*watcher_.Poll(1), std::nullopt);  // a new file in a subdirectory
  EXPECT_EQ(*watcher_.Poll(1), std::optional<int64_t>(2));
  EXPECT_EQ(watcher_.pending(), -1);
  // Once seen, it is not new.
  EXPECT_EQ(*watcher_.Poll(2), std::nullopt);
  // Nothing seen yet: any span is new.
  EXPECT_EQ(*watcher_.Poll(std::nullopt), std::nullopt);
  EXPECT_EQ(*watcher_.Poll(std::nullopt), std::optional<int64_t>(2));
}

TEST_F(ScheduleSpanTest, NewestWinsOverAnOlderCandidate) {
  dir_.Write("data/span-1/a.csv", "x\n");
  dir_.Write("data/span-2/a.csv", "x\n");
  EXPECT_EQ(*watcher_.Poll(1), std::nullopt);
  dir_.Write("data/span-3/a.csv", "x\n");
  EXPECT_EQ(*watcher_.Poll(1), std::nullopt);  // a new candidate starts over
  EXPECT_EQ(watcher_.pending(), 3);
  EXPECT_EQ(*watcher_.Poll(1), std::optional<int64_t>(3));
}

}  // namespace
}  // namespace kiln::pipeline
