//! Which remote a command goes to: every `REMOTE:` prefix is taken off its argument here,
//! in one pass over the parsed command, so the verbs themselves only ever see plain names.
//! A command acts on one remote, except `copy` and `move`, which may take a container from
//! one remote to another; names without a prefix are on the default one.

use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};

use super::target;
use crate::file::FileCommand;
use crate::operation::OperationCommand;
use crate::trust::TrustCommand;
use crate::{
    Command, ConfigCommand, DeviceCommand, ImageCommand, NetworkCommand, SnapshotCommand, StorageCommand,
    TemplateCommand,
};

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    #[error(
        "{first} and {second} are on different remotes ({first_remote} and {second_remote}); a command acts on one remote"
    )]
    Mixed {
        first: String,
        first_remote: String,
        second: String,
        second_remote: String,
    },
    #[error("a container cannot be renamed onto another remote ({0})")]
    RenameAcross(String),
    #[error("{0}: the remote name before ':' is empty")]
    EmptyRemote(String),
    #[error("{}", no_name(.0))]
    NoName(String),
    #[error("expected REMOTE: (e.g. host1:), not {0}")]
    NotRemote(String),
}

fn no_name(shown: &str) -> String {
    if shown.is_empty() {
        "the name is empty".to_string()
    } else {
        format!("{shown} names a remote but nothing on it")
    }
}

/// Where a command goes.
#[derive(Debug, PartialEq, Eq)]
pub struct Route {
    /// The remote the command acts on: for `copy` and `move`, the source's.
    pub remote: String,
    /// For `copy` and `move`, the remote the container goes to: `remote` itself or another.
    pub destination: Option<String>,
}

/// Where `command` goes, its prefixes taken off in place.
pub fn route(command: &mut Command, default_remote: &str) -> Result<Route, RouteError> {
    let mut router = Router::new(default_remote);
    visit(command, &mut router)?;
    Ok(router.finish())
}

struct Router {
    default: String,
    /// The remote chosen so far, and the argument that chose it, for messages.
    chosen: Option<(String, String)>,
    /// Where a copy or a move goes.
    destination: Option<String>,
}

impl Router {
    fn new(default: &str) -> Self {
        Self {
            default: default.to_string(),
            chosen: None,
            destination: None,
        }
    }

    fn finish(self) -> Route {
        Route {
            remote: self.chosen.map_or(self.default, |(remote, _)| remote),
            destination: self.destination,
        }
    }

    /// Takes the prefix off `arg`; the remote it names, or the default one.
    fn strip(&self, arg: &mut String) -> Result<String, RouteError> {
        let (remote, rest) = target::split(arg);
        let remote = match remote {
            Some("") => return Err(RouteError::EmptyRemote(arg.clone())),
            Some(remote) => remote.to_string(),
            None => return Ok(self.default.clone()),
        };
        *arg = rest.to_string();
        Ok(remote)
    }

    fn choose(&mut self, remote: String, shown: &str) -> Result<(), RouteError> {
        match &self.chosen {
            Some((first_remote, first)) if *first_remote != remote => Err(RouteError::Mixed {
                first: first.clone(),
                first_remote: first_remote.clone(),
                second: shown.to_string(),
                second_remote: remote,
            }),
            Some(_) => Ok(()),
            None => {
                self.chosen = Some((remote, shown.to_string()));
                Ok(())
            }
        }
    }

    /// `[REMOTE:]NAME`.
    fn name(&mut self, arg: &mut String) -> Result<(), RouteError> {
        let shown = arg.clone();
        self.subject(arg)?;
        if arg.is_empty() {
            return Err(RouteError::NoName(shown));
        }
        Ok(())
    }

    /// `[REMOTE:]NAME` or `REMOTE:` alone, which leaves "".
    fn subject(&mut self, arg: &mut String) -> Result<(), RouteError> {
        let shown = arg.clone();
        let remote = self.strip(arg)?;
        self.choose(remote, &shown)
    }

    fn names(&mut self, args: &mut [String]) -> Result<(), RouteError> {
        args.iter_mut().try_for_each(|arg| self.name(arg))
    }

    /// `REMOTE:` and nothing more, where a verb takes no name.
    fn remote(&mut self, arg: &Option<String>) -> Result<(), RouteError> {
        let Some(arg) = arg else { return Ok(()) };
        match target::split(arg) {
            (Some(remote), "") if !remote.is_empty() => self.choose(remote.to_string(), arg),
            _ => Err(RouteError::NotRemote(arg.clone())),
        }
    }

    /// `[REMOTE:]NAME`, or `REMOTE:` alone, which leaves None.
    fn optional(&mut self, arg: &mut Option<String>) -> Result<(), RouteError> {
        if let Some(name) = arg {
            self.subject(name)?;
            if name.is_empty() {
                *arg = None;
            }
        }
        Ok(())
    }

    /// `[REMOTE:]NAME/PATH`, which need not be UTF-8 after the name.
    fn path(&mut self, arg: &mut OsString) -> Result<(), RouteError> {
        let shown = arg.to_string_lossy().into_owned();
        let bytes = arg.as_bytes();
        let remote = match target::split_bytes(bytes) {
            Some(0) => return Err(RouteError::EmptyRemote(shown)),
            Some(colon) => {
                let remote = String::from_utf8_lossy(&bytes[..colon]).into_owned();
                *arg = OsString::from_vec(bytes[colon + 1..].to_vec());
                remote
            }
            None => self.default.clone(),
        };
        if arg.is_empty() {
            return Err(RouteError::NoName(shown));
        }
        self.choose(remote, &shown)
    }

    fn paths(&mut self, args: &mut [OsString]) -> Result<(), RouteError> {
        args.iter_mut().try_for_each(|arg| self.path(arg))
    }

    /// `[REMOTE:][NAME]`, where a copy or a move goes: on the default remote without a
    /// prefix, as in Incus; `REMOTE:` alone leaves "", the source's name.
    fn destination(&mut self, arg: &mut String) -> Result<(), RouteError> {
        self.destination = Some(self.strip(arg)?);
        Ok(())
    }

    /// A new name stays on its container's remote, whether it says so or not.
    fn rename_target(&mut self, arg: &mut String) -> Result<(), RouteError> {
        let shown = arg.clone();
        let explicit = target::split(arg).0.is_some();
        let remote = self.strip(arg)?;
        if arg.is_empty() {
            return Err(RouteError::NoName(shown));
        }
        if explicit && self.chosen.as_ref().is_some_and(|(chosen, _)| *chosen != remote) {
            return Err(RouteError::RenameAcross(shown));
        }
        Ok(())
    }
}

fn visit(command: &mut Command, r: &mut Router) -> Result<(), RouteError> {
    match command {
        Command::Create(args) | Command::Launch(args) => r.name(&mut args.name),
        Command::Start(targets) | Command::Pause(targets) | Command::Resume(targets) => r.names(&mut targets.names),
        Command::Stop { targets, .. } | Command::Restart { targets, .. } => r.names(&mut targets.names),
        Command::Delete { names, .. } => r.names(names),
        Command::Rename { name, new_name } => {
            r.name(name)?;
            r.rename_target(new_name)
        }
        Command::Copy(args) => {
            r.name(&mut args.source.container)?;
            r.destination(&mut args.name)
        }
        Command::Move(args) => {
            r.name(&mut args.name)?;
            r.destination(&mut args.destination)
        }
        Command::List(args) => {
            // `sysc list web`: a first word that names no remote is the first filter.
            if let Some(first) = args.remote.take_if(|first| !first.contains(':') || first.contains('=')) {
                args.filters.insert(0, first);
            }
            r.remote(&args.remote)
        }
        // `info REMOTE:` is that remote's host.
        Command::Info { name, .. } => match name {
            Some(name) => r.subject(name),
            None => Ok(()),
        },
        Command::Config { command } => visit_config(command, r),
        Command::Exec(args) => r.name(&mut args.name),
        Command::Shell { name } | Command::Console { name, .. } => r.name(name),
        Command::File { command } => match command {
            FileCommand::Push { target, .. } | FileCommand::Edit { target } | FileCommand::Ls { target, .. } => {
                r.path(target)
            }
            FileCommand::Pull { sources, .. } => r.paths(sources),
            FileCommand::Mkdir { targets, .. } | FileCommand::Delete { targets, .. } => r.paths(targets),
        },
        Command::Snapshot { command } => match command {
            SnapshotCommand::Create { target, .. }
            | SnapshotCommand::Show(target)
            | SnapshotCommand::Restore(target)
            | SnapshotCommand::Delete(target) => r.name(&mut target.name),
            SnapshotCommand::List { name, .. } | SnapshotCommand::Rename { name, .. } => r.name(name),
        },
        Command::Export(args) => r.name(&mut args.name),
        Command::Import(args) => r.optional(&mut args.name),
        Command::Template {
            command: TemplateCommand::List(args),
        } => r.remote(&args.remote),
        Command::Image { command } => match command {
            ImageCommand::List(args) => r.remote(&args.remote),
            ImageCommand::Delete { fingerprint } => r.name(fingerprint),
        },
        Command::Storage { command } => match command {
            StorageCommand::Create { name, .. } | StorageCommand::Info { name } | StorageCommand::Delete { name } => {
                r.name(name)
            }
            StorageCommand::List(args) => r.remote(&args.remote),
        },
        Command::Network { command } => match command {
            NetworkCommand::Create { name, .. } | NetworkCommand::Show { name } | NetworkCommand::Delete { name } => {
                r.name(name)
            }
            NetworkCommand::List(args) => r.remote(&args.remote),
        },
        Command::Version { remote } => r.remote(remote),
        Command::Monitor(args) => r.remote(&args.remote),
        Command::Operation { command } => match command {
            OperationCommand::List { remote, .. } => r.remote(remote),
            OperationCommand::Show { id } => r.name(id),
        },
        // Handled before any routing: it is about the remotes themselves.
        Command::Remote { .. } => Ok(()),
    }
}

fn visit_config(command: &mut ConfigCommand, r: &mut Router) -> Result<(), RouteError> {
    match command {
        // A server key in first place keeps its place; see server_config.
        ConfigCommand::Set { name, .. } | ConfigCommand::Unset { name, .. } | ConfigCommand::Get { name, .. } => {
            r.subject(name)
        }
        ConfigCommand::Show { name } => match name {
            Some(name) => r.subject(name),
            None => Ok(()),
        },
        ConfigCommand::Edit { name } => r.name(name),
        ConfigCommand::Device { command } => match command {
            DeviceCommand::Add { name, .. }
            | DeviceCommand::Set { name, .. }
            | DeviceCommand::Unset { name, .. }
            | DeviceCommand::Remove { name, .. }
            | DeviceCommand::List { name, .. }
            | DeviceCommand::Show { name } => r.name(name),
        },
        ConfigCommand::Keys { remote, .. } => r.remote(remote),
        ConfigCommand::Trust { command } => match command {
            TrustCommand::Add { name, .. } => r.name(name),
            // With two arguments the first is REMOTE:; with one, it is the file, whatever
            // colons its path holds.
            TrustCommand::AddCertificate { first, file, .. } => match file {
                Some(_) => r.remote(&Some(std::mem::take(first))),
                None => Ok(()),
            },
            TrustCommand::List { remote, .. } | TrustCommand::ListTokens { remote, .. } => r.remote(remote),
            TrustCommand::Remove { target } => r.name(target),
            TrustCommand::RevokeToken { name } => r.name(name),
        },
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::Cli;

    /// The remote and the command as the verbs see it.
    fn routed(args: &[&str], default: &str) -> Result<(String, Command), RouteError> {
        let mut command = Cli::try_parse_from(args).expect("valid usage").command;
        let route = route(&mut command, default)?;
        Ok((route.remote, command))
    }

    fn route_of(args: &[&str], default: &str) -> Result<Route, RouteError> {
        route(&mut Cli::try_parse_from(args).expect("valid usage").command, default)
    }

    fn remote_of(args: &[&str]) -> Result<String, RouteError> {
        routed(args, "local").map(|(remote, _)| remote)
    }

    #[test]
    fn names_lose_their_prefix_and_choose_the_remote() {
        let (remote, command) = routed(&["sysc", "start", "h1:a", "h1:b"], "local").unwrap();
        assert_eq!(remote, "h1");
        let Command::Start(targets) = command else { panic!() };
        assert_eq!(targets.names, ["a", "b"]);

        assert_eq!(remote_of(&["sysc", "start", "a"]).unwrap(), "local");
        assert_eq!(routed(&["sysc", "list"], "h2").unwrap().0, "h2");
        assert_eq!(remote_of(&["sysc", "list", "h1:"]).unwrap(), "h1");
        assert_eq!(remote_of(&["sysc", "stop", "--all"]).unwrap(), "local");
        assert_eq!(
            remote_of(&["sysc", "exec", "h1:web1", "--", "ls", "x:y"]).unwrap(),
            "h1"
        );
        assert_eq!(remote_of(&["sysc", "network", "ls", "h1:"]).unwrap(), "h1");
        assert_eq!(remote_of(&["sysc", "image", "ls", "h1:"]).unwrap(), "h1");
        assert_eq!(remote_of(&["sysc", "template", "ls", "h1:"]).unwrap(), "h1");
        assert_eq!(remote_of(&["sysc", "storage", "info", "h1:default"]).unwrap(), "h1");
        assert_eq!(remote_of(&["sysc", "version", "h1:"]).unwrap(), "h1");
        assert_eq!(remote_of(&["sysc", "config", "keys", "h1:"]).unwrap(), "h1");
    }

    #[test]
    fn one_command_acts_on_one_remote() {
        assert_eq!(
            remote_of(&["sysc", "delete", "h1:a", "b"]).unwrap_err().to_string(),
            "h1:a and b are on different remotes (h1 and local); a command acts on one remote"
        );
        assert!(matches!(
            remote_of(&["sysc", "file", "pull", "h1:a/x", "h2:a/y", "."]),
            Err(RouteError::Mixed { .. })
        ));
        // The default remote named explicitly is the same remote.
        assert_eq!(routed(&["sysc", "delete", "h1:a", "b"], "h1").unwrap().0, "h1");
    }

    #[test]
    fn list_takes_a_remote_then_filters() {
        let filters = |args: &[&str]| {
            let (remote, command) = routed(args, "local").unwrap();
            let Command::List(list) = command else { panic!() };
            (remote, list.filters)
        };
        assert_eq!(
            filters(&["sysc", "list", "h1:", "web"]),
            ("h1".into(), vec!["web".into()])
        );
        // A first word that names no remote is a filter.
        assert_eq!(
            filters(&["sysc", "list", "web", "state=running"]),
            ("local".into(), vec!["web".into(), "state=running".into()])
        );
        assert_eq!(
            filters(&["sysc", "list", "volatile.eth0.hwaddr=10:66:6a:00:00:01"]),
            ("local".into(), vec!["volatile.eth0.hwaddr=10:66:6a:00:00:01".into()])
        );
    }

    #[test]
    fn bad_prefixes_are_named() {
        assert_eq!(
            remote_of(&["sysc", "start", ":a"]),
            Err(RouteError::EmptyRemote(":a".into()))
        );
        assert_eq!(
            remote_of(&["sysc", "start", "h1:"]),
            Err(RouteError::NoName("h1:".into()))
        );
        assert_eq!(
            remote_of(&["sysc", "list", "h1:web1"]),
            Err(RouteError::NotRemote("h1:web1".into()))
        );
        assert_eq!(
            remote_of(&["sysc", "file", "ls", "h1:"]),
            Err(RouteError::NoName("h1:".into()))
        );
    }

    fn at(remote: &str, destination: Option<&str>) -> Route {
        Route {
            remote: remote.into(),
            destination: destination.map(str::to_string),
        }
    }

    #[test]
    fn copy_and_move_name_two_remotes() {
        let (remote, command) = routed(&["sysc", "copy", "h1:web1/snap0", "h1:web2"], "local").unwrap();
        assert_eq!(remote, "h1");
        let Command::Copy(args) = command else { panic!() };
        assert_eq!((args.source.container.as_str(), args.name.as_str()), ("web1", "web2"));
        assert_eq!(args.source.snapshot.as_deref(), Some("snap0"));

        let copy = |args: &[&str], default| route_of(&[&["sysc", "copy"][..], args].concat(), default).unwrap();
        assert_eq!(copy(&["h1:web1", "h1:web2"], "local"), at("h1", Some("h1")));
        assert_eq!(copy(&["h1:web1", "h2:web1"], "local"), at("h1", Some("h2")));
        // Without a prefix, the default remote, on either side.
        assert_eq!(copy(&["h1:web1", "web2"], "local"), at("h1", Some("local")));
        assert_eq!(copy(&["web1", "h2:web2"], "local"), at("local", Some("h2")));
        assert_eq!(copy(&["h1:web1", "web2"], "h1"), at("h1", Some("h1")));
        assert_eq!(copy(&["web1", "web2"], "local"), at("local", Some("local")));

        // REMOTE: alone keeps the name, which the verb takes from the source.
        let mut command = Cli::try_parse_from(["sysc", "copy", "h1:web1", "h2:"]).unwrap().command;
        assert_eq!(route(&mut command, "local").unwrap(), at("h1", Some("h2")));
        let Command::Copy(args) = command else { panic!() };
        assert_eq!((args.source.container.as_str(), args.name.as_str()), ("web1", ""));

        let mut command = Cli::try_parse_from(["sysc", "move", "h1:web1", "h2:"]).unwrap().command;
        assert_eq!(route(&mut command, "local").unwrap(), at("h1", Some("h2")));
        let Command::Move(args) = command else { panic!() };
        assert_eq!((args.name.as_str(), args.destination.as_str()), ("web1", ""));
        assert_eq!(
            route_of(&["sysc", "mv", "web1", "web2"], "h1").unwrap(),
            at("h1", Some("h1"))
        );

        assert_eq!(
            remote_of(&["sysc", "move", "h1:", "h2:"]),
            Err(RouteError::NoName("h1:".into()))
        );
        assert_eq!(
            remote_of(&["sysc", "copy", "web1", ":web2"]),
            Err(RouteError::EmptyRemote(":web2".into()))
        );
        // Every other verb has no destination.
        assert_eq!(route_of(&["sysc", "start", "h1:a"], "local").unwrap(), at("h1", None));
    }

    #[test]
    fn a_rename_stays_on_its_remote() {
        let (remote, command) = routed(&["sysc", "rename", "h1:a", "b"], "local").unwrap();
        assert_eq!(remote, "h1");
        let Command::Rename { name, new_name } = command else {
            panic!()
        };
        assert_eq!((name.as_str(), new_name.as_str()), ("a", "b"));
        assert!(routed(&["sysc", "rename", "h1:a", "h1:b"], "local").is_ok());
        assert_eq!(
            remote_of(&["sysc", "rename", "h1:a", "h2:b"]),
            Err(RouteError::RenameAcross("h2:b".into()))
        );
    }

    #[test]
    fn file_paths_keep_their_colons() {
        let (remote, command) = routed(&["sysc", "file", "push", "x:y", "h1:web1/tmp/a:b"], "local").unwrap();
        assert_eq!(remote, "h1");
        let Command::File {
            command: FileCommand::Push { sources, target, .. },
        } = command
        else {
            panic!()
        };
        assert_eq!(sources, [OsString::from("x:y")]);
        assert_eq!(target, OsString::from("web1/tmp/a:b"));
        assert_eq!(
            remote_of(&["sysc", "file", "pull", "web1/etc/a:b", "h1:x"]).unwrap(),
            "local"
        );
    }

    #[test]
    fn snapshots_info_and_import_take_prefixes() {
        let (remote, command) = routed(&["sysc", "snapshot", "restore", "h1:web1/snap0"], "local").unwrap();
        assert_eq!(remote, "h1");
        let Command::Snapshot {
            command: SnapshotCommand::Restore(target),
        } = command
        else {
            panic!()
        };
        assert_eq!(target.name, "web1/snap0");

        let (remote, command) = routed(&["sysc", "info", "h1:"], "local").unwrap();
        assert_eq!(remote, "h1");
        assert!(matches!(command, Command::Info { name: Some(name), .. } if name.is_empty()));

        let (remote, command) = routed(&["sysc", "import", "a.tar", "h1:"], "local").unwrap();
        assert_eq!(remote, "h1");
        assert!(matches!(command, Command::Import(args) if args.name.is_none()));
    }

    #[test]
    fn config_verbs_keep_server_keys_in_place() {
        let (remote, command) = routed(
            &["sysc", "config", "set", "h1:", "core.https_address", ":8443"],
            "local",
        )
        .unwrap();
        assert_eq!(remote, "h1");
        assert!(matches!(
            command,
            Command::Config { command: ConfigCommand::Set { name, args } }
                if name.is_empty() && args == ["core.https_address", ":8443"]
        ));
        let (remote, command) = routed(&["sysc", "config", "get", "h1:core.https_address"], "local").unwrap();
        assert_eq!(remote, "h1");
        assert!(matches!(
            command,
            Command::Config { command: ConfigCommand::Get { name, key: None } } if name == "core.https_address"
        ));
        assert_eq!(remote_of(&["sysc", "config", "show"]).unwrap(), "local");
        assert_eq!(remote_of(&["sysc", "config", "set", "h1:web1", "a=1"]).unwrap(), "h1");
        assert_eq!(remote_of(&["sysc", "config", "device", "ls", "h1:web1"]).unwrap(), "h1");
    }

    #[test]
    fn trust_verbs_take_a_remote() {
        assert_eq!(remote_of(&["sysc", "config", "trust", "list", "h1:"]).unwrap(), "h1");
        assert_eq!(
            remote_of(&["sysc", "config", "trust", "add", "h1:laptop"]).unwrap(),
            "h1"
        );
        assert_eq!(
            remote_of(&["sysc", "config", "trust", "rm", "h1:laptop"]).unwrap(),
            "h1"
        );
        assert_eq!(
            remote_of(&["sysc", "config", "trust", "list-tokens", "h1:"]).unwrap(),
            "h1"
        );
        assert_eq!(
            remote_of(&["sysc", "config", "trust", "revoke-token", "h1:x"]).unwrap(),
            "h1"
        );
        let (remote, command) = routed(
            &["sysc", "config", "trust", "add-certificate", "h1:", "/tmp/a:b.crt"],
            "local",
        )
        .unwrap();
        assert_eq!(remote, "h1");
        assert!(matches!(
            command,
            Command::Config {
                command: ConfigCommand::Trust {
                    command: TrustCommand::AddCertificate { file: Some(_), .. }
                }
            }
        ));
        // Alone, the argument is the file, colons and all.
        assert_eq!(
            remote_of(&["sysc", "config", "trust", "add-certificate", "/tmp/a:b.crt"]).unwrap(),
            "local"
        );
    }
}
