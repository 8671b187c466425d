//! `[REMOTE:]NAME`: which daemon an argument is on. One parser for every verb, so
//! `host1:web1`, `host1:web1/snap0`, `host1:web1/etc/hosts` and a bare `host1:` all split
//! the same way.

/// The remote an argument names, if it names one, and the rest of it.
///
/// Only a ':' before any '/' separates a remote: after a '/' comes a snapshot or a path
/// inside a container, where a ':' is an ordinary character. Container, snapshot, network
/// and pool names never hold a ':' themselves, so nothing else is ambiguous.
pub fn split(arg: &str) -> (Option<&str>, &str) {
    match split_bytes(arg.as_bytes()) {
        Some(colon) => (Some(&arg[..colon]), &arg[colon + 1..]),
        None => (None, arg),
    }
}

/// Where the remote's ':' is in an argument that need not be UTF-8 (a NAME/PATH of `file`).
pub fn split_bytes(arg: &[u8]) -> Option<usize> {
    let colon = arg.iter().position(|&b| b == b':')?;
    (!arg[..colon].contains(&b'/')).then_some(colon)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_before_the_colon_is_the_remote() {
        assert_eq!(split("host1:web1"), (Some("host1"), "web1"));
        assert_eq!(split("host1:"), (Some("host1"), ""));
        assert_eq!(split("web1"), (None, "web1"));
        assert_eq!(split(""), (None, ""));
        assert_eq!(split(":web1"), (Some(""), "web1"));
        assert_eq!(split("host1:web1/snap0"), (Some("host1"), "web1/snap0"));
        assert_eq!(split("host1:web1/etc/a:b"), (Some("host1"), "web1/etc/a:b"));
    }

    #[test]
    fn a_colon_after_a_slash_belongs_to_the_path() {
        assert_eq!(split("web1/etc/a:b"), (None, "web1/etc/a:b"));
        assert_eq!(split("web1/snap:0"), (None, "web1/snap:0"));
        assert_eq!(split_bytes(b"web1/x:y"), None);
        assert_eq!(split_bytes(b"h:web1/x\xff"), Some(1));
    }
}
