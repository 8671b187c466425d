//! Snapshot names, and the pattern scheduled snapshots are named by (`snapshots.pattern`,
//! "snap%d" in Incus: snap0, snap1, ...).

use super::ScheduleError;

const MAX_NAME_LEN: usize = 63;
const CHARACTERS: &str = "use letters, digits, '-', '_' and '.'";

/// The digits a pattern must leave room for: a million snapshots.
const NUMBER_DIGITS: usize = 6;

/// Snapshot names become file and directory names and appear in paths as NAME/SNAPSHOT, so
/// they are kept to a portable, unremarkable set.
fn allowed(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')
}

/// A snapshot name a user gave: 1 to 63 ASCII letters, digits, '-', '_' and '.', not starting
/// with '.' (which also rules out "." and "..").
pub fn validate_snapshot_name(name: &str) -> Result<(), ScheduleError> {
    let reason = if name.is_empty() {
        "it is empty".to_string()
    } else if !name.bytes().all(allowed) {
        CHARACTERS.to_string()
    } else if name.starts_with('.') {
        "it must not start with '.'".to_string()
    } else if name.len() > MAX_NAME_LEN {
        format!("it is longer than {MAX_NAME_LEN} characters")
    } else {
        return Ok(());
    };
    Err(ScheduleError::Name {
        name: name.to_string(),
        reason,
    })
}

/// A pattern has "%d" exactly once and otherwise the characters of a snapshot name, short
/// enough to stay a valid name with a number of a few digits in place of "%d".
pub fn validate_pattern(pattern: &str) -> Result<(), ScheduleError> {
    split(pattern).map(|_| ())
}

/// The next snapshot name from `pattern`: "%d" replaced by one more than the highest number
/// among the `existing` names that match the pattern, or 0 if none does. A match has only
/// ASCII digits in place of "%d": "snap007" counts as 7, "snapfoo" and "snap01x" not at all.
pub fn next_name(pattern: &str, existing: &[&str]) -> Result<String, ScheduleError> {
    let (prefix, suffix) = split(pattern)?;
    let highest = existing
        .iter()
        .filter_map(|name| {
            let digits = name.strip_prefix(prefix)?.strip_suffix(suffix)?;
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            // More digits than u64 holds: such a name cannot collide with ours anyway.
            digits.parse::<u64>().ok()
        })
        .max();
    let number = match highest {
        None => 0,
        Some(n) => n
            .checked_add(1)
            .ok_or_else(|| error(pattern, "has run out of numbers".to_string()))?,
    };
    let name = format!("{prefix}{number}{suffix}");
    validate_snapshot_name(&name)?;
    Ok(name)
}

/// The text before and after "%d", once the pattern is known to be good.
fn split(pattern: &str) -> Result<(&str, &str), ScheduleError> {
    let reason = match pattern.matches("%d").count() {
        0 => "must contain %d".to_string(),
        1 => {
            let (prefix, suffix) = pattern.split_once("%d").unwrap_or_default();
            let fixed = prefix.len() + suffix.len();
            if !prefix.bytes().chain(suffix.bytes()).all(allowed) {
                "must contain %d and otherwise only letters, digits, '-', '_' and '.'".to_string()
            } else if prefix.starts_with('.') {
                "must not start with '.'".to_string()
            } else if fixed + NUMBER_DIGITS > MAX_NAME_LEN {
                format!(
                    "is too long: names must stay within {MAX_NAME_LEN} characters with {NUMBER_DIGITS} digits in place of %d"
                )
            } else {
                return Ok((prefix, suffix));
            }
        }
        _ => "must contain %d only once".to_string(),
    };
    Err(error(pattern, reason))
}

fn error(pattern: &str, reason: String) -> ScheduleError {
    ScheduleError::Pattern {
        pattern: pattern.to_string(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_follow_the_highest_match() {
        let cases: [(&str, &[&str], &str); 10] = [
            ("snap%d", &[], "snap0"),
            ("snap%d", &["snap0"], "snap1"),
            ("snap%d", &["snap0", "snap3", "snap1"], "snap4"),
            (
                "snap%d",
                &["snap5", "manual", "snapfoo", "snap01x", "snap", "snap-9", "snap 9"],
                "snap6",
            ),
            ("snap%d", &["snap007"], "snap8"),
            ("snap%d", &["snap99999999999999999999999", "snap2"], "snap3"),
            (
                "auto-%d-daily",
                &["auto-4-daily", "auto-9-weekly", "auto-12-daily.bak"],
                "auto-5-daily",
            ),
            ("%d", &["3", "x3", "10"], "11"),
            ("%d.snap", &["1.snap", "2.snap.old"], "2.snap"),
            ("s%ds", &["ss", "s1s", "s4"], "s2s"),
        ];
        for (pattern, existing, want) in cases {
            assert_eq!(next_name(pattern, existing).unwrap(), want, "{pattern} {existing:?}");
        }
    }

    #[test]
    fn numbers_can_run_out() {
        let last = format!("snap{}", u64::MAX);
        assert_eq!(
            next_name("snap%d", &[last.as_str()]).unwrap_err().to_string(),
            "snapshot pattern \"snap%d\" has run out of numbers"
        );
        let long = format!("{}%d", "a".repeat(MAX_NAME_LEN - NUMBER_DIGITS));
        let huge = format!("{}10000000", "a".repeat(MAX_NAME_LEN - NUMBER_DIGITS));
        assert!(
            next_name(&long, &[huge.as_str()])
                .unwrap_err()
                .to_string()
                .ends_with("longer than 63 characters")
        );
    }

    #[test]
    fn patterns() {
        for good in [
            "snap%d",
            "%d",
            "auto-%d",
            "daily_%d.v1",
            "A%dZ",
            &format!("{}%d", "a".repeat(57)),
        ] {
            assert_eq!(validate_pattern(good), Ok(()), "{good}");
        }
        let cases = [
            ("snap", "snapshot pattern \"snap\" must contain %d"),
            ("", "snapshot pattern \"\" must contain %d"),
            ("snap%s", "snapshot pattern \"snap%s\" must contain %d"),
            ("%d-%d", "snapshot pattern \"%d-%d\" must contain %d only once"),
            (
                "snap/%d",
                "snapshot pattern \"snap/%d\" must contain %d and otherwise only letters, digits, '-', '_' and '.'",
            ),
            (
                "%%d",
                "snapshot pattern \"%%d\" must contain %d and otherwise only letters, digits, '-', '_' and '.'",
            ),
            (
                "snap %d",
                "snapshot pattern \"snap %d\" must contain %d and otherwise only letters, digits, '-', '_' and '.'",
            ),
            (".snap%d", "snapshot pattern \".snap%d\" must not start with '.'"),
        ];
        for (pattern, want) in cases {
            assert_eq!(validate_pattern(pattern).unwrap_err().to_string(), want, "{pattern}");
        }
        let too_long = format!("{}%d", "a".repeat(58));
        assert_eq!(
            validate_pattern(&too_long).unwrap_err().to_string(),
            format!(
                "snapshot pattern {too_long:?} is too long: names must stay within 63 characters with 6 digits in place of %d"
            )
        );
        assert!(next_name("snap", &[]).is_err());
    }

    #[test]
    fn snapshot_names() {
        for good in [
            "a",
            "snap0",
            "before-upgrade",
            "v1.2_rc",
            "A-b_C.d",
            "0",
            "x..y",
            &"a".repeat(63),
        ] {
            assert_eq!(validate_snapshot_name(good), Ok(()), "{good}");
        }
        let cases = [
            ("", "invalid snapshot name \"\": it is empty"),
            (
                "a/b",
                "invalid snapshot name \"a/b\": use letters, digits, '-', '_' and '.'",
            ),
            (
                "a b",
                "invalid snapshot name \"a b\": use letters, digits, '-', '_' and '.'",
            ),
            (
                "é",
                "invalid snapshot name \"é\": use letters, digits, '-', '_' and '.'",
            ),
            (
                "snap%d",
                "invalid snapshot name \"snap%d\": use letters, digits, '-', '_' and '.'",
            ),
            ("..", "invalid snapshot name \"..\": it must not start with '.'"),
            (
                ".hidden",
                "invalid snapshot name \".hidden\": it must not start with '.'",
            ),
        ];
        for (name, want) in cases {
            assert_eq!(validate_snapshot_name(name).unwrap_err().to_string(), want, "{name:?}");
        }
        let long = "a".repeat(64);
        assert_eq!(
            validate_snapshot_name(&long).unwrap_err().to_string(),
            format!("invalid snapshot name {long:?}: it is longer than 63 characters")
        );
    }
}
