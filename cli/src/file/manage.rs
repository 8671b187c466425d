//! `sysc file ls`, `mkdir` and `delete`.

use chrono::DateTime;
use serde::Serialize;
use sysc_proto::v1::files_client::FilesClient;
use sysc_proto::v1::{DeleteFileRequest, FileInfo, FileType, ListFilesRequest, MkdirRequest};
use tonic::transport::Channel;

use super::{OwnerArgs, Target};
use crate::connect::rpc_error;
use crate::format::{self, Layout, Listing, OutputFormat};
use crate::lifecycle::FailuresReported;

pub async fn list(channel: Channel, target: Target, output: OutputFormat) -> anyhow::Result<()> {
    let mut batches = FilesClient::new(channel)
        .list(ListFilesRequest {
            name: target.container.clone(),
            path: target.path.clone(),
        })
        .await
        .map_err(|status| in_container(&target, status))?
        .into_inner();
    let mut entries = Vec::new();
    while let Some(batch) = batches
        .message()
        .await
        .map_err(|status| in_container(&target, status))?
    {
        entries.extend(batch.entries.into_iter().map(Entry));
    }
    format::print(&format::render(&entries, output)?)?;
    Ok(())
}

struct Entry(FileInfo);

#[derive(Serialize)]
struct EntryRecord {
    name: String,
    #[serde(rename = "type")]
    kind: &'static str,
    mode: String,
    uid: u32,
    gid: u32,
    size: u64,
    modified: Option<String>,
    link_target: Option<String>,
}

fn kind(info: &FileInfo) -> (&'static str, char) {
    match FileType::try_from(info.r#type).unwrap_or(FileType::Unspecified) {
        FileType::Directory => ("directory", 'd'),
        FileType::Symlink => ("symlink", 'l'),
        FileType::Fifo => ("fifo", 'p'),
        FileType::Socket => ("socket", 's'),
        FileType::CharDevice => ("char-device", 'c'),
        FileType::BlockDevice => ("block-device", 'b'),
        FileType::Regular | FileType::Unspecified => ("file", '-'),
    }
}

/// `ls -l`'s first column: type and rwx bits, with s/S and t/T for the special bits.
fn mode_string(info: &FileInfo) -> String {
    let mut text = String::new();
    text.push(kind(info).1);
    let mode = info.mode;
    for (shift, special, letter) in [(6, 0o4000, 's'), (3, 0o2000, 's'), (0, 0o1000, 't')] {
        let bits = (mode >> shift) & 7;
        text.push(if bits & 4 != 0 { 'r' } else { '-' });
        text.push(if bits & 2 != 0 { 'w' } else { '-' });
        text.push(match (bits & 1 != 0, mode & special != 0) {
            (true, true) => letter,
            (false, true) => letter.to_ascii_uppercase(),
            (true, false) => 'x',
            (false, false) => '-',
        });
    }
    text
}

/// A name on one line: control characters (a newline is a valid file name) escaped.
fn printable(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .chars()
        .flat_map(|c| -> Box<dyn Iterator<Item = char>> {
            if c.is_control() {
                Box::new(c.escape_default())
            } else {
                Box::new(std::iter::once(c))
            }
        })
        .collect()
}

fn modified(info: &FileInfo) -> Option<String> {
    DateTime::from_timestamp(info.mtime, 0).map(|t| t.to_rfc3339())
}

impl Listing for Entry {
    type Record = EntryRecord;
    const HEADER: &'static [&'static str] = &["MODE", "UID", "GID", "SIZE", "MODIFIED", "NAME"];

    fn record(&self) -> EntryRecord {
        let info = &self.0;
        EntryRecord {
            name: String::from_utf8_lossy(&info.name).into_owned(),
            kind: kind(info).0,
            mode: format!("{:04o}", info.mode),
            uid: info.uid,
            gid: info.gid,
            size: info.size,
            modified: modified(info),
            link_target: (!info.link_target.is_empty())
                .then(|| String::from_utf8_lossy(&info.link_target).into_owned()),
        }
    }

    fn cells(&self, layout: Layout) -> Vec<String> {
        let info = &self.0;
        let mut name = printable(&info.name);
        if !info.link_target.is_empty() {
            name = format!("{name} -> {}", printable(&info.link_target));
        }
        let timestamp = sysc_proto::Timestamp {
            seconds: info.mtime,
            nanos: 0,
        };
        vec![
            mode_string(info),
            info.uid.to_string(),
            info.gid.to_string(),
            match layout {
                Layout::Table => format::human_size(info.size),
                Layout::Csv => info.size.to_string(),
            },
            format::local_time(Some(&timestamp)).unwrap_or_else(|| layout.empty().to_string()),
            name,
        ]
    }
}

pub async fn mkdir(channel: Channel, targets: Vec<Target>, parents: bool, owner: OwnerArgs) -> anyhow::Result<()> {
    let client = FilesClient::new(channel);
    each(targets, |target| {
        let request = MkdirRequest {
            name: target.container.clone(),
            path: target.path.clone(),
            parents,
            mode: owner.mode,
            uid: owner.uid,
            gid: owner.gid,
        };
        let mut client = client.clone();
        async move { client.mkdir(request).await.map(drop) }
    })
    .await
}

pub async fn delete(channel: Channel, targets: Vec<Target>, force: bool) -> anyhow::Result<()> {
    let client = FilesClient::new(channel);
    each(targets, |target| {
        let request = DeleteFileRequest {
            name: target.container.clone(),
            path: target.path.clone(),
            recursive: force,
        };
        let mut client = client.clone();
        async move { client.delete(request).await.map(drop) }
    })
    .await
}

/// The daemon's message names the path; this names the container too.
fn in_container(target: &Target, status: tonic::Status) -> anyhow::Error {
    rpc_error(status).context(format!("container {}", target.container))
}

/// Runs `request` for each target in turn; every failure is printed, naming its target.
async fn each<F, Fut>(targets: Vec<Target>, mut request: F) -> anyhow::Result<()>
where
    F: FnMut(&Target) -> Fut,
    Fut: std::future::Future<Output = Result<(), tonic::Status>>,
{
    if targets.len() == 1 {
        return request(&targets[0])
            .await
            .map_err(|status| in_container(&targets[0], status));
    }
    let mut failed = false;
    for target in &targets {
        if let Err(status) = request(target).await {
            eprintln!("error: {:#}", in_container(target, status));
            failed = true;
        }
    }
    if failed { Err(FailuresReported.into()) } else { Ok(()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(kind: FileType, mode: u32) -> FileInfo {
        FileInfo {
            r#type: kind as i32,
            mode,
            ..Default::default()
        }
    }

    #[test]
    fn modes_read_like_ls() {
        assert_eq!(mode_string(&info(FileType::Regular, 0o644)), "-rw-r--r--");
        assert_eq!(mode_string(&info(FileType::Directory, 0o1777)), "drwxrwxrwt");
        assert_eq!(mode_string(&info(FileType::Regular, 0o4755)), "-rwsr-xr-x");
        assert_eq!(mode_string(&info(FileType::Regular, 0o2644)), "-rw-r-Sr--");
        assert_eq!(mode_string(&info(FileType::Symlink, 0o777)), "lrwxrwxrwx");
    }

    #[test]
    fn names_stay_on_one_line() {
        assert_eq!(printable(b"a\nb"), "a\\nb");
        assert_eq!(printable("caf\u{e9} x".as_bytes()), "caf\u{e9} x");
    }
}
