//! Uploads in progress, staged in a folder on this machine whatever keeps the entries: each
//! in `<id>.part`, its parts written at their offsets in any order and in parallel, the byte
//! ranges that arrived kept in memory, so that a commit knows whether every byte is there.
//! An upload belongs to the process that reserved it (the job's requests all reach the same
//! server); a crash leaves its file, which `sweep` removes once it is old.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncSeekExt, AsyncWriteExt};

use super::{io, now, random_id, remove_file, EntryInfo, Scope, StoreError};

/// The subfolder where protocol v2's blocks are staged.
const BLOCKS: &str = "blocks";

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

/// The uploads staged in one folder.
pub(crate) struct Uploads {
    folder: PathBuf,
    /// The most bytes an entry may hold.
    limit: u64,
    uploads: Mutex<HashMap<u64, Upload>>,
}

impl Uploads {
    /// The uploads of `folder` (made if missing); none in progress.
    pub(super) fn open(folder: &Path, limit: u64) -> Result<Uploads, StoreError> {
        std::fs::create_dir_all(folder).map_err(io("cannot create", folder))?;
        Ok(Uploads {
            folder: folder.to_owned(),
            limit,
            uploads: Mutex::default(),
        })
    }

    fn uploads(&self) -> MutexGuard<'_, HashMap<u64, Upload>> {
        self.uploads.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The most bytes an entry may hold.
    pub(super) fn limit(&self) -> u64 {
        self.limit
    }

    /// Where upload `id`'s bytes are staged.
    pub(super) fn path(&self, id: u64) -> PathBuf {
        self.folder.join(format!("{id}.part"))
    }

    /// Where uploads through the Block Blob API (protocol v2) are staged before they are
    /// adopted: in the folder of the uploads, so that adopting one is a rename.
    pub(super) fn blocks_dir(&self) -> PathBuf {
        self.folder.join(BLOCKS)
    }

    /// Removes the staged files older than `stale`: a crash's, or another process's that
    /// has long stopped. (The Block Blob staging folder sweeps itself.)
    pub(super) fn sweep(&self, stale: Duration) -> Result<(), StoreError> {
        let files = std::fs::read_dir(&self.folder).map_err(io("cannot read", &self.folder))?;
        for file in files.flatten().map(|e| e.path()).filter(|p| p.is_file()) {
            let old = std::fs::metadata(&file)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > stale);
            if old {
                remove_file(&file);
            }
        }
        Ok(())
    }

    /// Starts an upload, unless one with the same scope, key and version is on its way; its
    /// id, drawn until `taken` (an entry's id) says it is free.
    pub(super) fn reserve(
        &self,
        scope: &Scope,
        key: &str,
        version: &str,
        size: Option<u64>,
        taken: impl Fn(u64) -> bool,
    ) -> Result<u64, StoreError> {
        let mut uploads = self.uploads();
        if uploads
            .values()
            .any(|u| &u.scope == scope && u.key == key && u.version == version)
        {
            return Err(StoreError::Exists {
                key: key.to_owned(),
                version: version.to_owned(),
            });
        }
        let mut id = random_id()?;
        while taken(id) || uploads.contains_key(&id) {
            id = random_id()?;
        }
        uploads.insert(
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

    /// The upload in progress of `scope` with `key` and `version`, if there is one (protocol
    /// v2 names an upload by them when it ends).
    pub(super) fn pending(&self, scope: &Scope, key: &str, version: &str) -> Option<u64> {
        self.uploads()
            .iter()
            .find(|(_, u)| &u.scope == scope && u.key == key && u.version == version)
            .map(|(&id, _)| id)
    }

    /// Takes the file `file` (on the uploads' file system) as the whole content, `size`
    /// bytes, of upload `id`, replacing what was written.
    pub(super) async fn adopt(&self, id: u64, file: &Path, size: u64) -> Result<(), StoreError> {
        {
            let uploads = self.uploads();
            let upload = uploads.get(&id).ok_or(StoreError::NoUpload(id))?;
            let limit = upload.size.unwrap_or(self.limit);
            if size > limit {
                return Err(StoreError::OutOfRange {
                    start: 0,
                    end: size,
                    size: limit,
                });
            }
        }
        let part = self.path(id);
        tokio::fs::rename(file, &part)
            .await
            .map_err(io("cannot move", file))?;
        let mut uploads = self.uploads();
        let upload = uploads.get_mut(&id).ok_or(StoreError::NoUpload(id))?;
        upload.written = if size == 0 {
            Vec::new()
        } else {
            vec![(0, size)]
        };
        Ok(())
    }

    /// Checks that `scope` may write bytes `start..start + len` of upload `id`.
    fn check_part(&self, id: u64, scope: &Scope, start: u64, len: u64) -> Result<(), StoreError> {
        let uploads = self.uploads();
        let upload = uploads.get(&id).ok_or(StoreError::NoUpload(id))?;
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

    /// A writer of upload `id`'s bytes from `start` on, for `scope`.
    pub(super) async fn part(
        &self,
        id: u64,
        scope: &Scope,
        start: u64,
    ) -> Result<PartWriter<'_>, StoreError> {
        self.check_part(id, scope, start, 0)?;
        let path = self.path(id);
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
            uploads: self,
            id,
            scope: scope.clone(),
            start,
            written: 0,
            file: tokio::io::BufWriter::with_capacity(1 << 20, file),
            path,
        })
    }

    /// Records that upload `id` has bytes `start..end`.
    fn record_part(&self, id: u64, start: u64, end: u64) -> Result<(), StoreError> {
        let mut uploads = self.uploads();
        let upload = uploads.get_mut(&id).ok_or(StoreError::NoUpload(id))?;
        if start < end {
            merge(&mut upload.written, (start, end));
        }
        Ok(())
    }

    /// Checks that upload `id` of `scope` has every byte of `size`; the entry it is to become,
    /// created now.
    /// It stays in progress until `finished` or `abandon`.
    pub(super) fn complete(
        &self,
        id: u64,
        scope: &Scope,
        size: u64,
    ) -> Result<EntryInfo, StoreError> {
        let uploads = self.uploads();
        let upload = uploads.get(&id).ok_or(StoreError::NoUpload(id))?;
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
        Ok(EntryInfo {
            id,
            scope: scope.clone(),
            key: upload.key.clone(),
            version: upload.version.clone(),
            size,
            created: now(),
        })
    }

    /// Forgets upload `id`, committed (its staged file moved or removed by the caller).
    pub(super) fn finished(&self, id: u64) {
        self.uploads().remove(&id);
    }

    /// Drops upload `id` and its staged bytes.
    pub(super) fn abandon(&self, id: u64) {
        if self.uploads().remove(&id).is_some() {
            remove_file(&self.path(id));
        }
    }
}

/// Writes one part of an upload; it counts once `finish` returns.
pub struct PartWriter<'a> {
    uploads: &'a Uploads,
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
        self.uploads
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
        self.uploads
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

#[cfg(test)]
mod tests {
    use super::merge;

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
