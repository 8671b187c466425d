//! `snapshots.expiry`: how long a snapshot is kept, in Incus's syntax ("1M 2H 3d 4w 5m 6y").

use chrono::{DateTime, Days, Local, MappedLocalTime, Months, NaiveDateTime, Offset, TimeDelta, TimeZone};

use super::ScheduleError;

/// Longer than anyone keeps a snapshot, short enough that no date arithmetic overflows.
const MAX_YEARS: u64 = 1000;

const USAGE: &str = "use a number and a unit M (minutes), H (hours), d (days), w (weeks), m (months) or y (years), e.g. \"7d\" or \"1w 2d\"";

/// An expiry: space-separated terms of a number and a unit, M minutes, H hours, d days,
/// w weeks, m months, y years (e.g. "7d", "1w 2d"). Case matters: M is minutes, m months.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expiry {
    /// Calendar months (months and years), which vary in length.
    months: u32,
    /// Calendar days (days and weeks), which are not 24 hours across a DST change.
    days: u64,
    /// Elapsed seconds (hours and minutes).
    seconds: i64,
}

impl Expiry {
    /// Refuses an empty text, a term that is not a number and a unit, a total of nothing, and
    /// more than 1000 years.
    pub fn parse(text: &str) -> Result<Expiry, ScheduleError> {
        let error = |reason: String| ScheduleError::Expiry {
            text: text.to_string(),
            reason,
        };
        let terms: Vec<&str> = text.split_whitespace().collect();
        if terms.is_empty() {
            return Err(error("it is empty".to_string()));
        }
        let (mut months, mut days, mut minutes) = (0u64, 0u64, 0u64);
        for term in &terms {
            let bad_term = || match terms.len() {
                1 => error(USAGE.to_string()),
                _ => error(format!("{term:?} is not a number and a unit; {USAGE}")),
            };
            // Units are ASCII, so the unit is the last byte whenever the term is well formed.
            let Some((number, unit)) = term.split_at_checked(term.len() - 1) else {
                return Err(bad_term());
            };
            if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad_term());
            }
            // Too many digits for u64 is over the limit anyway: saturate and let it be caught.
            let n = number.parse::<u64>().unwrap_or(u64::MAX);
            let (total, per) = match unit {
                "M" => (&mut minutes, 1),
                "H" => (&mut minutes, 60),
                "d" => (&mut days, 1),
                "w" => (&mut days, 7),
                "m" => (&mut months, 1),
                "y" => (&mut months, 12),
                _ => return Err(bad_term()),
            };
            *total = n.saturating_mul(per).saturating_add(*total);
        }
        if months > MAX_YEARS * 12 || days > MAX_YEARS * 366 || minutes > MAX_YEARS * 366 * 24 * 60 {
            return Err(error(format!("it is longer than {MAX_YEARS} years")));
        }
        if months == 0 && days == 0 && minutes == 0 {
            return Err(error(
                "it adds up to nothing; a snapshot would expire as it is taken".to_string(),
            ));
        }
        Ok(Expiry {
            months: months as u32,
            days,
            seconds: minutes as i64 * 60,
        })
    }

    /// When a snapshot taken at `created_ms` (ms since the Unix epoch) expires. Months and
    /// years are calendar arithmetic in local time, clamped to the end of a shorter month
    /// (Jan 31 + 1m is Feb 28 or 29); days and weeks keep the wall-clock time across a DST
    /// change; hours and minutes are elapsed time. An expiry beyond what chrono can represent,
    /// which takes a `created_ms` hundreds of thousands of years out, is i64::MAX: never.
    pub fn expires_at(&self, created_ms: i64) -> i64 {
        self.expires_at_in(created_ms, &Local).unwrap_or(i64::MAX)
    }

    fn expires_at_in<Tz: TimeZone>(&self, created_ms: i64, tz: &Tz) -> Option<i64> {
        let created = DateTime::from_timestamp_millis(created_ms)?.with_timezone(tz);
        // Without calendar units, going through wall-clock time could only lose the hour
        // that repeats when DST ends.
        let calendar = if self.months == 0 && self.days == 0 {
            created
        } else {
            let wall = created
                .naive_local()
                .checked_add_months(Months::new(self.months))?
                .checked_add_days(Days::new(self.days))?;
            from_wall_clock(tz, wall)?
        };
        let expires = calendar.checked_add_signed(TimeDelta::seconds(self.seconds))?;
        Some(expires.timestamp_millis())
    }
}

/// The instant a wall-clock time names in `tz`: the first when it names two (DST ends), and
/// for a time skipped as DST starts, the one as far past the jump as the time was into it.
fn from_wall_clock<Tz: TimeZone>(tz: &Tz, wall: NaiveDateTime) -> Option<DateTime<Tz>> {
    match tz.from_local_datetime(&wall) {
        MappedLocalTime::Single(t) | MappedLocalTime::Ambiguous(t, _) => Some(t),
        MappedLocalTime::None => {
            // Read the time with the offset in force before the jump, which held a day
            // earlier: offset changes are months apart.
            let before_jump = tz.offset_from_utc_datetime(&wall.checked_sub_days(Days::new(1))?).fix();
            let utc = wall.checked_sub_signed(TimeDelta::seconds(i64::from(before_jump.local_minus_utc())))?;
            Some(tz.from_utc_datetime(&utc))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::testzone::Testland;
    use chrono::NaiveDate;

    const MINUTE: i64 = 60_000;
    const HOUR: i64 = 60 * MINUTE;

    fn local_ms(y: i32, m: u32, d: u32, hh: u32, mm: u32) -> i64 {
        Local
            .with_ymd_and_hms(y, m, d, hh, mm, 0)
            .single()
            .unwrap()
            .timestamp_millis()
    }

    fn parse_err(text: &str) -> String {
        Expiry::parse(text).unwrap_err().to_string()
    }

    #[test]
    fn every_unit() {
        let created = local_ms(2024, 7, 10, 12, 0) + 789;
        let cases = [
            ("1M", local_ms(2024, 7, 10, 12, 1) + 789),
            ("90M", local_ms(2024, 7, 10, 13, 30) + 789),
            ("2H", local_ms(2024, 7, 10, 14, 0) + 789),
            ("3d", local_ms(2024, 7, 13, 12, 0) + 789),
            ("2w", local_ms(2024, 7, 24, 12, 0) + 789),
            ("5m", local_ms(2024, 12, 10, 12, 0) + 789),
            ("6y", local_ms(2030, 7, 10, 12, 0) + 789),
        ];
        for (text, want) in cases {
            assert_eq!(Expiry::parse(text).unwrap().expires_at(created), want, "{text}");
        }
    }

    #[test]
    fn combinations_add_up() {
        let created = local_ms(2024, 1, 1, 10, 0);
        let all = Expiry::parse("1M 2H 3d 4w 5m 6y").unwrap();
        assert_eq!(all.expires_at(created), local_ms(2030, 7, 2, 12, 1));
        assert_eq!(Expiry::parse("1w 2d").unwrap(), Expiry::parse("9d").unwrap());
        assert_eq!(Expiry::parse("1d 1d").unwrap(), Expiry::parse("2d").unwrap());
        assert_eq!(Expiry::parse("1y").unwrap(), Expiry::parse("12m").unwrap());
        assert_eq!(Expiry::parse("0d 1H").unwrap(), Expiry::parse("60M").unwrap());
        assert_eq!(Expiry::parse("  1d\t2H  ").unwrap(), Expiry::parse("2H 1d").unwrap());
    }

    #[test]
    fn case_matters() {
        let created = local_ms(2024, 3, 1, 10, 0);
        assert_eq!(Expiry::parse("1M").unwrap().expires_at(created), created + MINUTE);
        assert_eq!(
            Expiry::parse("1m").unwrap().expires_at(created),
            local_ms(2024, 4, 1, 10, 0)
        );
        assert!(Expiry::parse("1h").is_err());
        assert!(Expiry::parse("1D").is_err());
    }

    #[test]
    fn months_clamp_to_the_end_of_shorter_months() {
        let jan31 = local_ms(2024, 1, 31, 10, 0);
        assert_eq!(
            Expiry::parse("1m").unwrap().expires_at(jan31),
            local_ms(2024, 2, 29, 10, 0)
        );
        let jan31 = local_ms(2023, 1, 31, 10, 0);
        assert_eq!(
            Expiry::parse("1m").unwrap().expires_at(jan31),
            local_ms(2023, 2, 28, 10, 0)
        );
        assert_eq!(
            Expiry::parse("3m").unwrap().expires_at(jan31),
            local_ms(2023, 4, 30, 10, 0)
        );
        let leap_day = local_ms(2024, 2, 29, 10, 0);
        assert_eq!(
            Expiry::parse("1y").unwrap().expires_at(leap_day),
            local_ms(2025, 2, 28, 10, 0)
        );
        // Months first, then days: Jan 31 + 1m is Feb 29, + 1d is Mar 1.
        let jan31 = local_ms(2024, 1, 31, 10, 0);
        assert_eq!(
            Expiry::parse("1m 1d").unwrap().expires_at(jan31),
            local_ms(2024, 3, 1, 10, 0)
        );
    }

    #[test]
    fn refuses_bad_expiries() {
        let cases = [
            ("", "\"\" is not an expiry: it is empty"),
            (" ", "\" \" is not an expiry: it is empty"),
            ("3x", &format!("\"3x\" is not an expiry: {USAGE}")),
            (
                "1d 3x",
                &format!("\"1d 3x\" is not an expiry: \"3x\" is not a number and a unit; {USAGE}"),
            ),
            (
                "0d",
                "\"0d\" is not an expiry: it adds up to nothing; a snapshot would expire as it is taken",
            ),
            ("1001y", "\"1001y\" is not an expiry: it is longer than 1000 years"),
            (
                "99999999999999999999999d",
                "\"99999999999999999999999d\" is not an expiry: it is longer than 1000 years",
            ),
            (
                "18446744073709551615w",
                "\"18446744073709551615w\" is not an expiry: it is longer than 1000 years",
            ),
        ];
        for (text, want) in cases {
            assert_eq!(parse_err(text), want, "{text:?}");
        }
        for garbage in [
            "d", "7", "-1d", "+1d", "1.5d", "1 d", "1d2H", "7days", "éd", "1é", "1dd",
        ] {
            assert!(
                parse_err(garbage).contains("is not a number and a unit") || parse_err(garbage).ends_with(USAGE),
                "{garbage}"
            );
        }
    }

    #[test]
    fn the_limit_itself_is_fine() {
        let created = local_ms(2024, 1, 1, 10, 0);
        let max = Expiry::parse("1000y").unwrap().expires_at(created);
        assert_eq!(max, local_ms(3024, 1, 1, 10, 0));
        assert_eq!(Expiry::parse("1000y").unwrap().expires_at(i64::MAX), i64::MAX);
    }

    fn testland(m: u32, d: u32, hh: u32, mm: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2024, m, d)
            .unwrap()
            .and_hms_opt(hh, mm, 0)
            .unwrap()
    }

    fn in_testland(expiry: &str, created: NaiveDateTime) -> NaiveDateTime {
        let created = Testland.from_local_datetime(&created).earliest().unwrap();
        let expires = Expiry::parse(expiry)
            .unwrap()
            .expires_at_in(created.timestamp_millis(), &Testland);
        DateTime::from_timestamp_millis(expires.unwrap())
            .unwrap()
            .with_timezone(&Testland)
            .naive_local()
    }

    #[test]
    fn days_keep_the_wall_clock_and_hours_do_not() {
        // The night of 2024-03-30 is an hour short in Testland.
        assert_eq!(in_testland("1d", testland(3, 30, 12, 0)), testland(3, 31, 12, 0));
        assert_eq!(in_testland("24H", testland(3, 30, 12, 0)), testland(3, 31, 13, 0));
        // A day later at a time skipped by the jump: as far past it as it was into it.
        assert_eq!(in_testland("1d", testland(3, 30, 2, 30)), testland(3, 31, 3, 30));
        // A day later at a time shown twice: its first showing.
        let created = Testland.from_local_datetime(&testland(10, 26, 2, 30)).unwrap();
        let expires = Expiry::parse("1d")
            .unwrap()
            .expires_at_in(created.timestamp_millis(), &Testland);
        assert_eq!(expires.unwrap() - created.timestamp_millis(), 24 * HOUR);
    }
}
