//! Keeps a network's dnsmasq running: when it dies, it is started again, with a growing
//! pause between attempts while it keeps failing.

use std::os::fd::OwnedFd;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::dnsmasq;

const FIRST_PAUSE: Duration = Duration::from_millis(200);
const LONGEST_PAUSE: Duration = Duration::from_secs(30);

pub struct Supervisor {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl Supervisor {
    /// Watches the dnsmasq behind `pidfd`.
    pub fn spawn(network: &str, args: Vec<String>, paths: dnsmasq::Paths, pidfd: OwnedFd) -> Self {
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(watch(network.to_string(), args, paths, pidfd, stopped));
        Self { stop, task }
    }

    /// Stops watching (dnsmasq itself keeps running).
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

async fn watch(
    network: String,
    args: Vec<String>,
    paths: dnsmasq::Paths,
    pidfd: OwnedFd,
    mut stopped: oneshot::Receiver<()>,
) {
    let mut pidfd = Some(pidfd);
    let mut pause = FIRST_PAUSE;
    loop {
        if let Some(fd) = pidfd.take() {
            let Ok(exited) = crate::pidfd::watch(fd) else {
                tracing::warn!(network, "cannot watch dnsmasq");
                return;
            };
            tokio::select! {
                _ = exited.readable() => {}
                _ = &mut stopped => return,
            }
            tracing::warn!(network, "dnsmasq exited; starting it again");
        }
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = &mut stopped => return,
        }
        let (args, paths) = (args.clone(), paths.clone());
        match tokio::task::spawn_blocking(move || dnsmasq::start(&args, &paths)).await {
            Ok(Ok((pid, fd))) => {
                tracing::info!(network, pid, "dnsmasq running again");
                pidfd = Some(fd);
                pause = FIRST_PAUSE;
            }
            Ok(Err(e)) => {
                tracing::warn!(network, "starting dnsmasq again: {e}");
                pause = (pause * 2).min(LONGEST_PAUSE);
            }
            Err(e) => {
                tracing::warn!(network, "dnsmasq task: {e}");
                return;
            }
        }
    }
}
