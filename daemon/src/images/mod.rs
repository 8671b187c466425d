//! Images: a template's output, cached per (template script, release, arch) so that
//! the second container from the same template is a clone, not another template run.

mod build;
mod platform;
mod templates;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};

pub use build::host_arch;
pub use platform::{check_release, resolve_arch};
pub use templates::Template;

use crate::db::{Db, ImageRecord};
use crate::error::{Error, Result};
use crate::locks::{Guard, KeyedLocks};
use crate::progress::Progress;
use crate::storage::{Pools, SharedDriver, VolumeKind, is_temporary, temporary_name};

pub struct Images {
    db: Db,
    pools: Arc<Pools>,
    templates_dir: PathBuf,
    /// Handed to templates as SYSC_CACHE, for their own download caches.
    cache_dir: PathBuf,
    locks: KeyedLocks,
}

/// An image that stays in place while the guard is held (a create clones from it).
pub struct HeldImage {
    pub record: ImageRecord,
    _guard: Guard,
}

impl Images {
    pub fn new(db: Db, pools: Arc<Pools>, templates_dir: PathBuf, cache_dir: PathBuf) -> Arc<Self> {
        Arc::new(Self {
            db,
            pools,
            templates_dir,
            cache_dir,
            locks: KeyedLocks::default(),
        })
    }

    pub fn templates_dir(&self) -> &Path {
        &self.templates_dir
    }

    pub fn templates(&self) -> Vec<Template> {
        templates::list(&self.templates_dir)
    }

    pub fn template(&self, name: &str) -> Result<Template> {
        templates::find(&self.templates_dir, name)
    }

    /// The cached image for a template and its options in a pool: copied from another
    /// pool that has it, else built.
    pub async fn ensure(
        &self,
        template: &Template,
        release: &str,
        arch: &str,
        pool: &str,
        progress: &Progress,
    ) -> Result<HeldImage> {
        let release = if release.is_empty() {
            template.default_release.clone()
        } else {
            release.to_string()
        };
        let storage = self.pools.get(pool)?;
        let fingerprint = fingerprint(template, &release, arch)?;
        let guard = self.locks.lock(&fingerprint).await;
        if let Some(record) = self.db.image(pool, &fingerprint)? {
            if storage.exists(VolumeKind::Image, &fingerprint) {
                progress.stage(format!("using cached image {}", record.label()));
                return Ok(HeldImage { record, _guard: guard });
            }
            self.db.remove_image(pool, &fingerprint)?;
        }
        if let Some(record) = self
            .copy_from_other_pool(&fingerprint, pool, &storage, progress)
            .await?
        {
            return Ok(HeldImage { record, _guard: guard });
        }
        let record = self
            .build(template, &release, arch, pool, &storage, &fingerprint, progress)
            .await?;
        Ok(HeldImage { record, _guard: guard })
    }

    async fn copy_from_other_pool(
        &self,
        fingerprint: &str,
        pool: &str,
        storage: &SharedDriver,
        progress: &Progress,
    ) -> Result<Option<ImageRecord>> {
        let Some(mut record) = self
            .db
            .images()?
            .into_iter()
            .find(|i| i.fingerprint == fingerprint && i.pool != pool)
        else {
            return Ok(None);
        };
        let source = self.pools.get(&record.pool)?;
        progress.stage(format!(
            "copying image {} from storage pool {} to {pool}",
            record.label(),
            record.pool
        ));
        let (storage, fp) = (storage.clone(), fingerprint.to_string());
        let from = source.path(VolumeKind::Image, fingerprint);
        blocking(move || storage.copy_in(&from, VolumeKind::Image, &fp).map(drop)).await?;
        record.pool = pool.to_string();
        self.db.put_image(&record)?;
        self.db.flush().await?;
        Ok(Some(record))
    }

    #[allow(clippy::too_many_arguments)]
    async fn build(
        &self,
        template: &Template,
        release: &str,
        arch: &str,
        pool: &str,
        storage: &SharedDriver,
        fingerprint: &str,
        progress: &Progress,
    ) -> Result<ImageRecord> {
        let label = if release.is_empty() {
            template.name.clone()
        } else {
            format!("{}/{release}", template.name)
        };
        progress.stage(format!(
            "building image {label} with template {}",
            template.path.display()
        ));
        let tmp = temporary_name(fingerprint);
        let (volumes, tmp_name) = (storage.clone(), tmp.clone());
        let volume = blocking(move || {
            volumes.delete(VolumeKind::Image, &tmp_name)?;
            volumes.create_empty(VolumeKind::Image, &tmp_name)
        })
        .await?;
        let built = build::run_template(template, &volume, release, arch, &self.cache_dir, progress).await;
        let record = match built {
            Ok(()) => {
                self.finish(template, release, arch, storage, pool, fingerprint, &volume, &tmp)
                    .await
            }
            Err(e) => Err(e),
        };
        if record.is_err() {
            let storage = storage.clone();
            let _ = blocking(move || storage.delete(VolumeKind::Image, &tmp)).await;
        }
        let record = record?;
        progress.stage(format!("cached image {}", record.label()));
        Ok(record)
    }

    #[allow(clippy::too_many_arguments)]
    async fn finish(
        &self,
        template: &Template,
        release: &str,
        arch: &str,
        storage: &SharedDriver,
        pool: &str,
        fingerprint: &str,
        volume: &Path,
        tmp: &str,
    ) -> Result<ImageRecord> {
        let created_at_ms = crate::time::now_ms();
        let mut record = ImageRecord {
            fingerprint: fingerprint.to_string(),
            template: template.name.clone(),
            release: release.to_string(),
            arch: arch.to_string(),
            description: template.description.clone(),
            halt_signal: template.halt_signal.clone(),
            init: template.init.clone(),
            size_bytes: 0,
            created_at_ms,
            pool: pool.to_string(),
        };
        build::write_metadata(volume, &record)?;
        let storage = storage.clone();
        let (tmp, fp) = (tmp.to_string(), fingerprint.to_string());
        record.size_bytes = blocking(move || {
            storage.rename(VolumeKind::Image, &tmp, &fp)?;
            Ok(storage.size(VolumeKind::Image, &fp))
        })
        .await?;
        self.db.put_image(&record)?;
        self.db.flush().await?;
        Ok(record)
    }

    pub fn list(&self) -> Result<Vec<ImageRecord>> {
        self.db.images()
    }

    /// Deletes the image whose fingerprint is (or starts with) `prefix`.
    pub async fn delete(&self, prefix: &str) -> Result<()> {
        if !prefix.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(Error::InvalidArgument(format!(
                "invalid image fingerprint {prefix:?}: a fingerprint is hex digits (see `sysc image list`)"
            )));
        }
        if prefix.len() < 4 {
            return Err(Error::InvalidArgument(format!(
                "invalid image fingerprint {prefix:?}: give at least 4 of its hex digits"
            )));
        }
        let matches: Vec<ImageRecord> = self
            .db
            .images()?
            .into_iter()
            .filter(|i| i.fingerprint.starts_with(prefix))
            .collect();
        let mut fingerprints: Vec<&str> = matches.iter().map(|i| i.fingerprint.as_str()).collect();
        fingerprints.sort_unstable();
        fingerprints.dedup();
        if fingerprints.len() > 1 {
            return Err(Error::InvalidArgument(format!(
                "image fingerprint {prefix} is ambiguous: {} images match",
                fingerprints.len()
            )));
        }
        let Some(first) = matches.first() else {
            return Err(Error::NotFound(format!("image {prefix} not found")));
        };
        let _guard = self.locks.lock(&first.fingerprint).await;
        for record in &matches {
            self.db.remove_image(&record.pool, &record.fingerprint)?;
        }
        self.db.flush().await?;
        for record in matches {
            let storage = self.pools.get(&record.pool)?;
            blocking(move || storage.delete(VolumeKind::Image, &record.fingerprint)).await?;
        }
        Ok(())
    }

    /// Start-up: drops what an interrupted build left (temporary volumes, volumes
    /// without a record, records without a volume).
    pub fn recover(&self) -> Result<()> {
        let records = self.db.images()?;
        for (pool, storage) in self.pools.all() {
            for name in storage.list(VolumeKind::Image)? {
                let known = records.iter().any(|r| r.pool == pool && r.fingerprint == name);
                if is_temporary(&name) || !known {
                    tracing::info!(pool = %pool, volume = %name, "removing an image volume an interrupted build left");
                    storage.delete(VolumeKind::Image, &name)?;
                }
            }
        }
        for record in records {
            let present = self
                .pools
                .get(&record.pool)
                .map(|s| s.exists(VolumeKind::Image, &record.fingerprint))
                .unwrap_or(false);
            if !present {
                tracing::warn!(image = %record.fingerprint, pool = %record.pool, "image volume is missing; forgetting the image");
                self.db.remove_image(&record.pool, &record.fingerprint)?;
            }
        }
        Ok(())
    }
}

/// sha256 over the template script and the options it runs with.
fn fingerprint(template: &Template, release: &str, arch: &str) -> Result<String> {
    let script = std::fs::read(&template.path)
        .map_err(|e| Error::internal(format!("read template {}", template.path.display()), e))?;
    let mut hash = Sha256::new();
    hash.update(&script);
    for part in [release, arch] {
        hash.update([0u8]);
        hash.update(part.as_bytes());
    }
    Ok(hex::encode(hash.finalize()))
}

/// Runs blocking storage work off the async threads.
pub async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> crate::storage::Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Error::internal("storage task", e))?
        .map_err(Error::from)
}
