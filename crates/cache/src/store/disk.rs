//! Cache entries on disk: written in parts while a job uploads, visible only once whole.
//!
//! Layout under the store's folder:
//! - `uploads/<id>.part`: an entry being uploaded, its parts written at their offsets
//!   (`super::uploads`);
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

use std::collections::BTreeMap;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use super::uploads::Uploads;
use super::{
    check_reservation, find_in, holds, io, millis, now, remove_file, EntryInfo, Scope, StoreError,
};

const ENTRIES: &str = "entries";
const UPLOADS: &str = "uploads";
const LOCK: &str = "lock";
/// The coarsest step of a folder's modification time this store trusts to tell changes apart.
const MTIME_GRANULARITY: Duration = Duration::from_secs(1);
/// How old a crash's leftover must be before `open` removes it: a younger one may be another
/// process's upload or commit.
const STALE: Duration = Duration::from_secs(3600);
struct Entry {
    info: EntryInfo,
    /// Milliseconds since the Unix epoch.
    last_used: u64,
}

struct State {
    entries: BTreeMap<u64, Entry>,
    total: u64,
    /// The entries folder's modification time when the index was read.
    seen: Option<SystemTime>,
}

/// The entries of one folder.
pub(super) struct DiskStore {
    root: PathBuf,
    /// The most bytes the committed entries may hold; the least recently used go beyond it.
    limit: u64,
    state: Mutex<State>,
    uploads: Uploads,
}

impl DiskStore {
    /// Opens (making it if needed) the store in `root`, holding at most `limit` bytes; removes
    /// what a crash left half-way.
    pub(super) fn open(root: &Path, limit: u64) -> Result<DiskStore, StoreError> {
        let entries = root.join(ENTRIES);
        std::fs::create_dir_all(&entries).map_err(io("cannot create", &entries))?;
        let uploads = Uploads::open(&root.join(UPLOADS), limit)?;
        let lock = root.join(LOCK);
        with_lock(&lock, || -> Result<(), StoreError> {
            let stale = |file: &Path| {
                std::fs::metadata(file)
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age > STALE)
            };
            uploads.sweep(STALE)?;
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
        let store = DiskStore {
            root: root.to_owned(),
            limit,
            state: Mutex::new(State {
                entries: BTreeMap::new(),
                total: 0,
                seen: None,
            }),
            uploads,
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
        // A folder's time moves in the kernel's coarse ticks (milliseconds, a second on some
        // file systems): a change within the tick just seen would leave it as it is. Until
        // the time seen is older than that, the records are read again at each use.
        let settled = changed.elapsed().is_ok_and(|age| age > MTIME_GRANULARITY);
        state.seen = settled.then_some(changed);
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
        self.uploads.path(id)
    }

    /// The entry `keys` and `version` restore from (`Store::find`).
    pub(super) fn find(
        &self,
        scopes: &[Scope],
        keys: &[String],
        version: &str,
    ) -> Option<EntryInfo> {
        self.refresh_or_warn();
        let state = self.state();
        find_in(
            state.entries.values().map(|e| &e.info),
            scopes,
            keys,
            version,
        )
    }

    /// The committed entry `id`, if there is one.
    pub(super) fn entry(&self, id: u64) -> Option<EntryInfo> {
        self.refresh_or_warn();
        self.state().entries.get(&id).map(|e| e.info.clone())
    }

    /// Starts an upload of an entry of `scope` (refused when one with the same key and version
    /// is there or on its way: entries never change once written); its id.
    pub(super) fn reserve(
        &self,
        scope: &Scope,
        key: &str,
        version: &str,
        size: Option<u64>,
    ) -> Result<u64, StoreError> {
        check_reservation(key, size, self.limit)?;
        self.refresh_or_warn();
        let state = self.state();
        if holds(state.entries.values().map(|e| &e.info), scope, key, version) {
            return Err(StoreError::Exists {
                key: key.to_owned(),
                version: version.to_owned(),
            });
        }
        self.uploads.reserve(scope, key, version, size, |id| {
            state.entries.contains_key(&id)
        })
    }

    /// The uploads in progress.
    pub(super) fn uploads(&self) -> &Uploads {
        &self.uploads
    }

    /// Ends upload `id` of `scope` as an entry of `size` bytes, once every byte is there:
    /// synced, renamed into the entries, its record written last. The least recently used
    /// entries then go until the store is within its limit.
    pub(super) async fn commit(
        &self,
        id: u64,
        scope: &Scope,
        size: u64,
    ) -> Result<EntryInfo, StoreError> {
        let info = self.uploads.complete(id, scope, size)?;
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
                if holds(
                    index.values().map(|e| &e.info),
                    &new.scope,
                    &new.key,
                    &new.version,
                ) {
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
                self.uploads.abandon(id);
                return Err(e);
            }
        };
        self.uploads.finished(id);
        for gone in evicted {
            tracing::debug!(
                entry = gone,
                "evicted a cache entry, the least recently used"
            );
        }
        self.refresh_or_warn();
        Ok(info)
    }

    /// Opens entry `id` to read it, marking it used now.
    pub(super) async fn open_entry(
        &self,
        id: u64,
    ) -> Result<(EntryInfo, tokio::fs::File), StoreError> {
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
    pub(super) fn total_size(&self) -> u64 {
        self.refresh_or_warn();
        self.state().total
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

fn read_dir(dir: &Path) -> Result<Vec<PathBuf>, StoreError> {
    let entries = std::fs::read_dir(dir).map_err(io("cannot read", dir))?;
    Ok(entries.flatten().map(|e| e.path()).collect())
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
