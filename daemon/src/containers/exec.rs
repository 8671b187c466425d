//! exec: a command in a running container, through the `sysc-exec` helper.

use std::collections::BTreeMap;
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::Stdio;
use std::sync::Arc;

use tokio::io::unix::AsyncFd;
use tokio::process::{Child, ChildStderr, ChildStdin, ChildStdout};

use super::helper_process;
use super::seqpacket::SeqPacket;
use super::{Live, Manager};
use crate::error::{Error, Result};
use crate::exec::messages::{Fault, FromHelper};
use crate::exec::spec::MAX_SPEC_BYTES;
use crate::exec::{ExecSpec, WindowSize};
use crate::keys::ENVIRONMENT_PREFIX;
use crate::rootfs_files;

/// Output pipes this large let a fast writer hand over a megabyte per read instead of
/// 64 KiB, which is what bounds exec's throughput (per-message cost).
const PIPE_SIZE: libc::c_int = 1 << 20;

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

#[derive(Debug, Clone, Default)]
pub struct ExecParams {
    pub name: String,
    pub command: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub cwd: Option<String>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub tty: Option<WindowSize>,
    pub term: String,
}

/// Where the command's input and output go.
pub enum ExecIo {
    Pipes {
        stdin: ChildStdin,
        stdout: ChildStdout,
        stderr: ChildStderr,
    },
    /// The master of the command's pty (nonblocking).
    Pty(AsyncFd<OwnedFd>),
}

/// A running command. Dropping the control socket (or sending `kill`) makes the helper
/// kill the command and everything it started.
pub struct ExecSession {
    pub pid: i32,
    pub host_pid: i32,
    pub io: ExecIo,
    pub control: Arc<SeqPacket>,
    pub helper: Child,
}

/// A user from the container's /etc/passwd.
#[derive(Debug, Clone, PartialEq, Eq)]
struct User {
    name: String,
    gid: u32,
    home: String,
}

impl Manager {
    pub async fn exec(&self, params: ExecParams) -> Result<ExecSession> {
        let name = params.name.clone();
        let record = self.record(&name)?;
        match self.probe(&name).await {
            Live::Running { frozen: false, .. } => {}
            Live::Running { frozen: true, .. } => {
                return Err(Error::FailedPrecondition(format!(
                    "container {name} is paused; resume it first"
                )));
            }
            _ => return Err(Error::FailedPrecondition(format!("container {name} is not running"))),
        }
        if params.command.is_empty() || params.command[0].is_empty() {
            return Err(Error::InvalidArgument("no command given".into()));
        }
        if let Some(cwd) = &params.cwd
            && !cwd.starts_with('/')
        {
            return Err(Error::InvalidArgument(format!("cwd {cwd} is not an absolute path")));
        }
        let uid = params.uid.unwrap_or(0);
        if let Some(idmap) = record.idmap() {
            for (what, id) in [("uid", Some(uid)), ("gid", params.gid)] {
                if let Some(id) = id
                    && id >= idmap.size
                {
                    return Err(Error::InvalidArgument(format!(
                        "{what} {id} is outside the container's id range 0-{}",
                        idmap.size - 1
                    )));
                }
            }
        }
        let rootfs = crate::storage::volume_rootfs(&self.volume_of(&record)?);
        let passwd = rootfs_files::read(&rootfs, "/etc/passwd", 1 << 20).unwrap_or_default();
        let user = find_user(&String::from_utf8_lossy(&passwd), uid);
        let env = environment(&record.config, &params, uid, user.as_ref())?;
        let spec = ExecSpec {
            container: name.clone(),
            monitor_socket: self.settings.monitor_socket(&name),
            cgroup: self.settings.cgroup.clone(),
            userns: record.idmap().is_some(),
            argv: params.command.clone(),
            env,
            cwd: params.cwd.clone(),
            home: home(uid, user.as_ref()),
            uid,
            gid: params.gid.or(user.as_ref().map(|u| u.gid)).unwrap_or(0),
            tty: params.tty,
            security: super::security::policy(&record.config)?,
        };
        self.start_helper(spec).await
    }

    async fn start_helper(&self, spec: ExecSpec) -> Result<ExecSession> {
        let encoded = serde_json::to_vec(&spec).map_err(|e| Error::internal("encode the exec spec", e))?;
        if encoded.len() > MAX_SPEC_BYTES {
            return Err(Error::InvalidArgument("command and environment are too large".into()));
        }
        let stdio = || {
            if spec.tty.is_some() {
                Stdio::null()
            } else {
                Stdio::piped()
            }
        };
        let (mut helper, control) =
            helper_process::spawn(&self.settings.exec_exe, [stdio(), stdio(), stdio()], &encoded).await?;

        let (message, mut fds) = control
            .recv()
            .await
            .map_err(|e| Error::internal("read the exec helper", e))?;
        let started = FromHelper::decode(&String::from_utf8_lossy(&message));
        let (pid, host_pid) = match started {
            Some(FromHelper::Started { pid, host_pid }) => (pid, host_pid),
            Some(FromHelper::Error { fault, message }) => {
                let _ = helper.wait().await;
                return Err(match fault {
                    Fault::Request => Error::InvalidArgument(message),
                    Fault::State => Error::FailedPrecondition(message),
                    Fault::Host => Error::Internal(format!("exec in {}: {message}", spec.container)),
                });
            }
            _ => {
                let _ = helper.wait().await;
                return Err(Error::Internal(format!(
                    "exec in {}: the helper ended without starting the command",
                    spec.container
                )));
            }
        };
        let io = if spec.tty.is_some() {
            let master = fds
                .pop()
                .ok_or_else(|| Error::Internal("the exec helper sent no pty".into()))?;
            set_nonblocking(&master)?;
            ExecIo::Pty(super::seqpacket::register(master).map_err(|e| Error::internal("watch the pty", e))?)
        } else {
            let (stdout, stderr) = (
                helper.stdout.take().expect("stdout is piped"),
                helper.stderr.take().expect("stderr is piped"),
            );
            for pipe in [stdout.as_raw_fd(), stderr.as_raw_fd()] {
                // SAFETY: F_SETPIPE_SZ on a pipe we own; failure only means smaller reads.
                unsafe { libc::fcntl(pipe, libc::F_SETPIPE_SZ, PIPE_SIZE) };
            }
            ExecIo::Pipes {
                stdin: helper.stdin.take().expect("stdin is piped"),
                stdout,
                stderr,
            }
        };
        Ok(ExecSession {
            pid,
            host_pid,
            io,
            control: Arc::new(control),
            helper,
        })
    }
}

fn set_nonblocking(fd: &OwnedFd) -> Result<()> {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    let flags = fcntl(fd, FcntlArg::F_GETFL).map_err(|e| Error::internal("pty flags", e))?;
    fcntl(
        fd,
        FcntlArg::F_SETFL(OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK),
    )
    .map_err(|e| Error::internal("pty flags", e))?;
    Ok(())
}

fn find_user(passwd: &str, uid: u32) -> Option<User> {
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        if fields.len() < 7 || fields[2].parse::<u32>().ok()? != uid {
            return None;
        }
        Some(User {
            name: fields[0].to_string(),
            gid: fields[3].parse().ok()?,
            home: fields[5].to_string(),
        })
    })
}

fn home(uid: u32, user: Option<&User>) -> String {
    match user {
        Some(user) if !user.home.is_empty() => user.home.clone(),
        _ if uid == 0 => "/root".into(),
        _ => "/".into(),
    }
}

/// PATH, HOME, USER, LANG, TERM (tty only), the container's environment.* keys, then
/// what the client asked for, each overriding what came before.
fn environment(
    config: &BTreeMap<String, String>,
    params: &ExecParams,
    uid: u32,
    user: Option<&User>,
) -> Result<Vec<String>> {
    let mut env = BTreeMap::new();
    env.insert("PATH".to_string(), DEFAULT_PATH.to_string());
    env.insert("HOME".into(), home(uid, user));
    env.insert("LANG".into(), "C.UTF-8".into());
    if let Some(user) = user {
        env.insert("USER".into(), user.name.clone());
        env.insert("LOGNAME".into(), user.name.clone());
    }
    if params.tty.is_some() {
        let term = if params.term.is_empty() { "xterm" } else { &params.term };
        env.insert("TERM".into(), term.to_string());
    }
    for (key, value) in config {
        if let Some(name) = key.strip_prefix(ENVIRONMENT_PREFIX) {
            env.insert(name.to_string(), value.clone());
        }
    }
    for (key, value) in &params.env {
        if key.is_empty() || key.contains('=') || key.contains('\0') || value.contains('\0') {
            return Err(Error::InvalidArgument(format!("invalid environment variable {key:?}")));
        }
        env.insert(key.clone(), value.clone());
    }
    Ok(env.into_iter().map(|(k, v)| format!("{k}={v}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/bash\nwww-data:x:33:33:www-data:/var/www:/usr/sbin/nologin\n";

    #[test]
    fn users_come_from_the_containers_passwd() {
        let www = find_user(PASSWD, 33).unwrap();
        assert_eq!(www.gid, 33);
        assert_eq!(home(33, Some(&www)), "/var/www");
        assert_eq!(find_user(PASSWD, 1000), None);
        assert_eq!(home(1000, None), "/");
        assert_eq!(home(0, None), "/root");
    }

    #[test]
    fn environment_layers_override_in_order() {
        let config = BTreeMap::from([
            ("environment.EDITOR".to_string(), "vi".to_string()),
            ("environment.LANG".to_string(), "de_DE.UTF-8".to_string()),
            ("boot.autostart".to_string(), "true".to_string()),
        ]);
        let params = ExecParams {
            env: BTreeMap::from([("EDITOR".to_string(), "nano".to_string())]),
            tty: Some(WindowSize { rows: 24, cols: 80 }),
            ..Default::default()
        };
        let root = find_user(PASSWD, 0);
        let env = environment(&config, &params, 0, root.as_ref()).unwrap();
        for expected in [
            "EDITOR=nano",
            "LANG=de_DE.UTF-8",
            "HOME=/root",
            "USER=root",
            "TERM=xterm",
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        ] {
            assert!(env.iter().any(|e| e == expected), "{expected} missing from {env:?}");
        }
        assert!(!env.iter().any(|e| e.starts_with("boot.")));
        let no_tty = environment(&config, &ExecParams::default(), 0, None).unwrap();
        assert!(!no_tty.iter().any(|e| e.starts_with("TERM=")));
    }

    #[test]
    fn bad_variable_names_are_refused() {
        let params = ExecParams {
            env: BTreeMap::from([("A=B".to_string(), "x".to_string())]),
            ..Default::default()
        };
        assert!(environment(&BTreeMap::new(), &params, 0, None).is_err());
    }
}
