//! Bad input gets a clear error, a non-zero exit, and changes nothing.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use sysc_tests::{Daemon, DaemonOptions};

/// What a user could see change: containers, images, volumes, links.
fn snapshot(d: &Daemon) -> String {
    let list = d.ok(&["list", "--format", "json"]);
    let images = d.ok(&["image", "list", "--format", "json"]);
    let volumes = |dir: &str| {
        let mut names: Vec<String> = std::fs::read_dir(d.pool_dir().join(dir))
            .map(|e| {
                e.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names.join(",")
    };
    let mut links: Vec<String> = std::fs::read_dir(d.root.join("containers"))
        .map(|e| {
            e.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    links.sort();
    format!(
        "{list}\n{images}\n{}\n{}\n{}",
        volumes("containers"),
        volumes("images"),
        links.join(",")
    )
}

#[test]
fn bad_names_are_refused() {
    let d = Daemon::start();
    d.ok(&["create", "busybox", "ok1"]);
    let before = snapshot(&d);
    for name in [
        "1abc",
        "-abc",
        "abc-",
        "a_b",
        "a.b",
        "../../etc",
        "ÄBC",
        &"a".repeat(64),
    ] {
        let err = d.fails(&["create", "busybox", "--", name]);
        assert!(err.contains("invalid container name"), "{name}: {err}");
        let err = d.fails(&["rename", "--", "ok1", name]);
        assert!(err.contains("invalid container name"), "{name}: {err}");
    }
    let err = d.fails(&["create", "busybox", ""]);
    assert!(err.contains("the name is empty"), "{err}");
    assert_eq!(snapshot(&d), before);
}

#[test]
fn duplicates_unknowns_and_wrong_states_are_refused() {
    let d = Daemon::start();
    d.ok(&["create", "busybox", "c1"]);
    let before = snapshot(&d);

    let err = d.fails(&["create", "busybox", "c1"]);
    assert!(err.contains("container c1 already exists"), "{err}");
    // Names are DNS names on the networks: one that differs only in case is taken too.
    d.ok(&["create", "busybox", "other"]);
    for verb in [
        &["create", "busybox", "C1"][..],
        &["rename", "other", "C1"],
        &["copy", "other", "C1"],
    ] {
        let err = d.fails(verb);
        assert!(
            err.contains("container c1 already exists; names must differ by more than case"),
            "{verb:?}: {err}"
        );
    }
    d.ok(&["delete", "other"]);
    let err = d.fails(&["create", "nosuchtemplate", "c2"]);
    assert!(err.contains("template nosuchtemplate not found"), "{err}");
    for verb in [
        &["start", "ghost"][..],
        &["stop", "ghost"],
        &["info", "ghost"],
        &["delete", "ghost"],
        &["rename", "ghost", "g2"],
        &["restart", "ghost"],
    ] {
        let err = d.fails(verb);
        assert!(err.contains("container ghost not found"), "{verb:?}: {err}");
    }
    let err = d.fails(&["stop", "c1"]);
    assert!(err.contains("c1 is not running"), "{err}");
    let err = d.fails(&["create", "busybox", "c3", "-c", "security.privilegd=true"]);
    assert!(
        err.contains("unknown config key security.privilegd (did you mean security.privileged?)"),
        "{err}"
    );
    let err = d.fails(&["create", "busybox", "c3", "-c", "boot.autostart=sometimes"]);
    assert!(err.contains("boot.autostart"), "{err}");
    let err = d.fails(&["create", "busybox", "c3", "-c", "volatile.idmap.base=5"]);
    assert!(err.contains("set by the daemon"), "{err}");
    // Releases and architectures reach the template's command line and cache paths.
    let err = d.fails(&["create", "busybox", "c3", "--release", "../../x"]);
    assert!(err.contains("invalid release \"../../x\""), "{err}");
    let err = d.fails(&["create", "busybox", "c3", "--arch", "arm64"]);
    assert!(err.contains("architecture \"arm64\" does not run on this"), "{err}");
    let err = d.fails(&["create", "busybox", "c3", "--arch", "i386"]);
    assert!(err.contains("builds from the host's busybox"), "{err}");
    let err = d.fails(&["image", "delete", "zz"]);
    assert!(
        err.contains("invalid image fingerprint \"zz\": a fingerprint is hex digits"),
        "{err}"
    );
    let err = d.fails(&["image", "delete", "ab"]);
    assert!(err.contains("give at least 4 of its hex digits"), "{err}");
    let err = d.fails(&["image", "delete", "abcdef"]);
    assert!(err.contains("image abcdef not found"), "{err}");
    assert_eq!(snapshot(&d), before);

    // A rename that changes only the case is fine.
    d.ok(&["rename", "c1", "C1"]);
    d.ok(&["rename", "C1", "c1"]);

    d.ok(&["start", "c1"]);
    let err = d.fails(&["start", "c1"]);
    assert!(err.contains("c1 is already running"), "{err}");
    d.ok(&["stop", "c1", "--force"]);
}

fn write_template(dir: &Path, name: &str, body: &str) {
    let path = dir.join(name);
    std::fs::write(&path, body).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn a_failing_template_leaves_no_trace() {
    let templates = tempfile::tempdir().unwrap();
    // Fails after writing half a root filesystem.
    write_template(
        templates.path(),
        "broken",
        "#!/bin/sh\n# sysc-description: fails halfway\nwhile [ $# -gt 0 ]; do [ \"$1\" = --rootfs ] && R=$2; shift; done\nmkdir -p \"$R/etc\"; echo half > \"$R/etc/half\"\necho 'broken: no init for you' >&2\nexit 3\n",
    );
    let d = Daemon::start_with(DaemonOptions {
        templates: Some(templates.path().to_path_buf()),
        ..Default::default()
    });
    let before = snapshot(&d);
    let out = d.sysc(&["launch", "broken", "c1"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("template broken failed"), "{}", out.stderr);
    assert!(
        out.stderr.contains("broken: no init for you"),
        "the template's own words reach the user: {}",
        out.stderr
    );
    assert_eq!(snapshot(&d), before, "no container, image, volume or link was left");
}

#[test]
fn concurrent_requests_on_one_container_are_serialized() {
    let d = Daemon::start();
    d.ok(&["create", "busybox", "c1"]);
    // Five starts at once: exactly one starts it; the others wait their turn and are
    // told it is already running.
    let outputs: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..5).map(|_| s.spawn(|| d.sysc(&["start", "c1"]))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let started = outputs.iter().filter(|o| o.success()).count();
    assert_eq!(started, 1, "{outputs:?}");
    assert!(
        outputs
            .iter()
            .filter(|o| !o.success())
            .all(|o| o.stderr.contains("already running"))
    );

    // The same name created five times at once: one container.
    let outputs: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..5)
            .map(|_| s.spawn(|| d.sysc(&["create", "busybox", "twin"])))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(outputs.iter().filter(|o| o.success()).count(), 1, "{outputs:?}");
    assert!(
        outputs
            .iter()
            .filter(|o| !o.success())
            .all(|o| o.stderr.contains("already exists"))
    );
    assert_eq!(d.list().len(), 2);

    // Stop and delete racing: whichever goes second sees the first's result.
    let (stop, delete) = std::thread::scope(|s| {
        let stop = s.spawn(|| d.sysc(&["stop", "c1", "--force"]));
        let delete = s.spawn(|| d.sysc(&["delete", "c1"]));
        (stop.join().unwrap(), delete.join().unwrap())
    });
    if delete.success() {
        assert!(stop.success(), "delete can only win after stop: {stop:?}");
        assert!(d.list().iter().all(|c| c["name"] != "c1"));
    } else {
        assert!(delete.stderr.contains("running"), "{delete:?}");
        assert_eq!(d.state("c1"), "STOPPED");
    }
}

#[test]
fn many_containers_created_started_and_deleted_at_once() {
    // Twenty requests at once used to hang the daemon in the database's flush.
    let d = Daemon::start();
    let names: Vec<String> = (0..20).map(|i| format!("m{i:02}")).collect();
    let outputs: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = names
            .iter()
            .map(|n| s.spawn(|| d.sysc(&["launch", "busybox", n])))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(outputs.iter().all(|o| o.success()), "{outputs:?}");
    assert!(d.list().iter().all(|c| c["state"] == "RUNNING"));
    let mut delete = vec!["delete", "--force"];
    delete.extend(names.iter().map(String::as_str));
    d.ok(&delete);
    assert!(d.list().is_empty());
}
