//! Template scripts: executables in the templates directory, called with the LXC
//! template contract. What the daemon needs to know about one (its init, the signal
//! that halts it) is declared in `# sysc-KEY: VALUE` comment lines near the top.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::runtime::signals;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pub name: String,
    pub path: PathBuf,
    pub description: String,
    /// Signal that makes the init shut down cleanly (LXC's lxc.signal.halt).
    pub halt_signal: String,
    pub init: Vec<String>,
    pub default_release: String,
}

/// LXC's default halt signal, for templates that declare none.
const DEFAULT_HALT_SIGNAL: &str = "SIGPWR";
const HEADER_LINES: usize = 40;

pub fn list(dir: &Path) -> Vec<Template> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut templates: Vec<Template> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|name| valid_name(name))
        .filter_map(|name| load(dir, &name).ok())
        .collect();
    templates.sort_by(|a, b| a.name.cmp(&b.name));
    templates
}

pub fn find(dir: &Path, name: &str) -> Result<Template> {
    if !valid_name(name) {
        return Err(Error::InvalidArgument(format!("invalid template name {name:?}")));
    }
    load(dir, name).map_err(|_| {
        let known: Vec<String> = list(dir).into_iter().map(|t| t.name).collect();
        Error::NotFound(format!(
            "template {name} not found in {} (templates: {})",
            dir.display(),
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        ))
    })
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn load(dir: &Path, name: &str) -> std::io::Result<Template> {
    let path = dir.join(name);
    let meta = std::fs::metadata(&path)?;
    if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "not an executable file",
        ));
    }
    let text = std::fs::read(&path)?;
    Ok(parse(name, path, &String::from_utf8_lossy(&text)))
}

fn parse(name: &str, path: PathBuf, text: &str) -> Template {
    let mut template = Template {
        name: name.to_string(),
        path,
        description: String::new(),
        halt_signal: DEFAULT_HALT_SIGNAL.to_string(),
        init: vec!["/sbin/init".to_string()],
        default_release: String::new(),
    };
    for line in text.lines().take(HEADER_LINES) {
        let Some(rest) = line.strip_prefix("# sysc-") else {
            continue;
        };
        let Some((key, value)) = rest.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match key.trim() {
            "description" => template.description = value.to_string(),
            "halt-signal" if signals::parse(value).is_some() => template.halt_signal = value.to_string(),
            "init" if !value.is_empty() => template.init = value.split_whitespace().map(String::from).collect(),
            "default-release" => template.default_release = value.to_string(),
            _ => {}
        }
    }
    template
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_header() {
        let text = "#!/bin/sh\n# sysc-description: Debian with systemd\n# sysc-halt-signal: SIGRTMIN+3\n# sysc-default-release: bookworm\n# sysc-init: /lib/systemd/systemd --log-level=info\nset -e\n";
        let t = parse("debian", "/t/debian".into(), text);
        assert_eq!(t.description, "Debian with systemd");
        assert_eq!(t.halt_signal, "SIGRTMIN+3");
        assert_eq!(t.default_release, "bookworm");
        assert_eq!(t.init, ["/lib/systemd/systemd", "--log-level=info"]);
    }

    #[test]
    fn defaults_when_silent_or_wrong() {
        let t = parse("x", "/t/x".into(), "#!/bin/sh\n# sysc-halt-signal: SIGBOGUS\n");
        assert_eq!(t.halt_signal, "SIGPWR");
        assert_eq!(t.init, ["/sbin/init"]);
    }

    #[test]
    fn lists_only_executables_with_sane_names() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, mode: u32| {
            let p = dir.path().join(name);
            std::fs::write(&p, "#!/bin/sh\n").unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        };
        write("busybox", 0o755);
        write("README", 0o644);
        write(".hidden", 0o755);
        let names: Vec<String> = list(dir.path()).into_iter().map(|t| t.name).collect();
        assert_eq!(names, ["busybox"]);
        assert!(matches!(find(dir.path(), "nope"), Err(Error::NotFound(_))));
        assert!(matches!(
            find(dir.path(), "../etc/passwd"),
            Err(Error::InvalidArgument(_))
        ));
    }
}
