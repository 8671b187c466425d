//! Verbs that change containers: create and launch, start, stop, restart, pause, resume,
//! delete, rename.

use std::collections::HashSet;
use std::fmt;

use anyhow::anyhow;
use sysc_proto::v1::containers_client::ContainersClient;
use sysc_proto::v1::create_event::Event;
use sysc_proto::v1::{
    ContainerState, CreateRequest, DeleteRequest, PauseRequest, RenameRequest, RestartRequest, ResumeRequest,
    StartRequest, StopRequest,
};
use tokio::task::JoinSet;
use tonic::Status;
use tonic::transport::Channel;

use crate::connect::rpc_error;
use crate::format;
use crate::list;
use crate::progress::Progress;

/// Returned once every failure of a batch has been printed, so main only sets the exit code.
#[derive(Debug)]
pub struct FailuresReported;

impl fmt::Display for FailuresReported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("some requests failed")
    }
}

impl std::error::Error for FailuresReported {}

/// The containers a batch verb acts on.
pub enum Selection {
    Names(Vec<String>),
    /// Every container in the state the verb starts from (stopped ones for `start`).
    All,
}

pub struct Shutdown {
    pub force: bool,
    /// 0 lets the daemon pick its default.
    pub timeout_seconds: u32,
}

/// A `-c KEY=VALUE` argument. Values may hold '=' themselves, so only the first one splits.
pub fn parse_config_pair(arg: &str) -> Result<(String, String), String> {
    match arg.split_once('=') {
        Some(("", _)) => Err("the key before '=' is empty".to_string()),
        Some((key, value)) => Ok((key.to_string(), value.to_string())),
        None => Err("expected KEY=VALUE".to_string()),
    }
}

pub async fn create(channel: Channel, request: CreateRequest) -> anyhow::Result<()> {
    let done = if request.start { "Launched" } else { "Created" };
    let progress = Progress::new();
    let mut events = ContainersClient::new(channel)
        .create(request)
        .await
        .map_err(rpc_error)?
        .into_inner();
    while let Some(event) = events.message().await.map_err(rpc_error)? {
        match event.event {
            Some(Event::Stage(stage)) => progress.stage(stage),
            Some(Event::TemplateOutput(output)) => progress.template_output(&output.line),
            Some(Event::Created(container)) => {
                // The spinner must be gone before the result shares its terminal.
                drop(progress);
                format::print(&format!("{done} {}\n", container.name))?;
                // The daemon's verdict, not the -c flags: it knows every spelling of true.
                if container.privileged {
                    eprintln!("{}", privileged_warning(&container.name));
                }
                return Ok(());
            }
            // An event kind added to the API after this client was built.
            None => {}
        }
    }
    Err(anyhow!("syscd ended the create stream without reporting the container"))
}

/// Said on every create of a privileged container, so the choice is never made unawares.
fn privileged_warning(name: &str) -> String {
    format!(
        "warning: container {name} is privileged: root inside it is root on the host; \
         use it only for trusted workloads"
    )
}

pub async fn start(channel: Channel, selection: Selection) -> anyhow::Result<()> {
    let batch = Batch::resolve(&channel, selection, &[ContainerState::Stopped]).await?;
    batch
        .run(channel, |mut client, name| async move {
            client.start(StartRequest { name }).await.map(drop)
        })
        .await
}

pub async fn stop(channel: Channel, selection: Selection, shutdown: Shutdown) -> anyhow::Result<()> {
    // A paused container stops too (the daemon thaws it for its halt signal).
    let batch = Batch::resolve(&channel, selection, &[ContainerState::Running, ContainerState::Paused]).await?;
    batch
        .run(channel, |mut client, name| async move {
            let request = StopRequest {
                name,
                force: shutdown.force,
                timeout_seconds: shutdown.timeout_seconds,
            };
            client.stop(request).await.map(drop)
        })
        .await
}

pub async fn restart(channel: Channel, selection: Selection, shutdown: Shutdown) -> anyhow::Result<()> {
    let batch = Batch::resolve(&channel, selection, &[ContainerState::Running, ContainerState::Paused]).await?;
    batch
        .run(channel, |mut client, name| async move {
            let request = RestartRequest {
                name,
                force: shutdown.force,
                timeout_seconds: shutdown.timeout_seconds,
            };
            client.restart(request).await.map(drop)
        })
        .await
}

pub async fn pause(channel: Channel, selection: Selection) -> anyhow::Result<()> {
    let batch = Batch::resolve(&channel, selection, &[ContainerState::Running]).await?;
    batch
        .run(channel, |mut client, name| async move {
            client.pause(PauseRequest { name }).await.map(drop)
        })
        .await
}

pub async fn resume(channel: Channel, selection: Selection) -> anyhow::Result<()> {
    let batch = Batch::resolve(&channel, selection, &[ContainerState::Paused]).await?;
    batch
        .run(channel, |mut client, name| async move {
            client.resume(ResumeRequest { name }).await.map(drop)
        })
        .await
}

pub async fn delete(channel: Channel, names: Vec<String>, force: bool) -> anyhow::Result<()> {
    Batch::named(names)
        .run(channel, |mut client, name| async move {
            client.delete(DeleteRequest { name, force }).await.map(drop)
        })
        .await
}

pub async fn rename(channel: Channel, name: String, new_name: String) -> anyhow::Result<()> {
    ContainersClient::new(channel)
        .rename(RenameRequest { name, new_name })
        .await
        .map_err(rpc_error)?;
    Ok(())
}

/// One request per container, all in flight at once: the daemon serializes per container
/// only, so stopping ten containers takes as long as the slowest, not the sum.
struct Batch {
    names: Vec<String>,
    /// With one name the daemon's message says which container it is about; with several,
    /// the user needs to see which request each message answers.
    name_each_failure: bool,
}

impl Batch {
    /// With --all: every container in one of `all_in_states`.
    async fn resolve(
        channel: &Channel,
        selection: Selection,
        all_in_states: &[ContainerState],
    ) -> anyhow::Result<Self> {
        Ok(match selection {
            Selection::Names(names) => Self::named(names),
            Selection::All => Self {
                names: list::fetch(channel.clone())
                    .await?
                    .into_iter()
                    .filter(|c| all_in_states.iter().any(|s| c.state == *s as i32))
                    .map(|c| c.name)
                    .collect(),
                name_each_failure: true,
            },
        })
    }

    /// Keeps the user's order but drops repeats, which would only fail on the state the
    /// first request left behind.
    fn named(mut names: Vec<String>) -> Self {
        let mut seen = HashSet::new();
        names.retain(|name| seen.insert(name.clone()));
        Self {
            name_each_failure: names.len() > 1,
            names,
        }
    }

    async fn run<F, Fut>(self, channel: Channel, request: F) -> anyhow::Result<()>
    where
        F: Fn(ContainersClient<Channel>, String) -> Fut,
        Fut: Future<Output = Result<(), Status>> + Send + 'static,
    {
        let client = ContainersClient::new(channel);
        let mut tasks = JoinSet::new();
        for (index, name) in self.names.into_iter().enumerate() {
            let call = request(client.clone(), name.clone());
            tasks.spawn(async move { (index, name, call.await) });
        }
        let mut results = tasks.join_all().await;
        // Failures in the order the user named the containers, whatever order they ended in.
        results.sort_by_key(|(index, ..)| *index);

        let failures: Vec<(String, Status)> = results
            .into_iter()
            .filter_map(|(_, name, result)| result.err().map(|status| (name, status)))
            .collect();
        if !self.name_each_failure {
            return match failures.into_iter().next() {
                Some((_, status)) => Err(rpc_error(status)),
                None => Ok(()),
            };
        }
        if failures.is_empty() {
            return Ok(());
        }
        for (name, status) in failures {
            eprintln!("error: {name}: {}", rpc_error(status));
        }
        Err(FailuresReported.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn privileged_warning_names_the_container_and_the_risk() {
        assert_eq!(
            privileged_warning("web1"),
            "warning: container web1 is privileged: root inside it is root on the host; \
             use it only for trusted workloads"
        );
    }

    #[test]
    fn config_pairs_split_at_the_first_equals() {
        assert_eq!(
            parse_config_pair("security.privileged=true"),
            Ok(("security.privileged".to_string(), "true".to_string()))
        );
        assert_eq!(
            parse_config_pair("environment.OPTS=a=b"),
            Ok(("environment.OPTS".to_string(), "a=b".to_string()))
        );
        assert_eq!(
            parse_config_pair("user.note="),
            Ok(("user.note".to_string(), String::new()))
        );
        assert!(parse_config_pair("boot.autostart").is_err());
        assert!(parse_config_pair("=true").is_err());
    }

    #[tokio::test]
    async fn pause_and_resume_all_pick_containers_by_state() {
        use crate::fake_daemon::{Call, FakeDaemon, container};
        let daemon = FakeDaemon::start(vec![
            container("a", ContainerState::Running, &[]),
            container("b", ContainerState::Paused, &[]),
            container("c", ContainerState::Stopped, &[]),
            container("d", ContainerState::Running, &[]),
        ])
        .await;
        let sorted = |mut calls: Vec<Call>| {
            calls.sort_by_key(|call| format!("{call:?}"));
            calls
        };

        resume(daemon.channel.clone(), Selection::All).await.unwrap();
        assert_eq!(daemon.calls(), [Call::Resume("b".into())]);

        pause(daemon.channel.clone(), Selection::All).await.unwrap();
        assert_eq!(
            sorted(daemon.calls()[1..].to_vec()),
            [
                Call::Pause("a".into()),
                Call::Pause("b".into()),
                Call::Pause("d".into())
            ]
        );

        // Named containers are asked whatever their state; the daemon judges.
        let err = pause(daemon.channel.clone(), Selection::Names(vec!["x".into()]))
            .await
            .unwrap_err();
        assert_eq!(err.to_string(), "container x not found");
        let err = pause(daemon.channel.clone(), Selection::Names(vec!["x".into(), "a".into()]))
            .await
            .unwrap_err();
        assert!(err.is::<FailuresReported>());
    }

    #[test]
    fn repeated_names_are_requested_once() {
        let batch = Batch::named(vec!["b".into(), "a".into(), "b".into()]);
        assert_eq!(batch.names, ["b", "a"]);
        assert!(batch.name_each_failure);

        let batch = Batch::named(vec!["web1".into(), "web1".into()]);
        assert_eq!(batch.names, ["web1"]);
        assert!(!batch.name_each_failure);
    }
}
