#include "kiln/pipeline/cron.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace kiln::pipeline {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

absl::Time Iso(const std::string& s) {
  absl::Time t;
  std::string err;
  EXPECT_TRUE(absl::ParseTime(absl::RFC3339_full, s, &t, &err)) << s << ": " << err;
  return t;
}

// The next `n` fire times of `expr` in `zone` strictly after `after`, as ISO-8601.
std::vector<std::string> NextN(const std::string& expr, const std::string& zone_name,
                               const std::string& after, int n) {
  auto e = CronExpr::Parse(expr);
  EXPECT_TRUE(e.ok()) << e.status();
  if (!e.ok()) return {};
  auto zone = LoadZone(zone_name);
  EXPECT_TRUE(zone.ok()) << zone.status();
  std::vector<std::string> out;
  absl::Time t = Iso(after);
  for (int i = 0; i < n; ++i) {
    t = e->Next(t, *zone);
    out.push_back(FormatIsoTime(t, *zone));
  }
  return out;
}

std::string ParseError(const std::string& expr) {
  auto e = CronExpr::Parse(expr);
  EXPECT_FALSE(e.ok()) << expr;
  EXPECT_EQ(e.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(e.status().message());
}

TEST(CronTest, StepsEveryQuarterHourStrictlyAfter) {
  EXPECT_THAT(NextN("*/15 * * * *", "UTC", "2024-01-01T00:07:30Z", 3),
              ElementsAre("2024-01-01T00:15:00+00:00", "2024-01-01T00:30:00+00:00",
                          "2024-01-01T00:45:00+00:00"));
  // A fire time itself is not "after" itself.
  EXPECT_THAT(NextN("*/15 * * * *", "UTC", "2024-01-01T00:15:00Z", 1),
              ElementsAre("2024-01-01T00:30:00+00:00"));
}

TEST(CronTest, ListsRangesAndSteppedRanges) {
  EXPECT_THAT(NextN("1-30/10,45 9 * * *", "UTC", "2024-05-01T00:00:00Z", 5),
              ElementsAre("2024-05-01T09:01:00+00:00", "2024-05-01T09:11:00+00:00",
                          "2024-05-01T09:21:00+00:00", "2024-05-01T09:45:00+00:00",
                          "2024-05-02T09:01:00+00:00"));
  // N/S runs from N to the end of the field.
  EXPECT_THAT(NextN("5/20 * * * *", "UTC", "2024-01-01T00:00:00Z", 4),
              ElementsAre("2024-01-01T00:05:00+00:00", "2024-01-01T00:25:00+00:00",
                          "2024-01-01T00:45:00+00:00", "2024-01-01T01:05:00+00:00"));
}

TEST(CronTest, NamesAnyCaseAndSundayIsZeroAndSeven) {
  // 2024-07-01 is a Monday.
  EXPECT_THAT(NextN("0 9 * jul,Aug mon-FRI", "UTC", "2024-07-04T12:00:00Z", 3),
              ElementsAre("2024-07-05T09:00:00+00:00", "2024-07-08T09:00:00+00:00",
                          "2024-07-09T09:00:00+00:00"));
  const auto sundays = NextN("0 0 * * 0", "UTC", "2024-07-01T00:00:00Z", 2);
  EXPECT_THAT(sundays, ElementsAre("2024-07-07T00:00:00+00:00", "2024-07-14T00:00:00+00:00"));
  EXPECT_EQ(NextN("0 0 * * 7", "UTC", "2024-07-01T00:00:00Z", 2), sundays);
  EXPECT_EQ(NextN("0 0 * * sun", "UTC", "2024-07-01T00:00:00Z", 2), sundays);
  // 7/S runs from Sunday (7) to the end of the week: Sunday alone.
  EXPECT_EQ(NextN("0 0 * * 7/2", "UTC", "2024-07-01T00:00:00Z", 2), sundays);
  // 5-7: Friday, Saturday, Sunday.
  EXPECT_THAT(NextN("0 0 * * 5-7", "UTC", "2024-07-01T00:00:00Z", 4),
              ElementsAre("2024-07-05T00:00:00+00:00", "2024-07-06T00:00:00+00:00",
                          "2024-07-07T00:00:00+00:00", "2024-07-12T00:00:00+00:00"));
}

TEST(CronTest, BothDayFieldsRestrictedMatchEither) {
  // Every 13th and every Friday (2024-01-05 is a Friday).
  EXPECT_THAT(NextN("0 0 13 * FRI", "UTC", "2024-01-01T00:00:00Z", 5),
              ElementsAre("2024-01-05T00:00:00+00:00", "2024-01-12T00:00:00+00:00",
                          "2024-01-13T00:00:00+00:00", "2024-01-19T00:00:00+00:00",
                          "2024-01-26T00:00:00+00:00"));
  // `*/1` is not `*`: both restricted, so every day matches.
  EXPECT_THAT(NextN("0 0 1 * */1", "UTC", "2024-01-01T00:00:00Z", 2),
              ElementsAre("2024-01-02T00:00:00+00:00", "2024-01-03T00:00:00+00:00"));
}

TEST(CronTest, OneDayFieldStarLetsTheOtherDecide) {
  EXPECT_THAT(NextN("0 0 1 * *", "UTC", "2024-01-01T00:00:00Z", 2),
              ElementsAre("2024-02-01T00:00:00+00:00", "2024-03-01T00:00:00+00:00"));
  EXPECT_THAT(NextN("0 0 * * MON", "UTC", "2024-01-01T00:00:00Z", 2),
              ElementsAre("2024-01-08T00:00:00+00:00", "2024-01-15T00:00:00+00:00"));
}

TEST(CronTest, FebruaryTwentyNinthOnlyInLeapYears) {
  EXPECT_THAT(NextN("0 0 29 2 *", "UTC", "2024-03-01T00:00:00Z", 2),
              ElementsAre("2028-02-29T00:00:00+00:00", "2032-02-29T00:00:00+00:00"));
  // 2100 is not a leap year: eight years between two Feb 29ths.
  EXPECT_THAT(NextN("0 0 29 2 *", "UTC", "2096-03-01T00:00:00Z", 1),
              ElementsAre("2104-02-29T00:00:00+00:00"));
  // Day 31 skips the months without one.
  EXPECT_THAT(NextN("0 0 31 * *", "UTC", "2024-01-31T00:00:00Z", 2),
              ElementsAre("2024-03-31T00:00:00+00:00", "2024-05-31T00:00:00+00:00"));
}

TEST(CronTest, ZoneCivilTime) {
  EXPECT_THAT(NextN("0 2 * * *", "Europe/Berlin", "2024-01-10T12:00:00Z", 2),
              ElementsAre("2024-01-11T02:00:00+01:00", "2024-01-12T02:00:00+01:00"));
  EXPECT_THAT(NextN("30 9 * * *", "Asia/Kolkata", "2024-01-10T12:00:00Z", 1),
              ElementsAre("2024-01-11T09:30:00+05:30"));
}

TEST(CronTest, SpringForwardGapFiresAtTheFirstInstantAfterIt) {
  // 2024-03-10, America/New_York: 02:00 EST jumps to 03:00 EDT.
  EXPECT_THAT(NextN("30 2 * * *", "America/New_York", "2024-03-09T12:00:00-05:00", 3),
              ElementsAre("2024-03-10T03:00:00-04:00", "2024-03-11T02:30:00-04:00",
                          "2024-03-12T02:30:00-04:00"));
  EXPECT_THAT(NextN("*/30 * * * *", "America/New_York", "2024-03-10T01:00:00-05:00", 4),
              ElementsAre("2024-03-10T01:30:00-05:00", "2024-03-10T03:00:00-04:00",
                          "2024-03-10T03:30:00-04:00", "2024-03-10T04:00:00-04:00"));
  // Four skipped civil times are one firing.
  EXPECT_THAT(NextN("*/15 2 * * *", "America/New_York", "2024-03-10T00:00:00-05:00", 2),
              ElementsAre("2024-03-10T03:00:00-04:00", "2024-03-11T02:00:00-04:00"));
  // Europe/Berlin, 2024-03-31: 02:00 CET jumps to 03:00 CEST.
  EXPECT_THAT(NextN("0 2 * * *", "Europe/Berlin", "2024-03-30T12:00:00+01:00", 2),
              ElementsAre("2024-03-31T03:00:00+02:00", "2024-04-01T02:00:00+02:00"));
}

TEST(CronTest, FallBackRepeatedHourFiresOnce) {
  // 2024-11-03, America/New_York: 02:00 EDT falls back to 01:00 EST.
  EXPECT_THAT(NextN("30 1 * * *", "America/New_York", "2024-11-02T12:00:00-04:00", 2),
              ElementsAre("2024-11-03T01:30:00-04:00", "2024-11-04T01:30:00-05:00"));
  EXPECT_THAT(NextN("0 * * * *", "America/New_York", "2024-11-03T00:00:00-04:00", 3),
              ElementsAre("2024-11-03T01:00:00-04:00", "2024-11-03T02:00:00-05:00",
                          "2024-11-03T03:00:00-05:00"));
  // From inside the second 01:xx, the civil times already fired are not fired again.
  EXPECT_THAT(NextN("*/15 * * * *", "America/New_York", "2024-11-03T01:20:00-05:00", 1),
              ElementsAre("2024-11-03T02:00:00-05:00"));
}

TEST(CronTest, Macros) {
  EXPECT_THAT(NextN("@hourly", "UTC", "2024-01-01T00:30:00Z", 1),
              ElementsAre("2024-01-01T01:00:00+00:00"));
  EXPECT_THAT(NextN("@daily", "UTC", "2024-01-01T00:30:00Z", 1),
              ElementsAre("2024-01-02T00:00:00+00:00"));
  EXPECT_THAT(NextN("@weekly", "UTC", "2024-01-01T00:30:00Z", 1),
              ElementsAre("2024-01-07T00:00:00+00:00"));
  EXPECT_THAT(NextN("@monthly", "UTC", "2024-01-01T00:30:00Z", 1),
              ElementsAre("2024-02-01T00:00:00+00:00"));
  EXPECT_THAT(NextN("@yearly", "UTC", "2024-01-01T00:30:00Z", 1),
              ElementsAre("2025-01-01T00:00:00+00:00"));
  EXPECT_EQ(CronExpr::Parse("@daily")->text(), "@daily");
}

TEST(CronTest, ErrorsNameTheFieldAndTheToken) {
  EXPECT_EQ(ParseError("0 25 * * *"), "cron '0 25 * * *': hour: '25' is out of range 0-23");
  EXPECT_EQ(ParseError("60 * * * *"), "cron '60 * * * *': minute: '60' is out of range 0-59");
  EXPECT_THAT(ParseError("0 0 * * MONX"), HasSubstr("day-of-week: 'MONX' is not a number or a "
                                                    "name (SUN..SAT)"));
  EXPECT_THAT(ParseError("0 0 * FOO *"), HasSubstr("month: 'FOO' is not a number or a name"));
  EXPECT_THAT(ParseError("*/0 * * * *"), HasSubstr("minute: '*/0' has a bad step"));
  EXPECT_THAT(ParseError("*/x * * * *"), HasSubstr("minute: '*/x' has a bad step"));
  EXPECT_THAT(ParseError("0 5-1 * * *"),
              HasSubstr("hour: '5-1' is a range whose start is after its end"));
  EXPECT_THAT(ParseError("0 0 0 * *"), HasSubstr("day-of-month: '0' is out of range 1-31"));
  EXPECT_THAT(ParseError("0 0 * * 8"), HasSubstr("day-of-week: '8' is out of range 0-7"));
  EXPECT_THAT(ParseError("1,,2 * * * *"), HasSubstr("minute: empty list element in '1,,2'"));
  EXPECT_THAT(ParseError("0 0 * * *-5"), HasSubstr("day-of-week: '*-5' is not a number"));
  EXPECT_THAT(ParseError("1 2 3 4"), HasSubstr("has 4 fields; cron takes 5"));
  EXPECT_THAT(ParseError(""), HasSubstr("has 0 fields"));
  EXPECT_THAT(ParseError("@reboot"), HasSubstr("unknown macro '@reboot'"));
  EXPECT_THAT(ParseError("0 0 30 2 *"), HasSubstr("day-of-month '30' never occurs in month '2'"));
  EXPECT_THAT(ParseError("0 0 31 APR,jun *"), HasSubstr("never occurs"));
  // With a weekday too, the OR rule makes it fire on Mondays.
  EXPECT_TRUE(CronExpr::Parse("0 0 30 2 MON").ok());
}

TEST(CronTest, UnknownZone) {
  auto zone = LoadZone("Mars/Olympus_Mons");
  ASSERT_FALSE(zone.ok());
  EXPECT_THAT(std::string(zone.status().message()),
              HasSubstr("unknown time zone 'Mars/Olympus_Mons'"));
}

}  // namespace
}  // namespace kiln::pipeline
