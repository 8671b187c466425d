//! Running a template script into an image volume, its output streamed as progress.

use std::path::Path;
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::Command;

use super::Template;
use crate::db::ImageRecord;
use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::storage::volume_rootfs;

pub async fn run_template(
    template: &Template,
    volume: &Path,
    release: &str,
    arch: &str,
    cache_dir: &Path,
    progress: &Progress,
) -> Result<()> {
    let rootfs = volume_rootfs(volume);
    std::fs::create_dir(&rootfs).map_err(|e| Error::internal(format!("create {}", rootfs.display()), e))?;
    let mut command = Command::new(&template.path);
    command
        .arg("--path")
        .arg(volume)
        .arg("--name")
        .arg(&template.name)
        .arg("--rootfs")
        .arg(&rootfs);
    if !release.is_empty() {
        command.arg("--release").arg(release);
    }
    if !arch.is_empty() && arch != host_arch() {
        command.arg("--arch").arg(arch);
    }
    let mut child = command
        .env("SYSC_CACHE", cache_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| Error::internal(format!("run template {}", template.path.display()), e))?;
    let stdout = forward(child.stdout.take(), false, progress.clone());
    let stderr = forward(child.stderr.take(), true, progress.clone());
    let (status, _, last_error) = tokio::join!(child.wait(), stdout, stderr);
    let status = status.map_err(|e| Error::internal(format!("wait for template {}", template.name), e))?;
    if status.success() {
        return Ok(());
    }
    let detail = last_error.map(|l| format!(": {l}")).unwrap_or_default();
    Err(Error::Internal(format!(
        "template {} failed ({status}){detail}",
        template.name
    )))
}

/// Streams a pipe line by line; returns its last non-empty line.
async fn forward<R: AsyncRead + Unpin>(pipe: Option<R>, stderr: bool, progress: Progress) -> Option<String> {
    let mut lines = BufReader::new(pipe?).lines();
    let mut last = None;
    while let Ok(Some(line)) = lines.next_line().await {
        if !line.trim().is_empty() {
            last = Some(line.clone());
        }
        progress.output(stderr, line);
    }
    last
}

/// The machine name images are tagged with (uname -m: x86_64, aarch64, ...).
pub fn host_arch() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.machine().to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// metadata.yaml in the Incus image format, so the volume can be exported as an image.
pub fn write_metadata(volume: &Path, image: &ImageRecord) -> Result<()> {
    let mut properties = serde_yaml::Mapping::new();
    for (key, value) in [
        ("os", image.template.as_str()),
        ("release", image.release.as_str()),
        ("description", image.description.as_str()),
        ("sysc.halt_signal", image.halt_signal.as_str()),
    ] {
        properties.insert(key.into(), value.into());
    }
    properties.insert("sysc.init".into(), image.init.join(" ").into());
    let mut metadata = serde_yaml::Mapping::new();
    metadata.insert("architecture".into(), image.arch.clone().into());
    metadata.insert("creation_date".into(), (image.created_at_ms / 1000).into());
    metadata.insert("properties".into(), properties.into());
    let text = serde_yaml::to_string(&metadata).map_err(|e| Error::internal("render metadata.yaml", e))?;
    let path = volume.join("metadata.yaml");
    std::fs::write(&path, text).map_err(|e| Error::internal(format!("write {}", path.display()), e))
}
