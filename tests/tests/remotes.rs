//! Remotes over TLS: a daemon listening on core.https_address, clients that enrol with
//! a token or are trusted by certificate, and each refusal a stranger meets.

use std::path::{Path, PathBuf};
use std::process::Command;

use sysc_tests::{Client, Daemon, Terminal, plaintext_call, token_of};

/// A free port on the loopback, for this test's listener.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The daemon listening with TLS on the loopback; its address.
fn listen(d: &Daemon) -> String {
    let address = format!("127.0.0.1:{}", free_port());
    d.ok(&["config", "set", "core.https_address", &address]);
    address
}

fn fingerprint(path: &Path) -> String {
    let pem = std::fs::read_to_string(path).unwrap();
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64_decode(&body);
    let digest = Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(&der)?;
            child.wait_with_output()
        })
        .unwrap();
    String::from_utf8_lossy(&digest.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

fn base64_decode(text: &str) -> Vec<u8> {
    let output = Command::new("base64")
        .arg("-d")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(text.as_bytes())?;
            child.wait_with_output()
        })
        .unwrap();
    output.stdout
}

#[test]
fn a_client_enrolled_by_token_drives_the_daemon_over_tls() {
    let d = Daemon::start();
    let address = listen(&d);
    let shown = d.ok(&["config", "show"]);
    assert!(shown.contains(&address), "{shown}");

    let token = token_of(&d.ok(&["config", "trust", "add", "laptop"]));
    let tokens = d.ok(&["config", "trust", "list-tokens"]);
    assert!(tokens.contains("laptop") && tokens.contains(&address), "{tokens}");

    let laptop = Client::new();
    let added = laptop.ok(&["remote", "add", "r1", &token]);
    assert!(added.contains("r1"), "{added}");
    let trusted = d.ok(&["config", "trust", "list"]);
    assert!(trusted.contains("laptop"), "{trusted}");
    assert!(
        trusted.contains(&fingerprint(&laptop.certificate())[..12]),
        "the laptop's own certificate is trusted: {trusted}"
    );
    assert!(
        !d.ok(&["config", "trust", "list-tokens"]).contains("laptop"),
        "the token is used up"
    );

    laptop.ok(&["launch", "busybox", "r1:c1"]);
    let listed = laptop.ok(&["list", "r1:", "--format", "json"]);
    assert!(listed.contains("\"c1\""), "{listed}");
    assert_eq!(laptop.ok(&["exec", "r1:c1", "--", "hostname"]).trim(), "c1");
    let file = laptop.dir.path().join("hello");
    std::fs::write(&file, b"over tls\n").unwrap();
    laptop.ok(&["file", "push", file.to_str().unwrap(), "r1:c1/tmp/hello"]);
    assert_eq!(d.ok(&["exec", "c1", "--", "cat", "/tmp/hello"]), "over tls\n");

    // The default remote applies to names without a prefix.
    laptop.ok(&["remote", "switch", "r1"]);
    assert!(laptop.ok(&["list"]).contains("c1"));

    // The listener and the trust store outlive a daemon restart.
    let mut d = d;
    d.restart();
    assert!(laptop.ok(&["list"]).contains("c1"));

    // A token works once.
    let thief = Client::new();
    let err = thief.fails(&["remote", "add", "r1", &token]);
    assert!(err.contains("not valid"), "{err}");
    let trusted = d.ok(&["config", "trust", "list"]);
    assert!(!trusted.contains(&fingerprint(&thief.certificate())[..12]), "{trusted}");
}

#[test]
fn strangers_revoked_clients_and_wrong_servers_are_refused() {
    let d = Daemon::start();
    let address = listen(&d);

    // Accepting the server's certificate is not being trusted by it.
    let ci = Client::new();
    ci.ok(&[
        "remote",
        "add",
        "r",
        &format!("https://{address}"),
        "--accept-certificate",
    ]);
    let err = ci.fails(&["list", "r:"]);
    assert!(err.contains("not trusted"), "{err}");

    // Trusted by its certificate file, it may; removed, it may not, at once.
    d.ok(&[
        "config",
        "trust",
        "add-certificate",
        ci.certificate().to_str().unwrap(),
        "--name",
        "ci",
    ]);
    ci.ok(&["list", "r:"]);
    d.ok(&["config", "trust", "remove", "ci"]);
    let err = ci.fails(&["list", "r:"]);
    assert!(err.contains("not trusted"), "{err}");

    // A revoked token enrols nobody.
    let token = token_of(&d.ok(&["config", "trust", "add", "later"]));
    d.ok(&["config", "trust", "revoke-token", "later"]);
    let late = Client::new();
    let err = late.fails(&["remote", "add", "r", &token]);
    assert!(err.contains("not valid"), "{err}");

    // A server whose certificate is not the pinned one is not talked to.
    let other = Daemon::start();
    let other_address = listen(&other);
    let pinned = ci.config_dir().join("config.yaml");
    let config = std::fs::read_to_string(&pinned).unwrap();
    std::fs::write(&pinned, config.replace(&address, &other_address)).unwrap();
    let err = ci.fails(&["list", "r:"]);
    assert!(err.contains("not the pinned"), "{err}");

    // A plaintext client on the TLS port gets nowhere; the daemon goes on serving.
    assert!(plaintext_call(&address).is_err(), "a plaintext call was answered");
    d.ok(&["list"]);
}

#[test]
fn shell_and_console_work_over_tls_as_they_do_locally() {
    let wait = std::time::Duration::from_secs(20);
    let d = Daemon::start();
    listen(&d);
    d.ok(&["launch", "busybox", "c"]);
    let client = Client::new();
    client.ok(&[
        "remote",
        "add",
        "r",
        &token_of(&d.ok(&["config", "trust", "add", "client"])),
    ]);

    let mut shell = Terminal::spawn(client.command(&["shell", "r:c"]), 30, 100);
    shell.send("echo $((6*7)); stty size\r");
    shell.expect("42", wait);
    shell.expect("30 100", wait);
    shell.resize(40, 120);
    std::thread::sleep(std::time::Duration::from_millis(300));
    shell.send("stty size\r");
    shell.expect("40 120", wait);
    shell.send("exit 3\r");
    assert_eq!(shell.wait(wait), 3);

    let mut console = Terminal::spawn(client.command(&["console", "r:c"]), 24, 80);
    console.send("\r");
    console.expect("c login:", wait);
    console.send("root\r");
    console.expect("#", wait);
    console.send("echo console-$((40+2))\r");
    console.expect("console-42", wait);
    console.send("\x01q");
    assert_eq!(console.wait(wait), 0);
}

#[test]
fn a_removed_certificate_is_refused_on_a_connection_that_stays_open() {
    let d = Daemon::start();
    let address = listen(&d);
    let client = Client::new();
    client.ok(&[
        "remote",
        "add",
        "r",
        &token_of(&d.ok(&["config", "trust", "add", "kept-open"])),
    ]);
    let read = |path: PathBuf| std::fs::read_to_string(path).unwrap();
    let identity = tonic::transport::Identity::from_pem(
        read(client.config_dir().join("client.crt")),
        read(client.config_dir().join("client.key")),
    );
    let server = tonic::transport::Certificate::from_pem(read(d.root.join("server.crt")));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut api = runtime.block_on(async {
        let tls = tonic::transport::ClientTlsConfig::new()
            .identity(identity)
            .ca_certificate(server)
            .domain_name("localhost");
        let channel = tonic::transport::Endpoint::from_shared(format!("https://{address}"))
            .unwrap()
            .tls_config(tls)
            .unwrap()
            .connect()
            .await
            .unwrap();
        sysc_proto::v1::server_client::ServerClient::new(channel)
    });
    let call = |api: &mut sysc_proto::v1::server_client::ServerClient<tonic::transport::Channel>| {
        runtime.block_on(api.info(sysc_proto::v1::ServerInfoRequest {}))
    };
    call(&mut api).expect("trusted: the call is answered");
    d.ok(&["config", "trust", "remove", "kept-open"]);
    let refused = call(&mut api).expect_err("the next call on the same connection is refused");
    assert_eq!(refused.code(), tonic::Code::PermissionDenied, "{refused:?}");
    assert!(refused.message().contains("not trusted"), "{refused:?}");
}

#[test]
fn removing_a_certificate_ends_its_streaming_calls() {
    let d = Daemon::start();
    listen(&d);
    d.ok(&["launch", "busybox", "c"]);
    let client = Client::new();
    client.ok(&[
        "remote",
        "add",
        "r",
        &token_of(&d.ok(&["config", "trust", "add", "streaming"])),
    ]);
    let session = client
        .command(&["exec", "r:c", "--", "sleep", "600"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let running = sysc_tests::wait_until(std::time::Duration::from_secs(20), || {
        d.ok(&["exec", "c", "--", "ps"]).contains("sleep 600").then_some(())
    });
    assert!(running.is_some(), "the remote exec never ran");

    d.ok(&["config", "trust", "remove", "streaming"]);
    let pid = session.id();
    let ended = sysc_tests::wait_until(std::time::Duration::from_secs(10), || {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map_or(true, |stat| stat.contains(") Z "))
            .then_some(())
    });
    assert!(ended.is_some(), "the exec of a removed certificate went on");
    let out = session.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("was removed from the server's trust store"),
        "{err}"
    );
    let gone = sysc_tests::wait_until(std::time::Duration::from_secs(10), || {
        (!d.ok(&["exec", "c", "--", "ps"]).contains("sleep 600")).then_some(())
    });
    assert!(gone.is_some(), "its command kept running");
}
