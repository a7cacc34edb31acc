//! The task journal: what a running task has told the forge, or is about to, kept on disk so
//! that a runner killed mid-job (SIGKILL, a power loss) can finalize the task when it starts
//! again ([`super::recover`]).
//!
//! One folder per task (`<journal root>/<task id>/`) holding numbered segment files. Each
//! segment is a sequence of records, `[length u32 LE][CRC-32 u32 LE][protobuf Record]`: the
//! task (id, number of steps, when the job started), each log row with its absolute index,
//! each step's state when it starts and ends. A segment is a file of [`SEGMENT_BYTES`],
//! allocated up front (`posix_fallocate`, so a full disk is an error at its start, never a
//! `SIGBUS` while writing) and mapped shared: a record is copied into the kernel's page cache
//! before the reporter's sink returns, which a killed process cannot undo, at the cost of a
//! copy rather than a system call per row (a `write` costs more than the rest of a row's way
//! through the runner). The sender `fsync`s the files once per round, so a power loss costs
//! at most the last round's rows. Once a record does not fit, the next segment starts with the task and
//! every step's state, so a segment whose rows the forge has all acknowledged is deleted
//! whole: the journal holds the rows not yet acknowledged and at most one segment more. It
//! holds no token (reporting uses the runner's own credentials) and only masked rows.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use prost::Message;
use prost_types::Timestamp;

use crate::proto::runner::{LogRow, StepState};

/// The folder under the runner's spool folder (`runner.log_spill_dir`) holding the journals.
pub const JOURNAL_DIR: &str = "journal";

/// The size of a segment file (allocated when it starts).
pub(crate) const SEGMENT_BYTES: u64 = 1 << 20;

/// A record header: length and CRC.
const HEADER: usize = 8;

/// Records larger than this are not the journal's (a row is at most 64 KiB).
const MAX_RECORD: usize = SEGMENT_BYTES as usize - HEADER;

#[derive(Clone, PartialEq, prost::Message)]
struct Record {
    #[prost(oneof = "Entry", tags = "1, 2, 3")]
    entry: Option<Entry>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
enum Entry {
    #[prost(message, tag = "1")]
    Task(TaskRecord),
    #[prost(message, tag = "2")]
    Row(RowRecord),
    #[prost(message, tag = "3")]
    Step(StepState),
}

#[derive(Clone, PartialEq, prost::Message)]
struct TaskRecord {
    #[prost(int64, tag = "1")]
    id: i64,
    #[prost(uint32, tag = "2")]
    steps: u32,
    #[prost(message, optional, tag = "3")]
    started_at: Option<Timestamp>,
    /// The job's result once it ended (`runner::Result`), 0 while it runs.
    #[prost(int32, tag = "4")]
    result: i32,
    #[prost(message, optional, tag = "5")]
    stopped_at: Option<Timestamp>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct RowRecord {
    #[prost(uint64, tag = "1")]
    index: u64,
    #[prost(message, optional, tag = "2")]
    row: Option<LogRow>,
}

/// A sealed segment: deleted once the forge holds every row before `end`.
struct Sealed {
    path: PathBuf,
    end: u64,
}

/// The journal of one running task.
pub(crate) struct Journal {
    dir: PathBuf,
    /// Holds the folder's lock while the task runs: a runner starting beside a live one
    /// (the same `.runner` started twice) leaves this journal alone.
    _lock: File,
    current: Segment,
    current_number: u64,
    sealed: VecDeque<Sealed>,
    /// Files written since the last sync.
    unsynced: Vec<Arc<File>>,
    /// Folders whose entries changed since the last sync.
    unsynced_dirs: Vec<PathBuf>,
    next_row: u64,
    task: TaskRecord,
    steps: Vec<StepState>,
    /// Set once a write failed: nothing more is written (what is there stays valid).
    failed: bool,
    buffer: Vec<u8>,
}

impl Journal {
    /// Starts the journal of task `task_id` under `root`, replacing any older one of it.
    pub(crate) fn create(root: &Path, task_id: i64, step_count: usize) -> io::Result<Journal> {
        let dir = root.join(task_id.to_string());
        if dir.exists() {
            fs::remove_dir_all(&dir)?;
        }
        fs::create_dir_all(&dir)?;
        let lock = lock(&dir)?.ok_or_else(|| {
            io::Error::other(format!("{} is in use by another process", dir.display()))
        })?;
        let current = Segment::create(&segment_path(&dir, 0))?;
        let mut journal = Journal {
            _lock: lock,
            unsynced: vec![current.file.clone()],
            unsynced_dirs: vec![dir.clone(), root.to_owned()],
            dir,
            current,
            current_number: 0,
            sealed: VecDeque::new(),
            next_row: 0,
            task: TaskRecord {
                id: task_id,
                steps: u32::try_from(step_count).unwrap_or(u32::MAX),
                started_at: None,
                result: 0,
                stopped_at: None,
            },
            steps: Vec::new(),
            failed: false,
            buffer: Vec::new(),
        };
        journal.write(Entry::Task(journal.task.clone()))?;
        Ok(journal)
    }

    /// The job started at `at` (kept once).
    pub(crate) fn started(&mut self, at: Timestamp) {
        if self.task.started_at.is_none() {
            self.task.started_at = Some(at);
            self.append(Entry::Task(self.task.clone()));
        }
    }

    /// The job ended with `state` (its result, every step's): what the final report will
    /// say, should the runner stop before the forge has it.
    pub(crate) fn ended(&mut self, state: &crate::proto::runner::TaskState) {
        for step in &state.steps {
            self.step(step);
        }
        self.task.started_at = state.started_at.or(self.task.started_at);
        self.task.result = state.result;
        self.task.stopped_at = state.stopped_at;
        self.append(Entry::Task(self.task.clone()));
    }

    /// Row `index` of the log. Rows come in order; the journal keeps them from its first.
    pub(crate) fn row(&mut self, index: u64, row: &LogRow) {
        if index != self.next_row {
            // Rows are written in order from 0; anything else is the caller's mistake, and
            // a hole would make the journal lie: stop writing instead.
            self.fail(&io::Error::other(format!(
                "row {index} came when row {} was due",
                self.next_row
            )));
            return;
        }
        self.next_row = index + 1;
        if self.failed {
            return;
        }
        // Encoded from the borrowed row: a clone per row would cost more than the copy.
        encode_row(index, row, &mut self.buffer);
        if let Err(e) = self.write_buffer() {
            self.fail(&e);
        }
    }

    /// A step's state as it is now (started, or ended).
    pub(crate) fn step(&mut self, state: &StepState) {
        match self.steps.iter_mut().find(|s| s.id == state.id) {
            Some(kept) => *kept = *state,
            None => self.steps.push(*state),
        }
        self.append(Entry::Step(*state));
    }

    /// The forge holds every row before `acked`: sealed segments with no other rows go.
    pub(crate) fn acked(&mut self, acked: u64) {
        while self.sealed.front().is_some_and(|s| s.end <= acked) {
            if let Some(sealed) = self.sealed.pop_front() {
                if let Err(e) = fs::remove_file(&sealed.path) {
                    tracing::warn!("cannot remove {}: {e}", sealed.path.display());
                }
                self.unsynced_dirs.push(self.dir.clone());
            }
        }
    }

    /// What to `fsync` for everything written so far to be durable; run it off the job's
    /// thread ([`Sync::run`]); taken, they are not given again.
    pub(crate) fn take_unsynced(&mut self) -> Sync {
        let mut dirs = std::mem::take(&mut self.unsynced_dirs);
        dirs.dedup();
        Sync {
            files: std::mem::take(&mut self.unsynced),
            dirs,
        }
    }

    /// The forge has everything: the journal goes.
    pub(crate) fn remove(self) {
        if let Err(e) = fs::remove_dir_all(&self.dir) {
            tracing::warn!("cannot remove the journal {}: {e}", self.dir.display());
        }
    }

    fn append(&mut self, entry: Entry) {
        if self.failed {
            return;
        }
        if let Err(e) = self.write(entry) {
            self.fail(&e);
        }
    }

    fn fail(&mut self, error: &io::Error) {
        self.failed = true;
        tracing::warn!(
            "cannot write the task journal {} (a crash now would leave the task running in \
             the forge until it times out): {error}",
            self.dir.display()
        );
    }

    fn write(&mut self, entry: Entry) -> io::Result<()> {
        encode(entry, &mut self.buffer);
        self.write_buffer()
    }

    /// Writes the record in `self.buffer`.
    fn write_buffer(&mut self) -> io::Result<()> {
        if self.buffer.len() > self.current.room() {
            self.seal()?;
        }
        if self.buffer.len() > self.current.room() {
            return Err(io::Error::other(format!(
                "a record of {} bytes is larger than a segment",
                self.buffer.len()
            )));
        }
        self.current.put(&self.buffer);
        if !self
            .unsynced
            .iter()
            .any(|f| Arc::ptr_eq(f, &self.current.file))
        {
            self.unsynced.push(self.current.file.clone());
        }
        Ok(())
    }

    /// Starts the next segment with the task and every step's state (the record in
    /// `self.buffer` is kept for the caller).
    fn seal(&mut self) -> io::Result<()> {
        let number = self.current_number + 1;
        let next = Segment::create(&segment_path(&self.dir, number))?;
        let previous = std::mem::replace(&mut self.current, next);
        self.sealed.push_back(Sealed {
            path: segment_path(&self.dir, self.current_number),
            end: self.next_row,
        });
        if !self.unsynced.iter().any(|f| Arc::ptr_eq(f, &previous.file)) {
            self.unsynced.push(previous.file.clone());
        }
        self.unsynced.push(self.current.file.clone());
        self.unsynced_dirs.push(self.dir.clone());
        self.current_number = number;
        let mut snapshot = vec![Entry::Task(self.task.clone())];
        snapshot.extend(self.steps.iter().cloned().map(Entry::Step));
        let mut bytes = Vec::new();
        for entry in snapshot {
            encode(entry, &mut bytes);
            self.current.put(&bytes);
        }
        Ok(())
    }

    /// How many bytes of the current segment are written (for tests).
    #[cfg(test)]
    fn used(&self) -> usize {
        self.current.used
    }
}

/// A segment file, allocated whole and mapped shared: what is copied into the mapping is in
/// the page cache, the file's, at once.
struct Segment {
    file: Arc<File>,
    map: memmap2::MmapMut,
    used: usize,
}

impl Segment {
    fn create(path: &Path) -> io::Result<Segment> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)?;
        let made = Segment::map(file, SEGMENT_BYTES);
        if made.is_err() {
            let _ = fs::remove_file(path);
        }
        made
    }

    fn map(file: File, len: u64) -> io::Result<Segment> {
        // Every block allocated now: writing into the mapping later cannot meet a full disk
        // (which would be a SIGBUS, not an error).
        allocate(&file, len)?;
        // SAFETY: the file is the journal's own (created here, never truncated while it is
        // mapped, and a second runner cannot take the task's folder: its `lock`), so nothing
        // changes the mapped bytes behind the mapping's back.
        let map = unsafe {
            memmap2::MmapOptions::new()
                .len(len as usize)
                .map_mut(&file)?
        };
        Ok(Segment {
            file: Arc::new(file),
            map,
            used: 0,
        })
    }

    fn room(&self) -> usize {
        self.map.len() - self.used
    }

    fn put(&mut self, bytes: &[u8]) {
        assert!(bytes.len() <= self.room(), "the caller checks the room");
        self.map[self.used..self.used + bytes.len()].copy_from_slice(bytes);
        self.used += bytes.len();
    }
}

/// Allocates `len` bytes of `file` on the disk (`posix_fallocate`: a full disk says so here).
#[cfg(target_os = "linux")]
fn allocate(file: &File, len: u64) -> io::Result<()> {
    rustix::fs::fallocate(file, rustix::fs::FallocateFlags::empty(), 0, len)
        .map_err(io::Error::from)
}

/// Allocates `len` bytes of `file` on the disk: zeros written (no `fallocate` here).
#[cfg(not(target_os = "linux"))]
fn allocate(file: &File, len: u64) -> io::Result<()> {
    use std::io::Write as _;
    let zeros = vec![0u8; 64 << 10];
    let mut left = len as usize;
    let mut writer = file;
    while left > 0 {
        let n = left.min(zeros.len());
        writer.write_all(&zeros[..n])?;
        left -= n;
    }
    Ok(())
}

/// Files and folders to `fsync`.
pub(crate) struct Sync {
    files: Vec<Arc<File>>,
    dirs: Vec<PathBuf>,
}

impl Sync {
    pub(crate) fn is_empty(&self) -> bool {
        self.files.is_empty() && self.dirs.is_empty()
    }

    /// Blocks on the disk.
    pub(crate) fn run(self) -> io::Result<()> {
        for file in &self.files {
            file.sync_data()?;
        }
        for dir in &self.dirs {
            // A folder removed since (the task is over) needs nothing.
            match File::open(dir) {
                Ok(dir) => dir.sync_all()?,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// Takes the journal folder's lock (`<dir>/lock`, an `flock`): `None` when a live process
/// holds it. The kernel lets it go when the holder dies, however it dies.
pub(crate) fn lock(dir: &Path) -> io::Result<Option<File>> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("lock"))?;
    match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(Some(file)),
        Err(rustix::io::Errno::WOULDBLOCK) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn segment_path(dir: &Path, number: u64) -> PathBuf {
    dir.join(format!("{number:08}.seg"))
}

fn encode(entry: Entry, buffer: &mut Vec<u8>) {
    let record = Record { entry: Some(entry) };
    buffer.clear();
    buffer.resize(HEADER, 0);
    record
        .encode(buffer)
        .unwrap_or_else(|_| unreachable!("a Vec grows as needed"));
    header(buffer);
}

/// The record `Record { Row(RowRecord { index, row }) }`, encoded as prost would, from a
/// borrowed row.
fn encode_row(index: u64, row: &LogRow, buffer: &mut Vec<u8>) {
    use prost::encoding::{encode_key, encode_varint, message, uint64, WireType};
    let inner = uint64::encoded_len(1, &index) + message::encoded_len(2, row);
    buffer.clear();
    buffer.resize(HEADER, 0);
    encode_key(2, WireType::LengthDelimited, buffer);
    encode_varint(inner as u64, buffer);
    uint64::encode(1, &index, buffer);
    message::encode(2, row, buffer);
    header(buffer);
}

/// Fills in the length and CRC of the record after the header in `buffer`.
fn header(buffer: &mut [u8]) {
    let length = (buffer.len() - HEADER) as u32;
    let crc = crc32(&buffer[HEADER..]);
    buffer[..4].copy_from_slice(&length.to_le_bytes());
    buffer[4..HEADER].copy_from_slice(&crc.to_le_bytes());
}

/// What a journal left by a runner that stopped mid-job holds.
#[derive(Debug, Default)]
pub struct JournalContents {
    pub task_id: i64,
    /// How many steps the forge's job has (0 when the journal lost it).
    pub step_count: usize,
    pub started_at: Option<Timestamp>,
    /// The job's result (`runner::Result`) when it had ended, its final report not yet
    /// delivered; 0 when it was still running.
    pub result: i32,
    pub stopped_at: Option<Timestamp>,
    /// Each step's last known state.
    pub steps: Vec<StepState>,
    /// The index of the first row held.
    pub first_row: u64,
    /// Rows from `first_row` on, in order.
    pub rows: Vec<LogRow>,
    /// Where and how the journal is damaged (not a torn last record, which a power loss
    /// leaves and which is ignored): what follows the damage is lost.
    pub damage: Option<String>,
}

/// The journal could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("cannot read the task journal {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path} is not a task journal: its name is not a task id")]
    NotAJournal { path: PathBuf },
}

/// Reads the journal in `dir` (named after its task). A torn last record is ignored; damage
/// elsewhere ends the reading there and is said in [`JournalContents::damage`].
pub fn read_journal(dir: &Path) -> Result<JournalContents, JournalError> {
    let read_error = |source| JournalError::Read {
        path: dir.to_owned(),
        source,
    };
    let task_id = dir
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.parse::<i64>().ok())
        .ok_or_else(|| JournalError::NotAJournal {
            path: dir.to_owned(),
        })?;
    let mut segments = Vec::new();
    for entry in fs::read_dir(dir).map_err(read_error)? {
        let entry = entry.map_err(read_error)?;
        let name = entry.file_name();
        let number = name
            .to_str()
            .and_then(|n| n.strip_suffix(".seg"))
            .and_then(|n| n.parse::<u64>().ok());
        if let Some(number) = number {
            segments.push((number, entry.path()));
        }
    }
    segments.sort();
    let mut contents = JournalContents {
        task_id,
        ..JournalContents::default()
    };
    for (_, path) in &segments {
        let bytes = fs::read(path).map_err(read_error)?;
        if let Err(damage) = read_segment(&bytes, &mut contents) {
            contents.damage = Some(format!("{}: {damage}", path.display()));
            break;
        }
    }
    Ok(contents)
}

/// Reads one segment's records into `contents` up to its end: zeros (the room never
/// written), or a torn record followed by nothing but zeros. A bad record before anything
/// else is damage; rows missing between segments (a torn tail of one that was not synced)
/// are found as a row coming where another was due.
fn read_segment(bytes: &[u8], contents: &mut JournalContents) -> Result<(), String> {
    let mut at = 0;
    while at < bytes.len() {
        let record = decode_at(bytes, at);
        let (entry, next) = match record {
            Ok(decoded) => decoded,
            Err(_) if torn_tail(bytes, at) => return Ok(()),
            Err(why) => return Err(format!("record at byte {at}: {why}")),
        };
        match entry {
            Entry::Task(task) => {
                contents.step_count = task.steps as usize;
                if task.started_at.is_some() {
                    contents.started_at = task.started_at;
                }
                if task.result != 0 {
                    contents.result = task.result;
                    contents.stopped_at = task.stopped_at;
                }
            }
            Entry::Row(RowRecord { index, row }) => {
                let row = row.unwrap_or_default();
                let expected = contents.first_row + contents.rows.len() as u64;
                if contents.rows.is_empty() {
                    contents.first_row = index;
                    contents.rows.push(row);
                } else if index == expected {
                    contents.rows.push(row);
                } else if index > expected {
                    return Err(format!(
                        "record at byte {at}: row {index} where row {expected} was due"
                    ));
                }
                // A row already held (never written twice, but harmless): skipped.
            }
            Entry::Step(step) => match contents.steps.iter_mut().find(|s| s.id == step.id) {
                Some(kept) => *kept = step,
                None => contents.steps.push(step),
            },
        }
        at = next;
    }
    Ok(())
}

/// The record at `at` and where the next one starts.
fn decode_at(bytes: &[u8], at: usize) -> Result<(Entry, usize), String> {
    let header = bytes
        .get(at..at + HEADER)
        .ok_or("the header is cut short")?;
    let length = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    if length > MAX_RECORD {
        return Err(format!("a length of {length} bytes"));
    }
    let body = bytes
        .get(at + HEADER..at + HEADER + length)
        .ok_or("the record is cut short")?;
    if crc32(body) != crc {
        return Err("its checksum does not match".into());
    }
    let record = Record::decode(body).map_err(|e| e.to_string())?;
    let entry = record.entry.ok_or("an empty record")?;
    Ok((entry, at + HEADER + length))
}

/// Whether a bad record at `at` is the end of what was written: nothing but zeros from there
/// (the room never written), or a record cut short by a kill or a power loss (whatever it
/// claims to hold ends where the file does, or is followed by nothing but zeros).
fn torn_tail(bytes: &[u8], at: usize) -> bool {
    let zeros = |from: usize| {
        bytes
            .get(from..)
            .is_none_or(|rest| rest.iter().all(|&b| b == 0))
    };
    if zeros(at) {
        return true;
    }
    match bytes.get(at..at + 4) {
        None => true,
        Some(length) => {
            let length = u32::from_le_bytes([length[0], length[1], length[2], length[3]]) as usize;
            length <= MAX_RECORD && zeros(at + HEADER + length)
        }
    }
}

/// CRC-32 (IEEE), eight bytes at a time (slicing-by-8): a row's checksum costs less than
/// its copy.
fn crc32(bytes: &[u8]) -> u32 {
    const TABLES: [[u32; 256]; 8] = {
        let mut tables = [[0u32; 256]; 8];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
                k += 1;
            }
            tables[0][i] = c;
            i += 1;
        }
        let mut i = 0;
        while i < 256 {
            let mut k = 1;
            while k < 8 {
                let previous = tables[k - 1][i];
                tables[k][i] = (previous >> 8) ^ tables[0][(previous & 0xff) as usize];
                k += 1;
            }
            i += 1;
        }
        tables
    };
    let t = &TABLES;
    let mut crc = !0u32;
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let lo = u32::from_le_bytes([c[0], c[1], c[2], c[3]]) ^ crc;
        let hi = u32::from_le_bytes([c[4], c[5], c[6], c[7]]);
        crc = t[7][(lo & 0xff) as usize]
            ^ t[6][((lo >> 8) & 0xff) as usize]
            ^ t[5][((lo >> 16) & 0xff) as usize]
            ^ t[4][(lo >> 24) as usize]
            ^ t[3][(hi & 0xff) as usize]
            ^ t[2][((hi >> 8) & 0xff) as usize]
            ^ t[1][((hi >> 16) & 0xff) as usize]
            ^ t[0][(hi >> 24) as usize];
    }
    for &b in chunks.remainder() {
        crc = t[0][((crc ^ u32::from(b)) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(i: u64) -> LogRow {
        LogRow {
            time: None,
            content: format!("line {i}"),
        }
    }

    fn contents(rows: &[LogRow]) -> Vec<String> {
        rows.iter().map(|r| r.content.clone()).collect()
    }

    fn step(id: i64, result: i32) -> StepState {
        StepState {
            id,
            result,
            log_index: 1,
            log_length: 2,
            ..StepState::default()
        }
    }

    fn segments(dir: &Path) -> Vec<PathBuf> {
        fs::read_dir(dir)
            .expect("dir")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "seg"))
            .collect()
    }

    fn only_segment(dir: &Path) -> PathBuf {
        let mut files = segments(dir);
        assert_eq!(files.len(), 1, "{files:?}");
        files.remove(0)
    }

    #[test]
    fn the_crc_is_ieees() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        // Eight bytes at a time gives what one at a time does, whatever the length.
        let bitwise = |bytes: &[u8]| {
            let mut crc = !0u32;
            for &b in bytes {
                crc ^= u32::from(b);
                for _ in 0..8 {
                    crc = if crc & 1 != 0 {
                        0xEDB8_8320 ^ (crc >> 1)
                    } else {
                        crc >> 1
                    };
                }
            }
            !crc
        };
        let data: Vec<u8> = (0..300u32).map(|i| (i * 7 + i / 3) as u8).collect();
        for len in 0..data.len() {
            assert_eq!(crc32(&data[..len]), bitwise(&data[..len]), "{len} bytes");
        }
    }

    #[test]
    fn a_row_encoded_from_a_borrow_is_what_prost_encodes() {
        for index in [0, 1, 300, u64::MAX] {
            let row = LogRow {
                time: Some(Timestamp {
                    seconds: 5,
                    nanos: 6,
                }),
                content: "é".repeat(100),
            };
            let mut by_hand = Vec::new();
            encode_row(index, &row, &mut by_hand);
            let mut by_prost = Vec::new();
            encode(
                Entry::Row(RowRecord {
                    index,
                    row: Some(row.clone()),
                }),
                &mut by_prost,
            );
            let (decoded, end) = decode_at(&by_hand, 0).expect("decodes");
            assert_eq!(end, by_hand.len());
            assert_eq!(
                decoded,
                Entry::Row(RowRecord {
                    index,
                    row: Some(row)
                })
            );
            if index != 0 {
                // prost leaves a zero index out; otherwise the bytes are the same.
                assert_eq!(by_hand, by_prost);
            }
        }
    }

    #[test]
    fn what_is_written_is_read_back() {
        let root = tempfile::tempdir().expect("dir");
        let mut journal = Journal::create(root.path(), 42, 3).expect("journal");
        journal.started(Timestamp {
            seconds: 7,
            nanos: 0,
        });
        journal.step(&step(0, 0));
        for i in 0..5 {
            journal.row(i, &row(i));
        }
        journal.step(&step(0, 1));
        journal.take_unsynced().run().expect("sync");
        let read = read_journal(&root.path().join("42")).expect("read");
        assert_eq!(read.task_id, 42);
        assert_eq!(read.step_count, 3);
        assert_eq!(read.started_at.map(|t| t.seconds), Some(7));
        assert_eq!(read.steps, vec![step(0, 1)]);
        assert_eq!(read.first_row, 0);
        assert_eq!(
            contents(&read.rows),
            (0..5).map(|i| format!("line {i}")).collect::<Vec<_>>()
        );
        assert!(read.damage.is_none());
        journal.remove();
        assert_eq!(fs::read_dir(root.path()).expect("dir").count(), 0);
    }

    #[test]
    fn acknowledged_segments_go_and_the_rest_keeps_the_steps() {
        let root = tempfile::tempdir().expect("dir");
        let mut journal = Journal::create(root.path(), 1, 2).expect("journal");
        journal.step(&step(0, 1));
        let big = LogRow {
            time: None,
            content: "x".repeat(60_000),
        };
        let count = 40; // past two segments
        for i in 0..count {
            journal.row(i, &big);
        }
        let dir = root.path().join("1");
        let segments = || segments(&dir).len();
        assert!(segments() >= 3, "{}", segments());
        journal.acked(count - 1);
        assert_eq!(
            segments(),
            1,
            "only the segment holding unacknowledged rows stays"
        );
        let read = read_journal(&dir).expect("read");
        assert!(read.first_row > 0 && read.first_row < count);
        assert_eq!(read.first_row + read.rows.len() as u64, count);
        assert_eq!(read.steps, vec![step(0, 1)], "the step's state came along");
        assert_eq!(read.step_count, 2);
        let size = fs::metadata(only_segment(&dir)).expect("meta").len();
        assert_eq!(size, SEGMENT_BYTES);
    }

    #[test]
    fn a_torn_last_record_is_ignored() {
        let root = tempfile::tempdir().expect("dir");
        let mut journal = Journal::create(root.path(), 5, 1).expect("journal");
        for i in 0..3 {
            journal.row(i, &row(i));
        }
        let used = journal.used();
        drop(journal);
        let dir = root.path().join("5");
        let file = only_segment(&dir);
        let whole = fs::read(&file).expect("read");
        let written = &whole[..used];
        let mut last = Vec::new();
        encode(
            Entry::Row(RowRecord {
                index: 3,
                row: Some(row(3)),
            }),
            &mut last,
        );
        // Cut anywhere inside the last record: at the end of the file, or with the
        // segment's unwritten room after it.
        for cut in 1..last.len() {
            for padded in [false, true] {
                let mut bytes = written.to_vec();
                bytes.extend_from_slice(&last[..cut]);
                if padded {
                    bytes.resize(whole.len(), 0);
                }
                fs::write(&file, &bytes).expect("write");
                let read = read_journal(&dir).expect("read");
                assert!(read.damage.is_none(), "cut at {cut}: {:?}", read.damage);
                assert_eq!(read.rows.len(), 3, "cut at {cut}");
            }
        }
    }

    #[test]
    fn damage_in_the_middle_is_reported_with_what_came_before() {
        let root = tempfile::tempdir().expect("dir");
        let mut journal = Journal::create(root.path(), 9, 1).expect("journal");
        for i in 0..10 {
            journal.row(i, &row(i));
        }
        let journal_used = journal.used();
        drop(journal);
        let used = journal_used;
        let dir = root.path().join("9");
        let file = only_segment(&dir);
        let mut bytes = fs::read(&file).expect("read");
        let middle = used / 2;
        bytes[middle] ^= 0x55;
        fs::write(&file, &bytes).expect("write");
        let read = read_journal(&dir).expect("read");
        let damage = read.damage.expect("damage reported");
        assert!(damage.contains("record at byte"), "{damage}");
        assert!(read.rows.len() < 10);
        assert_eq!(
            contents(&read.rows),
            (0..read.rows.len() as u64)
                .map(|i| format!("line {i}"))
                .collect::<Vec<_>>()
        );
        // Garbage from the first byte: damage, not a panic.
        fs::write(&file, b"\xff\xff\xff\x7fnot a journal at all, and more").expect("write");
        assert!(read_journal(&dir).expect("read").damage.is_some());
    }

    #[test]
    fn a_folder_not_named_after_a_task_is_not_a_journal() {
        let root = tempfile::tempdir().expect("dir");
        let dir = root.path().join("notes");
        fs::create_dir(&dir).expect("dir");
        assert!(matches!(
            read_journal(&dir),
            Err(JournalError::NotAJournal { .. })
        ));
    }

    /// What the journal costs a row (`cargo test --release -p hearth-forge --lib --
    /// --ignored --nocapture journal_cost`): 100,000 rows of 80 characters, as `bench/`'s
    /// log case prints them.
    #[test]
    #[ignore = "a measurement, run in release"]
    fn journal_cost_per_row() {
        let root = tempfile::tempdir().expect("dir");
        let rows: Vec<LogRow> = (0..100_000)
            .map(|i| LogRow {
                time: Some(Timestamp {
                    seconds: 1_700_000_000,
                    nanos: i,
                }),
                content: format!("line {i:07} {}", "abcdefghij".repeat(7)),
            })
            .collect();
        let mut journal = Journal::create(root.path(), 1, 1).expect("journal");
        let started = std::time::Instant::now();
        for (i, row) in rows.iter().enumerate() {
            journal.row(i as u64, row);
            if i % 500 == 499 {
                // What the sender does as the forge acknowledges.
                journal.acked(i as u64 - 200);
            }
        }
        let written = started.elapsed();
        let sync = std::time::Instant::now();
        journal.take_unsynced().run().expect("sync");
        println!(
            "journal: {:.0} ns per row written ({} rows), final fsync {:?}",
            written.as_nanos() as f64 / rows.len() as f64,
            rows.len(),
            sync.elapsed()
        );
        assert!(!journal.failed);
    }
}
