//! `sysc`, the command line client of syscd.
//!
//! Results go to stdout and progress and errors to stderr, so scripts can parse stdout.

mod connect;
mod console;
mod exec;
mod format;
mod images;
mod info;
mod lifecycle;
mod list;
mod progress;
mod terminal;
mod version;

use std::io;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::exec::{ExecOptions, TtyMode};
use crate::format::OutputFormat;
use crate::lifecycle::FailuresReported;

#[derive(Parser)]
#[command(name = "sysc", version, about = "Manage system containers run by syscd")]
struct Cli {
    /// The daemon's socket
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
    /// List containers
    #[command(visible_alias = "ls")]
    List(FormatArgs),
    /// Show one container in detail
    Info {
        /// Container to show
        #[arg(value_name = "NAME")]
        name: String,
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
    /// Show the client's and the daemon's versions
    Version,
}

#[derive(Subcommand)]
enum TemplateCommand {
    /// List the templates the daemon knows
    #[command(visible_alias = "ls")]
    List(FormatArgs),
}

#[derive(Subcommand)]
enum ImageCommand {
    /// List cached images
    #[command(visible_alias = "ls")]
    List(FormatArgs),
    /// Delete a cached image
    #[command(visible_alias = "rm")]
    Delete {
        /// A fingerprint or a unique prefix of one (at least 4 characters)
        fingerprint: String,
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
    /// ones for stop and restart
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
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    format: OutputFormat,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
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
    // Connecting first keeps each arm short; `version` alone takes a failure as an answer.
    let daemon = connect::connect(&cli.socket).await;
    let done = match cli.command {
        // A command's exit status becomes ours.
        Command::Exec(args) => return exec::exec(daemon?, args.into()).await,
        Command::Shell { name } => return exec::shell(daemon?, name).await,
        Command::Console { name, show_log: true } => console::show_log(daemon?, name).await,
        Command::Console { name, show_log: false } => console::attach(daemon?, name).await,
        Command::Version => version::show(daemon).await,
        Command::Create(args) => lifecycle::create(daemon?, args.into_request(false)).await,
        Command::Launch(args) => lifecycle::create(daemon?, args.into_request(true)).await,
        Command::Start(targets) => lifecycle::start(daemon?, targets.into()).await,
        Command::Stop { targets, shutdown } => lifecycle::stop(daemon?, targets.into(), shutdown.into()).await,
        Command::Restart { targets, shutdown } => lifecycle::restart(daemon?, targets.into(), shutdown.into()).await,
        Command::Delete { names, force } => lifecycle::delete(daemon?, names, force).await,
        Command::Rename { name, new_name } => lifecycle::rename(daemon?, name, new_name).await,
        Command::List(arg) => list::show(daemon?, arg.format).await,
        Command::Info { name } => info::show(daemon?, name).await,
        Command::Template {
            command: TemplateCommand::List(arg),
        } => images::list_templates(daemon?, arg.format).await,
        Command::Image { command } => match command {
            ImageCommand::List(arg) => images::list_images(daemon?, arg.format).await,
            ImageCommand::Delete { fingerprint } => images::delete_image(daemon?, fingerprint).await,
        },
    };
    done.map(|()| ExitCode::SUCCESS)
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
    }
}
