//! security.idmap.base and security.idmap.size on busybox containers: a pinned or
//! larger range is what the kernel maps, overlapping pins are refused before anything
//! is made, and the daemon's own choices go around pinned ranges.
//!
//! Pinned bases are offsets into the test daemon's --idmap-base region (40 ranges of
//! 65536), which no other test's daemon uses.

use std::process::Stdio;
use std::time::Duration;

use sysc_tests::{Daemon, proc_status_field, wait_until};

const SLOT: u32 = 65536;

/// The first and last host id a container maps, and how many, from `list`.
fn listed_range(d: &Daemon, name: &str) -> (u64, u64) {
    let c = d.container(name);
    (c["idmap_base"].as_u64().unwrap(), c["idmap_size"].as_u64().unwrap())
}

/// /proc/PID/uid_map (or gid_map) of the container's init, as read from the host.
fn map_of(d: &Daemon, name: &str, file: &str) -> Vec<u64> {
    let path = format!("/proc/{}/{file}", d.init_pid(name));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    text.split_whitespace().map(|n| n.parse().unwrap()).collect()
}

fn assert_maps(d: &Daemon, name: &str, base: u64, size: u64) {
    for file in ["uid_map", "gid_map"] {
        assert_eq!(map_of(d, name, file), [0, base, size], "{name}'s {file}");
    }
    assert_eq!(listed_range(d, name), (base, size), "{name} in list");
}

fn overlaps(a: (u64, u64), b: (u64, u64)) -> bool {
    a.0 < b.0 + b.1 && b.0 < a.0 + a.1
}

/// Nothing of a refused create is left: no record, no volume, no link, no monitor dir.
fn assert_nothing_of(d: &Daemon, name: &str) {
    assert!(d.list().iter().all(|c| c["name"] != name), "{name} in list");
    assert!(!d.pool_dir().join("containers").join(name).exists(), "{name}'s volume");
    assert!(!d.root.join("containers").join(name).exists(), "{name}'s link");
    assert!(!d.run_dir.join(name).exists(), "{name}'s run dir");
}

#[test]
fn a_pinned_range_is_the_containers_map_and_an_overlapping_pin_is_refused() {
    let d = Daemon::start();
    let pinned = d.idmap_base + 10 * SLOT;
    let pin = format!("security.idmap.base={pinned}");
    d.ok(&["launch", "busybox", "a", "-c", &pin]);
    let pinned = u64::from(pinned);
    assert_maps(&d, "a", pinned, 65536);
    assert_eq!(d.container("a")["config"]["security.idmap.base"], pinned.to_string());
    let info = d.ok(&["info", "a"]);
    let shown = format!("{pinned}-{} (65536 ids)", pinned + 65535);
    assert!(info.contains(&shown), "{shown} in:\n{info}");

    // Half a range up overlaps a's top half; so does one that wraps around a.
    let clash = pinned + 32768;
    for (args, what) in [
        (
            vec![format!("security.idmap.base={clash}")],
            format!("{clash}-{}", clash + 65535),
        ),
        (
            vec![
                format!("security.idmap.base={}", pinned - 65536),
                "security.idmap.size=262144".into(),
            ],
            format!("{}-{}", pinned - 65536, pinned + 196607),
        ),
    ] {
        for verb in ["launch", "create"] {
            let mut command = vec![verb, "busybox", "b"];
            for arg in &args {
                command.extend(["-c", arg]);
            }
            let err = d.fails(&command);
            let expected = format!(
                "config key security.idmap.base: host ids {what} overlap container a's range {pinned}-{}",
                pinned + 65535
            );
            assert!(err.contains(&expected), "{expected:?} in {err:?}");
            assert_nothing_of(&d, "b");
        }
    }

    // Right above a's range is free.
    let above = pinned + 65536;
    d.ok(&["launch", "busybox", "b", "-c", &format!("security.idmap.base={above}")]);
    assert_maps(&d, "b", above, 65536);
    d.ok(&["exec", "b", "--", "true"]);

    // The daemon's own choice is the first slot of its region, below both pins.
    d.ok(&["launch", "busybox", "c"]);
    assert_maps(&d, "c", u64::from(d.idmap_base), 65536);

    // Deleting a frees its range for a new pin.
    d.ok(&["delete", "--force", "a"]);
    d.ok(&["create", "busybox", "d", "-c", &pin]);
    assert_eq!(listed_range(&d, "d"), (pinned, 65536));
}

#[test]
fn a_larger_range_maps_every_id_up_to_its_size() {
    let d = Daemon::start();
    d.ok(&["launch", "busybox", "a", "-c", "security.idmap.size=131072"]);
    let (base, size) = listed_range(&d, "a");
    assert_eq!(base, u64::from(d.idmap_base));
    assert_eq!(size, 131072);
    assert_maps(&d, "a", base, 131072);
    assert!(d.ok(&["info", "a"]).contains("(131072 ids)"));

    let out = d.ok(&["exec", "a", "--user", "100000", "--group", "100001", "--", "id"]);
    assert!(out.starts_with("uid=100000 gid=100001"), "{out}");
    // From the host, the same process runs as base + 100000.
    let mut sleeper = d
        .command(&["exec", "a", "--user", "100000", "--", "sleep", "60"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let host_uid = (base + 100000).to_string();
    let found = wait_until(Duration::from_secs(10), || {
        std::fs::read_dir("/proc").unwrap().flatten().find_map(|entry| {
            let pid: i64 = entry.file_name().to_str()?.parse().ok()?;
            let uid = proc_status_field(pid, "Uid")?;
            (uid.split(' ').next() == Some(host_uid.as_str())).then_some(pid)
        })
    });
    let pid = found.unwrap_or_else(|| panic!("no process runs as host uid {host_uid}"));
    assert!(
        std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .unwrap()
            .starts_with("sleep")
    );
    // SAFETY: kill(2) of the sleep this test started, by the PID just found.
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    sleeper.wait().unwrap();

    let err = d.fails(&["exec", "a", "--user", "131072", "--", "true"]);
    assert!(err.contains("131071"), "{err}");

    // The next automatic range starts past both of a's slots.
    d.ok(&["create", "busybox", "b"]);
    assert_eq!(listed_range(&d, "b"), (base + 131072, 65536));
}

#[test]
fn the_allocator_goes_around_pinned_ranges_of_any_alignment() {
    let d = Daemon::start();
    let first = u64::from(d.idmap_base);
    // Half into slot 0, and three slots from slot 3: slots 2 and 6 are the free ones.
    d.ok(&[
        "create",
        "busybox",
        "p1",
        "-c",
        &format!("security.idmap.base={}", first + 32768),
    ]);
    d.ok(&[
        "create",
        "busybox",
        "p2",
        "-c",
        &format!("security.idmap.base={}", first + 3 * 65536),
        "-c",
        "security.idmap.size=196608",
    ]);
    d.ok(&["launch", "busybox", "a"]);
    assert_maps(&d, "a", first + 2 * 65536, 65536);
    d.ok(&["create", "busybox", "b", "-c", "security.idmap.size=131072"]);
    assert_eq!(listed_range(&d, "b"), (first + 6 * 65536, 131072));
    d.ok(&["create", "busybox", "c"]);
    assert_eq!(listed_range(&d, "c"), (first + 8 * 65536, 65536));
    let names = ["p1", "p2", "a", "b", "c"];
    for (i, x) in names.iter().enumerate() {
        for y in &names[i + 1..] {
            assert!(!overlaps(listed_range(&d, x), listed_range(&d, y)), "{x} and {y}");
        }
    }
}

#[test]
fn a_copy_of_a_pinned_container_gets_a_range_of_its_own() {
    let d = Daemon::start();
    let pinned = u64::from(d.idmap_base + 5 * SLOT);
    d.ok(&[
        "launch",
        "busybox",
        "a",
        "-c",
        &format!("security.idmap.base={pinned}"),
        "-c",
        "security.idmap.size=131072",
    ]);
    d.ok(&["snapshot", "create", "a", "s0"]);
    d.ok(&["copy", "a", "b"]);
    let b = d.container("b");
    assert!(b["config"].get("security.idmap.base").is_none(), "{b}");
    assert_eq!(b["config"]["security.idmap.size"], "131072");
    assert_eq!(listed_range(&d, "b"), (u64::from(d.idmap_base), 131072));
    // Restoring the copied snapshot leaves the copy's own range and keys.
    d.ok(&["snapshot", "restore", "b", "s0"]);
    let b = d.container("b");
    assert!(b["config"].get("security.idmap.base").is_none(), "{b}");
    assert_eq!(listed_range(&d, "b"), (u64::from(d.idmap_base), 131072));
    d.ok(&["start", "b"]);
    assert_maps(&d, "b", u64::from(d.idmap_base), 131072);

    // A pin given to the copy counts like any other.
    let err = d.fails(&["copy", "a", "c", "-c", &format!("security.idmap.base={pinned}")]);
    assert!(err.contains("overlap container a's range"), "{err}");
    assert_nothing_of(&d, "c");
    let free = pinned + 131072;
    d.ok(&["copy", "a", "c", "-c", &format!("security.idmap.base={free}")]);
    assert_eq!(listed_range(&d, "c"), (free, 131072));
}

#[test]
fn pins_that_cannot_work_are_refused_up_front() {
    let d = Daemon::start();
    let base = d.idmap_base.to_string();
    for (key, value) in [
        ("security.idmap.base", base.as_str()),
        ("security.idmap.size", "131072"),
    ] {
        let err = d.fails(&[
            "launch",
            "busybox",
            "p",
            "-c",
            "security.privileged=true",
            "-c",
            &format!("{key}={value}"),
        ]);
        assert!(
            err.contains(&format!("config key {key} has no effect on a privileged container")),
            "{err}"
        );
        assert_nothing_of(&d, "p");
    }
    let err = d.fails(&["create", "busybox", "p", "-c", "security.idmap.base=4294901760"]);
    assert!(err.contains("is not an integer from 65536 to 4294901759"), "{err}");
    assert_nothing_of(&d, "p");
    let err = d.fails(&[
        "create",
        "busybox",
        "p",
        "-c",
        "security.idmap.base=4294901759",
        "-c",
        "security.idmap.size=131072",
    ]);
    assert!(
        err.contains("host ids 4294901759-4295032830 go past the last usable host id 4294967294"),
        "{err}"
    );
    assert_nothing_of(&d, "p");
    let err = d.fails(&["create", "busybox", "p", "-c", "security.idmap.size=1000"]);
    assert!(err.contains("config key security.idmap.size"), "{err}");
    assert_nothing_of(&d, "p");

    d.ok(&["create", "busybox", "a"]);
    let err = d.fails(&["config", "set", "a", &format!("security.idmap.base={base}")]);
    assert!(err.contains("can only be set when the container is created"), "{err}");
    assert_eq!(listed_range(&d, "a"), (u64::from(d.idmap_base), 65536));
}

#[test]
fn of_two_creates_racing_for_overlapping_pins_one_wins() {
    let d = Daemon::start();
    let pinned = d.idmap_base + 3 * SLOT;
    let racers: Vec<_> = [("a", pinned), ("b", pinned + 1000)]
        .into_iter()
        .map(|(name, base)| {
            d.command(&["create", "busybox", name, "-c", &format!("security.idmap.base={base}")])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outcomes: Vec<_> = racers.into_iter().map(|r| r.wait_with_output().unwrap()).collect();
    let won: Vec<_> = outcomes.iter().filter(|o| o.status.success()).collect();
    assert_eq!(won.len(), 1, "{outcomes:?}");
    let (loser, lost) = ["a", "b"]
        .into_iter()
        .zip(&outcomes)
        .find(|(_, o)| !o.status.success())
        .unwrap();
    assert!(
        String::from_utf8_lossy(&lost.stderr).contains("overlap container"),
        "{lost:?}"
    );
    assert_nothing_of(&d, loser);
    assert_eq!(d.list().len(), 1);
}

#[test]
fn an_import_keeps_its_pin_and_is_refused_while_the_range_is_taken() {
    let d = Daemon::start();
    let pinned = u64::from(d.idmap_base + 7 * SLOT);
    d.ok(&["create", "busybox", "a", "-c", &format!("security.idmap.base={pinned}")]);
    let archive = d.dir.path().join("a.tar.zst");
    d.ok(&["export", "a", archive.to_str().unwrap()]);
    let err = d.fails(&["import", archive.to_str().unwrap(), "b"]);
    assert!(err.contains("overlap container a's range"), "{err}");
    assert_nothing_of(&d, "b");
    d.ok(&["delete", "a"]);
    d.ok(&["import", archive.to_str().unwrap(), "b"]);
    assert_eq!(listed_range(&d, "b"), (pinned, 65536));
    assert_eq!(d.container("b")["config"]["security.idmap.base"], pinned.to_string());
}
