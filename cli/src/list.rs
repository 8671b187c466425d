//! `sysc list`: every container with its live state.

use std::collections::BTreeMap;

use anyhow::bail;
use serde::Serialize;
use sysc_proto::v1::containers_client::ContainersClient;
use sysc_proto::v1::{Container, ContainerState, ExitStatus, ListRequest, Paths, Usage};
use tonic::transport::Channel;

use crate::connect::rpc_error;
use crate::format::{self, Layout, Listing, OutputFormat};
use crate::list_filter::{self, Filter};

/// The table and CSV columns when `--columns` is not given: NAME STATE IPV4 PID IMAGE CREATED.
pub const DEFAULT_COLUMNS: &str = "ns4pfc";

pub async fn show(channel: Channel, filters: &[String], format: OutputFormat, columns: &Columns) -> anyhow::Result<()> {
    let filters = filters
        .iter()
        .map(|arg| Filter::parse(arg))
        .collect::<Result<Vec<_>, _>>()
        .map_err(anyhow::Error::msg)?;
    let keys: Vec<&str> = filters.iter().filter_map(Filter::config_key).collect();
    if let Some(key) = crate::config::first_unknown_key(channel.clone(), &keys).await? {
        bail!(list_filter::unknown_key(key));
    }
    let mut containers = fetch(channel).await?;
    containers.retain(|c| filters.iter().all(|filter| filter.matches(c)));
    let header: Vec<&str> = columns.0.iter().map(|column| column.header()).collect();
    let text = format::render_columns(&containers, format, &header, |container, layout| {
        columns.0.iter().map(|column| column.cell(container, layout)).collect()
    })?;
    format::print(&text)?;
    Ok(())
}

/// A column of `list`'s table and CSV, chosen by a letter as in `incus list --columns`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Column {
    Name,
    State,
    Ipv4,
    Pid,
    Image,
    Created,
    Memory,
    MemoryPeak,
    Cpu,
    Processes,
    Pool,
    Snapshots,
    Type,
}

impl Column {
    /// Every column, in the order `--help` and the error for an unknown letter list them.
    const ALL: [Column; 13] = [
        Column::Name,
        Column::State,
        Column::Ipv4,
        Column::Pid,
        Column::Image,
        Column::Created,
        Column::Memory,
        Column::MemoryPeak,
        Column::Cpu,
        Column::Processes,
        Column::Pool,
        Column::Snapshots,
        Column::Type,
    ];

    fn letter(self) -> char {
        match self {
            Column::Name => 'n',
            Column::State => 's',
            Column::Ipv4 => '4',
            Column::Pid => 'p',
            Column::Image => 'f',
            Column::Created => 'c',
            Column::Memory => 'm',
            Column::MemoryPeak => 'M',
            Column::Cpu => 'u',
            Column::Processes => 'N',
            Column::Pool => 'b',
            Column::Snapshots => 'S',
            Column::Type => 't',
        }
    }

    fn header(self) -> &'static str {
        match self {
            Column::Name => "NAME",
            Column::State => "STATE",
            Column::Ipv4 => "IPV4",
            Column::Pid => "PID",
            Column::Image => "IMAGE",
            Column::Created => "CREATED",
            Column::Memory => "MEMORY",
            Column::MemoryPeak => "MEMORY PEAK",
            Column::Cpu => "CPU",
            Column::Processes => "PROCESSES",
            Column::Pool => "STORAGE POOL",
            Column::Snapshots => "SNAPSHOTS",
            Column::Type => "TYPE",
        }
    }

    fn cell(self, c: &Container, layout: Layout) -> String {
        let none = || layout.empty().to_string();
        // Usage is unset when the container is not running: the cell is empty, not zero.
        let usage = |value: fn(&Usage) -> String| c.usage.as_ref().map(value).unwrap_or_else(none);
        match self {
            Column::Name => c.name.clone(),
            // The default table has no TYPE column, and a privileged container must stand out
            // in it; CSV keeps the bare state for scripts.
            Column::State if c.privileged && layout == Layout::Table => format!("{} {PRIVILEGED}", state_name(c.state)),
            Column::State => state_name(c.state).to_string(),
            Column::Ipv4 => layout.join(&labelled_ipv4(c)),
            Column::Pid if c.pid == 0 => none(),
            Column::Pid => c.pid.to_string(),
            Column::Image => c.image.clone(),
            Column::Created => format::local_time(c.created_at.as_ref()).unwrap_or_else(none),
            Column::Memory => usage(|u| format::human_size(u.memory_bytes)),
            Column::MemoryPeak => usage(|u| format::human_size(u.memory_peak_bytes)),
            Column::Cpu => usage(|u| format::cpu_seconds(u.cpu_nanoseconds)),
            Column::Processes => usage(|u| u.processes.to_string()),
            Column::Pool => c.pool.clone(),
            Column::Snapshots => c.snapshot_count.to_string(),
            Column::Type => container_type(c),
        }
    }

    /// "n (NAME), s (STATE), ...": what `--columns` accepts.
    pub fn legend() -> String {
        Self::ALL
            .iter()
            .map(|column| format!("{} ({})", column.letter(), column.header()))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The columns `--columns LETTERS` asked for, in the order given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Columns(pub Vec<Column>);

/// `--columns`: a letter per column; commas may separate them (`n,s,4`), as Incus allows.
pub fn parse_columns(letters: &str) -> Result<Columns, String> {
    let columns = letters
        .chars()
        .filter(|&letter| letter != ',')
        .map(|letter| {
            Column::ALL
                .into_iter()
                .find(|column| column.letter() == letter)
                .ok_or_else(|| format!("unknown column letter '{letter}' (valid letters: {})", Column::legend()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if columns.is_empty() {
        return Err(format!("no columns given (valid letters: {})", Column::legend()));
    }
    Ok(Columns(columns))
}

/// All containers, sorted by name so output is stable from one run to the next.
pub async fn fetch(channel: Channel) -> anyhow::Result<Vec<Container>> {
    let mut containers = ContainersClient::new(channel)
        .list(ListRequest {})
        .await
        .map_err(rpc_error)?
        .into_inner()
        .containers;
    containers.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(containers)
}

/// Incus's TYPE column, which marks an ephemeral instance the same way. Privileged is the
/// one kind of container worth telling apart: root in it is root on the host.
fn container_type(c: &Container) -> String {
    if c.privileged {
        format!("CONTAINER {PRIVILEGED}")
    } else {
        "CONTAINER".to_string()
    }
}

/// How the table marks a privileged container, in the style of Incus's "(EPHEMERAL)".
const PRIVILEGED: &str = "(PRIVILEGED)";

/// "RUNNING", "STOPPED", "ERROR": the enum's name without its prefix. A state added to the
/// API after this client was built shows as "UNKNOWN" rather than failing the whole list.
pub fn state_name(state: i32) -> &'static str {
    ContainerState::try_from(state)
        .map(|state| {
            let name = state.as_str_name();
            name.strip_prefix("CONTAINER_STATE_").unwrap_or(name)
        })
        .unwrap_or("UNKNOWN")
}

/// "10.20.30.5 (eth0)" for each of the container's addresses, as the table and `info`
/// show them.
pub fn labelled_ipv4(c: &Container) -> Vec<String> {
    c.ipv4_addresses
        .iter()
        .map(|a| format!("{} ({})", a.address, a.interface))
        .collect()
}

/// One container in `list --format json|yaml`; scripts rely on these field names.
#[derive(Debug, Serialize)]
pub struct ContainerRecord {
    name: String,
    state: &'static str,
    pid: i64,
    /// Bare addresses, for scripts to use as they are.
    ipv4: Vec<String>,
    ipv4_addresses: Vec<AddressRecord>,
    image: String,
    image_fingerprint: String,
    pool: String,
    snapshot_count: u32,
    created_at: Option<String>,
    started_at: Option<String>,
    privileged: bool,
    idmap_base: u32,
    idmap_size: u32,
    halt_signal: String,
    status_detail: String,
    config: BTreeMap<String, String>,
    last_exit: Option<ExitRecord>,
    paths: Option<PathsRecord>,
    /// Null when the container is not running.
    usage: Option<UsageRecord>,
}

#[derive(Debug, Serialize)]
pub struct UsageRecord {
    memory_bytes: u64,
    memory_peak_bytes: u64,
    cpu_nanoseconds: u64,
    processes: u64,
}

#[derive(Debug, Serialize)]
pub struct ExitRecord {
    code: Option<i32>,
    signal: Option<i32>,
    signal_name: Option<String>,
    at: Option<String>,
    description: String,
}

#[derive(Debug, Serialize)]
pub struct AddressRecord {
    interface: String,
    address: String,
    prefix_length: u32,
}

#[derive(Debug, Serialize)]
pub struct PathsRecord {
    directory: String,
    rootfs: String,
    backup_file: String,
    console_log: String,
}

impl From<&ExitStatus> for ExitRecord {
    fn from(exit: &ExitStatus) -> Self {
        Self {
            code: exit.code,
            signal: exit.signal,
            signal_name: Some(exit.signal_name.clone()).filter(|name| !name.is_empty()),
            at: format::rfc3339(exit.at.as_ref()),
            description: exit.description.clone(),
        }
    }
}

impl From<&Usage> for UsageRecord {
    fn from(usage: &Usage) -> Self {
        Self {
            memory_bytes: usage.memory_bytes,
            memory_peak_bytes: usage.memory_peak_bytes,
            cpu_nanoseconds: usage.cpu_nanoseconds,
            processes: usage.processes,
        }
    }
}

impl From<&Paths> for PathsRecord {
    fn from(paths: &Paths) -> Self {
        Self {
            directory: paths.directory.clone(),
            rootfs: paths.rootfs.clone(),
            backup_file: paths.backup_file.clone(),
            console_log: paths.console_log.clone(),
        }
    }
}

impl Listing for Container {
    type Record = ContainerRecord;
    const HEADER: &'static [&'static str] = &["NAME", "STATE", "IPV4", "PID", "IMAGE", "CREATED"];

    fn record(&self) -> ContainerRecord {
        ContainerRecord {
            name: self.name.clone(),
            state: state_name(self.state),
            pid: self.pid,
            ipv4: self.ipv4.clone(),
            ipv4_addresses: self
                .ipv4_addresses
                .iter()
                .map(|a| AddressRecord {
                    interface: a.interface.clone(),
                    address: a.address.clone(),
                    prefix_length: a.prefix_length,
                })
                .collect(),
            image: self.image.clone(),
            image_fingerprint: self.image_fingerprint.clone(),
            pool: self.pool.clone(),
            snapshot_count: self.snapshot_count,
            created_at: format::rfc3339(self.created_at.as_ref()),
            started_at: format::rfc3339(self.started_at.as_ref()),
            privileged: self.privileged,
            idmap_base: self.idmap_base,
            idmap_size: self.idmap_size,
            halt_signal: self.halt_signal.clone(),
            status_detail: self.status_detail.clone(),
            config: self.config.clone().into_iter().collect(),
            last_exit: self.last_exit.as_ref().map(ExitRecord::from),
            paths: self.paths.as_ref().map(PathsRecord::from),
            usage: self.usage.as_ref().map(UsageRecord::from),
        }
    }

    /// The default columns; `list --columns` picks others through `Column`.
    fn cells(&self, layout: Layout) -> Vec<String> {
        let columns = parse_columns(DEFAULT_COLUMNS).expect("the default columns are valid");
        columns.0.iter().map(|column| column.cell(self, layout)).collect()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use sysc_proto::Timestamp;
    use sysc_proto::v1::InterfaceAddress;

    fn address(interface: &str, address: &str, prefix_length: u32) -> InterfaceAddress {
        InterfaceAddress {
            interface: interface.into(),
            address: address.into(),
            prefix_length,
        }
    }

    pub fn sample_container() -> Container {
        Container {
            name: "web1".into(),
            state: ContainerState::Running as i32,
            pid: 4242,
            ipv4: vec!["10.0.3.15".into(), "192.168.1.7".into()],
            ipv4_addresses: vec![address("eth0", "10.0.3.15", 24), address("eth1", "192.168.1.7", 16)],
            image: "debian/bookworm (3f2a9c1d8e7b)".into(),
            image_fingerprint: "3f2a9c1d8e7b00112233".into(),
            created_at: Some(Timestamp {
                seconds: 1_714_564_800,
                nanos: 0,
            }),
            started_at: Some(Timestamp {
                seconds: 1_714_568_400,
                nanos: 500_000_000,
            }),
            config: [
                ("volatile.idmap.base".to_string(), "1000000".to_string()),
                ("boot.autostart".to_string(), "true".to_string()),
            ]
            .into(),
            privileged: false,
            idmap_base: 1_000_000,
            idmap_size: 65_536,
            last_exit: Some(ExitStatus {
                code: None,
                signal: Some(2),
                signal_name: "SIGINT".into(),
                at: Some(Timestamp {
                    seconds: 1_714_566_000,
                    nanos: 0,
                }),
                description: "halted (SIGINT)".into(),
            }),
            paths: Some(Paths {
                directory: "/var/lib/sysc/containers/web1".into(),
                rootfs: "/var/lib/sysc/containers/web1/rootfs".into(),
                backup_file: "/var/lib/sysc/containers/web1/backup.yaml".into(),
                console_log: "/var/lib/sysc/containers/web1/console.log".into(),
            }),
            halt_signal: "SIGRTMIN+3".into(),
            status_detail: String::new(),
            usage: Some(Usage {
                memory_bytes: 47_395_635,
                memory_peak_bytes: 63_019_212,
                cpu_nanoseconds: 12_437_000_000,
                processes: 7,
            }),
            pool: "default".into(),
            snapshot_count: 2,
            devices: crate::device::tests::sample_devices(),
        }
    }

    #[test]
    fn states_are_named_without_prefix() {
        assert_eq!(state_name(ContainerState::Running as i32), "RUNNING");
        assert_eq!(state_name(ContainerState::Stopped as i32), "STOPPED");
        assert_eq!(state_name(ContainerState::Error as i32), "ERROR");
        assert_eq!(state_name(ContainerState::Paused as i32), "PAUSED");
        assert_eq!(state_name(ContainerState::Unspecified as i32), "UNSPECIFIED");
        assert_eq!(state_name(99), "UNKNOWN");
    }

    #[test]
    fn json_record_has_the_documented_fields() {
        let json = serde_json::to_value(sample_container().record()).unwrap();
        assert_eq!(json["name"], "web1");
        assert_eq!(json["state"], "RUNNING");
        assert_eq!(json["pid"], 4242);
        assert_eq!(json["ipv4"], serde_json::json!(["10.0.3.15", "192.168.1.7"]));
        assert_eq!(
            json["ipv4_addresses"][1],
            serde_json::json!({"interface": "eth1", "address": "192.168.1.7", "prefix_length": 16})
        );
        assert_eq!(json["image_fingerprint"], "3f2a9c1d8e7b00112233");
        assert_eq!(json["pool"], "default");
        assert_eq!(json["snapshot_count"], 2);
        assert_eq!(json["created_at"], "2024-05-01T12:00:00Z");
        assert_eq!(json["started_at"], "2024-05-01T13:00:00.500Z");
        assert_eq!(json["privileged"], false);
        assert_eq!(json["config"]["boot.autostart"], "true");
        assert_eq!(json["last_exit"]["signal"], 2);
        assert_eq!(json["last_exit"]["code"], serde_json::Value::Null);
        assert_eq!(json["last_exit"]["description"], "halted (SIGINT)");
        assert_eq!(json["paths"]["rootfs"], "/var/lib/sysc/containers/web1/rootfs");
        assert_eq!(
            json["usage"],
            serde_json::json!({
                "memory_bytes": 47_395_635,
                "memory_peak_bytes": 63_019_212,
                "cpu_nanoseconds": 12_437_000_000_u64,
                "processes": 7,
            })
        );
    }

    #[test]
    fn json_fields_keep_their_order_and_usage_comes_last() {
        let json = serde_json::to_string(&sample_container().record()).unwrap();
        let fields = [
            "name",
            "state",
            "pid",
            "ipv4",
            "image",
            "image_fingerprint",
            "pool",
            "snapshot_count",
            "created_at",
            "started_at",
            "privileged",
            "idmap_base",
            "idmap_size",
            "halt_signal",
            "status_detail",
            "config",
            "last_exit",
            "paths",
            "usage",
        ];
        let positions: Vec<usize> = fields
            .iter()
            .map(|field| {
                json.find(&format!("\"{field}\":"))
                    .unwrap_or_else(|| panic!("{field} missing"))
            })
            .collect();
        assert!(positions.is_sorted(), "{json}");
    }

    #[test]
    fn stopped_container_has_nulls_where_nothing_happened() {
        let mut container = sample_container();
        container.state = ContainerState::Stopped as i32;
        container.pid = 0;
        container.started_at = None;
        container.last_exit = None;
        container.usage = None;
        let json = serde_json::to_value(container.record()).unwrap();
        assert_eq!(json["pid"], 0);
        assert_eq!(json["started_at"], serde_json::Value::Null);
        assert_eq!(json["last_exit"], serde_json::Value::Null);
        assert_eq!(json["usage"], serde_json::Value::Null);

        container.ipv4.clear();
        container.ipv4_addresses.clear();
        assert_eq!(container.cells(Layout::Table)[2..4], ["-", "-"]);
        assert_eq!(container.cells(Layout::Csv)[2..4], ["", ""]);
    }

    #[test]
    fn table_and_csv_rows_follow_the_header() {
        let container = sample_container();
        let table = container.cells(Layout::Table);
        assert_eq!(table.len(), Container::HEADER.len());
        assert_eq!(
            table[..4],
            ["web1", "RUNNING", "10.0.3.15 (eth0)\n192.168.1.7 (eth1)", "4242"]
        );
        assert_eq!(table[4], "debian/bookworm (3f2a9c1d8e7b)");
        assert_eq!(table[5].len(), "2024-05-01 12:00:00".len());

        let csv = format::render(&[container], OutputFormat::Csv).unwrap();
        let mut lines = csv.lines();
        assert_eq!(lines.next(), Some("NAME,STATE,IPV4,PID,IMAGE,CREATED"));
        let row = lines.next().unwrap();
        assert!(
            row.starts_with("web1,RUNNING,10.0.3.15 (eth0) 192.168.1.7 (eth1),4242,debian/bookworm (3f2a9c1d8e7b),"),
            "{row}"
        );
        assert_eq!(lines.next(), None);
    }

    fn columns(letters: &str) -> Columns {
        parse_columns(letters).unwrap()
    }

    #[test]
    fn default_columns_are_the_historic_ones() {
        let header: Vec<&str> = columns(DEFAULT_COLUMNS).0.iter().map(|c| c.header()).collect();
        assert_eq!(header, Container::HEADER);
    }

    #[test]
    fn column_letters_follow_incus() {
        use Column::*;
        assert_eq!(
            columns("ns4pfcmMuNbSt").0,
            [
                Name, State, Ipv4, Pid, Image, Created, Memory, MemoryPeak, Cpu, Processes, Pool, Snapshots, Type
            ]
        );
        assert_eq!(
            columns("nbS")
                .0
                .iter()
                .map(|c| c.cell(&sample_container(), Layout::Csv))
                .collect::<Vec<_>>(),
            ["web1", "default", "2"]
        );
        assert_eq!(columns("n,s").0, [Name, State]);
        // Asked order, repeats included.
        assert_eq!(columns("snn").0, [State, Name, Name]);
    }

    #[test]
    fn unknown_column_letter_names_it_and_the_valid_ones() {
        let err = parse_columns("nsx").unwrap_err();
        assert!(err.starts_with("unknown column letter 'x'"), "{err}");
        for valid in [
            "n (NAME)",
            "4 (IPV4)",
            "M (MEMORY PEAK)",
            "u (CPU)",
            "N (PROCESSES)",
            "b (STORAGE POOL)",
            "S (SNAPSHOTS)",
            "t (TYPE)",
        ] {
            assert!(err.contains(valid), "{valid} missing from {err}");
        }
        assert!(parse_columns("").unwrap_err().starts_with("no columns given"));
        assert!(parse_columns(",").is_err());
    }

    #[test]
    fn usage_columns_are_human_and_empty_when_not_running() {
        let mut container = sample_container();
        let cells = |container: &Container, layout| {
            columns("nmMuN")
                .0
                .iter()
                .map(|column| column.cell(container, layout))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            cells(&container, Layout::Table),
            ["web1", "45.2 MiB", "60.1 MiB", "12.4s", "7"]
        );
        container.usage = None;
        assert_eq!(cells(&container, Layout::Table), ["web1", "-", "-", "-", "-"]);
        assert_eq!(cells(&container, Layout::Csv), ["web1", "", "", "", ""]);
    }

    #[test]
    fn chosen_columns_apply_to_table_and_csv_only() {
        let container = sample_container();
        let render = |format| {
            let columns = columns("nuN");
            let header: Vec<&str> = columns.0.iter().map(|c| c.header()).collect();
            format::render_columns(std::slice::from_ref(&container), format, &header, |c, layout| {
                columns.0.iter().map(|column| column.cell(c, layout)).collect()
            })
            .unwrap()
        };
        assert_eq!(render(OutputFormat::Csv), "NAME,CPU,PROCESSES\nweb1,12.4s,7\n");
        let table = render(OutputFormat::Table);
        assert!(table.contains("PROCESSES") && !table.contains("IPV4"), "{table}");
        let json: serde_json::Value = serde_json::from_str(&render(OutputFormat::Json)).unwrap();
        assert_eq!(json[0]["ipv4"][0], "10.0.3.15");
        assert_eq!(json[0]["usage"]["processes"], 7);
    }

    #[test]
    fn yaml_carries_the_same_fields_as_json() {
        let yaml = format::render(&[sample_container()], OutputFormat::Yaml).unwrap();
        let parsed: serde_yaml::Value = serde_yaml::from_str(&yaml).unwrap();
        assert_eq!(parsed[0]["state"], "RUNNING");
        assert_eq!(parsed[0]["idmap_size"], 65_536);
    }

    #[test]
    fn privileged_containers_are_flagged_in_every_format() {
        let mut container = sample_container();
        container.privileged = true;
        assert_eq!(container.cells(Layout::Table)[1], "RUNNING (PRIVILEGED)");
        assert_eq!(container.cells(Layout::Csv)[1], "RUNNING");
        let types = |container: &Container, layout| columns("t").0[0].cell(container, layout);
        assert_eq!(types(&container, Layout::Table), "CONTAINER (PRIVILEGED)");
        assert_eq!(types(&container, Layout::Csv), "CONTAINER (PRIVILEGED)");
        assert_eq!(types(&sample_container(), Layout::Csv), "CONTAINER");
        let json = serde_json::to_value(container.record()).unwrap();
        assert_eq!(json["privileged"], true);
        let yaml = format::render(&[container], OutputFormat::Yaml).unwrap();
        let parsed: serde_yaml::Value = serde_yaml::from_str(&yaml).unwrap();
        assert_eq!(parsed[0]["privileged"], true);
    }

    #[test]
    fn table_shows_header_and_values() {
        let table = format::render(&[sample_container()], OutputFormat::Table).unwrap();
        for text in ["NAME", "CREATED", "web1", "RUNNING", "192.168.1.7 (eth1)"] {
            assert!(table.contains(text), "{text} missing from\n{table}");
        }
    }
}
