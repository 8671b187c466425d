//! `sysc shell` and `sysc console` through a real pty on the client side: type, read
//! what comes back, resize, detach — what a user at a terminal does.

use std::time::Duration;

use sysc_tests::{Daemon, Terminal};

const WAIT: Duration = Duration::from_secs(20);

#[test]
fn shell_is_a_login_shell_with_a_terminal_that_follows_resizes() {
    let d = Daemon::start();
    d.ok(&["launch", "busybox", "c"]);
    let mut term = Terminal::spawn(d.command(&["shell", "c"]), 30, 100);
    let before = term.settings();

    term.send("echo $((6*7)); tty; stty size; echo \"home=$HOME\"\r");
    term.expect("42", WAIT);
    term.expect("/dev/pts/", WAIT);
    term.expect("30 100", WAIT);
    term.expect("home=/root", WAIT);

    // A resize of our terminal reaches the remote one.
    term.resize(40, 120);
    std::thread::sleep(Duration::from_millis(300));
    term.send("stty size\r");
    term.expect("40 120", WAIT);

    // Ctrl-C interrupts the remote command, not the client: the next command's output
    // arrives within WAIT, long before the 100 s sleep would have ended.
    term.send("sleep 100; echo finished\r");
    std::thread::sleep(Duration::from_millis(500));
    term.send("\x03");
    term.send("echo still-$((1+1))-here\r");
    term.expect("still-2-here", WAIT);

    // The shell's exit status is ours, and the terminal is as we left it.
    term.send("exit 3\r");
    assert_eq!(term.wait(WAIT), 3);
    let after = term.settings();
    assert_eq!(before.local_flags, after.local_flags, "echo/canonical mode restored");
    assert_eq!(before.input_flags, after.input_flags);
    assert_eq!(before.output_flags, after.output_flags);
}

#[test]
fn the_terminal_is_restored_when_the_client_fails_or_is_killed() {
    let d = Daemon::start();
    d.ok(&["launch", "busybox", "c"]);
    d.ok(&["create", "busybox", "stopped"]);

    let mut failing = Terminal::spawn(d.command(&["shell", "stopped"]), 24, 80);
    let before = failing.settings();
    assert_eq!(failing.wait(WAIT), 1);
    assert!(
        failing.screen.contains("container stopped is not running"),
        "{}",
        failing.screen
    );
    assert_eq!(before.local_flags, failing.settings().local_flags);

    let mut killed = Terminal::spawn(d.command(&["shell", "c"]), 24, 80);
    let before = killed.settings();
    killed.send("echo ready-$((2*3))\r");
    killed.expect("ready-6", WAIT);
    // SAFETY: kill(2) of the sysc client we started.
    unsafe { libc::kill(killed.child.id() as i32, libc::SIGTERM) };
    killed.wait(WAIT);
    assert_eq!(
        before.local_flags,
        killed.settings().local_flags,
        "raw mode left on after SIGTERM"
    );
}

#[test]
fn exec_with_a_tty_gets_term_and_a_pty() {
    let d = Daemon::start();
    d.ok(&["launch", "busybox", "c"]);
    let mut command = d.command(&["exec", "-t", "c", "--", "sh", "-c", "tty; echo TERM=$TERM; exit 4"]);
    command.env("TERM", "vt220");
    let mut term = Terminal::spawn(command, 24, 80);
    term.expect("/dev/pts/", WAIT);
    term.expect("TERM=vt220", WAIT);
    assert_eq!(term.wait(WAIT), 4);
}

#[test]
fn console_shows_the_login_prompt_detaches_and_keeps_a_log() {
    let mut d = Daemon::start();
    d.ok(&["launch", "busybox", "c"]);
    let mut term = Terminal::spawn(d.command(&["console", "c"]), 24, 80);
    term.send("\r");
    term.expect("c login:", WAIT);
    // busybox login lets root in without a password in this image.
    term.send("root\r");
    term.expect("#", WAIT);
    term.send("echo console-$((40+2))\r");
    term.expect("console-42", WAIT);
    // Ctrl+a q detaches; the container keeps running.
    term.send("\x01q");
    assert_eq!(term.wait(WAIT), 0);
    assert_eq!(d.state("c"), "RUNNING");

    // The log has what the console showed, and survives a daemon restart.
    d.restart();
    let log = d.ok(&["console", "c", "--show-log"]);
    assert!(log.contains("c login:") && log.contains("console-42"), "{log}");
}

#[test]
fn debian_shell_and_console() {
    let d = Daemon::start();
    d.ok(&["launch", "debian", "web"]);
    let mut term = Terminal::spawn(d.command(&["shell", "web"]), 24, 80);
    term.send("systemctl is-system-running --wait; echo pid1=$(cat /proc/1/comm)\r");
    term.expect("pid1=systemd", Duration::from_secs(60));
    term.send("exit\r");
    assert_eq!(term.wait(WAIT), 0);

    let mut console = Terminal::spawn(d.command(&["console", "web"]), 24, 80);
    console.send("\r");
    console.expect("web login:", Duration::from_secs(60));
    console.send("\x01q");
    assert_eq!(console.wait(WAIT), 0);
}
