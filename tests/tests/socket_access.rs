//! The local API answers root and members of group `sysc` only: the socket file's mode
//! says so, and the daemon checks every caller's credentials even when the mode does not.
//!
//! Membership itself is covered by the daemon's unit tests: a test creating a host group
//! `sysc` would change the machine for everything else running on it.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use nix::unistd::{Gid, Group, Uid};
use sysc_tests::{Daemon, Output, binary};

const NOBODY: u32 = 65534;

/// `sysc ARGS...` as uid/gid 65534 with no supplementary groups, from a copy of the
/// binary nobody can run wherever the build tree is.
fn sysc_as_nobody(d: &Daemon, args: &[&str]) -> Output {
    let exe = d.dir.path().join("sysc-nobody");
    if !exe.exists() {
        std::fs::copy(binary("sysc"), &exe).unwrap();
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let mut command = Command::new(&exe);
    command
        .args(args)
        .env("SYSC_SOCKET", &d.socket)
        .env("HOME", "/nonexistent")
        .stdin(Stdio::null());
    // SAFETY: only async-signal-safe syscalls between fork and exec.
    unsafe {
        command.pre_exec(|| {
            nix::unistd::setgroups(&[])?;
            nix::unistd::setgid(Gid::from_raw(NOBODY))?;
            nix::unistd::setuid(Uid::from_raw(NOBODY))?;
            Ok(())
        });
    }
    let output = command.output().expect("run sysc as nobody");
    Output {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

#[test]
fn socket_is_root_only_unless_the_host_has_group_sysc() {
    let d = Daemon::start();
    let meta = std::fs::metadata(&d.socket).unwrap();
    assert_eq!(meta.uid(), 0);
    match Group::from_name("sysc").unwrap() {
        Some(group) => {
            assert_eq!(meta.mode() & 0o777, 0o660, "socket mode {:o}", meta.mode());
            assert_eq!(meta.gid(), group.gid.as_raw());
        }
        None => {
            assert_eq!(meta.mode() & 0o777, 0o600, "socket mode {:o}", meta.mode());
            assert_eq!(meta.gid(), 0);
        }
    }
}

#[test]
fn daemon_refuses_callers_that_are_neither_root_nor_in_group_sysc() {
    let d = Daemon::start();
    // The test's directory is root's alone; nobody must be able to reach the socket in it.
    std::fs::set_permissions(d.dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
    if Group::from_name("sysc").unwrap().is_none() {
        // The file mode keeps nobody out first.
        let out = sysc_as_nobody(&d, &["list"]);
        assert!(!out.success(), "{}", out.stdout);
        assert!(out.stderr.contains("Permission denied"), "{}", out.stderr);
    }

    // With the mode out of the way, the daemon's own check still refuses, on every service.
    std::fs::set_permissions(&d.socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    for args in [&["list"][..], &["info", "--host"], &["config", "keys"]] {
        let out = sysc_as_nobody(&d, args);
        assert!(!out.success(), "sysc {args:?} as nobody: {}", out.stdout);
        assert!(
            out.stderr.contains("permission denied") && out.stderr.contains(&NOBODY.to_string()),
            "sysc {args:?} as nobody: {}",
            out.stderr
        );
        assert!(out.stderr.contains("group sysc"), "{}", out.stderr);
    }
    assert!(d.log().contains("refused an API call"), "{}", d.log());

    // Root is not affected.
    d.ok(&["list"]);
    d.ok(&["info", "--host"]);
}
