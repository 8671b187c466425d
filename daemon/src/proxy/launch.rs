//! Starting a proxy helper for one device of a running container, and waiting for it to
//! say whether it is serving.

use std::fs::OpenOptions;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};

use super::address::ProxyAddress;
use super::error::ProxyError;

/// Long enough for a loaded host; the helper only asks the monitor for a pidfd and binds.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a helper that reported an error gets to exit.
const EXIT_WAIT: Duration = Duration::from_secs(1);

/// More than any report the helper writes; a longer one is cut.
const MAX_REPORT_BYTES: u64 = 64 * 1024;

/// Starts `exe` (sysc-proxy) for `device` of `container` and waits until it reports that
/// it serves. Returns its PID; it runs on in a session of its own, outliving the daemon if
/// need be, until the container's init exits or it is `stop`ped. Its log goes to `log`.
pub async fn spawn(
    exe: &Path,
    container: &str,
    device: &str,
    monitor_socket: &Path,
    listen: &ProxyAddress,
    connect: &ProxyAddress,
    log: &Path,
) -> Result<u32, ProxyError> {
    let log_file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|source| ProxyError::Log {
            path: log.to_path_buf(),
            source,
        })?;
    let mut command = Command::new(exe);
    command
        .arg("--container")
        .arg(container)
        .arg("--device")
        .arg(device)
        .arg("--monitor-socket")
        .arg(monitor_socket)
        .arg("--listen")
        .arg(listen.to_string())
        .arg("--connect")
        .arg(connect.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log_file)
        .kill_on_drop(false);
    // SAFETY: setsid(2) is async-signal-safe. A session of its own keeps the proxy clear
    // of the daemon's terminal and of signals sent to the daemon's process group.
    unsafe {
        command.pre_exec(|| nix::unistd::setsid().map(drop).map_err(std::io::Error::from));
    }
    let mut child = command.spawn().map_err(|source| ProxyError::Start {
        exe: exe.to_path_buf(),
        source,
    })?;
    let pid = child.id().expect("a child not yet waited for has a pid");
    let guard = KillIfAbandoned(Some(pid));
    let ready = wait_until_ready(&mut child, log, READY_TIMEOUT).await;
    guard.disarm();
    // Dropping the Child leaves the proxy running; tokio reaps it once it exits.
    ready.map(|()| pid)
}

/// Reads the helper's report. Whatever it is if not `ready`, the helper is gone when this
/// returns.
async fn wait_until_ready(child: &mut Child, log: &Path, limit: Duration) -> Result<(), ProxyError> {
    match tokio::time::timeout(limit, read_report(child)).await {
        Ok(Report::Ready) => Ok(()),
        Ok(Report::Error(message)) => {
            // It exits right after reporting; a helper that doesn't must not hold us up.
            if tokio::time::timeout(EXIT_WAIT, child.wait()).await.is_err() {
                kill(child).await;
            }
            Err(ProxyError::Failed(message))
        }
        Ok(Report::Other(line)) => {
            let status = kill(child).await;
            Err(not_ready(
                log,
                format!("reported \"{line}\" instead of ready and was killed ({status})"),
            ))
        }
        Ok(Report::Nothing) => {
            let status = kill(child).await;
            Err(not_ready(log, format!("exited without reporting ready ({status})")))
        }
        Err(_) => {
            let status = kill(child).await;
            let waited = limit.as_secs_f32();
            Err(not_ready(
                log,
                format!("did not report ready within {waited}s and was killed ({status})"),
            ))
        }
    }
}

fn not_ready(log: &Path, outcome: String) -> ProxyError {
    ProxyError::NotReady {
        outcome,
        log: log.to_path_buf(),
    }
}

/// Kills the helper if `spawn`'s future is dropped before the report came (the daemon's
/// request was cancelled, say): nobody would learn its PID to stop it. Disarmed before the
/// child is dropped or reaped, so the PID is still the helper's when it fires.
struct KillIfAbandoned(Option<u32>);

impl KillIfAbandoned {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for KillIfAbandoned {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

enum Report {
    Ready,
    Error(String),
    /// A line that is neither, which only a mismatched helper would write.
    Other(String),
    /// Stdout closed, or could not be read, without a line.
    Nothing,
}

async fn read_report(child: &mut Child) -> Report {
    let Some(stdout) = child.stdout.take() else {
        return Report::Nothing;
    };
    let mut line = String::new();
    match BufReader::new(stdout.take(MAX_REPORT_BYTES)).read_line(&mut line).await {
        Ok(0) | Err(_) => return Report::Nothing,
        Ok(_) => {}
    }
    let line = line.trim_end_matches('\n');
    if line == "ready" {
        Report::Ready
    } else if let Some(message) = line.strip_prefix("error: ") {
        Report::Error(message.to_string())
    } else {
        Report::Other(line.to_string())
    }
}

/// Kills a helper that did not report (it is still our unreaped child, so its PID can't
/// have been reused) and describes how it ended.
async fn kill(child: &mut Child) -> String {
    let _ = child.start_kill();
    match child.wait().await {
        Ok(status) => status.to_string(),
        Err(e) => format!("wait for it: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use nix::unistd::{Pid, getsid};

    use super::*;

    struct Fixture {
        dir: tempfile::TempDir,
    }

    impl Fixture {
        fn new() -> Self {
            Fixture {
                dir: tempfile::tempdir().unwrap(),
            }
        }

        fn log(&self) -> std::path::PathBuf {
            self.dir.path().join("proxy.log")
        }

        /// A stand-in helper running `body` under sh.
        fn helper(&self, body: &str) -> std::path::PathBuf {
            let exe = self.dir.path().join("sysc-proxy");
            std::fs::write(&exe, format!("#!/bin/sh\n{body}\n")).unwrap();
            std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
            exe
        }

        async fn spawn(&self, body: &str) -> Result<u32, ProxyError> {
            let exe = self.helper(body);
            let listen: ProxyAddress = "tcp:0.0.0.0:8080".parse().unwrap();
            let connect: ProxyAddress = "tcp:127.0.0.1:80".parse().unwrap();
            loop {
                let result = spawn(
                    &exe,
                    "web",
                    "http",
                    Path::new("/run/sysc/web/monitor.sock"),
                    &listen,
                    &connect,
                    &self.log(),
                )
                .await;
                // Another test's fork may briefly hold the script open for writing.
                match result {
                    Err(ProxyError::Start { source, .. }) if source.raw_os_error() == Some(libc::ETXTBSY) => {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                    result => return result,
                }
            }
        }
    }

    fn kill_pid(pid: u32) {
        let _ = nix::sys::signal::kill(Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGKILL);
    }

    #[tokio::test]
    async fn a_ready_helper_runs_on_in_its_own_session() {
        let fixture = Fixture::new();
        std::fs::write(fixture.log(), "earlier\n").unwrap();
        let pid = fixture
            .spawn("echo \"args: $*\" >&2\necho ready\nexec sleep 30")
            .await
            .unwrap();
        assert_eq!(getsid(Some(Pid::from_raw(pid as i32))).unwrap().as_raw(), pid as i32);
        assert_eq!(
            std::fs::read_to_string(fixture.log()).unwrap(),
            "earlier\nargs: --container web --device http --monitor-socket /run/sysc/web/monitor.sock \
             --listen tcp:0.0.0.0:8080 --connect tcp:127.0.0.1:80\n"
        );
        kill_pid(pid);
    }

    #[tokio::test]
    async fn the_helpers_error_is_passed_on() {
        let fixture = Fixture::new();
        let error = fixture
            .spawn("echo 'error: listen on tcp:0.0.0.0:8080: address already in use (os error 98)'\nexit 1")
            .await
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "listen on tcp:0.0.0.0:8080: address already in use (os error 98)"
        );
    }

    #[tokio::test]
    async fn a_helper_that_exits_silently_is_an_error() {
        let fixture = Fixture::new();
        let error = fixture.spawn("exit 3").await.unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "the proxy helper exited without reporting ready (exit status: 3); see {}",
                fixture.log().display()
            )
        );
    }

    #[tokio::test]
    async fn a_helper_that_says_something_else_is_killed() {
        let fixture = Fixture::new();
        let error = fixture.spawn("echo hello\nexec sleep 30").await.unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("the proxy helper reported \"hello\" instead of ready and was killed (signal: 9"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn a_helper_that_never_reports_is_killed() {
        let fixture = Fixture::new();
        let mut child = Command::new("sleep").arg("30").stdout(Stdio::piped()).spawn().unwrap();
        let error = wait_until_ready(&mut child, &fixture.log(), Duration::from_millis(200))
            .await
            .unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("the proxy helper did not report ready within 0.2s and was killed (signal: 9"),
            "{error}"
        );
        assert!(child.try_wait().unwrap().is_some());
    }

    #[tokio::test]
    async fn an_abandoned_start_kills_the_helper() {
        let fixture = Fixture::new();
        let pid_file = fixture.dir.path().join("pid");
        let body = format!("echo $$ > {}\nexec sleep 30", pid_file.display());
        let abandoned = tokio::time::timeout(Duration::from_millis(300), fixture.spawn(&body)).await;
        assert!(abandoned.is_err());
        let pid = std::fs::read_to_string(&pid_file).unwrap();
        let stat = format!("/proc/{}/stat", pid.trim());
        // Killed; at most a zombie until tokio reaps it.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while let Ok(stat) = std::fs::read_to_string(&stat) {
            if stat.rsplit_once(')').is_some_and(|(_, rest)| rest.starts_with(" Z")) {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "the helper still runs: {stat}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[tokio::test]
    async fn a_missing_helper_is_named() {
        let fixture = Fixture::new();
        let address: ProxyAddress = "tcp:127.0.0.1:80".parse().unwrap();
        let exe = fixture.dir.path().join("no-such-proxy");
        let error = spawn(
            &exe,
            "web",
            "http",
            Path::new("/nowhere"),
            &address,
            &address,
            &fixture.log(),
        )
        .await
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "start the proxy helper {}: No such file or directory (os error 2)",
                exe.display()
            )
        );
    }

    #[tokio::test]
    async fn an_unwritable_log_is_named() {
        let address: ProxyAddress = "tcp:127.0.0.1:80".parse().unwrap();
        let log = Path::new("/nonexistent-dir/proxy.log");
        let error = spawn(
            Path::new("/bin/true"),
            "web",
            "http",
            Path::new("/nowhere"),
            &address,
            &address,
            log,
        )
        .await
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "open the proxy log /nonexistent-dir/proxy.log: No such file or directory (os error 2)"
        );
    }
}
