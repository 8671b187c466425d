//! The local end of an interactive session (exec, shell, console): the terminal's mode and
//! size, and stdin read as it arrives.

use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::panic;
use std::sync::{Mutex, MutexGuard, Once, PoisonError};
use std::thread;

use nix::libc;
use nix::sys::termios::{self, SetArg, Termios};
use sysc_proto::v1::WindowSize;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// The most stdin bytes one request carries.
const STDIN_CHUNK_SIZE: usize = 64 * 1024;

/// Chunks read ahead of the requests they become; the reader waits beyond that, so a fast
/// stdin is throttled by the daemon rather than piling up in memory.
const STDIN_CHUNKS_AHEAD: usize = 4;

/// The terminal's mode from before raw mode, while raw mode is on. A static rather than a
/// field of `RawMode` because the panic hook and the termination-signal task restore it too.
static SAVED_MODE: Mutex<Option<libc::termios>> = Mutex::new(None);

/// Raw mode on the local terminal (stdin) while this lives: keys, Ctrl-C included, go to
/// the other side as typed, and its output is shown as sent.
///
/// The previous mode comes back when this is dropped, when the process panics, and when a
/// termination signal ends the process (raw mode turns off the keys that send signals, but
/// `kill` still can).
pub struct RawMode {
    exit_on_termination: JoinHandle<()>,
}

impl RawMode {
    /// Must be called inside the runtime: termination signals are watched by a task.
    pub fn enable() -> io::Result<Self> {
        let terminations = TerminationSignals::watch()?;
        let stdin = io::stdin();
        let original = termios::tcgetattr(&stdin)?;
        let mut raw = original.clone();
        termios::cfmakeraw(&mut raw);

        *saved_mode() = Some(original.into());
        restore_on_panic();
        if let Err(err) = termios::tcsetattr(&stdin, SetArg::TCSADRAIN, &raw) {
            saved_mode().take();
            return Err(err.into());
        }
        Ok(Self {
            exit_on_termination: tokio::spawn(terminations.restore_and_exit()),
        })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        self.exit_on_termination.abort();
        restore_saved_mode();
    }
}

fn saved_mode() -> MutexGuard<'static, Option<libc::termios>> {
    // The lock is only held to swap the value, so a poisoned one still holds a good value.
    SAVED_MODE.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Puts back the mode raw mode replaced, once, whoever gets here first.
fn restore_saved_mode() {
    let saved = saved_mode().take();
    if let Some(mode) = saved {
        // Nothing better to do on failure: the terminal may be gone already (SIGHUP).
        let _ = termios::tcsetattr(io::stdin(), SetArg::TCSADRAIN, &Termios::from(mode));
    }
}

/// Restores the terminal before the panic message is printed, so it reads normally, and
/// also when the panic is on another thread than the raw mode guard's.
fn restore_on_panic() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous_hook = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            restore_saved_mode();
            previous_hook(info);
        }));
    });
}

/// The signals that would end the process without running destructors.
struct TerminationSignals {
    hangup: Signal,
    interrupt: Signal,
    quit: Signal,
    terminate: Signal,
}

impl TerminationSignals {
    fn watch() -> io::Result<Self> {
        Ok(Self {
            hangup: signal(SignalKind::hangup())?,
            interrupt: signal(SignalKind::interrupt())?,
            quit: signal(SignalKind::quit())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    /// Exits as the shell reports a death by signal, 128 + its number, with the terminal
    /// restored; the daemon sees the connection close, as it would have without this.
    async fn restore_and_exit(mut self) {
        let kind = tokio::select! {
            _ = self.hangup.recv() => SignalKind::hangup(),
            _ = self.interrupt.recv() => SignalKind::interrupt(),
            _ = self.quit.recv() => SignalKind::quit(),
            _ = self.terminate.recv() => SignalKind::terminate(),
        };
        restore_saved_mode();
        std::process::exit(128 + kind.as_raw_value());
    }
}

nix::ioctl_read_bad!(read_window_size, libc::TIOCGWINSZ, libc::winsize);

/// The local terminal's size: the one showing our output first, else the one we read from.
/// None without a terminal, or when it reports no size (some serial lines).
pub fn window_size() -> Option<WindowSize> {
    [
        io::stdout().as_raw_fd(),
        io::stdin().as_raw_fd(),
        io::stderr().as_raw_fd(),
    ]
    .into_iter()
    .find_map(|fd| {
        let mut size = libc::winsize {
            ws_row: 0,
            ws_col: 0,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCGWINSZ writes one winsize through the pointer, which is to a local.
        unsafe { read_window_size(fd, &mut size) }.ok()?;
        (size.ws_row > 0 && size.ws_col > 0).then(|| WindowSize {
            rows: size.ws_row.into(),
            cols: size.ws_col.into(),
        })
    })
}

/// The local terminal's size each time it changes (SIGWINCH).
pub struct WindowChanges {
    signal: Option<Signal>,
}

impl WindowChanges {
    /// Without a terminal on the other side there is no size to keep in step; `watch(false)`
    /// gives a `WindowChanges` that never reports one.
    pub fn watch(wanted: bool) -> io::Result<Self> {
        let signal = if wanted {
            Some(signal(SignalKind::window_change())?)
        } else {
            None
        };
        Ok(Self { signal })
    }

    /// Waits for the next change; never returns when not watching.
    pub async fn next(&mut self) -> WindowSize {
        if let Some(signal) = &mut self.signal {
            while signal.recv().await.is_some() {
                if let Some(size) = window_size() {
                    return size;
                }
            }
        }
        std::future::pending().await
    }
}

/// Reads stdin on a thread of its own and hands over its bytes in chunks as they arrive;
/// the receiver sees the channel close at the end of input.
///
/// A plain thread rather than tokio's stdin: a read that blocks on a terminal cannot be
/// interrupted, and tokio waits for its blocking tasks when the runtime shuts down, so the
/// process could not exit until a key is pressed. This thread just dies with the process.
pub fn read_stdin() -> io::Result<mpsc::Receiver<Vec<u8>>> {
    let (chunks, received) = mpsc::channel(STDIN_CHUNKS_AHEAD);
    thread::Builder::new()
        .name("stdin".to_string())
        .spawn(move || forward_chunks(io::stdin().lock(), &chunks))?;
    Ok(received)
}

/// Ends at the end of input, on a read error, or when nobody receives any more.
fn forward_chunks(mut input: impl Read, chunks: &mpsc::Sender<Vec<u8>>) {
    let mut buffer = vec![0; STDIN_CHUNK_SIZE];
    loop {
        let length = match input.read(&mut buffer) {
            Ok(0) => return,
            Ok(length) => length,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            // An unreadable stdin (closed, opened write-only, a vanished terminal) has
            // nothing to give: that is the end of input, not a failure of the command.
            Err(_) => return,
        };
        if chunks.blocking_send(buffer[..length].to_vec()).is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(input: impl Read + Send + 'static) -> Vec<Vec<u8>> {
        let (chunks, mut received) = mpsc::channel(STDIN_CHUNKS_AHEAD);
        let reader = thread::spawn(move || forward_chunks(input, &chunks));
        let mut all = Vec::new();
        while let Some(chunk) = received.blocking_recv() {
            all.push(chunk);
        }
        reader.join().unwrap();
        all
    }

    #[test]
    fn stdin_arrives_whole_in_bounded_chunks() {
        let input: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let chunks = collect(io::Cursor::new(input.clone()));
        assert!(
            chunks
                .iter()
                .all(|chunk| !chunk.is_empty() && chunk.len() <= STDIN_CHUNK_SIZE)
        );
        assert_eq!(chunks.concat(), input);
    }

    #[test]
    fn empty_stdin_is_an_immediate_end() {
        assert!(collect(io::empty()).is_empty());
    }

    /// Yields its steps in turn: bytes, errors, then the end of input.
    struct Scripted(Vec<io::Result<Vec<u8>>>);

    impl Read for Scripted {
        fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
            if self.0.is_empty() {
                return Ok(0);
            }
            let data = self.0.remove(0)?;
            buffer[..data.len()].copy_from_slice(&data);
            Ok(data.len())
        }
    }

    #[test]
    fn interrupted_reads_are_retried() {
        let input = Scripted(vec![
            Ok(b"ab".to_vec()),
            Err(io::ErrorKind::Interrupted.into()),
            Ok(b"c".to_vec()),
        ]);
        assert_eq!(collect(input).concat(), b"abc");
    }

    #[test]
    fn an_unreadable_stdin_ends_input() {
        // EBADF: stdin closed, or opened for writing only.
        let input = Scripted(vec![
            Ok(b"ab".to_vec()),
            Err(io::Error::from_raw_os_error(libc::EBADF)),
            Ok(b"never".to_vec()),
        ]);
        assert_eq!(collect(input), [b"ab".to_vec()]);
    }

    #[test]
    fn reading_stops_when_nobody_listens() {
        let (chunks, received) = mpsc::channel(1);
        drop(received);
        // Would never end if the closed channel went unnoticed.
        forward_chunks(io::repeat(b'x'), &chunks);
    }
}
