//! `sysc storage create|list|info|delete`: the pools that hold images, containers and
//! snapshots.

use std::collections::BTreeMap;

use serde::Serialize;
use sysc_proto::v1::storage_client::StorageClient;
use sysc_proto::v1::{CreatePoolRequest, DeletePoolRequest, GetPoolRequest, ListPoolsRequest, StoragePool};
use tonic::transport::Channel;

use crate::connect::rpc_error;
use crate::format::{self, Layout, Listing, OutputFormat, yes_no};
use crate::images::SHORT_FINGERPRINT;
use crate::info;

/// The drivers `storage create` offers; the daemon has the last word.
pub const DRIVERS: [&str; 2] = ["btrfs", "dir"];

pub async fn create(
    channel: Channel,
    name: String,
    driver: String,
    config: Vec<(String, String)>,
) -> anyhow::Result<()> {
    let pool = StorageClient::new(channel)
        .create_pool(CreatePoolRequest {
            name,
            driver,
            config: config.into_iter().collect(),
        })
        .await
        .map_err(rpc_error)?
        .into_inner();
    format::print(&format!("Storage pool {} created\n", pool.name))?;
    Ok(())
}

pub async fn list(channel: Channel, format: OutputFormat) -> anyhow::Result<()> {
    let mut pools = StorageClient::new(channel)
        .list_pools(ListPoolsRequest {})
        .await
        .map_err(rpc_error)?
        .into_inner()
        .pools;
    pools.sort_by(|a, b| a.name.cmp(&b.name));
    format::print(&format::render(&pools, format)?)?;
    Ok(())
}

pub async fn info(channel: Channel, name: String) -> anyhow::Result<()> {
    let pool = StorageClient::new(channel)
        .get_pool(GetPoolRequest { name })
        .await
        .map_err(rpc_error)?
        .into_inner();
    format::print(&render(&pool))?;
    Ok(())
}

pub async fn delete(channel: Channel, name: String) -> anyhow::Result<()> {
    StorageClient::new(channel)
        .delete_pool(DeletePoolRequest { name })
        .await
        .map_err(rpc_error)?;
    Ok(())
}

/// A size of the pool's filesystem; a total of 0 means the daemon could not measure it,
/// and then none of the sizes means anything.
fn size(pool: &StoragePool, bytes: u64) -> Option<String> {
    (pool.total_bytes > 0).then(|| format::human_size(bytes))
}

fn render(pool: &StoragePool) -> String {
    let fields = [
        ("Name", pool.name.clone()),
        ("Driver", pool.driver.clone()),
        ("Source", pool.source.clone()),
        ("Path", pool.path.clone()),
        ("Default", yes_no(pool.is_default).to_string()),
        ("Total", size(pool, pool.total_bytes).unwrap_or_default()),
        ("Used", size(pool, pool.used_bytes).unwrap_or_default()),
        ("Free", size(pool, pool.free_bytes).unwrap_or_default()),
    ];
    let mut out: String = fields.iter().map(|(label, value)| info::field(label, value)).collect();
    let mut used_by = pool.used_by.clone();
    used_by.sort();
    out += &info::list_section("Used by", &used_by);
    let images: Vec<String> = pool
        .images
        .iter()
        .map(|fingerprint| fingerprint.chars().take(SHORT_FINGERPRINT).collect())
        .collect();
    out += &info::list_section("Images", &images);
    out += &info::config_section(&pool.config);
    out
}

/// One pool in `storage list --format json|yaml`; scripts rely on these field names.
#[derive(Debug, Serialize)]
pub struct PoolRecord {
    name: String,
    driver: String,
    source: String,
    path: String,
    total_bytes: u64,
    used_bytes: u64,
    free_bytes: u64,
    used_by: Vec<String>,
    images: Vec<String>,
    default: bool,
    config: BTreeMap<String, String>,
}

impl Listing for StoragePool {
    type Record = PoolRecord;
    const HEADER: &'static [&'static str] = &["NAME", "DRIVER", "SOURCE", "USED", "TOTAL", "USED BY", "DEFAULT"];

    fn record(&self) -> PoolRecord {
        PoolRecord {
            name: self.name.clone(),
            driver: self.driver.clone(),
            source: self.source.clone(),
            path: self.path.clone(),
            total_bytes: self.total_bytes,
            used_bytes: self.used_bytes,
            free_bytes: self.free_bytes,
            used_by: self.used_by.clone(),
            images: self.images.clone(),
            default: self.is_default,
            config: self.config.clone().into_iter().collect(),
        }
    }

    fn cells(&self, layout: Layout) -> Vec<String> {
        let none = || layout.empty().to_string();
        vec![
            self.name.clone(),
            self.driver.clone(),
            if self.source.is_empty() {
                none()
            } else {
                self.source.clone()
            },
            size(self, self.used_bytes).unwrap_or_else(none),
            size(self, self.total_bytes).unwrap_or_else(none),
            self.used_by.len().to_string(),
            yes_no(self.is_default).to_string(),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_pool() -> StoragePool {
        StoragePool {
            name: "default".into(),
            driver: "btrfs".into(),
            source: "/var/lib/sysc/disks/default.img".into(),
            path: "/var/lib/sysc/storage-pools/default".into(),
            total_bytes: 20 * 1024 * 1024 * 1024,
            used_bytes: 1_288_490_189,
            free_bytes: 20 * 1024 * 1024 * 1024 - 1_288_490_189,
            used_by: vec!["web2".into(), "web1".into()],
            images: vec!["3f2a9c1d8e7b4455667788".into()],
            is_default: true,
            config: [("size".to_string(), "20GiB".to_string())].into(),
        }
    }

    #[test]
    fn list_rows_have_human_sizes_and_a_count_of_users() {
        let pool = sample_pool();
        assert_eq!(
            pool.cells(Layout::Table),
            [
                "default",
                "btrfs",
                "/var/lib/sysc/disks/default.img",
                "1.2 GiB",
                "20.0 GiB",
                "2",
                "yes"
            ]
        );
        let unmeasured = StoragePool {
            total_bytes: 0,
            used_bytes: 0,
            source: String::new(),
            used_by: Vec::new(),
            is_default: false,
            ..sample_pool()
        };
        assert_eq!(unmeasured.cells(Layout::Table)[2..], ["-", "-", "-", "0", "no"]);
        assert_eq!(unmeasured.cells(Layout::Csv)[2..], ["", "", "", "0", "no"]);
    }

    #[test]
    fn list_json_keeps_exact_numbers_and_names() {
        let json = serde_json::to_value(sample_pool().record()).unwrap();
        assert_eq!(json["total_bytes"], 21_474_836_480_u64);
        assert_eq!(json["used_by"], serde_json::json!(["web2", "web1"]));
        assert_eq!(json["default"], true);
        assert_eq!(json["config"]["size"], "20GiB");
    }

    #[test]
    fn info_lists_users_images_and_config() {
        assert_eq!(
            render(&sample_pool()),
            "Name:        default\n\
             Driver:      btrfs\n\
             Source:      /var/lib/sysc/disks/default.img\n\
             Path:        /var/lib/sysc/storage-pools/default\n\
             Default:     yes\n\
             Total:       20.0 GiB\n\
             Used:        1.2 GiB\n\
             Free:        18.8 GiB\n\
             Used by:\n  web1\n  web2\n\
             Images:\n  3f2a9c1d8e7b\n\
             Config:\n  size: 20GiB\n"
        );
    }
}
