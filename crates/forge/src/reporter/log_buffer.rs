//! The rows of a task's log that the forge has not acknowledged yet.
//!
//! Rows wait in memory up to a byte limit; past it they go to a spill file, in order, and come
//! back into memory as the forge acknowledges the ones before them. So a forge that is down
//! for an hour while a job prints gigabytes costs disk, not memory, and every row is still
//! delivered once, in order, when it answers again.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use prost::Message;

use crate::proto::runner::LogRow;

/// Rows from the forge's acknowledged index on.
pub(crate) struct LogBuffer {
    /// The absolute index of the first row held (the forge's last ack).
    acked: u64,
    /// Rows from `acked` on, in memory.
    memory: VecDeque<LogRow>,
    memory_bytes: usize,
    memory_limit: usize,
    /// Rows after those in memory, on disk, once memory was full.
    spill: Option<Spill>,
    spill_dir: PathBuf,
    /// Why spilling failed, if it did: rows then stay in memory rather than being lost.
    spill_error: Option<String>,
}

/// A spill file: length-delimited `LogRow`s, written at the end and read from the front.
struct Spill {
    /// Removed from disk when dropped.
    _file: tempfile::NamedTempFile,
    writer: BufWriter<File>,
    reader: BufReader<File>,
    rows: u64,
}

impl LogBuffer {
    pub(crate) fn new(memory_limit: usize, spill_dir: &Path) -> LogBuffer {
        LogBuffer {
            acked: 0,
            memory: VecDeque::new(),
            memory_bytes: 0,
            memory_limit,
            spill: None,
            spill_dir: spill_dir.to_owned(),
            spill_error: None,
        }
    }

    /// The index of the first row not acknowledged.
    pub(crate) fn acked(&self) -> u64 {
        self.acked
    }

    /// How many rows there are in all (acknowledged or not): the next row's index.
    pub(crate) fn total(&self) -> u64 {
        self.acked + self.memory.len() as u64 + self.spill.as_ref().map_or(0, |s| s.rows)
    }

    pub(crate) fn pending(&self) -> u64 {
        self.total() - self.acked
    }

    /// The spill file's problem, once one happened.
    pub(crate) fn spill_error(&self) -> Option<&str> {
        self.spill_error.as_deref()
    }

    pub(crate) fn push(&mut self, row: LogRow) {
        let full = self.memory_bytes + row_size(&row) > self.memory_limit;
        if full && self.spill.is_none() && self.spill_error.is_none() {
            if let Err(e) = self.open_spill() {
                self.spill_failed(&e);
            }
        }
        if let Some(spill) = &mut self.spill {
            match spill.append(&row) {
                Ok(()) => return,
                Err(e) => {
                    self.spill_failed(&e);
                    self.unspill();
                }
            }
        }
        self.memory_bytes += row_size(&row);
        self.memory.push_back(row);
    }

    /// Spilling does not work here: from now on rows stay in memory, whatever the limit
    /// (memory is the lesser loss).
    fn spill_failed(&mut self, error: &io::Error) {
        tracing::warn!("cannot spill log rows to disk, keeping them in memory: {error}");
        self.spill_error
            .get_or_insert_with(|| format!("cannot spill log rows to disk: {error}"));
    }

    /// Brings every spilled row back into memory, so that rows pushed next stay in order.
    fn unspill(&mut self) {
        self.move_spilled_rows(usize::MAX);
        self.spill = None;
    }

    /// Up to `max_rows` rows (and about `max_bytes`) from the first unacknowledged one.
    pub(crate) fn unacked(&mut self, max_rows: usize, max_bytes: usize) -> Vec<LogRow> {
        self.refill();
        let mut bytes = 0;
        let mut rows = Vec::new();
        for row in self.memory.iter() {
            if rows.len() >= max_rows || (bytes > 0 && bytes + row_size(row) > max_bytes) {
                break;
            }
            bytes += row_size(row);
            rows.push(row.clone());
        }
        rows
    }

    /// The forge holds every row before `index`. An index behind what it acknowledged before
    /// is ignored (rows already dropped cannot be sent again).
    pub(crate) fn ack(&mut self, index: u64) {
        while self.acked < index {
            match self.memory.pop_front() {
                Some(row) => {
                    self.memory_bytes -= row_size(&row);
                    self.acked += 1;
                }
                None => {
                    self.refill();
                    if self.memory.is_empty() {
                        // The forge claims rows never sent: trust what was sent.
                        break;
                    }
                }
            }
        }
        self.refill();
    }

    /// Moves rows from the spill file into memory while there is room.
    fn refill(&mut self) {
        self.move_spilled_rows(self.memory_limit / 2);
    }

    /// Moves spilled rows into memory while it holds less than `limit` bytes; closes the
    /// spill file once it is empty.
    fn move_spilled_rows(&mut self, limit: usize) {
        let Some(spill) = &mut self.spill else {
            return;
        };
        while spill.rows > 0 && self.memory_bytes < limit {
            match spill.next() {
                Ok(row) => {
                    self.memory_bytes += row_size(&row);
                    self.memory.push_back(row);
                }
                Err(e) => {
                    tracing::error!("{} spilled log rows are lost: {e}", spill.rows);
                    self.spill_error
                        .get_or_insert_with(|| format!("cannot read spilled log rows: {e}"));
                    spill.rows = 0;
                }
            }
        }
        if spill.rows == 0 {
            self.spill = None;
        }
    }

    fn open_spill(&mut self) -> io::Result<()> {
        std::fs::create_dir_all(&self.spill_dir)?;
        let file = tempfile::Builder::new()
            .prefix("log-")
            .suffix(".spill")
            .tempfile_in(&self.spill_dir)?;
        self.spill = Some(Spill {
            writer: BufWriter::new(file.reopen()?),
            reader: BufReader::new(file.reopen()?),
            _file: file,
            rows: 0,
        });
        Ok(())
    }
}

impl Spill {
    fn append(&mut self, row: &LogRow) -> io::Result<()> {
        let bytes = row.encode_length_delimited_to_vec();
        self.writer.write_all(&bytes)?;
        self.rows += 1;
        Ok(())
    }

    fn next(&mut self) -> io::Result<LogRow> {
        // What is read must have been written out first.
        self.writer.flush()?;
        let length = read_varint(&mut self.reader)?;
        let mut bytes = vec![0; length as usize];
        self.reader.read_exact(&mut bytes)?;
        let row = LogRow::decode(bytes.as_slice())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        self.rows -= 1;
        if self.rows == 0 {
            // Start the file over, so a long outage does not grow it forever.
            self.writer.get_mut().set_len(0)?;
            self.writer.seek(SeekFrom::Start(0))?;
            self.reader.seek(SeekFrom::Start(0))?;
        }
        Ok(row)
    }
}

fn read_varint(reader: &mut impl Read) -> io::Result<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let mut byte = [0u8];
        reader.read_exact(&mut byte)?;
        value |= u64::from(byte[0] & 0x7f) << shift;
        if byte[0] & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(io::Error::new(io::ErrorKind::InvalidData, "bad length"))
}

/// What a row costs in memory, roughly.
fn row_size(row: &LogRow) -> usize {
    row.content.len() + 48
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(i: u64) -> LogRow {
        LogRow {
            time: None,
            content: format!("row {i:05} {}", "x".repeat(50)),
        }
    }

    fn contents(rows: &[LogRow]) -> Vec<String> {
        rows.iter().map(|r| r.content.clone()).collect()
    }

    #[test]
    fn rows_spill_to_disk_and_come_back_in_order() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut buffer = LogBuffer::new(1000, dir.path());
        for i in 0..500 {
            buffer.push(row(i));
        }
        assert_eq!(buffer.total(), 500);
        assert!(buffer.spill.is_some(), "past the limit rows go to disk");
        assert!(buffer.memory_bytes <= 1000);
        let mut seen = Vec::new();
        let mut i = 500;
        while buffer.pending() > 0 {
            let batch = buffer.unacked(7, usize::MAX);
            assert!(!batch.is_empty());
            seen.extend(contents(&batch));
            let acked = buffer.acked() + batch.len() as u64;
            buffer.ack(acked);
            // Rows keep coming while the backlog drains.
            if i < 600 {
                buffer.push(row(i));
                i += 1;
            }
        }
        let expected: Vec<String> = (0..600).map(|i| row(i).content).collect();
        assert_eq!(seen, expected);
        assert!(buffer.spill.is_none());
        assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 0);
    }

    #[test]
    fn partial_acks_resend_the_rest() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut buffer = LogBuffer::new(1 << 20, dir.path());
        for i in 0..10 {
            buffer.push(row(i));
        }
        let batch = buffer.unacked(100, usize::MAX);
        assert_eq!(batch.len(), 10);
        buffer.ack(4);
        let batch = buffer.unacked(100, usize::MAX);
        assert_eq!(batch[0].content, row(4).content);
        assert_eq!(batch.len(), 6);
        // An ack behind the last one changes nothing.
        buffer.ack(2);
        assert_eq!(buffer.acked(), 4);
    }

    #[test]
    fn batches_respect_the_byte_budget() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut buffer = LogBuffer::new(1 << 20, dir.path());
        for i in 0..10 {
            buffer.push(row(i));
        }
        let one = row_size(&row(0));
        assert_eq!(buffer.unacked(100, one * 3).len(), 3);
        // One row always goes, however large.
        assert_eq!(buffer.unacked(100, 1).len(), 1);
    }

    #[test]
    fn the_spill_file_is_removed_when_dropped() {
        let dir = tempfile::tempdir().expect("temp dir");
        {
            let mut buffer = LogBuffer::new(100, dir.path());
            for i in 0..50 {
                buffer.push(row(i));
            }
            assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 1);
        }
        assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 0);
    }
}
