// A 5-field cron expression (minute hour day-of-month month day-of-week) and the times it
// fires in a time zone. Thread-safe: a parsed CronExpr is immutable.
//
// Syntax, as crontab(5): each field is a comma-separated list of `*`, `N`, `N-M`, each
// optionally stepped by `/S` (`*/15`, `1-30/5`; `N/S` is `N-MAX/S`). Months may be
// named JAN..DEC and weekdays SUN..SAT (any case, also inside ranges: MON-FRI); weekday 0
// and 7 are both Sunday. Macros: @hourly, @daily (= @midnight), @weekly, @monthly,
// @yearly (= @annually).
//
// Days: when both day-of-month and day-of-week are something other than `*`, a day
// matches when EITHER matches (`0 0 13 * FRI`: every 13th and every Friday); when one of
// them is `*`, the other alone decides. (As croniter and POSIX; cronie also treats `*/N`
// as `*` here, kiln does not.)
//
// Time zones: fields are matched against civil (wall-clock) time in the zone. Across DST:
//  - a civil time skipped by a spring-forward gap fires once, at the first instant after
//    the gap (`30 2 * * *` in America/New_York on 2024-03-10 fires at 03:00 EDT), as
//    cronie does; several skipped civil times (`*/15 2 * * *`) are that one firing;
//  - a civil time repeated by a fall-back fires once, at its first occurrence
//    (`30 1 * * *` on 2024-11-03 fires at 01:30 EDT, not again at 01:30 EST). So
//    `0 * * * *` fires at 01:00 EDT and next at 02:00 EST, two hours later.
#ifndef KILN_PIPELINE_CRON_H_
#define KILN_PIPELINE_CRON_H_

#include <bitset>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace kiln::pipeline {

class CronExpr {
 public:
  // Errors: kInvalidArgument naming the field and the bad token, e.g.
  // "cron '0 25 * * *': hour: '25' is out of range 0-23"; an expression that can never
  // fire (`0 0 30 2 *`) is an error too.
  static absl::StatusOr<CronExpr> Parse(std::string_view text);

  // The first time strictly after `after` that the expression matches in `zone` (see
  // the DST rules above). Always found within 8 years for an expression Parse accepted.
  absl::Time Next(absl::Time after, const absl::TimeZone& zone) const;

  // Whether civil day `day` matches the day fields and the month.
  bool MatchesDay(absl::CivilDay day) const;

  const std::string& text() const { return text_; }

 private:
  CronExpr() = default;

  std::string text_;
  std::bitset<60> minutes_;
  std::bitset<24> hours_;
  std::bitset<32> days_;     // 1..31
  std::bitset<13> months_;   // 1..12
  std::bitset<7> weekdays_;  // 0 (Sunday)..6
  bool days_star_ = false;   // day-of-month is `*`
  bool weekdays_star_ = false;
};

// "2024-03-10T03:00:00-04:00": ISO-8601 with the zone's offset at `t`.
std::string FormatIsoTime(absl::Time t, const absl::TimeZone& zone);

// Loads an IANA zone ("Europe/Berlin", "UTC") from the system's tzdata.
// Errors: kInvalidArgument naming the zone.
absl::StatusOr<absl::TimeZone> LoadZone(const std::string& name);

}  // namespace kiln::pipeline

#endif  // KILN_PIPELINE_CRON_H_
