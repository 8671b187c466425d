//! One command line driving three daemons, each a host of its own (its own network
//! namespace, root, address and certificate): enrolment by token, containers launched
//! and used on each, and the refusals a stranger or a wrong server meets.

use sysc_tests::{Client, Fleet, token_of};

#[test]
fn one_client_enrols_with_three_hosts_and_drives_each() {
    let fleet = Fleet::new(3);
    let admin = Client::new();
    for (i, host) in fleet.hosts.iter().enumerate() {
        let issued = host.daemon.ok(&["config", "trust", "add", "admin"]);
        assert!(
            issued.contains(&host.endpoint()),
            "the token names the host's address: {issued}"
        );
        admin.ok(&["remote", "add", &format!("h{i}"), &token_of(&issued)]);
    }
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

    // A removed certificate is refused at once on that host only.
    fleet.hosts[2].daemon.ok(&["config", "trust", "remove", "admin"]);
    let err = admin.fails(&["list", "h2:"]);
    assert!(err.contains("not trusted"), "{err}");
    admin.ok(&["list", "h1:"]);
}
