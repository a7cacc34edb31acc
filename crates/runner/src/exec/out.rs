//! The buffered writer both sinks write through.
//!
//! A write that fails is remembered and ends all writing: output nobody reads (a closed pipe)
//! must not stop or slow the run, and must never panic. Nothing reaches the writer until the
//! buffer fills or the engine asks for a flush, so a log line costs no system call.

use std::fmt;
use std::io::{self, BufWriter, Write};

/// The buffer's size: a busy step fills it between two flushes only rarely.
const BUFFER_SIZE: usize = 64 * 1024;

pub(crate) struct Out<W: Write> {
    buf: BufWriter<W>,
    /// The first error, until taken.
    error: Option<io::Error>,
    /// A write failed: nothing more is written, even once the error is taken.
    failed: bool,
}

impl<W: Write> Out<W> {
    pub(crate) fn new(out: W) -> Self {
        Out {
            buf: BufWriter::with_capacity(BUFFER_SIZE, out),
            error: None,
            failed: false,
        }
    }

    #[inline]
    pub(crate) fn put(&mut self, bytes: &[u8]) {
        self.with(|buf| buf.write_all(bytes));
    }

    #[inline]
    pub(crate) fn put_str(&mut self, text: &str) {
        self.put(text.as_bytes());
    }

    pub(crate) fn put_fmt(&mut self, args: fmt::Arguments<'_>) {
        self.with(|buf| buf.write_fmt(args));
    }

    /// Writes with `write` into the buffer, unless an earlier write failed.
    #[inline]
    pub(crate) fn with(&mut self, write: impl FnOnce(&mut BufWriter<W>) -> io::Result<()>) {
        if !self.failed {
            let result = write(&mut self.buf);
            self.check(result);
        }
    }

    pub(crate) fn flush(&mut self) {
        self.with(|buf| buf.flush());
    }

    /// The first write error, if writing failed.
    pub(crate) fn take_error(&mut self) -> Option<io::Error> {
        self.error.take()
    }

    fn check(&mut self, result: io::Result<()>) {
        if let Err(error) = result {
            self.failed = true;
            self.error = Some(error);
        }
    }

    /// Flushes and returns the writer (tests read what was written this way).
    #[cfg(test)]
    pub(crate) fn into_inner(mut self) -> io::Result<W> {
        self.flush();
        if let Some(error) = self.error {
            return Err(error);
        }
        self.buf.into_inner().map_err(|e| e.into_error())
    }
}
