//! `sysc file` against hostile containers and bad input: symlinks and `..` never lead to
//! the host, FIFOs and devices are refused without hanging, an interrupted push or pull
//! leaves no partial file, bad requests change nothing, and a large file streams in constant
//! memory.

use std::io::{Read, Write};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use sysc_tests::{Daemon, wait_until};

fn busybox() -> Daemon {
    let d = Daemon::start();
    d.ok(&["launch", "busybox", "c"]);
    d
}

fn sh(d: &Daemon, script: &str) -> String {
    d.ok(&["exec", "c", "--", "sh", "-c", script])
}

fn rootfs(d: &Daemon) -> std::path::PathBuf {
    d.pool_dir().join("containers/c/rootfs")
}

/// A name for host files the tests watch, unique to this test run.
fn host_marker(what: &str) -> String {
    format!("sysc-escape-{what}-{}", std::process::id())
}

/// The container plants links that point outside its root in every way it can.
fn plant_escapes(d: &Daemon) {
    sh(
        d,
        "echo container-shadow > /etc/shadow; mkdir -p /srv \
         && ln -s /../../../../etc/shadow /etc/evil && ln -s / /escape \
         && ln -s ../../../../../../../../ /srv/up && ln -s /proc/1/root /srv/procroot",
    );
}

fn escapes_stay_inside(d: &Daemon, state: &str) {
    let host_shadow = std::fs::read("/etc/shadow").unwrap();
    let dir = tempfile::tempdir().unwrap();

    // Pulls through every planted link and `..` give the container's file.
    for path in [
        "c/etc/evil",
        "c/escape/etc/shadow",
        "c/srv/up/etc/shadow",
        "c/../../../../etc/shadow",
        "c/srv/../../../etc/shadow",
    ] {
        let out = d.sysc(&["file", "pull", path, "-"]);
        assert!(out.success(), "{state}: pull {path}: {}", out.stderr);
        assert_eq!(out.stdout, "container-shadow\n", "{state}: pull {path}");
    }
    // A magic link (/proc/1/root) is not followed at all.
    if state == "running" {
        let err = d.fails(&["file", "pull", "c/srv/procroot/etc/shadow", "-"]);
        assert!(!err.contains("root:"), "{err}");
    }

    // Pushes through them write inside the container, never on the host.
    let marker = host_marker(state);
    let src = dir.path().join("payload");
    std::fs::write(&src, "payload\n").unwrap();
    for target in [
        format!("c/escape/tmp/{marker}"),
        format!("c/srv/up/tmp/{marker}-up"),
        format!("c/../../tmp/{marker}-dots"),
    ] {
        d.ok(&["file", "push", src.to_str().unwrap(), &target]);
    }
    d.ok(&["file", "push", src.to_str().unwrap(), "c/etc/evil"]);
    d.ok(&["file", "mkdir", &format!("c/escape/tmp/{marker}-dir")]);
    let tree = dir.path().join(format!("{marker}-tree"));
    std::fs::create_dir(&tree).unwrap();
    std::fs::write(tree.join("f"), "t\n").unwrap();
    d.ok(&["file", "push", "-r", tree.to_str().unwrap(), "c/escape/tmp/"]);
    for suffix in ["", "-up", "-dots", "-dir", "-tree"] {
        let host = Path::new("/tmp").join(format!("{marker}{suffix}"));
        assert!(!host.exists(), "{state}: {} was written on the host", host.display());
    }
    assert_eq!(
        std::fs::read("/etc/shadow").unwrap(),
        host_shadow,
        "{state}: host /etc/shadow changed"
    );

    // Deleting through a link can't reach a host file either.
    let victim = Path::new("/tmp").join(format!("{marker}-victim"));
    std::fs::write(&victim, "host\n").unwrap();
    let err = d.fails(&["file", "delete", &format!("c/escape/tmp/{marker}-victim")]);
    assert!(err.contains("no such file"), "{err}");
    assert!(victim.exists(), "{state}: a host file was deleted");
    std::fs::remove_file(&victim).unwrap();
}

fn escapes_landed_in_the_container(d: &Daemon, state: &str) {
    let marker = host_marker(state);
    let out = sh(
        d,
        &format!(
            "cat /etc/shadow /tmp/{marker} /tmp/{marker}-up /tmp/{marker}-dots /tmp/{marker}-tree/f; ls -d /tmp/{marker}-dir"
        ),
    );
    assert_eq!(
        out,
        format!("payload\npayload\npayload\npayload\nt\n/tmp/{marker}-dir\n"),
        "{state}"
    );
    sh(d, "echo container-shadow > /etc/shadow");
}

#[test]
fn symlinks_and_dotdot_never_reach_the_host() {
    let d = busybox();
    plant_escapes(&d);
    escapes_stay_inside(&d, "running");
    escapes_landed_in_the_container(&d, "running");

    // Stopped, the helper works on the rootfs from the host: the same must hold.
    d.ok(&["stop", "c", "--force"]);
    escapes_stay_inside(&d, "stopped");
    d.ok(&["start", "c"]);
    escapes_landed_in_the_container(&d, "stopped");
}

/// Runs sysc with a deadline: a transfer that hangs fails the test instead of it.
fn within(d: &Daemon, args: &[&str], limit: Duration) -> (bool, String) {
    let mut child = d
        .command(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let status = wait_until(limit, || child.try_wait().unwrap());
    let Some(status) = status else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("sysc {args:?} still running after {:?}", started.elapsed());
    };
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    (status.success(), stderr)
}

#[test]
fn fifos_and_devices_are_refused_without_hanging() {
    let d = busybox();
    sh(
        &d,
        "mkdir -p /srv/t && mkfifo /srv/fifo /srv/t/fifo && echo ok > /srv/t/file",
    );
    let limit = Duration::from_secs(20);
    let (ok, err) = within(&d, &["file", "pull", "c/srv/fifo", "-"], limit);
    assert!(!ok && err.contains("/srv/fifo is a FIFO"), "{err}");
    let (ok, err) = within(&d, &["file", "pull", "c/dev/zero", "-"], limit);
    assert!(!ok && err.contains("/dev/zero is a character device"), "{err}");
    // Not the host's device through a link to it either.
    sh(&d, "ln -s /dev/zero /srv/zero");
    let (ok, err) = within(&d, &["file", "pull", "c/srv/zero", "-"], limit);
    assert!(!ok && err.contains("character device"), "{err}");

    // In a tree, special files are left out with a warning; the rest arrives.
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("t");
    let (ok, err) = within(&d, &["file", "pull", "-r", "c/srv/t", dest.to_str().unwrap()], limit);
    assert!(ok, "{err}");
    assert!(err.contains("left out 1 special file") && err.contains("fifo"), "{err}");
    assert_eq!(std::fs::read_to_string(dest.join("file")).unwrap(), "ok\n");
    assert!(!dest.join("fifo").exists());

    // The same going in.
    let local = dir.path().join("up");
    std::fs::create_dir(&local).unwrap();
    std::fs::write(local.join("file"), "up\n").unwrap();
    nix::unistd::mkfifo(&local.join("pipe"), nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
    let (ok, err) = within(&d, &["file", "push", "-r", local.to_str().unwrap(), "c/srv/"], limit);
    assert!(ok, "{err}");
    assert!(err.contains("left out 1 special file") && err.contains("pipe"), "{err}");
    assert_eq!(sh(&d, "cat /srv/up/file; ls /srv/up"), "up\nfile\n");
}

#[test]
fn an_interrupted_push_leaves_no_partial_file() {
    let d = busybox();
    sh(&d, "mkdir -p /srv && echo old > /srv/target");
    let srv = rootfs(&d).join("srv");
    let temp_files = || {
        std::fs::read_dir(&srv)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with(".sysc-push-"))
            .count()
    };
    let mut client = d
        .command(&["file", "push", "-", "c/srv/target"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = client.stdin.take().unwrap();
    stdin.write_all(&vec![b'x'; 8 << 20]).unwrap();
    stdin.flush().unwrap();
    // Data is arriving in the temporary file: now the client dies, as with kill -9.
    let writing = wait_until(Duration::from_secs(20), || (temp_files() > 0).then_some(()));
    assert!(writing.is_some(), "no temporary file appeared");
    client.kill().unwrap();
    client.wait().unwrap();
    drop(stdin);

    let cleaned = wait_until(Duration::from_secs(20), || (temp_files() == 0).then_some(()));
    assert!(cleaned.is_some(), "the temporary file stayed behind");
    assert_eq!(sh(&d, "cat /srv/target; ls -a /srv"), "old\n.\n..\ntarget\n");
}

#[test]
fn an_interrupted_pull_leaves_no_partial_file() {
    let d = busybox();
    // Sparse inside, so it costs the pool nothing, but 1 GiB of data on the way out.
    sh(
        &d,
        "mkdir -p /srv && dd if=/dev/zero of=/srv/big bs=1 count=0 seek=1073741824 2>/dev/null",
    );
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("big");
    let entries = || {
        std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
    };
    use nix::sys::signal::Signal;
    // Handed over (a local client) and streamed (as to a remote one).
    let cases = [false, true]
        .into_iter()
        .flat_map(|elsewhere| [Signal::SIGINT, Signal::SIGTERM, Signal::SIGKILL].map(|signal| (elsewhere, signal)));
    for (elsewhere, signal) in cases {
        let mut command = d.command(&["file", "pull", "c/srv/big", dest.to_str().unwrap()]);
        if elsewhere {
            command = sysc_tests::in_own_network_namespace(command);
        }
        let client = command.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
        // Data is arriving in a file the client holds open in that directory, named or not.
        let fds = format!("/proc/{}/fd", client.id());
        let arriving = wait_until(Duration::from_secs(20), || {
            std::fs::read_dir(&fds).ok()?.flatten().find(|fd| {
                std::fs::read_link(fd.path()).is_ok_and(|target| target.starts_with(dir.path()))
                    && std::fs::metadata(fd.path()).is_ok_and(|m| m.len() > 0)
            })
        });
        assert!(arriving.is_some(), "no data arrived: {:?}", entries());
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(client.id() as i32), signal).unwrap();
        let out = client.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            entries().is_empty(),
            "{signal} left {:?} (streamed: {elsewhere})",
            entries()
        );
        assert!(!out.status.success(), "{signal} (streamed: {elsewhere}): {err}");
        match signal {
            Signal::SIGINT => assert!(err.contains("interrupted"), "{err}"),
            Signal::SIGTERM => assert!(err.contains("terminated"), "{err}"),
            _ => {}
        }
    }
}

#[test]
fn bad_requests_are_refused_with_clear_errors_and_change_nothing() {
    let d = busybox();
    sh(&d, "mkdir -p /srv/dir && echo keep > /srv/file");
    let listing = || sh(&d, "ls -laR /srv | sed 's/ [A-Z][a-z][a-z] .* / /'");
    let before = listing();
    let dir = tempfile::tempdir().unwrap();
    let local_file = dir.path().join("f");
    std::fs::write(&local_file, "new\n").unwrap();
    let local_dir = dir.path().join("d");
    std::fs::create_dir(&local_dir).unwrap();
    let f = local_file.to_str().unwrap();
    let ld = local_dir.to_str().unwrap();
    let missing = dir.path().join("missing");

    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["file", "push", missing.to_str().unwrap(), "c/srv/"],
            "missing: No such file or directory",
        ),
        (
            vec!["file", "push", f, missing.to_str().unwrap(), "c/srv/"],
            "missing: No such file or directory",
        ),
        (vec!["file", "push", ld, "c/srv/"], "is a directory (use -r"),
        (
            vec!["file", "push", f, "c/srv/no/such/f"],
            "directory /srv/no/such does not exist (use -p",
        ),
        (vec!["file", "push", f, "c/srv/file/x"], "not a directory"),
        (
            vec!["file", "push", "-r", ld, "c/srv/file"],
            "/srv/file exists and is not a directory",
        ),
        (vec!["file", "push", f, "nope/srv/"], "container nope not found"),
        (vec!["file", "push", f, "c"], "not NAME/PATH"),
        (
            vec!["file", "push", f, "c/srv/dir", "--uid", "70000"],
            "uid 70000 is outside the container's id range",
        ),
        (
            vec!["file", "pull", "c/srv/dir", dir.path().to_str().unwrap()],
            "is a directory (use -r",
        ),
        (
            vec!["file", "pull", "c/srv/absent", "-"],
            "/srv/absent: no such file or directory",
        ),
        (vec!["file", "pull", "c/srv/file/x", "-"], "not a directory"),
        (
            vec!["file", "pull", "c/srv/file", "c/srv/file", "-"],
            "only one SOURCE can be pulled to stdout",
        ),
        (vec!["file", "mkdir", "c/srv/file/sub"], "not a directory"),
        (
            vec!["file", "mkdir", "c/srv/dir"],
            "container c: /srv/dir already exists",
        ),
        (vec!["file", "delete", "c/"], "/ does not name a file"),
        (
            vec!["file", "delete", "c/srv/absent"],
            "container c: /srv/absent: no such file",
        ),
        (
            vec!["file", "ls", "c/srv/absent"],
            "container c: /srv/absent: no such file",
        ),
        (vec!["file", "edit", "c/srv/dir"], "is a directory"),
    ];
    for (args, expected) in cases {
        let err = d.fails(&args);
        assert!(err.contains(expected), "sysc {args:?}: {err}");
    }
    assert_eq!(listing(), before, "a refused request changed the container");
    assert!(!dir.path().join("dir").exists(), "a refused pull wrote locally");

    // An owner outside the id range, for a tree too, and on a stopped container too:
    // refused before anything is made.
    let tree_push = ["file", "push", "-r", ld, "c/srv/", "--gid", "70000"];
    let err = d.fails(&tree_push);
    assert!(
        err.contains("gid 70000 is outside the container's id range 0-65535"),
        "{err}"
    );
    assert_eq!(listing(), before, "a refused tree push changed the container");
    d.ok(&["stop", "c", "--force"]);
    for args in [&tree_push[..], &["file", "push", f, "c/srv/dir", "--uid", "70000"]] {
        let err = d.fails(args);
        assert!(
            err.contains("is outside the container's id range"),
            "sysc {args:?}: {err}"
        );
    }
    assert!(!rootfs(&d).join("srv/d").exists() && !rootfs(&d).join("srv/dir/f").exists());
}

#[test]
fn the_api_refuses_relative_paths() {
    let d = busybox();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let mut client = sysc_proto::v1::files_client::FilesClient::new(sysc_tests::channel(&d.socket).await);
        let status = client
            .delete(sysc_proto::v1::DeleteFileRequest {
                name: "c".into(),
                path: b"etc/hostname".to_vec(),
                recursive: false,
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert_eq!(status.message(), "etc/hostname is not an absolute path");
    });
    assert!(rootfs(&d).join("etc/hostname").exists());
}

/// The peak RSS of a process so far, in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    hwm_kib(&std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap())
}

/// Runs sysc to completion, reading its stdout; returns whether it succeeded, its peak
/// RSS in KiB and the first bytes of its output. The peak is sampled from /proc while it
/// runs: wait4's ru_maxrss would also count the test's own memory, which a vfork-spawned
/// child shares until it execs.
fn run_measured(mut command: std::process::Command) -> (bool, u64, Vec<u8>) {
    let mut child = command.stdin(Stdio::null()).stdout(Stdio::piped()).spawn().unwrap();
    let status_file = format!("/proc/{}/status", child.id());
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampling = done.clone();
    let sampler = std::thread::spawn(move || {
        let mut peak = 0;
        while !sampling.load(std::sync::atomic::Ordering::SeqCst) {
            if let Ok(status) = std::fs::read_to_string(&status_file) {
                peak = peak.max(hwm_kib(&status));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        peak
    });
    let mut out = child.stdout.take().unwrap();
    let mut head = Vec::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = out.read(&mut buffer).unwrap();
        if n == 0 {
            break;
        }
        if head.len() < 16 {
            head.extend_from_slice(&buffer[..n.min(16 - head.len())]);
        }
    }
    let ok = child.wait().unwrap().success();
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    (ok, sampler.join().unwrap(), head)
}

fn hwm_kib(status: &str) -> u64 {
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kib| kib.parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_large_file_streams_through_in_constant_memory() {
    const SIZE: u64 = 384 << 20;
    const GROWTH_LIMIT_KIB: u64 = 96 << 10;
    let d = busybox();
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big");
    // Sparse: fast to read, and as large as any other file to the transfer.
    std::fs::File::create(&big).unwrap().set_len(SIZE).unwrap();
    let daemon_before = peak_rss_kib(d.pid());

    let (ok, push_rss, _) = run_measured(d.command(&["file", "push", big.to_str().unwrap(), "c/root/big"]));
    assert!(ok, "push failed");
    assert_eq!(sh(&d, "stat -c %s /root/big"), format!("{SIZE}\n"));
    // Streamed, as to a remote client, and handed over to a local one.
    let streamed = sysc_tests::in_own_network_namespace(d.command(&["file", "pull", "c/root/big", "-"]));
    let (ok, streamed_rss, head) = run_measured(streamed);
    assert!(ok, "streamed pull failed");
    assert_eq!(head, vec![0u8; 16]);
    let (ok, pull_rss, head) = run_measured(d.command(&["file", "pull", "c/root/big", "-"]));
    assert!(ok, "pull failed");
    assert_eq!(head, vec![0u8; 16]);

    let daemon_growth = peak_rss_kib(d.pid()).saturating_sub(daemon_before);
    assert!(
        daemon_growth < GROWTH_LIMIT_KIB,
        "syscd's peak RSS grew by {daemon_growth} KiB"
    );
    assert!(push_rss < GROWTH_LIMIT_KIB, "sysc file push peaked at {push_rss} KiB");
    assert!(pull_rss < GROWTH_LIMIT_KIB, "sysc file pull peaked at {pull_rss} KiB");
    assert!(
        streamed_rss < GROWTH_LIMIT_KIB,
        "sysc file pull, streamed, peaked at {streamed_rss} KiB"
    );
}
