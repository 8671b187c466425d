//! The archive stream coming in, watched so that a failure of the tar crate can be blamed on
//! the right thing: the tar crate reports a broken connection, a cut-off stream and a garbled
//! header all as `io::Error`, but the caller must tell "the stream broke" from "bad archive".

use std::cell::{Cell, RefCell};
use std::io::{self, Read};
use std::rc::Rc;

use crate::error::{TreeError, corrupt};

#[derive(Default)]
pub(crate) struct Watch {
    bytes: Cell<u64>,
    eof: Cell<bool>,
    error: RefCell<Option<io::Error>>,
}

impl Watch {
    /// What a tar crate error (or a short read of entry data) really was.
    pub(crate) fn blame(&self, error: io::Error) -> TreeError {
        if let Some(original) = self.error.borrow_mut().take() {
            return TreeError::Input(original);
        }
        if self.eof.get() {
            return self.truncated();
        }
        corrupt(&error)
    }

    pub(crate) fn truncated(&self) -> TreeError {
        TreeError::Truncated(format!("the stream ends after {} bytes", self.bytes.get()))
    }

    pub(crate) fn at_eof(&self) -> bool {
        self.eof.get()
    }
}

pub(crate) struct Watched<R> {
    inner: R,
    watch: Rc<Watch>,
}

impl<R: Read> Watched<R> {
    pub(crate) fn new(inner: R) -> (Self, Rc<Watch>) {
        let watch = Rc::new(Watch::default());
        (
            Watched {
                inner,
                watch: watch.clone(),
            },
            watch,
        )
    }
}

impl<R: Read> Read for Watched<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.inner.read(buf) {
                Ok(n) => {
                    if n == 0 && !buf.is_empty() {
                        self.watch.eof.set(true);
                    }
                    self.watch.bytes.set(self.watch.bytes.get() + n as u64);
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let kind = e.kind();
                    *self.watch.error.borrow_mut() = Some(e);
                    return Err(io::Error::new(kind, "archive stream failed"));
                }
            }
        }
    }
}
