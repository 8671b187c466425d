//! syscd: the sysc daemon.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use syscd::cgroup::CgroupConfig;
use syscd::network::DefaultNetwork;
use syscd::server::{self, StorageOptions};
use syscd::settings::Settings;
use syscd::storage::DriverChoice;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum CgroupDriver {
    /// Detect the host's layout
    Auto,
    /// Pure cgroup v2 (on a hybrid host: its controller-less cgroup2, without limits)
    V2,
    /// v1 controllers plus a controller-less cgroup2
    Hybrid,
}

/// The sysc daemon: runs system containers and serves the sysc API.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Directory for all persistent state
    #[arg(long, default_value = "/var/lib/sysc", env = "SYSC_ROOT")]
    root: PathBuf,
    /// Directory for monitor sockets (should be on a tmpfs)
    #[arg(long, default_value = "/run/sysc")]
    run_dir: PathBuf,
    /// API socket [default: ROOT/unix.socket]
    #[arg(long)]
    socket: Option<PathBuf>,
    /// Directory under each cgroup hierarchy that holds the containers' cgroups
    #[arg(long, default_value = "sysc")]
    cgroup_parent: String,
    #[arg(long, value_enum, default_value = "auto")]
    cgroup_driver: CgroupDriver,
    /// Where the cgroup hierarchies are mounted
    #[arg(long, default_value = "/sys/fs/cgroup")]
    cgroup_root: PathBuf,
    /// Directory of template scripts [default: next to the binary's source tree, else /usr/share/sysc/templates]
    #[arg(long, env = "SYSC_TEMPLATES")]
    templates: Option<PathBuf>,
    /// Cache directory handed to templates (debootstrap output and the like)
    #[arg(long, default_value = "/var/cache/sysc")]
    template_cache: PathBuf,
    /// First host uid/gid of the first container's private range
    #[arg(long, default_value_t = 1_000_000)]
    idmap_base: u32,
    /// Driver of the default storage pool, when it is first created
    #[arg(long, value_enum, default_value = "auto")]
    storage_driver: DriverChoice,
    /// Size of the default pool's loop file (btrfs), in GiB, when it is first created
    #[arg(long, default_value_t = 20)]
    storage_size_gib: u64,
    /// Name of the default network's bridge, made on the first start; `none` for no
    /// default network
    #[arg(long, default_value = "sysc0")]
    network: String,
    /// The default network's gateway with its prefix (e.g. 10.20.30.1/24), or `auto`:
    /// a free /24 in 10.0.0.0/8 that clashes with no route on the host
    #[arg(long, default_value = "auto")]
    network_address: String,
    /// Listen for remote clients with TLS on this address (:8443, 10.0.0.2:8443), as
    /// `sysc config set core.https_address` does; recorded as that key
    #[arg(long, value_name = "ADDRESS")]
    https_address: Option<String>,
}

fn templates_dir(given: Option<PathBuf>, exe: &Path) -> PathBuf {
    if let Some(dir) = given {
        return dir;
    }
    // target/{debug,release}/syscd → the source tree's templates/
    let from_source_tree = exe
        .parent()
        .and_then(Path::parent)
        .and_then(Path::parent)
        .map(|p| p.join("templates"));
    from_source_tree
        .filter(|dir| dir.is_dir())
        .unwrap_or_else(|| PathBuf::from("/usr/share/sysc/templates"))
}

fn cgroup_config(args: &Args) -> anyhow::Result<CgroupConfig> {
    let detected = CgroupConfig::detect(&args.cgroup_root, &args.cgroup_parent)?;
    Ok(match args.cgroup_driver {
        CgroupDriver::Auto => detected,
        CgroupDriver::V2 => CgroupConfig::v2(detected.unified, &args.cgroup_parent),
        CgroupDriver::Hybrid => {
            if detected.layout != syscd::cgroup::Layout::Hybrid {
                bail!(
                    "--cgroup-driver hybrid: {} has no v1 controllers",
                    args.cgroup_root.display()
                );
            }
            detected
        }
    })
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .finish()
        // The log's lines also go to `sysc monitor --type logging`.
        .with(syscd::events::LogLayer)
        .init();
    let args = Args::parse();
    if !nix::unistd::geteuid().is_root() {
        bail!("syscd must run as root");
    }
    syscd::descriptors::close_on_exec_above_stderr().context("mark inherited descriptors close-on-exec")?;
    let exe = std::env::current_exe().context("find syscd's own path")?;
    let helper = |name: &str| {
        let path = exe.with_file_name(name);
        if path.is_file() {
            Ok(path)
        } else {
            Err(anyhow::anyhow!("{name} not found next to syscd ({})", path.display()))
        }
    };
    let monitor_exe = helper("sysc-monitor")?;
    let exec_exe = helper("sysc-exec")?;
    let file_exe = helper("sysc-file")?;
    let proxy_exe = helper("sysc-proxy")?;
    let settings = Settings {
        socket: args.socket.clone().unwrap_or_else(|| args.root.join("unix.socket")),
        cgroup: cgroup_config(&args)?,
        templates_dir: templates_dir(args.templates.clone(), &exe),
        template_cache: args.template_cache.clone(),
        idmap_base: args.idmap_base,
        monitor_exe,
        exec_exe,
        file_exe,
        proxy_exe,
        root: args.root.clone(),
        run_dir: args.run_dir.clone(),
        https_address: args.https_address.clone(),
    };
    tracing::info!(
        cgroups = settings.cgroup.layout.as_str(),
        templates = %settings.templates_dir.display(),
        "starting"
    );
    let storage = StorageOptions {
        driver: args.storage_driver,
        size_bytes: args.storage_size_gib << 30,
    };
    let runtime = tokio::runtime::Runtime::new().context("start the async runtime")?;
    let default_network = (args.network != "none").then(|| DefaultNetwork {
        name: args.network.clone(),
        address: args.network_address.clone(),
    });
    let served = runtime.block_on(server::run(settings, storage, default_network, shutdown_signal()));
    // A blocking task a cut-off call left (a copy, a helper's pipe) must not keep the
    // process alive.
    runtime.shutdown_timeout(Duration::from_secs(1));
    served?;
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("install a SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("install a SIGINT handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
