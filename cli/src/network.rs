//! `sysc network create|list|show|delete`: the managed networks containers' nics are on.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use serde::Serialize;
use sysc_proto::v1::networks_client::NetworksClient;
use sysc_proto::v1::{
    CreateNetworkRequest, DeleteNetworkRequest, GetNetworkRequest, Lease, ListNetworksRequest, Network,
};
use tonic::transport::Channel;

use crate::connect::rpc_error;
use crate::format::{self, Layout, Listing, OutputFormat, yes_no};
use crate::info;

/// `config` is passed on as given: the daemon knows the keys (ipv4.address, ipv4.nat,
/// dns.domain) and their defaults.
pub async fn create(channel: Channel, name: String, config: Vec<(String, String)>) -> anyhow::Result<()> {
    let network = NetworksClient::new(channel)
        .create(CreateNetworkRequest {
            name,
            config: config.into_iter().collect(),
        })
        .await
        .map_err(rpc_error)?
        .into_inner();
    // The address is news when the daemon picked it (ipv4.address=auto, or no key at all).
    let address = match network.ipv4_address.as_str() {
        "" => String::new(),
        address => format!(" ({address})"),
    };
    format::print(&format!("Network {} created{address}\n", network.name))?;
    Ok(())
}

pub async fn list(channel: Channel, format: OutputFormat) -> anyhow::Result<()> {
    let mut networks = NetworksClient::new(channel)
        .list(ListNetworksRequest {})
        .await
        .map_err(rpc_error)?
        .into_inner()
        .networks;
    networks.sort_by(|a, b| a.name.cmp(&b.name));
    format::print(&format::render(&networks, format)?)?;
    Ok(())
}

pub async fn show(channel: Channel, name: String) -> anyhow::Result<()> {
    let network = NetworksClient::new(channel)
        .get(GetNetworkRequest { name })
        .await
        .map_err(rpc_error)?
        .into_inner();
    format::print(&render(&network))?;
    Ok(())
}

pub async fn delete(channel: Channel, name: String) -> anyhow::Result<()> {
    NetworksClient::new(channel)
        .delete(DeleteNetworkRequest { name })
        .await
        .map_err(rpc_error)?;
    Ok(())
}

fn render(network: &Network) -> String {
    let dnsmasq_pid = match network.dnsmasq_pid {
        0 => "not running".to_string(),
        pid => pid.to_string(),
    };
    let fields = [
        ("Name", network.name.clone()),
        ("IPv4", network.ipv4_address.clone()),
        ("NAT", yes_no(network.nat).to_string()),
        ("Domain", network.domain.clone()),
        ("State", network.state.clone()),
        ("Default", yes_no(network.is_default).to_string()),
        ("dnsmasq PID", dnsmasq_pid),
    ];
    let mut out: String = fields.iter().map(|(label, value)| info::field(label, value)).collect();
    let mut used_by = network.used_by.clone();
    used_by.sort();
    out += &info::list_section("Used by", &used_by);
    out += &leases_section(&network.leases);
    out += &info::config_section(&network.config);
    out
}

/// When the lease runs out, in local time; a static lease does not.
fn expiry(lease: &Lease) -> String {
    format::local_time(lease.expires_at.as_ref()).unwrap_or_else(|| "never".to_string())
}

/// The leases in address order, as a table under a header line.
fn leases_section(leases: &[Lease]) -> String {
    if leases.is_empty() {
        return info::list_section("Leases", &[]);
    }
    let mut leases: Vec<&Lease> = leases.iter().collect();
    // Numeric order (10.0.0.9 before 10.0.0.10); anything unparsable sorts first, as text.
    leases.sort_by_key(|lease| (lease.ipv4.parse::<Ipv4Addr>().ok(), lease.ipv4.clone()));
    let dash = |text: &str| if text.is_empty() { "-" } else { text }.to_string();
    let header = ["HOSTNAME", "MAC", "IPV4", "KIND", "EXPIRES"]
        .map(String::from)
        .to_vec();
    let rows = leases.iter().map(|lease| {
        vec![
            dash(&lease.hostname),
            dash(&lease.mac),
            dash(&lease.ipv4),
            dash(&lease.kind),
            expiry(lease),
        ]
    });
    let table: Vec<Vec<String>> = std::iter::once(header).chain(rows).collect();
    info::list_section("Leases", &info::aligned(&table))
}

/// One network in `network list --format json|yaml`; scripts rely on these field names.
#[derive(Debug, Serialize)]
pub struct NetworkRecord {
    name: String,
    ipv4_address: String,
    nat: bool,
    domain: String,
    state: String,
    default: bool,
    /// 0 when dnsmasq is not running.
    dnsmasq_pid: i64,
    used_by: Vec<String>,
    config: BTreeMap<String, String>,
    leases: Vec<LeaseRecord>,
}

#[derive(Debug, Serialize)]
pub struct LeaseRecord {
    hostname: String,
    mac: String,
    ipv4: String,
    /// "dynamic" or "static".
    kind: String,
    /// Null for a lease that does not expire.
    expires_at: Option<String>,
}

impl From<&Lease> for LeaseRecord {
    fn from(lease: &Lease) -> Self {
        Self {
            hostname: lease.hostname.clone(),
            mac: lease.mac.clone(),
            ipv4: lease.ipv4.clone(),
            kind: lease.kind.clone(),
            expires_at: format::rfc3339(lease.expires_at.as_ref()),
        }
    }
}

impl Listing for Network {
    type Record = NetworkRecord;
    const HEADER: &'static [&'static str] = &["NAME", "IPV4", "NAT", "DOMAIN", "USED BY", "STATE", "DEFAULT"];

    fn record(&self) -> NetworkRecord {
        NetworkRecord {
            name: self.name.clone(),
            ipv4_address: self.ipv4_address.clone(),
            nat: self.nat,
            domain: self.domain.clone(),
            state: self.state.clone(),
            default: self.is_default,
            dnsmasq_pid: self.dnsmasq_pid,
            used_by: self.used_by.clone(),
            config: self.config.clone().into_iter().collect(),
            leases: self.leases.iter().map(LeaseRecord::from).collect(),
        }
    }

    fn cells(&self, layout: Layout) -> Vec<String> {
        let or_none = |text: &str| {
            if text.is_empty() {
                layout.empty().to_string()
            } else {
                text.to_string()
            }
        };
        vec![
            self.name.clone(),
            or_none(&self.ipv4_address),
            yes_no(self.nat).to_string(),
            or_none(&self.domain),
            self.used_by.len().to_string(),
            or_none(&self.state),
            yes_no(self.is_default).to_string(),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sysc_proto::Timestamp;

    fn lease(hostname: &str, ipv4: &str, kind: &str, expires_at: Option<i64>) -> Lease {
        Lease {
            hostname: hostname.into(),
            mac: format!(
                "10:66:6a:00:00:{:02x}",
                ipv4.rsplit('.').next().unwrap().parse::<u8>().unwrap()
            ),
            ipv4: ipv4.into(),
            expires_at: expires_at.map(|seconds| Timestamp { seconds, nanos: 0 }),
            kind: kind.into(),
        }
    }

    fn sample_network() -> Network {
        Network {
            name: "sysc0".into(),
            ipv4_address: "10.1.2.1/24".into(),
            nat: true,
            domain: "sysc".into(),
            config: [
                ("ipv4.address".to_string(), "10.1.2.1/24".to_string()),
                ("ipv4.nat".to_string(), "true".to_string()),
                ("dns.domain".to_string(), "sysc".to_string()),
            ]
            .into(),
            used_by: vec!["web2".into(), "db1".into()],
            state: "up".into(),
            dnsmasq_pid: 812,
            leases: vec![
                lease("web2", "10.1.2.10", "dynamic", Some(1_714_568_400)),
                lease("db1", "10.1.2.9", "static", None),
            ],
            is_default: true,
        }
    }

    #[test]
    fn list_rows_count_users_and_mark_the_default() {
        let network = sample_network();
        assert_eq!(
            network.cells(Layout::Table),
            ["sysc0", "10.1.2.1/24", "yes", "sysc", "2", "up", "yes"]
        );
        let bare = Network {
            ipv4_address: String::new(),
            nat: false,
            domain: String::new(),
            used_by: Vec::new(),
            state: "down".into(),
            is_default: false,
            ..sample_network()
        };
        assert_eq!(bare.cells(Layout::Table), ["sysc0", "-", "no", "-", "0", "down", "no"]);
        let csv = format::render(&[bare], OutputFormat::Csv).unwrap();
        assert_eq!(
            csv,
            "NAME,IPV4,NAT,DOMAIN,USED BY,STATE,DEFAULT\nsysc0,,no,,0,down,no\n"
        );
    }

    #[test]
    fn list_json_carries_leases_and_config() {
        let json = serde_json::to_value(sample_network().record()).unwrap();
        assert_eq!(json["ipv4_address"], "10.1.2.1/24");
        assert_eq!(json["nat"], true);
        assert_eq!(json["default"], true);
        assert_eq!(json["dnsmasq_pid"], 812);
        assert_eq!(json["used_by"], serde_json::json!(["web2", "db1"]));
        assert_eq!(json["config"]["ipv4.nat"], "true");
        assert_eq!(json["leases"][0]["expires_at"], "2024-05-01T13:00:00Z");
        assert_eq!(json["leases"][1]["expires_at"], serde_json::Value::Null);
        assert_eq!(json["leases"][1]["kind"], "static");
    }

    #[test]
    fn show_lists_users_leases_in_address_order_and_config() {
        let text = render(&sample_network());
        let expires = format::local_time(Some(&Timestamp {
            seconds: 1_714_568_400,
            nanos: 0,
        }))
        .unwrap();
        assert_eq!(
            text,
            format!(
                "Name:        sysc0\n\
                 IPv4:        10.1.2.1/24\n\
                 NAT:         yes\n\
                 Domain:      sysc\n\
                 State:       up\n\
                 Default:     yes\n\
                 dnsmasq PID: 812\n\
                 Used by:\n  db1\n  web2\n\
                 Leases:\n\
                 \x20 HOSTNAME  MAC                IPV4       KIND     EXPIRES\n\
                 \x20 db1       10:66:6a:00:00:09  10.1.2.9   static   never\n\
                 \x20 web2      10:66:6a:00:00:0a  10.1.2.10  dynamic  {expires}\n\
                 Config:\n  dns.domain: sysc\n  ipv4.address: 10.1.2.1/24\n  ipv4.nat: true\n"
            )
        );
    }

    #[test]
    fn show_of_a_stopped_network_without_leases() {
        let network = Network {
            dnsmasq_pid: 0,
            state: "down".into(),
            leases: Vec::new(),
            used_by: Vec::new(),
            ..sample_network()
        };
        let text = render(&network);
        for expected in [
            "dnsmasq PID: not running\n",
            "Used by:\n  (none)\n",
            "Leases:\n  (none)\n",
        ] {
            assert!(text.contains(expected), "{expected:?} missing from\n{text}");
        }
    }

    mod against_a_daemon {
        use super::*;
        use crate::fake_daemon::{Call, FakeDaemon};

        #[tokio::test]
        async fn create_sends_the_config_as_given() {
            let daemon = FakeDaemon::start(Vec::new()).await;
            let config = vec![
                ("ipv4.address".to_string(), "10.20.30.1/24".to_string()),
                ("dns.domain".to_string(), "lab".to_string()),
            ];
            create(daemon.channel.clone(), "lab0".into(), config).await.unwrap();
            let calls = daemon.calls();
            let [Call::CreateNetwork(request)] = calls.as_slice() else {
                panic!("{calls:?}")
            };
            assert_eq!(request.name, "lab0");
            assert_eq!(
                request.config.clone().into_iter().collect::<BTreeMap<_, _>>(),
                BTreeMap::from([
                    ("dns.domain".to_string(), "lab".to_string()),
                    ("ipv4.address".to_string(), "10.20.30.1/24".to_string()),
                ])
            );

            let err = create(daemon.channel.clone(), "lab0".into(), Vec::new())
                .await
                .unwrap_err();
            assert_eq!(err.to_string(), "network lab0 already exists");
        }

        #[tokio::test]
        async fn delete_and_show_report_the_daemons_refusals() {
            let daemon = FakeDaemon::start(Vec::new()).await;
            daemon.add_network(sample_network());
            let err = delete(daemon.channel.clone(), "sysc0".into()).await.unwrap_err();
            assert_eq!(err.to_string(), "network sysc0 is in use by db1, web2");
            let err = show(daemon.channel.clone(), "nope".into()).await.unwrap_err();
            assert_eq!(err.to_string(), "network nope not found");

            daemon.add_network(Network {
                name: "lab0".into(),
                ..Default::default()
            });
            delete(daemon.channel.clone(), "lab0".into()).await.unwrap();
            assert_eq!(daemon.calls().last(), Some(&Call::DeleteNetwork("lab0".into())));
            assert_eq!(daemon.network_names(), ["sysc0"]);
        }
    }
}
