//! create (and launch = create + start).
//!
//! Order, so that a crash at any point leaves nothing half-made once start-up recovery
//! has run: claim the name (record status Creating, flushed), clone the image, set up
//! the rootfs, mark Ready. Recovery deletes whatever a Creating record points at.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{ContainerView, Manager, idmap};
use crate::db::{ContainerRecord, Devices, RecordStatus};
use crate::error::{Error, Result};
use crate::images::blocking;
use crate::keys;
use crate::names;
use crate::progress::Progress;
use crate::storage::VolumeKind;

#[derive(Debug, Clone, Default)]
pub struct CreateParams {
    pub name: String,
    pub template: String,
    pub release: String,
    pub arch: String,
    pub config: BTreeMap<String, String>,
    pub start: bool,
    /// Empty: the default pool.
    pub pool: String,
    /// The network of eth0: empty for the default network, "none" for no nic.
    pub network: String,
}

impl Manager {
    /// Creates (and with `start`, starts) a container as an operation every client sees.
    pub async fn create(self: &Arc<Self>, params: CreateParams, progress: Progress) -> Result<ContainerView> {
        let verb = if params.start { "Launching" } else { "Creating" };
        let description = format!("{verb} container {} from {}", params.name, params.template);
        let operation = self.operation("create", description, &params.name);
        let progress = progress.with_operation(operation.reporter());
        let created = self.create_container(params, progress).await;
        operation.finish(&created);
        created
    }

    async fn create_container(self: &Arc<Self>, params: CreateParams, progress: Progress) -> Result<ContainerView> {
        names::validate(&params.name)?;
        let mut config = BTreeMap::new();
        for (key, value) in &params.config {
            config.insert(key.clone(), keys::validate(key, value)?);
        }
        // Before the image is fetched, what can be refused without the other containers.
        idmap::check(&config)?;
        super::limits::resolve(&params.name, &config, &self.host()?)?;
        super::security::policy(&config)?;
        let devices = self.devices_for_create(&params.network)?;
        let template = self.images.template(&params.template)?;
        crate::images::check_release(&params.release)?;
        let arch = crate::images::resolve_arch(&params.arch, &crate::images::host_arch())?;
        let name = params.name.clone();
        let _guard = self.locks.lock(&name).await;
        self.check_name_free(&name, None)?;
        let pool = if params.pool.is_empty() {
            crate::storage::DEFAULT_POOL.to_string()
        } else {
            params.pool.clone()
        };
        self.pools.get(&pool)?;
        let image = self
            .images
            .ensure(&template, &params.release, &arch, &pool, &progress)
            .await?;

        progress.stage(format!("creating container {name}"));
        let record = self.claim(&name, image.record.clone(), config, devices, &pool).await?;
        if let Err(e) = self.materialize(&record).await {
            self.undo_create(&name).await;
            return Err(e);
        }
        drop(image);
        let record = self.record(&name)?;
        self.lifecycle(
            "container-created",
            &name,
            &[("template", &params.template), ("pool", &pool)],
        );
        if params.start {
            progress.stage(format!("starting {name}"));
            self.start_locked(&record).await?;
        }
        Ok(self.view_of(record).await)
    }

    /// Records the new container (status Creating) with a private id range that no
    /// other container has: the one security.idmap.base pins, else the lowest free one.
    pub(super) async fn claim(
        &self,
        name: &str,
        image: crate::db::ImageRecord,
        mut config: BTreeMap<String, String>,
        devices: Devices,
        pool: &str,
    ) -> Result<ContainerRecord> {
        let _claim = self.claim.lock().await;
        let taken = self.macs_in_use()?;
        super::network::assign_macs(&devices, &mut config, &taken);
        if let Some(range) = idmap::choose(&config, self.settings.idmap_base, &self.idmap_ranges()?)? {
            config.insert(keys::IDMAP_BASE.into(), range.base.to_string());
            config.insert(keys::IDMAP_SIZE.into(), range.size.to_string());
        }
        let record = ContainerRecord {
            name: name.to_string(),
            status: RecordStatus::Creating,
            pool: pool.to_string(),
            image,
            created_at_ms: crate::time::now_ms(),
            config,
            last_exit: None,
            devices,
        };
        self.db.insert_container(&record)?;
        self.db.flush().await?;
        Ok(record)
    }

    /// Every container's id range, whatever its status: one being created or deleted
    /// still owns its ids.
    fn idmap_ranges(&self) -> Result<Vec<(String, idmap::Range)>> {
        Ok(self
            .db
            .containers()?
            .into_iter()
            .filter_map(|r| Some((r.name, idmap::recorded(&r.config)?)))
            .collect())
    }

    async fn materialize(&self, record: &ContainerRecord) -> Result<()> {
        let storage = self.pool_of(record)?;
        let (fingerprint, name) = (record.image.fingerprint.clone(), record.name.clone());
        let volume =
            blocking(move || storage.clone_volume((VolumeKind::Image, &fingerprint), (VolumeKind::Container, &name)))
                .await?;
        self.link(&record.name)?;
        super::setup::personalize(&crate::storage::volume_rootfs(&volume), &record.name)?;
        let mut record = record.clone();
        record.status = RecordStatus::Ready;
        self.save(&record).await
    }

    /// `<root>/containers/<name>` → the container's volume.
    pub(super) fn link(&self, name: &str) -> Result<()> {
        let link = self.settings.container_link(name);
        if let Some(parent) = link.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::internal(format!("create {}", parent.display()), e))?;
        }
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(self.volume(name)?, &link)
            .map_err(|e| Error::internal(format!("link {}", link.display()), e))
    }

    /// Removes everything a create made; used on failure and by recovery.
    pub(super) async fn undo_create(&self, name: &str) {
        if let Err(e) = self.remove_volumes(name).await {
            tracing::warn!(container = %name, "removing the volumes of a failed create: {e}");
        }
        let _ = std::fs::remove_file(self.settings.container_link(name));
        let _ = std::fs::remove_dir_all(self.settings.monitor_dir(name));
        if let Err(e) = self.db.remove_container(name) {
            tracing::warn!(container = %name, "removing the record of a failed create: {e}");
        }
        let _ = self.db.flush().await;
    }

    /// eth0 on the requested network (or the default one), or no nic for "none".
    fn devices_for_create(&self, network: &str) -> Result<Devices> {
        let network = match network {
            "none" => return Ok(Devices::new()),
            "" => match self.networks.default_name() {
                Some(default) if self.networks.get(&default).is_ok() => default,
                _ => return Ok(Devices::new()),
            },
            named => {
                self.networks.get(named)?;
                named.to_string()
            }
        };
        Ok(super::network::default_nic(&network))
    }
}
