//! The archive stream as the tar parser reads it: zstd detected and decoded, and a record
//! of how reading went wrong, because tar-rs's errors do not say whether the input was cut
//! short, damaged, or could not be read at all.

use std::io::{self, BufReader, Chain, Cursor, Read};
use std::sync::{Arc, Mutex, PoisonError};

use super::BUF_SIZE;
use super::error::ArchiveError;

const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// Zero bytes allowed after the end marker: tar pads to its record size (10 KiB for GNU
/// tar), so anything near a mebibyte is not padding.
const MAX_TRAILER: u64 = 1 << 20;

#[derive(Default)]
struct Seen {
    /// The input itself failed.
    read_error: Option<io::Error>,
    /// The zstd decoder refused the input.
    decode_error: Option<(io::ErrorKind, String)>,
    /// The (decoded) stream ended.
    eof: bool,
}

/// Shared with the readers below tar-rs, which owns them while it parses.
#[derive(Clone, Default)]
pub(super) struct Probe(Arc<Mutex<Seen>>);

impl Probe {
    fn seen(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// What `error`, met while reading the stream, means.
    pub(super) fn error(&self, error: io::Error) -> ArchiveError {
        let mut seen = self.seen();
        if let Some(e) = seen.read_error.take() {
            return ArchiveError::Input(e);
        }
        match &seen.decode_error {
            Some((io::ErrorKind::UnexpectedEof, _)) => ArchiveError::Truncated("the zstd stream ends early".into()),
            Some((_, message)) => ArchiveError::Corrupt(format!("zstd: {message}")),
            None if seen.eof => ArchiveError::Truncated("unexpected end of data".into()),
            None => ArchiveError::Corrupt(error.to_string()),
        }
    }
}

/// The input, noting its failures.
struct Raw<R> {
    inner: R,
    probe: Probe,
}

impl<R: Read> Read for Raw<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).map_err(|e| {
            if e.kind() == io::ErrorKind::Interrupted {
                return e;
            }
            let copy = io::Error::new(e.kind(), e.to_string());
            self.probe.seen().read_error = Some(e);
            copy
        })
    }
}

type Peeked<R> = BufReader<Chain<Cursor<Vec<u8>>, Raw<R>>>;

enum Source<R: Read> {
    Plain(Peeked<R>),
    Zstd(zstd::stream::read::Decoder<'static, Peeked<R>>),
}

/// The tar stream: the input, decompressed if it was compressed.
pub(super) struct Stream<R: Read> {
    source: Source<R>,
    probe: Probe,
}

impl<R: Read> Stream<R> {
    /// Detects zstd by its magic bytes, else takes the input as plain tar.
    pub(super) fn new(input: R, probe: Probe) -> Result<Self, ArchiveError> {
        let mut raw = Raw {
            inner: input,
            probe: probe.clone(),
        };
        let mut head = Vec::with_capacity(ZSTD_MAGIC.len());
        (&mut raw)
            .take(ZSTD_MAGIC.len() as u64)
            .read_to_end(&mut head)
            .map_err(|e| probe.error(e))?;
        let zstd = head == ZSTD_MAGIC;
        let peeked = BufReader::with_capacity(BUF_SIZE, Cursor::new(head).chain(raw));
        let source = if zstd {
            // The decoder's default window limit (128 MiB) bounds its memory.
            Source::Zstd(zstd::stream::read::Decoder::with_buffer(peeked).map_err(ArchiveError::Input)?)
        } else {
            Source::Plain(peeked)
        };
        Ok(Stream { source, probe })
    }

    /// Skips the padding after `size` bytes of entry content.
    pub(super) fn skip_padding(&mut self, size: u64) -> Result<(), ArchiveError> {
        let padding = padding(size);
        let copied = io::copy(&mut Read::by_ref(self).take(padding), &mut io::sink());
        let skipped = copied.map_err(|e| self.probe.error(e))?;
        if skipped < padding {
            return Err(ArchiveError::Truncated("unexpected end of data".into()));
        }
        Ok(())
    }

    /// After the end marker's `size` bytes of content: its padding and the tar end
    /// (two zero blocks), then nothing but zeros up to the end of the stream.
    pub(super) fn check_end(&mut self, size: u64) -> Result<(), ArchiveError> {
        let mut buf = [0u8; 8192];
        let mut zeros = 0;
        loop {
            let n = match self.read(&mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.probe.error(e)),
            };
            if n == 0 {
                break;
            }
            zeros += n as u64;
            if buf[..n].iter().any(|&b| b != 0) || zeros > MAX_TRAILER {
                return Err(ArchiveError::Corrupt("data follows the end marker".into()));
            }
        }
        if zeros < padding(size) + 1024 {
            return Err(ArchiveError::Truncated("the end of the tar stream is missing".into()));
        }
        Ok(())
    }
}

fn padding(size: u64) -> u64 {
    (512 - size % 512) % 512
}

impl<R: Read> Read for Stream<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let result = match &mut self.source {
            Source::Plain(r) => r.read(buf),
            Source::Zstd(r) => r.read(buf),
        };
        match &result {
            Ok(0) if !buf.is_empty() => self.probe.seen().eof = true,
            Err(e) if e.kind() != io::ErrorKind::Interrupted && matches!(self.source, Source::Zstd(_)) => {
                let mut seen = self.probe.seen();
                if seen.read_error.is_none() {
                    seen.decode_error = Some((e.kind(), e.to_string()));
                }
            }
            _ => {}
        }
        result
    }
}
