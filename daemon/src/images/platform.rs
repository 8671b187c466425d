//! What a template may be asked to build: a release by a plain name, for an architecture
//! this host runs. Both reach a template's command line and its cache paths.

use crate::error::{Error, Result};

/// Each architecture by its kernel name (uname -m, what images are tagged with) and its
/// Debian name (what templates are given, as debootstrap takes it).
const ARCHITECTURES: &[(&str, &str)] = &[
    ("x86_64", "amd64"),
    ("i686", "i386"),
    ("aarch64", "arm64"),
    ("armv7l", "armhf"),
    ("ppc64le", "ppc64el"),
    ("s390x", "s390x"),
    ("riscv64", "riscv64"),
];

/// The kernel name of `requested` (either name; the host's own when empty), if this host
/// can run it: its own, and 32-bit x86 on x86_64.
pub fn resolve_arch(requested: &str, host: &str) -> Result<String> {
    if requested.is_empty() {
        return Ok(host.to_string());
    }
    let machine = ARCHITECTURES
        .iter()
        .find(|(machine, debian)| requested == *machine || requested == *debian)
        .map(|(machine, _)| *machine);
    let runnable = runnable_on(host);
    match machine {
        Some(machine) if runnable.contains(&machine) => Ok(machine.to_string()),
        _ => Err(Error::InvalidArgument(format!(
            "architecture {requested:?} does not run on this {host} host (it runs: {})",
            runnable.join(", ")
        ))),
    }
}

fn runnable_on(host: &str) -> Vec<&str> {
    match host {
        "x86_64" => vec!["x86_64", "i686"],
        _ => vec![host],
    }
}

/// The name a template is given for an architecture (debootstrap's); unknown ones as is.
pub fn debian_name(machine: &str) -> &str {
    ARCHITECTURES
        .iter()
        .find(|(known, _)| *known == machine)
        .map_or(machine, |(_, debian)| debian)
}

/// A release is a name such as bookworm, 12 or 3.19: never a path.
pub fn check_release(release: &str) -> Result<()> {
    let valid = release.is_empty()
        || (release.len() <= 64
            && release.starts_with(|c: char| c.is_ascii_alphanumeric())
            && release
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')));
    if valid {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!(
            "invalid release {release:?}: use up to 64 letters, digits, '.', '-' and '_', starting with a letter or digit"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn architectures_by_either_name_if_the_host_runs_them() {
        assert_eq!(resolve_arch("", "x86_64").unwrap(), "x86_64");
        assert_eq!(resolve_arch("amd64", "x86_64").unwrap(), "x86_64");
        assert_eq!(resolve_arch("i386", "x86_64").unwrap(), "i686");
        assert_eq!(resolve_arch("arm64", "aarch64").unwrap(), "aarch64");
        let err = resolve_arch("arm64", "x86_64").unwrap_err().to_string();
        assert_eq!(
            err,
            "architecture \"arm64\" does not run on this x86_64 host (it runs: x86_64, i686)"
        );
        assert!(resolve_arch("i386", "aarch64").is_err());
        assert!(resolve_arch("../x", "x86_64").is_err());
        assert_eq!(debian_name("x86_64"), "amd64");
        assert_eq!(debian_name("i686"), "i386");
    }

    #[test]
    fn releases_are_names_not_paths() {
        for good in ["", "bookworm", "12", "3.19", "jammy-updates", "sid_x"] {
            check_release(good).unwrap();
        }
        for bad in [
            "../../x",
            "/etc",
            "a/b",
            ".hidden",
            "-x",
            "a b",
            "a\nb",
            &"a".repeat(65),
        ] {
            let err = check_release(bad).unwrap_err().to_string();
            assert!(err.starts_with("invalid release"), "{bad}: {err}");
        }
    }
}
