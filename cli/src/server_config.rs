//! `sysc config set|unset|get|show` on the server's own keys (core.https_address).
//!
//! The same verbs take a container's keys, so the first argument decides: every server key
//! holds a '.', no container name does, and `REMOTE:` alone names a server. So
//! `config set core.https_address :8443` and `config set host1: core.https_address :8443`
//! are the server's, `config set web1 limits.cpu 2` a container's.

use std::collections::BTreeMap;

use serde::Serialize;
use sysc_proto::v1::server_client::ServerClient;
use sysc_proto::v1::{GetServerConfigRequest, ServerConfig, UpdateServerConfigRequest};
use tonic::transport::Channel;

use crate::config::parse_assignments;
use crate::connect::rpc_error;
use crate::format;
use crate::remote::target;

/// The server key the first argument of a config verb holds ("" for `REMOTE:` alone), or
/// None when it names a container. Works before and after the remote prefix is taken off.
pub fn server_subject(first: &str) -> Option<&str> {
    let (_, rest) = target::split(first);
    (rest.is_empty() || rest.contains('.')).then_some(rest)
}

/// `[REMOTE:] KEY VALUE`, `[REMOTE:] KEY=VALUE...`, or the key in first place itself.
pub fn assignments(subject: &str, args: &[String]) -> Result<BTreeMap<String, String>, String> {
    if subject.is_empty() {
        return parse_assignments(args);
    }
    let all: Vec<String> = std::iter::once(subject.to_string())
        .chain(args.iter().cloned())
        .collect();
    parse_assignments(&all)
}

/// `[REMOTE:] KEY...`, the first key maybe in first place.
pub fn unset_keys(subject: &str, keys: &[String]) -> Result<Vec<String>, String> {
    let all: Vec<String> = std::iter::once(subject)
        .filter(|key| !key.is_empty())
        .chain(keys.iter().map(String::as_str))
        .map(str::to_string)
        .collect();
    if all.is_empty() {
        return Err("no key given: expected [REMOTE:] KEY...".to_string());
    }
    Ok(all)
}

/// `REMOTE: KEY` or `[REMOTE:]KEY`.
pub fn get_key(subject: &str, key: Option<&str>) -> Result<String, String> {
    match (subject, key) {
        ("", Some(key)) => Ok(key.to_string()),
        ("", None) => Err("no key given: expected [REMOTE:] KEY".to_string()),
        (subject, None) => Ok(subject.to_string()),
        (subject, Some(extra)) => Err(format!(
            "{subject} is a server key, so {extra} is one argument too many"
        )),
    }
}

pub async fn set(channel: Channel, values: BTreeMap<String, String>) -> anyhow::Result<()> {
    update(
        channel,
        UpdateServerConfigRequest {
            set: values.into_iter().collect(),
            unset: Vec::new(),
        },
    )
    .await
}

pub async fn unset(channel: Channel, mut keys: Vec<String>) -> anyhow::Result<()> {
    let mut seen = std::collections::HashSet::new();
    keys.retain(|key| seen.insert(key.clone()));
    update(
        channel,
        UpdateServerConfigRequest {
            set: Default::default(),
            unset: keys,
        },
    )
    .await
}

async fn update(channel: Channel, request: UpdateServerConfigRequest) -> anyhow::Result<()> {
    ServerClient::new(channel)
        .update_config(request)
        .await
        .map_err(rpc_error)?;
    Ok(())
}

async fn fetch(channel: Channel) -> anyhow::Result<ServerConfig> {
    Ok(ServerClient::new(channel)
        .get_config(GetServerConfigRequest {})
        .await
        .map_err(rpc_error)?
        .into_inner())
}

/// An empty line for a key that is not set, as for a container's keys.
pub async fn get(channel: Channel, key: String) -> anyhow::Result<()> {
    let config = fetch(channel).await?;
    let value = config.config.get(&key).map(String::as_str).unwrap_or_default();
    format::print(&format!("{value}\n"))?;
    Ok(())
}

pub async fn show(channel: Channel) -> anyhow::Result<()> {
    format::print(&render(&fetch(channel).await?)?)?;
    Ok(())
}

/// `config:` as for a container, then what a client pinning this server needs to see.
fn render(server: &ServerConfig) -> anyhow::Result<String> {
    #[derive(Serialize)]
    struct Document<'a> {
        config: BTreeMap<&'a String, &'a String>,
        certificate_fingerprint: &'a str,
        listening_on: &'a str,
    }
    Ok(serde_yaml::to_string(&Document {
        config: server.config.iter().collect(),
        certificate_fingerprint: &server.certificate_fingerprint,
        listening_on: &server.listening_on,
    })?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(values: &[&str]) -> Vec<String> {
        values.iter().map(|v| v.to_string()).collect()
    }

    #[test]
    fn a_dot_or_a_bare_remote_names_the_server() {
        assert_eq!(server_subject("core.https_address"), Some("core.https_address"));
        assert_eq!(server_subject("host1:core.https_address"), Some("core.https_address"));
        assert_eq!(server_subject("host1:"), Some(""));
        assert_eq!(server_subject(""), Some(""));
        assert_eq!(server_subject("web1"), None);
        assert_eq!(server_subject("host1:web1"), None);
    }

    #[test]
    fn server_forms_take_their_keys_and_values() {
        let set = |subject: &str, args: &[&str]| assignments(subject, &strings(args));
        let one = BTreeMap::from([("core.https_address".to_string(), ":8443".to_string())]);
        assert_eq!(set("core.https_address", &[":8443"]).unwrap(), one);
        assert_eq!(set("", &["core.https_address", ":8443"]).unwrap(), one);
        assert_eq!(set("", &["core.https_address=:8443"]).unwrap(), one);
        assert_eq!(set("a.b=1", &["c.d=2"]).unwrap().len(), 2);
        assert!(set("core.https_address", &[":8443", "extra"]).is_err());
        assert!(set("", &["core.https_address"]).is_err());

        assert_eq!(unset_keys("a.b", &strings(&["c.d"])).unwrap(), ["a.b", "c.d"]);
        assert_eq!(unset_keys("", &strings(&["c.d"])).unwrap(), ["c.d"]);
        assert!(unset_keys("", &[]).is_err());

        assert_eq!(get_key("a.b", None).unwrap(), "a.b");
        assert_eq!(get_key("", Some("a.b")).unwrap(), "a.b");
        assert!(get_key("", None).is_err());
        assert!(get_key("a.b", Some("c")).is_err());
    }

    #[test]
    fn show_lists_the_keys_and_what_to_pin() {
        let server = ServerConfig {
            config: [("core.https_address".to_string(), ":8443".to_string())].into(),
            certificate_fingerprint: "ab".repeat(32),
            certificate: "PEM".into(),
            listening_on: "[::]:8443".into(),
        };
        assert_eq!(
            render(&server).unwrap(),
            format!(
                "config:\n  core.https_address: :8443\ncertificate_fingerprint: {}\nlistening_on: '[::]:8443'\n",
                "ab".repeat(32)
            )
        );
    }
}
