//! `sysc`, the command line client of syscd.
//!
//! Results go to stdout and progress and errors to stderr, so scripts can parse stdout.

mod backup;
mod config;
mod connect;
mod console;
mod copy;
mod device;
mod editor;
mod exec;
#[cfg(test)]
mod fake_daemon;
mod file;
mod format;
mod images;
mod info;
mod interrupt;
mod landing;
mod lifecycle;
mod list;
mod list_filter;
mod monitor;
mod network;
mod operation;
mod partial;
mod progress;
mod remote;
mod server_config;
mod snapshot;
mod storage;
mod terminal;
mod trust;
mod version;

use std::io;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::{ArgGroup, Args, CommandFactory, Parser, Subcommand};

use crate::backup::{Compression, ExportOptions, ImportOptions};
use crate::config::KeysFormat;
use crate::copy::{CopyOptions, MoveOptions};
use crate::exec::{ExecOptions, TtyMode};
use crate::format::OutputFormat;
use crate::lifecycle::FailuresReported;
use crate::remote::config::{ClientConfig, ConfigDir};
use crate::server_config::server_subject;

#[derive(Parser)]
#[command(
    name = "sysc",
    version,
    about = "Manage system containers run by syscd",
    after_help = "A container NAME may be written REMOTE:NAME to act on another machine's daemon \
                  (see `sysc remote`); without it, the default remote is used."
)]
struct Cli {
    /// The local daemon's socket (the remote named `local`)
    #[arg(
        long,
        global = true,
        env = "SYSC_SOCKET",
        value_name = "PATH",
        default_value = "/var/lib/sysc/unix.socket"
    )]
    socket: PathBuf,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create a container from a template
    #[command(visible_alias = "init")]
    Create(CreateArgs),
    /// Create a container from a template and start it
    Launch(CreateArgs),
    /// Start stopped containers
    Start(TargetArgs),
    /// Stop running containers
    Stop {
        #[command(flatten)]
        targets: TargetArgs,
        #[command(flatten)]
        shutdown: ShutdownArgs,
    },
    /// Stop running containers and start them again
    Restart {
        #[command(flatten)]
        targets: TargetArgs,
        #[command(flatten)]
        shutdown: ShutdownArgs,
    },
    /// Pause running containers: freeze every one of their processes
    Pause(TargetArgs),
    /// Resume paused containers
    Resume(TargetArgs),
    /// Delete containers and their root filesystems
    #[command(visible_alias = "rm")]
    Delete {
        /// Containers to delete
        #[arg(value_name = "NAME", required = true)]
        names: Vec<String>,
        /// Kill a running container first instead of refusing
        #[arg(short, long)]
        force: bool,
    },
    /// Rename a stopped container
    Rename {
        /// Current name
        #[arg(value_name = "OLD")]
        name: String,
        /// New name
        #[arg(value_name = "NEW")]
        new_name: String,
    },
    /// Make a new container from an existing one or from one of its snapshots
    ///
    /// The copy gets the source's config (minus the daemon's volatile.* keys), a new id
    /// range, hostname and machine-id; on btrfs it is a copy-on-write clone. A running
    /// source keeps running: it is frozen for the instant the clone takes. The source's
    /// snapshots come along unless --instance-only (or the source is a snapshot).
    ///
    /// Examples:
    ///   sysc copy web1 web2
    ///   sysc copy web1/before-upgrade web1-old --instance-only
    ///   sysc copy web1 web3 --storage fast -c limits.memory=1GiB
    ///   sysc copy host1:web1 host2:        (to another remote, as web1)
    ///
    /// Between remotes the container is streamed from one daemon to the other through
    /// this client (an export relayed into an import, with a progress bar on a terminal);
    /// the copy gets the target's MACs and id range and a new machine-id. A snapshot
    /// cannot be copied to another remote.
    #[command(visible_alias = "cp", verbatim_doc_comment)]
    Copy(CopyArgs),
    /// Move a container to another remote, or rename it
    ///
    /// To another remote: a running container is stopped cleanly, streamed to the target
    /// with its snapshots (with --instance-only, without: they are deleted with the source),
    /// started there, and deleted from the source. If anything fails before that delete,
    /// the source is left as it was (running again if it was) and nothing is left on the
    /// target.
    /// Within one remote it is a rename; a running container is stopped for it and started
    /// again after.
    ///
    /// Examples:
    ///   sysc move web1 host2:
    ///   sysc move host1:web1 host2:web9
    ///   sysc move web1 web2
    #[command(visible_alias = "mv", verbatim_doc_comment)]
    Move(MoveArgs),
    /// List containers
    #[command(visible_alias = "ls")]
    List(ListArgs),
    /// Show one container in detail, or (without one, as in Incus) the daemon and its host
    #[command(group(ArgGroup::new("subject").args(["name", "host"])))]
    Info {
        /// Container to show; without it, or with REMOTE: alone, the daemon and its host
        #[arg(value_name = "[REMOTE:]NAME")]
        name: Option<String>,
        /// Show the daemon and its host instead: version, kernel, cgroups, storage, CPUs, memory
        #[arg(long)]
        host: bool,
    },
    /// Show and change a container's configuration; list the config keys
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Run a command inside a running container
    ///
    /// The command runs in all of the container's namespaces and cgroups, as root unless
    /// --user says otherwise. Its stdin, stdout and stderr are ours, and its exit status
    /// becomes ours (128 + N when signal N killed it).
    ///
    /// It gets a terminal when our stdin and stdout both are terminals, or with --tty; its
    /// stdout and stderr then come back together, and our terminal is in raw mode while it
    /// runs, so Ctrl-C and the like reach the command.
    ///
    /// Examples:
    ///   sysc exec web1 -- ls -l /etc
    ///   sysc exec web1 --env LANG=C --cwd /srv -- make
    ///   tar -c src | sysc exec web1 -- tar -x -C /srv
    #[command(verbatim_doc_comment)]
    Exec(ExecArgs),
    /// Open a login shell inside a running container
    ///
    /// Runs `su -l` as root, with a terminal even when ours is not one. The exit status
    /// is the shell's.
    #[command(verbatim_doc_comment)]
    Shell {
        /// Container to open the shell in
        #[arg(value_name = "NAME")]
        name: String,
    },
    /// Attach to a container's console, or show what it printed
    ///
    /// The console is the init's /dev/console: boot messages, then usually a login
    /// prompt. Press Ctrl+a q to detach (Ctrl+a Ctrl+a sends one Ctrl+a); the container
    /// keeps running. The session also ends when the container stops.
    #[command(verbatim_doc_comment)]
    Console {
        /// Container whose console to attach to
        #[arg(value_name = "NAME")]
        name: String,
        /// Print what the console showed so far (its last 2 MiB at most) instead of attaching
        #[arg(long)]
        show_log: bool,
    },
    /// Push, pull, edit, list, make and delete files inside a container
    ///
    /// Works on running containers (paths as the container sees them, including what is
    /// mounted inside it) and stopped ones. Paths are resolved inside the container's root:
    /// no symlink or .. in the container leads outside it.
    #[command(verbatim_doc_comment)]
    File {
        #[command(subcommand)]
        command: file::FileCommand,
    },
    /// Take, list, restore and delete snapshots of containers
    ///
    /// A snapshot is the container's root filesystem and config at one moment. Wherever a
    /// snapshot is named, NAME SNAP and NAME/SNAP both work.
    #[command(verbatim_doc_comment)]
    Snapshot {
        #[command(subcommand)]
        command: SnapshotCommand,
    },
    /// Write a container, with its snapshots, to a tarball (a backup)
    ///
    /// FILE appears only once the archive is complete and on disk: it is written under a
    /// temporary name beside it (.FILE.XXXXXX.partial), synced, then renamed. On any
    /// failure nothing is left and the exit status is 1. A running container keeps
    /// running: it is exported from a snapshot taken for the purpose. A progress bar
    /// shows on stderr when that is a terminal; otherwise nothing is printed, so a cron
    /// job mails only its failures.
    ///
    /// Examples:
    ///   sysc export web1 /backups/web1.tar.zst
    ///   sysc export web1 - --instance-only | ssh backup-host 'cat > web1.tar.zst'
    #[command(verbatim_doc_comment)]
    Export(ExportArgs),
    /// Create a container from a tarball written by `sysc export`
    ///
    /// The archive is checked as it is read; a corrupt or truncated one is refused and
    /// nothing is created.
    ///
    /// Examples:
    ///   sysc import /backups/web1.tar.zst
    ///   ssh backup-host 'cat web1.tar.zst' | sysc import - web1-restored --storage fast
    #[command(verbatim_doc_comment)]
    Import(ImportArgs),
    /// Templates, the scripts that build root filesystems
    Template {
        #[command(subcommand)]
        command: TemplateCommand,
    },
    /// Images cached from templates
    Image {
        #[command(subcommand)]
        command: ImageCommand,
    },
    /// Storage pools, where images, containers and snapshots live
    Storage {
        #[command(subcommand)]
        command: StorageCommand,
    },
    /// Managed networks: bridges with NAT, DHCP and DNS for the containers' nics
    Network {
        #[command(subcommand)]
        command: NetworkCommand,
    },
    /// Other machines' daemons, reached over TLS: add, list, switch the default, remove
    ///
    /// Wherever a container (or a network, pool, image...) is named, REMOTE:NAME names it on
    /// that remote, and a bare REMOTE: names the remote itself (`sysc list host1:`). Names
    /// without a prefix are on the default remote, `local` (this machine) unless switched.
    #[command(verbatim_doc_comment)]
    Remote {
        #[command(subcommand)]
        command: remote::RemoteCommand,
    },
    /// Show the client's and the daemon's versions
    Version {
        /// The daemon to ask [default: the default remote]
        #[arg(value_name = "REMOTE:")]
        remote: Option<String>,
    },
    /// Show the daemon's events as they happen, until Ctrl-C
    ///
    /// lifecycle: containers created, started, stopped, deleted, renamed, updated, copied,
    /// exported, imported; snapshots created, deleted, renamed, restored. operation: long
    /// operations (create, export, import, copy) beginning, progressing and ending.
    /// logging: the daemon's log, info and above.
    ///
    /// Examples:
    ///   sysc monitor
    ///   sysc monitor host1: --type lifecycle --format json
    #[command(verbatim_doc_comment)]
    Monitor(monitor::MonitorArgs),
    /// The daemon's long operations (create, export, import, copy), whoever began them
    Operation {
        #[command(subcommand)]
        command: operation::OperationCommand,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Set config keys of a container or of the server
    ///
    /// Either one KEY and its VALUE, or any number of KEY=VALUE (when the first argument
    /// holds a '=', every one must). All keys are set in one request: if one is refused,
    /// none is set. Limits apply to a running container at once; keys that are not live
    /// take effect at its next start. `sysc config keys` lists the keys.
    ///
    /// Without a container name the keys are the server's (they all hold a '.', which no
    /// container name does): core.https_address is where it listens for remote clients
    /// over TLS (":8443" for every address), unset for nowhere.
    ///
    /// Examples:
    ///   sysc config set web1 boot.autostart true
    ///   sysc config set host1:web1 environment.LANG=C.UTF-8 environment.TZ=UTC
    ///   sysc config set web1 environment.OPTS -- -v    (a value starting with '-')
    ///   sysc config set core.https_address :8443
    ///   sysc config set host1: core.https_address 10.0.0.2:8443
    #[command(
        verbatim_doc_comment,
        override_usage = "sysc config set [OPTIONS] <[REMOTE:]NAME> <KEY> <VALUE>\n       \
                          sysc config set [OPTIONS] <[REMOTE:]NAME> <KEY=VALUE>...\n       \
                          sysc config set [OPTIONS] [REMOTE:] <KEY> <VALUE>"
    )]
    Set {
        /// Container to configure, or REMOTE: (or the server key itself) for the server
        #[arg(value_name = "NAME")]
        name: String,
        /// KEY VALUE, or KEY=VALUE...
        #[arg(value_name = "KEY=VALUE", required = true)]
        args: Vec<String>,
    },
    /// Unset config keys of a container or of the server: they go back to their defaults
    #[command(override_usage = "sysc config unset [OPTIONS] <[REMOTE:]NAME> <KEY>...\n       \
                                sysc config unset [OPTIONS] [REMOTE:] <KEY>...")]
    Unset {
        /// Container to configure, or REMOTE: (or the first server key) for the server
        #[arg(value_name = "NAME")]
        name: String,
        /// Keys to unset
        #[arg(value_name = "KEY")]
        keys: Vec<String>,
    },
    /// Print the value of a config key of a container or of the server (an empty line when
    /// it is not set)
    #[command(override_usage = "sysc config get [OPTIONS] <[REMOTE:]NAME> <KEY>\n       \
                                sysc config get [OPTIONS] [REMOTE:] <KEY>")]
    Get {
        /// Container to look at, or REMOTE: (or the server key itself) for the server
        #[arg(value_name = "NAME")]
        name: String,
        /// Key to print
        #[arg(value_name = "KEY")]
        key: Option<String>,
    },
    /// Print a container's configuration as YAML, volatile.* keys included; without a
    /// container, the server's keys and certificate fingerprint
    Show {
        /// Container to show, or REMOTE: for that server [default: the default remote's server]
        #[arg(value_name = "[REMOTE:]NAME")]
        name: Option<String>,
    },
    /// Edit a container's configuration as YAML in $VISUAL or $EDITOR (default: vi)
    ///
    /// Saving sets every key under `config:` and unsets the others; volatile.* keys are the
    /// daemon's and stay as they are. Nothing is sent when nothing changed. If the YAML does
    /// not parse or the daemon refuses it, the editor opens again on what you wrote (press
    /// Enter) unless you abort (Ctrl+C); without a terminal on stdin, the error ends the
    /// command with exit status 1.
    #[command(verbatim_doc_comment)]
    Edit {
        /// Container to configure
        #[arg(value_name = "NAME")]
        name: String,
    },
    /// Add, change, remove and show a container's devices: nics and proxies
    Device {
        #[command(subcommand)]
        command: DeviceCommand,
    },
    /// List the config keys a container may hold
    Keys {
        /// The daemon to ask [default: the default remote]
        #[arg(value_name = "REMOTE:")]
        remote: Option<String>,
        /// Output format; markdown is a GitHub table, as in the README
        #[arg(short, long, value_enum, default_value_t = KeysFormat::Table)]
        format: KeysFormat,
    },
    /// Which clients the server trusts over TLS, and tokens for new ones to enrol with
    Trust {
        #[command(subcommand)]
        command: trust::TrustCommand,
    },
}

#[derive(Subcommand)]
enum DeviceCommand {
    /// Add a device to a container
    ///
    /// nic: an interface on a managed network; network=NAME (required), ipv4.address=a static
    /// address (else one from DHCP), name=the interface's name inside (default: DEVICE). It
    /// appears at the container's next start.
    /// proxy: listen=tcp:ADDR:PORT on the host, forwarded to connect=tcp:ADDR:PORT inside the
    /// container. It takes effect at once; a listen address that cannot be bound is refused.
    ///
    /// Examples:
    ///   sysc config device add web1 http proxy listen=tcp:0.0.0.0:8080 connect=tcp:127.0.0.1:80
    ///   sysc config device add web1 eth1 nic network=backend ipv4.address=10.20.30.5
    #[command(verbatim_doc_comment)]
    Add {
        /// Container to add the device to
        #[arg(value_name = "NAME")]
        name: String,
        /// Name of the new device, e.g. eth1 or http
        #[arg(value_name = "DEVICE")]
        device: String,
        /// What kind of device it is
        #[arg(value_name = "TYPE", value_parser = device::TYPES)]
        kind: String,
        /// The type's keys
        #[arg(value_name = "KEY=VALUE", value_parser = lifecycle::parse_config_pair)]
        config: Vec<(String, String)>,
    },
    /// Set keys of a device
    ///
    /// Either one KEY and its VALUE, or any number of KEY=VALUE, as with `config set`.
    ///
    /// Examples:
    ///   sysc config device set web1 eth0 ipv4.address 10.1.2.50
    ///   sysc config device set web1 http listen=tcp:0.0.0.0:8081
    #[command(
        verbatim_doc_comment,
        override_usage = "sysc config device set [OPTIONS] <NAME> <DEVICE> <KEY> <VALUE>\n       \
                          sysc config device set [OPTIONS] <NAME> <DEVICE> <KEY=VALUE>..."
    )]
    Set {
        /// Container whose device to change
        #[arg(value_name = "NAME")]
        name: String,
        /// Device to change
        #[arg(value_name = "DEVICE")]
        device: String,
        /// KEY VALUE, or KEY=VALUE...
        #[arg(value_name = "KEY=VALUE", required = true)]
        args: Vec<String>,
    },
    /// Unset keys of a device
    Unset {
        /// Container whose device to change
        #[arg(value_name = "NAME")]
        name: String,
        /// Device to change
        #[arg(value_name = "DEVICE")]
        device: String,
        /// Keys to unset
        #[arg(value_name = "KEY", required = true)]
        keys: Vec<String>,
    },
    /// Remove a device from a container
    #[command(visible_alias = "rm")]
    Remove {
        /// Container to remove the device from
        #[arg(value_name = "NAME")]
        name: String,
        /// Device to remove
        #[arg(value_name = "DEVICE")]
        device: String,
    },
    /// List a container's devices with their types and keys
    #[command(visible_alias = "ls")]
    List {
        /// Container whose devices to list
        #[arg(value_name = "NAME")]
        name: String,
        #[command(flatten)]
        format: FormatArgs,
    },
    /// Print a container's devices and their keys as YAML
    Show {
        /// Container whose devices to show
        #[arg(value_name = "NAME")]
        name: String,
    },
}

#[derive(Subcommand)]
enum TemplateCommand {
    /// List the templates the daemon knows
    #[command(visible_alias = "ls")]
    List(ListOnArgs),
}

#[derive(Subcommand)]
enum ImageCommand {
    /// List cached images
    #[command(visible_alias = "ls")]
    List(ListOnArgs),
    /// Delete a cached image
    #[command(visible_alias = "rm")]
    Delete {
        /// A fingerprint or a unique prefix of one (at least 4 characters)
        fingerprint: String,
    },
}

#[derive(Subcommand)]
enum SnapshotCommand {
    /// Take a snapshot of a container
    ///
    /// A running container is frozen for the instant it takes, so the snapshot is
    /// consistent. Without SNAP, the name comes from the container's snapshots.pattern
    /// (snap0, snap1, ...). Without --expiry, the container's snapshots.expiry.manual or
    /// snapshots.expiry says how long it is kept (by default: until deleted).
    ///
    /// Examples:
    ///   sysc snapshot create web1
    ///   sysc snapshot create web1 before-upgrade --no-expiry
    ///   sysc snapshot create web1 --expiry 2d      (from cron)
    #[command(verbatim_doc_comment)]
    Create {
        #[command(flatten)]
        target: SnapshotTarget,
        /// How long to keep it, e.g. 7d or "2H 30M": M minutes, H hours, d days, w weeks,
        /// m months, y years
        #[arg(long, value_name = "DURATION")]
        expiry: Option<String>,
        /// Keep it until deleted, whatever the container's config says
        #[arg(long, conflicts_with = "expiry")]
        no_expiry: bool,
    },
    /// List a container's snapshots, oldest first
    #[command(visible_alias = "ls")]
    List {
        /// Container whose snapshots to list
        #[arg(value_name = "NAME")]
        name: String,
        #[command(flatten)]
        format: FormatArgs,
    },
    /// Show a snapshot in detail, with the config it holds
    Show(SnapshotTarget),
    /// Put a container back as it was in a snapshot: root filesystem and config
    ///
    /// A running container is stopped first and started again after.
    Restore(SnapshotTarget),
    /// Delete a snapshot
    #[command(visible_alias = "rm")]
    Delete(SnapshotTarget),
    /// Rename a snapshot
    #[command(override_usage = "sysc snapshot rename [OPTIONS] <NAME> <SNAP> <NEWSNAP>\n       \
                                sysc snapshot rename [OPTIONS] <NAME/SNAP> <NEWSNAP>")]
    Rename {
        /// Container, or NAME/SNAP
        #[arg(value_name = "NAME")]
        name: String,
        /// Snapshot to rename, or the new name after NAME/SNAP
        #[arg(value_name = "SNAP")]
        snapshot: String,
        /// New name of the snapshot
        #[arg(value_name = "NEWSNAP")]
        new_name: Option<String>,
    },
}

/// A snapshot as `NAME SNAP` or `NAME/SNAP` (for `create`, SNAP may be left out); check_usage
/// refuses anything else.
#[derive(Args)]
struct SnapshotTarget {
    /// Container, or NAME/SNAP
    #[arg(value_name = "NAME[/SNAP]")]
    name: String,
    /// Snapshot, unless given as NAME/SNAP
    #[arg(value_name = "SNAP")]
    snapshot: Option<String>,
}

impl SnapshotTarget {
    fn parse(&self) -> Result<(String, Option<String>), String> {
        snapshot::parse_target(&self.name, self.snapshot.as_deref())
    }

    fn parse_snapshot(&self) -> Result<snapshot::SnapshotName, String> {
        snapshot::parse_snapshot(&self.name, self.snapshot.as_deref())
    }
}

#[derive(Subcommand)]
enum StorageCommand {
    /// Create a storage pool
    ///
    /// btrfs: size=SIZE makes a loop file of that size under the daemon's root (default
    /// 20GiB); source=DIR uses a directory on a mounted btrfs instead. dir: source=DIR,
    /// else a directory under the daemon's root.
    ///
    /// Examples:
    ///   sysc storage create fast btrfs size=50GiB
    ///   sysc storage create bulk dir source=/srv/sysc
    #[command(verbatim_doc_comment)]
    Create {
        /// Name of the new pool
        #[arg(value_name = "NAME")]
        name: String,
        /// How it stores volumes
        #[arg(value_name = "DRIVER", value_parser = storage::DRIVERS)]
        driver: String,
        /// Driver options: size=SIZE, source=PATH
        #[arg(value_name = "KEY=VALUE", value_parser = lifecycle::parse_config_pair)]
        config: Vec<(String, String)>,
    },
    /// List storage pools
    #[command(visible_alias = "ls")]
    List(ListOnArgs),
    /// Show a storage pool in detail: space, containers and images in it, config
    Info {
        /// Pool to show
        #[arg(value_name = "NAME")]
        name: String,
    },
    /// Delete a storage pool nothing uses (its cached images go with it)
    #[command(visible_alias = "rm")]
    Delete {
        /// Pool to delete
        #[arg(value_name = "NAME")]
        name: String,
    },
}

#[derive(Subcommand)]
enum NetworkCommand {
    /// Create a managed network: a bridge, NAT to the outside, DHCP and DNS
    ///
    /// ipv4.address=ADDR/PREFIX is the bridge's (gateway's) address and subnet, or auto (the
    /// default) for a free /24 that clashes with no route on the host; ipv4.nat=true|false;
    /// dns.domain=DOMAIN (default sysc) is where the containers' names resolve. The network's
    /// name is its bridge's.
    ///
    /// Examples:
    ///   sysc network create lab0
    ///   sysc network create backend ipv4.address=10.20.30.1/24 ipv4.nat=false dns.domain=backend
    #[command(verbatim_doc_comment)]
    Create {
        /// Name of the new network (and its bridge)
        #[arg(value_name = "NAME")]
        name: String,
        /// Config keys: ipv4.address, ipv4.nat, dns.domain
        #[arg(value_name = "KEY=VALUE", value_parser = lifecycle::parse_config_pair)]
        config: Vec<(String, String)>,
    },
    /// List managed networks
    #[command(visible_alias = "ls")]
    List(ListOnArgs),
    /// Show a network in detail: its containers, DHCP leases and config
    Show {
        /// Network to show
        #[arg(value_name = "NAME")]
        name: String,
    },
    /// Delete a network no container has a nic on
    #[command(visible_alias = "rm")]
    Delete {
        /// Network to delete
        #[arg(value_name = "NAME")]
        name: String,
    },
}

#[derive(Args)]
struct CreateArgs {
    /// Template to build the root filesystem with, e.g. debian or busybox
    template: String,
    /// Name of the new container
    name: String,
    /// Config key to set, e.g. -c security.privileged=true (repeatable)
    #[arg(short = 'c', long = "config", value_name = "KEY=VALUE", value_parser = lifecycle::parse_config_pair)]
    config: Vec<(String, String)>,
    /// Template release; the template's default when omitted
    #[arg(long)]
    release: Option<String>,
    /// Template architecture; the template's default when omitted
    #[arg(long)]
    arch: Option<String>,
    /// Storage pool for the container (and its image) [default: the default pool]
    #[arg(short = 's', long = "storage", value_name = "POOL")]
    pool: Option<String>,
    /// Network of the container's eth0 [default: the daemon's default network]; `none` for no
    /// network device
    #[arg(short = 'n', long = "network", value_name = "NAME")]
    network: Option<String>,
}

#[derive(Args)]
struct CopyArgs {
    /// Container to copy, or NAME/SNAP to copy one of its snapshots
    #[arg(value_name = "SRC[/SNAP]", value_parser = copy::parse_source)]
    source: copy::Source,
    /// Name of the new container, on REMOTE if given [default name: the source's]
    #[arg(value_name = "[REMOTE:]DST")]
    name: String,
    /// Leave the source's snapshots behind
    #[arg(long)]
    instance_only: bool,
    /// Storage pool for the copy [default: the source's pool; on another remote, its default pool]
    #[arg(short = 's', long = "storage", value_name = "POOL")]
    pool: Option<String>,
    /// Config key to set on the copy, e.g. -c limits.memory=1GiB (repeatable)
    #[arg(short = 'c', long = "config", value_name = "KEY=VALUE", value_parser = lifecycle::parse_config_pair)]
    config: Vec<(String, String)>,
}

#[derive(Args)]
struct MoveArgs {
    /// Container to move
    #[arg(value_name = "[REMOTE:]NAME")]
    name: String,
    /// Where to: REMOTE:, REMOTE:NEWNAME, or NEWNAME (on the default remote)
    #[arg(value_name = "[REMOTE:][NEWNAME]")]
    destination: String,
    /// Move the container without its snapshots, which are deleted with the source
    #[arg(long)]
    instance_only: bool,
}

#[derive(Args)]
struct ExportArgs {
    /// Container to export
    #[arg(value_name = "NAME")]
    name: String,
    /// Archive to write, replacing one already there; - for stdout
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// Leave the container's snapshots out
    #[arg(long)]
    instance_only: bool,
    /// Compression of the archive
    #[arg(long, value_enum, default_value_t = Compression::Zstd)]
    compression: Compression,
}

#[derive(Args)]
struct ImportArgs {
    /// Archive to read, as `sysc export` wrote it; - for stdin
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// Name of the new container [default: the name in the archive]
    #[arg(value_name = "NEWNAME")]
    name: Option<String>,
    /// Storage pool for the new container [default: the default pool]
    #[arg(short = 's', long = "storage", value_name = "POOL")]
    pool: Option<String>,
}

#[derive(Args)]
struct ExecArgs {
    /// Container to run the command in
    #[arg(value_name = "NAME")]
    name: String,
    /// Set an environment variable for the command, e.g. --env LANG=C (repeatable)
    #[arg(long = "env", value_name = "NAME=VALUE", value_parser = exec::parse_env_pair)]
    env: Vec<(String, String)>,
    /// Working directory inside the container [default: the user's home, else /]
    #[arg(long, value_name = "DIR")]
    cwd: Option<String>,
    /// Container uid to run as [default: 0]
    #[arg(long, value_name = "UID")]
    user: Option<u32>,
    /// Container gid to run as [default: 0]
    #[arg(long, value_name = "GID")]
    group: Option<u32>,
    /// Give the command a terminal even when ours is not one
    #[arg(short = 't', long, conflicts_with = "no_tty")]
    tty: bool,
    /// Never give the command a terminal, so its stdout and stderr stay apart
    #[arg(short = 'T', long)]
    no_tty: bool,
    /// The command and its arguments; put `--` before a command that starts with '-'
    #[arg(value_name = "COMMAND", required = true, trailing_var_arg = true)]
    command: Vec<String>,
}

#[derive(Args)]
#[group(required = true, multiple = false)]
struct TargetArgs {
    /// Containers to act on
    #[arg(value_name = "NAME")]
    names: Vec<String>,
    /// Act on every container this applies to: the stopped ones for start, the running
    /// ones for stop, restart and pause, the paused ones for resume
    #[arg(long)]
    all: bool,
}

#[derive(Args)]
struct ShutdownArgs {
    /// Kill every process at once instead of shutting down cleanly
    #[arg(short, long)]
    force: bool,
    /// Seconds to wait for a clean shutdown before killing [default: the daemon's, 30]
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u32).range(1..))]
    timeout: Option<u32>,
}

#[derive(Args)]
struct FormatArgs {
    /// Output format
    #[arg(short, long, value_enum, default_value_t = OutputFormat::Table)]
    format: OutputFormat,
}

/// A list verb's output format, and the remote whose things to list.
#[derive(Args)]
struct ListOnArgs {
    /// The remote to list [default: the default remote]
    #[arg(value_name = "REMOTE:")]
    remote: Option<String>,
    #[command(flatten)]
    format: FormatArgs,
}

#[derive(Args)]
struct ListArgs {
    /// The remote whose containers to list [default: the default remote]
    #[arg(value_name = "REMOTE:")]
    remote: Option<String>,
    /// Keep only the containers that match: a name prefix (web), or KEY=VALUE with state
    /// (or status), name, image (the start of its name or fingerprint), pool, or a config
    /// key (boot.autostart=true; KEY= for one not set). Several must all match
    #[arg(value_name = "FILTER")]
    filters: Vec<String>,
    #[command(flatten)]
    format: FormatArgs,
    /// Columns of the table and CSV, a letter each: n NAME, s STATE, 4 IPV4, p PID,
    /// f IMAGE, c CREATED, m MEMORY, M MEMORY PEAK, u CPU (seconds), N PROCESSES,
    /// b STORAGE POOL, S SNAPSHOTS, t TYPE. JSON and YAML always carry everything
    #[arg(
        short,
        long,
        value_name = "LETTERS",
        default_value = list::DEFAULT_COLUMNS,
        value_parser = list::parse_columns
    )]
    columns: list::Columns,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(err) = check_usage(&cli) {
        err.exit();
    }
    match run(cli).await {
        Ok(code) => code,
        // Each failure of a batch has been printed with its container's name already.
        Err(err) if err.is::<FailuresReported>() => ExitCode::FAILURE,
        // A reader that went away (`sysc list | head`) wants no more output, not an error.
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let mut command = match cli.command {
        // About the remotes themselves: nothing to connect to first.
        Command::Remote { command } => return remote::run(&cli.socket, command).await.map(|()| ExitCode::SUCCESS),
        command => command,
    };
    // Without a config directory (no HOME) there are no remotes, but `local` still works.
    let dir = ConfigDir::from_environment().ok();
    let remotes = match &dir {
        Some(dir) => dir.load()?,
        None => ClientConfig::default(),
    };
    let remote::route::Route { remote, destination } = remote::route::route(&mut command, &remotes.default_remote)?;
    // Connecting first keeps each arm short; `version` alone takes a failure as an answer.
    let daemon = connect::connect_remote(&cli.socket, dir.as_ref(), &remotes, &remote).await;
    // Where a copy or a move goes, when that is another remote.
    let across = match destination.filter(|to| *to != remote) {
        Some(to) => {
            let channel = connect::connect_remote(&cli.socket, dir.as_ref(), &remotes, &to).await?;
            Some(copy::Side::new(to, channel))
        }
        None => None,
    };
    let done = match command {
        // A command's exit status becomes ours.
        Command::Exec(args) => return exec::exec(daemon?, args.into()).await,
        Command::Shell { name } => return exec::shell(daemon?, name).await,
        Command::Console { name, show_log: true } => console::show_log(daemon?, name).await,
        Command::Console { name, show_log: false } => console::attach(daemon?, name).await,
        Command::Version { .. } => version::show(daemon).await,
        Command::Monitor(args) => monitor::monitor(daemon?, args).await,
        Command::Operation { command } => operation::run(daemon?, command).await,
        Command::Create(args) => lifecycle::create(daemon?, args.into_request(false)).await,
        Command::Launch(args) => lifecycle::create(daemon?, args.into_request(true)).await,
        Command::Start(targets) => lifecycle::start(daemon?, targets.into()).await,
        Command::Stop { targets, shutdown } => lifecycle::stop(daemon?, targets.into(), shutdown.into()).await,
        Command::Restart { targets, shutdown } => lifecycle::restart(daemon?, targets.into(), shutdown.into()).await,
        Command::Pause(targets) => lifecycle::pause(daemon?, targets.into()).await,
        Command::Resume(targets) => lifecycle::resume(daemon?, targets.into()).await,
        Command::Delete { names, force } => lifecycle::delete(daemon?, names, force).await,
        Command::Rename { name, new_name } => lifecycle::rename(daemon?, name, new_name).await,
        Command::Copy(args) => match across {
            Some(to) => copy::copy_across(copy::Side::new(remote, daemon?), to, args.into()).await,
            None => copy::copy(daemon?, args.into()).await,
        },
        Command::Move(args) => {
            let from = copy::Side::new(remote, daemon?);
            match across {
                Some(to) => copy::move_across(from, to, args.into()).await,
                None => copy::move_within(from, args.into()).await,
            }
        }
        Command::List(args) => list::show(daemon?, &args.filters, args.format.format, &args.columns).await,
        Command::Info { name: Some(name), .. } if !name.is_empty() => info::show(daemon?, name).await,
        // `info`, `info --host`, or `info REMOTE:`.
        Command::Info { .. } => info::show_host(daemon?).await,
        // check_usage has refused arguments these cannot take.
        Command::Config { command } => match command {
            ConfigCommand::Set { name, args } => match server_subject(&name) {
                Some(subject) => {
                    let values = server_config::assignments(subject, &args).map_err(anyhow::Error::msg)?;
                    server_config::set(daemon?, values).await
                }
                None => {
                    let values = config::parse_assignments(&args).map_err(anyhow::Error::msg)?;
                    config::set(daemon?, name, values).await
                }
            },
            ConfigCommand::Unset { name, keys } => match server_subject(&name) {
                Some(subject) => {
                    let keys = server_config::unset_keys(subject, &keys).map_err(anyhow::Error::msg)?;
                    server_config::unset(daemon?, keys).await
                }
                None => config::unset(daemon?, name, keys).await,
            },
            ConfigCommand::Get { name, key } => match server_subject(&name) {
                Some(subject) => {
                    let key = server_config::get_key(subject, key.as_deref()).map_err(anyhow::Error::msg)?;
                    server_config::get(daemon?, key).await
                }
                None => config::get(daemon?, name, key.unwrap_or_default()).await,
            },
            ConfigCommand::Show { name: Some(name) } if server_subject(&name).is_none() => {
                config::show(daemon?, name).await
            }
            ConfigCommand::Show { .. } => server_config::show(daemon?).await,
            // Ctrl+C at its prompt has an exit status of its own.
            ConfigCommand::Edit { name } => {
                return config::edit(daemon?, name, config::EditSession::from_environment()).await;
            }
            ConfigCommand::Device { command } => run_device(daemon?, command).await,
            ConfigCommand::Keys { format, .. } => config::keys(daemon?, format).await,
            ConfigCommand::Trust { command } => trust::run(daemon?, command).await,
        },
        // check_usage has refused snapshot names these cannot take.
        Command::Snapshot { command } => match command {
            SnapshotCommand::Create {
                target,
                expiry,
                no_expiry,
            } => {
                let (container, name) = target.parse().map_err(anyhow::Error::msg)?;
                snapshot::create(daemon?, container, name, expiry, no_expiry).await
            }
            SnapshotCommand::List { name, format } => snapshot::list(daemon?, name, format.format).await,
            SnapshotCommand::Show(target) => {
                snapshot::show(daemon?, target.parse_snapshot().map_err(anyhow::Error::msg)?).await
            }
            SnapshotCommand::Restore(target) => {
                snapshot::restore(daemon?, target.parse_snapshot().map_err(anyhow::Error::msg)?).await
            }
            SnapshotCommand::Delete(target) => {
                snapshot::delete(daemon?, target.parse_snapshot().map_err(anyhow::Error::msg)?).await
            }
            SnapshotCommand::Rename {
                name,
                snapshot,
                new_name,
            } => {
                let (target, new_name) =
                    snapshot::parse_rename(&name, &snapshot, new_name.as_deref()).map_err(anyhow::Error::msg)?;
                snapshot::rename(daemon?, target, new_name).await
            }
        },
        Command::File { command } => run_file(daemon?, command).await,
        Command::Export(args) => backup::export(daemon?, args.into()).await,
        Command::Import(args) => backup::import(daemon?, args.into()).await,
        Command::Template {
            command: TemplateCommand::List(arg),
        } => images::list_templates(daemon?, arg.format.format).await,
        Command::Image { command } => match command {
            ImageCommand::List(arg) => images::list_images(daemon?, arg.format.format).await,
            ImageCommand::Delete { fingerprint } => images::delete_image(daemon?, fingerprint).await,
        },
        Command::Storage { command } => match command {
            StorageCommand::Create { name, driver, config } => storage::create(daemon?, name, driver, config).await,
            StorageCommand::List(arg) => storage::list(daemon?, arg.format.format).await,
            StorageCommand::Info { name } => storage::info(daemon?, name).await,
            StorageCommand::Delete { name } => storage::delete(daemon?, name).await,
        },
        Command::Network { command } => match command {
            NetworkCommand::Create { name, config } => network::create(daemon?, name, config).await,
            NetworkCommand::List(arg) => network::list(daemon?, arg.format.format).await,
            NetworkCommand::Show { name } => network::show(daemon?, name).await,
            NetworkCommand::Delete { name } => network::delete(daemon?, name).await,
        },
        Command::Remote { .. } => unreachable!("handled before connecting"),
    };
    done.map(|()| ExitCode::SUCCESS)
}

/// check_usage has refused arguments these cannot take.
async fn run_device(daemon: tonic::transport::Channel, command: DeviceCommand) -> anyhow::Result<()> {
    match command {
        DeviceCommand::Add {
            name,
            device,
            kind,
            config,
        } => {
            let config = device::add_config(&kind, &config).map_err(anyhow::Error::msg)?;
            device::add(daemon, name, device, config).await
        }
        DeviceCommand::Set { name, device, args } => {
            let values = config::parse_assignments(&args).map_err(anyhow::Error::msg)?;
            device::set(daemon, name, device, values).await
        }
        DeviceCommand::Unset { name, device, keys } => device::unset(daemon, name, device, keys).await,
        DeviceCommand::Remove { name, device } => device::remove(daemon, name, device).await,
        DeviceCommand::List { name, format } => device::list(daemon, name, format.format).await,
        DeviceCommand::Show { name } => device::show(daemon, name).await,
    }
}

async fn run_file(daemon: tonic::transport::Channel, command: file::FileCommand) -> anyhow::Result<()> {
    use file::FileCommand;
    let target = |text: &std::ffi::OsString| file::Target::parse(text).map_err(anyhow::Error::msg);
    let targets = |texts: &[std::ffi::OsString]| file::parse_targets(texts).map_err(anyhow::Error::msg);
    match command {
        FileCommand::Push {
            sources,
            target: to,
            options,
        } => file::push(daemon, file::PushOptions::new(sources, target(&to)?, options)).await,
        FileCommand::Pull {
            sources,
            dest,
            recursive,
            create_dirs,
        } => {
            let options = file::PullOptions {
                sources: targets(&sources)?,
                dest,
                recursive,
                create_dirs,
            };
            file::pull(daemon, options).await
        }
        FileCommand::Edit { target: at } => file::edit(daemon, target(&at)?).await,
        FileCommand::Ls { target: at, format } => file::list(daemon, target(&at)?, format).await,
        FileCommand::Mkdir {
            targets: at,
            parents,
            owner,
        } => file::mkdir(daemon, targets(&at)?, parents, owner).await,
        FileCommand::Delete { targets: at, force } => file::delete(daemon, targets(&at)?, force).await,
    }
}

/// Usage errors clap cannot see by itself, reported like its own (exit status 2) and before
/// any connection is made.
fn check_usage(cli: &Cli) -> Result<(), clap::Error> {
    match &cli.command {
        Command::Config { command } => check_config_usage(command),
        Command::Snapshot { command } => check_snapshot_usage(command),
        _ => Ok(()),
    }
}

/// The container forms of `config set|unset|get` and their server forms (see server_config).
fn check_config_usage(command: &ConfigCommand) -> Result<(), clap::Error> {
    let (verb, checked) = match command {
        ConfigCommand::Set { name, args } => (
            "set",
            match server_subject(name) {
                Some(subject) => server_config::assignments(subject, args).map(drop),
                None => config::parse_assignments(args).map(drop),
            },
        ),
        ConfigCommand::Unset { name, keys } => (
            "unset",
            match server_subject(name) {
                Some(subject) => server_config::unset_keys(subject, keys).map(drop),
                None if keys.is_empty() => Err(format!("no key given for {name}: expected NAME KEY...")),
                None => Ok(()),
            },
        ),
        ConfigCommand::Get { name, key } => (
            "get",
            match server_subject(name) {
                Some(subject) => server_config::get_key(subject, key.as_deref()).map(drop),
                None if key.is_none() => Err(format!("no key given for {name}: expected NAME KEY")),
                None => Ok(()),
            },
        ),
        ConfigCommand::Edit { name } if server_subject(name).is_some() => (
            "edit",
            Err(format!(
                "{name} is no container; server keys are changed with config set and config unset"
            )),
        ),
        ConfigCommand::Device { command } => return check_device_usage(command),
        _ => return Ok(()),
    };
    checked.map_err(|message| usage_error(&["config", verb], message))
}

fn check_device_usage(command: &DeviceCommand) -> Result<(), clap::Error> {
    let (verb, checked) = match command {
        DeviceCommand::Add { kind, config, .. } => ("add", device::add_config(kind, config).map(drop)),
        DeviceCommand::Set { args, .. } => ("set", config::parse_assignments(args).map(drop)),
        _ => return Ok(()),
    };
    checked.map_err(|message| usage_error(&["config", "device", verb], message))
}

fn check_snapshot_usage(command: &SnapshotCommand) -> Result<(), clap::Error> {
    let (verb, checked) = match command {
        SnapshotCommand::Create { target, .. } => ("create", target.parse().map(drop)),
        SnapshotCommand::List { .. } => return Ok(()),
        SnapshotCommand::Show(target) => ("show", target.parse_snapshot().map(drop)),
        SnapshotCommand::Restore(target) => ("restore", target.parse_snapshot().map(drop)),
        SnapshotCommand::Delete(target) => ("delete", target.parse_snapshot().map(drop)),
        SnapshotCommand::Rename {
            name,
            snapshot,
            new_name,
        } => (
            "rename",
            snapshot::parse_rename(name, snapshot, new_name.as_deref()).map(drop),
        ),
    };
    checked.map_err(|message| usage_error(&["snapshot", verb], message))
}

fn usage_error(subcommand: &[&str], message: String) -> clap::Error {
    let mut command = Cli::command();
    // Built, so the usage line names the whole command ("sysc config set").
    command.build();
    let mut command = &mut command;
    for name in subcommand {
        command = command.find_subcommand_mut(name).expect("a defined subcommand");
    }
    command.error(ErrorKind::ValueValidation, message)
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.downcast_ref::<io::Error>()
        .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
}

impl CreateArgs {
    fn into_request(self, start: bool) -> sysc_proto::v1::CreateRequest {
        sysc_proto::v1::CreateRequest {
            name: self.name,
            template: self.template,
            release: self.release.unwrap_or_default(),
            arch: self.arch.unwrap_or_default(),
            config: self.config.into_iter().collect(),
            start,
            pool: self.pool.unwrap_or_default(),
            network: self.network.unwrap_or_default(),
        }
    }
}

impl From<CopyArgs> for CopyOptions {
    fn from(args: CopyArgs) -> Self {
        Self {
            source: args.source,
            name: args.name,
            instance_only: args.instance_only,
            pool: args.pool,
            config: args.config,
        }
    }
}

impl From<MoveArgs> for MoveOptions {
    fn from(args: MoveArgs) -> Self {
        Self {
            name: args.name,
            new_name: args.destination,
            instance_only: args.instance_only,
        }
    }
}

impl From<ExportArgs> for ExportOptions {
    fn from(args: ExportArgs) -> Self {
        Self {
            name: args.name,
            file: args.file,
            instance_only: args.instance_only,
            compression: args.compression,
        }
    }
}

impl From<ImportArgs> for ImportOptions {
    fn from(args: ImportArgs) -> Self {
        Self {
            file: args.file,
            name: args.name,
            pool: args.pool,
        }
    }
}

impl From<ExecArgs> for ExecOptions {
    fn from(args: ExecArgs) -> Self {
        let tty = match (args.tty, args.no_tty) {
            (true, _) => TtyMode::Always,
            (_, true) => TtyMode::Never,
            (false, false) => TtyMode::Auto,
        };
        Self {
            name: args.name,
            command: args.command,
            // A repeated name keeps its last value, as in a shell's environment.
            env: args.env.into_iter().collect(),
            cwd: args.cwd,
            uid: args.user,
            gid: args.group,
            tty,
        }
    }
}

impl From<TargetArgs> for lifecycle::Selection {
    fn from(targets: TargetArgs) -> Self {
        if targets.all {
            Self::All
        } else {
            Self::Names(targets.names)
        }
    }
}

impl From<ShutdownArgs> for lifecycle::Shutdown {
    fn from(shutdown: ShutdownArgs) -> Self {
        Self {
            force: shutdown.force,
            timeout_seconds: shutdown.timeout.unwrap_or(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn names_and_all_are_exclusive_and_one_is_required() {
        assert!(Cli::try_parse_from(["sysc", "start", "web1", "--all"]).is_err());
        assert!(Cli::try_parse_from(["sysc", "stop"]).is_err());
        assert!(Cli::try_parse_from(["sysc", "stop", "--all", "--force"]).is_ok());
        assert!(Cli::try_parse_from(["sysc", "start", "a", "b"]).is_ok());
    }

    #[test]
    fn config_without_equals_is_a_usage_error() {
        let err = Cli::try_parse_from(["sysc", "create", "debian", "web1", "-c", "boot.autostart"])
            .err()
            .expect("a usage error");
        assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation);
        assert!(err.to_string().contains("boot.autostart"), "{err}");
    }

    fn exec_options(args: &[&str]) -> ExecOptions {
        let cli = Cli::try_parse_from(args).unwrap();
        let Command::Exec(args) = cli.command else {
            panic!("parsed as another command")
        };
        args.into()
    }

    #[test]
    fn exec_takes_the_command_with_or_without_dashes() {
        let options = exec_options(&["sysc", "exec", "web1", "--", "ls", "-l", "--all"]);
        assert_eq!(options.name, "web1");
        assert_eq!(options.command, ["ls", "-l", "--all"]);
        assert_eq!(options.tty, TtyMode::Auto);

        // Once the command starts, its options are its own, even ones sysc exec knows.
        let options = exec_options(&["sysc", "exec", "web1", "ls", "-t", "--env", "A=B"]);
        assert_eq!(options.command, ["ls", "-t", "--env", "A=B"]);
        assert!(options.env.is_empty());

        let options = exec_options(&["sysc", "exec", "web1", "--", "--weird"]);
        assert_eq!(options.command, ["--weird"]);

        assert!(Cli::try_parse_from(["sysc", "exec", "web1"]).is_err());
        assert!(Cli::try_parse_from(["sysc", "exec", "web1", "--"]).is_err());
    }

    #[test]
    fn exec_options_reach_the_request() {
        let options = exec_options(&[
            "sysc", "exec", "--env", "A=1", "--env", "B=x=y", "--env", "A=2", "--cwd", "/srv", "--user", "1000",
            "--group", "100", "-T", "web1", "--", "make",
        ]);
        assert_eq!(options.env.len(), 2);
        assert_eq!(options.env.get("A").map(String::as_str), Some("2"));
        assert_eq!(options.env.get("B").map(String::as_str), Some("x=y"));
        assert_eq!(options.cwd.as_deref(), Some("/srv"));
        assert_eq!((options.uid, options.gid), (Some(1000), Some(100)));
        assert_eq!(options.tty, TtyMode::Never);
        assert_eq!(exec_options(&["sysc", "exec", "-t", "web1", "sh"]).tty, TtyMode::Always);
    }

    #[test]
    fn exec_usage_errors() {
        let kind = |args: &[&str]| Cli::try_parse_from(args).err().map(|err| err.kind());
        assert_eq!(
            kind(&["sysc", "exec", "-t", "-T", "web1", "sh"]),
            Some(clap::error::ErrorKind::ArgumentConflict)
        );
        assert_eq!(
            kind(&["sysc", "exec", "--env", "LANG", "web1", "sh"]),
            Some(clap::error::ErrorKind::ValueValidation)
        );
        assert_eq!(
            kind(&["sysc", "exec", "--user", "root", "web1", "sh"]),
            Some(clap::error::ErrorKind::ValueValidation)
        );
    }

    #[test]
    fn console_attaches_unless_asked_for_the_log() {
        let cli = Cli::try_parse_from(["sysc", "console", "web1"]).unwrap();
        assert!(matches!(cli.command, Command::Console { show_log: false, .. }));
        let cli = Cli::try_parse_from(["sysc", "console", "--show-log", "web1"]).unwrap();
        assert!(matches!(cli.command, Command::Console { show_log: true, .. }));
        assert!(Cli::try_parse_from(["sysc", "shell"]).is_err());
    }

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(args).and_then(|cli| check_usage(&cli).map(|()| cli))
    }

    #[test]
    fn config_set_takes_both_forms() {
        let cli = parse(&["sysc", "config", "set", "web1", "boot.autostart", "true"]).unwrap();
        let Command::Config {
            command: ConfigCommand::Set { name, args },
        } = cli.command
        else {
            panic!("parsed as another command")
        };
        assert_eq!(name, "web1");
        assert_eq!(args, ["boot.autostart", "true"]);
        assert!(parse(&["sysc", "config", "set", "web1", "a=1", "b=2", "c=3"]).is_ok());
        assert!(parse(&["sysc", "config", "set", "web1", "environment.OPTS", "--", "-v"]).is_ok());
    }

    #[test]
    fn config_set_usage_errors_come_from_clap() {
        for args in [
            &["sysc", "config", "set", "web1"][..],
            &["sysc", "config", "set", "web1", "boot.autostart"],
            &["sysc", "config", "set", "web1", "a", "b", "c"],
            &["sysc", "config", "set", "web1", "a=1", "b"],
        ] {
            let err = parse(args).err().expect("a usage error");
            assert_eq!(err.exit_code(), 2, "{args:?}");
        }
        let err = parse(&["sysc", "config", "set", "web1", "a=1", "b"]).err().unwrap();
        let text = err.to_string();
        assert!(text.contains("\"b\": expected KEY=VALUE"), "{text}");
        assert!(text.contains("Usage: sysc config set"), "{text}");
    }

    #[test]
    fn config_verbs_parse() {
        assert!(parse(&["sysc", "config", "unset", "web1"]).is_err());
        assert!(parse(&["sysc", "config", "unset", "web1", "a", "b"]).is_ok());
        assert!(parse(&["sysc", "config", "get", "web1", "a"]).is_ok());
        assert!(parse(&["sysc", "config", "get", "web1"]).is_err());
        assert!(parse(&["sysc", "config", "show", "web1"]).is_ok());
        assert!(parse(&["sysc", "config", "edit", "web1"]).is_ok());
        let cli = parse(&["sysc", "config", "keys", "--format", "markdown"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Config {
                command: ConfigCommand::Keys {
                    format: KeysFormat::Markdown,
                    remote: None
                }
            }
        ));
        assert!(parse(&["sysc", "list", "--format", "markdown"]).is_err());
    }

    #[test]
    fn pause_and_resume_take_names_or_all() {
        assert!(parse(&["sysc", "pause", "a", "b"]).is_ok());
        assert!(parse(&["sysc", "resume", "--all"]).is_ok());
        assert!(parse(&["sysc", "pause"]).is_err());
        assert!(parse(&["sysc", "resume", "a", "--all"]).is_err());
    }

    #[test]
    fn list_columns_default_and_validate() {
        let Command::List(args) = parse(&["sysc", "list"]).unwrap().command else {
            panic!("parsed as another command")
        };
        assert_eq!(args.columns, list::parse_columns("ns4pfc").unwrap());
        let Command::List(args) = parse(&["sysc", "ls", "-c", "nmu", "-f", "csv"]).unwrap().command else {
            panic!("parsed as another command")
        };
        assert_eq!(args.columns.0.len(), 3);
        assert!(matches!(args.format.format, OutputFormat::Csv));
        let err = parse(&["sysc", "list", "--columns", "nsz"]).err().unwrap();
        assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation);
        assert!(err.to_string().contains("unknown column letter 'z'"), "{err}");
    }

    #[test]
    fn info_takes_a_name_or_shows_the_host_but_not_both() {
        assert!(matches!(
            parse(&["sysc", "info", "web1"]).unwrap().command,
            Command::Info {
                name: Some(_),
                host: false
            }
        ));
        assert!(matches!(
            parse(&["sysc", "info", "--host"]).unwrap().command,
            Command::Info { name: None, host: true }
        ));
        assert!(matches!(
            parse(&["sysc", "info"]).unwrap().command,
            Command::Info {
                name: None,
                host: false
            }
        ));
        assert_eq!(
            parse(&["sysc", "info", "web1", "--host"]).err().map(|err| err.kind()),
            Some(clap::error::ErrorKind::ArgumentConflict)
        );
    }

    #[test]
    fn create_request_carries_options() {
        let cli =
            Cli::try_parse_from(["sysc", "launch", "debian", "web1", "-c", "a=b=c", "--release", "trixie"]).unwrap();
        let Command::Launch(args) = cli.command else {
            panic!("parsed as another command")
        };
        let request = args.into_request(true);
        assert_eq!(request.config.get("a").map(String::as_str), Some("b=c"));
        assert_eq!(request.release, "trixie");
        assert!(request.arch.is_empty());
        assert!(request.start);
        assert!(request.pool.is_empty());

        let cli = Cli::try_parse_from(["sysc", "create", "debian", "web1", "-s", "fast"]).unwrap();
        let Command::Create(args) = cli.command else {
            panic!("parsed as another command")
        };
        assert_eq!(args.into_request(false).pool, "fast");
        assert!(Cli::try_parse_from(["sysc", "launch", "debian", "web1", "--storage", "fast"]).is_ok());
    }

    fn create_request(args: &[&str]) -> sysc_proto::v1::CreateRequest {
        match Cli::try_parse_from(args).unwrap().command {
            Command::Create(args) => args.into_request(false),
            Command::Launch(args) => args.into_request(true),
            _ => panic!("parsed as another command"),
        }
    }

    #[test]
    fn create_and_launch_name_the_network_or_none() {
        assert_eq!(
            create_request(&["sysc", "launch", "debian", "web1", "-n", "none"]).network,
            "none"
        );
        assert_eq!(
            create_request(&["sysc", "create", "debian", "web1", "--network", "lab0"]).network,
            "lab0"
        );
        // Empty: the daemon's default network.
        assert_eq!(create_request(&["sysc", "launch", "debian", "web1"]).network, "");
    }

    fn device_command(args: &[&str]) -> DeviceCommand {
        match parse(args).unwrap().command {
            Command::Config {
                command: ConfigCommand::Device { command },
            } => command,
            _ => panic!("parsed as another command"),
        }
    }

    #[tokio::test]
    async fn config_device_add_sends_the_type_and_keys() {
        use crate::fake_daemon::{Call, FakeDaemon, container};
        let daemon = FakeDaemon::start(vec![container("web1", sysc_proto::v1::ContainerState::Stopped, &[])]).await;
        let command = device_command(&[
            "sysc",
            "config",
            "device",
            "add",
            "web1",
            "http",
            "proxy",
            "listen=tcp:0.0.0.0:8080",
            "connect=tcp:127.0.0.1:80",
        ]);
        run_device(daemon.channel.clone(), command).await.unwrap();
        let calls = daemon.calls();
        let [Call::AddDevice(request)] = calls.as_slice() else {
            panic!("{calls:?}")
        };
        assert_eq!((request.name.as_str(), request.device.as_str()), ("web1", "http"));
        let config: std::collections::BTreeMap<_, _> = request.config.clone().into_iter().collect();
        assert_eq!(
            config,
            [
                ("connect", "tcp:127.0.0.1:80"),
                ("listen", "tcp:0.0.0.0:8080"),
                ("type", "proxy")
            ]
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .into()
        );

        let command = device_command(&[
            "sysc",
            "config",
            "device",
            "set",
            "web1",
            "http",
            "listen",
            "tcp:0.0.0.0:81",
        ]);
        run_device(daemon.channel.clone(), command).await.unwrap();
        let Some(Call::UpdateDevice(request)) = daemon.calls().pop() else {
            panic!("{:?}", daemon.calls())
        };
        assert_eq!(request.device, "http");
        assert_eq!(request.set.get("listen").map(String::as_str), Some("tcp:0.0.0.0:81"));
    }

    #[test]
    fn config_device_verbs_parse() {
        assert!(matches!(
            device_command(&["sysc", "config", "device", "add", "web1", "eth1", "nic"]),
            DeviceCommand::Add { config, .. } if config.is_empty()
        ));
        let DeviceCommand::Set { args, .. } = device_command(&[
            "sysc",
            "config",
            "device",
            "set",
            "web1",
            "eth0",
            "ipv4.address=10.1.2.50",
            "name=e0",
        ]) else {
            panic!("parsed as another verb")
        };
        assert_eq!(args, ["ipv4.address=10.1.2.50", "name=e0"]);
        let DeviceCommand::Unset { keys, .. } =
            device_command(&["sysc", "config", "device", "unset", "web1", "eth0", "ipv4.address"])
        else {
            panic!("parsed as another verb")
        };
        assert_eq!(keys, ["ipv4.address"]);
        assert!(matches!(
            device_command(&["sysc", "config", "device", "rm", "web1", "eth0"]),
            DeviceCommand::Remove { .. }
        ));
        assert!(matches!(
            device_command(&["sysc", "config", "device", "ls", "web1", "--format", "yaml"]),
            DeviceCommand::List {
                format: FormatArgs {
                    format: OutputFormat::Yaml
                },
                ..
            }
        ));
        assert!(matches!(
            device_command(&["sysc", "config", "device", "show", "web1"]),
            DeviceCommand::Show { .. }
        ));
    }

    #[test]
    fn config_device_usage_errors_come_before_any_request() {
        let error = |args: &[&str]| parse(args).err().expect("a usage error");
        let err = error(&["sysc", "config", "device", "add", "web1", "http", "proxy", "listen"]);
        assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation);
        assert!(err.to_string().contains("'listen'"), "{err}");
        assert!(err.to_string().contains("expected KEY=VALUE"), "{err}");
        let err = error(&["sysc", "config", "device", "add", "web1", "http", "proxy", "=x"]);
        assert!(err.to_string().contains("the key before '=' is empty"), "{err}");
        let err = error(&["sysc", "config", "device", "add", "web1", "d", "disk"]);
        assert_eq!(err.kind(), clap::error::ErrorKind::InvalidValue);
        assert!(err.to_string().contains("[possible values: nic, proxy]"), "{err}");

        let err = error(&["sysc", "config", "device", "add", "web1", "eth1", "nic", "type=proxy"]);
        assert_eq!(err.exit_code(), 2);
        let text = err.to_string();
        assert!(text.contains("the device type is the TYPE argument (nic)"), "{text}");
        assert!(text.contains("Usage: sysc config device add"), "{text}");

        let err = error(&["sysc", "config", "device", "set", "web1", "eth0", "a=1", "b"]);
        assert_eq!(err.exit_code(), 2);
        let text = err.to_string();
        assert!(text.contains("\"b\": expected KEY=VALUE"), "{text}");
        assert!(text.contains("Usage: sysc config device set"), "{text}");
        for args in [
            &["sysc", "config", "device", "set", "web1", "eth0"][..],
            &["sysc", "config", "device", "set", "web1", "eth0", "ipv4.address"],
            &["sysc", "config", "device", "unset", "web1", "eth0"],
            &["sysc", "config", "device", "remove", "web1"],
            &["sysc", "config", "device", "add", "web1", "eth1"],
        ] {
            assert_eq!(error(args).exit_code(), 2, "{args:?}");
        }
    }

    #[test]
    fn network_verbs_parse() {
        let Command::Network {
            command: NetworkCommand::Create { name, config },
        } = parse(&[
            "sysc",
            "network",
            "create",
            "lab0",
            "ipv4.address=auto",
            "dns.domain=lab",
        ])
        .unwrap()
        .command
        else {
            panic!("parsed as another command")
        };
        assert_eq!(name, "lab0");
        assert_eq!(
            config,
            [
                ("ipv4.address".to_string(), "auto".to_string()),
                ("dns.domain".to_string(), "lab".to_string())
            ]
        );
        assert!(parse(&["sysc", "network", "create", "lab0"]).is_ok());
        let err = parse(&["sysc", "network", "create", "lab0", "ipv4.nat"])
            .err()
            .expect("a usage error");
        assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation);
        assert!(err.to_string().contains("expected KEY=VALUE"), "{err}");
        assert!(matches!(
            parse(&["sysc", "network", "ls", "--format", "csv"]).unwrap().command,
            Command::Network {
                command: NetworkCommand::List(ListOnArgs {
                    format: FormatArgs {
                        format: OutputFormat::Csv
                    },
                    remote: None
                })
            }
        ));
        assert!(parse(&["sysc", "network", "show", "sysc0"]).is_ok());
        assert!(parse(&["sysc", "network", "rm", "lab0"]).is_ok());
        assert!(parse(&["sysc", "network", "show"]).is_err());
    }

    fn snapshot_command(args: &[&str]) -> SnapshotCommand {
        match parse(args).unwrap().command {
            Command::Snapshot { command } => command,
            _ => panic!("parsed as another command"),
        }
    }

    #[test]
    fn snapshot_verbs_take_name_snap_or_name_slash_snap() {
        for args in [
            &["sysc", "snapshot", "restore", "web1", "snap0"][..],
            &["sysc", "snapshot", "restore", "web1/snap0"],
        ] {
            let SnapshotCommand::Restore(target) = snapshot_command(args) else {
                panic!("parsed as another verb")
            };
            let name = target.parse_snapshot().unwrap();
            assert_eq!((name.container.as_str(), name.snapshot.as_str()), ("web1", "snap0"));
        }
        let SnapshotCommand::Create {
            target,
            expiry,
            no_expiry,
        } = snapshot_command(&["sysc", "snapshot", "create", "web1", "--expiry", "2d"])
        else {
            panic!("parsed as another verb")
        };
        assert_eq!(target.parse().unwrap(), ("web1".into(), None));
        assert_eq!((expiry.as_deref(), no_expiry), (Some("2d"), false));
        let SnapshotCommand::Create { target, .. } =
            snapshot_command(&["sysc", "snapshot", "create", "web1/nightly", "--no-expiry"])
        else {
            panic!("parsed as another verb")
        };
        assert_eq!(target.parse().unwrap(), ("web1".into(), Some("nightly".into())));
        assert!(matches!(
            snapshot_command(&["sysc", "snapshot", "ls", "web1", "--format", "json"]),
            SnapshotCommand::List {
                format: FormatArgs {
                    format: OutputFormat::Json
                },
                ..
            }
        ));
        for args in [
            &["sysc", "snapshot", "show", "web1/snap0"][..],
            &["sysc", "snapshot", "rm", "web1", "snap0"],
            &["sysc", "snapshot", "rename", "web1", "snap0", "snap1"],
            &["sysc", "snapshot", "rename", "web1/snap0", "snap1"],
        ] {
            assert!(parse(args).is_ok(), "{args:?}");
        }
    }

    #[test]
    fn snapshot_usage_errors_come_from_clap() {
        let err = parse(&["sysc", "snapshot", "create", "web1", "--expiry", "2d", "--no-expiry"])
            .err()
            .expect("a usage error");
        assert_eq!(err.kind(), clap::error::ErrorKind::ArgumentConflict);
        for args in [
            &["sysc", "snapshot", "restore", "web1"][..],
            &["sysc", "snapshot", "delete", "web1/snap0", "snap1"],
            &["sysc", "snapshot", "show", "web1/"],
            &["sysc", "snapshot", "create", "web1/a", "b"],
            &["sysc", "snapshot", "rename", "web1", "snap0"],
        ] {
            let err = parse(args).err().expect("a usage error");
            assert_eq!(err.exit_code(), 2, "{args:?}");
        }
        let text = parse(&["sysc", "snapshot", "restore", "web1"])
            .err()
            .unwrap()
            .to_string();
        assert!(text.contains("expected NAME SNAP or NAME/SNAP"), "{text}");
        assert!(text.contains("Usage: sysc snapshot restore"), "{text}");
    }

    #[test]
    fn copy_export_import_and_storage_parse() {
        let Command::Copy(args) = parse(&[
            "sysc",
            "cp",
            "web1/snap0",
            "web2",
            "--instance-only",
            "-s",
            "fast",
            "-c",
            "a=1",
        ])
        .unwrap()
        .command
        else {
            panic!("parsed as another command")
        };
        let options = CopyOptions::from(args);
        assert_eq!(options.source.snapshot.as_deref(), Some("snap0"));
        assert_eq!((options.name.as_str(), options.pool.as_deref()), ("web2", Some("fast")));
        assert!(options.instance_only);
        assert_eq!(
            parse(&["sysc", "copy", "web1/", "web2"]).err().map(|err| err.kind()),
            Some(clap::error::ErrorKind::ValueValidation)
        );

        let Command::Export(args) = parse(&["sysc", "export", "web1", "/backups/web1.tar.zst"])
            .unwrap()
            .command
        else {
            panic!("parsed as another command")
        };
        assert_eq!(args.compression, Compression::Zstd);
        assert!(!args.instance_only);
        assert!(parse(&["sysc", "export", "web1", "-", "--compression", "none"]).is_ok());
        assert!(parse(&["sysc", "export", "web1", "x", "--compression", "gzip"]).is_err());
        assert!(parse(&["sysc", "export", "web1"]).is_err());

        let Command::Import(args) = parse(&["sysc", "import", "-", "web2", "--storage", "fast"])
            .unwrap()
            .command
        else {
            panic!("parsed as another command")
        };
        let options = ImportOptions::from(args);
        assert_eq!(options.file, PathBuf::from("-"));
        assert_eq!(
            (options.name.as_deref(), options.pool.as_deref()),
            (Some("web2"), Some("fast"))
        );

        let Command::Storage {
            command: StorageCommand::Create { driver, config, .. },
        } = parse(&["sysc", "storage", "create", "fast", "btrfs", "size=50GiB"])
            .unwrap()
            .command
        else {
            panic!("parsed as another command")
        };
        assert_eq!(driver, "btrfs");
        assert_eq!(config, [("size".to_string(), "50GiB".to_string())]);
        assert!(parse(&["sysc", "storage", "create", "fast", "zfs"]).is_err());
        assert!(parse(&["sysc", "storage", "create", "fast", "dir", "source"]).is_err());
        assert!(parse(&["sysc", "storage", "ls", "--format", "csv"]).is_ok());
        assert!(parse(&["sysc", "storage", "info", "default"]).is_ok());
        assert!(parse(&["sysc", "storage", "rm", "fast"]).is_ok());
    }

    #[test]
    fn help_lists_the_verbs_in_working_order() {
        let help = Cli::command().render_help().to_string();
        let position = |verb: &str| {
            help.find(&format!("\n  {verb} "))
                .unwrap_or_else(|| panic!("{verb} missing from\n{help}"))
        };
        let order: Vec<usize> = [
            "create", "launch", "delete", "rename", "copy", "move", "list", "info", "snapshot", "export", "import",
            "image", "storage", "network", "version",
        ]
        .iter()
        .map(|verb| position(verb))
        .collect();
        assert!(order.is_sorted(), "{help}");
    }
}
