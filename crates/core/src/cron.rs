//! The cron expressions of CloudBase's timer triggers (`config.json`
//! triggers of `"type": "timer"`), with CloudBase's documented semantics:
//!
//! - seven fields, separated by spaces: seconds (0–59), minutes (0–59),
//!   hours (0–23), day of the month (1–31), month (1–12 or `JAN`–`DEC`), day
//!   of the week (0–6 or `SUN`–`SAT`, 0 being Sunday) and year (1970–2099);
//! - in each, `*` (every value), `a`, `a-b` (a range), `x/n` (every `n`th
//!   value from `x`, which is `*`, `a` or `a-b`: `/` needs a value on both
//!   sides) and `,` between any of those (their union);
//! - when both the day of the month and the day of the week are given, a
//!   day matches if either does ("或"关系); when one of them is `*` (or
//!   starts with `*`), the other alone decides, as in Vixie cron;
//! - times are read in a zone that defaults to UTC+8 (the caller's offset).
//!
//! Written here rather than taken from a crate: the `cron` crate numbers
//! the days of the week 1–7 from Sunday and requires both day fields to
//! match, which would misread CloudBase's expressions, and it brings chrono
//! for what a few lines of civil-date arithmetic do.

use std::fmt;

/// A parsed cron expression. See the module documentation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    seconds: u64,
    minutes: u64,
    hours: u64,
    /// Bit `d` for day `d` (1–31).
    days: u64,
    /// Bit `m` for month `m` (1–12).
    months: u64,
    /// Bit `w` for weekday `w` (0 = Sunday).
    weekdays: u64,
    /// Bit `y - 1970` for year `y`.
    years: [u64; 3],
    /// Whether the day fields start with `*`: see the combination rule.
    days_star: bool,
    weekdays_star: bool,
}

/// Why an expression is not one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronError(pub String);

impl fmt::Display for CronError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CronError {}

const FIRST_YEAR: i64 = 1970;
const LAST_YEAR: i64 = 2099;

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const WEEKDAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// One field's name, range and value names.
struct Field {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
    /// The value of `names[0]`.
    first_named: u32,
}

const FIELDS: [Field; 7] = [
    Field {
        name: "seconds",
        min: 0,
        max: 59,
        names: &[],
        first_named: 0,
    },
    Field {
        name: "minutes",
        min: 0,
        max: 59,
        names: &[],
        first_named: 0,
    },
    Field {
        name: "hours",
        min: 0,
        max: 23,
        names: &[],
        first_named: 0,
    },
    Field {
        name: "day of the month",
        min: 1,
        max: 31,
        names: &[],
        first_named: 0,
    },
    Field {
        name: "month",
        min: 1,
        max: 12,
        names: &MONTHS,
        first_named: 1,
    },
    Field {
        name: "day of the week",
        min: 0,
        max: 6,
        names: &WEEKDAYS,
        first_named: 0,
    },
    Field {
        name: "year",
        min: 1970,
        max: 2099,
        names: &[],
        first_named: 0,
    },
];

impl Cron {
    /// Parses a seven-field expression, saying what is wrong with one that
    /// is not.
    pub fn parse(expression: &str) -> Result<Self, CronError> {
        let parts: Vec<&str> = expression.split_whitespace().collect();
        if parts.len() != 7 {
            return Err(CronError(format!(
                "{expression:?} has {} fields; a timer's cron expression has seven: seconds, \
                 minutes, hours, day of the month, month, day of the week, year",
                parts.len()
            )));
        }
        let mut sets = [[0u64; 3]; 7];
        for ((part, field), set) in parts.iter().zip(&FIELDS).zip(&mut sets) {
            *set = parse_field(part, field)?;
        }
        Ok(Self {
            seconds: sets[0][0],
            minutes: sets[1][0],
            hours: sets[2][0],
            days: sets[3][0],
            months: sets[4][0],
            weekdays: sets[5][0],
            years: sets[6],
            days_star: parts[3].starts_with('*'),
            weekdays_star: parts[5].starts_with('*'),
        })
    }

    /// The first firing after `after` (Unix seconds), in the zone
    /// `offset_seconds` east of UTC; `None` when none is left before 2100.
    pub fn next_after(&self, after: i64, offset_seconds: i64) -> Option<i64> {
        let mut t = Civil::from_local(after + offset_seconds + 1);
        // Each step moves to the start of the next candidate year, month,
        // day, hour, minute or second, so the loop ends within a few
        // hundred steps even for an expression that fires once a century.
        loop {
            if t.year > LAST_YEAR {
                return None;
            }
            if !has(&self.years, (t.year - FIRST_YEAR) as u32) {
                t = Civil::start_of(t.year + 1, 1, 1);
            } else if !has1(self.months, t.month) {
                t = t.next_month();
            } else if !self.day_matches(&t) {
                t = t.next_day();
            } else if !has1(self.hours, t.hour) {
                t = t.next_hour();
            } else if !has1(self.minutes, t.minute) {
                t = t.next_minute();
            } else if !has1(self.seconds, t.second) {
                t = t.next_second();
            } else {
                return Some(t.to_local() - offset_seconds);
            }
        }
    }

    fn day_matches(&self, t: &Civil) -> bool {
        let day = has1(self.days, t.day);
        let weekday = has1(self.weekdays, t.weekday());
        if self.days_star || self.weekdays_star {
            day && weekday
        } else {
            day || weekday
        }
    }
}

fn has(set: &[u64; 3], bit: u32) -> bool {
    set.get((bit / 64) as usize)
        .is_some_and(|word| word & (1 << (bit % 64)) != 0)
}

fn has1(set: u64, bit: u32) -> bool {
    bit < 64 && set & (1 << bit) != 0
}

/// A field as a set of bits, numbered from its value (less 1970 for years).
fn parse_field(text: &str, field: &Field) -> Result<[u64; 3], CronError> {
    let mut set = [0u64; 3];
    let base = if field.min >= FIRST_YEAR as u32 {
        field.min
    } else {
        0
    };
    for item in text.split(',') {
        let bad = |why: &str| CronError(format!("{} field {text:?}: {why}", field.name));
        let (range, step) = match item.split_once('/') {
            Some((range, step)) => {
                let step: u32 = step
                    .parse()
                    .ok()
                    .filter(|s| *s > 0)
                    .ok_or_else(|| bad("a step after / is a whole number from 1"))?;
                (range, step)
            }
            None => (item, 1),
        };
        let (from, to) = match range {
            "*" => (field.min, field.max),
            "" => return Err(bad("/ needs a value before it (*, a number or a range)")),
            _ => match range.split_once('-') {
                Some((a, b)) => (
                    value(a, field).map_err(|w| bad(&w))?,
                    value(b, field).map_err(|w| bad(&w))?,
                ),
                // `a/n` runs from a to the field's end.
                None if item.contains('/') => {
                    (value(range, field).map_err(|w| bad(&w))?, field.max)
                }
                None => {
                    let v = value(range, field).map_err(|w| bad(&w))?;
                    (v, v)
                }
            },
        };
        if from > to {
            return Err(bad(&format!("the range {from}-{to} runs backwards")));
        }
        for v in (from..=to).step_by(step as usize) {
            let bit = v - base;
            set[(bit / 64) as usize] |= 1 << (bit % 64);
        }
    }
    Ok(set)
}

/// A number or, where the field has them, a name (any case).
fn value(text: &str, field: &Field) -> Result<u32, String> {
    let named = field
        .names
        .iter()
        .position(|name| name.eq_ignore_ascii_case(text))
        .map(|i| i as u32 + field.first_named);
    let v = match named {
        Some(v) => v,
        None => text.parse().map_err(|_| format!("{text:?} is no value"))?,
    };
    if !(field.min..=field.max).contains(&v) {
        return Err(format!("{v} is outside {}–{}", field.min, field.max));
    }
    Ok(v)
}

/// A civil date and time, in the zone the expression is read in.
#[derive(Debug, Clone, Copy)]
struct Civil {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
}

impl Civil {
    fn from_local(seconds: i64) -> Self {
        let days = seconds.div_euclid(86_400);
        let rem = seconds.rem_euclid(86_400) as u32;
        let (year, month, day) = civil_from_days(days);
        Self {
            year,
            month,
            day,
            hour: rem / 3600,
            minute: rem / 60 % 60,
            second: rem % 60,
        }
    }

    fn start_of(year: i64, month: u32, day: u32) -> Self {
        Self {
            year,
            month,
            day,
            hour: 0,
            minute: 0,
            second: 0,
        }
    }

    fn to_local(self) -> i64 {
        days_from_civil(self.year, self.month, self.day) * 86_400
            + i64::from(self.hour * 3600 + self.minute * 60 + self.second)
    }

    /// 0 for Sunday: 1970-01-01 was a Thursday.
    fn weekday(&self) -> u32 {
        (days_from_civil(self.year, self.month, self.day) + 4).rem_euclid(7) as u32
    }

    fn next_month(self) -> Self {
        if self.month == 12 {
            Self::start_of(self.year + 1, 1, 1)
        } else {
            Self::start_of(self.year, self.month + 1, 1)
        }
    }

    fn next_day(self) -> Self {
        if self.day >= days_in_month(self.year, self.month) {
            self.next_month()
        } else {
            Self::start_of(self.year, self.month, self.day + 1)
        }
    }

    fn next_hour(self) -> Self {
        match self.hour {
            23 => self.next_day(),
            hour => Self {
                hour: hour + 1,
                minute: 0,
                second: 0,
                ..self
            },
        }
    }

    fn next_minute(self) -> Self {
        match self.minute {
            59 => self.next_hour(),
            minute => Self {
                minute: minute + 1,
                second: 0,
                ..self
            },
        }
    }

    fn next_second(self) -> Self {
        match self.second {
            59 => self.next_minute(),
            second => Self {
                second: second + 1,
                ..self
            },
        }
    }
}

/// Unix seconds as an RFC 3339 UTC time (`2026-12-06T02:00:00Z`), as
/// CloudBase's timer event gives its `Time`.
pub fn iso_utc(seconds: i64) -> String {
    let t = Civil::from_local(seconds);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year, t.month, t.day, t.hour, t.minute, t.second
    )
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date `days` after 1970-01-01 (Hinnant's `civil_from_days`), for
/// whatever prints dates.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::{days_from_civil, Cron};

    /// UTC+8, CloudBase's zone.
    const BEIJING: i64 = 8 * 3600;

    /// Unix seconds of a time given in UTC+8.
    fn at(year: i64, month: u32, day: u32, hour: i64, minute: i64, second: i64) -> i64 {
        days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - BEIJING
    }

    fn next(expression: &str, after: i64) -> Option<i64> {
        Cron::parse(expression)
            .expect("valid")
            .next_after(after, BEIJING)
    }

    #[test]
    fn every_five_seconds() {
        let t = at(2026, 12, 6, 10, 0, 1);
        assert_eq!(next("*/5 * * * * * *", t), Some(at(2026, 12, 6, 10, 0, 5)));
    }

    #[test]
    fn two_in_the_morning_on_the_first_of_each_month() {
        let t = at(2026, 12, 6, 3, 0, 0);
        assert_eq!(next("0 0 2 1 * * *", t), Some(at(2027, 1, 1, 2, 0, 0)));
    }

    #[test]
    fn a_quarter_past_ten_on_weekdays_skips_the_weekend() {
        // 2026-12-04 is a Friday.
        let friday_noon = at(2026, 12, 4, 12, 0, 0);
        assert_eq!(
            next("0 15 10 * * MON-FRI *", friday_noon),
            Some(at(2026, 12, 7, 10, 15, 0))
        );
    }

    #[test]
    fn listed_hours_and_half_hours_within_a_range() {
        let t = at(2026, 12, 6, 10, 0, 0);
        assert_eq!(
            next("0 0 10,14,16 * * * *", t),
            Some(at(2026, 12, 6, 14, 0, 0))
        );
        let late = at(2026, 12, 6, 17, 30, 0);
        assert_eq!(
            next("0 */30 9-17 * * * *", late),
            Some(at(2026, 12, 7, 9, 0, 0))
        );
    }

    #[test]
    fn noon_on_wednesdays_with_zero_as_sunday() {
        let sunday = at(2026, 12, 6, 13, 0, 0);
        assert_eq!(
            next("0 0 12 * * WED *", sunday),
            Some(at(2026, 12, 9, 12, 0, 0))
        );
        assert_eq!(
            next("0 0 12 * * 3 *", sunday),
            Some(at(2026, 12, 9, 12, 0, 0))
        );
        assert_eq!(
            next("0 0 12 * * 0 *", sunday),
            Some(at(2026, 12, 13, 12, 0, 0))
        );
    }

    #[test]
    fn a_step_from_a_start_value_runs_to_the_fields_end() {
        let t = at(2026, 12, 6, 10, 0, 0);
        assert_eq!(next("0 1/10 * * * * *", t), Some(at(2026, 12, 6, 10, 1, 0)));
        let after = at(2026, 12, 6, 10, 51, 0);
        assert_eq!(
            next("0 1/10 * * * * *", after),
            Some(at(2026, 12, 6, 11, 1, 0))
        );
    }

    #[test]
    fn the_29th_of_february_waits_for_a_leap_year() {
        let t = at(2026, 3, 1, 0, 0, 0);
        assert_eq!(next("0 0 0 29 2 * *", t), Some(at(2028, 2, 29, 0, 0, 0)));
    }

    #[test]
    fn the_31st_skips_months_without_one() {
        let t = at(2027, 3, 31, 1, 0, 0);
        assert_eq!(next("0 0 0 31 * * *", t), Some(at(2027, 5, 31, 0, 0, 0)));
    }

    #[test]
    fn the_year_field_ends_the_firings() {
        let t = at(2026, 12, 6, 0, 0, 0);
        assert_eq!(next("0 0 0 1 1 * 2030", t), Some(at(2030, 1, 1, 0, 0, 0)));
        assert_eq!(next("0 0 0 1 1 * 2030", at(2030, 1, 1, 0, 0, 0)), None);
        assert_eq!(
            next("0 0 0 1 1 * 2027-2099/10", t),
            Some(at(2027, 1, 1, 0, 0, 0))
        );
    }

    #[test]
    fn a_day_of_the_month_and_of_the_week_together_match_either() {
        // The 13th, or any Friday: after Wednesday 2026-12-09 comes Friday the 11th.
        let t = at(2026, 12, 9, 12, 0, 0);
        assert_eq!(next("0 0 0 13 * FRI *", t), Some(at(2026, 12, 11, 0, 0, 0)));
        let saturday = at(2026, 12, 12, 12, 0, 0);
        assert_eq!(
            next("0 0 0 13 * FRI *", saturday),
            Some(at(2026, 12, 13, 0, 0, 0))
        );
    }

    #[test]
    fn another_zone_moves_the_firing() {
        let cron = Cron::parse("0 0 2 * * * *").expect("valid");
        let t = days_from_civil(2026, 12, 6) * 86_400; // midnight UTC
        assert_eq!(cron.next_after(t, 0), Some(t + 2 * 3600));
        assert_eq!(cron.next_after(t, BEIJING), Some(t + 18 * 3600));
    }

    #[test]
    fn bad_expressions_are_refused_saying_why() {
        for (expression, says) in [
            ("0 0 2 1 * *", "has 6 fields"),
            ("60 * * * * * *", "seconds field"),
            ("0 0 24 * * * *", "outside 0–23"),
            ("0 0 0 0 * * *", "day of the month"),
            ("0 0 0 * 13 * *", "month"),
            ("0 0 0 * * 7 *", "day of the week"),
            ("0 0 0 * * * 2100", "year"),
            ("/5 * * * * * *", "needs a value before it"),
            ("*/0 * * * * * *", "step"),
            ("0 0 0 * FOO * *", "no value"),
            ("0 0 5-1 * * * *", "runs backwards"),
        ] {
            let error = Cron::parse(expression).expect_err(expression);
            assert!(error.0.contains(says), "{expression}: {error}");
        }
    }

    #[test]
    fn a_time_reads_as_rfc_3339_in_utc() {
        assert_eq!(
            super::iso_utc(at(2026, 12, 6, 10, 0, 0)),
            "2026-12-06T02:00:00Z"
        );
    }

    #[test]
    fn names_are_read_in_any_case() {
        assert_eq!(
            Cron::parse("0 0 0 * jan-Mar sun,SAT *"),
            Cron::parse("0 0 0 * 1-3 0,6 *")
        );
    }
}
