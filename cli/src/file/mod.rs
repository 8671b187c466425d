//! `sysc file`: push, pull, edit, list, mkdir and delete files inside a container,
//! running or stopped, at the paths the container sees.

mod chunks;
mod edit;
mod handover;
mod manage;
mod pull;
mod push;

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;

use clap::{Args, Subcommand};

use crate::format::OutputFormat;

pub use edit::edit;
pub use manage::{delete, list, mkdir};
pub use pull::{PullOptions, pull};
pub use push::{PushOptions, push};

#[derive(Subcommand)]
pub enum FileCommand {
    /// Copy local files (or stdin) into a container
    ///
    /// TARGET is NAME/PATH. With one source, PATH is the file to write, or a directory
    /// to put it in (an existing one, or any PATH ending in '/'); with several, PATH is a
    /// directory. A file keeps its permission bits unless --mode says otherwise, and is
    /// owned by the container's root unless --uid/--gid say otherwise (a file it
    /// replaces passes on its owner). It is written under a temporary name and renamed
    /// into place, so the destination never holds a partial file; a symlink there is
    /// written through, to its target inside the container, like cp. Directories need -r;
    /// they travel as one tar stream with modes, mtimes and symlinks (kept as symlinks).
    ///
    /// Examples:
    ///   sysc file push nginx.conf web1/etc/nginx/
    ///   sysc file push -r site/ web1/srv/www --uid 33 --gid 33
    ///   echo hello | sysc file push - web1/tmp/hello.txt --mode 0600
    #[command(verbatim_doc_comment)]
    Push {
        /// Local files or directories; - for stdin
        #[arg(value_name = "SRC", required = true)]
        sources: Vec<OsString>,
        /// NAME/PATH
        #[arg(value_name = "TARGET")]
        target: OsString,
        #[command(flatten)]
        options: PushArgs,
    },
    /// Copy files out of a container
    ///
    /// A regular file (symlinks followed, inside the container) is written to DEST, or
    /// into DEST if that is a directory; - writes it to stdout. Directories need -r and
    /// keep modes, mtimes and symlinks, and owners when sysc runs as root. FIFOs, sockets
    /// and devices are refused.
    ///
    /// Examples:
    ///   sysc file pull web1/etc/hosts .
    ///   sysc file pull -r web1/var/log/nginx ./logs
    ///   sysc file pull web1/etc/os-release - | head -3
    #[command(verbatim_doc_comment)]
    Pull {
        /// NAME/PATH of each file or directory
        #[arg(value_name = "SOURCE", required = true)]
        sources: Vec<OsString>,
        /// Local file or directory; - for stdout
        #[arg(value_name = "DEST")]
        dest: OsString,
        /// Pull directories with their contents
        #[arg(short, long)]
        recursive: bool,
        /// Make missing local parent directories
        #[arg(short = 'p', long = "create-dirs")]
        create_dirs: bool,
    },
    /// Edit a file inside a container with $VISUAL or $EDITOR
    ///
    /// The file is pulled into a temporary file and pushed back, keeping its owner and
    /// mode, only if the editor changed it.
    #[command(verbatim_doc_comment)]
    Edit {
        /// NAME/PATH
        #[arg(value_name = "TARGET")]
        target: OsString,
    },
    /// List a directory inside a container (or show one file)
    #[command(visible_alias = "list")]
    Ls {
        /// NAME/PATH
        #[arg(value_name = "TARGET")]
        target: OsString,
        /// Output format
        #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
        format: OutputFormat,
    },
    /// Make directories inside a container
    Mkdir {
        /// NAME/PATH of each directory
        #[arg(value_name = "TARGET", required = true)]
        targets: Vec<OsString>,
        /// Make missing parents too; an existing directory is no error
        #[arg(short, long)]
        parents: bool,
        #[command(flatten)]
        owner: OwnerArgs,
    },
    /// Delete files or directories inside a container
    #[command(visible_alias = "rm")]
    Delete {
        /// NAME/PATH of each file or directory
        #[arg(value_name = "TARGET", required = true)]
        targets: Vec<OsString>,
        /// Delete directories with their contents; a missing path is no error
        #[arg(short, long)]
        force: bool,
    },
}

#[derive(Args)]
pub struct PushArgs {
    /// Push directories with their contents
    #[arg(short, long)]
    recursive: bool,
    /// Make missing parent directories in the container
    #[arg(short = 'p', long = "create-dirs")]
    create_dirs: bool,
    #[command(flatten)]
    owner: OwnerArgs,
}

#[derive(Args, Clone, Copy)]
pub struct OwnerArgs {
    /// Owner's uid, as the container sees it
    #[arg(long, value_name = "N")]
    uid: Option<u32>,
    /// Group's gid, as the container sees it
    #[arg(long, value_name = "N")]
    gid: Option<u32>,
    /// Permission bits, in octal (e.g. 0644)
    #[arg(long, value_name = "OCTAL", value_parser = parse_mode)]
    mode: Option<u32>,
}

fn parse_mode(text: &str) -> Result<u32, String> {
    let digits = text.strip_prefix("0o").unwrap_or(text);
    match u32::from_str_radix(digits, 8) {
        Ok(mode) if mode <= 0o7777 && !digits.is_empty() => Ok(mode),
        _ => Err(format!("{text:?} is not an octal mode between 0 and 7777")),
    }
}

/// A path inside a container, as NAME/PATH on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub container: String,
    /// Absolute, as bytes (file names need not be UTF-8).
    pub path: Vec<u8>,
}

impl Target {
    pub fn parse(text: &OsString) -> Result<Self, String> {
        let bytes = text.as_bytes();
        let Some(slash) = bytes.iter().position(|&b| b == b'/') else {
            return Err(format!(
                "{} is not NAME/PATH (e.g. web1/etc/hosts)",
                text.to_string_lossy()
            ));
        };
        let container = std::str::from_utf8(&bytes[..slash])
            .map_err(|_| format!("{}: the container name is not UTF-8", text.to_string_lossy()))?;
        if container.is_empty() {
            return Err(format!(
                "{} names no container: give NAME/PATH (e.g. web1/etc/hosts)",
                text.to_string_lossy()
            ));
        }
        Ok(Self {
            container: container.to_string(),
            path: bytes[slash..].to_vec(),
        })
    }

    /// For messages: NAME/PATH.
    pub fn show(&self) -> String {
        format!("{}{}", self.container, String::from_utf8_lossy(&self.path))
    }
}

/// The last component of a path given as bytes, ignoring trailing slashes.
/// Special files a tree went without, in either direction.
fn warn_left_out(names: &[String]) {
    if !names.is_empty() {
        eprintln!(
            "warning: left out {} special file(s) (FIFOs, sockets, devices): {}",
            names.len(),
            names.join(", ")
        );
    }
}

fn base_name(path: &[u8]) -> &[u8] {
    let end = path.iter().rposition(|&b| b != b'/').map_or(0, |i| i + 1);
    let start = path[..end].iter().rposition(|&b| b == b'/').map_or(0, |i| i + 1);
    &path[start..end]
}

/// Parses every NAME/PATH of a command, or says which one is wrong.
pub fn parse_targets(texts: &[OsString]) -> Result<Vec<Target>, String> {
    texts.iter().map(Target::parse).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_name_slash_path() {
        let t = Target::parse(&OsString::from("web1/etc/hosts")).unwrap();
        assert_eq!((t.container.as_str(), t.path.as_slice()), ("web1", &b"/etc/hosts"[..]));
        let root = Target::parse(&OsString::from("web1/")).unwrap();
        assert_eq!(root.path, b"/");
        assert!(
            Target::parse(&OsString::from("web1"))
                .unwrap_err()
                .contains("NAME/PATH")
        );
        assert!(
            Target::parse(&OsString::from("/etc/hosts"))
                .unwrap_err()
                .contains("no container")
        );
        assert_eq!(t.show(), "web1/etc/hosts");
    }

    #[test]
    fn modes_are_octal() {
        assert_eq!(parse_mode("0644"), Ok(0o644));
        assert_eq!(parse_mode("4755"), Ok(0o4755));
        assert_eq!(parse_mode("0o600"), Ok(0o600));
        assert!(parse_mode("0999").is_err());
        assert!(parse_mode("17777").is_err());
        assert!(parse_mode("").is_err());
    }

    #[test]
    fn base_names_ignore_trailing_slashes() {
        assert_eq!(base_name(b"/etc/hosts"), b"hosts");
        assert_eq!(base_name(b"dir/"), b"dir");
        assert_eq!(base_name(b"x"), b"x");
        assert_eq!(base_name(b"/"), b"");
    }
}
