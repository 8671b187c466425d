//! The API itself: a documented gRPC service on a root-only unix socket, with the
//! standard health service and server reflection (so grpcurl can list and call it).

use std::os::unix::fs::PermissionsExt;

use sysc_tests::Daemon;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

#[tokio::test(flavor = "multi_thread")]
async fn health_reflection_and_a_root_only_socket() {
    let d = Daemon::start();
    let mode = std::fs::metadata(&d.socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the socket is root only");
    for dir in ["db", "disks", "storage-pools"] {
        let mode = std::fs::metadata(d.root.join(dir)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "{dir} is root only");
    }

    let channel = sysc_tests::channel(&d.socket).await;
    let mut health = HealthClient::new(channel.clone());
    for service in ["", "sysc.v1.Containers", "sysc.v1.Images", "sysc.v1.Server"] {
        let status = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .status;
        assert_eq!(status, ServingStatus::Serving as i32, "{service}");
    }

    let mut reflection = ServerReflectionClient::new(channel.clone());
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = reflection
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let response = responses.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("unexpected reflection answer {response:?}");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for service in [
        "sysc.v1.Containers",
        "sysc.v1.Images",
        "sysc.v1.Server",
        "grpc.health.v1.Health",
    ] {
        assert!(names.iter().any(|n| n == service), "{service} not listed: {names:?}");
    }

    // A plain client of the generated API, as a fleet script would write it.
    let mut containers = sysc_proto::v1::containers_client::ContainersClient::new(channel);
    let err = containers
        .get(sysc_proto::v1::GetRequest { name: "ghost".into() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);
    assert_eq!(err.message(), "container ghost not found");
}

/// Start answers with the container as its monitor reported it once the init ran: the
/// same init and start time that Get then shows.
#[tokio::test(flavor = "multi_thread")]
async fn start_answers_with_the_running_container() {
    let d = Daemon::start();
    d.ok(&["create", "busybox", "b1"]);
    let channel = sysc_tests::channel(&d.socket).await;
    let mut containers = sysc_proto::v1::containers_client::ContainersClient::new(channel);
    let started = containers
        .start(sysc_proto::v1::StartRequest { name: "b1".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(started.state, sysc_proto::v1::ContainerState::Running as i32);
    let now = containers
        .get(sysc_proto::v1::GetRequest { name: "b1".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(started.pid, now.pid);
    assert_eq!(started.pid, d.init_pid("b1"));
    assert!(started.started_at.is_some());
    assert_eq!(started.started_at, now.started_at);
    d.ok(&["stop", "--force", "b1"]);
}
