//! `sysc config device add|set|unset|remove|list|show`: a container's devices, the nics on
//! managed networks and the proxies from host ports into it.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;
use sysc_proto::v1::containers_client::ContainersClient;
use sysc_proto::v1::{AddDeviceRequest, Device, GetRequest, RemoveDeviceRequest, UpdateDeviceRequest};
use tonic::transport::Channel;

use crate::connect::rpc_error;
use crate::format::{self, Layout, Listing, OutputFormat};

/// The types `config device add` offers; the daemon has the last word.
pub const TYPES: [&str; 2] = ["nic", "proxy"];

/// The key that holds a device's type.
const TYPE_KEY: &str = "type";

/// The keys of a new device: TYPE as `type`, and the KEY=VALUE arguments (a repeated key keeps
/// its last value). A `type` among those is refused rather than letting one of the two win
/// without a word.
pub fn add_config(kind: &str, pairs: &[(String, String)]) -> Result<BTreeMap<String, String>, String> {
    if pairs.iter().any(|(key, _)| key == TYPE_KEY) {
        return Err(format!(
            "the device type is the TYPE argument ({kind}), not a {TYPE_KEY}=VALUE"
        ));
    }
    Ok(std::iter::once((TYPE_KEY.to_string(), kind.to_string()))
        .chain(pairs.iter().cloned())
        .collect())
}

pub async fn add(
    channel: Channel,
    name: String,
    device: String,
    config: BTreeMap<String, String>,
) -> anyhow::Result<()> {
    let container = ContainersClient::new(channel)
        .add_device(AddDeviceRequest {
            name,
            device: device.clone(),
            config: config.into_iter().collect(),
        })
        .await
        .map_err(rpc_error)?
        .into_inner();
    format::print(&format!("Device {device} added to {}\n", container.name))?;
    Ok(())
}

pub async fn set(
    channel: Channel,
    name: String,
    device: String,
    values: BTreeMap<String, String>,
) -> anyhow::Result<()> {
    update(
        channel,
        UpdateDeviceRequest {
            name,
            device,
            set: values.into_iter().collect(),
            unset: Vec::new(),
        },
    )
    .await
}

pub async fn unset(channel: Channel, name: String, device: String, mut keys: Vec<String>) -> anyhow::Result<()> {
    let mut seen = HashSet::new();
    keys.retain(|key| seen.insert(key.clone()));
    update(
        channel,
        UpdateDeviceRequest {
            name,
            device,
            set: Default::default(),
            unset: keys,
        },
    )
    .await
}

async fn update(channel: Channel, request: UpdateDeviceRequest) -> anyhow::Result<()> {
    ContainersClient::new(channel)
        .update_device(request)
        .await
        .map_err(rpc_error)?;
    Ok(())
}

pub async fn remove(channel: Channel, name: String, device: String) -> anyhow::Result<()> {
    ContainersClient::new(channel)
        .remove_device(RemoveDeviceRequest { name, device })
        .await
        .map_err(rpc_error)?;
    Ok(())
}

async fn fetch(channel: Channel, name: String) -> anyhow::Result<Vec<NamedDevice>> {
    let container = ContainersClient::new(channel)
        .get(GetRequest { name })
        .await
        .map_err(rpc_error)?
        .into_inner();
    Ok(by_name(&container.devices))
}

pub async fn list(channel: Channel, name: String, format: OutputFormat) -> anyhow::Result<()> {
    let devices = fetch(channel, name).await?;
    format::print(&format::render(&devices, format)?)?;
    Ok(())
}

pub async fn show(channel: Channel, name: String) -> anyhow::Result<()> {
    let devices = fetch(channel, name).await?;
    format::print(&render_document(&devices)?)?;
    Ok(())
}

/// Each device and its keys, `type` included, as `incus config device show` prints them.
fn render_document(devices: &[NamedDevice]) -> anyhow::Result<String> {
    let document: BTreeMap<&str, &BTreeMap<String, String>> = devices
        .iter()
        .map(|device| (device.name.as_str(), &device.config))
        .collect();
    Ok(serde_yaml::to_string(&document)?)
}

/// A device with its name, keys sorted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamedDevice {
    pub name: String,
    pub config: BTreeMap<String, String>,
}

impl NamedDevice {
    /// "nic", "proxy"; empty if the daemon sent no type.
    pub fn kind(&self) -> &str {
        self.config.get(TYPE_KEY).map(String::as_str).unwrap_or_default()
    }

    /// Every key but the type, as KEY=VALUE, sorted by key.
    pub fn settings(&self) -> Vec<String> {
        self.config
            .iter()
            .filter(|&(key, _)| key != TYPE_KEY)
            .map(|(key, value)| format!("{key}={value}"))
            .collect()
    }
}

/// A container's devices, sorted by name so output is stable from one run to the next.
pub fn by_name(devices: &HashMap<String, Device>) -> Vec<NamedDevice> {
    let mut devices: Vec<NamedDevice> = devices
        .iter()
        .map(|(name, device)| NamedDevice {
            name: name.clone(),
            config: device.config.clone().into_iter().collect(),
        })
        .collect();
    devices.sort_by(|a, b| a.name.cmp(&b.name));
    devices
}

/// One device in `config device list --format json|yaml`; scripts rely on these field names.
#[derive(Debug, Serialize)]
pub struct DeviceRecord {
    name: String,
    #[serde(rename = "type")]
    kind: String,
    /// Every key, `type` included, as in the API.
    config: BTreeMap<String, String>,
}

impl Listing for NamedDevice {
    type Record = DeviceRecord;
    const HEADER: &'static [&'static str] = &["NAME", "TYPE", "CONFIG"];

    fn record(&self) -> DeviceRecord {
        DeviceRecord {
            name: self.name.clone(),
            kind: self.kind().to_string(),
            config: self.config.clone(),
        }
    }

    fn cells(&self, layout: Layout) -> Vec<String> {
        let kind = match self.kind() {
            "" => layout.empty(),
            kind => kind,
        };
        vec![self.name.clone(), kind.to_string(), layout.join(&self.settings())]
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn pairs(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    /// A nic and a proxy, as the daemon reports them.
    pub fn sample_devices() -> HashMap<String, Device> {
        HashMap::from([
            (
                "http".to_string(),
                Device {
                    config: [
                        ("type", "proxy"),
                        ("listen", "tcp:0.0.0.0:8080"),
                        ("connect", "tcp:127.0.0.1:80"),
                    ]
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .into(),
                },
            ),
            (
                "eth0".to_string(),
                Device {
                    config: [("type", "nic"), ("network", "sysc0"), ("name", "eth0")]
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .into(),
                },
            ),
        ])
    }

    #[test]
    fn type_comes_from_the_type_argument_only() {
        assert_eq!(
            add_config(
                "proxy",
                &pairs(&[("listen", "tcp:0.0.0.0:80"), ("listen", "tcp:0.0.0.0:81")])
            )
            .unwrap(),
            map(&[("type", "proxy"), ("listen", "tcp:0.0.0.0:81")])
        );
        assert_eq!(add_config("nic", &[]).unwrap(), map(&[("type", "nic")]));
        assert_eq!(
            add_config("nic", &pairs(&[("type", "proxy")])).unwrap_err(),
            "the device type is the TYPE argument (nic), not a type=VALUE"
        );
    }

    #[test]
    fn devices_are_sorted_and_their_type_kept_apart() {
        let devices = by_name(&sample_devices());
        assert_eq!(
            devices.iter().map(|d| d.name.as_str()).collect::<Vec<_>>(),
            ["eth0", "http"]
        );
        assert_eq!(devices[1].kind(), "proxy");
        assert_eq!(
            devices[1].settings(),
            ["connect=tcp:127.0.0.1:80", "listen=tcp:0.0.0.0:8080"]
        );
        assert_eq!(
            devices[0].cells(Layout::Table),
            ["eth0", "nic", "name=eth0\nnetwork=sysc0"]
        );
        let untyped = NamedDevice {
            name: "odd".into(),
            config: BTreeMap::new(),
        };
        assert_eq!(untyped.cells(Layout::Table), ["odd", "-", "-"]);
        assert_eq!(untyped.cells(Layout::Csv), ["odd", "", ""]);
    }

    #[test]
    fn list_formats() {
        let devices = by_name(&sample_devices());
        assert_eq!(
            format::render(&devices, OutputFormat::Csv).unwrap(),
            "NAME,TYPE,CONFIG\n\
             eth0,nic,name=eth0 network=sysc0\n\
             http,proxy,connect=tcp:127.0.0.1:80 listen=tcp:0.0.0.0:8080\n"
        );
        let json: serde_json::Value =
            serde_json::from_str(&format::render(&devices, OutputFormat::Json).unwrap()).unwrap();
        assert_eq!(
            json[1],
            serde_json::json!({
                "name": "http",
                "type": "proxy",
                "config": {"type": "proxy", "listen": "tcp:0.0.0.0:8080", "connect": "tcp:127.0.0.1:80"},
            })
        );
        let yaml: serde_yaml::Value =
            serde_yaml::from_str(&format::render(&devices, OutputFormat::Yaml).unwrap()).unwrap();
        assert_eq!(yaml[0]["config"]["network"], "sysc0");
    }

    #[test]
    fn show_is_yaml_of_every_device_and_key() {
        assert_eq!(
            render_document(&by_name(&sample_devices())).unwrap(),
            "eth0:\n  name: eth0\n  network: sysc0\n  type: nic\n\
             http:\n  connect: tcp:127.0.0.1:80\n  listen: tcp:0.0.0.0:8080\n  type: proxy\n"
        );
        assert_eq!(render_document(&[]).unwrap(), "{}\n");
    }

    mod against_a_daemon {
        use super::*;
        use crate::fake_daemon::{Call, FakeDaemon, container};
        use sysc_proto::v1::ContainerState;

        async fn daemon() -> FakeDaemon {
            let mut web1 = container("web1", ContainerState::Running, &[]);
            web1.devices = sample_devices();
            FakeDaemon::start(vec![web1]).await
        }

        #[tokio::test]
        async fn add_sends_the_type_and_keys_in_one_request() {
            let daemon = daemon().await;
            let config = add_config(
                "proxy",
                &pairs(&[("listen", "tcp:0.0.0.0:2222"), ("connect", "tcp:127.0.0.1:22")]),
            )
            .unwrap();
            add(daemon.channel.clone(), "web1".into(), "ssh".into(), config)
                .await
                .unwrap();
            let calls = daemon.calls();
            let [Call::AddDevice(request)] = calls.as_slice() else {
                panic!("{calls:?}")
            };
            assert_eq!((request.name.as_str(), request.device.as_str()), ("web1", "ssh"));
            assert_eq!(
                request.config.clone().into_iter().collect::<BTreeMap<_, _>>(),
                map(&[
                    ("type", "proxy"),
                    ("listen", "tcp:0.0.0.0:2222"),
                    ("connect", "tcp:127.0.0.1:22")
                ])
            );
            assert_eq!(daemon.devices("web1")["ssh"]["connect"], "tcp:127.0.0.1:22");

            let err = add(
                daemon.channel.clone(),
                "web1".into(),
                "http".into(),
                map(&[("type", "proxy")]),
            )
            .await
            .unwrap_err();
            assert_eq!(err.to_string(), "device http already exists on web1");
        }

        #[tokio::test]
        async fn set_unset_and_remove_change_one_device() {
            let daemon = daemon().await;
            set(
                daemon.channel.clone(),
                "web1".into(),
                "eth0".into(),
                map(&[("ipv4.address", "10.1.2.50")]),
            )
            .await
            .unwrap();
            unset(
                daemon.channel.clone(),
                "web1".into(),
                "eth0".into(),
                vec!["name".into(), "name".into()],
            )
            .await
            .unwrap();
            remove(daemon.channel.clone(), "web1".into(), "http".into())
                .await
                .unwrap();
            let calls = daemon.calls();
            let [
                Call::UpdateDevice(first),
                Call::UpdateDevice(second),
                Call::RemoveDevice(third),
            ] = calls.as_slice()
            else {
                panic!("{calls:?}")
            };
            assert_eq!(first.device, "eth0");
            assert!(first.unset.is_empty() && first.set.len() == 1);
            assert!(second.set.is_empty());
            assert_eq!(second.unset, ["name"]);
            assert_eq!((third.name.as_str(), third.device.as_str()), ("web1", "http"));
            let devices = daemon.devices("web1");
            assert_eq!(
                devices,
                BTreeMap::from([(
                    "eth0".to_string(),
                    map(&[("type", "nic"), ("network", "sysc0"), ("ipv4.address", "10.1.2.50")])
                )])
            );

            let err = remove(daemon.channel.clone(), "web1".into(), "http".into())
                .await
                .unwrap_err();
            assert_eq!(err.to_string(), "device http not found on web1");
        }

        #[tokio::test]
        async fn list_and_show_read_the_container() {
            let daemon = daemon().await;
            assert_eq!(
                fetch(daemon.channel.clone(), "web1".into()).await.unwrap(),
                by_name(&sample_devices())
            );
            let err = fetch(daemon.channel.clone(), "nope".into()).await.unwrap_err();
            assert_eq!(err.to_string(), "container nope not found");
            assert!(daemon.calls().is_empty());
        }
    }
}
