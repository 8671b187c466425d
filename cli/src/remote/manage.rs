//! `sysc remote list|switch|rename|remove|get-default`: edits of config.yaml alone.

use std::path::Path;

use serde::Serialize;

use super::config::{ClientConfig, ConfigDir, LOCAL};
use crate::format::{self, Layout, Listing, OutputFormat};

pub fn list(dir: &ConfigDir, socket: &Path, output: OutputFormat) -> anyhow::Result<()> {
    let rows = rows(&dir.load()?, socket);
    format::print(&format::render(&rows, output)?)?;
    Ok(())
}

pub fn switch(dir: &ConfigDir, name: &str) -> anyhow::Result<()> {
    edit(dir, |config| config.switch(name))
}

pub fn rename(dir: &ConfigDir, name: &str, new_name: &str) -> anyhow::Result<()> {
    edit(dir, |config| config.rename(name, new_name))
}

pub fn remove(dir: &ConfigDir, name: &str) -> anyhow::Result<()> {
    edit(dir, |config| config.remove(name).map(drop))
}

pub fn get_default(dir: &ConfigDir) -> anyhow::Result<()> {
    format::print(&format!("{}\n", dir.load()?.default_remote))?;
    Ok(())
}

fn edit<T: Into<anyhow::Error>>(
    dir: &ConfigDir,
    change: impl FnOnce(&mut ClientConfig) -> Result<(), T>,
) -> anyhow::Result<()> {
    let mut config = dir.load()?;
    change(&mut config).map_err(Into::into)?;
    dir.save(&config)?;
    Ok(())
}

/// `local` first, then the others by name.
fn rows(config: &ClientConfig, socket: &Path) -> Vec<RemoteRecord> {
    let local = RemoteRecord {
        name: LOCAL.to_string(),
        address: format!("unix://{}", socket.display()),
        fingerprint: None,
        default: config.default_remote == LOCAL,
    };
    let others = config.remotes.iter().map(|(name, entry)| RemoteRecord {
        name: name.clone(),
        address: entry.address.clone(),
        fingerprint: Some(entry.fingerprint.clone()),
        default: config.default_remote == *name,
    });
    std::iter::once(local).chain(others).collect()
}

#[derive(Clone, Debug, Serialize)]
pub struct RemoteRecord {
    name: String,
    address: String,
    /// The whole SHA-256, for scripts; tables show its first 12 digits.
    fingerprint: Option<String>,
    default: bool,
}

impl Listing for RemoteRecord {
    type Record = Self;
    const HEADER: &'static [&'static str] = &["NAME", "ADDRESS", "FINGERPRINT", "DEFAULT"];

    fn record(&self) -> Self {
        self.clone()
    }

    fn cells(&self, layout: Layout) -> Vec<String> {
        vec![
            self.name.clone(),
            self.address.clone(),
            self.fingerprint
                .as_deref()
                .map_or(layout.empty().to_string(), |fingerprint| {
                    format::fingerprint_cell(layout, fingerprint)
                }),
            if self.default { "*" } else { "" }.to_string(),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote::config::RemoteEntry;

    #[test]
    fn rows_show_local_first_and_mark_the_default() {
        let mut config = ClientConfig::default();
        config
            .add(
                "host1",
                RemoteEntry {
                    address: "10.0.0.2:8443".into(),
                    fingerprint: "0123456789abcdef".repeat(4),
                },
            )
            .unwrap();
        config.switch("host1").unwrap();
        let rows = rows(&config, Path::new("/var/lib/sysc/unix.socket"));
        let csv = format::render(&rows, OutputFormat::Csv).unwrap();
        assert_eq!(
            csv,
            "NAME,ADDRESS,FINGERPRINT,DEFAULT\n\
             local,unix:///var/lib/sysc/unix.socket,,\n\
             host1,10.0.0.2:8443,0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef,*\n"
        );
        assert_eq!(rows[1].cells(Layout::Table)[2], "0123456789ab");
        let json: serde_json::Value =
            serde_json::from_str(&format::render(&rows, OutputFormat::Json).unwrap()).unwrap();
        assert_eq!(json[1]["fingerprint"], "0123456789abcdef".repeat(4));
        assert_eq!(json[0]["default"], false);
    }

    #[test]
    fn edits_are_saved_and_refusals_change_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = ConfigDir::new(tmp.path().to_path_buf());
        let err = switch(&dir, "host1").unwrap_err().to_string();
        assert_eq!(err, "remote host1 does not exist (see sysc remote list)");
        assert!(!dir.file("config.yaml").exists());
        let err = remove(&dir, "local").unwrap_err().to_string();
        assert_eq!(err, "the local remote is this machine's daemon; it cannot be removed");

        let mut config = ClientConfig::default();
        let entry = RemoteEntry {
            address: "a:1".into(),
            fingerprint: "ab".repeat(32),
        };
        config.add("host1", entry).unwrap();
        dir.save(&config).unwrap();
        switch(&dir, "host1").unwrap();
        rename(&dir, "host1", "h1").unwrap();
        assert_eq!(dir.load().unwrap().default_remote, "h1");
        let err = remove(&dir, "h1").unwrap_err().to_string();
        assert_eq!(err, "remote h1 is the default; switch to another one first");
        switch(&dir, "local").unwrap();
        remove(&dir, "h1").unwrap();
        assert_eq!(dir.load().unwrap(), ClientConfig::default());
    }
}
