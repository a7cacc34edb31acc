//! Cache entries on disk: written in parts while a job uploads, visible only once whole.
//!
//! Layout under the store's folder:
//! - `uploads/<id>.part`: an entry being uploaded, its parts written at their offsets;
//! - `entries/<id>.blob`: a committed entry's bytes, renamed there from `uploads/` once every
//!   byte arrived;
//! - `entries/<id>.json`: its record (scope, key, version, size, creation time), written to a
//!   temporary file and renamed last. An entry exists when its record does: a crash at any
//!   moment leaves either a whole entry or none, and `open` removes what a crash left half-way
//!   (uploads, blobs without a record, records without their whole blob).
//!
//! The blob's modification time is the entry's last use (set at each download), so eviction
//! by least recent use survives a restart. The store holds its index in memory; one process
//! owns a folder at a time (an exclusive `flock` on `lock`).

use std::collections::{BTreeMap, HashMap};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncSeekExt, AsyncWriteExt};

/// Whose entries these are: a repository and a ref of it (`refs/heads/main`). A job reads the
/// scopes it is granted, in order, and writes one.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Scope {
    pub repository: String,
    pub reference: String,
}

/// A committed entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryInfo {
    pub id: u64,
    pub scope: Scope,
    pub key: String,
    pub version: String,
    pub size: u64,
    /// Milliseconds since the Unix epoch.
    pub created: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("another process uses the cache folder {0}")]
    Locked(PathBuf),
    #[error("an entry with key {key:?} and version {version:?} exists or is being saved")]
    Exists { key: String, version: String },
    #[error("no upload {0} in progress")]
    NoUpload(u64),
    #[error("no entry {0}")]
    NoEntry(u64),
    #[error("the upload {0} belongs to another scope")]
    OtherScope(u64),
    #[error("{size} bytes is more than the cache holds ({limit} bytes)")]
    TooLarge { size: u64, limit: u64 },
    #[error("bytes {start}..{end} are outside the upload's {size} bytes")]
    OutOfRange { start: u64, end: u64, size: u64 },
    #[error("the upload is missing bytes: it has {have:?} of 0..{size}")]
    Incomplete { have: Vec<(u64, u64)>, size: u64 },
    #[error("the key is empty or longer than 512 characters")]
    BadKey,
}

const ENTRIES: &str = "entries";
const UPLOADS: &str = "uploads";
/// GitHub's limit on a key's length.
const MAX_KEY: usize = 512;

/// An entry being uploaded.
struct Upload {
    scope: Scope,
    key: String,
    version: String,
    /// The size the job announced, if it did.
    size: Option<u64>,
    /// The byte ranges written, merged, in order.
    written: Vec<(u64, u64)>,
}

struct Entry {
    info: EntryInfo,
    /// Milliseconds since the Unix epoch.
    last_used: u64,
}

struct State {
    entries: BTreeMap<u64, Entry>,
    uploads: HashMap<u64, Upload>,
    next_id: u64,
    total: u64,
}

/// The entries of one folder.
pub struct Store {
    root: PathBuf,
    /// The most bytes the committed entries may hold; the least recently used go beyond it.
    limit: u64,
    state: Mutex<State>,
    /// Held open for its `flock`.
    _lock: std::fs::File,
}

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> StoreError + 'a {
    move |source| StoreError::Io {
        what,
        path: path.to_owned(),
        source,
    }
}

fn millis(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn now() -> u64 {
    millis(SystemTime::now())
}

impl Store {
    /// Opens (making it if needed) the store in `root`, holding at most `limit` bytes; removes
    /// what a crash left half-way.
    pub fn open(root: &Path, limit: u64) -> Result<Store, StoreError> {
        let entries = root.join(ENTRIES);
        let uploads = root.join(UPLOADS);
        for dir in [&entries, &uploads] {
            std::fs::create_dir_all(dir).map_err(io("cannot create", dir))?;
        }
        let lock_path = root.join("lock");
        let lock = std::fs::File::create(&lock_path).map_err(io("cannot create", &lock_path))?;
        // SAFETY: flock(2) on a descriptor this function owns.
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            return Err(StoreError::Locked(root.to_owned()));
        }
        // Uploads do not survive a restart: their jobs' saves failed with the connection.
        for file in read_dir(&uploads)? {
            remove_file(&file);
        }
        let mut state = State {
            entries: BTreeMap::new(),
            uploads: HashMap::new(),
            next_id: 1,
            total: 0,
        };
        let mut blobs = Vec::new();
        for file in read_dir(&entries)? {
            match file.extension().and_then(|e| e.to_str()) {
                Some("json") => {
                    if let Some(entry) = load_entry(&file) {
                        state.next_id = state.next_id.max(entry.info.id + 1);
                        state.total += entry.info.size;
                        state.entries.insert(entry.info.id, entry);
                    } else {
                        remove_file(&file);
                    }
                }
                Some("blob") => blobs.push(file),
                // A record's temporary file, from a crash before its rename.
                _ => remove_file(&file),
            }
        }
        for blob in blobs {
            let id = blob
                .file_stem()
                .and_then(|s| s.to_str())
                .and_then(|s| s.parse::<u64>().ok());
            if id.is_none_or(|id| !state.entries.contains_key(&id)) {
                remove_file(&blob);
            }
        }
        // A job may still hold the id of an upload from before the restart: new ids start
        // past any handed out then (the clock's milliseconds, well within a JSON number).
        state.next_id = state.next_id.max(now());
        Ok(Store {
            root: root.to_owned(),
            limit,
            state: Mutex::new(state),
            _lock: lock,
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn blob_path(&self, id: u64) -> PathBuf {
        self.root.join(ENTRIES).join(format!("{id}.blob"))
    }

    fn record_path(&self, id: u64) -> PathBuf {
        self.root.join(ENTRIES).join(format!("{id}.json"))
    }

    fn part_path(&self, id: u64) -> PathBuf {
        self.root.join(UPLOADS).join(format!("{id}.part"))
    }

    /// The entry `keys` and `version` restore from, searching `scopes` in order, as GitHub
    /// does: in each scope, the first key exactly, then each key as a prefix (the first key
    /// too), the newest entry of a match first.
    pub fn find(&self, scopes: &[Scope], keys: &[String], version: &str) -> Option<EntryInfo> {
        let state = self.state();
        let newest = |scope: &Scope, matches: &dyn Fn(&str) -> bool| {
            state
                .entries
                .values()
                .filter(|e| &e.info.scope == scope && e.info.version == version)
                .filter(|e| matches(&e.info.key))
                .max_by_key(|e| (e.info.created, e.info.id))
                .map(|e| e.info.clone())
        };
        for scope in scopes {
            if let Some(primary) = keys.first() {
                if let Some(found) = newest(scope, &|k| k == primary) {
                    return Some(found);
                }
            }
            for key in keys {
                if let Some(found) = newest(scope, &|k| k.starts_with(key.as_str())) {
                    return Some(found);
                }
            }
        }
        None
    }

    /// The committed entry `id`, if there is one.
    pub fn entry(&self, id: u64) -> Option<EntryInfo> {
        self.state().entries.get(&id).map(|e| e.info.clone())
    }

    /// Starts an upload of an entry of `scope` (refused when one with the same key and version
    /// is there or on its way: entries never change once written); its id.
    pub fn reserve(
        &self,
        scope: &Scope,
        key: &str,
        version: &str,
        size: Option<u64>,
    ) -> Result<u64, StoreError> {
        if key.is_empty() || key.chars().count() > MAX_KEY {
            return Err(StoreError::BadKey);
        }
        if let Some(size) = size.filter(|&s| s > self.limit) {
            return Err(StoreError::TooLarge {
                size,
                limit: self.limit,
            });
        }
        let mut state = self.state();
        let taken = |s: &Scope, k: &str, v: &str| s == scope && k == key && v == version;
        let exists = state
            .entries
            .values()
            .any(|e| taken(&e.info.scope, &e.info.key, &e.info.version))
            || state
                .uploads
                .values()
                .any(|u| taken(&u.scope, &u.key, &u.version));
        if exists {
            return Err(StoreError::Exists {
                key: key.to_owned(),
                version: version.to_owned(),
            });
        }
        let id = state.next_id;
        state.next_id += 1;
        state.uploads.insert(
            id,
            Upload {
                scope: scope.clone(),
                key: key.to_owned(),
                version: version.to_owned(),
                size,
                written: Vec::new(),
            },
        );
        Ok(id)
    }

    /// Checks that `scope` may write bytes `start..start + len` of upload `id`.
    fn check_part(&self, id: u64, scope: &Scope, start: u64, len: u64) -> Result<(), StoreError> {
        let state = self.state();
        let upload = state.uploads.get(&id).ok_or(StoreError::NoUpload(id))?;
        if &upload.scope != scope {
            return Err(StoreError::OtherScope(id));
        }
        let end = start.saturating_add(len);
        let size = upload.size.unwrap_or(self.limit);
        if end > size {
            return Err(StoreError::OutOfRange { start, end, size });
        }
        Ok(())
    }

    /// A writer of upload `id`'s bytes from `start` on, for `scope`. What it writes counts
    /// once it is finished.
    pub async fn part(
        &self,
        id: u64,
        scope: &Scope,
        start: u64,
    ) -> Result<PartWriter<'_>, StoreError> {
        self.check_part(id, scope, start, 0)?;
        let path = self.part_path(id);
        let mut file = tokio::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .await
            .map_err(io("cannot open", &path))?;
        file.seek(std::io::SeekFrom::Start(start))
            .await
            .map_err(io("cannot seek in", &path))?;
        Ok(PartWriter {
            store: self,
            id,
            scope: scope.clone(),
            start,
            written: 0,
            file: tokio::io::BufWriter::with_capacity(1 << 20, file),
            path,
        })
    }

    /// Ends upload `id` of `scope` as an entry of `size` bytes, once every byte is there:
    /// synced, renamed into the entries, its record written last. The least recently used
    /// entries then go until the store is within its limit.
    pub async fn commit(&self, id: u64, scope: &Scope, size: u64) -> Result<EntryInfo, StoreError> {
        let info = {
            let state = self.state();
            let upload = state.uploads.get(&id).ok_or(StoreError::NoUpload(id))?;
            if &upload.scope != scope {
                return Err(StoreError::OtherScope(id));
            }
            let whole = if size == 0 {
                upload.written.is_empty()
            } else {
                upload.written == [(0, size)]
            };
            if !whole || upload.size.is_some_and(|s| s != size) {
                return Err(StoreError::Incomplete {
                    have: upload.written.clone(),
                    size: upload.size.unwrap_or(size),
                });
            }
            if size > self.limit {
                return Err(StoreError::TooLarge {
                    size,
                    limit: self.limit,
                });
            }
            EntryInfo {
                id,
                scope: scope.clone(),
                key: upload.key.clone(),
                version: upload.version.clone(),
                size,
                created: now(),
            }
        };
        let (part, blob, record) = (self.part_path(id), self.blob_path(id), self.record_path(id));
        let entries = self.root.join(ENTRIES);
        let text = serde_json::to_vec(&info).map_err(|e| StoreError::Io {
            what: "cannot write the record of",
            path: record.clone(),
            source: std::io::Error::other(e),
        })?;
        let made = tokio::task::spawn_blocking(move || -> Result<(), StoreError> {
            // An empty entry has no part file.
            let file = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&part)
                .map_err(io("cannot open", &part))?;
            file.set_len(size).map_err(io("cannot size", &part))?;
            file.sync_all().map_err(io("cannot sync", &part))?;
            std::fs::rename(&part, &blob).map_err(io("cannot move", &part))?;
            let temporary = record.with_extension("json.tmp");
            let mut file =
                std::fs::File::create(&temporary).map_err(io("cannot create", &temporary))?;
            std::io::Write::write_all(&mut file, &text).map_err(io("cannot write", &temporary))?;
            file.sync_all().map_err(io("cannot sync", &temporary))?;
            std::fs::rename(&temporary, &record).map_err(io("cannot move", &temporary))?;
            // The renames themselves survive a power loss once the folder is synced.
            std::fs::File::open(&entries)
                .and_then(|dir| dir.sync_all())
                .map_err(io("cannot sync", &entries))
        })
        .await
        .map_err(|e| StoreError::Io {
            what: "cannot commit",
            path: self.part_path(id),
            source: std::io::Error::other(e),
        })?;
        if let Err(e) = made {
            self.abandon(id);
            return Err(e);
        }
        let evicted = {
            let mut state = self.state();
            state.uploads.remove(&id);
            state.total += size;
            let used = info.created;
            state.entries.insert(
                id,
                Entry {
                    info: info.clone(),
                    last_used: used,
                },
            );
            let mut evicted = Vec::new();
            while state.total > self.limit {
                let Some(oldest) = state
                    .entries
                    .values()
                    .filter(|e| e.info.id != id)
                    .min_by_key(|e| (e.last_used, e.info.id))
                    .map(|e| e.info.id)
                else {
                    break;
                };
                if let Some(gone) = state.entries.remove(&oldest) {
                    state.total -= gone.info.size;
                    evicted.push(gone.info.id);
                }
            }
            evicted
        };
        for gone in evicted {
            // The record first: without it the blob is not an entry.
            remove_file(&self.record_path(gone));
            remove_file(&self.blob_path(gone));
            tracing::debug!(
                entry = gone,
                "evicted a cache entry, the least recently used"
            );
        }
        Ok(info)
    }

    /// Drops upload `id` and its bytes.
    pub fn abandon(&self, id: u64) {
        if self.state().uploads.remove(&id).is_some() {
            remove_file(&self.part_path(id));
        }
    }

    /// Opens entry `id` to read it, marking it used now.
    pub async fn open_entry(&self, id: u64) -> Result<(EntryInfo, tokio::fs::File), StoreError> {
        let info = {
            let mut state = self.state();
            let entry = state.entries.get_mut(&id).ok_or(StoreError::NoEntry(id))?;
            entry.last_used = now();
            entry.info.clone()
        };
        let path = self.blob_path(id);
        let file = tokio::fs::File::open(&path)
            .await
            .map_err(io("cannot open", &path))?;
        // The use survives a restart as the blob's modification time (best effort).
        let std_file = file.try_clone().await.ok();
        if let Some(std_file) = std_file {
            let std_file = std_file.into_std().await;
            let _ = std_file.set_modified(SystemTime::now());
        }
        Ok((info, file))
    }

    /// The bytes the committed entries hold.
    pub fn total_size(&self) -> u64 {
        self.state().total
    }

    /// Records that upload `id` has bytes `start..end`.
    fn record_part(&self, id: u64, start: u64, end: u64) -> Result<(), StoreError> {
        let mut state = self.state();
        let upload = state.uploads.get_mut(&id).ok_or(StoreError::NoUpload(id))?;
        if start < end {
            merge(&mut upload.written, (start, end));
        }
        Ok(())
    }
}

/// Writes one part of an upload; it counts once `finish` returns.
pub struct PartWriter<'a> {
    store: &'a Store,
    id: u64,
    scope: Scope,
    start: u64,
    written: u64,
    file: tokio::io::BufWriter<tokio::fs::File>,
    path: PathBuf,
}

impl PartWriter<'_> {
    /// Writes the next bytes of the part.
    pub async fn write(&mut self, bytes: &[u8]) -> Result<(), StoreError> {
        let len = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
        self.store
            .check_part(self.id, &self.scope, self.start, self.written + len)?;
        self.file
            .write_all(bytes)
            .await
            .map_err(io("cannot write", &self.path))?;
        self.written += len;
        Ok(())
    }

    /// Flushes the part and records its bytes as written; how many there were.
    pub async fn finish(mut self) -> Result<u64, StoreError> {
        self.file
            .flush()
            .await
            .map_err(io("cannot write", &self.path))?;
        self.store
            .record_part(self.id, self.start, self.start + self.written)?;
        Ok(self.written)
    }
}

/// Adds `range` to the sorted, merged `ranges`.
fn merge(ranges: &mut Vec<(u64, u64)>, range: (u64, u64)) {
    ranges.push(range);
    ranges.sort_unstable();
    let mut merged: Vec<(u64, u64)> = Vec::with_capacity(ranges.len());
    for &(start, end) in ranges.iter() {
        match merged.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => merged.push((start, end)),
        }
    }
    *ranges = merged;
}

fn read_dir(dir: &Path) -> Result<Vec<PathBuf>, StoreError> {
    let entries = std::fs::read_dir(dir).map_err(io("cannot read", dir))?;
    Ok(entries.flatten().map(|e| e.path()).collect())
}

fn remove_file(path: &Path) {
    if let Err(e) = std::fs::remove_file(path) {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(path = %path.display(), error = %e, "cannot remove a cache file");
        }
    }
}

/// A committed entry from its record, if the record is sound and its blob whole.
fn load_entry(record: &Path) -> Option<Entry> {
    let text = std::fs::read(record).ok()?;
    let info: EntryInfo = serde_json::from_slice(&text).ok()?;
    let blob = record.with_extension("blob");
    let meta = std::fs::metadata(&blob).ok()?;
    if meta.len() != info.size || record.file_stem()?.to_str()? != info.id.to_string() {
        return None;
    }
    let last_used = meta
        .modified()
        .map(millis)
        .unwrap_or(info.created)
        .max(info.created);
    Some(Entry { info, last_used })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_merge_whatever_order_they_come_in() {
        let mut ranges = Vec::new();
        for range in [(10, 20), (0, 5), (5, 10), (30, 40), (19, 31)] {
            merge(&mut ranges, range);
        }
        assert_eq!(ranges, [(0, 40)]);
        let mut gaps = Vec::new();
        merge(&mut gaps, (0, 5));
        merge(&mut gaps, (6, 8));
        assert_eq!(gaps, [(0, 5), (6, 8)]);
    }
}
