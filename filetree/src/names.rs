//! Which names may appear in an archive, and the temporary names extraction writes under.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

use crate::error::{TreeError, show};

/// Prefix of the names files and symlinks are written under before they are renamed into place.
pub(crate) const TEMP_PREFIX: &str = ".sysc-tmp-";

/// The archive's top name must be one directory entry name, or the archive would not extract as
/// write_tree promises (and a `..` top would escape on extraction by GNU tar).
pub(crate) fn check_top(top: &OsStr) -> Result<&[u8], TreeError> {
    let bytes = top.as_bytes();
    if is_normal(bytes) {
        Ok(bytes)
    } else {
        Err(TreeError::entry(
            bytes,
            "is not a single file name to use as the archive's top",
        ))
    }
}

fn is_normal(name: &[u8]) -> bool {
    !name.is_empty() && name != b"." && name != b".." && !name.contains(&b'/') && !name.contains(&0)
}

/// Splits an archive entry's path into its components, refusing anything that could reach
/// outside the directory it is extracted into. Empty and `.` components carry no meaning and go.
pub(crate) fn components(path: &[u8]) -> Result<Vec<&[u8]>, TreeError> {
    if path.first() == Some(&b'/') || path.contains(&0) {
        return Err(TreeError::unsafe_path(path));
    }
    let mut parts = Vec::new();
    for part in path.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => return Err(TreeError::unsafe_path(path)),
            _ => parts.push(part),
        }
    }
    if parts.is_empty() {
        return Err(TreeError::Corrupt(format!("entry \"{}\" names no file", show(path))));
    }
    Ok(parts)
}

/// `.sysc-tmp-` and 16 hex digits: random, so a name planted in advance is unlikely to be hit,
/// and O_EXCL makes a hit harmless.
pub(crate) fn temp_name() -> String {
    format!("{TEMP_PREFIX}{:016x}", rand::random::<u64>())
}

/// `a`, `b` → `a/b`, for the paths the archive and messages show.
pub(crate) fn join(parent: &[u8], name: &[u8]) -> Vec<u8> {
    let mut path = Vec::with_capacity(parent.len() + 1 + name.len());
    path.extend_from_slice(parent);
    path.push(b'/');
    path.extend_from_slice(name);
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_is_one_normal_name() {
        assert!(check_top(OsStr::new("etc")).is_ok());
        assert!(check_top(OsStr::new("with space\n")).is_ok());
        for bad in ["", ".", "..", "a/b", "/etc", "a\0b"] {
            assert!(check_top(OsStr::new(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn components_drop_dots_and_empty_parts() {
        let parts = components(b"./top//a/./b/").unwrap();
        assert_eq!(parts, vec![&b"top"[..], b"a", b"b"]);
    }

    #[test]
    fn components_refuse_escapes() {
        for bad in [&b"/abs"[..], b"top/../../x", b"..", b"top/a\0b", b"top/.."] {
            assert!(matches!(components(bad), Err(TreeError::Unsafe { .. })), "{bad:?}");
        }
        assert!(matches!(components(b"./"), Err(TreeError::Corrupt(_))));
    }

    #[test]
    fn temp_names_are_distinct() {
        let a = temp_name();
        assert!(a.starts_with(TEMP_PREFIX));
        assert_eq!(a.len(), TEMP_PREFIX.len() + 16);
        assert_ne!(a, temp_name());
    }
}
