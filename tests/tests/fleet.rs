//! One command line driving three daemons, each a host of its own (its own network
//! namespace, root, address and certificate): enrolment by token, containers launched
//! and used on each, and the refusals a stranger or a wrong server meets.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use sysc_tests::{Client, Fleet, plaintext_call, token_of, wait_until};

#[test]
fn one_client_enrols_with_three_hosts_and_drives_each() {
    let fleet = Fleet::new(3);
    let admin = Client::new();
    let mut tokens = Vec::new();
    for (i, host) in fleet.hosts.iter().enumerate() {
        let issued = host.daemon.ok(&["config", "trust", "add", "admin"]);
        assert!(
            issued.contains(&host.endpoint()),
            "the token names the host's address: {issued}"
        );
        admin.ok(&["remote", "add", &format!("h{i}"), &token_of(&issued)]);
        tokens.push(token_of(&issued));
    }
    let reuser = Client::new();
    let err = reuser.fails(&["remote", "add", "h0", &tokens[0]]);
    assert!(err.contains("not valid"), "a used token enrols nobody else: {err}");
    let remotes = admin.ok(&["remote", "list", "--format", "json"]);
    for host in &fleet.hosts {
        assert!(remotes.contains(&host.endpoint()), "{remotes}");
    }

    for i in 0..fleet.hosts.len() {
        admin.ok(&["launch", "busybox", &format!("h{i}:c{i}")]);
    }
    for (i, host) in fleet.hosts.iter().enumerate() {
        assert_eq!(
            admin.ok(&["exec", &format!("h{i}:c{i}"), "--", "hostname"]).trim(),
            format!("c{i}")
        );
        let names: Vec<String> = host
            .daemon
            .list()
            .iter()
            .map(|c| c["name"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(names, [format!("c{i}")], "each container landed on its own host");
        let listed = admin.ok(&["list", &format!("h{i}:"), "--format", "csv", "--columns", "n"]);
        assert_eq!(
            listed.lines().skip(1).collect::<Vec<_>>(),
            [format!("c{i}")],
            "{listed}"
        );
    }

    let stranger = Client::new();
    let url = format!("https://{}", fleet.hosts[1].endpoint());
    stranger.ok(&["remote", "add", "h1", &url, "--accept-certificate"]);
    let err = stranger.fails(&["list", "h1:"]);
    assert!(err.contains("not trusted"), "{err}");
    let err = stranger.fails(&["exec", "h1:c1", "--", "true"]);
    assert!(err.contains("not trusted"), "{err}");

    // Pinned to h0's certificate, h2's address is refused before anything is sent.
    let config = admin.config_dir().join("config.yaml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replacen(&fleet.hosts[0].endpoint(), &fleet.hosts[2].endpoint(), 1),
    )
    .unwrap();
    let err = admin.fails(&["list", "h0:"]);
    assert!(err.contains("not the pinned"), "{err}");
    std::fs::write(&config, text).unwrap();
    admin.ok(&["list", "h0:"]);

    // Between hosts: a copy of a running container, and a move, watched from the target.
    let mut monitor = admin
        .command(&["monitor", "h1:", "--format", "json", "--type", "lifecycle"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run sysc monitor");
    let (lines, events) = mpsc::channel();
    let stdout = monitor.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    let listening = wait_until(Duration::from_secs(10), || {
        fleet.hosts[1]
            .daemon
            .log()
            .contains("event listener connected")
            .then_some(())
    });
    assert!(listening.is_some(), "the remote monitor did not connect");
    admin.ok(&["exec", "h0:c0", "--", "sh", "-c", "echo from-h0 > /root/mark"]);
    admin.ok(&["copy", "h0:c0", "h1:c0copy"]);
    admin.ok(&["start", "h1:c0copy"]);
    assert_eq!(admin.ok(&["exec", "h1:c0copy", "--", "cat", "/root/mark"]), "from-h0\n");
    assert_eq!(admin.ok(&["exec", "h1:c0copy", "--", "hostname"]).trim(), "c0copy");
    admin.ok(&["move", "h2:c2", "h1:"]);
    assert_eq!(fleet.hosts[2].daemon.list().len(), 0, "moved away from h2");
    assert_eq!(fleet.hosts[1].daemon.state("c2"), "RUNNING", "running again on h1");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    while !seen
        .iter()
        .any(|l: &String| l.contains("container-imported") && l.contains("containers/c2"))
    {
        let left = deadline.saturating_duration_since(Instant::now());
        match events.recv_timeout(left) {
            Ok(line) => seen.push(line),
            Err(_) => panic!("h1's monitor never saw c2 arrive: {seen:#?}"),
        }
    }
    assert!(
        seen.iter()
            .any(|l| l.contains("container-imported") && l.contains("containers/c0copy")),
        "{seen:#?}"
    );
    let _ = monitor.kill();
    let _ = monitor.wait();

    // A plaintext client on a host's TLS port gets no answer.
    assert!(
        plaintext_call(&fleet.hosts[0].endpoint()).is_err(),
        "a plaintext call was answered"
    );

    // A removed certificate is refused at once on that host only.
    fleet.hosts[2].daemon.ok(&["config", "trust", "remove", "admin"]);
    let err = admin.fails(&["list", "h2:"]);
    assert!(err.contains("not trusted"), "{err}");
    admin.ok(&["list", "h1:"]);
}

#[test]
fn an_expired_token_enrols_nobody() {
    let fleet = Fleet::new(1);
    let host = &fleet.hosts[0];
    let token = token_of(&host.daemon.ok(&["config", "trust", "add", "late", "--expiry", "1M"]));
    let issued = Instant::now();
    // The client checks the expiry it was told; the server checks its own record. Past
    // the minute, both refuse.
    std::thread::sleep(Duration::from_secs(61).saturating_sub(issued.elapsed()));
    let client = Client::new();
    let err = client.fails(&["remote", "add", "h", &token]);
    assert!(err.contains("expired"), "the client's own check: {err}");
    // Told a later expiry, the client goes ahead; the server's record decides.
    let mut stretched = sysc_proto::token::EnrolToken::decode(&token).unwrap();
    stretched.expires_at += 3600;
    let err = client.fails(&["remote", "add", "h", &stretched.encode()]);
    assert!(
        err.contains("has expired") || err.contains("not valid"),
        "the server's check: {err}"
    );
    assert!(!host.daemon.ok(&["config", "trust", "list"]).contains("late"));
    assert!(!host.daemon.ok(&["config", "trust", "list-tokens"]).contains("late"));
}
