//! Cache entries on disk: written in parts while a job uploads, visible only once whole.
//!
//! Layout under the store's folder:
//! - `uploads/<id>.part`: an entry being uploaded, its parts written at their offsets;
//! - `entries/<id>.blob`: a committed entry's bytes, renamed there from `uploads/` once every
//!   byte arrived;
//! - `entries/<id>.json`: its record (scope, key, version, size, creation time), written to a
//!   temporary file and renamed last. An entry exists when its record does: a crash at any
//!   moment leaves either a whole entry or none. `open` removes what a crash left half-way
//!   (uploads, blobs without a record, records' temporary files) once it is an hour old, since
//!   a younger one may be another process's work in progress, and records without their whole
//!   blob at once.
//!
//! Several processes may share a folder (runners on one machine, `hearth exec` runs beside a
//! daemon): each keeps an index of the records in memory, read again whenever the entries
//! folder changed; a commit and the evictions after it hold an exclusive `flock` on `lock`,
//! under which the records on disk are the truth (a key another process committed meanwhile is
//! refused, as entries never change); ids are random. The blob's modification time is the
//! entry's last use (set at each download), so eviction by least recent use holds across
//! processes and restarts.

use std::collections::{BTreeMap, HashMap};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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
const LOCK: &str = "lock";
/// Where uploads through the Block Blob API are staged (`hearth_blob::block::Staging`).
const STAGING: &str = "staging";
/// How old a crash's leftover must be before `open` removes it: a younger one may be another
/// process's upload or commit.
const STALE: Duration = Duration::from_secs(3600);
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
    total: u64,
    /// The entries folder's modification time when the index was read.
    seen: Option<SystemTime>,
}

/// The entries of one folder.
pub struct Store {
    root: PathBuf,
    /// The most bytes the committed entries may hold; the least recently used go beyond it.
    limit: u64,
    state: Mutex<State>,
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
        let lock = root.join(LOCK);
        with_lock(&lock, || -> Result<(), StoreError> {
            let stale = |file: &Path| {
                std::fs::metadata(file)
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age > STALE)
            };
            for file in read_dir(&uploads)? {
                if stale(&file) {
                    remove_file(&file);
                }
            }
            let records = read_index(&entries)?;
            for file in read_dir(&entries)? {
                let id = file
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .and_then(|s| s.parse::<u64>().ok());
                match file.extension().and_then(|e| e.to_str()) {
                    // A record without its whole blob: not an entry.
                    Some("json") if id.is_none_or(|id| !records.contains_key(&id)) => {
                        remove_file(&file)
                    }
                    Some("json") => {}
                    Some("blob") if id.is_some_and(|id| records.contains_key(&id)) => {}
                    // A blob without a record, or a record's temporary file.
                    _ if stale(&file) => remove_file(&file),
                    _ => {}
                }
            }
            Ok(())
        })??;
        let store = Store {
            root: root.to_owned(),
            limit,
            state: Mutex::new(State {
                entries: BTreeMap::new(),
                uploads: HashMap::new(),
                total: 0,
                seen: None,
            }),
        };
        store.refresh()?;
        Ok(store)
    }

    /// Reads the records again when the entries folder changed since they were read.
    fn refresh(&self) -> Result<(), StoreError> {
        let entries = self.root.join(ENTRIES);
        let changed = std::fs::metadata(&entries)
            .and_then(|m| m.modified())
            .map_err(io("cannot read", &entries))?;
        if self.state().seen == Some(changed) {
            return Ok(());
        }
        let index = read_index(&entries)?;
        let mut state = self.state();
        state.total = index.values().map(|e| e.info.size).sum();
        state.entries = index;
        state.seen = Some(changed);
        Ok(())
    }

    /// `refresh`, a failure logged: the index read before stays in use.
    fn refresh_or_warn(&self) {
        if let Err(e) = self.refresh() {
            tracing::warn!("cannot read the cache's entries again: {e}");
        }
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
        self.refresh_or_warn();
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
        self.refresh_or_warn();
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
        self.refresh_or_warn();
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
        let mut id = random_id()?;
        while state.entries.contains_key(&id) || state.uploads.contains_key(&id) {
            id = random_id()?;
        }
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

    /// The most bytes the store holds.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Where uploads are staged before they are adopted: beside the uploads, on the same
    /// file system.
    pub fn staging_dir(&self) -> PathBuf {
        self.root.join(STAGING)
    }

    /// The upload in progress of `scope` with `key` and `version`, if there is one (protocol
    /// v2 names an upload by them when it ends).
    pub fn pending(&self, scope: &Scope, key: &str, version: &str) -> Option<u64> {
        self.state()
            .uploads
            .iter()
            .find(|(_, u)| &u.scope == scope && u.key == key && u.version == version)
            .map(|(&id, _)| id)
    }

    /// Takes the file `file` (on the store's file system) as the whole content, `size` bytes,
    /// of upload `id`, replacing what was written.
    pub async fn adopt(&self, id: u64, file: &Path, size: u64) -> Result<(), StoreError> {
        {
            let state = self.state();
            let upload = state.uploads.get(&id).ok_or(StoreError::NoUpload(id))?;
            let limit = upload.size.unwrap_or(self.limit);
            if size > limit {
                return Err(StoreError::OutOfRange {
                    start: 0,
                    end: size,
                    size: limit,
                });
            }
        }
        let part = self.part_path(id);
        tokio::fs::rename(file, &part)
            .await
            .map_err(io("cannot move", file))?;
        let mut state = self.state();
        let upload = state.uploads.get_mut(&id).ok_or(StoreError::NoUpload(id))?;
        upload.written = if size == 0 {
            Vec::new()
        } else {
            vec![(0, size)]
        };
        Ok(())
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
        let (entries, lock, limit) = (self.root.join(ENTRIES), self.root.join(LOCK), self.limit);
        let text = serde_json::to_vec(&info).map_err(|e| StoreError::Io {
            what: "cannot write the record of",
            path: record.clone(),
            source: std::io::Error::other(e),
        })?;
        let new = info.clone();
        let made = tokio::task::spawn_blocking(move || -> Result<Vec<u64>, StoreError> {
            // Synced before the lock: the long part, which other processes need not wait for.
            let file = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&part)
                .map_err(io("cannot open", &part))?;
            file.set_len(new.size).map_err(io("cannot size", &part))?;
            file.sync_all().map_err(io("cannot sync", &part))?;
            with_lock(&lock, || {
                let index = read_index(&entries)?;
                let taken = index.values().any(|e| {
                    e.info.scope == new.scope
                        && e.info.key == new.key
                        && e.info.version == new.version
                });
                if taken {
                    return Err(StoreError::Exists {
                        key: new.key.clone(),
                        version: new.version.clone(),
                    });
                }
                std::fs::rename(&part, &blob).map_err(io("cannot move", &part))?;
                let temporary = record.with_extension("json.tmp");
                let mut file =
                    std::fs::File::create(&temporary).map_err(io("cannot create", &temporary))?;
                std::io::Write::write_all(&mut file, &text)
                    .map_err(io("cannot write", &temporary))?;
                file.sync_all().map_err(io("cannot sync", &temporary))?;
                std::fs::rename(&temporary, &record).map_err(io("cannot move", &temporary))?;
                // The renames themselves survive a power loss once the folder is synced.
                std::fs::File::open(&entries)
                    .and_then(|dir| dir.sync_all())
                    .map_err(io("cannot sync", &entries))?;
                Ok(evict(&entries, index, &new, limit))
            })?
        })
        .await
        .map_err(|e| StoreError::Io {
            what: "cannot commit",
            path: self.part_path(id),
            source: std::io::Error::other(e),
        })?;
        let evicted = match made {
            Ok(evicted) => evicted,
            Err(e) => {
                self.abandon(id);
                return Err(e);
            }
        };
        self.state().uploads.remove(&id);
        for gone in evicted {
            tracing::debug!(
                entry = gone,
                "evicted a cache entry, the least recently used"
            );
        }
        self.refresh_or_warn();
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
        self.refresh_or_warn();
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
        self.refresh_or_warn();
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

/// Runs `f` holding the exclusive `flock` on the file `lock` (made if missing), which every
/// process sharing the folder takes for its commits and evictions.
fn with_lock<T>(lock: &Path, f: impl FnOnce() -> T) -> Result<T, StoreError> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(lock)
        .map_err(io("cannot open", lock))?;
    // SAFETY: flock(2) on a descriptor this function owns; released when it is closed.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
        return Err(io("cannot lock", lock)(std::io::Error::last_os_error()));
    }
    let done = f();
    drop(file);
    Ok(done)
}

/// The committed entries whose records and blobs are sound, by id.
fn read_index(entries: &Path) -> Result<BTreeMap<u64, Entry>, StoreError> {
    let mut index = BTreeMap::new();
    for file in read_dir(entries)? {
        if file.extension().is_some_and(|e| e == "json") {
            if let Some(entry) = load_entry(&file) {
                index.insert(entry.info.id, entry);
            }
        }
    }
    Ok(index)
}

/// Removes the least recently used entries of `index` (not `new`, just committed) until the
/// rest, `new` included, hold at most `limit` bytes; their ids.
fn evict(entries: &Path, mut index: BTreeMap<u64, Entry>, new: &EntryInfo, limit: u64) -> Vec<u64> {
    let mut total: u64 = index.values().map(|e| e.info.size).sum::<u64>() + new.size;
    let mut evicted = Vec::new();
    while total > limit {
        let Some(oldest) = index
            .values()
            .min_by_key(|e| (e.last_used, e.info.id))
            .map(|e| e.info.id)
        else {
            break;
        };
        if let Some(gone) = index.remove(&oldest) {
            total -= gone.info.size;
            // The record first: without it the blob is not an entry.
            remove_file(&entries.join(format!("{oldest}.json")));
            remove_file(&entries.join(format!("{oldest}.blob")));
            evicted.push(oldest);
        }
    }
    evicted
}

/// A fresh id: random, below 2^53 so that it stays exact as a JSON number.
fn random_id() -> Result<u64, StoreError> {
    let mut bytes = [0; 8];
    getrandom::fill(&mut bytes).map_err(|e| StoreError::Io {
        what: "cannot draw an id",
        path: PathBuf::new(),
        source: std::io::Error::other(e.to_string()),
    })?;
    Ok((u64::from_le_bytes(bytes) & ((1 << 53) - 1)).max(1))
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
