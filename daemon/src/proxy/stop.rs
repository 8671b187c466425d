//! Stopping a proxy helper that this daemon, or an earlier one, started. All we have is
//! a PID, which may have been reused since: so a pidfd is opened first, and only then is
//! the PID's command line checked. Signals go through the pidfd, so they reach the process
//! that was checked or nobody.

use std::path::Path;
use std::time::Duration;

use crate::pidfd;

/// How long the proxy gets to exit after SIGTERM before it is killed.
const GRACE: Duration = Duration::from_secs(5);

/// Ends the proxy for `device` of `container` running as `pid`: SIGTERM, then SIGKILL if
/// it is still there after 5 s. Returns false when no such proxy was running (the PID is
/// gone, or belongs to another process now). Blocks until the proxy is gone.
pub fn stop(pid: u32, container: &str, device: &str) -> bool {
    stop_within(pid, container, device, GRACE)
}

fn stop_within(pid: u32, container: &str, device: &str, grace: Duration) -> bool {
    match pidfd::open_checked(pid, |args| is_proxy_for(args, container, device)) {
        Some(pidfd) => {
            if !pidfd::terminate(&pidfd, grace) {
                tracing::warn!(pid, container, device, "proxy still running after SIGKILL");
            }
            true
        }
        None => false,
    }
}

/// Whether a command line is that of sysc-proxy serving `device` of `container`.
fn is_proxy_for(args: &[String], container: &str, device: &str) -> bool {
    let Some((program, args)) = args.split_first() else {
        return false;
    };
    Path::new(program).file_name() == Some("sysc-proxy".as_ref())
        && option_value(args, "--container") == Some(container)
        && option_value(args, "--device") == Some(device)
}

/// The value of `--name VALUE` or `--name=VALUE`.
fn option_value<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter().enumerate().find_map(|(i, arg)| {
        if arg == name {
            args.get(i + 1).map(String::as_str)
        } else {
            arg.strip_prefix(name).and_then(|rest| rest.strip_prefix('='))
        }
    })
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::CommandExt;
    use std::process::{Child, Command};

    use super::*;

    fn cmdline(args: &[&str]) -> Vec<String> {
        args.iter().map(|a| a.to_string()).collect()
    }

    fn raw(args: &[&str]) -> Vec<u8> {
        args.iter().flat_map(|a| a.bytes().chain([0])).collect()
    }

    #[test]
    fn recognises_the_proxy_for_a_device() {
        let args = [
            "/usr/lib/sysc/sysc-proxy",
            "--container",
            "web",
            "--device",
            "http",
            "--monitor-socket",
            "/run/sysc/web/monitor.sock",
            "--listen",
            "tcp:0.0.0.0:80",
            "--connect",
            "tcp:127.0.0.1:80",
        ];
        assert!(is_proxy_for(&cmdline(&args), "web", "http"));
        assert!(is_proxy_for(
            &cmdline(&["sysc-proxy", "--device=http", "--container=web"]),
            "web",
            "http"
        ));
    }

    #[test]
    fn refuses_other_devices_containers_and_programs() {
        let proxy = ["sysc-proxy", "--container", "web", "--device", "http"];
        assert!(!is_proxy_for(&cmdline(&proxy), "web", "https"));
        assert!(!is_proxy_for(&cmdline(&proxy), "db", "http"));
        assert!(!is_proxy_for(&cmdline(&proxy), "we", "http"));
        assert!(!is_proxy_for(
            &cmdline(&["/usr/bin/sysc-proxy-old", "--container", "web", "--device", "http"]),
            "web",
            "http"
        ));
        assert!(!is_proxy_for(
            &cmdline(&["sysc-proxy", "--container", "--device", "http"]),
            "web",
            "http"
        ));
        assert!(!is_proxy_for(
            &cmdline(&["sysc-proxy", "--container", "web"]),
            "web",
            "http"
        ));
        assert!(!is_proxy_for(&[], "web", "http"));
    }

    /// A shell that /proc shows as `sysc-proxy --container web --device http`.
    fn fake_proxy(script: &str) -> Child {
        let child = Command::new("sh")
            .arg0("sysc-proxy")
            .args(["-c", script, "--container", "web", "--device", "http"])
            .spawn()
            .unwrap();
        // Until the shell has exec'd, /proc shows the test binary's command line.
        let expected = raw(&["sysc-proxy", "-c", script, "--container", "web", "--device", "http"]);
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while std::fs::read(format!("/proc/{}/cmdline", child.id())).unwrap_or_default() != expected {
            assert!(std::time::Instant::now() < deadline, "the fake proxy did not start");
            std::thread::sleep(Duration::from_millis(5));
        }
        child
    }

    fn is_running(child: &mut Child) -> bool {
        child.try_wait().unwrap().is_none()
    }

    #[test]
    fn stops_a_running_proxy() {
        let mut child = fake_proxy("while :; do sleep 0.05; done");
        assert!(stop(child.id(), "web", "http"));
        let status = child.wait().unwrap();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(libc::SIGTERM)
        );
    }

    #[test]
    fn kills_a_proxy_that_ignores_sigterm() {
        let mut child = fake_proxy("trap '' TERM; while :; do sleep 0.05; done");
        assert!(stop_within(child.id(), "web", "http", Duration::from_millis(200)));
        let status = child.wait().unwrap();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(libc::SIGKILL)
        );
    }

    #[test]
    fn leaves_another_process_alone() {
        let mut child = fake_proxy("while :; do sleep 0.05; done");
        assert!(!stop(child.id(), "web", "https"));
        assert!(!stop(child.id(), "db", "http"));
        assert!(is_running(&mut child));
        child.kill().unwrap();
        child.wait().unwrap();
    }

    #[test]
    fn reports_a_proxy_already_gone() {
        let mut child = Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(!stop(pid, "web", "http"));
        assert!(!stop(0, "web", "http"));
        assert!(!stop(u32::MAX, "web", "http"));
    }
}
