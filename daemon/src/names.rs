//! Container names: hostname rules, because the name is the container's hostname.

use crate::error::{Error, Result};

/// 1 to 63 letters, digits and '-', starting with a letter, not ending with '-'.
pub fn validate(name: &str) -> Result<()> {
    let problem = if name.is_empty() {
        Some("is empty")
    } else if name.len() > 63 {
        Some("is longer than 63 characters")
    } else if !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
        Some("must start with a letter")
    } else if name.ends_with('-') {
        Some("must not end with '-'")
    } else if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        Some("may only contain letters, digits and '-'")
    } else {
        None
    };
    match problem {
        Some(problem) => Err(Error::InvalidArgument(format!(
            "invalid container name {name:?}: a name {problem}"
        ))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::validate;

    #[test]
    fn accepts_hostnames() {
        for name in ["a", "web1", "Web-1", "x-y-z", &"a".repeat(63)] {
            assert!(validate(name).is_ok(), "{name}");
        }
    }

    #[test]
    fn refuses_everything_else() {
        for name in [
            "",
            "1web",
            "-web",
            "web-",
            "we_b",
            "web.1",
            "web 1",
            "../x",
            "wéb",
            &"a".repeat(64),
        ] {
            let err = validate(name).unwrap_err().to_string();
            assert!(err.starts_with("invalid container name"), "{name}: {err}");
        }
    }
}
