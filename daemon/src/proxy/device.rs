//! A proxy device's configuration, checked whole before anything is started.

use std::collections::BTreeMap;

use super::address::ProxyAddress;
use super::error::ProxyError;

const KEYS: [&str; 3] = ["type", "listen", "connect"];

/// The device's listen and connect addresses, after checking that its configuration has
/// exactly the keys a proxy device takes.
pub fn validate_device(config: &BTreeMap<String, String>) -> Result<(ProxyAddress, ProxyAddress), ProxyError> {
    if let Some(unknown) = config.keys().find(|key| !KEYS.contains(&key.as_str())) {
        return Err(ProxyError::UnknownKey(unknown.clone()));
    }
    let kind = required(config, "type")?;
    if kind != "proxy" {
        return Err(ProxyError::NotAProxy(kind.to_string()));
    }
    Ok((address(config, "listen")?, address(config, "connect")?))
}

fn required<'a>(config: &'a BTreeMap<String, String>, key: &'static str) -> Result<&'a str, ProxyError> {
    config.get(key).map(String::as_str).ok_or(ProxyError::MissingKey(key))
}

fn address(config: &BTreeMap<String, String>, key: &'static str) -> Result<ProxyAddress, ProxyError> {
    let value = required(config, key)?;
    value.parse().map_err(|source| ProxyError::Address {
        key,
        value: value.to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn error(pairs: &[(&str, &str)]) -> String {
        validate_device(&config(pairs)).unwrap_err().to_string()
    }

    #[test]
    fn accepts_a_complete_device() {
        let (listen, connect) = validate_device(&config(&[
            ("type", "proxy"),
            ("listen", "tcp:0.0.0.0:8080"),
            ("connect", "tcp:[::1]:80"),
        ]))
        .unwrap();
        assert_eq!(listen.to_string(), "tcp:0.0.0.0:8080");
        assert_eq!(connect.to_string(), "tcp:[::1]:80");
    }

    #[test]
    fn names_the_missing_key() {
        assert_eq!(
            error(&[("listen", "tcp:0.0.0.0:1"), ("connect", "tcp:127.0.0.1:1")]),
            "proxy device is missing the \"type\" key"
        );
        assert_eq!(
            error(&[("type", "proxy"), ("connect", "tcp:127.0.0.1:1")]),
            "proxy device is missing the \"listen\" key"
        );
        assert_eq!(
            error(&[("type", "proxy"), ("listen", "tcp:0.0.0.0:1")]),
            "proxy device is missing the \"connect\" key"
        );
    }

    #[test]
    fn names_an_unknown_key() {
        assert_eq!(
            error(&[
                ("type", "proxy"),
                ("listen", "tcp:0.0.0.0:1"),
                ("connect", "tcp:127.0.0.1:1"),
                ("bind", "host"),
            ]),
            "proxy device has an unknown key \"bind\" (a proxy device takes type, listen and connect)"
        );
    }

    #[test]
    fn refuses_another_type() {
        assert_eq!(
            error(&[
                ("type", "disk"),
                ("listen", "tcp:0.0.0.0:1"),
                ("connect", "tcp:127.0.0.1:1")
            ]),
            "device of type \"disk\" is not a proxy device"
        );
    }

    #[test]
    fn names_the_key_and_value_of_a_bad_address() {
        assert_eq!(
            error(&[
                ("type", "proxy"),
                ("listen", "tcp:1.2.3.4"),
                ("connect", "tcp:127.0.0.1:1")
            ]),
            "proxy listen address \"tcp:1.2.3.4\": expected tcp:ADDRESS:PORT"
        );
        assert_eq!(
            error(&[
                ("type", "proxy"),
                ("listen", "tcp:0.0.0.0:1"),
                ("connect", "udp:127.0.0.1:53")
            ]),
            "proxy connect address \"udp:127.0.0.1:53\": only tcp is supported for now, not udp"
        );
    }
}
