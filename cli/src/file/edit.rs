//! `sysc file edit`: pull into a temporary file, run the editor, push back if changed.

use std::io::{Read, Write};

use anyhow::Context;
use sysc_proto::v1::{FileType, PushFileHeader};
use tokio::sync::{mpsc, oneshot};

use super::Target;
use super::chunks::{CHUNKS_AHEAD, ChunkWriter, send_all};
use super::handover::Offer;
use super::{pull, push};
use crate::connect::os_message;
use crate::editor;
use crate::progress::Transfer;
use tonic::transport::Channel;

pub async fn edit(channel: Channel, target: Target) -> anyhow::Result<()> {
    let offer = Offer::new();
    let (header, body) = pull::open(channel.clone(), &target, false, offer.as_ref())
        .await
        .with_context(|| format!("edit {}", target.show()))?;
    if header.r#type != FileType::Regular as i32 {
        anyhow::bail!("edit {}: not a regular file", target.show());
    }
    // The container's file name at the end, so the editor picks the right syntax.
    let suffix = format!("-{}", String::from_utf8_lossy(&header.name));
    let mut file = tempfile::Builder::new()
        .prefix("sysc-edit-")
        .suffix(&suffix)
        .tempfile()
        .context("cannot create a temporary file to edit")?;
    let mut original = Vec::new();
    match body {
        pull::Body::Stream(responses) => pull::receive(*responses, &Transfer::new(String::new()), |data| {
            original.extend_from_slice(data);
            Ok(())
        })
        .await
        .map(drop),
        pull::Body::Handed(mut source) => source
            .read_to_end(&mut original)
            .map(drop)
            .map_err(|err| anyhow::anyhow!("read: {}", os_message(&err))),
    }
    .with_context(|| format!("edit {}", target.show()))?;
    file.write_all(&original)
        .and_then(|()| file.flush())
        .with_context(|| format!("cannot write {}", file.path().display()))?;

    let unchanged = format!("{} is unchanged", target.show());
    editor::run(&editor::from_environment(), file.path(), &unchanged).await?;
    let edited = std::fs::read(file.path()).with_context(|| format!("cannot read {}", file.path().display()))?;
    if edited == original {
        return Ok(());
    }
    // Back in place with the owner and mode it had.
    let header = PushFileHeader {
        name: target.container.clone(),
        path: target.path.clone(),
        source_name: Vec::new(),
        tree: false,
        create_dirs: false,
        uid: Some(header.uid),
        gid: Some(header.gid),
        mode: Some(header.mode),
    };
    let (chunks, queued) = mpsc::channel(CHUNKS_AHEAD);
    let (read_tx, read) = oneshot::channel();
    std::thread::spawn(move || {
        let mut writer = ChunkWriter::new(chunks, Box::new(|_| {}));
        let _ = read_tx.send(send_all(&edited[..], &mut writer));
    });
    if let Err(err) = push::send(channel, header, queued, read).await {
        // The edit is the user's work: it outlives the failure.
        let kept = file.into_temp_path().keep().ok();
        let hint = kept.map(|path| format!(" (the edited copy is in {})", path.display()));
        anyhow::bail!("save {}: {err:#}{}", target.show(), hint.unwrap_or_default());
    }
    Ok(())
}
