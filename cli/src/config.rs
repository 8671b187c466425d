//! `sysc config set|unset|get|show|edit|keys`: a container's configuration, and the keys it
//! may hold.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::io::{self, IsTerminal};
use std::process::ExitCode;

use anyhow::{Context, anyhow, bail};
use clap::ValueEnum;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use sysc_proto::v1::containers_client::ContainersClient;
use sysc_proto::v1::server_client::ServerClient;
use sysc_proto::v1::{ConfigKey, ConfigKeysRequest, ConfigMap, GetRequest, UpdateConfigRequest};
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::oneshot;
use tonic::transport::Channel;
use tonic::{Code, Status};

use crate::connect::rpc_error;
use crate::editor;
use crate::format::{self, Layout, Listing, OutputFormat, yes_no};
use crate::lifecycle::{FailuresReported, parse_config_pair};

/// Keys the daemon records for itself; shown, but not settable.
const VOLATILE_PREFIX: &str = "volatile.";

/// What a shell reports for a process that Ctrl+C ended.
const INTERRUPTED: u8 = 130;

/// The arguments of `config set` after NAME, in either of the forms Incus accepts: `KEY VALUE`,
/// or `KEY=VALUE...` when the first one holds a '='. A repeated key keeps its last value.
pub fn parse_assignments(args: &[String]) -> Result<BTreeMap<String, String>, String> {
    match args {
        [] => Err("expected KEY VALUE or KEY=VALUE...".to_string()),
        [first, ..] if first.contains('=') => args
            .iter()
            .map(|arg| {
                parse_config_pair(arg).map_err(|err| {
                    format!("{arg:?}: {err} (when the first argument is KEY=VALUE, all of them must be)")
                })
            })
            .collect(),
        [key, _] if key.is_empty() => Err("the key is empty".to_string()),
        [key, value] => Ok(BTreeMap::from([(key.clone(), value.clone())])),
        [key] => Err(format!("no value for {key}: expected KEY VALUE or KEY=VALUE")),
        [key, ..] => Err(format!(
            "KEY VALUE takes a single value, but {} followed {key}; to set several keys, write KEY=VALUE for each",
            args.len() - 1
        )),
    }
}

pub async fn set(channel: Channel, name: String, values: BTreeMap<String, String>) -> anyhow::Result<()> {
    update(
        channel,
        UpdateConfigRequest {
            name,
            set: values.into_iter().collect(),
            unset: Vec::new(),
            replace: false,
            if_unchanged: None,
        },
    )
    .await
}

pub async fn unset(channel: Channel, name: String, mut keys: Vec<String>) -> anyhow::Result<()> {
    let mut seen = HashSet::new();
    keys.retain(|key| seen.insert(key.clone()));
    update(
        channel,
        UpdateConfigRequest {
            name,
            set: Default::default(),
            unset: keys,
            replace: false,
            if_unchanged: None,
        },
    )
    .await
}

async fn update(channel: Channel, request: UpdateConfigRequest) -> anyhow::Result<()> {
    ContainersClient::new(channel)
        .update_config(request)
        .await
        .map_err(rpc_error)?;
    Ok(())
}

async fn fetch_config(channel: Channel, name: String) -> anyhow::Result<BTreeMap<String, String>> {
    let container = ContainersClient::new(channel)
        .get(GetRequest { name })
        .await
        .map_err(rpc_error)?
        .into_inner();
    Ok(container.config.into_iter().collect())
}

/// The value, or an empty line for a key that is not set (as Incus does): either way a
/// script gets what `$(sysc config get ...)` should hold, and exit status 0. A name that
/// is no config key at all (a typo such as limits.memroy) is an error, not an empty line.
pub async fn get(channel: Channel, name: String, key: String) -> anyhow::Result<()> {
    let config = fetch_config(channel.clone(), name).await?;
    let value = match config.get(&key) {
        Some(value) => value.as_str(),
        None if is_known_key(channel, &key).await? => "",
        None => bail!("unknown config key {key} (`sysc config keys` lists them)"),
    };
    format::print(&format!("{value}\n"))?;
    Ok(())
}

/// Whether the registry lists `key`: as it is, or with the NAME in a listed name filled
/// in ("environment.NAME" takes anything after the dot, "snapshots.NAME.schedule" one
/// part without dots).
fn in_registry(registry: &[ConfigKey], key: &str) -> bool {
    registry.iter().any(|listed| match listed.name.split_once("NAME") {
        None => listed.name == key,
        Some((before, "")) => key.len() > before.len() && key.starts_with(before),
        Some((before, after)) => key
            .strip_prefix(before)
            .and_then(|rest| rest.strip_suffix(after))
            .is_some_and(|name| !name.is_empty() && !name.contains('.')),
    })
}

/// Whether `key` is a config key a container may hold, the daemon's volatile.* included.
pub async fn is_known_key(channel: Channel, key: &str) -> anyhow::Result<bool> {
    Ok(first_unknown_key(channel, &[key]).await?.is_none())
}

/// The first of `keys` that is no config key a container may hold, if any; asks the
/// daemon for its registry at most once.
pub async fn first_unknown_key<'a>(channel: Channel, keys: &[&'a str]) -> anyhow::Result<Option<&'a str>> {
    let mut keys = keys
        .iter()
        .copied()
        .filter(|key| !key.starts_with("volatile."))
        .peekable();
    if keys.peek().is_none() {
        return Ok(None);
    }
    let registry = registry(channel).await?;
    Ok(keys.find(|key| !in_registry(&registry, key)))
}

async fn registry(channel: Channel) -> anyhow::Result<Vec<ConfigKey>> {
    Ok(ServerClient::new(channel)
        .config_keys(ConfigKeysRequest {})
        .await
        .map_err(rpc_error)?
        .into_inner()
        .keys)
}

pub async fn show(channel: Channel, name: String) -> anyhow::Result<()> {
    let config = fetch_config(channel, name).await?;
    format::print(&render_document(&config)?)?;
    Ok(())
}

/// `config:` and the keys, sorted; `volatile.*` included, as Incus shows them.
fn render_document(config: &BTreeMap<String, String>) -> anyhow::Result<String> {
    #[derive(Serialize)]
    struct Document<'a> {
        config: &'a BTreeMap<String, String>,
    }
    Ok(serde_yaml::to_string(&Document { config })?)
}

/// What `config edit` reads back: `config:` and nothing else.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EditedDocument {
    config: EditedConfig,
}

/// Keys to values. Any scalar is taken as the string it was written as (`true`, `1.50`, a
/// bare `key:` is ""), so nobody has to quote numbers and booleans; lists and mappings are
/// refused, and so is a key written twice (one of the two would be lost without a word).
#[derive(Debug, Default)]
struct EditedConfig(BTreeMap<String, String>);

impl<'de> Deserialize<'de> for EditedConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ConfigVisitor;

        impl<'de> Visitor<'de> for ConfigVisitor {
            type Value = EditedConfig;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping of config keys to values")
            }

            /// `config:` with every key deleted.
            fn visit_unit<E: de::Error>(self) -> Result<EditedConfig, E> {
                Ok(EditedConfig::default())
            }

            fn visit_none<E: de::Error>(self) -> Result<EditedConfig, E> {
                Ok(EditedConfig::default())
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<EditedConfig, A::Error> {
                let mut config = BTreeMap::new();
                while let Some(key) = map.next_key::<String>()? {
                    let value = map.next_value::<Option<String>>()?.unwrap_or_default();
                    if config.contains_key(&key) {
                        return Err(de::Error::custom(format!("key {key} appears more than once")));
                    }
                    config.insert(key, value);
                }
                Ok(EditedConfig(config))
            }
        }

        deserializer.deserialize_any(ConfigVisitor)
    }
}

fn parse_document(text: &str) -> anyhow::Result<BTreeMap<String, String>> {
    let document: EditedDocument = serde_yaml::from_str(text).context("the edited configuration is not valid")?;
    Ok(document.config.0)
}

fn is_volatile(key: &str) -> bool {
    key.starts_with(VOLATILE_PREFIX)
}

/// The request that saves an edit, or None when it changes nothing. Every user key is sent
/// and `replace` unsets the others. A `volatile.*` key the user left alone (or deleted) is
/// the daemon's business; one they changed or added is sent, so the daemon's refusal tells
/// them these keys are not theirs to set.
fn plan_update(
    name: &str,
    original: &BTreeMap<String, String>,
    edited: &BTreeMap<String, String>,
) -> Option<UpdateConfigRequest> {
    let set: BTreeMap<&String, &String> = edited
        .iter()
        .filter(|&(key, value)| !is_volatile(key) || original.get(key) != Some(value))
        .collect();
    let user_keys: BTreeMap<&String, &String> = original.iter().filter(|(key, _)| !is_volatile(key)).collect();
    (set != user_keys).then(|| UpdateConfigRequest {
        name: name.to_string(),
        set: set
            .into_iter()
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect(),
        unset: Vec::new(),
        replace: true,
        if_unchanged: Some(ConfigMap {
            config: original.clone().into_iter().collect(),
        }),
    })
}

/// The edit replayed on a configuration that changed while the editor was open: every key
/// the user changed (set, altered or removed) takes their value, every other key the
/// current one. Keys both sides changed, differently, are the conflicts returned instead.
fn rebase(
    original: &BTreeMap<String, String>,
    edited: &BTreeMap<String, String>,
    current: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, Vec<String>> {
    let keys: std::collections::BTreeSet<&String> =
        original.keys().chain(edited.keys()).chain(current.keys()).collect();
    let mut merged = BTreeMap::new();
    let mut conflicts = Vec::new();
    for key in keys {
        let (was, mine, theirs) = (original.get(key), edited.get(key), current.get(key));
        let value = if mine == was {
            theirs
        } else if theirs == was || theirs == mine {
            mine
        } else {
            conflicts.push(key.clone());
            continue;
        };
        if let Some(value) = value {
            merged.insert(key.clone(), value.clone());
        }
    }
    if conflicts.is_empty() {
        Ok(merged)
    } else {
        Err(conflicts)
    }
}

/// Refusals of what the user wrote, which another round in the editor can fix; anything else
/// (the container is gone, the daemon is) ends the edit.
fn is_refusal(status: &Status) -> bool {
    matches!(
        status.code(),
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange
    )
}

fn edit_header(name: &str) -> String {
    format!(
        "### The configuration of container {name}, in YAML. Lines starting with '#' are ignored.\n\
         ###\n\
         ### Saving sets every key listed under config: and unsets the others. volatile.* keys\n\
         ### are recorded by the daemon and cannot be changed. `sysc config keys` lists the keys.\n\
         ###\n\
         ### For example:\n\
         ###   config:\n\
         ###     boot.autostart: true\n\
         ###     environment.LANG: C.UTF-8\n"
    )
}

/// How `config edit` talks to the user.
pub struct EditSession {
    /// A shell command line; the file name is appended as its last argument.
    pub editor: String,
    /// Whether a refused edit can go back to the editor, after asking on stdin.
    pub interactive: bool,
}

impl EditSession {
    pub fn from_environment() -> Self {
        Self {
            editor: editor::from_environment(),
            interactive: io::stdin().is_terminal(),
        }
    }
}

pub async fn edit(channel: Channel, name: String, session: EditSession) -> anyhow::Result<ExitCode> {
    let EditSession { editor, interactive } = session;
    let mut client = ContainersClient::new(channel);
    let mut original = read_config(&mut client, &name).await?;
    let file = tempfile::Builder::new()
        .prefix(&format!("sysc-config-{name}-"))
        .suffix(".yaml")
        .tempfile()
        .context("cannot create a temporary file to edit")?;

    // Ctrl+C and Ctrl+\ reach the whole foreground process group, and they are the editor's
    // to handle: sysc must not die under it and leave it running on a terminal the shell is
    // using again. (Listening is what keeps the default action away; the editor gets the
    // default back when it executes.)
    let _interrupts_while_editing = signal(SignalKind::interrupt())?;
    let _quits_while_editing = signal(SignalKind::quit())?;

    let mut text = edit_header(&name) + &render_document(&original)?;
    loop {
        std::fs::write(file.path(), &text).with_context(|| format!("cannot write {}", file.path().display()))?;
        editor::run(&editor, file.path(), "the configuration is unchanged").await?;
        let edited = std::fs::read(file.path()).with_context(|| format!("cannot read {}", file.path().display()))?;
        let edited = String::from_utf8_lossy(&edited).into_owned();

        let problem = match parse_document(&edited) {
            Err(err) => err,
            Ok(mut config) => loop {
                let Some(request) = plan_update(&name, &original, &config) else {
                    return Ok(ExitCode::SUCCESS);
                };
                match client.update_config(request).await {
                    Ok(_) => return Ok(ExitCode::SUCCESS),
                    // Changed since it was read: the edit is replayed on what is there now.
                    Err(status) if status.code() == Code::Aborted => {
                        let current = read_config(&mut client, &name).await?;
                        let rebased = rebase(&original, &config, &current);
                        original = current;
                        match rebased {
                            Ok(merged) => config = merged,
                            Err(conflicts) => {
                                let again = if interactive { "; save again to set yours" } else { "" };
                                break anyhow!(
                                    "{} changed in container {name} while it was being edited{again}",
                                    conflicts.join(", ")
                                );
                            }
                        }
                    }
                    Err(status) if is_refusal(&status) => break rpc_error(status),
                    Err(status) => return Err(rpc_error(status)),
                }
            },
        };
        if !interactive {
            return Err(problem);
        }
        eprintln!("error: {problem:#}");
        eprint!("Press enter to edit again or Ctrl+C to abort");
        match wait_for_enter().await? {
            Answer::Enter => text = edited,
            Answer::Interrupt => {
                eprintln!();
                return Ok(ExitCode::from(INTERRUPTED));
            }
            // Ctrl+D: the user is done, and the error has been printed already.
            Answer::EndOfInput => {
                eprintln!();
                return Err(FailuresReported.into());
            }
        }
    }
}

async fn read_config(client: &mut ContainersClient<Channel>, name: &str) -> anyhow::Result<BTreeMap<String, String>> {
    let container = client
        .get(GetRequest { name: name.to_string() })
        .await
        .map_err(rpc_error)?
        .into_inner();
    Ok(container.config.into_iter().collect())
}

enum Answer {
    Enter,
    Interrupt,
    EndOfInput,
}

async fn wait_for_enter() -> anyhow::Result<Answer> {
    // A listener made now sees only the Ctrl+C pressed from now on.
    let mut interrupts: Signal = signal(SignalKind::interrupt())?;
    let (tx, rx) = oneshot::channel();
    // A thread of its own, not spawn_blocking: after Ctrl+C nobody waits for it to return.
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = tx.send(io::stdin().read_line(&mut line));
    });
    tokio::select! {
        read = rx => match read.map_err(|_| anyhow!("stdin reader vanished"))? {
            Ok(0) => Ok(Answer::EndOfInput),
            Ok(_) => Ok(Answer::Enter),
            Err(err) => Err(anyhow!(err).context("cannot read stdin")),
        },
        _ = interrupts.recv() => Ok(Answer::Interrupt),
    }
}

/// `config keys --format`: the list formats, and a GitHub table for the README.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum KeysFormat {
    Table,
    Json,
    Yaml,
    Csv,
    Markdown,
}

/// The daemon's registry, in its own order (the order the README documents them in).
pub async fn keys(channel: Channel, format: KeysFormat) -> anyhow::Result<()> {
    let keys = registry(channel).await?;
    let text = match format {
        KeysFormat::Markdown => markdown(&keys),
        KeysFormat::Table => format::render(&keys, OutputFormat::Table)?,
        KeysFormat::Json => format::render(&keys, OutputFormat::Json)?,
        KeysFormat::Yaml => format::render(&keys, OutputFormat::Yaml)?,
        KeysFormat::Csv => format::render(&keys, OutputFormat::Csv)?,
    };
    format::print(&text)?;
    Ok(())
}

/// A GitHub table: a '|' inside a cell is escaped and a line break becomes a space, so every
/// key stays one row.
fn markdown(keys: &[ConfigKey]) -> String {
    let cell = |text: &str| text.replace('|', "\\|").replace(['\r', '\n'], " ");
    let mut out = "| key | type | default | live | description |\n|---|---|---|---|---|\n".to_string();
    for key in keys {
        let default = if key.default.is_empty() {
            "—".to_string()
        } else {
            cell(&key.default)
        };
        out += &format!(
            "| `{}` | {} | {default} | {} | {} |\n",
            cell(&key.name),
            cell(&key.r#type),
            yes_no(key.live),
            cell(&key.description)
        );
    }
    out
}

#[derive(Debug, Serialize)]
pub struct ConfigKeyRecord {
    name: String,
    #[serde(rename = "type")]
    kind: String,
    default: String,
    live: bool,
    description: String,
}

impl Listing for ConfigKey {
    type Record = ConfigKeyRecord;
    const HEADER: &'static [&'static str] = &["KEY", "TYPE", "DEFAULT", "LIVE", "DESCRIPTION"];

    fn record(&self) -> ConfigKeyRecord {
        ConfigKeyRecord {
            name: self.name.clone(),
            kind: self.r#type.clone(),
            default: self.default.clone(),
            live: self.live,
            description: self.description.clone(),
        }
    }

    fn cells(&self, layout: Layout) -> Vec<String> {
        vec![
            self.name.clone(),
            self.r#type.clone(),
            if self.default.is_empty() {
                layout.empty().to_string()
            } else {
                self.default.clone()
            },
            yes_no(self.live).to_string(),
            self.description.clone(),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(args: &[&str]) -> Vec<String> {
        args.iter().map(|arg| arg.to_string()).collect()
    }

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn registry_names_match_as_listed_or_with_name_filled_in() {
        let listed = |names: &[&str]| -> Vec<ConfigKey> {
            names
                .iter()
                .map(|name| ConfigKey {
                    name: name.to_string(),
                    ..Default::default()
                })
                .collect()
        };
        let registry = listed(&["limits.memory", "environment.NAME", "snapshots.NAME.schedule"]);
        for known in [
            "limits.memory",
            "environment.http_proxy",
            "environment.a.b",
            "snapshots.daily.schedule",
        ] {
            assert!(in_registry(&registry, known), "{known}");
        }
        for unknown in [
            "limits.memroy",
            "limits",
            "environment.",
            "snapshots..schedule",
            "snapshots.a.b.schedule",
            "snapshots.daily.schedul",
        ] {
            assert!(!in_registry(&registry, unknown), "{unknown}");
        }
    }

    #[test]
    fn set_takes_key_value_or_pairs() {
        assert_eq!(
            parse_assignments(&args(&["boot.autostart", "true"])),
            Ok(map(&[("boot.autostart", "true")]))
        );
        // The value of KEY VALUE is taken whole, '=' and all.
        assert_eq!(
            parse_assignments(&args(&["environment.OPTS", "a=b"])),
            Ok(map(&[("environment.OPTS", "a=b")]))
        );
        assert_eq!(
            parse_assignments(&args(&["environment.X", ""])),
            Ok(map(&[("environment.X", "")]))
        );
        assert_eq!(
            parse_assignments(&args(&["boot.autostart=true"])),
            Ok(map(&[("boot.autostart", "true")]))
        );
        assert_eq!(
            parse_assignments(&args(&["a=1", "environment.B=x=y", "a=2", "c="])),
            Ok(map(&[("a", "2"), ("environment.B", "x=y"), ("c", "")]))
        );
    }

    #[test]
    fn set_usage_errors_say_what_is_wrong() {
        let err = |list: &[&str]| parse_assignments(&args(list)).unwrap_err();
        assert!(err(&[]).contains("expected KEY VALUE or KEY=VALUE"));
        assert_eq!(
            err(&["boot.autostart"]),
            "no value for boot.autostart: expected KEY VALUE or KEY=VALUE"
        );
        assert!(err(&["a", "b", "c"]).contains("KEY VALUE takes a single value, but 2 followed a"));
        let mixed = err(&["a=1", "b", "2"]);
        assert!(mixed.starts_with("\"b\": expected KEY=VALUE"), "{mixed}");
        assert!(err(&["a=1", "=2"]).contains("the key before '=' is empty"));
        assert_eq!(err(&["", "x"]), "the key is empty");
    }

    #[test]
    fn show_is_yaml_under_config_sorted_with_volatile_keys() {
        let config = map(&[
            ("volatile.idmap.base", "1000000"),
            ("environment.LANG", "C.UTF-8"),
            ("boot.autostart", "true"),
        ]);
        assert_eq!(
            render_document(&config).unwrap(),
            "config:\n  boot.autostart: 'true'\n  environment.LANG: C.UTF-8\n  volatile.idmap.base: '1000000'\n"
        );
        assert_eq!(render_document(&BTreeMap::new()).unwrap(), "config: {}\n");
    }

    #[test]
    fn shown_yaml_reads_back_the_same() {
        let config = map(&[
            ("environment.MULTI", "line one\nline two\n"),
            ("environment.EMPTY", ""),
            ("environment.QUOTES", "it's \"quoted\": yes"),
            ("environment.SPACES", "  padded  "),
            ("boot.autostart", "false"),
            ("environment.NULL", "null"),
            ("environment.TILDE", "~"),
        ]);
        let text = edit_header("web1") + &render_document(&config).unwrap();
        assert_eq!(parse_document(&text).unwrap(), config);
    }

    #[test]
    fn edited_scalars_are_taken_as_written() {
        let text = "config:\n  boot.autostart: true\n  a: 123\n  b: 1.50\n  c: 0x10\n  d:\n  e: null\n  f: 'x'\n";
        assert_eq!(
            parse_document(text).unwrap(),
            map(&[
                ("boot.autostart", "true"),
                ("a", "123"),
                ("b", "1.50"),
                ("c", "0x10"),
                ("d", ""),
                ("e", ""),
                ("f", "x")
            ])
        );
        assert_eq!(parse_document("config:\n").unwrap(), BTreeMap::new());
        assert_eq!(parse_document("config: {}\n# done\n").unwrap(), BTreeMap::new());
    }

    #[test]
    fn edited_yaml_of_the_wrong_shape_is_refused() {
        let err = |text: &str| format!("{:#}", parse_document(text).unwrap_err());
        assert!(
            err("config:\n  a: [1, 2]\n").contains("invalid type: sequence"),
            "{}",
            err("config:\n  a: [1, 2]\n")
        );
        assert!(err("config:\n  a:\n    b: c\n").contains("invalid type: map"));
        assert!(err("config: hello\n").contains("a mapping of config keys to values"));
        assert!(err("config:\n  a: 1\n  a: 2\n").contains("key a appears more than once"));
        assert!(err("confg:\n  a: 1\n").contains("unknown field `confg`"));
        assert!(err("config: {}\ndevices: {}\n").contains("unknown field `devices`"));
        assert!(err("- config\n").contains("the edited configuration is not valid"));
        assert!(err("").contains("the edited configuration is not valid"));
        assert!(err("config:\n  a: 'unterminated\n").contains("the edited configuration is not valid"));
    }

    #[test]
    fn an_unchanged_edit_sends_nothing() {
        let original = map(&[("boot.autostart", "true"), ("volatile.idmap.base", "1000000")]);
        assert!(plan_update("web1", &original, &original).is_none());
        // Deleting a volatile key is not a change: those keys are the daemon's.
        assert!(plan_update("web1", &original, &map(&[("boot.autostart", "true")])).is_none());
        assert!(plan_update("web1", &BTreeMap::new(), &BTreeMap::new()).is_none());
    }

    #[test]
    fn a_saved_edit_replaces_the_user_keys() {
        let original = map(&[
            ("boot.autostart", "true"),
            ("environment.A", "1"),
            ("volatile.idmap.base", "1000000"),
        ]);
        let edited = map(&[
            ("boot.autostart", "true"),
            ("environment.B", "2"),
            ("volatile.idmap.base", "1000000"),
        ]);
        let request = plan_update("web1", &original, &edited).unwrap();
        assert_eq!(request.name, "web1");
        assert!(request.replace);
        assert!(request.unset.is_empty());
        assert_eq!(
            request.set.into_iter().collect::<BTreeMap<_, _>>(),
            map(&[("boot.autostart", "true"), ("environment.B", "2")])
        );

        // Removing every user key is a change too: replace with nothing unsets them all.
        let request = plan_update("web1", &original, &map(&[("volatile.idmap.base", "1000000")])).unwrap();
        assert!(request.set.is_empty() && request.replace);
    }

    #[test]
    fn a_changed_volatile_key_is_sent_for_the_daemon_to_refuse() {
        let original = map(&[("volatile.idmap.base", "1000000")]);
        let request = plan_update("web1", &original, &map(&[("volatile.idmap.base", "5")])).unwrap();
        assert_eq!(request.set.get("volatile.idmap.base").map(String::as_str), Some("5"));
        let request = plan_update(
            "web1",
            &original,
            &map(&[("volatile.idmap.base", "1000000"), ("volatile.new", "x")]),
        )
        .unwrap();
        assert_eq!(request.set.len(), 1);
        assert_eq!(request.set.get("volatile.new").map(String::as_str), Some("x"));
    }

    #[test]
    fn an_edit_is_replayed_on_changes_made_meanwhile() {
        let original = map(&[("a", "1"), ("b", "1"), ("c", "1")]);
        // The user sets a, removes b and adds d; meanwhile c was changed and e set.
        let edited = map(&[("a", "2"), ("c", "1"), ("d", "1")]);
        let current = map(&[("a", "1"), ("b", "1"), ("c", "9"), ("e", "1")]);
        assert_eq!(
            rebase(&original, &edited, &current),
            Ok(map(&[("a", "2"), ("c", "9"), ("d", "1"), ("e", "1")]))
        );
        // The same change on both sides is no conflict; a removal meanwhile stays.
        let current = map(&[("a", "2"), ("c", "1")]);
        assert_eq!(
            rebase(&original, &edited, &current),
            Ok(map(&[("a", "2"), ("c", "1"), ("d", "1")]))
        );
        // Different changes to one key are.
        let current = map(&[("a", "3"), ("b", "1"), ("c", "1"), ("d", "2")]);
        assert_eq!(
            rebase(&original, &edited, &current),
            Err(vec!["a".to_string(), "d".to_string()])
        );
    }

    #[test]
    fn only_refusals_of_the_content_send_the_user_back_to_the_editor() {
        assert!(is_refusal(&Status::invalid_argument("unknown config key x")));
        assert!(is_refusal(&Status::failed_precondition("cannot change while running")));
        assert!(!is_refusal(&Status::not_found("container web1 not found")));
        assert!(!is_refusal(&Status::unimplemented("not yet")));
        assert!(!is_refusal(&Status::unavailable("gone")));
    }

    mod against_a_daemon {
        use super::*;
        use crate::fake_daemon::{Call, FakeDaemon, container};
        use std::os::unix::fs::PermissionsExt;
        use std::path::Path;
        use sysc_proto::v1::ContainerState;

        async fn daemon() -> FakeDaemon {
            FakeDaemon::start(vec![container(
                "web1",
                ContainerState::Running,
                &[("boot.autostart", "true"), ("volatile.idmap.base", "1000000")],
            )])
            .await
        }

        /// An "editor": a script that gets the file as $1, leaves a copy of what it was given
        /// and the file's name in `dir`, then runs `body`.
        fn editor(dir: &Path, body: &str) -> EditSession {
            let script = dir.join("editor");
            let text = format!(
                "#!/bin/sh\nset -e\necho \"$1\" > {dir}/path\ncp \"$1\" {dir}/given\n{body}\n",
                dir = dir.display()
            );
            std::fs::write(&script, text).unwrap();
            std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
            EditSession {
                editor: script.display().to_string(),
                interactive: false,
            }
        }

        async fn edit_with(daemon: &FakeDaemon, body: &str) -> (anyhow::Result<ExitCode>, tempfile::TempDir) {
            let dir = tempfile::tempdir().unwrap();
            let result = edit(daemon.channel.clone(), "web1".into(), editor(dir.path(), body)).await;
            (result, dir)
        }

        #[tokio::test]
        async fn saving_unchanged_sends_nothing_and_removes_the_file() {
            let daemon = daemon().await;
            let (result, dir) = edit_with(&daemon, "true").await;
            assert_eq!(result.unwrap(), ExitCode::SUCCESS);
            assert!(daemon.calls().is_empty());

            let given = std::fs::read_to_string(dir.path().join("given")).unwrap();
            assert!(given.starts_with("### The configuration of container web1"), "{given}");
            assert!(
                given.ends_with("config:\n  boot.autostart: 'true'\n  volatile.idmap.base: '1000000'\n"),
                "{given}"
            );
            let path = std::fs::read_to_string(dir.path().join("path")).unwrap();
            assert!(path.trim_end().ends_with(".yaml"), "{path}");
            assert!(!Path::new(path.trim_end()).exists(), "{path} is left behind");
        }

        #[tokio::test]
        async fn a_saved_change_replaces_the_config_in_one_request() {
            let daemon = daemon().await;
            let body = "sed -i -e 's/boot.autostart: .*/boot.autostart: false/' \"$1\"\n\
                        printf '  environment.NEW: 1.50\\n' >> \"$1\"";
            let (result, _dir) = edit_with(&daemon, body).await;
            assert_eq!(result.unwrap(), ExitCode::SUCCESS);
            let calls = daemon.calls();
            let [Call::UpdateConfig(request)] = calls.as_slice() else {
                panic!("{calls:?}")
            };
            assert!(request.replace);
            assert_eq!(
                request.set.clone().into_iter().collect::<BTreeMap<_, _>>(),
                map(&[("boot.autostart", "false"), ("environment.NEW", "1.50")])
            );
            assert_eq!(
                daemon.config("web1"),
                map(&[
                    ("boot.autostart", "false"),
                    ("environment.NEW", "1.50"),
                    ("volatile.idmap.base", "1000000")
                ])
            );
        }

        #[tokio::test]
        async fn without_a_terminal_broken_yaml_is_an_error_and_nothing_is_sent() {
            let daemon = daemon().await;
            let (result, _dir) = edit_with(&daemon, "printf 'config: [\\n' > \"$1\"").await;
            let err = format!("{:#}", result.unwrap_err());
            assert!(err.starts_with("the edited configuration is not valid: "), "{err}");
            assert!(daemon.calls().is_empty());
        }

        #[tokio::test]
        async fn without_a_terminal_a_refusal_is_an_error_and_nothing_changes() {
            let daemon = daemon().await;
            let before = daemon.config("web1");
            let (result, _dir) = edit_with(&daemon, "printf '  user.bad: x\\n' >> \"$1\"").await;
            assert_eq!(result.unwrap_err().to_string(), "unknown config key user.bad");
            assert_eq!(daemon.calls().len(), 1);
            assert_eq!(daemon.config("web1"), before);

            // A changed volatile key goes to the daemon, whose refusal explains.
            let (result, _dir) = edit_with(&daemon, "sed -i -e 's/1000000/5/' \"$1\"").await;
            assert_eq!(
                result.unwrap_err().to_string(),
                "config key volatile.idmap.base is set by the daemon and cannot be changed"
            );
        }

        #[tokio::test]
        async fn a_failing_editor_or_an_unknown_container_changes_nothing() {
            let daemon = daemon().await;
            let (result, _dir) = edit_with(&daemon, "echo 'config: {}' > \"$1\"; exit 3").await;
            let err = result.unwrap_err().to_string();
            assert!(
                err.contains("failed (exit status: 3); the configuration is unchanged"),
                "{err}"
            );
            assert!(daemon.calls().is_empty());

            let dir = tempfile::tempdir().unwrap();
            let err = edit(daemon.channel.clone(), "nope".into(), editor(dir.path(), "true"))
                .await
                .unwrap_err();
            assert_eq!(err.to_string(), "container nope not found");
            assert!(!dir.path().join("given").exists(), "the editor ran");
        }

        #[tokio::test]
        async fn set_and_unset_send_one_request_each() {
            let daemon = daemon().await;
            let values = parse_assignments(&args(&["environment.A=1", "environment.B=2"])).unwrap();
            set(daemon.channel.clone(), "web1".into(), values).await.unwrap();
            unset(
                daemon.channel.clone(),
                "web1".into(),
                args(&["environment.A", "boot.autostart", "environment.A"]),
            )
            .await
            .unwrap();
            let calls = daemon.calls();
            let [Call::UpdateConfig(first), Call::UpdateConfig(second)] = calls.as_slice() else {
                panic!("{calls:?}")
            };
            assert!(!first.replace && first.unset.is_empty() && first.set.len() == 2);
            assert!(!second.replace && second.set.is_empty());
            assert_eq!(second.unset, ["environment.A", "boot.autostart"]);
            assert_eq!(
                daemon.config("web1"),
                map(&[("environment.B", "2"), ("volatile.idmap.base", "1000000")])
            );

            // All or nothing: one refused key and none is set.
            let values = parse_assignments(&args(&["environment.C=3", "user.bad=1"])).unwrap();
            let err = set(daemon.channel.clone(), "web1".into(), values).await.unwrap_err();
            assert_eq!(err.to_string(), "unknown config key user.bad");
            assert!(!daemon.config("web1").contains_key("environment.C"));
        }
    }

    fn sample_keys() -> Vec<ConfigKey> {
        vec![
            ConfigKey {
                name: "boot.autostart".into(),
                r#type: "bool".into(),
                default: "false".into(),
                live: true,
                description: "Start the container when syscd starts".into(),
            },
            ConfigKey {
                name: "environment.NAME".into(),
                r#type: "string".into(),
                default: String::new(),
                live: true,
                description: "An environment variable | for exec\nand shell".into(),
            },
            ConfigKey {
                name: "security.privileged".into(),
                r#type: "bool".into(),
                default: "false".into(),
                live: false,
                description: "Run without a user namespace".into(),
            },
        ]
    }

    #[test]
    fn markdown_is_a_github_table_in_registry_order() {
        assert_eq!(
            markdown(&sample_keys()),
            "| key | type | default | live | description |\n\
             |---|---|---|---|---|\n\
             | `boot.autostart` | bool | false | yes | Start the container when syscd starts |\n\
             | `environment.NAME` | string | — | yes | An environment variable \\| for exec and shell |\n\
             | `security.privileged` | bool | false | no | Run without a user namespace |\n"
        );
        assert_eq!(
            markdown(&[]),
            "| key | type | default | live | description |\n|---|---|---|---|---|\n"
        );
    }

    #[test]
    fn keys_list_in_the_other_formats() {
        let keys = sample_keys();
        let csv = format::render(&keys, OutputFormat::Csv).unwrap();
        assert_eq!(
            csv.lines().take(3).collect::<Vec<_>>(),
            [
                "KEY,TYPE,DEFAULT,LIVE,DESCRIPTION",
                "boot.autostart,bool,false,yes,Start the container when syscd starts",
                "environment.NAME,string,,yes,\"An environment variable | for exec",
            ]
        );
        assert_eq!(keys[1].cells(Layout::Table)[2], "-");
        let json: serde_json::Value =
            serde_json::from_str(&format::render(&keys, OutputFormat::Json).unwrap()).unwrap();
        assert_eq!(
            json[2],
            serde_json::json!({
                "name": "security.privileged",
                "type": "bool",
                "default": "false",
                "live": false,
                "description": "Run without a user namespace",
            })
        );
        let table = format::render(&keys, OutputFormat::Table).unwrap();
        assert!(
            table.find("boot.autostart") < table.find("security.privileged"),
            "{table}"
        );
    }
}
