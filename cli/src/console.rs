//! `console`: attach to a container's console (the init's /dev/console) until the user
//! detaches with Ctrl+a q or the container stops; or print the console's log.

use std::io::{self, IsTerminal, Write};
use std::mem;
use std::time::Duration;

use sysc_proto::v1::containers_client::ContainersClient;
use sysc_proto::v1::{ConsoleAttach, ConsoleLogRequest, ConsoleRequest, ConsoleResponse, console_request};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Streaming;
use tonic::transport::Channel;

use crate::connect::rpc_error;
use crate::terminal::{self, RawMode, WindowChanges};

/// Ctrl+a, then q: the keys screen and lxc use, rarely needed by what runs on a console.
const DETACH_PREFIX: u8 = 0x01;
/// After Ctrl+a, the key that sends a Ctrl+a itself (screen's).
const LITERAL_PREFIX_KEY: u8 = b'a';
const DETACH_KEY: u8 = b'q';

/// Requests waiting for the connection; stdin's own read-ahead is what bounds the memory.
const REQUESTS_AHEAD: usize = 4;

/// How long a detached client waits for syscd to end the call after the request stream
/// ends. A clean end rather than a cancel, but a slow daemon must not keep the user waiting.
const DETACH_GRACE: Duration = Duration::from_millis(500);

pub async fn show_log(channel: Channel, name: String) -> anyhow::Result<()> {
    let log = ContainersClient::new(channel)
        .console_log(ConsoleLogRequest { name })
        .await
        .map_err(rpc_error)?
        .into_inner()
        .log;
    let mut stdout = io::stdout().lock();
    stdout.write_all(&log)?;
    stdout.flush()?;
    Ok(())
}

pub async fn attach(channel: Channel, name: String) -> anyhow::Result<()> {
    let stdin_is_terminal = io::stdin().is_terminal();
    let attach = ConsoleRequest {
        request: Some(console_request::Request::Attach(ConsoleAttach {
            name: name.clone(),
            window: terminal::window_size(),
        })),
    };
    let (requests, queued) = mpsc::channel(REQUESTS_AHEAD);
    let request_stream = tokio_stream::once(attach).chain(ReceiverStream::new(queued));
    let mut responses = ContainersClient::new(channel)
        .console(request_stream)
        .await
        .map_err(rpc_error)?
        .into_inner();

    // Before raw mode, where a newline would not return the cursor to the line's start.
    eprintln!("To detach from the console, press: <ctrl>+a q");
    let raw_mode = stdin_is_terminal.then(RawMode::enable).transpose()?;
    // The console is a terminal whatever ours is, so its size follows ours when we have one.
    let window_changes = WindowChanges::watch(true)?;
    let stdin = terminal::read_stdin()?;
    let detached = tokio::select! {
        Detached = forward_input(requests, stdin, window_changes) => true,
        output = relay_output(&mut responses) => {
            output?;
            false
        }
    };
    if detached {
        // The request stream ended with forward_input; a daemon that sees that ends the call.
        let _ = tokio::time::timeout(DETACH_GRACE, discard_output(&mut responses)).await;
    }
    drop(raw_mode);
    if !detached {
        // On a line of its own: the console may have left the cursor after a prompt.
        eprintln!("\nthe console of {name} closed: the container stopped");
    }
    Ok(())
}

/// Returned when the user pressed the detach keys.
struct Detached;

/// Sends keys and window changes until the user detaches; dropping the request sender on
/// return ends the request stream. Stdin's end ends input, but the output keeps coming.
async fn forward_input(
    requests: mpsc::Sender<ConsoleRequest>,
    mut stdin: mpsc::Receiver<Vec<u8>>,
    mut window_changes: WindowChanges,
) -> Detached {
    let mut detach_keys = DetachKeys::default();
    let mut stdin_open = true;
    loop {
        let (request, detach) = tokio::select! {
            chunk = stdin.recv(), if stdin_open => {
                let scanned = match chunk {
                    Some(typed) => detach_keys.scan(&typed),
                    None => {
                        stdin_open = false;
                        detach_keys.finish()
                    }
                };
                let input = (!scanned.input.is_empty()).then_some(console_request::Request::Input(scanned.input));
                (input, scanned.detach)
            }
            size = window_changes.next() => (Some(console_request::Request::Resize(size)), false),
        };
        if let Some(request) = request {
            let request = ConsoleRequest { request: Some(request) };
            if requests.send(request).await.is_err() {
                // The call is over; relay_output reports how.
                return std::future::pending().await;
            }
        }
        if detach {
            return Detached;
        }
    }
}

/// Copies the console's output to our stdout until syscd ends the stream.
async fn relay_output(responses: &mut Streaming<ConsoleResponse>) -> anyhow::Result<()> {
    let mut stdout = tokio::io::stdout();
    while let Some(response) = responses.message().await.map_err(rpc_error)? {
        stdout.write_all(&response.output).await?;
        stdout.flush().await?;
    }
    Ok(())
}

/// After detaching, the console's output is no longer the user's to see.
async fn discard_output(responses: &mut Streaming<ConsoleResponse>) {
    while let Ok(Some(_)) = responses.message().await {}
}

/// Finds Ctrl+a q in what the user types, however the reads split it, and passes the rest
/// on: Ctrl+a a (as in screen) or Ctrl+a Ctrl+a (as in lxc-console) sends one Ctrl+a, and
/// Ctrl+a before any other key sends both.
#[derive(Debug, Default)]
struct DetachKeys {
    /// A Ctrl+a was the last key, held back until the next one says what it meant.
    prefix_held: bool,
}

#[derive(Debug, PartialEq, Eq)]
struct Scanned {
    /// What goes to the console.
    input: Vec<u8>,
    /// The detach keys came; anything typed after them is dropped.
    detach: bool,
}

impl DetachKeys {
    fn scan(&mut self, typed: &[u8]) -> Scanned {
        let mut input = Vec::with_capacity(typed.len() + 1);
        for &byte in typed {
            if mem::take(&mut self.prefix_held) {
                match byte {
                    DETACH_KEY => return Scanned { input, detach: true },
                    DETACH_PREFIX | LITERAL_PREFIX_KEY => input.push(DETACH_PREFIX),
                    other => input.extend([DETACH_PREFIX, other]),
                }
            } else if byte == DETACH_PREFIX {
                self.prefix_held = true;
            } else {
                input.push(byte);
            }
        }
        Scanned { input, detach: false }
    }

    /// At the end of input, a held Ctrl+a can only have been meant for the console.
    fn finish(&mut self) -> Scanned {
        let input = if mem::take(&mut self.prefix_held) {
            vec![DETACH_PREFIX]
        } else {
            Vec::new()
        };
        Scanned { input, detach: false }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent(input: &[u8]) -> Scanned {
        Scanned {
            input: input.to_vec(),
            detach: false,
        }
    }

    fn detached_after(input: &[u8]) -> Scanned {
        Scanned {
            input: input.to_vec(),
            detach: true,
        }
    }

    /// Feeds the reads in turn, stopping at a detach as the session does.
    fn scan_reads(reads: &[&[u8]]) -> Scanned {
        let mut keys = DetachKeys::default();
        let mut all = Vec::new();
        for read in reads {
            let scanned = keys.scan(read);
            all.extend(scanned.input);
            if scanned.detach {
                return detached_after(&all);
            }
        }
        all.extend(keys.finish().input);
        sent(&all)
    }

    #[test]
    fn plain_input_passes_through() {
        let mut keys = DetachKeys::default();
        assert_eq!(keys.scan(b"root\r"), sent(b"root\r"));
        assert_eq!(keys.scan(b""), sent(b""));
        assert_eq!(keys.scan(b"q"), sent(b"q"));
        assert_eq!(keys.finish(), sent(b""));
    }

    #[test]
    fn ctrl_a_q_detaches() {
        let mut keys = DetachKeys::default();
        assert_eq!(keys.scan(b"\x01q"), detached_after(b""));
    }

    #[test]
    fn input_before_the_detach_keys_is_sent_and_after_them_dropped() {
        let mut keys = DetachKeys::default();
        assert_eq!(keys.scan(b"ls\r\x01qexit\r"), detached_after(b"ls\r"));
    }

    #[test]
    fn detach_keys_split_across_reads() {
        let mut keys = DetachKeys::default();
        assert_eq!(keys.scan(b"ab\x01"), sent(b"ab"));
        assert_eq!(keys.scan(b"q"), detached_after(b""));

        assert_eq!(scan_reads(&[b"\x01", b"q"]), detached_after(b""));
        assert_eq!(scan_reads(&[b"x", b"\x01", b"", b"q", b"y"]), detached_after(b"x"));
    }

    #[test]
    fn ctrl_a_twice_sends_one_ctrl_a() {
        assert_eq!(scan_reads(&[b"\x01\x01"]), sent(b"\x01"));
        assert_eq!(scan_reads(&[b"\x01", b"\x01"]), sent(b"\x01"));
        // The pair is complete, so a q after it is just a q.
        assert_eq!(scan_reads(&[b"\x01\x01q"]), sent(b"\x01q"));
        assert_eq!(scan_reads(&[b"\x01\x01\x01q"]), detached_after(b"\x01"));
        assert_eq!(scan_reads(&[b"\x01\x01\x01\x01"]), sent(b"\x01\x01"));
    }

    #[test]
    fn ctrl_a_a_sends_one_ctrl_a() {
        assert_eq!(scan_reads(&[b"\x01a"]), sent(b"\x01"));
        assert_eq!(scan_reads(&[b"\x01", b"aa"]), sent(b"\x01a"));
        assert_eq!(scan_reads(&[b"\x01A"]), sent(b"\x01A"));
        assert_eq!(scan_reads(&[b"\x01a\x01q"]), detached_after(b"\x01"));
    }

    #[test]
    fn ctrl_a_before_another_key_sends_both() {
        assert_eq!(scan_reads(&[b"\x01x"]), sent(b"\x01x"));
        assert_eq!(scan_reads(&[b"\x01", b"x"]), sent(b"\x01x"));
        assert_eq!(scan_reads(&[b"\x01Q"]), sent(b"\x01Q"));
        assert_eq!(scan_reads(&[b"\x01\r"]), sent(b"\x01\r"));
        // Ctrl-C is only a key for the console, even after Ctrl+a.
        assert_eq!(scan_reads(&[b"\x01\x03"]), sent(b"\x01\x03"));
        assert_eq!(scan_reads(&[b"\x01xq"]), sent(b"\x01xq"));
        assert_eq!(scan_reads(&[b"\x01x\x01q"]), detached_after(b"\x01x"));
    }

    #[test]
    fn a_ctrl_a_held_at_the_end_of_input_is_sent() {
        let mut keys = DetachKeys::default();
        assert_eq!(keys.scan(b"a\x01"), sent(b"a"));
        assert_eq!(keys.finish(), sent(b"\x01"));
        assert_eq!(keys.finish(), sent(b""));
        assert_eq!(scan_reads(&[b"\x01"]), sent(b"\x01"));
    }

    #[test]
    fn every_split_of_a_stream_gives_the_same_result() {
        let stream: &[u8] = b"a\x01\x01b\x01c\x01\x01\x01qd";
        let whole = scan_reads(&[stream]);
        assert_eq!(whole, detached_after(b"a\x01b\x01c\x01"));
        for split in 0..=stream.len() {
            let (first, second) = stream.split_at(split);
            assert_eq!(scan_reads(&[first, second]), whole, "split at {split}");
        }
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(scan_reads(&bytes), whole);
    }
}
