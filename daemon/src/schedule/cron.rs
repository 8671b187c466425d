//! `snapshots.schedule`: one or more cron expressions, and when they next fire.

use chrono::{DateTime, Local, TimeZone, Utc};
use croner::Cron;
use croner::errors::CronError;
use croner::parser::{CronParser, Seconds, Year};

use super::{ScheduleError, alias, fields};

/// Incus separates expressions with a comma and a space; a bare comma is a list within a field.
const SEPARATOR: &str = ", ";

/// One or more cron schedules, as Incus's `snapshots.schedule` takes them: 5-field cron
/// expressions or @hourly, @daily, @midnight, @weekly, @monthly, @yearly, @annually, several
/// separated by ", ".
#[derive(Debug, Clone)]
pub struct Schedule {
    entries: Vec<Entry>,
}

#[derive(Debug, Clone)]
struct Entry {
    resolved: String,
    cron: Cron,
}

impl Schedule {
    /// `seed` (the container's name) picks when the @-aliases run, so that a fleet does not
    /// snapshot all at once: @hourly at a minute derived from a stable hash of the seed,
    /// @daily and @midnight at that minute of an hour, @weekly also on a weekday, @monthly on a
    /// day 1-28 instead, @yearly also in a month. The same seed always gives the same times.
    pub fn parse(spec: &str, seed: &str) -> Result<Schedule, ScheduleError> {
        if spec.trim().is_empty() {
            return Err(error(spec, "it is empty".to_string()));
        }
        let entries = spec
            .split(SEPARATOR)
            .map(|entry| match entry.trim() {
                "" => Err(error(
                    spec,
                    format!("it has an empty entry; separate expressions with {SEPARATOR:?}"),
                )),
                entry => Entry::parse(entry, seed).map_err(|reason| error(entry, reason)),
            })
            .collect::<Result<_, _>>()?;
        Ok(Schedule { entries })
    }

    /// The first time this schedule fires strictly after `after_ms` (milliseconds since the
    /// Unix epoch), evaluated in the host's local time zone, or None if never: the earliest
    /// over all its expressions.
    pub fn next_after(&self, after_ms: i64) -> Option<i64> {
        self.next_after_in(after_ms, &Local)
    }

    /// The expressions with aliases replaced by their concrete cron, for display.
    pub fn resolved(&self) -> Vec<String> {
        self.entries.iter().map(|e| e.resolved.clone()).collect()
    }

    fn next_after_in<Tz: TimeZone>(&self, after_ms: i64, tz: &Tz) -> Option<i64> {
        self.entries
            .iter()
            .filter_map(|e| next_fire(&e.cron, after_ms, tz))
            .min()
    }
}

impl Entry {
    fn parse(entry: &str, seed: &str) -> Result<Entry, String> {
        let expression = if entry.starts_with('@') {
            alias::resolve(entry, seed).ok_or_else(|| format!("unknown alias; use {}", alias::NAMES))?
        } else {
            entry.to_string()
        };
        let parts = fields::split(&expression)?;
        let cron = compile(&parts)?;
        // Caught here once rather than by a long fruitless search at every next_after. The
        // time zone does not matter: croner moves times skipped by DST rather than dropping
        // them, so only dates that do not exist (February 30th) make a schedule never fire.
        if cron.find_next_occurrence(&DateTime::<Utc>::UNIX_EPOCH, false).is_err() {
            return Err("it never fires: no month it names has that day".to_string());
        }
        Ok(Entry {
            resolved: parts.join(" "),
            cron,
        })
    }
}

fn compile(parts: &[&str]) -> Result<Cron, String> {
    // Five fields exactly: croner would otherwise also take seconds and years.
    let parser = CronParser::builder()
        .seconds(Seconds::Disallowed)
        .year(Year::Disallowed)
        .build();
    parser.parse(&parts.join(" ")).map_err(|whole| {
        // croner does not say which field it objects to: find out by trying each alone.
        (0..parts.len())
            .find_map(|i| {
                let mut probe = vec!["*"; parts.len()];
                probe[i] = parts[i];
                let err = parser.parse(&probe.join(" ")).err()?;
                Some(format!("{} {:?}: {}", fields::name(i), parts[i], reason(&err)))
            })
            .unwrap_or_else(|| reason(&whole))
    })
}

/// croner's message, reshaped to fit after a colon in ours: no capital, no full stop.
fn reason(err: &CronError) -> String {
    let text = match err {
        CronError::ComponentError(m) | CronError::InvalidPattern(m) | CronError::IllegalCharacters(m) => m.clone(),
        other => other.to_string(),
    };
    let text = text.trim_end_matches('.');
    let mut chars = text.chars();
    chars
        .next()
        .map(|first| first.to_lowercase().chain(chars).collect())
        .unwrap_or_default()
}

fn error(spec: &str, reason: String) -> ScheduleError {
    ScheduleError::Cron {
        spec: spec.to_string(),
        reason,
    }
}

/// Enough steps to get past any stretch of wall-clock time that repeats when DST ends (an
/// hour, two at most) for a schedule firing every minute.
const MAX_REPEATED_MINUTES: usize = 24 * 60;

/// The first time `cron` fires strictly after `after_ms`, in `tz`.
fn next_fire<Tz: TimeZone>(cron: &Cron, after_ms: i64, tz: &Tz) -> Option<i64> {
    // Schedules fire on whole minutes, so an exclusive search from the whole second at or
    // before `after_ms` finds the first firing strictly after it.
    let after = DateTime::from_timestamp(after_ms.div_euclid(1000), 0)?.with_timezone(tz);
    let mut from = after;
    for _ in 0..MAX_REPEATED_MINUTES {
        // croner gives up at the year 5000.
        let found = cron.find_next_occurrence(&from, false).ok()?;
        if found.timestamp_millis() > after_ms {
            return Some(found.timestamp_millis());
        }
        // croner searches wall-clock time and places a time the clock shows twice (as DST
        // ends) at its first showing. From within the second showing that can be a time
        // already gone by; it had its turn then, so carry on from its second showing.
        from = tz.from_local_datetime(&found.naive_local()).latest()?;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::testzone::Testland;
    use chrono::{Datelike, Days, NaiveDate, NaiveDateTime, NaiveTime, Timelike};
    use std::collections::HashSet;

    /// 2024-07-10 12:34:56.789 UTC: far from any DST change in either hemisphere.
    const JULY: i64 = 1_720_614_896_789;
    const MINUTE: i64 = 60_000;

    fn parse(spec: &str) -> Schedule {
        Schedule::parse(spec, "web1").unwrap_or_else(|e| panic!("{spec}: {e}"))
    }

    fn parse_err(spec: &str) -> String {
        Schedule::parse(spec, "web1").unwrap_err().to_string()
    }

    fn local(ms: i64) -> DateTime<Local> {
        DateTime::from_timestamp_millis(ms).unwrap().with_timezone(&Local)
    }

    /// `day` at `hh:mm` local time, as ms.
    fn local_ms(day: NaiveDate, hh: u32, mm: u32) -> i64 {
        let naive = day.and_time(NaiveTime::from_hms_opt(hh, mm, 0).unwrap());
        Local.from_local_datetime(&naive).single().unwrap().timestamp_millis()
    }

    #[test]
    fn refuses_bad_expressions() {
        let cases = [
            ("", "\"\" is not a cron schedule: it is empty"),
            ("  ", "\"  \" is not a cron schedule: it is empty"),
            (
                "* * * *",
                "\"* * * *\" is not a cron schedule: it has 4 fields, not 5 (minute, hour, day of month, month, day of week)",
            ),
            (
                "0 * * * * *",
                "\"0 * * * * *\" is not a cron schedule: it has 6 fields, not 5 (minute, hour, day of month, month, day of week)",
            ),
            (
                "61 * * * *",
                "\"61 * * * *\" is not a cron schedule: minute 61 is out of range 0-59",
            ),
            (
                "0 0 * * 9",
                "\"0 0 * * 9\" is not a cron schedule: day of week 9 is out of range 0-7",
            ),
            (
                "@sometimes",
                "\"@sometimes\" is not a cron schedule: unknown alias; use @hourly, @daily, @midnight, @weekly, @monthly, @yearly or @annually",
            ),
            (
                "*/0 * * * *",
                "\"*/0 * * * *\" is not a cron schedule: minute \"*/0\": step cannot be zero",
            ),
            (
                "30-10 * * * *",
                "\"30-10 * * * *\" is not a cron schedule: minute \"30-10\": range out of bounds",
            ),
            (
                "0 0 * * 5#6",
                "\"0 0 * * 5#6\" is not a cron schedule: day of week \"5#6\": nth specifier out of bounds",
            ),
            (
                "0 * * * *, 61 * * * *",
                "\"61 * * * *\" is not a cron schedule: minute 61 is out of range 0-59",
            ),
            (
                "0 * * * *, ",
                "\"0 * * * *, \" is not a cron schedule: it has an empty entry; separate expressions with \", \"",
            ),
        ];
        for (spec, want) in cases {
            assert_eq!(parse_err(spec), want, "{spec:?}");
        }
        for garbage in ["hello", "a b c d e", "@", "* * * * * ,", "0, 30 * * * *"] {
            assert!(parse_err(garbage).contains("is not a cron schedule: "), "{garbage}");
        }
    }

    #[test]
    fn accepts_vixie_and_croner_syntax() {
        for expression in [
            "* * * * *",
            "0,30 * * * *",
            "*/15 1-5 * * *",
            "0 0 L * *",
            "0 0 l * *",
            "0 0 15w * *",
            "0 0 15W * *",
            "0 0 ? * 5#2",
            "0 0 1 * +MON",
            "0 0 * JAN-MAR sun,sat",
            "0 0 * * 7",
            "10-50/5 0 1,15 */2 1-5",
        ] {
            assert_eq!(parse(expression).resolved(), [expression]);
        }
    }

    #[test]
    fn every_minute_fires_at_the_next_whole_minute() {
        let s = parse("* * * * *");
        let next_minute = (JULY / MINUTE + 1) * MINUTE;
        assert_eq!(s.next_after(JULY), Some(next_minute));
        // Strictly after: on a whole minute, the next one.
        assert_eq!(s.next_after(next_minute), Some(next_minute + MINUTE));
        assert_eq!(s.next_after(next_minute - 1), Some(next_minute));
    }

    #[test]
    fn daily_at_three_fires_at_three_local_time() {
        let s = parse("0 3 * * *");
        let today = local(JULY).date_naive();
        let three_today = local_ms(today, 3, 0);
        let want = if three_today > JULY {
            three_today
        } else {
            local_ms(today + Days::new(1), 3, 0)
        };
        assert_eq!(s.next_after(JULY), Some(want));
        assert_eq!(
            s.next_after(want),
            Some(local_ms(local(want).date_naive() + Days::new(1), 3, 0))
        );
        let at = local(want);
        assert_eq!((at.hour(), at.minute(), at.second()), (3, 0, 0));
    }

    #[test]
    fn several_expressions_take_the_earliest() {
        let day = local(JULY).date_naive() + Days::new(1);
        let from = local_ms(day, 0, 0);
        let s = parse("0 5 * * *, 30 1 * * *, 0 3 * * *");
        assert_eq!(s.next_after(from), Some(local_ms(day, 1, 30)));
        assert_eq!(s.next_after(local_ms(day, 1, 30)), Some(local_ms(day, 3, 0)));
        assert_eq!(s.next_after(local_ms(day, 4, 0)), Some(local_ms(day, 5, 0)));
        assert_eq!(s.resolved(), ["0 5 * * *", "30 1 * * *", "0 3 * * *"]);
    }

    #[test]
    fn a_field_with_commas_is_one_expression() {
        let s = parse("0,30 * * * *");
        assert_eq!(s.resolved(), ["0,30 * * * *"]);
        let day = local(JULY).date_naive() + Days::new(1);
        assert_eq!(s.next_after(local_ms(day, 10, 5)), Some(local_ms(day, 10, 30)));
        assert_eq!(s.next_after(local_ms(day, 10, 30)), Some(local_ms(day, 11, 0)));
    }

    #[test]
    fn day_of_month_or_day_of_week_as_in_vixie_cron() {
        // The 13th, or any Friday: 2024-09-06 is a Friday, 2024-09-13 both.
        let s = parse("0 0 13 * 5");
        let day = NaiveDate::from_ymd_opt(2024, 9, 1).unwrap();
        let fires: Vec<i64> = std::iter::successors(Some(local_ms(day, 0, 0)), |&t| s.next_after(t))
            .skip(1)
            .take(4)
            .collect();
        let days: Vec<u32> = fires.iter().map(|&t| local(t).day()).collect();
        assert_eq!(days, [6, 13, 20, 27]);
        // "+" is croner's: both must hold.
        let friday_13th = parse("0 0 13 * +5").next_after(local_ms(day, 0, 0)).unwrap();
        assert_eq!(
            local(friday_13th).date_naive(),
            NaiveDate::from_ymd_opt(2024, 9, 13).unwrap()
        );
    }

    #[test]
    fn names_and_spacing_are_kept_for_display() {
        let s = parse("  0  0 * jan-mar mon-fri ");
        assert_eq!(s.resolved(), ["0 0 * jan-mar mon-fri"]);
        let fire = local(s.next_after(JULY).unwrap());
        assert_eq!((fire.month(), fire.weekday().number_from_monday() <= 5), (1, true));
    }

    #[test]
    fn refuses_dates_that_do_not_exist() {
        for spec in ["0 0 30 2 *", "0 0 31 4,6,9,11 *", "0 0 30,31 2 +1"] {
            assert_eq!(
                parse_err(spec),
                format!("{spec:?} is not a cron schedule: it never fires: no month it names has that day")
            );
        }
        // Rare is not never: February 29th on a Monday.
        let leap_monday = parse("0 0 29 2 +1").next_after(JULY).unwrap();
        assert_eq!(local(leap_monday).year(), 2044);
    }

    #[test]
    fn aliases_resolve_the_same_for_the_same_seed() {
        let aliases = [
            "@hourly",
            "@daily",
            "@midnight",
            "@weekly",
            "@monthly",
            "@yearly",
            "@annually",
        ];
        for alias in aliases {
            let a = Schedule::parse(alias, "web1").unwrap().resolved();
            let b = Schedule::parse(alias, "web1").unwrap().resolved();
            assert_eq!(a, b, "{alias}");
        }
        let upper = Schedule::parse("@DAILY", "web1").unwrap().resolved();
        assert_eq!(upper, Schedule::parse("@daily", "web1").unwrap().resolved());
    }

    #[test]
    fn aliases_spread_over_seeds() {
        let minutes: HashSet<String> = (0..100)
            .map(|i| Schedule::parse("@hourly", &format!("c{i}")).unwrap().resolved()[0].clone())
            .collect();
        assert!(minutes.len() >= 20, "{}", minutes.len());
    }

    #[test]
    fn aliases_fix_the_fields_they_name() {
        let fields = |alias: &str| -> Vec<String> {
            let resolved = &Schedule::parse(alias, "db7").unwrap().resolved()[0];
            resolved.split(' ').map(str::to_string).collect()
        };
        let number = |f: &String| f.parse::<u32>().unwrap_or_else(|_| panic!("{f}"));
        let hourly = fields("@hourly");
        let daily = fields("@daily");
        let weekly = fields("@weekly");
        let monthly = fields("@monthly");
        let yearly = fields("@yearly");
        assert!(number(&hourly[0]) < 60);
        assert_eq!(hourly[1..], ["*", "*", "*", "*"]);
        assert_eq!(daily[0], hourly[0]);
        assert!(number(&daily[1]) < 24);
        assert_eq!(daily[2..], ["*", "*", "*"]);
        assert_eq!(fields("@midnight"), daily);
        assert_eq!(weekly[..2], daily[..2]);
        assert!(number(&weekly[4]) < 7);
        assert!((1..=28).contains(&number(&monthly[2])));
        assert_eq!((monthly[3].as_str(), monthly[4].as_str()), ("*", "*"));
        assert_eq!(yearly[..3], monthly[..3]);
        assert!((1..=12).contains(&number(&yearly[3])));
        assert_eq!(fields("@annually"), yearly);
    }

    #[test]
    fn hourly_fires_within_the_hour() {
        for seed in ["a", "b", "web1", "db-17"] {
            let s = Schedule::parse("@hourly", seed).unwrap();
            let next = s.next_after(JULY).unwrap();
            assert!(next > JULY && next <= JULY + 60 * MINUTE, "{seed}");
            assert_eq!(s.next_after(next), Some(next + 60 * MINUTE), "{seed}");
        }
    }

    #[test]
    fn aliases_mix_with_expressions() {
        let s = Schedule::parse("@hourly, 0,30 * * * *", "web1").unwrap();
        assert_eq!(s.resolved().len(), 2);
        assert_eq!(s.resolved()[1], "0,30 * * * *");
    }

    #[test]
    fn far_out_of_range_times_are_none() {
        assert_eq!(parse("* * * * *").next_after(i64::MAX), None);
        assert_eq!(parse("* * * * *").next_after(i64::MIN), None);
    }

    // Testland changes like central Europe: 02:00-03:00 local does not exist on 2024-03-31
    // and happens twice on 2024-10-27.

    fn testland(y: i32, m: u32, d: u32, hh: u32, mm: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, m, d)
            .unwrap()
            .and_hms_opt(hh, mm, 0)
            .unwrap()
    }

    /// Successive firings after `start` as Testland wall-clock times with their UTC offsets
    /// in hours.
    fn fires_in_testland(spec: &str, start: DateTime<Testland>, n: usize) -> Vec<(NaiveDateTime, i32)> {
        let s = parse(spec);
        std::iter::successors(Some(start.timestamp_millis()), |&t| s.next_after_in(t, &Testland))
            .skip(1)
            .take(n)
            .map(|t| {
                let at = DateTime::from_timestamp_millis(t).unwrap().with_timezone(&Testland);
                (at.naive_local(), at.offset().local_minus_utc() / 3600)
            })
            .collect()
    }

    #[test]
    fn spring_forward_moves_fixed_times_and_skips_intervals() {
        let before = Testland.from_local_datetime(&testland(2024, 3, 31, 1, 10)).unwrap();
        assert_eq!(
            fires_in_testland("30 2 * * *", before, 2),
            [(testland(2024, 3, 31, 3, 0), 2), (testland(2024, 4, 1, 2, 30), 2)]
        );
        assert_eq!(
            fires_in_testland("*/30 * * * *", before, 3),
            [
                (testland(2024, 3, 31, 1, 30), 1),
                (testland(2024, 3, 31, 3, 0), 2),
                (testland(2024, 3, 31, 3, 30), 2)
            ]
        );
    }

    #[test]
    fn fall_back_fires_each_wall_clock_time_once() {
        let before = Testland.from_local_datetime(&testland(2024, 10, 27, 1, 10)).unwrap();
        assert_eq!(
            fires_in_testland("30 2 * * *", before, 2),
            [(testland(2024, 10, 27, 2, 30), 2), (testland(2024, 10, 28, 2, 30), 1)]
        );
        assert_eq!(
            fires_in_testland("*/30 * * * *", before, 4),
            [
                (testland(2024, 10, 27, 1, 30), 2),
                (testland(2024, 10, 27, 2, 0), 2),
                (testland(2024, 10, 27, 2, 30), 2),
                (testland(2024, 10, 27, 3, 0), 1),
            ]
        );
    }

    #[test]
    fn fall_back_never_answers_the_past_from_the_second_pass() {
        // 02:10 the second time round (UTC+1): 02:30 already fired at its first showing.
        let second_pass = Testland
            .from_local_datetime(&testland(2024, 10, 27, 2, 10))
            .latest()
            .unwrap();
        assert_eq!(
            fires_in_testland("*/30 * * * *", second_pass, 2),
            [(testland(2024, 10, 27, 3, 0), 1), (testland(2024, 10, 27, 3, 30), 1)]
        );
        assert_eq!(
            fires_in_testland("* * * * *", second_pass, 1),
            [(testland(2024, 10, 27, 3, 0), 1)]
        );
        assert_eq!(
            fires_in_testland("30 2 * * *", second_pass, 1),
            [(testland(2024, 10, 28, 2, 30), 1)]
        );
    }
}
