//! Signal names as templates and users write them ("SIGRTMIN+3", "SIGUSR1", "15").

/// The number of a signal given by name (with or without "SIG"), as SIGRTMIN+n /
/// SIGRTMAX-n, or as a number.
pub fn parse(name: &str) -> Option<i32> {
    let name = name.trim();
    if let Ok(n) = name.parse::<i32>() {
        return (1..=libc::SIGRTMAX()).contains(&n).then_some(n);
    }
    let upper = name.to_ascii_uppercase();
    let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some(offset) = bare.strip_prefix("RTMIN") {
        return realtime(libc::SIGRTMIN(), offset, 1);
    }
    if let Some(offset) = bare.strip_prefix("RTMAX") {
        return realtime(libc::SIGRTMAX(), offset, -1);
    }
    let full = format!("SIG{bare}");
    nix::sys::signal::Signal::iterator()
        .find(|s| s.as_str() == full)
        .map(|s| s as i32)
}

fn realtime(base: i32, offset: &str, direction: i32) -> Option<i32> {
    let n = if offset.is_empty() {
        0
    } else {
        let (sign, digits) = offset.split_at(1);
        if (sign == "+" && direction == 1) || (sign == "-" && direction == -1) {
            digits.parse::<i32>().ok()?
        } else {
            return None;
        }
    };
    let signal = base + direction * n;
    (libc::SIGRTMIN()..=libc::SIGRTMAX())
        .contains(&signal)
        .then_some(signal)
}

/// The conventional name of a signal number ("SIGKILL", "SIGRTMIN+3").
pub fn name(signal: i32) -> String {
    if let Ok(s) = nix::sys::signal::Signal::try_from(signal) {
        return s.as_str().to_string();
    }
    let (min, max) = (libc::SIGRTMIN(), libc::SIGRTMAX());
    if (min..=max).contains(&signal) {
        let offset = signal - min;
        return if offset == 0 {
            "SIGRTMIN".into()
        } else {
            format!("SIGRTMIN+{offset}")
        };
    }
    format!("signal {signal}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_numbers_and_realtime() {
        assert_eq!(parse("SIGTERM"), Some(libc::SIGTERM));
        assert_eq!(parse("usr1"), Some(libc::SIGUSR1));
        assert_eq!(parse("9"), Some(9));
        assert_eq!(parse("SIGRTMIN+3"), Some(libc::SIGRTMIN() + 3));
        assert_eq!(parse("RTMIN+4"), Some(libc::SIGRTMIN() + 4));
        assert_eq!(parse("SIGRTMAX-1"), Some(libc::SIGRTMAX() - 1));
    }

    #[test]
    fn refuses_nonsense() {
        for bad in ["", "SIGNOPE", "0", "-3", "SIGRTMIN-1", "SIGRTMIN+99", "RTMAX+1"] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn names_round_trip() {
        for n in [libc::SIGINT, libc::SIGKILL, libc::SIGRTMIN() + 3] {
            assert_eq!(parse(&name(n)), Some(n));
        }
        assert_eq!(name(libc::SIGRTMIN() + 3), "SIGRTMIN+3");
    }
}
