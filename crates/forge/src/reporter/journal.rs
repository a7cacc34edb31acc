//! The task journal: what a running task has told the forge, or is about to, kept on disk so
//! that a runner killed mid-job (SIGKILL, a power loss) can finalize the task when it starts
//! again ([`super::recover`]).
//!
//! One folder per task (`<journal root>/<task id>/`) holding numbered segment files. Each
//! segment is a sequence of records, `[length u32 LE][CRC-32 u32 LE][protobuf Record]`: the
//! task (id, number of steps, when the job started), each log row with its absolute index,
//! each step's state when it starts and ends. Every record is written (one `write`, so in the
//! kernel's hands and safe from a killed process) before the reporter's sink returns; the
//! sender `fsync`s the files once per round, so a power loss costs at most the last round's
//! rows. A segment is sealed at [`SEGMENT_BYTES`] and the next one starts with the task and
//! every step's state, so a segment whose rows the forge has all acknowledged is deleted
//! whole: the journal holds the rows not yet acknowledged and at most one segment more. It
//! holds no token (reporting uses the runner's own credentials) and only masked rows.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use prost::Message;
use prost_types::Timestamp;

use crate::proto::runner::{LogRow, StepState};

/// The folder under the runner's spool folder (`runner.log_spill_dir`) holding the journals.
pub const JOURNAL_DIR: &str = "journal";

/// A segment is sealed, and the next one started, past this size.
pub(crate) const SEGMENT_BYTES: u64 = 1 << 20;

/// A record header: length and CRC.
const HEADER: usize = 8;

/// Records larger than this are not the journal's (a row is at most 64 KiB).
const MAX_RECORD: usize = 1 << 20;

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
    current: Arc<File>,
    current_number: u64,
    current_bytes: u64,
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
        let current = Arc::new(open_segment(&dir, 0)?);
        let mut journal = Journal {
            unsynced: vec![current.clone()],
            unsynced_dirs: vec![dir.clone(), root.to_owned()],
            dir,
            current,
            current_number: 0,
            current_bytes: 0,
            sealed: VecDeque::new(),
            next_row: 0,
            task: TaskRecord {
                id: task_id,
                steps: u32::try_from(step_count).unwrap_or(u32::MAX),
                started_at: None,
            },
            steps: Vec::new(),
            failed: false,
            buffer: Vec::new(),
        };
        let task = Entry::Task(journal.task.clone());
        journal.write(&task)?;
        Ok(journal)
    }

    /// The job started at `at` (kept once).
    pub(crate) fn started(&mut self, at: Timestamp) {
        if self.task.started_at.is_none() {
            self.task.started_at = Some(at);
            self.append(&Entry::Task(self.task.clone()));
        }
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
        self.append(&Entry::Row(RowRecord {
            index,
            row: Some(row.clone()),
        }));
    }

    /// A step's state as it is now (started, or ended).
    pub(crate) fn step(&mut self, state: &StepState) {
        match self.steps.iter_mut().find(|s| s.id == state.id) {
            Some(kept) => *kept = state.clone(),
            None => self.steps.push(state.clone()),
        }
        self.append(&Entry::Step(state.clone()));
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
    /// thread ([`Sync::run`]).
    pub(crate) fn to_sync(&mut self) -> Sync {
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

    fn append(&mut self, entry: &Entry) {
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

    fn write(&mut self, entry: &Entry) -> io::Result<()> {
        if self.current_bytes >= SEGMENT_BYTES {
            self.seal()?;
        }
        encode(entry, &mut self.buffer);
        let written = (&*self.current).write_all(&self.buffer);
        if let Err(e) = written {
            // A record cut short stays the file's torn tail: take it off if we can.
            let _ = self.current.set_len(self.current_bytes);
            return Err(e);
        }
        self.current_bytes += self.buffer.len() as u64;
        if !self.unsynced.iter().any(|f| Arc::ptr_eq(f, &self.current)) {
            self.unsynced.push(self.current.clone());
        }
        Ok(())
    }

    /// Starts the next segment with the task and every step's state.
    fn seal(&mut self) -> io::Result<()> {
        let number = self.current_number + 1;
        let file = Arc::new(open_segment(&self.dir, number)?);
        let previous = std::mem::replace(&mut self.current, file);
        self.sealed.push_back(Sealed {
            path: segment_path(&self.dir, self.current_number),
            end: self.next_row,
        });
        if !self.unsynced.iter().any(|f| Arc::ptr_eq(f, &previous)) {
            self.unsynced.push(previous);
        }
        self.unsynced.push(self.current.clone());
        self.unsynced_dirs.push(self.dir.clone());
        self.current_number = number;
        self.current_bytes = 0;
        let mut snapshot = vec![Entry::Task(self.task.clone())];
        snapshot.extend(self.steps.iter().cloned().map(Entry::Step));
        for entry in &snapshot {
            encode(entry, &mut self.buffer);
            (&*self.current).write_all(&self.buffer)?;
            self.current_bytes += self.buffer.len() as u64;
        }
        Ok(())
    }
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

fn segment_path(dir: &Path, number: u64) -> PathBuf {
    dir.join(format!("{number:08}.seg"))
}

fn open_segment(dir: &Path, number: u64) -> io::Result<File> {
    OpenOptions::new()
        .create_new(true)
        .append(true)
        .open(segment_path(dir, number))
}

fn encode(entry: &Entry, buffer: &mut Vec<u8>) {
    let record = Record {
        entry: Some(entry.clone()),
    };
    buffer.clear();
    buffer.resize(HEADER, 0);
    record
        .encode(buffer)
        .unwrap_or_else(|_| unreachable!("a Vec grows as needed"));
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
    let last = segments.len().saturating_sub(1);
    for (position, (_, path)) in segments.iter().enumerate() {
        let bytes = fs::read(path).map_err(read_error)?;
        if let Err(damage) = read_segment(&bytes, position == last, &mut contents) {
            contents.damage = Some(format!("{}: {damage}", path.display()));
            break;
        }
    }
    Ok(contents)
}

/// Reads one segment's records into `contents`; a bad record is an error unless it is the
/// torn tail of the `last` segment.
fn read_segment(bytes: &[u8], last: bool, contents: &mut JournalContents) -> Result<(), String> {
    let mut at = 0;
    while at < bytes.len() {
        let record = decode_at(bytes, at);
        let (entry, next) = match record {
            Ok(decoded) => decoded,
            Err(_) if last && torn_tail(bytes, at) => return Ok(()),
            Err(why) => return Err(format!("record at byte {at}: {why}")),
        };
        match entry {
            Entry::Task(task) => {
                contents.step_count = task.steps as usize;
                if task.started_at.is_some() {
                    contents.started_at = task.started_at;
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

/// Whether a bad record at `at` is what a write cut short by a power loss leaves: a record
/// running past the end, or nothing but zeros from there on (a file system that extended
/// the file but lost the data). Anything after it that is not zeros is damage.
fn torn_tail(bytes: &[u8], at: usize) -> bool {
    let rest = &bytes[at..];
    if rest.iter().all(|&b| b == 0) {
        return true;
    }
    match rest.get(..4) {
        None => true,
        Some(length) => {
            let length = u32::from_le_bytes([length[0], length[1], length[2], length[3]]) as usize;
            length <= MAX_RECORD && HEADER + length >= rest.len()
        }
    }
}

/// CRC-32 (IEEE), table-driven.
fn crc32(bytes: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut table = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
                k += 1;
            }
            table[i] = c;
            i += 1;
        }
        table
    };
    let mut crc = !0u32;
    for &b in bytes {
        crc = TABLE[((crc ^ u32::from(b)) & 0xff) as usize] ^ (crc >> 8);
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

    fn only_segment(dir: &Path) -> PathBuf {
        let mut files: Vec<_> = fs::read_dir(dir)
            .expect("dir")
            .map(|e| e.expect("entry").path())
            .collect();
        assert_eq!(files.len(), 1, "{files:?}");
        files.remove(0)
    }

    #[test]
    fn the_crc_is_ieees() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
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
        journal.to_sync().run().expect("sync");
        let read = read_journal(&root.path().join("42")).expect("read");
        assert_eq!(read.task_id, 42);
        assert_eq!(read.step_count, 3);
        assert_eq!(read.started_at.map(|t| t.seconds), Some(7));
        assert_eq!(read.steps, vec![step(0, 1)]);
        assert_eq!(read.first_row, 0);
        assert_eq!(contents(&read.rows), (0..5).map(|i| format!("line {i}")).collect::<Vec<_>>());
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
        let segments = || fs::read_dir(&dir).expect("dir").count();
        assert!(segments() >= 3, "{}", segments());
        journal.acked(count - 1);
        assert_eq!(segments(), 1, "only the segment holding unacknowledged rows stays");
        let read = read_journal(&dir).expect("read");
        assert!(read.first_row > 0 && read.first_row < count);
        assert_eq!(read.first_row + read.rows.len() as u64, count);
        assert_eq!(read.steps, vec![step(0, 1)], "the step's state came along");
        assert_eq!(read.step_count, 2);
        let size = fs::metadata(only_segment(&dir)).expect("meta").len();
        assert!(size <= SEGMENT_BYTES + 70_000, "{size}");
    }

    #[test]
    fn a_torn_last_record_is_ignored() {
        let root = tempfile::tempdir().expect("dir");
        let mut journal = Journal::create(root.path(), 5, 1).expect("journal");
        for i in 0..3 {
            journal.row(i, &row(i));
        }
        drop(journal);
        let dir = root.path().join("5");
        let file = only_segment(&dir);
        let whole = fs::read(&file).expect("read");
        // Cut anywhere inside the last record, or left with zeros after it.
        let mut last = whole.clone();
        encode(
            &Entry::Row(RowRecord {
                index: 3,
                row: Some(row(3)),
            }),
            &mut last,
        );
        let last_len = last.len();
        for cut in 1..last_len {
            let mut bytes = whole.clone();
            bytes.extend_from_slice(&last[..cut]);
            fs::write(&file, &bytes).expect("write");
            let read = read_journal(&dir).expect("read");
            assert!(read.damage.is_none(), "cut at {cut}: {:?}", read.damage);
            assert_eq!(read.rows.len(), 3, "cut at {cut}");
        }
        let mut zeros = whole.clone();
        zeros.extend_from_slice(&[0; 4096]);
        fs::write(&file, &zeros).expect("write");
        let read = read_journal(&dir).expect("read");
        assert!(read.damage.is_none());
        assert_eq!(read.rows.len(), 3);
    }

    #[test]
    fn damage_in_the_middle_is_reported_with_what_came_before() {
        let root = tempfile::tempdir().expect("dir");
        let mut journal = Journal::create(root.path(), 9, 1).expect("journal");
        for i in 0..10 {
            journal.row(i, &row(i));
        }
        drop(journal);
        let dir = root.path().join("9");
        let file = only_segment(&dir);
        let mut bytes = fs::read(&file).expect("read");
        let middle = bytes.len() / 2;
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
}
