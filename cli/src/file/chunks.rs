//! Between blocking file I/O on a thread and the gRPC stream: fixed-size chunks through
//! a short channel, which is all a transfer holds in memory whatever its size.

use std::io::{self, Read, Write};

use bytes::Bytes;
use tokio::sync::mpsc;

/// Size of the data messages.
pub const CHUNK: usize = 1 << 20;

/// Chunks queued ahead of the connection (or of the writer).
pub const CHUNKS_AHEAD: usize = 4;

/// Collects writes into chunks and sends each full one.
pub struct ChunkWriter {
    buffer: Vec<u8>,
    chunks: mpsc::Sender<Vec<u8>>,
    sent: Box<dyn Fn(usize) + Send>,
}

impl ChunkWriter {
    /// `sent` hears of every chunk's size as it goes, for a progress bar.
    pub fn new(chunks: mpsc::Sender<Vec<u8>>, sent: Box<dyn Fn(usize) + Send>) -> Self {
        Self {
            buffer: Vec::with_capacity(CHUNK),
            chunks,
            sent,
        }
    }

    fn send(&mut self) -> io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buffer, Vec::with_capacity(CHUNK));
        let len = chunk.len();
        self.chunks
            .blocking_send(chunk)
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the connection to syscd closed"))?;
        (self.sent)(len);
        Ok(())
    }
}

impl Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = CHUNK - self.buffer.len();
        let taken = room.min(data.len());
        self.buffer.extend_from_slice(&data[..taken]);
        if self.buffer.len() == CHUNK {
            self.send()?;
        }
        Ok(taken)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

/// Reads what arrives as chunks; an error chunk is the stream's failure.
pub struct ChunkReader {
    chunks: mpsc::Receiver<Result<Bytes, String>>,
    current: Bytes,
    offset: usize,
}

impl ChunkReader {
    pub fn new(chunks: mpsc::Receiver<Result<Bytes, String>>) -> Self {
        Self {
            chunks,
            current: Bytes::new(),
            offset: 0,
        }
    }
}

impl Read for ChunkReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.offset == self.current.len() {
            match self.chunks.blocking_recv() {
                Some(Ok(chunk)) => {
                    self.current = chunk;
                    self.offset = 0;
                }
                Some(Err(message)) => return Err(io::Error::other(message)),
                None => return Ok(0),
            }
        }
        let n = out.len().min(self.current.len() - self.offset);
        out[..n].copy_from_slice(&self.current[self.offset..self.offset + n]);
        self.offset += n;
        Ok(n)
    }
}

/// Reads a file (or stdin) to its end in chunks, straight into the chunk that is sent:
/// no copy between the read and the message.
pub fn send_all(mut input: impl Read, out: &mut ChunkWriter) -> io::Result<()> {
    loop {
        let room = (CHUNK - out.buffer.len()) as u64;
        // read_to_end through `take` fills the chunk's spare capacity in place, retrying
        // on EINTR, and stops when it is full or the input ends.
        (&mut input).take(room).read_to_end(&mut out.buffer)?;
        if out.buffer.len() < CHUNK {
            break; // the input ended
        }
        out.send()?;
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn writes_become_full_chunks_and_a_last_short_one() {
        let (tx, mut rx) = mpsc::channel(16);
        let counted = Arc::new(AtomicUsize::new(0));
        let seen = counted.clone();
        let mut writer = ChunkWriter::new(tx, Box::new(move |n| _ = seen.fetch_add(n, Ordering::SeqCst)));
        let data: Vec<u8> = (0..(2 * CHUNK + 10)).map(|i| i as u8).collect();
        send_all(&data[..], &mut writer).unwrap();
        drop(writer);
        let mut sizes = Vec::new();
        let mut joined = Vec::new();
        while let Ok(chunk) = rx.try_recv() {
            sizes.push(chunk.len());
            joined.extend(chunk);
        }
        assert_eq!(sizes, [CHUNK, CHUNK, 10]);
        assert_eq!(joined, data);
        assert_eq!(counted.load(Ordering::SeqCst), data.len());
    }

    #[test]
    fn the_reader_ends_with_the_channel_and_fails_on_an_error_chunk() {
        let (tx, rx) = mpsc::channel(4);
        tx.try_send(Ok(Bytes::from_static(b"ab"))).unwrap();
        tx.try_send(Ok(Bytes::from_static(b"c"))).unwrap();
        drop(tx);
        let mut text = String::new();
        ChunkReader::new(rx).read_to_string(&mut text).unwrap();
        assert_eq!(text, "abc");

        let (tx, rx) = mpsc::channel(4);
        tx.try_send(Ok(Bytes::from_static(b"ab"))).unwrap();
        tx.try_send(Err("the stream broke".into())).unwrap();
        let err = ChunkReader::new(rx).read_to_end(&mut Vec::new()).unwrap_err();
        assert_eq!(err.to_string(), "the stream broke");
    }
}
