//! A time zone with daylight saving time for tests, since the host's may have none and
//! chrono brings no zone database: UTC+1, and UTC+2 from 2024-03-31 01:00 UTC to 2024-10-27
//! 01:00 UTC, as central Europe.

use chrono::{FixedOffset, LocalResult, NaiveDate, NaiveDateTime, TimeZone};

#[derive(Debug, Clone, Copy)]
pub(super) struct Testland;

const SUMMER_STARTS: i64 = 1_711_846_800;
const SUMMER_ENDS: i64 = 1_729_990_800;

fn winter() -> FixedOffset {
    FixedOffset::east_opt(3600).unwrap()
}

fn summer() -> FixedOffset {
    FixedOffset::east_opt(7200).unwrap()
}

fn offset_at(utc: &NaiveDateTime) -> FixedOffset {
    let t = utc.and_utc().timestamp();
    if (SUMMER_STARTS..SUMMER_ENDS).contains(&t) {
        summer()
    } else {
        winter()
    }
}

impl TimeZone for Testland {
    type Offset = FixedOffset;

    fn from_offset(_: &FixedOffset) -> Testland {
        Testland
    }

    fn offset_from_local_date(&self, local: &NaiveDate) -> LocalResult<FixedOffset> {
        self.offset_from_local_datetime(&local.and_hms_opt(0, 0, 0).unwrap())
    }

    fn offset_from_local_datetime(&self, local: &NaiveDateTime) -> LocalResult<FixedOffset> {
        let fits = |offset: FixedOffset| offset_at(&(*local - offset)) == offset;
        match (fits(summer()), fits(winter())) {
            (true, true) => LocalResult::Ambiguous(summer(), winter()),
            (true, false) => LocalResult::Single(summer()),
            (false, true) => LocalResult::Single(winter()),
            (false, false) => LocalResult::None,
        }
    }

    fn offset_from_utc_date(&self, utc: &NaiveDate) -> FixedOffset {
        offset_at(&utc.and_hms_opt(0, 0, 0).unwrap())
    }

    fn offset_from_utc_datetime(&self, utc: &NaiveDateTime) -> FixedOffset {
        offset_at(utc)
    }
}

#[test]
fn testland_has_a_gap_and_an_overlap() {
    let at = |d: u32, m: u32, hh: u32, mm: u32| {
        let naive = NaiveDate::from_ymd_opt(2024, m, d)
            .unwrap()
            .and_hms_opt(hh, mm, 0)
            .unwrap();
        Testland
            .from_local_datetime(&naive)
            .map(|t| t.timestamp() - naive.and_utc().timestamp())
    };
    assert_eq!(at(31, 3, 1, 59), LocalResult::Single(-3600));
    assert_eq!(at(31, 3, 2, 30), LocalResult::None);
    assert_eq!(at(31, 3, 3, 0), LocalResult::Single(-7200));
    assert_eq!(at(27, 10, 1, 59), LocalResult::Single(-7200));
    assert_eq!(at(27, 10, 2, 30), LocalResult::Ambiguous(-7200, -3600));
    assert_eq!(at(27, 10, 3, 0), LocalResult::Single(-3600));
}
