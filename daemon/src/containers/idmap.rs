//! Host id ranges of unprivileged containers: each maps container ids 0..size to a
//! range of host ids that no other container has, so root in one container is nobody
//! in another. A range is the daemon's choice (the lowest free one from --idmap-base)
//! unless security.idmap.base pins it.

use std::collections::BTreeMap;
use std::fmt;

use crate::error::{Error, Result};
use crate::keys;
use crate::settings::IDMAP_SIZE;

pub(super) const BASE_KEY: &str = "security.idmap.base";
pub(super) const SIZE_KEY: &str = "security.idmap.size";

/// One past the last host id a range may cover. u32::MAX is (uid_t)-1, which no map
/// may contain, and the kernel refuses a uid_map line whose base+size wraps 32 bits.
const END_LIMIT: u64 = u32::MAX as u64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Range {
    pub base: u32,
    pub size: u32,
}

impl Range {
    fn end(self) -> u64 {
        u64::from(self.base) + u64::from(self.size)
    }

    fn overlaps(self, other: Range) -> bool {
        u64::from(self.base) < other.end() && u64::from(other.base) < self.end()
    }
}

/// "1000000-1065535": first and last host id, as `sysc info` shows them.
impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.base, self.end() - 1)
    }
}

/// The range a container was given. Records from before sizes could differ may lack
/// volatile.idmap.size; they all got IDMAP_SIZE.
pub(super) fn recorded(config: &BTreeMap<String, String>) -> Option<Range> {
    let base = config.get(keys::IDMAP_BASE)?.parse().ok()?;
    let size = match config.get(keys::IDMAP_SIZE) {
        Some(size) => size.parse().ok()?,
        None => IDMAP_SIZE,
    };
    Some(Range { base, size })
}

/// What a new container's config asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Request {
    /// Privileged: no user namespace, no range.
    None,
    Pinned(Range),
    Any {
        size: u32,
    },
}

/// Checks what can be checked without looking at other containers: the keys need a
/// user namespace, and a pinned range must lie within the host's ids.
pub(super) fn check(config: &BTreeMap<String, String>) -> Result<()> {
    request(config).map(|_| ())
}

fn request(config: &BTreeMap<String, String>) -> Result<Request> {
    let number = |key: &str| -> Result<Option<u32>> {
        config
            .get(key)
            .map(|value| {
                value
                    .parse()
                    .map_err(|_| Error::InvalidArgument(format!("config key {key}: {value:?} is not a host id count")))
            })
            .transpose()
    };
    let (base, size) = (number(BASE_KEY)?, number(SIZE_KEY)?);
    if keys::get_bool(config, "security.privileged") {
        return match [(BASE_KEY, base), (SIZE_KEY, size)]
            .into_iter()
            .find(|(_, v)| v.is_some())
        {
            Some((key, _)) => Err(Error::InvalidArgument(format!(
                "config key {key} has no effect on a privileged container (its ids are the host's)"
            ))),
            None => Ok(Request::None),
        };
    }
    let size = size.unwrap_or(IDMAP_SIZE);
    let Some(base) = base else {
        return Ok(Request::Any { size });
    };
    let range = Range { base, size };
    if range.end() > END_LIMIT {
        return Err(Error::InvalidArgument(format!(
            "config key {BASE_KEY}: host ids {base}-{} go past the last usable host id {}",
            range.end() - 1,
            END_LIMIT - 1
        )));
    }
    Ok(Request::Pinned(range))
}

/// The range a new container gets (None: privileged), given the ranges other
/// containers have. The caller holds the claim lock, so `taken` stays true until the
/// new record is in.
pub(super) fn choose(
    config: &BTreeMap<String, String>,
    first: u32,
    taken: &[(String, Range)],
) -> Result<Option<Range>> {
    match request(config)? {
        Request::None => Ok(None),
        Request::Pinned(range) => match taken.iter().find(|(_, other)| range.overlaps(*other)) {
            Some((name, other)) => Err(Error::InvalidArgument(format!(
                "config key {BASE_KEY}: host ids {range} overlap container {name}'s range {other}"
            ))),
            None => Ok(Some(range)),
        },
        Request::Any { size } => lowest_free(first, size, taken.iter().map(|(_, range)| *range))
            .map(|base| Some(Range { base, size }))
            .ok_or_else(|| {
                Error::FailedPrecondition(format!("no free range of {size} host ids left for a new container"))
            }),
    }
}

/// The lowest base of `size` free ids at or after `first`. Bases stay on the grid of
/// IDMAP_SIZE slots from `first`, as they always have, so ranges the daemon picks line
/// up with each other however pinned ones lie.
fn lowest_free(first: u32, size: u32, taken: impl Iterator<Item = Range>) -> Option<u32> {
    let first = u64::from(first);
    let slot = u64::from(IDMAP_SIZE);
    let mut taken: Vec<Range> = taken.collect();
    taken.sort_by_key(|r| r.base);
    let mut candidate = first;
    // Sorted by base, a range that ends before the candidate stays behind it as the
    // candidate only moves up; the first range that starts past the candidate's end
    // means no later one can overlap it.
    for range in taken {
        if range.end() <= candidate {
            continue;
        }
        if u64::from(range.base) >= candidate + u64::from(size) {
            break;
        }
        candidate = first + (range.end() - first).div_ceil(slot) * slot;
    }
    (candidate + u64::from(size) <= END_LIMIT).then_some(candidate as u32)
}

/// Gives `to` the idmap keys of `from`, so that a copy's snapshots say what the copy
/// itself says about its range.
pub(super) fn copy_keys(from: &BTreeMap<String, String>, to: &mut BTreeMap<String, String>) {
    for key in [BASE_KEY, SIZE_KEY] {
        match from.get(key) {
            Some(value) => to.insert(key.to_string(), value.clone()),
            None => to.remove(key),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: u32 = 1_000_000;

    fn config(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn range(base: u32, size: u32) -> Range {
        Range { base, size }
    }

    fn taken(ranges: &[(&str, u32, u32)]) -> Vec<(String, Range)> {
        ranges
            .iter()
            .map(|(name, base, size)| (name.to_string(), range(*base, *size)))
            .collect()
    }

    #[test]
    fn ranges_overlap_when_they_share_an_id() {
        let a = range(M, 65536);
        assert!(a.overlaps(a));
        assert!(a.overlaps(range(M + 65535, 1)));
        assert!(a.overlaps(range(M - 10, 11)));
        assert!(range(M - 65536, 200_000).overlaps(a), "one inside the other");
        assert!(!a.overlaps(range(M + 65536, 65536)), "adjacent above");
        assert!(!a.overlaps(range(M - 65536, 65536)), "adjacent below");
        assert_eq!(a.to_string(), "1000000-1065535");
    }

    #[test]
    fn a_recorded_range_without_a_size_is_the_old_default() {
        assert_eq!(
            recorded(&config(&[(keys::IDMAP_BASE, "1000000")])),
            Some(range(M, 65536))
        );
        assert_eq!(
            recorded(&config(&[(keys::IDMAP_BASE, "1000000"), (keys::IDMAP_SIZE, "131072")])),
            Some(range(M, 131072))
        );
        assert_eq!(recorded(&config(&[])), None);
        assert_eq!(recorded(&config(&[(keys::IDMAP_BASE, "x")])), None);
    }

    #[test]
    fn a_pinned_range_is_used_when_no_other_container_overlaps_it() {
        let others = taken(&[("web1", M, 65536), ("web2", M + 200_000, 131072)]);
        let pinned = config(&[(BASE_KEY, "1065536")]);
        assert_eq!(choose(&pinned, M, &others).unwrap(), Some(range(M + 65536, 65536)));
        let sized = config(&[(BASE_KEY, "1065536"), (SIZE_KEY, "131072")]);
        assert_eq!(choose(&sized, M, &others).unwrap(), Some(range(M + 65536, 131072)));
    }

    #[test]
    fn an_overlapping_pin_is_refused_naming_both_ranges() {
        let others = taken(&[("web1", M, 65536)]);
        let err = choose(&config(&[(BASE_KEY, "1000000")]), M, &others).unwrap_err();
        assert!(matches!(err, Error::InvalidArgument(_)));
        assert_eq!(
            err.to_string(),
            "config key security.idmap.base: host ids 1000000-1065535 overlap container web1's range 1000000-1065535"
        );
        let err = choose(&config(&[(BASE_KEY, "934465")]), M, &others).unwrap_err();
        assert!(err.to_string().contains("host ids 934465-1000000 overlap"), "{err}");
        let wide = config(&[(BASE_KEY, "900000"), (SIZE_KEY, "1000000")]);
        assert!(choose(&wide, M, &others).is_err(), "a range around another one");
        assert!(
            choose(&config(&[(BASE_KEY, "934464")]), M, &others).is_ok(),
            "ends just below"
        );
    }

    #[test]
    fn a_pinned_range_must_fit_in_the_host_ids() {
        let last = config(&[(BASE_KEY, "4294901759")]);
        assert_eq!(choose(&last, M, &[]).unwrap(), Some(range(4294901759, 65536)));
        let err = choose(&config(&[(BASE_KEY, "4294901760")]), M, &[]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "config key security.idmap.base: host ids 4294901760-4294967295 go past the last usable host id 4294967294"
        );
        let big = config(&[(BASE_KEY, "4000000000"), (SIZE_KEY, "1073741824")]);
        assert!(check(&big).is_err());
    }

    #[test]
    fn idmap_keys_on_a_privileged_container_are_refused() {
        for key in [BASE_KEY, SIZE_KEY] {
            let err = check(&config(&[("security.privileged", "true"), (key, "1000000")])).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("config key {key} has no effect on a privileged container (its ids are the host's)")
            );
        }
        let privileged = config(&[("security.privileged", "true")]);
        assert_eq!(choose(&privileged, M, &taken(&[("web1", M, 65536)])).unwrap(), None);
        assert!(check(&config(&[("security.privileged", "false"), (BASE_KEY, "1000000")])).is_ok());
    }

    #[test]
    fn the_allocator_takes_the_lowest_free_slot() {
        assert_eq!(choose(&config(&[]), M, &[]).unwrap(), Some(range(M, 65536)));
        let others = taken(&[("a", M, 65536), ("b", M + 2 * 65536, 65536)]);
        assert_eq!(choose(&config(&[]), M, &others).unwrap(), Some(range(M + 65536, 65536)));
        let sized = config(&[(SIZE_KEY, "131072")]);
        assert_eq!(choose(&sized, M, &others).unwrap(), Some(range(M + 3 * 65536, 131072)));
    }

    #[test]
    fn the_allocator_skips_ranges_of_any_size_and_alignment() {
        // A pin halfway into slot 0 takes slots 0 and 1; a wide one takes 3 to 5.
        let ranges = [(M + 32768, 65536), (M + 3 * 65536, 3 * 65536)];
        assert_eq!(
            lowest_free(M, 65536, ranges.into_iter().map(|(b, s)| range(b, s))),
            Some(M + 2 * 65536)
        );
        let sized = lowest_free(M, 131072, ranges.into_iter().map(|(b, s)| range(b, s)));
        assert_eq!(sized, Some(M + 6 * 65536), "slot 2 alone is too small");
        // Order does not matter; nor do ranges below the first id, or nested ones.
        let shuffled = [
            range(M + 3 * 65536, 65536),
            range(0, 100_000),
            range(M, 3 * 65536),
            range(M, 10),
        ];
        assert_eq!(lowest_free(M, 65536, shuffled.into_iter()), Some(M + 4 * 65536));
        // A range straddling the first id pushes it up to the next slot.
        assert_eq!(lowest_free(M, 65536, [range(M - 5, 10)].into_iter()), Some(M + 65536));
    }

    #[test]
    fn the_allocator_stops_at_the_last_host_id() {
        let last = u32::MAX - 65536;
        assert_eq!(lowest_free(last, 65536, std::iter::empty()), Some(last));
        assert_eq!(lowest_free(last + 1, 65536, std::iter::empty()), None);
        assert_eq!(lowest_free(last, 65536, [range(last, 1)].into_iter()), None);
        let err = choose(&config(&[]), last, &taken(&[("a", last, 65536)])).unwrap_err();
        assert!(matches!(err, Error::FailedPrecondition(_)));
        assert_eq!(
            err.to_string(),
            "no free range of 65536 host ids left for a new container"
        );
    }

    #[test]
    fn a_copys_snapshots_get_the_copys_idmap_keys() {
        let mut snapshot = config(&[(BASE_KEY, "1000000"), (SIZE_KEY, "131072"), ("limits.cpu", "1")]);
        copy_keys(&config(&[(SIZE_KEY, "131072")]), &mut snapshot);
        assert_eq!(snapshot, config(&[(SIZE_KEY, "131072"), ("limits.cpu", "1")]));
    }
}
