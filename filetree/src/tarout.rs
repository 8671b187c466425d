//! The tar stream going out: headers with GNU long-name records, file data padded to blocks.
//!
//! Names and link targets are put into the headers byte for byte rather than through
//! `tar::Builder`, whose path handling re-joins components (a link target `a//b/` would come
//! out as `a/b`), and file data is copied here so a file that changes size while it is read
//! still yields exactly the number of bytes its header promised.

use std::fs::File;
use std::io::{self, Read, Write};

use tar::{EntryType, Header};

use crate::error::TreeError;

const BLOCK: usize = 512;
/// Header name and linkname fields; longer ones go in a GNU long-name record before the header.
const NAME_FIELD: usize = 100;
pub(crate) const BUFFER: usize = 1 << 20;

pub(crate) struct TarOut<W: Write> {
    out: W,
    buf: Box<[u8]>,
    len: usize,
}

impl<W: Write> TarOut<W> {
    pub(crate) fn new(out: W) -> Self {
        TarOut {
            out,
            buf: vec![0; BUFFER].into_boxed_slice(),
            len: 0,
        }
    }

    /// Writes `header` (type, mode, owner, mtime and size already set) for `name`, and for a
    /// symlink its `link` target.
    pub(crate) fn header(&mut self, mut header: Header, name: &[u8], link: Option<&[u8]>) -> Result<(), TreeError> {
        // GNU tar's order: the link target's record, then the name's.
        if let Some(link) = link {
            if link.len() > NAME_FIELD {
                self.long_record(EntryType::GNULongLink, link)?;
            }
            let field = &mut header.as_old_mut().linkname;
            let n = link.len().min(NAME_FIELD);
            field[..n].copy_from_slice(&link[..n]);
        }
        if name.len() > NAME_FIELD {
            self.long_record(EntryType::GNULongName, name)?;
        }
        let field = &mut header.as_old_mut().name;
        let n = name.len().min(NAME_FIELD);
        field[..n].copy_from_slice(&name[..n]);
        header.set_cksum();
        self.put(header.as_bytes())
    }

    fn long_record(&mut self, kind: EntryType, value: &[u8]) -> Result<(), TreeError> {
        let mut header = Header::new_gnu();
        let name = b"././@LongLink";
        header.as_old_mut().name[..name.len()].copy_from_slice(name);
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        // The trailing NUL is counted, as GNU tar does.
        header.set_size(value.len() as u64 + 1);
        header.set_entry_type(kind);
        header.set_cksum();
        self.put(header.as_bytes())?;
        self.put(value)?;
        self.put(&[0])?;
        self.pad(value.len() as u64 + 1)
    }

    /// Copies exactly `size` bytes of `file` (as its header said), reporting each chunk's length
    /// to `progress`. Zeros stand in for what the file lost since it was measured; what it gained
    /// is left out. `path` is for messages.
    pub(crate) fn file_data(
        &mut self,
        file: &mut File,
        size: u64,
        path: &[u8],
        progress: &mut dyn FnMut(u64),
    ) -> Result<(), TreeError> {
        let mut left = size;
        let mut at_end = false;
        while left > 0 {
            if self.len == self.buf.len() {
                self.flush_buf()?;
            }
            let room = (self.buf.len() - self.len).min(usize::try_from(left).unwrap_or(usize::MAX));
            let chunk = &mut self.buf[self.len..self.len + room];
            let n = if at_end {
                0
            } else {
                loop {
                    match file.read(chunk) {
                        Ok(n) => break n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(TreeError::io("read", path, e)),
                    }
                }
            };
            let n = if n == 0 {
                at_end = true;
                chunk.fill(0);
                room
            } else {
                n
            };
            self.len += n;
            left -= n as u64;
            progress(n as u64);
        }
        self.pad(size)
    }

    /// Zeros up to the next block boundary after `size` bytes of data.
    fn pad(&mut self, size: u64) -> Result<(), TreeError> {
        let rest = (size % BLOCK as u64) as usize;
        if rest != 0 {
            self.put(&[0; BLOCK][..BLOCK - rest])?;
        }
        Ok(())
    }

    fn put(&mut self, mut bytes: &[u8]) -> Result<(), TreeError> {
        while !bytes.is_empty() {
            if self.len == self.buf.len() {
                self.flush_buf()?;
            }
            let n = bytes.len().min(self.buf.len() - self.len);
            self.buf[self.len..self.len + n].copy_from_slice(&bytes[..n]);
            self.len += n;
            bytes = &bytes[n..];
        }
        Ok(())
    }

    fn flush_buf(&mut self) -> Result<(), TreeError> {
        self.out.write_all(&self.buf[..self.len]).map_err(TreeError::Output)?;
        self.len = 0;
        Ok(())
    }

    /// Writes the end-of-archive marker (two zero blocks) and hands back the writer, flushed.
    pub(crate) fn finish(mut self) -> Result<W, TreeError> {
        self.put(&[0; 2 * BLOCK])?;
        self.flush_buf()?;
        self.out.flush().map_err(TreeError::Output)?;
        Ok(self.out)
    }
}
