//! `sysc file`: push, pull, edit, ls, mkdir and delete on running and stopped
//! containers, through the real CLI and daemon; checked the way a user would, with
//! `exec` inside the container and by looking at the host.

use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use sysc_tests::Daemon;

fn busybox() -> Daemon {
    let d = Daemon::start();
    d.ok(&["launch", "busybox", "c"]);
    d.ok(&["exec", "c", "--", "mkdir", "/srv"]);
    d
}

fn sh(d: &Daemon, script: &str) -> String {
    d.ok(&["exec", "c", "--", "sh", "-c", script])
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn sha256(data: &[u8]) -> String {
    use std::io::Write;
    let mut child = std::process::Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(data).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

fn random_bytes(len: usize) -> Vec<u8> {
    let mut data = vec![0u8; len];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for byte in data.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *byte = x as u8;
    }
    data
}

#[test]
fn pushed_files_have_their_bytes_owner_and_mode_inside() {
    let d = busybox();
    let dir = tempfile::tempdir().unwrap();
    let data = random_bytes(3 << 20);
    let src = dir.path().join("data.bin");
    std::fs::write(&src, &data).unwrap();
    std::fs::set_permissions(&src, std::fs::Permissions::from_mode(0o640)).unwrap();

    // Into a directory: the source's name, its mode, owned by the container's root.
    d.ok(&["file", "push", path(&src), "c/root/"]);
    let inside = sh(&d, "sha256sum /root/data.bin; stat -c '%u %g %a' /root/data.bin");
    assert_eq!(inside, format!("{}  /root/data.bin\n0 0 640\n", sha256(&data)));

    // As a named file with owner and mode given.
    d.ok(&[
        "file",
        "push",
        path(&src),
        "c/root/owned",
        "--uid",
        "1000",
        "--gid",
        "1001",
        "--mode",
        "4750",
    ]);
    assert_eq!(sh(&d, "stat -c '%u %g %a' /root/owned"), "1000 1001 4750\n");
    // On the host the idmapped rootfs keeps the container's own ids.
    let host = std::fs::metadata(d.pool_dir().join("containers/c/rootfs/root/owned")).unwrap();
    assert_eq!((host.uid(), host.gid()), (1000, 1001));

    // Replacing a file keeps its owner when none is given.
    d.ok(&["file", "push", path(&src), "c/root/owned"]);
    assert_eq!(sh(&d, "stat -c '%u %g %a' /root/owned"), "1000 1001 640\n");

    // stdin, and several sources into a directory made with -p.
    let out = d.sysc_stdin(&["file", "push", "-", "c/root/stdin.txt"], Some(b"from stdin\n"));
    assert!(out.success(), "{}", out.stderr);
    assert_eq!(
        sh(&d, "cat /root/stdin.txt; stat -c %a /root/stdin.txt"),
        "from stdin\n644\n"
    );
    let second = dir.path().join("second");
    std::fs::write(&second, "two\n").unwrap();
    d.ok(&["file", "push", "-p", path(&src), path(&second), "c/srv/new/dir"]);
    assert_eq!(
        sh(&d, "ls /srv/new/dir; stat -c '%u %a' /srv/new /srv/new/dir"),
        "data.bin\nsecond\n0 755\n0 755\n"
    );

    // Pulled back: the same bytes, to a file, into a directory, and to stdout.
    d.ok(&["file", "pull", "c/root/data.bin", path(&dir.path().join("back.bin"))]);
    assert_eq!(std::fs::read(dir.path().join("back.bin")).unwrap(), data);
    let into = dir.path().join("into");
    std::fs::create_dir(&into).unwrap();
    d.ok(&["file", "pull", "c/root/owned", "c/root/stdin.txt", path(&into)]);
    assert_eq!(std::fs::read(into.join("owned")).unwrap(), data);
    // A set-id program in the container is not one on the host, alone or in a tree.
    d.ok(&["file", "push", path(&src), "c/root/suid", "--mode", "6755"]);
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    d.ok(&["file", "pull", "c/root/suid", path(&into)]);
    assert_eq!(mode(&into.join("suid")), 0o755);
    d.ok(&["file", "pull", "-r", "c/root", path(&dir.path().join("tree"))]);
    assert_eq!(mode(&dir.path().join("tree/suid")), 0o755);
    assert_eq!(std::fs::read_to_string(into.join("stdin.txt")).unwrap(), "from stdin\n");
    assert_eq!(d.ok(&["file", "pull", "c/root/stdin.txt", "-"]), "from stdin\n");
}

#[test]
fn pulls_write_into_devices_and_through_symlinks_like_cp() {
    let d = busybox();
    sh(&d, "echo payload > /root/f");
    let dir = tempfile::tempdir().unwrap();

    // A device is written into, not replaced by a regular file (this one is /dev/null's
    // twin, made here so that a regression cannot clobber the host's own).
    let null = dir.path().join("null");
    nix::sys::stat::mknod(
        &null,
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::from_bits_truncate(0o666),
        nix::sys::stat::makedev(1, 3),
    )
    .unwrap();
    d.ok(&["file", "pull", "c/root/f", path(&null)]);
    let meta = std::fs::symlink_metadata(&null).unwrap();
    assert!(meta.file_type().is_char_device(), "{:?}", meta.file_type());
    assert_eq!(meta.rdev(), nix::sys::stat::makedev(1, 3));

    // A symlink to a file stays a symlink; the file it names gets the bytes.
    let real = dir.path().join("real");
    std::fs::write(&real, "old\n").unwrap();
    let link = dir.path().join("link");
    symlink(&real, &link).unwrap();
    d.ok(&["file", "pull", "c/root/f", path(&link)]);
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
    assert_eq!(std::fs::read_to_string(&real).unwrap(), "payload\n");

    // A dangling one is refused, and nothing is made.
    let dangling = dir.path().join("dangling");
    symlink(dir.path().join("nowhere"), &dangling).unwrap();
    let out = d.sysc(&["file", "pull", "c/root/f", path(&dangling)]);
    assert!(!out.success());
    assert!(out.stderr.contains("dangling symlink"), "{}", out.stderr);
    assert!(!dir.path().join("nowhere").exists());
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left.len(), 4, "{left:?}");
}

/// The open files of `pid` whose links end in `suffix`.
fn holds(pid: u32, suffix: &str) -> bool {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|fds| {
            fds.filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
                .any(|target| target.to_string_lossy().ends_with(suffix))
        })
        .unwrap_or(false)
}

/// Pulls `source` into a FIFO nobody reads yet, so the client stops there; says whether
/// it held the container's file meanwhile, then reads the FIFO and returns the bytes.
fn pull_through_fifo(d: &Daemon, elsewhere: bool, source: &str, held: &str) -> (bool, Vec<u8>) {
    use std::io::Read;
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let mut command = d.command(&["file", "pull", source, path(&fifo)]);
    if elsewhere {
        command = sysc_tests::in_own_network_namespace(command);
    }
    let mut client = command.spawn().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let mut was_held = false;
    while !was_held && std::time::Instant::now() < deadline {
        was_held = holds(client.id(), held);
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // Read whatever happened, so the client is never left waiting on the FIFO.
    let mut bytes = Vec::new();
    std::fs::File::open(&fifo).unwrap().read_to_end(&mut bytes).unwrap();
    assert!(client.wait().unwrap().success());
    (was_held, bytes)
}

#[test]
fn a_local_pull_reads_the_file_itself_and_others_get_it_streamed() {
    let d = busybox();
    let data = random_bytes(8 << 20);
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("pulled-by-descriptor");
    std::fs::write(&src, &data).unwrap();
    d.ok(&["file", "push", path(&src), "c/root/"]);

    // Beside syscd: the client is handed the container's file and copies it itself.
    let (held, bytes) = pull_through_fifo(&d, false, "c/root/pulled-by-descriptor", "/root/pulled-by-descriptor");
    assert!(held, "the client never held the container's file");
    assert!(
        bytes == data,
        "{} bytes came, not the file's {}",
        bytes.len(),
        data.len()
    );

    // From another network namespace syscd cannot reach the client's socket: streamed,
    // the same bytes.
    let (held, bytes) = pull_through_fifo(&d, true, "c/root/pulled-by-descriptor", "/root/pulled-by-descriptor");
    assert!(!held, "a client in another network namespace was handed the file");
    assert!(
        bytes == data,
        "{} bytes came, not the file's {}",
        bytes.len(),
        data.len()
    );
}

#[test]
fn stopped_containers_take_the_same_requests() {
    let d = busybox();
    d.ok(&["stop", "c", "--force"]);
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("conf");
    std::fs::write(&src, "while stopped\n").unwrap();
    d.ok(&["file", "mkdir", "c/srv/app", "--uid", "5", "--gid", "6"]);
    d.ok(&["file", "push", path(&src), "c/srv/app/", "--uid", "5", "--mode", "0600"]);
    assert_eq!(d.ok(&["file", "pull", "c/srv/app/conf", "-"]), "while stopped\n");
    let listed = d.ok(&["file", "ls", "c/srv/app", "--format", "json"]);
    let entries: serde_json::Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(entries[0]["name"], "conf");
    assert_eq!(
        (entries[0]["uid"].as_u64(), entries[0]["mode"].as_str()),
        (Some(5), Some("0600"))
    );

    d.ok(&["start", "c"]);
    assert_eq!(
        sh(&d, "cat /srv/app/conf; stat -c '%u %g %a' /srv/app/conf /srv/app"),
        "while stopped\n5 0 600\n5 6 755\n"
    );
    d.ok(&["stop", "c", "--force"]);
    d.ok(&["file", "delete", "-f", "c/srv/app"]);
    d.ok(&["start", "c"]);
    assert_eq!(sh(&d, "test -e /srv/app || echo gone"), "gone\n");
}

#[test]
fn paths_are_those_the_running_container_sees() {
    let d = busybox();
    // /run is a tmpfs of the container's own: not in the rootfs on the host.
    let out = d.sysc_stdin(&["file", "push", "-", "c/run/pushed"], Some(b"on the tmpfs\n"));
    assert!(out.success(), "{}", out.stderr);
    assert_eq!(sh(&d, "cat /run/pushed"), "on the tmpfs\n");
    assert!(!d.pool_dir().join("containers/c/rootfs/run/pushed").exists());
    // A mount the container made itself.
    sh(
        &d,
        "mkdir -p /mnt/t && mount -t tmpfs scratch /mnt/t && echo mounted > /mnt/t/inside",
    );
    assert_eq!(d.ok(&["file", "pull", "c/mnt/t/inside", "-"]), "mounted\n");
    assert!(!d.pool_dir().join("containers/c/rootfs/mnt/t/inside").exists());
}

/// A tree with what trips transfers up: odd names, symlinks of every kind, modes, an
/// empty directory, old mtimes.
fn odd_tree(root: &Path) -> PathBuf {
    let top = root.join("tree");
    std::fs::create_dir_all(top.join("dir with space/deeper/still")).unwrap();
    std::fs::create_dir(top.join("empty")).unwrap();
    std::fs::write(top.join("unicodé ☃.txt"), "snow\n").unwrap();
    std::fs::write(top.join("new\nline"), "newline name\n").unwrap();
    std::fs::write(top.join("dir with space/deeper/still/data"), random_bytes(200_000)).unwrap();
    let script = top.join("run.sh");
    std::fs::write(&script, "#!/bin/sh\necho run\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let secret = top.join("secret");
    std::fs::write(&secret, "s\n").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    symlink("unicodé ☃.txt", top.join("relative link")).unwrap();
    symlink("/etc/hostname", top.join("absolute")).unwrap();
    symlink("nowhere", top.join("dangling")).unwrap();
    symlink("dir with space", top.join("dirlink")).unwrap();
    let old = nix::sys::time::TimeSpec::new(1_500_000_000, 0);
    for entry in walk(&top) {
        nix::sys::stat::utimensat(
            nix::fcntl::AT_FDCWD,
            &entry,
            &old,
            &old,
            nix::sys::stat::UtimensatFlags::NoFollowSymlink,
        )
        .unwrap();
    }
    top
}

/// Every path below `top` (and `top`), deepest last.
fn walk(top: &Path) -> Vec<PathBuf> {
    let mut out = vec![top.to_path_buf()];
    let mut i = 0;
    while i < out.len() {
        let p = out[i].clone();
        if std::fs::symlink_metadata(&p).unwrap().is_dir() {
            let mut children: Vec<PathBuf> = std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()).collect();
            children.sort();
            out.extend(children);
        }
        i += 1;
    }
    out
}

/// What must survive a round trip, for every entry: type, mode, owner, mtime, content or
/// link target.
fn describe(top: &Path) -> Vec<String> {
    walk(top)
        .into_iter()
        .map(|p| {
            let m = std::fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(top).unwrap().display().to_string();
            let body = if m.file_type().is_symlink() {
                format!("-> {}", std::fs::read_link(&p).unwrap().display())
            } else if m.is_file() {
                sha256(&std::fs::read(&p).unwrap())
            } else {
                "dir".into()
            };
            let mtime = if m.is_dir() { 0 } else { m.mtime() };
            format!("{rel:?} {:o} {}:{} {mtime} {body}", m.mode(), m.uid(), m.gid())
        })
        .collect()
}

#[test]
fn trees_round_trip_with_symlinks_odd_names_modes_and_mtimes() {
    let d = busybox();
    let dir = tempfile::tempdir().unwrap();
    let tree = odd_tree(dir.path());

    d.ok(&["file", "push", "-r", path(&tree), "c/srv/"]);
    let inside = sh(
        &d,
        "cd /srv/tree && for l in 'relative link' absolute dangling; do readlink \"$l\"; done && cat \"$(printf 'new\\nline')\" \
         && stat -c '%a %u %Y' run.sh secret && ls -d empty",
    );
    assert_eq!(
        inside,
        "unicodé ☃.txt\n/etc/hostname\nnowhere\nnewline name\n755 0 1500000000\n600 0 1500000000\nempty\n"
    );

    // Back out, into a directory that does not exist yet: it becomes the tree.
    let back = dir.path().join("back");
    d.ok(&["file", "pull", "-r", "c/srv/tree", path(&back)]);
    assert_eq!(describe(&back), describe(&tree));

    // Into an existing directory: the tree goes inside it, under its own name.
    let into = dir.path().join("into");
    std::fs::create_dir(&into).unwrap();
    d.ok(&["file", "pull", "-r", "c/srv/tree", path(&into)]);
    assert_eq!(describe(&into.join("tree")), describe(&tree));

    // A second push merges: new files arrive, changed ones are replaced.
    std::fs::write(tree.join("secret"), "changed\n").unwrap();
    std::fs::write(tree.join("added"), "new\n").unwrap();
    d.ok(&[
        "file",
        "push",
        "-r",
        path(&tree),
        "c/srv/",
        "--uid",
        "33",
        "--gid",
        "34",
    ]);
    assert_eq!(
        sh(
            &d,
            "cat /srv/tree/secret /srv/tree/added; stat -c '%u:%g' /srv/tree/added /srv/tree/empty"
        ),
        "changed\nnew\n33:34\n33:34\n"
    );

    // A symlink to the tree on the command line names the result, as with cp.
    let link = dir.path().join("shortcut");
    symlink(&tree, &link).unwrap();
    d.ok(&["file", "push", "-r", path(&link), "c/srv/"]);
    assert_eq!(sh(&d, "cat /srv/shortcut/added; ls /srv"), "new\nshortcut\ntree\n");
}

#[test]
fn the_whole_root_of_a_running_container_can_be_pulled() {
    let d = busybox();
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("root");
    let out = d.sysc(&["file", "pull", "-r", "c/", path(&dest)]);
    assert!(out.success(), "{}", out.stderr);
    assert_eq!(std::fs::read_to_string(dest.join("etc/hostname")).unwrap(), "c\n");
    assert!(dest.join("bin/busybox").is_file());
    // The kernel's interfaces mounted inside are mount points here, empty.
    for mount in ["proc", "sys", "dev/pts"] {
        let entries = std::fs::read_dir(dest.join(mount)).unwrap().count();
        assert_eq!(entries, 0, "{mount} was walked");
    }
}

#[test]
fn edit_pushes_back_only_a_change_keeping_owner_and_mode() {
    let d = busybox();
    sh(
        &d,
        "echo 'port=80' > /srv/app.conf && chown 7:8 /srv/app.conf && chmod 640 /srv/app.conf",
    );
    let inode = || sh(&d, "stat -c %i /srv/app.conf");
    let before = inode();

    let edit = |editor: &str| {
        d.command(&["file", "edit", "c/srv/app.conf"])
            .env("VISUAL", editor)
            .output()
            .unwrap()
    };
    // An editor that changes nothing: nothing is written back (the file keeps its inode).
    assert!(edit("true").status.success());
    assert_eq!(inode(), before);
    // A failing editor: an error, the file untouched.
    let failed = edit("false");
    assert!(!failed.status.success());
    assert!(String::from_utf8_lossy(&failed.stderr).contains("is unchanged"));
    assert_eq!(sh(&d, "cat /srv/app.conf"), "port=80\n");

    let out = edit("sed -i s/80/8080/");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        sh(&d, "cat /srv/app.conf; stat -c '%u %g %a' /srv/app.conf"),
        "port=8080\n7 8 640\n"
    );
}

#[test]
fn ls_mkdir_and_delete() {
    let d = busybox();
    d.ok(&["file", "mkdir", "-p", "c/srv/a/b/c", "--mode", "0700", "--uid", "3"]);
    assert_eq!(sh(&d, "stat -c '%a %u' /srv/a /srv/a/b/c"), "700 3\n700 3\n");
    let err = d.fails(&["file", "mkdir", "c/srv/a"]);
    assert!(err.contains("/srv/a already exists"), "{err}");
    d.ok(&["file", "mkdir", "-p", "c/srv/a"]);

    sh(
        &d,
        "echo x > /srv/a/file && ln -s /srv/a/file /srv/a/link && mkfifo /srv/a/fifo",
    );
    let table = d.ok(&["file", "ls", "c/srv/a"]);
    for expected in [
        "drwx------",
        "b",
        "-rw-r--r--",
        "file",
        "link -> /srv/a/file",
        "prw-r--r--",
        "fifo",
    ] {
        assert!(table.contains(expected), "{expected} missing from\n{table}");
    }
    // A symlink is listed as itself, a trailing slash lists what it points at.
    assert!(d.ok(&["file", "ls", "c/srv/a/link"]).contains("link -> /srv/a/file"));
    sh(&d, "ln -s a /srv/alink");
    assert!(d.ok(&["file", "ls", "c/srv/alink/"]).contains("fifo"));

    let err = d.fails(&["file", "delete", "c/srv/a"]);
    assert!(err.contains("not empty (use -f"), "{err}");
    d.ok(&["file", "delete", "c/srv/a/link"]);
    assert_eq!(sh(&d, "ls /srv/a"), "b\nfifo\nfile\n");
    d.ok(&["file", "delete", "-f", "c/srv/a"]);
    assert_eq!(sh(&d, "ls /srv"), "alink\n");
    let err = d.fails(&["file", "delete", "c/srv/a"]);
    assert!(err.contains("/srv/a: no such file or directory"), "{err}");
    d.ok(&["file", "delete", "-f", "c/srv/a"]);
    // A missing directory on the way is named as a user would write it.
    let err = d.fails(&["file", "ls", "c/srv/a/deeper"]);
    assert!(err.ends_with("/srv/a: no such file or directory\n"), "{err:?}");
}

#[test]
fn transfers_show_progress_on_a_terminal_only() {
    let d = busybox();
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big");
    std::fs::File::create(&big).unwrap().set_len(256 << 20).unwrap();
    let timeout = std::time::Duration::from_secs(60);

    let mut term = sysc_tests::Terminal::spawn(d.command(&["file", "push", path(&big), "c/root/"]), 24, 120);
    term.expect("Pushing", timeout);
    term.expect("MiB/256.00 MiB", timeout);
    assert_eq!(term.wait(timeout), 0);

    // -p makes the local directories; a script sees no progress, just the result.
    let dest = dir.path().join("made/here/");
    let quiet = d.sysc(&["file", "pull", "-p", "c/root/big", path(&dest)]);
    assert!(quiet.success(), "{}", quiet.stderr);
    assert_eq!((quiet.stdout.as_str(), quiet.stderr.as_str()), ("", ""));
    assert_eq!(std::fs::metadata(dest.join("big")).unwrap().len(), 256 << 20);

    let mut term = sysc_tests::Terminal::spawn(d.command(&["file", "pull", "c/root/big", path(dir.path())]), 24, 120);
    term.expect("Pulling c/root/big", timeout);
    assert_eq!(term.wait(timeout), 0);

    // A small file pulled to stdout on a terminal is shown there.
    sh(&d, "echo 'shown on the terminal' > /root/small");
    let mut term = sysc_tests::Terminal::spawn(d.command(&["file", "pull", "c/root/small", "-"]), 24, 120);
    term.expect("shown on the terminal", timeout);
    assert_eq!(term.wait(timeout), 0);
}
