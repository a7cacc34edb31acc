//! Cache entries in a bucket of an S3-compatible object store, through `object_store`, so that
//! cache servers on several machines share them.
//!
//! Layout under the bucket's prefix:
//! - `data/<id>`: a committed entry's bytes, uploaded (in parts of 16 MiB past that size) from
//!   the upload staged on this machine (`super::uploads`) once every byte arrived;
//! - `entries/<id>.json`: its record (scope, key, version, size, creation time), put only once
//!   its bytes are whole. An entry exists when its record does and its bytes have the size the
//!   record says: a reader never sees half of one, and a crash leaves either a whole entry or
//!   bytes no record names, which `open` removes once they are `sweep_after` old (younger ones
//!   may be another server's commit on its way);
//! - `used/<id>/<ms>`: empty objects whose names say when the entry was last downloaded (at
//!   most one per second and server, each replacing the server's previous one; `open` removes
//!   those superseded that stopped servers left): eviction reads them all in one listing, and
//!   their times are the servers' clocks, not the store's.
//!
//! Each server keeps the records it read in memory (they never change) and lists `entries/`
//! again before each lookup, reservation and commit, so that it sees what the others committed.
//! A commit lists again after its bytes are uploaded and refuses a key another server
//! committed meanwhile; two servers committing the same key at the same moment may both
//! succeed, and lookups then take the newest. After a commit the server evicts the least
//! recently used entries (record first, then bytes and use marks) until the bucket is within
//! the limit; two servers evicting at once may evict a little more than needed.

use std::collections::{HashMap, HashSet};
use std::path::{Path as FsPath, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use futures_util::{StreamExt, TryStreamExt};
use object_store::aws::AmazonS3Builder;
use object_store::buffered::BufWriter;
use object_store::path::Path;
use object_store::{
    ClientOptions, GetOptions, GetRange, ObjectMeta, ObjectStore, ObjectStoreExt, PutPayload,
};
use tokio::io::AsyncWriteExt;

use super::uploads::Uploads;
use super::{
    check_reservation, find_in, holds, millis, now, ByteStream, EntryInfo, Scope, StoreError,
};

/// Where the entries are kept: a bucket of an S3-compatible store, and how to reach it.
#[derive(Clone)]
pub struct S3Options {
    /// The store's URL (`http://127.0.0.1:9000`); empty for AWS's own, by region.
    pub endpoint: String,
    pub bucket: String,
    /// Empty: `us-east-1`.
    pub region: String,
    /// A folder of the bucket the entries go under, empty for its root.
    pub prefix: String,
    /// Empty (both): the credentials of the machine's instance role, where there is one.
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Buckets as the URL's first path segment rather than its host name: what most
    /// self-hosted stores (MinIO, Garage, SeaweedFS) want.
    pub path_style: bool,
    /// How old bytes without a record (a crash's, mid-commit) must be before `open` removes
    /// them: younger ones may be another server's commit on its way.
    pub sweep_after: Duration,
}

impl Default for S3Options {
    fn default() -> Self {
        S3Options {
            endpoint: String::new(),
            bucket: String::new(),
            region: String::new(),
            prefix: String::new(),
            access_key_id: String::new(),
            secret_access_key: String::new(),
            path_style: false,
            sweep_after: Duration::from_secs(3600),
        }
    }
}

/// Never the secret.
impl std::fmt::Debug for S3Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Options")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("prefix", &self.prefix)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"***")
            .field("path_style", &self.path_style)
            .field("sweep_after", &self.sweep_after)
            .finish()
    }
}

/// Past this size an entry's bytes go up in parts of it (S3's parts are 5 MiB at least).
const PART_SIZE: usize = 16 << 20;
/// How many parts go up at once.
const PARTS_AT_ONCE: usize = 4;
/// How many records are read at once when many are new.
const RECORDS_AT_ONCE: usize = 8;
/// Downloads of one entry by one server closer together than this count as one use: a
/// client's ranged requests of one download mark it once.
const USE_RESOLUTION: Duration = Duration::from_secs(1);

/// The records read so far.
#[derive(Default)]
struct Index {
    /// Committed entries: a record seen, and its bytes whole.
    entries: HashMap<u64, EntryInfo>,
    /// Records that are not entries (unreadable, or their bytes not the size they say): never
    /// read again.
    unsound: HashSet<u64>,
    /// When this server last marked each entry used, and the mark, which the next one
    /// replaces.
    marked: HashMap<u64, (Instant, Path)>,
}

pub(super) struct S3Store {
    client: Arc<dyn ObjectStore>,
    /// `s3://bucket`, to name objects in messages.
    bucket: String,
    prefix: String,
    limit: u64,
    uploads: Uploads,
    index: Mutex<Index>,
}

/// What `stream` reads: an entry's bytes in the bucket.
pub struct EntryObject {
    client: Arc<dyn ObjectStore>,
    id: u64,
    location: Path,
    shown: PathBuf,
}

impl EntryObject {
    /// Bytes `start..end`, streamed from the bucket.
    pub(super) async fn stream(self, start: u64, end: u64) -> Result<ByteStream, StoreError> {
        if start >= end {
            return Ok(Box::pin(futures_util::stream::empty()));
        }
        let options = GetOptions {
            range: Some(GetRange::Bounded(start..end)),
            ..GetOptions::default()
        };
        let got = match self.client.get_opts(&self.location, options).await {
            Ok(got) => got,
            // Evicted by another server since it was found.
            Err(object_store::Error::NotFound { .. }) => return Err(StoreError::NoEntry(self.id)),
            Err(e) => return Err(remote("cannot read", self.shown.clone())(e)),
        };
        // Object streams are `Send` only; the wrapper makes the body `Sync` without a lock.
        let chunks = got.into_stream().map_err(std::io::Error::other);
        Ok(Box::pin(sync_wrapper::SyncStream::new(chunks)))
    }
}

/// A `StoreError` for an object of the bucket.
fn remote(what: &'static str, shown: PathBuf) -> impl FnOnce(object_store::Error) -> StoreError {
    move |e| StoreError::Io {
        what,
        path: shown,
        source: std::io::Error::other(e),
    }
}

/// The id in an object's name (`<id>` or `<id>.json`).
fn id_of(name: &str) -> Option<u64> {
    name.strip_suffix(".json").unwrap_or(name).parse().ok()
}

fn older_than(meta: &ObjectMeta, age: Duration) -> bool {
    SystemTime::from(meta.last_modified)
        .elapsed()
        .is_ok_and(|elapsed| elapsed > age)
}

impl S3Store {
    /// Reaches the bucket `options` names, stages uploads in `staging`; removes what a crash
    /// left half-way.
    pub(super) async fn open(
        options: &S3Options,
        staging: &FsPath,
        limit: u64,
    ) -> Result<S3Store, StoreError> {
        let bucket = format!("s3://{}", options.bucket);
        let client = build_client(options).map_err(remote(
            "cannot reach the bucket",
            PathBuf::from(bucket.clone()),
        ))?;
        let store = S3Store {
            client: Arc::new(client),
            bucket,
            prefix: options.prefix.trim_matches('/').to_owned(),
            limit,
            uploads: Uploads::open(staging, limit)?,
            index: Mutex::default(),
        };
        store.uploads.sweep(options.sweep_after)?;
        store.sweep(options.sweep_after).await?;
        Ok(store)
    }

    fn index(&self) -> MutexGuard<'_, Index> {
        self.index.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The object `name` under the prefix.
    fn object(&self, name: &str) -> Path {
        if self.prefix.is_empty() {
            Path::from(name)
        } else {
            Path::from(format!("{}/{name}", self.prefix))
        }
    }

    fn shown(&self, location: &Path) -> PathBuf {
        PathBuf::from(format!("{}/{location}", self.bucket))
    }

    fn record_object(&self, id: u64) -> Path {
        self.object(&format!("entries/{id}.json"))
    }

    fn data_object(&self, id: u64) -> Path {
        self.object(&format!("data/{id}"))
    }

    /// Every object under the folder `name` of the prefix.
    async fn list(&self, name: &str) -> Result<Vec<ObjectMeta>, StoreError> {
        let folder = self.object(name);
        self.client
            .list(Some(&folder))
            .try_collect()
            .await
            .map_err(remote("cannot list", self.shown(&folder)))
    }

    /// The ids of the records in the bucket.
    async fn record_ids(&self) -> Result<HashSet<u64>, StoreError> {
        Ok(self
            .list("entries")
            .await?
            .iter()
            .filter_map(|meta| meta.location.filename().and_then(id_of))
            .collect())
    }

    /// Lists the records again: reads the new ones, forgets those gone (evicted).
    async fn refresh(&self) -> Result<(), StoreError> {
        let listed = self.record_ids().await?;
        let new: Vec<u64> = {
            let index = self.index();
            listed
                .iter()
                .copied()
                .filter(|id| !index.entries.contains_key(id) && !index.unsound.contains(id))
                .collect()
        };
        let read: Vec<(u64, Option<Option<EntryInfo>>)> = futures_util::stream::iter(new)
            .map(|id| async move { (id, self.read_record(id).await) })
            .buffer_unordered(RECORDS_AT_ONCE)
            .collect()
            .await;
        let mut index = self.index();
        index.entries.retain(|id, _| listed.contains(id));
        index.unsound.retain(|id| listed.contains(id));
        index.marked.retain(|id, _| listed.contains(id));
        for (id, record) in read {
            match record {
                Some(Some(info)) => {
                    index.entries.insert(id, info);
                }
                Some(None) => {
                    index.unsound.insert(id);
                }
                // Gone meanwhile, or the store did not answer: looked at again next time.
                None => {}
            }
        }
        Ok(())
    }

    /// `refresh`, a failure logged: the records read before stay in use.
    async fn refresh_or_warn(&self) {
        if let Err(e) = self.refresh().await {
            tracing::warn!("cannot list the cache's entries again: {e}");
        }
    }

    /// Record `id`: `Some(Some(entry))` when it is sound and its bytes whole, `Some(None)`
    /// when it is not an entry, `None` when that cannot be told now.
    async fn read_record(&self, id: u64) -> Option<Option<EntryInfo>> {
        let record = self.record_object(id);
        let text = match self.client.get(&record).await {
            Ok(got) => got.bytes().await.ok()?,
            Err(object_store::Error::NotFound { .. }) => return None,
            Err(e) => {
                tracing::warn!(object = %self.shown(&record).display(), "cannot read a cache record: {e}");
                return None;
            }
        };
        let Ok(info) = serde_json::from_slice::<EntryInfo>(&text) else {
            return Some(None);
        };
        if info.id != id {
            return Some(None);
        }
        match self.client.head(&self.data_object(id)).await {
            Ok(meta) if meta.size == info.size => Some(Some(info)),
            Ok(_) | Err(object_store::Error::NotFound { .. }) => Some(None),
            Err(_) => None,
        }
    }

    /// Removes records that are not entries, bytes no record names older than `stale`, and
    /// use marks of entries gone older than it.
    async fn sweep(&self, stale: Duration) -> Result<(), StoreError> {
        self.refresh().await?;
        let records = self.record_ids().await?;
        let unsound: Vec<u64> = self.index().unsound.iter().copied().collect();
        for id in unsound {
            // Written only once their bytes were whole: never a commit on its way.
            self.delete(&self.record_object(id)).await;
            self.delete(&self.data_object(id)).await;
        }
        for meta in self.list("data").await? {
            let named = meta
                .location
                .filename()
                .and_then(id_of)
                .is_some_and(|id| records.contains(&id));
            if !named && older_than(&meta, stale) {
                self.delete(&meta.location).await;
            }
        }
        // Marks of entries gone, once old; of the others, all but the newest (left by servers
        // that stopped: a running one replaces its own).
        let now = now();
        let marks = self.use_marks().await?;
        let mut newest: HashMap<u64, u64> = HashMap::new();
        for (id, time, _) in &marks {
            let at = newest.entry(*id).or_default();
            *at = (*at).max(*time);
        }
        for (id, time, location) in &marks {
            let age = Duration::from_millis(now.saturating_sub(*time));
            let superseded = records.contains(id) && newest.get(id).is_some_and(|n| n > time);
            if superseded || (!records.contains(id) && age > stale) {
                self.delete(location).await;
            }
        }
        self.refresh().await
    }

    /// The use marks in the bucket: entry, time, object.
    async fn use_marks(&self) -> Result<Vec<(u64, u64, Path)>, StoreError> {
        let prefix_parts = self.object("used").parts().count();
        Ok(self
            .list("used")
            .await?
            .into_iter()
            .filter_map(|meta| {
                let mut parts = meta.location.parts().skip(prefix_parts);
                let id = parts.next()?.as_ref().parse().ok()?;
                let time = parts.next()?.as_ref().parse().ok()?;
                Some((id, time, meta.location))
            })
            .collect())
    }

    /// Deletes `location`, a failure logged (a later sweep or eviction retries).
    async fn delete(&self, location: &Path) {
        match self.client.delete(location).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => {
                tracing::warn!(object = %self.shown(location).display(), "cannot remove a cache object: {e}")
            }
        }
    }

    pub(super) fn uploads(&self) -> &Uploads {
        &self.uploads
    }

    /// The entry `keys` and `version` restore from (`Store::find`).
    pub(super) async fn find(
        &self,
        scopes: &[Scope],
        keys: &[String],
        version: &str,
    ) -> Option<EntryInfo> {
        self.refresh_or_warn().await;
        let index = self.index();
        find_in(index.entries.values(), scopes, keys, version)
    }

    /// The committed entry `id`, if there is one.
    pub(super) async fn entry(&self, id: u64) -> Option<EntryInfo> {
        self.refresh_or_warn().await;
        self.index().entries.get(&id).cloned()
    }

    /// The bytes the committed entries hold.
    pub(super) async fn total_size(&self) -> u64 {
        self.refresh_or_warn().await;
        self.index().entries.values().map(|e| e.size).sum()
    }

    /// Starts an upload (`Store::reserve`).
    pub(super) async fn reserve(
        &self,
        scope: &Scope,
        key: &str,
        version: &str,
        size: Option<u64>,
    ) -> Result<u64, StoreError> {
        check_reservation(key, size, self.limit)?;
        self.refresh_or_warn().await;
        let index = self.index();
        if holds(index.entries.values(), scope, key, version) {
            return Err(StoreError::Exists {
                key: key.to_owned(),
                version: version.to_owned(),
            });
        }
        self.uploads.reserve(scope, key, version, size, |id| {
            index.entries.contains_key(&id) || index.unsound.contains(&id)
        })
    }

    /// Refuses `info`'s key when the bucket holds it already.
    async fn refuse_taken(&self, info: &EntryInfo) -> Result<(), StoreError> {
        self.refresh().await?;
        let index = self.index();
        if holds(
            index.entries.values(),
            &info.scope,
            &info.key,
            &info.version,
        ) {
            return Err(StoreError::Exists {
                key: info.key.clone(),
                version: info.version.clone(),
            });
        }
        Ok(())
    }

    /// Ends upload `id` (`Store::commit`): its bytes uploaded, its record put last, then the
    /// least recently used entries evicted past the limit.
    pub(super) async fn commit(
        &self,
        id: u64,
        scope: &Scope,
        size: u64,
    ) -> Result<EntryInfo, StoreError> {
        let info = self.uploads.complete(id, scope, size)?;
        if let Err(e) = self.put_entry(&info).await {
            self.uploads.abandon(id);
            return Err(e);
        }
        self.uploads.abandon(id);
        self.index().entries.insert(id, info.clone());
        self.evict(id).await;
        Ok(info)
    }

    /// Uploads `info`'s bytes from the staged file, then its record.
    async fn put_entry(&self, info: &EntryInfo) -> Result<(), StoreError> {
        self.refuse_taken(info).await?;
        let data = self.data_object(info.id);
        if let Err(e) = self.upload(info, &data).await {
            self.delete(&data).await;
            return Err(e);
        }
        // Another server may have committed the same key while the bytes went up.
        if let Err(e) = self.refuse_taken(info).await {
            self.delete(&data).await;
            return Err(e);
        }
        let text = serde_json::to_vec(info).map_err(|e| StoreError::Io {
            what: "cannot write the record of",
            path: self.shown(&data),
            source: std::io::Error::other(e),
        })?;
        let record = self.record_object(info.id);
        if let Err(e) = self.client.put(&record, PutPayload::from(text)).await {
            self.delete(&data).await;
            return Err(remote("cannot write", self.shown(&record))(e));
        }
        Ok(())
    }

    /// Copies the staged bytes of `info` to `data`, in parts past `PART_SIZE`.
    async fn upload(&self, info: &EntryInfo, data: &Path) -> Result<(), StoreError> {
        let staged = self.uploads.path(info.id);
        let file = tokio::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&staged)
            .await
            .map_err(super::io("cannot open", &staged))?;
        let mut bytes = tokio::io::AsyncReadExt::take(file, info.size);
        let mut writer = BufWriter::with_capacity(self.client.clone(), data.clone(), PART_SIZE)
            .with_max_concurrency(PARTS_AT_ONCE);
        let copied = match tokio::io::copy(&mut bytes, &mut writer).await {
            Ok(copied) => copied,
            Err(e) => {
                let _ = writer.abort().await;
                return Err(super::io("cannot upload", &self.shown(data))(e));
            }
        };
        writer
            .shutdown()
            .await
            .map_err(super::io("cannot upload", &self.shown(data)))?;
        if copied != info.size {
            return Err(StoreError::Incomplete {
                have: vec![(0, copied)],
                size: info.size,
            });
        }
        Ok(())
    }

    /// Removes the least recently used entries (never `new`, just committed) until the rest
    /// hold at most the limit; failures are logged, the commit stands.
    async fn evict(&self, new: u64) {
        if let Err(e) = self.try_evict(new).await {
            tracing::warn!("cannot evict cache entries: {e}");
        }
    }

    async fn try_evict(&self, new: u64) -> Result<(), StoreError> {
        self.refresh().await?;
        let (mut total, mut candidates) = {
            let index = self.index();
            let total: u64 = index.entries.values().map(|e| e.size).sum();
            let candidates: Vec<EntryInfo> = index
                .entries
                .values()
                .filter(|e| e.id != new)
                .cloned()
                .collect();
            (total, candidates)
        };
        if total <= self.limit {
            return Ok(());
        }
        let marks = self.use_marks().await?;
        let mut last_used: HashMap<u64, u64> = HashMap::new();
        for (id, time, _) in &marks {
            let used = last_used.entry(*id).or_default();
            *used = (*used).max(*time);
        }
        let used = |e: &EntryInfo| last_used.get(&e.id).copied().unwrap_or(0).max(e.created);
        // The least recently used last, to pop.
        candidates.sort_by_key(|e| std::cmp::Reverse((used(e), e.id)));
        while total > self.limit {
            let Some(oldest) = candidates.pop() else {
                break;
            };
            // The record first: without it the bytes are not an entry.
            self.delete(&self.record_object(oldest.id)).await;
            self.delete(&self.data_object(oldest.id)).await;
            for (_, _, mark) in marks.iter().filter(|(id, _, _)| *id == oldest.id) {
                self.delete(mark).await;
            }
            self.index().entries.remove(&oldest.id);
            total -= oldest.size;
            tracing::debug!(
                entry = oldest.id,
                "evicted a cache entry, the least recently used"
            );
        }
        Ok(())
    }

    /// Opens entry `id` to read it, marking it used now.
    pub(super) async fn open_entry(&self, id: u64) -> Result<(EntryInfo, EntryObject), StoreError> {
        let known = self.index().entries.contains_key(&id);
        if !known {
            self.refresh_or_warn().await;
        }
        let used = self.object(&format!("used/{id}/{}", millis(SystemTime::now())));
        let (info, mark) = {
            let mut index = self.index();
            let info = index
                .entries
                .get(&id)
                .cloned()
                .ok_or(StoreError::NoEntry(id))?;
            let previous = index.marked.get(&id).cloned();
            match previous {
                Some((at, _)) if at.elapsed() < USE_RESOLUTION => (info, None),
                previous => {
                    index.marked.insert(id, (Instant::now(), used.clone()));
                    (info, Some(previous.map(|(_, mark)| mark)))
                }
            }
        };
        if let Some(previous) = mark {
            match self.client.put(&used, PutPayload::default()).await {
                // This server's previous mark says less than the new one.
                Ok(_) => {
                    if let Some(previous) = previous {
                        self.delete(&previous).await;
                    }
                }
                Err(e) => {
                    tracing::warn!(object = %self.shown(&used).display(), "cannot mark a cache entry used: {e}")
                }
            }
        }
        let location = self.data_object(id);
        Ok((
            info,
            EntryObject {
                client: self.client.clone(),
                id,
                shown: self.shown(&location),
                location,
            },
        ))
    }
}

/// The client for `options`' bucket.
fn build_client(options: &S3Options) -> object_store::Result<object_store::aws::AmazonS3> {
    let region = match options.region.as_str() {
        "" => "us-east-1",
        region => region,
    };
    // No limit on a whole request: a download streams to a job as slowly as the job reads.
    let client = ClientOptions::new()
        .with_allow_http(options.endpoint.starts_with("http://"))
        .with_timeout_disabled()
        .with_connect_timeout(Duration::from_secs(10));
    let mut builder = AmazonS3Builder::new()
        .with_bucket_name(&options.bucket)
        .with_region(region)
        .with_virtual_hosted_style_request(!options.path_style)
        .with_client_options(client);
    if !options.endpoint.is_empty() {
        builder = builder.with_endpoint(options.endpoint.trim_end_matches('/'));
    }
    if !options.access_key_id.is_empty() {
        builder = builder.with_access_key_id(&options.access_key_id);
    }
    if !options.secret_access_key.is_empty() {
        builder = builder.with_secret_access_key(&options.secret_access_key);
    }
    builder.build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secret_is_never_shown() {
        let options = S3Options {
            bucket: "cache".into(),
            access_key_id: "AKIAEXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI".into(),
            ..S3Options::default()
        };
        let shown = format!("{options:?}");
        assert!(!shown.contains("wJalrXUtnFEMI"), "{shown}");
        assert!(shown.contains("AKIAEXAMPLE"), "{shown}");
    }

    #[test]
    fn ids_are_read_from_object_names() {
        assert_eq!(id_of("42.json"), Some(42));
        assert_eq!(id_of("42"), Some(42));
        assert_eq!(id_of("42.json.tmp"), None);
        assert_eq!(id_of("x"), None);
    }
}
