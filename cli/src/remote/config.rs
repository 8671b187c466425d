//! The client's directory (config.yaml, client.crt, client.key) and the remotes it keeps.
//!
//! ```yaml
//! default_remote: local
//! remotes:
//!   host1:
//!     address: 10.0.0.2:8443
//!     fingerprint: 3f5a...
//! ```
//!
//! `local`, the daemon on this machine's unix socket, is never written down: it always
//! exists, so it cannot be renamed or removed.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs::{self, DirBuilder, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub const LOCAL: &str = "local";

const CONFIG_FILE: &str = "config.yaml";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot tell where the client's config lives: set SYSC_CONFIG_DIR or HOME")]
    NoConfigDir,
    #[error("cannot read {}: {source}", .path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("{} is not valid: {source}", .path.display())]
    Parse { path: PathBuf, source: serde_yaml::Error },
    #[error("cannot write {}: {source}", .path.display())]
    Write { path: PathBuf, source: io::Error },
    #[error("remote {0} does not exist (see sysc remote list)")]
    NoSuchRemote(String),
    #[error("remote {0} exists already")]
    Exists(String),
    #[error("the local remote is this machine's daemon; it cannot be {0}")]
    Local(&'static str),
    #[error("remote {0} is the default; switch to another one first")]
    IsDefault(String),
    #[error("{0:?} is not a valid remote name: use letters, digits, '-', '_' and '.'")]
    BadName(String),
}

/// A daemon reached over TLS.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteEntry {
    /// host:port of its TLS listener.
    pub address: String,
    /// SHA-256 of its certificate (DER), lower-case hex: the only certificate accepted.
    pub fingerprint: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientConfig {
    #[serde(default = "local_name")]
    pub default_remote: String,
    #[serde(default)]
    pub remotes: BTreeMap<String, RemoteEntry>,
}

fn local_name() -> String {
    LOCAL.to_string()
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            default_remote: local_name(),
            remotes: BTreeMap::new(),
        }
    }
}

/// What a remote name stands for.
pub enum Remote<'a> {
    Local,
    Tls(&'a RemoteEntry),
}

impl ClientConfig {
    pub fn lookup(&self, name: &str) -> Result<Remote<'_>, ConfigError> {
        if name == LOCAL {
            return Ok(Remote::Local);
        }
        self.remotes
            .get(name)
            .map(Remote::Tls)
            .ok_or_else(|| ConfigError::NoSuchRemote(name.to_string()))
    }

    /// Whether `name` is free for a new remote: asked before the network is, so a taken
    /// name costs no enrolment.
    pub fn check_new(&self, name: &str) -> Result<(), ConfigError> {
        check_name(name)?;
        if name == LOCAL || self.remotes.contains_key(name) {
            return Err(ConfigError::Exists(name.to_string()));
        }
        Ok(())
    }

    pub fn add(&mut self, name: &str, entry: RemoteEntry) -> Result<(), ConfigError> {
        self.check_new(name)?;
        self.remotes.insert(name.to_string(), entry);
        Ok(())
    }

    pub fn switch(&mut self, name: &str) -> Result<(), ConfigError> {
        self.lookup(name)?;
        self.default_remote = name.to_string();
        Ok(())
    }

    /// The default follows a renamed remote: it is the same daemon.
    pub fn rename(&mut self, old: &str, new: &str) -> Result<(), ConfigError> {
        if old == LOCAL {
            return Err(ConfigError::Local("renamed"));
        }
        self.check_new(new)?;
        let entry = self
            .remotes
            .remove(old)
            .ok_or_else(|| ConfigError::NoSuchRemote(old.to_string()))?;
        self.remotes.insert(new.to_string(), entry);
        if self.default_remote == old {
            self.default_remote = new.to_string();
        }
        Ok(())
    }

    pub fn remove(&mut self, name: &str) -> Result<RemoteEntry, ConfigError> {
        if name == LOCAL {
            return Err(ConfigError::Local("removed"));
        }
        if !self.remotes.contains_key(name) {
            return Err(ConfigError::NoSuchRemote(name.to_string()));
        }
        if self.default_remote == name {
            return Err(ConfigError::IsDefault(name.to_string()));
        }
        Ok(self.remotes.remove(name).expect("checked above"))
    }
}

/// Names end up before a ':' on command lines, so they must not hold one.
fn check_name(name: &str) -> Result<(), ConfigError> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if valid {
        Ok(())
    } else {
        Err(ConfigError::BadName(name.to_string()))
    }
}

/// The directory that holds config.yaml and the client's certificate.
#[derive(Clone, Debug)]
pub struct ConfigDir {
    path: PathBuf,
}

impl ConfigDir {
    #[cfg(test)]
    pub fn new(path: PathBuf) -> Self {
        Self { path }
    }

    /// $SYSC_CONFIG_DIR, else $XDG_CONFIG_HOME/sysc, else ~/.config/sysc.
    pub fn from_environment() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var_os(name))
    }

    fn from_lookup(lookup: impl Fn(&str) -> Option<OsString>) -> Result<Self, ConfigError> {
        // Empty counts as unset, as the XDG spec says; a relative XDG path is to be ignored.
        let set = |name: &str| lookup(name).filter(|value| !value.is_empty()).map(PathBuf::from);
        let path = if let Some(dir) = set("SYSC_CONFIG_DIR") {
            dir
        } else if let Some(base) = set("XDG_CONFIG_HOME").filter(|path| path.is_absolute()) {
            base.join("sysc")
        } else if let Some(home) = set("HOME") {
            home.join(".config").join("sysc")
        } else {
            return Err(ConfigError::NoConfigDir);
        };
        Ok(Self { path })
    }

    #[cfg(test)]
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Made private to its owner: the client's key lives here.
    pub fn create(&self) -> io::Result<()> {
        DirBuilder::new().recursive(true).mode(0o700).create(&self.path)
    }

    /// The saved config, or the defaults while none has been written.
    pub fn load(&self) -> Result<ClientConfig, ConfigError> {
        let path = self.file(CONFIG_FILE);
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(ClientConfig::default()),
            Err(source) => return Err(ConfigError::Read { path, source }),
        };
        if text.trim().is_empty() {
            return Ok(ClientConfig::default());
        }
        serde_yaml::from_str(&text).map_err(|source| ConfigError::Parse { path, source })
    }

    /// Written whole under another name and renamed, so a crash leaves the old file or
    /// the new one, never half of one.
    pub fn save(&self, config: &ClientConfig) -> Result<(), ConfigError> {
        let path = self.file(CONFIG_FILE);
        let text = serde_yaml::to_string(config).expect("the client config serializes");
        write_atomically(self, &path, text.as_bytes(), 0o600).map_err(|source| ConfigError::Write { path, source })
    }
}

/// `data` at `path` (in `dir`), complete or not at all.
pub fn write_atomically(dir: &ConfigDir, path: &Path, data: &[u8], mode: u32) -> io::Result<()> {
    dir.create()?;
    let name = path.file_name().and_then(|name| name.to_str()).unwrap_or("file");
    let partial = dir.file(&format!(".{name}.{}.partial", std::process::id()));
    let written = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&partial)?;
        file.write_all(data)?;
        file.sync_all()?;
        fs::rename(&partial, path)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&partial);
    }
    written
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn entry(address: &str) -> RemoteEntry {
        RemoteEntry {
            address: address.to_string(),
            fingerprint: "ab".repeat(32),
        }
    }

    #[test]
    fn the_directory_comes_from_the_environment() {
        let dir = |vars: &[(&str, &str)]| {
            let vars: Vec<(String, OsString)> = vars.iter().map(|(k, v)| (k.to_string(), v.into())).collect();
            ConfigDir::from_lookup(|name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
                .map(|dir| dir.path().to_path_buf())
        };
        let all = [
            ("SYSC_CONFIG_DIR", "/etc/sysc-client"),
            ("XDG_CONFIG_HOME", "/x"),
            ("HOME", "/home/ann"),
        ];
        assert_eq!(dir(&all).unwrap(), Path::new("/etc/sysc-client"));
        assert_eq!(dir(&all[1..]).unwrap(), Path::new("/x/sysc"));
        assert_eq!(dir(&all[2..]).unwrap(), Path::new("/home/ann/.config/sysc"));
        assert_eq!(
            dir(&[("SYSC_CONFIG_DIR", ""), ("XDG_CONFIG_HOME", "relative"), ("HOME", "/h")]).unwrap(),
            Path::new("/h/.config/sysc")
        );
        assert!(matches!(dir(&[]), Err(ConfigError::NoConfigDir)));
    }

    #[test]
    fn a_missing_or_empty_file_means_the_defaults() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = ConfigDir::new(tmp.path().join("sysc"));
        assert_eq!(dir.load().unwrap(), ClientConfig::default());
        assert_eq!(ClientConfig::default().default_remote, "local");
        // Loading writes nothing: a user who never uses remotes gets no directory.
        assert!(!dir.path().exists());
        dir.create().unwrap();
        fs::write(dir.file("config.yaml"), "\n").unwrap();
        assert_eq!(dir.load().unwrap(), ClientConfig::default());
        fs::write(dir.file("config.yaml"), "remotes: {}\n").unwrap();
        assert_eq!(dir.load().unwrap(), ClientConfig::default());
        fs::write(dir.file("config.yaml"), "remotes: [1\n").unwrap();
        let err = dir.load().unwrap_err().to_string();
        assert!(err.contains("config.yaml is not valid"), "{err}");
    }

    #[test]
    fn the_config_survives_a_round_trip() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = ConfigDir::new(tmp.path().join("a/sysc"));
        let mut config = ClientConfig::default();
        config.add("host1", entry("10.0.0.2:8443")).unwrap();
        config.add("host2", entry("[fd00::2]:8443")).unwrap();
        config.switch("host2").unwrap();
        dir.save(&config).unwrap();
        assert_eq!(dir.load().unwrap(), config);

        let text = fs::read_to_string(dir.file("config.yaml")).unwrap();
        assert!(
            text.starts_with("default_remote: host2\nremotes:\n  host1:\n"),
            "{text}"
        );
        let mode = |path: &Path| fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(dir.path()), 0o700);
        assert_eq!(mode(&dir.file("config.yaml")), 0o600);
        let leftovers: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "{leftovers:?}");
    }

    #[test]
    fn remotes_are_added_renamed_switched_and_removed() {
        let mut config = ClientConfig::default();
        config.add("host1", entry("a:1")).unwrap();
        assert!(matches!(config.add("host1", entry("b:1")), Err(ConfigError::Exists(_))));
        assert!(matches!(config.add("local", entry("b:1")), Err(ConfigError::Exists(_))));
        for bad in ["", "a:b", "a/b", "a b"] {
            assert!(
                matches!(config.add(bad, entry("b:1")), Err(ConfigError::BadName(_))),
                "{bad}"
            );
        }

        config.switch("host1").unwrap();
        assert!(matches!(config.switch("nope"), Err(ConfigError::NoSuchRemote(_))));
        config.rename("host1", "h1").unwrap();
        assert_eq!(config.default_remote, "h1");
        assert!(matches!(config.lookup("h1"), Ok(Remote::Tls(e)) if e.address == "a:1"));
        assert!(matches!(config.lookup("local"), Ok(Remote::Local)));
        assert!(matches!(config.rename("local", "x"), Err(ConfigError::Local(_))));
        assert!(matches!(config.rename("h1", "local"), Err(ConfigError::Exists(_))));

        assert!(matches!(config.remove("h1"), Err(ConfigError::IsDefault(_))));
        assert!(matches!(config.remove("local"), Err(ConfigError::Local(_))));
        config.switch("local").unwrap();
        assert_eq!(config.remove("h1").unwrap().address, "a:1");
        assert!(matches!(config.remove("h1"), Err(ConfigError::NoSuchRemote(_))));
        assert_eq!(config, ClientConfig::default());
    }
}
