#include "kiln/pipeline/schedule_spec.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "kiln/base/str.h"
#include "kiln/pipeline/pipeline_spec.h"

namespace kiln::pipeline {
namespace {

using ::testing::HasSubstr;

constexpr const char* kComponents =
    "components:\n  - {name: a, kind: command, command: [\"true\"]}\n";

absl::StatusOr<Pipeline> Parse(const std::string& schedule) {
  return ParsePipeline(StrCat("pipeline: p\n", kComponents, schedule), "/work/p/pipeline.yaml",
                       nullptr);
}

std::string Error(const std::string& schedule) {
  auto p = Parse(schedule);
  EXPECT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(p.status().message());
}

TEST(ScheduleSpecTest, FullSection) {
  auto p = Parse(
      "schedule:\n"
      "  cron: \"0 2 * * MON-FRI\"\n"
      "  timezone: Europe/Berlin\n"
      "  new_span: data/span-{SPAN}\n"
      "  poll_seconds: 0.5\n"
      "  missed: run_once\n");
  ASSERT_TRUE(p.ok()) << p.status();
  ASSERT_TRUE(p->schedule.has_value());
  const ScheduleSpec& s = *p->schedule;
  ASSERT_TRUE(s.cron.has_value());
  EXPECT_EQ(s.cron->text(), "0 2 * * MON-FRI");
  EXPECT_EQ(s.timezone, "Europe/Berlin");
  EXPECT_EQ(s.zone.name(), "Europe/Berlin");
  EXPECT_EQ(s.new_span, "/work/p/data/span-{SPAN}");
  EXPECT_EQ(s.poll_seconds, 0.5);
  EXPECT_EQ(s.missed, MissedPolicy::kRunOnce);
}

TEST(ScheduleSpecTest, Defaults) {
  auto p = Parse("schedule: {cron: \"@daily\"}\n");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->schedule->timezone, "UTC");
  EXPECT_EQ(p->schedule->zone, absl::UTCTimeZone());
  EXPECT_EQ(p->schedule->new_span, "");
  EXPECT_EQ(p->schedule->poll_seconds, 30);
  EXPECT_EQ(p->schedule->missed, MissedPolicy::kSkip);
  // Absolute span patterns are kept as written.
  p = Parse("schedule: {new_span: \"/mnt/in/day={SPAN}\"}\n");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_FALSE(p->schedule->cron.has_value());
  EXPECT_EQ(p->schedule->new_span, "/mnt/in/day={SPAN}");
  // No schedule: no section.
  p = Parse("");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_FALSE(p->schedule.has_value());
}

TEST(ScheduleSpecTest, ErrorsNameFileLineAndWhat) {
  EXPECT_EQ(Error("schedule:\n  cron: \"0 25 * * *\"\n"),
            "/work/p/pipeline.yaml:5: schedule.cron: cron '0 25 * * *': hour: '25' is out of "
            "range 0-23");
  EXPECT_EQ(Error("schedule:\n  cron: \"@daily\"\n  timezone: Mars/Base\n"),
            "/work/p/pipeline.yaml:6: schedule.timezone: unknown time zone 'Mars/Base': an IANA "
            "name such as UTC, Europe/Berlin or America/New_York (see /usr/share/zoneinfo)");
  EXPECT_EQ(Error("schedule:\n  cron: \"@daily\"\n  when: 2am\n"),
            "/work/p/pipeline.yaml:6: schedule: unknown key 'when'; keys: cron, timezone, "
            "new_span, poll_seconds, missed");
  EXPECT_EQ(Error("schedule:\n  timezone: UTC\n"),
            "/work/p/pipeline.yaml:5: schedule needs cron: (times) or new_span: (a data "
            "trigger), or both");
  EXPECT_THAT(Error("schedule: daily\n"), HasSubstr(":4: schedule is a map"));
  EXPECT_THAT(Error("schedule: {new_span: data/span}\n"),
              HasSubstr("schedule.new_span: 'data/span' names span directories with one {SPAN}"));
  EXPECT_THAT(Error("schedule: {new_span: \"data/{SPAN}/x\"}\n"),
              HasSubstr("in its last component"));
  EXPECT_THAT(Error("schedule: {new_span: \"d/{SPAN}-{SPAN}\"}\n"), HasSubstr("one {SPAN}"));
  EXPECT_THAT(Error("schedule: {cron: \"@daily\", poll_seconds: 0}\n"),
              HasSubstr("schedule.poll_seconds is a number of seconds in [0.05, 86400]"));
  EXPECT_THAT(Error("schedule: {cron: \"@daily\", poll_seconds: soon}\n"),
              HasSubstr("schedule.poll_seconds is a number"));
  EXPECT_THAT(Error("schedule: {cron: \"@daily\", missed: catch_up}\n"),
              HasSubstr("schedule.missed is skip or run_once, not 'catch_up'"));
  EXPECT_THAT(Error("schedule: {cron: [0, 2]}\n"), HasSubstr("schedule.cron is a single value"));
}

TEST(ScheduleSpecTest, PolicyNames) {
  EXPECT_EQ(MissedPolicyName(MissedPolicy::kSkip), "skip");
  EXPECT_EQ(MissedPolicyName(MissedPolicy::kRunOnce), "run_once");
}

}  // namespace
}  // namespace kiln::pipeline
