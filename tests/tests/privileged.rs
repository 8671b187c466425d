//! Privileged containers (security.privileged=true) are flagged wherever a user looks:
//! a warning when one is made, `list` and `info`.

use sysc_tests::Daemon;

const WARNING: &str = "root inside it is root on the host; use it only for trusted workloads";

#[test]
fn privileged_containers_are_warned_about_and_flagged() {
    let d = Daemon::start();
    let privileged = d.sysc(&["launch", "busybox", "p1", "-c", "security.privileged=true"]);
    assert!(privileged.success(), "{}\n{}", privileged.stderr, d.log());
    assert!(
        privileged
            .stderr
            .contains(&format!("warning: container p1 is privileged: {WARNING}")),
        "{}",
        privileged.stderr
    );
    let plain = d.sysc(&["create", "busybox", "u1"]);
    assert!(plain.success(), "{}\n{}", plain.stderr, d.log());
    assert!(!plain.stderr.contains("warning"), "{}", plain.stderr);

    assert_eq!(d.container("p1")["privileged"], true);
    assert_eq!(d.container("u1")["privileged"], false);

    let table = d.ok(&["list"]);
    let row = |name: &str| {
        table
            .lines()
            .find(|line| line.contains(&format!(" {name} ")))
            .unwrap_or_else(|| panic!("{name} missing from\n{table}"))
            .to_string()
    };
    assert!(row("p1").contains("RUNNING (PRIVILEGED)"), "{table}");
    assert!(
        row("u1").contains("STOPPED") && !row("u1").contains("PRIVILEGED"),
        "{table}"
    );
    // CSV keeps the bare state for scripts; the TYPE column (as in Incus) carries the mark.
    let csv = d.ok(&["list", "--format", "csv", "--columns", "nst"]);
    assert!(csv.contains("p1,RUNNING,CONTAINER (PRIVILEGED)\n"), "{csv}");
    assert!(csv.contains("u1,STOPPED,CONTAINER\n"), "{csv}");

    let info = d.ok(&["info", "p1"]);
    assert!(
        info.contains("Privileged:  yes (root in the container is root on the host)"),
        "{info}"
    );
    let info = d.ok(&["info", "u1"]);
    assert!(info.contains("Privileged:  no\n"), "{info}");
}
