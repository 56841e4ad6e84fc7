#include "kiln/pipeline/cron.h"

#include <algorithm>
#include <cctype>
#include <vector>

#include "kiln/base/status.h"
#include "kiln/base/str.h"

namespace kiln::pipeline {
namespace {

constexpr const char* kMonthNames[] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                       "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
constexpr const char* kWeekdayNames[] = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"};

struct Field {
  const char* name;
  int lo;
  int hi;  // day-of-week: 7, read as Sunday
  const char* const* names = nullptr;
  int names_size = 0;
  int first_named = 0;  // the value of names[0]
};

constexpr Field kFields[] = {
    {"minute", 0, 59},
    {"hour", 0, 23},
    {"day-of-month", 1, 31},
    {"month", 1, 12, kMonthNames, 12, 1},
    {"day-of-week", 0, 7, kWeekdayNames, 7, 0},
};

std::vector<std::string_view> Split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (true) {
    const size_t end = s.find(sep, start);
    out.push_back(s.substr(start, end == std::string_view::npos ? s.npos : end - start));
    if (end == std::string_view::npos) return out;
    start = end + 1;
  }
}

// A whole number of at most 9 digits, or -1.
int Number(std::string_view s) {
  if (s.empty() || s.size() > 9) return -1;
  int v = 0;
  for (char c : s) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return -1;
    v = v * 10 + (c - '0');
  }
  return v;
}

// A number or, for fields with names, a 3-letter name (any case); -1 when neither.
int Value(std::string_view s, const Field& f) {
  if (const int v = Number(s); v >= 0) return v;
  for (int i = 0; i < f.names_size; ++i) {
    const std::string_view name = f.names[i];
    if (s.size() == name.size() && std::equal(s.begin(), s.end(), name.begin(), [](char a, char b) {
          return std::toupper(static_cast<unsigned char>(a)) == b;
        })) {
      return f.first_named + i;
    }
  }
  return -1;
}

int DaysInMonth(int month) {  // the most a month can have (February: 29)
  static constexpr int kDays[] = {0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return kDays[month];
}

}  // namespace

absl::StatusOr<CronExpr> CronExpr::Parse(std::string_view text) {
  CronExpr e;
  e.text_ = std::string(text);
  auto bad = [&](std::string_view what) {
    return absl::InvalidArgumentError(StrCat("cron '", e.text_, "': ", what));
  };
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front())))
    text.remove_prefix(1);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back())))
    text.remove_suffix(1);
  if (!text.empty() && text.front() == '@') {
    static constexpr std::pair<const char*, const char*> kMacros[] = {
        {"@hourly", "0 * * * *"},   {"@daily", "0 0 * * *"},   {"@midnight", "0 0 * * *"},
        {"@weekly", "0 0 * * 0"},   {"@monthly", "0 0 1 * *"}, {"@yearly", "0 0 1 1 *"},
        {"@annually", "0 0 1 1 *"},
    };
    for (const auto& [macro, expansion] : kMacros) {
      if (text == macro) {
        KILN_ASSIGN_OR_RETURN(CronExpr expanded, Parse(expansion));
        expanded.text_ = e.text_;
        return expanded;
      }
    }
    return bad(StrCat("unknown macro '", text,
                      "'; macros: @hourly, @daily, @midnight, @weekly, @monthly, @yearly, "
                      "@annually"));
  }
  std::vector<std::string_view> fields;
  for (size_t i = 0; i < text.size();) {
    if (std::isspace(static_cast<unsigned char>(text[i]))) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < text.size() && !std::isspace(static_cast<unsigned char>(text[j]))) ++j;
    fields.push_back(text.substr(i, j - i));
    i = j;
  }
  if (fields.size() != 5) {
    return bad(StrCat("has ", fields.size(),
                      " fields; cron takes 5: minute hour day-of-month month day-of-week "
                      "(or a macro such as @daily)"));
  }
  for (int fi = 0; fi < 5; ++fi) {
    const Field& f = kFields[fi];
    std::vector<bool> set(f.hi + 1, false);
    for (std::string_view token : Split(fields[fi], ',')) {
      auto bad_token = [&](std::string_view why) {
        return bad(StrCat(f.name, ": '", token, "' ", why));
      };
      if (token.empty()) return bad(StrCat(f.name, ": empty list element in '", fields[fi], "'"));
      std::string_view base = token;
      int step = 1;
      const size_t slash = token.find('/');
      if (slash != std::string_view::npos) {
        base = token.substr(0, slash);
        const std::string_view s = token.substr(slash + 1);
        const int span = (fi == 4 ? 6 : f.hi) - f.lo + 1;
        step = Number(s);
        if (step < 1 || step > span) {
          return bad_token(StrCat("has a bad step: '/", s, "' is a whole number 1-", span));
        }
      }
      int lo, hi;
      if (base == "*") {
        lo = f.lo;
        hi = fi == 4 ? 6 : f.hi;
      } else {
        const size_t dash = base.find('-');
        const std::string_view first = base.substr(0, dash);
        lo = Value(first, f);
        if (lo < 0) {
          return bad_token(f.names ? StrCat("is not a number or a name (", f.names[0], "..",
                                            f.names[f.names_size - 1], ")")
                                   : std::string("is not a number"));
        }
        hi = lo;
        if (dash != std::string_view::npos) {
          hi = Value(base.substr(dash + 1), f);
          if (hi < 0) return bad_token("is not a range N-M");
          if (hi < lo) return bad_token("is a range whose start is after its end");
        } else if (slash != std::string_view::npos) {
          hi = fi == 4 ? 6 : f.hi;              // N/S: from N to the field's end
          if (fi == 4 && lo == 7) lo = hi = 0;  // 7/S: Sunday, as 7 alone is
        }
        if (lo < f.lo || hi > f.hi) {
          return bad_token(StrCat("is out of range ", f.lo, "-", f.hi));
        }
      }
      for (int v = lo; v <= hi; v += step) set[v] = true;
    }
    switch (fi) {
      case 0:
        for (int v = 0; v < 60; ++v) e.minutes_[v] = set[v];
        break;
      case 1:
        for (int v = 0; v < 24; ++v) e.hours_[v] = set[v];
        break;
      case 2:
        for (int v = 1; v <= 31; ++v) e.days_[v] = set[v];
        e.days_star_ = fields[fi] == "*";
        break;
      case 3:
        for (int v = 1; v <= 12; ++v) e.months_[v] = set[v];
        break;
      case 4:
        for (int v = 0; v < 7; ++v) e.weekdays_[v] = set[v];
        if (set[7]) e.weekdays_[0] = true;
        e.weekdays_star_ = fields[fi] == "*";
        break;
    }
  }
  // Only the day of the month can make an expression that never fires (`0 0 30 2 *`):
  // a weekday restriction matches some day of every month.
  if (e.weekdays_star_) {
    bool possible = false;
    for (int m = 1; m <= 12; ++m) {
      for (int d = 1; d <= DaysInMonth(m); ++d) possible |= e.months_[m] && e.days_[d];
    }
    if (!possible) {
      return bad(StrCat("day-of-month '", fields[2], "' never occurs in month '", fields[3], "'"));
    }
  }
  return e;
}

bool CronExpr::MatchesDay(absl::CivilDay day) const {
  if (!months_[day.month()]) return false;
  const bool dom = days_[day.day()];
  // absl counts Monday as 0; cron, Sunday.
  const bool dow = weekdays_[(static_cast<int>(absl::GetWeekday(day)) + 1) % 7];
  if (days_star_ || weekdays_star_) return dom && dow;  // `*` has every bit set
  return dom || dow;
}

absl::Time CronExpr::Next(absl::Time after, const absl::TimeZone& zone) const {
  absl::CivilMinute c = absl::CivilMinute(zone.At(after).cs) + 1;
  // Feb 29 of a leap year is at most 8 years away (2096 -> 2104).
  const absl::CivilYear limit = absl::CivilYear(c) + 9;
  while (absl::CivilYear(c) < limit) {
    if (!months_[c.month()]) {
      c = absl::CivilMinute(absl::CivilMonth(c) + 1);
    } else if (!MatchesDay(absl::CivilDay(c))) {
      c = absl::CivilMinute(absl::CivilDay(c) + 1);
    } else if (!hours_[c.hour()]) {
      c = absl::CivilMinute(absl::CivilHour(c) + 1);
    } else if (!minutes_[c.minute()]) {
      c += 1;
    } else {
      const absl::TimeZone::TimeInfo ti = zone.At(absl::CivilSecond(c));
      // Skipped: the first instant after the gap. Repeated: the first occurrence only.
      const absl::Time t = ti.kind == absl::TimeZone::TimeInfo::SKIPPED ? ti.trans : ti.pre;
      if (t > after) return t;
      c += 1;
    }
  }
  return absl::InfiniteFuture();
}

std::string FormatIsoTime(absl::Time t, const absl::TimeZone& zone) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%S%Ez", t, zone);
}

absl::StatusOr<absl::TimeZone> LoadZone(const std::string& name) {
  absl::TimeZone zone;
  if (name.empty() || !absl::LoadTimeZone(name, &zone)) {
    return absl::InvalidArgumentError(
        StrCat("unknown time zone '", name,
               "': an IANA name such as UTC, Europe/Berlin or America/New_York "
               "(see /usr/share/zoneinfo)"));
  }
  return zone;
}

}  // namespace kiln::pipeline
