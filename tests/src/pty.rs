//! Driving a command through a real pty, as a user at a terminal would: the tests for
//! `sysc shell` and `sysc console` type into it, read what it shows, resize it.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::pty::{OpenptyResult, Winsize, openpty};

pub struct Terminal {
    master: std::fs::File,
    /// The terminal side, kept to read its settings after the command exits.
    slave: OwnedFd,
    pub child: Child,
    /// Everything read so far.
    pub screen: String,
}

fn winsize(rows: u16, cols: u16) -> Winsize {
    Winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    }
}

impl Terminal {
    /// Starts `command` with a new pty as its controlling terminal and stdio.
    pub fn spawn(mut command: Command, rows: u16, cols: u16) -> Self {
        let OpenptyResult { master, slave } = openpty(Some(&winsize(rows, cols)), None).expect("openpty");
        let slave_fd = slave.as_raw_fd();
        let stdio = || Stdio::from(slave.try_clone().unwrap());
        command.stdin(stdio()).stdout(stdio()).stderr(stdio());
        // SAFETY: between fork and exec: setsid and an ioctl only.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut command, move || {
                if libc::setsid() < 0 || libc::ioctl(slave_fd, libc::TIOCSCTTY, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command.spawn().expect("spawn on the pty");
        let master = std::fs::File::from(master);
        // SAFETY: making our master nonblocking for expect()'s polling reads.
        unsafe {
            let flags = libc::fcntl(master.as_raw_fd(), libc::F_GETFL);
            libc::fcntl(master.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK);
        }
        Self {
            master,
            slave,
            child,
            screen: String::new(),
        }
    }

    pub fn send(&mut self, text: &str) {
        self.master.write_all(text.as_bytes()).expect("type into the pty");
    }

    /// Reads until `needle` shows up (after what earlier expects consumed); panics with
    /// the screen after `timeout`.
    pub fn expect(&mut self, needle: &str, timeout: Duration) -> String {
        let start = Instant::now();
        let mut buf = [0u8; 4096];
        loop {
            if let Some(at) = self.screen.find(needle) {
                let seen: String = self.screen.drain(..at + needle.len()).collect();
                return seen;
            }
            match self.master.read(&mut buf) {
                Ok(0) => {}
                Ok(n) => self.screen.push_str(&String::from_utf8_lossy(&buf[..n])),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::sleep(Duration::from_millis(10)),
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
            assert!(
                start.elapsed() < timeout,
                "{needle:?} did not show within {timeout:?}; screen:\n{}",
                self.screen
            );
        }
    }

    /// Changes the window size; the kernel sends SIGWINCH to the terminal's foreground.
    pub fn resize(&mut self, rows: u16, cols: u16) {
        // SAFETY: TIOCSWINSZ reads one winsize.
        let rc = unsafe { libc::ioctl(self.master.as_raw_fd(), libc::TIOCSWINSZ, &winsize(rows, cols)) };
        assert_eq!(rc, 0, "resize the pty");
    }

    /// The terminal's settings (to check the client restored what it changed).
    pub fn settings(&self) -> nix::sys::termios::Termios {
        nix::sys::termios::tcgetattr(&self.slave).expect("tcgetattr")
    }

    /// Waits for the command to end; its exit code.
    pub fn wait(&mut self, timeout: Duration) -> i32 {
        let start = Instant::now();
        loop {
            let status = self.child.try_wait().unwrap();
            // What it printed last is still in the pty: keep it for the caller.
            let mut buf = [0u8; 4096];
            while let Ok(n) = self.master.read(&mut buf) {
                if n == 0 {
                    break;
                }
                self.screen.push_str(&String::from_utf8_lossy(&buf[..n]));
            }
            if let Some(status) = status {
                return status.code().unwrap_or(-1);
            }
            assert!(
                start.elapsed() < timeout,
                "command did not end; screen:\n{}",
                self.screen
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
