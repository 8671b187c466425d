//! The @-aliases (@hourly, @daily, ...), resolved to concrete cron expressions whose fixed
//! fields come from a hash of the container's name, so that a fleet of containers sharing a
//! profile spreads its snapshots out instead of all snapshotting at the top of the hour.

/// The aliases accepted, for error messages.
pub(super) const NAMES: &str = "@hourly, @daily, @midnight, @weekly, @monthly, @yearly or @annually";

/// The cron expression `alias` (with its '@', any case) stands for with this `seed`, or None
/// if it is no alias.
pub(super) fn resolve(alias: &str, seed: &str) -> Option<String> {
    let SpreadTime {
        minute,
        hour,
        weekday,
        day,
        month,
    } = SpreadTime::from_seed(seed);
    let expression = match alias.to_ascii_lowercase().as_str() {
        "@hourly" => format!("{minute} * * * *"),
        "@daily" | "@midnight" => format!("{minute} {hour} * * *"),
        "@weekly" => format!("{minute} {hour} * * {weekday}"),
        "@monthly" => format!("{minute} {hour} {day} * *"),
        "@yearly" | "@annually" => format!("{minute} {hour} {day} {month} *"),
        _ => return None,
    };
    Some(expression)
}

/// A point in the year picked by the seed; each alias uses the fields it needs.
struct SpreadTime {
    minute: u64,
    hour: u64,
    weekday: u64,
    /// 1-28, so that @monthly fires in every month.
    day: u64,
    month: u64,
}

impl SpreadTime {
    fn from_seed(seed: &str) -> SpreadTime {
        // Successive quotients of one 64-bit hash: the fields are independent enough, and
        // 60 * 24 * 7 * 28 * 12 is far below 2^64, so no field runs out of bits.
        let mut h = stable_hash(seed.as_bytes());
        let mut take = |n: u64| {
            let v = h % n;
            h /= n;
            v
        };
        SpreadTime {
            minute: take(60),
            hour: take(24),
            weekday: take(7),
            day: take(28) + 1,
            month: take(12) + 1,
        }
    }
}

/// FNV-1a followed by the splitmix64 finaliser. Written out rather than using std's hasher,
/// whose output may change between Rust releases: a container's snapshot times must not move
/// when the daemon is rebuilt. The finaliser is there because FNV alone leaves names that
/// differ only in their last character (web1, web2, ...) close together.
fn stable_hash(bytes: &[u8]) -> u64 {
    const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut h = bytes
        .iter()
        .fold(FNV_OFFSET, |h, &b| (h ^ u64::from(b)).wrapping_mul(FNV_PRIME));
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn hash_is_pinned() {
        // Changing these moves every container's snapshot times: don't, without a reason.
        assert_eq!(stable_hash(b""), 0xf52a_15e9_a9b5_e89b);
        assert_eq!(resolve("@yearly", "web1").unwrap(), "15 4 21 10 *");
        assert_eq!(resolve("@weekly", "web1").unwrap(), "15 4 * * 0");
    }

    #[test]
    fn fields_stay_in_range() {
        for i in 0..2000 {
            let t = SpreadTime::from_seed(&format!("c{i}"));
            assert!(t.minute < 60 && t.hour < 24 && t.weekday < 7);
            assert!((1..=28).contains(&t.day) && (1..=12).contains(&t.month));
        }
    }

    #[test]
    fn every_field_spreads() {
        let times: Vec<SpreadTime> = (0..500).map(|i| SpreadTime::from_seed(&format!("web{i}"))).collect();
        let distinct = |f: fn(&SpreadTime) -> u64| times.iter().map(f).collect::<HashSet<_>>().len();
        assert_eq!(distinct(|t| t.hour), 24);
        assert_eq!(distinct(|t| t.weekday), 7);
        assert_eq!(distinct(|t| t.day), 28);
        assert_eq!(distinct(|t| t.month), 12);
        assert!(distinct(|t| t.minute) > 55);
    }

    #[test]
    fn unknown_aliases_are_none() {
        assert_eq!(resolve("@sometimes", "x"), None);
        assert_eq!(resolve("hourly", "x"), None);
        assert!(resolve("@HOURLY", "x").is_some());
    }
}
