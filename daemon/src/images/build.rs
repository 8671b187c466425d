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
        command.arg("--arch").arg(super::platform::debian_name(arch));
    }
    command
        .env("SYSC_CACHE", cache_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    // SAFETY: prctl(2) between fork and exec. A template dies with the daemon, so a
    // daemon killed mid-build leaves no orphan writing into the volume that start-up
    // recovery deletes.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let mut child = command
        .spawn()
        .map_err(|e| Error::internal(format!("run template {}", template.path.display()), e))?;
    // Whatever the template started (debootstrap, cp, ...) goes with it if the build
    // is abandoned.
    let group = ProcessGroupGuard(child.id().map(|pid| pid as i32));
    let stdout = forward(child.stdout.take(), false, progress.clone());
    let stderr = forward(child.stderr.take(), true, progress.clone());
    let (status, _, last_error) = tokio::join!(child.wait(), stdout, stderr);
    drop(group);
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

/// Kills a template's whole process group when dropped (its children would otherwise
/// outlive a build that failed or was cancelled).
struct ProcessGroupGuard(Option<i32>);

impl Drop for ProcessGroupGuard {
    fn drop(&mut self) {
        if let Some(pgid) = self.0 {
            // SAFETY: kill(2) of the process group we created for the template.
            unsafe { libc::kill(-pgid, libc::SIGKILL) };
        }
    }
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
