//! Where the cache's entries are kept: a folder on this machine (`disk`), or a bucket of an
//! S3-compatible object store (`s3`) that several cache servers on different machines share.
//!
//! Both keep the same guarantees, behind the one `Store` the server calls: entries scoped per
//! repository and ref; found as GitHub finds them (`find_in`); immutable once written; parts of
//! an upload staged on this machine's disk at their offsets in any order (`uploads`), and
//! committed only once every byte is there, the entry's bytes first and its record last, so
//! that a reader never sees half an entry; the least recently used entries evicted past a size
//! limit; and what a crash leaves half-way swept once it is old enough not to be another
//! process's work in progress.

mod disk;
mod s3;
mod uploads;

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

pub use s3::S3Options;
pub use uploads::PartWriter;

use disk::DiskStore;
use s3::S3Store;

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
    /// A file, or an object of the bucket (its `s3://bucket/key` as the path), that could not
    /// be read or written.
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

/// GitHub's limit on a key's length.
const MAX_KEY: usize = 512;

/// The cache's entries, on disk or in a bucket.
pub struct Store {
    backend: Backend,
}

enum Backend {
    Disk(DiskStore),
    S3(S3Store),
}

/// The bytes of a committed entry, to read from a range of them.
pub enum EntryData {
    File(tokio::fs::File),
    Object(s3::EntryObject),
}

/// What `EntryData::stream` yields: the bytes in chunks.
pub use hearth_blob::download::ByteStream;

impl EntryData {
    /// Bytes `start..end` of the entry, streamed.
    pub async fn stream(self, start: u64, end: u64) -> Result<ByteStream, StoreError> {
        match self {
            EntryData::File(mut file) => {
                use tokio::io::{AsyncReadExt, AsyncSeekExt};
                file.seek(std::io::SeekFrom::Start(start))
                    .await
                    .map_err(|source| StoreError::Io {
                        what: "cannot seek in",
                        path: PathBuf::from("an entry's blob"),
                        source,
                    })?;
                let limited = file.take(end.saturating_sub(start));
                Ok(Box::pin(tokio_util::io::ReaderStream::with_capacity(
                    limited,
                    1 << 20,
                )))
            }
            EntryData::Object(object) => object.stream(start, end).await,
        }
    }
}

impl Store {
    /// Opens (making it if needed) the store in the folder `root`, holding at most `limit`
    /// bytes; removes what a crash left half-way.
    pub fn open(root: &Path, limit: u64) -> Result<Store, StoreError> {
        Ok(Store {
            backend: Backend::Disk(DiskStore::open(root, limit)?),
        })
    }

    /// Opens the store in the bucket `options` names, holding at most `limit` bytes, uploads
    /// staged in the folder `staging` on this machine; removes what a crash left half-way
    /// (here and in the bucket) once it is `options.sweep_after` old.
    pub async fn open_s3(
        options: &S3Options,
        staging: &Path,
        limit: u64,
    ) -> Result<Store, StoreError> {
        Ok(Store {
            backend: Backend::S3(S3Store::open(options, staging, limit).await?),
        })
    }

    /// The entry `keys` and `version` restore from, searching `scopes` in order, as GitHub
    /// does: in each scope, the first key exactly, then each key as a prefix (the first key
    /// too), the newest entry of a match first.
    pub async fn find(
        &self,
        scopes: &[Scope],
        keys: &[String],
        version: &str,
    ) -> Option<EntryInfo> {
        match &self.backend {
            Backend::Disk(disk) => disk.find(scopes, keys, version),
            Backend::S3(s3) => s3.find(scopes, keys, version).await,
        }
    }

    /// The committed entry `id`, if there is one.
    pub async fn entry(&self, id: u64) -> Option<EntryInfo> {
        match &self.backend {
            Backend::Disk(disk) => disk.entry(id),
            Backend::S3(s3) => s3.entry(id).await,
        }
    }

    /// Starts an upload of an entry of `scope` (refused when one with the same key and version
    /// is there or on its way: entries never change once written); its id.
    pub async fn reserve(
        &self,
        scope: &Scope,
        key: &str,
        version: &str,
        size: Option<u64>,
    ) -> Result<u64, StoreError> {
        match &self.backend {
            Backend::Disk(disk) => disk.reserve(scope, key, version, size),
            Backend::S3(s3) => s3.reserve(scope, key, version, size).await,
        }
    }

    /// A writer of upload `id`'s bytes from `start` on, for `scope`. What it writes counts
    /// once it is finished.
    pub async fn part(
        &self,
        id: u64,
        scope: &Scope,
        start: u64,
    ) -> Result<PartWriter<'_>, StoreError> {
        self.uploads().part(id, scope, start).await
    }

    /// Ends upload `id` of `scope` as an entry of `size` bytes, once every byte is there: its
    /// bytes stored, its record written last. The least recently used entries then go until
    /// the store is within its limit.
    pub async fn commit(&self, id: u64, scope: &Scope, size: u64) -> Result<EntryInfo, StoreError> {
        match &self.backend {
            Backend::Disk(disk) => disk.commit(id, scope, size).await,
            Backend::S3(s3) => s3.commit(id, scope, size).await,
        }
    }

    /// The most bytes the store holds (and an entry may have).
    pub fn limit(&self) -> u64 {
        self.uploads().limit()
    }

    /// Where uploads through the Block Blob API (protocol v2) are staged before they are
    /// adopted: on the file system of the uploads, so that adopting one is a rename.
    pub fn staging_dir(&self) -> PathBuf {
        self.uploads().blocks_dir()
    }

    /// The upload in progress of `scope` with `key` and `version`, if there is one (protocol
    /// v2 names an upload by them when it ends).
    pub fn pending(&self, scope: &Scope, key: &str, version: &str) -> Option<u64> {
        self.uploads().pending(scope, key, version)
    }

    /// Takes the file `file` (in [`Store::staging_dir`]) as the whole content, `size` bytes,
    /// of upload `id`, replacing what was written.
    pub async fn adopt(&self, id: u64, file: &Path, size: u64) -> Result<(), StoreError> {
        self.uploads().adopt(id, file, size).await
    }

    /// Drops upload `id` and its bytes.
    pub fn abandon(&self, id: u64) {
        self.uploads().abandon(id);
    }

    /// Opens entry `id` to read it, marking it used now.
    pub async fn open_entry(&self, id: u64) -> Result<(EntryInfo, EntryData), StoreError> {
        match &self.backend {
            Backend::Disk(disk) => disk
                .open_entry(id)
                .await
                .map(|(info, file)| (info, EntryData::File(file))),
            Backend::S3(s3) => s3
                .open_entry(id)
                .await
                .map(|(info, object)| (info, EntryData::Object(object))),
        }
    }

    /// The bytes the committed entries hold.
    pub async fn total_size(&self) -> u64 {
        match &self.backend {
            Backend::Disk(disk) => disk.total_size(),
            Backend::S3(s3) => s3.total_size().await,
        }
    }

    fn uploads(&self) -> &uploads::Uploads {
        match &self.backend {
            Backend::Disk(disk) => disk.uploads(),
            Backend::S3(s3) => s3.uploads(),
        }
    }
}

/// The entry `keys` and `version` restore from among `entries`: see `Store::find`.
fn find_in<'a>(
    entries: impl Iterator<Item = &'a EntryInfo> + Clone,
    scopes: &[Scope],
    keys: &[String],
    version: &str,
) -> Option<EntryInfo> {
    let newest = |scope: &Scope, matches: &dyn Fn(&str) -> bool| {
        entries
            .clone()
            .filter(|e| &e.scope == scope && e.version == version)
            .filter(|e| matches(&e.key))
            .max_by_key(|e| (e.created, e.id))
            .cloned()
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

/// Whether `entries` hold one of `scope` with `key` and `version`.
fn holds<'a>(
    mut entries: impl Iterator<Item = &'a EntryInfo>,
    scope: &Scope,
    key: &str,
    version: &str,
) -> bool {
    entries.any(|e| &e.scope == scope && e.key == key && e.version == version)
}

/// Refuses a key GitHub would refuse, and a size past the limit.
fn check_reservation(key: &str, size: Option<u64>, limit: u64) -> Result<(), StoreError> {
    if key.is_empty() || key.chars().count() > MAX_KEY {
        return Err(StoreError::BadKey);
    }
    if let Some(size) = size.filter(|&s| s > limit) {
        return Err(StoreError::TooLarge { size, limit });
    }
    Ok(())
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

fn remove_file(path: &Path) {
    if let Err(e) = std::fs::remove_file(path) {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(path = %path.display(), error = %e, "cannot remove a cache file");
        }
    }
}
