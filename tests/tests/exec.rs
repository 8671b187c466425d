//! `sysc exec`: scripted use. Streams stay apart, exit codes come through, stdin EOF
//! arrives, the command runs inside the container's namespaces and cgroups, and a
//! client that goes away takes the command with it.

use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

use sysc_tests::{Daemon, wait_until};

fn busybox() -> Daemon {
    let d = Daemon::start();
    d.ok(&["launch", "busybox", "c", "-c", "environment.GREETING=hello there"]);
    d
}

#[test]
fn stdin_stdout_stderr_and_exit_codes_stay_apart() {
    let d = busybox();
    let out = d.sysc_stdin(&["exec", "c", "--", "cat"], Some(b"hi\n"));
    assert_eq!((out.code, out.stdout.as_str(), out.stderr.as_str()), (0, "hi\n", ""));

    let out = d.sysc(&["exec", "c", "--", "sh", "-c", "echo out; echo err >&2; exit 7"]);
    assert_eq!(
        (out.code, out.stdout.as_str(), out.stderr.as_str()),
        (7, "out\n", "err\n")
    );

    // Killed by signal N → 128+N, as a shell reports it.
    let out = d.sysc(&["exec", "c", "--", "sh", "-c", "kill -TERM $$"]);
    assert_eq!(out.code, 128 + libc::SIGTERM);

    // stdin EOF reaches the command: wc only prints once its input ends.
    let out = d.sysc_stdin(&["exec", "c", "--", "wc", "-c"], Some(b"12345"));
    assert_eq!(out.stdout.trim(), "5");
    let out = d.sysc_stdin(&["exec", "c", "--", "wc", "-c"], Some(b""));
    assert_eq!(out.stdout.trim(), "0");
}

#[test]
fn a_hundred_megabytes_arrive_intact() {
    let d = busybox();
    let made = d.ok(&[
        "exec",
        "c",
        "--",
        "sh",
        "-c",
        "head -c 100000000 /dev/urandom > /tmp/big; sha256sum /tmp/big",
    ]);
    let expected = made.split_whitespace().next().unwrap().to_string();
    let mut child = d
        .command(&["exec", "c", "--", "cat", "/tmp/big"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut hasher = std::process::Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let copied = std::io::copy(child.stdout.as_mut().unwrap(), hasher.stdin.as_mut().unwrap()).unwrap();
    drop(hasher.stdin.take());
    assert!(child.wait().unwrap().success());
    assert_eq!(copied, 100_000_000);
    let got = String::from_utf8(hasher.wait_with_output().unwrap().stdout).unwrap();
    assert_eq!(got.split_whitespace().next().unwrap(), expected);
    // And the other way: 10 MB of stdin.
    let data: Vec<u8> = (0..10_000_000u32).map(|i| (i % 251) as u8).collect();
    let out = d.sysc_stdin(&["exec", "c", "--", "wc", "-c"], Some(&data));
    assert_eq!(out.stdout.trim(), "10000000");
}

#[test]
fn runs_inside_the_container_with_a_sane_environment() {
    let d = busybox();
    let init = d.init_pid("c");
    // The same namespaces as the container's init.
    let script = "for ns in pid mnt uts ipc net user cgroup; do readlink /proc/self/ns/$ns; done";
    let inside = d.ok(&["exec", "c", "--", "sh", "-c", script]);
    for (line, ns) in inside
        .lines()
        .zip(["pid", "mnt", "uts", "ipc", "net", "user", "cgroup"])
    {
        let init_ns = std::fs::read_link(format!("/proc/{init}/ns/{ns}")).unwrap();
        assert_eq!(line, init_ns.to_string_lossy(), "{ns}");
    }
    // Inside its cgroups: relative to the container's cgroup namespace every v1
    // hierarchy is the container's own (/), and cgroup2 is its exec leaf below it.
    let cgroups = d.ok(&["exec", "c", "--", "cat", "/proc/self/cgroup"]);
    for line in cgroups.lines() {
        let path = line.splitn(3, ':').nth(2).unwrap();
        assert!(
            path == "/" || path.starts_with("/.sysc-exec-"),
            "outside the container's cgroup: {line}"
        );
    }
    let env = d.ok(&["exec", "c", "--env", "EXTRA=1", "--", "env"]);
    for expected in [
        "PATH=/usr/local/sbin:",
        "HOME=/root",
        "LANG=C.UTF-8",
        "GREETING=hello there",
        "EXTRA=1",
    ] {
        assert!(
            env.lines().any(|l| l.starts_with(expected)),
            "{expected} missing:\n{env}"
        );
    }
    assert!(
        !env.lines().any(|l| l.starts_with("TERM=")),
        "no TERM without a tty:\n{env}"
    );
    let who = d.ok(&[
        "exec",
        "c",
        "--user",
        "1000",
        "--group",
        "1001",
        "--cwd",
        "/tmp",
        "--",
        "sh",
        "-c",
        "id -u; id -g; pwd",
    ]);
    assert_eq!(who.lines().collect::<Vec<_>>(), ["1000", "1001", "/tmp"]);
    assert_eq!(d.ok(&["exec", "c", "--", "pwd"]).trim(), "/root");
}

#[test]
fn bad_input_gets_clear_errors() {
    let d = busybox();
    d.ok(&["create", "busybox", "stopped"]);
    let out = d.sysc(&["exec", "ghost", "--", "true"]);
    assert!(
        out.code != 0 && out.stderr.contains("container ghost not found"),
        "{out:?}"
    );
    let out = d.sysc(&["exec", "stopped", "--", "true"]);
    assert!(
        out.code != 0 && out.stderr.contains("container stopped is not running"),
        "{out:?}"
    );
    let out = d.sysc(&["exec", "c", "--", "no-such-command", "arg"]);
    assert_eq!(out.code, 127);
    assert!(out.stderr.contains("no-such-command: command not found"), "{out:?}");
    let out = d.sysc(&["exec", "c", "--", "/etc/passwd"]);
    assert_eq!(out.code, 126, "{out:?}");
    let out = d.sysc(&["exec", "c", "--user", "70000", "--", "true"]);
    assert!(
        out.code != 0 && out.stderr.contains("uid 70000 is outside the container's id range"),
        "{out:?}"
    );
    let out = d.sysc(&["exec", "c", "--cwd", "/nonexistent", "--", "true"]);
    assert!(out.code != 0 && out.stderr.contains("cwd /nonexistent"), "{out:?}");
    let out = d.sysc(&["exec", "c", "--cwd", "relative", "--", "true"]);
    assert!(out.code != 0 && out.stderr.contains("not an absolute path"), "{out:?}");
}

#[test]
fn fifty_concurrent_execs_all_complete_correctly() {
    let d = busybox();
    let outputs: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..50)
            .map(|i| {
                let d = &d;
                s.spawn(move || {
                    let script = format!("echo out{i}; echo err{i} >&2; exit {}", i % 7);
                    (i, d.sysc(&["exec", "c", "--", "sh", "-c", &script]))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (i, out) in outputs {
        assert_eq!(out.code, i % 7, "exec {i}: {out:?}");
        assert_eq!(out.stdout, format!("out{i}\n"));
        assert_eq!(out.stderr, format!("err{i}\n"));
    }
}

/// Host PIDs of the processes in the container's exec cgroups.
fn exec_processes(d: &Daemon) -> Vec<i32> {
    let unified = d.cgroup_dirs("c").pop().unwrap();
    let mut pids = Vec::new();
    for entry in std::fs::read_dir(&unified).unwrap().flatten() {
        if entry.file_name().to_string_lossy().starts_with(".sysc-exec-") {
            let procs = std::fs::read_to_string(entry.path().join("cgroup.procs")).unwrap_or_default();
            pids.extend(procs.lines().filter_map(|l| l.parse::<i32>().ok()));
        }
    }
    pids
}

#[test]
fn a_client_that_goes_away_takes_the_command_and_its_children_with_it() {
    let d = busybox();
    let mut client = d
        .command(&[
            "exec",
            "c",
            "--",
            "sh",
            "-c",
            "sleep 1000 & sleep 1000 & echo ready; wait",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(client.stdout.as_mut().unwrap()), &mut line).unwrap();
    assert_eq!(line, "ready\n");
    let pids = exec_processes(&d);
    assert_eq!(pids.len(), 3, "sh and two sleeps: {pids:?}");
    client.kill().unwrap();
    client.wait().unwrap();
    let gone = wait_until(Duration::from_secs(10), || {
        pids.iter()
            .all(|pid| std::fs::metadata(format!("/proc/{pid}")).is_err())
            .then_some(())
    });
    assert!(gone.is_some(), "left running: {:?}", exec_processes(&d));
    // A normal end does not kill what the command started in the background on
    // purpose (a service it launched keeps running), like `incus exec`.
    d.ok(&["exec", "c", "--", "sh", "-c", "sleep 1000 >/dev/null 2>&1 </dev/null &"]);
    assert_eq!(exec_processes(&d).len(), 1, "the background sleep lives on");
    let _ = client.stdin.take().map(|mut s| s.write_all(b""));
}

#[test]
fn signals_to_a_client_without_a_terminal_reach_the_command() {
    let d = busybox();
    let mut client = d
        .command(&[
            "exec",
            "c",
            "--",
            "sh",
            "-c",
            "trap 'echo got INT; exit 7' INT; trap 'echo got TERM' TERM; echo ready; while :; do sleep 0.1; done",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut reader = std::io::BufReader::new(client.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut reader, &mut line).unwrap();
    assert_eq!(line, "ready\n");
    let pid = nix::unistd::Pid::from_raw(client.id() as i32);
    // SIGTERM is passed on and the client lives on; then Ctrl+C ends the command its way.
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    line.clear();
    std::io::BufRead::read_line(&mut reader, &mut line).unwrap();
    assert_eq!(line, "got TERM\n");
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    line.clear();
    std::io::BufRead::read_line(&mut reader, &mut line).unwrap();
    assert_eq!(line, "got INT\n");
    let status = client.wait().unwrap();
    assert_eq!(status.code(), Some(7), "the command's own exit: {status:?}");
}
