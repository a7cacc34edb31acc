//! The store on both backends, a real folder and a bucket of an S3-compatible server (moto):
//! GitHub's matching rules, immutable entries, parts in any order, eviction by least recent
//! use, stores sharing their entries, and what a crash leaves. Each behaviour is one function
//! run on each backend (`on_both!`).

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures_util::TryStreamExt;
use hearth_cache::{S3Options, Scope, Store, StoreError};
use object_store::{ObjectStore, ObjectStoreExt};

fn scope(reference: &str) -> Scope {
    Scope {
        repository: "acme/app".into(),
        reference: reference.into(),
    }
}

fn keys(keys: &[&str]) -> Vec<String> {
    keys.iter().map(|k| k.to_string()).collect()
}

#[derive(Clone, Copy, Debug)]
enum Backend {
    Disk,
    S3,
}

/// Where stores of one backend keep their entries: every store opened on it (a process, a
/// restart, another machine's server) sees the same ones.
struct Place {
    dir: tempfile::TempDir,
    s3: Option<(common::Moto, S3Options)>,
}

impl Place {
    async fn new(backend: Backend) -> Place {
        let dir = tempfile::tempdir().unwrap();
        let s3 = match backend {
            Backend::Disk => None,
            Backend::S3 => {
                let moto = common::Moto::start().await;
                let options = moto.bucket("cache").await;
                Some((moto, options))
            }
        };
        Place { dir, s3 }
    }

    /// A store on the place, as the server `name` opens it (its own staging folder for S3;
    /// the one folder on disk).
    async fn open_as(&self, name: &str, limit: u64) -> Store {
        match &self.s3 {
            None => Store::open(self.dir.path(), limit).unwrap(),
            Some((_, options)) => Store::open_s3(options, &self.dir.path().join(name), limit)
                .await
                .unwrap(),
        }
    }

    async fn open(&self, limit: u64) -> Store {
        self.open_as("server", limit).await
    }

    /// How long apart two uses of an entry must be to count as two: S3 counts a server's
    /// downloads of an entry within a second as one.
    fn use_gap(&self) -> Duration {
        match self.s3 {
            None => Duration::from_millis(5),
            Some(_) => Duration::from_millis(1100),
        }
    }
}

/// Saves `bytes` as `key` in `scope`, in one part; the entry's id.
async fn save(store: &Store, scope: &Scope, key: &str, version: &str, bytes: &[u8]) -> u64 {
    let size = bytes.len() as u64;
    let id = store
        .reserve(scope, key, version, Some(size))
        .await
        .expect("reserved");
    let mut part = store.part(id, scope, 0).await.expect("part");
    part.write(bytes).await.expect("written");
    part.finish().await.expect("finished");
    store.commit(id, scope, size).await.expect("committed").id
}

async fn read(store: &Store, id: u64) -> Vec<u8> {
    let (info, data) = store.open_entry(id).await.expect("opened");
    let chunks: Vec<bytes::Bytes> = data
        .stream(0, info.size)
        .await
        .expect("streamed")
        .try_collect()
        .await
        .expect("read");
    chunks.concat()
}

/// Runs each behaviour on the disk and on S3.
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod disk {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                super::$name(super::Backend::Disk).await
            })*
        }
        mod s3 {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                super::$name(super::Backend::S3).await
            })*
        }
    };
}

on_both!(
    keys_match_as_github_matches_them,
    entries_never_change_and_uploads_must_be_whole,
    ranges_of_an_entry_are_read,
    the_least_recently_used_entries_go_past_the_limit,
    stores_sharing_their_entries_see_each_others,
);

/// A lookup and what it finds: why, the scopes, the keys, the version, the entry.
type Lookup<'a> = (&'a str, &'a [Scope], &'a [&'a str], &'a str, Option<u64>);

async fn keys_match_as_github_matches_them(backend: Backend) {
    let place = Place::new(backend).await;
    let store = place.open(1 << 20).await;
    let main = scope("refs/heads/main");
    let feature = scope("refs/heads/feature");
    let old = save(&store, &main, "npm-linux-aaa", "v1", b"old").await;
    let new = save(&store, &main, "npm-linux-bbb", "v1", b"new").await;
    let exact = save(&store, &main, "npm-linux", "v1", b"exact").await;
    let other_version = save(&store, &main, "npm-linux-ccc", "v2", b"v2").await;
    let on_feature = save(&store, &feature, "npm-linux-fff", "v1", b"feature").await;
    // Another repository's entries, even under the same ref, are never found.
    let elsewhere = Scope {
        repository: "acme/other".into(),
        reference: "refs/heads/main".into(),
    };
    let only_main = std::slice::from_ref(&main);
    let both = [feature.clone(), main.clone()];
    let cases: &[Lookup] = &[
        (
            "the first key exactly, before a newer entry it is a prefix of",
            only_main,
            &["npm-linux"],
            "v1",
            Some(exact),
        ),
        (
            "a key as a prefix: the newest entry it starts",
            only_main,
            &["npm-linux-"],
            "v1",
            Some(new),
        ),
        (
            "a longer prefix",
            only_main,
            &["npm-linux-a"],
            "v1",
            Some(old),
        ),
        (
            "restore keys in their order, after the first key",
            only_main,
            &["npm-linux-zzz", "npm-linux-a", "npm-"],
            "v1",
            Some(old),
        ),
        (
            "the version must be the same",
            only_main,
            &["npm-linux-c"],
            "v1",
            None,
        ),
        (
            "the other version",
            only_main,
            &["npm-linux-c"],
            "v2",
            Some(other_version),
        ),
        (
            "the branch's own entries first",
            &both,
            &["npm-linux-"],
            "v1",
            Some(on_feature),
        ),
        ("then its base's", &both, &["npm-linux-b"], "v1", Some(new)),
        (
            "a scope not granted is not read",
            std::slice::from_ref(&feature),
            &["npm-linux-b"],
            "v1",
            None,
        ),
        (
            "another repository",
            std::slice::from_ref(&elsewhere),
            &["npm-"],
            "v1",
            None,
        ),
    ];
    for (what, scopes, wanted, version, expected) in cases {
        let found = store
            .find(scopes, &keys(wanted), version)
            .await
            .map(|e| e.id);
        assert_eq!(found, *expected, "{what}");
    }
    assert_eq!(read(&store, new).await, b"new");
}

async fn entries_never_change_and_uploads_must_be_whole(backend: Backend) {
    let place = Place::new(backend).await;
    let store = place.open(1 << 20).await;
    let main = scope("refs/heads/main");
    save(&store, &main, "k", "v", b"first").await;
    assert!(matches!(
        store.reserve(&main, "k", "v", Some(3)).await,
        Err(StoreError::Exists { .. })
    ));
    // Another scope may have its own entry of the same key.
    save(&store, &scope("refs/heads/other"), "k", "v", b"second").await;

    // Parts in any order; a gap refuses the commit, filling it lets it through.
    let id = store.reserve(&main, "parts", "v", Some(10)).await.unwrap();
    assert!(matches!(
        store.reserve(&main, "parts", "v", None).await,
        Err(StoreError::Exists { .. })
    ));
    for (start, bytes) in [(6, &b"ghij"[..]), (0, &b"abc"[..])] {
        let mut part = store.part(id, &main, start).await.unwrap();
        part.write(bytes).await.unwrap();
        part.finish().await.unwrap();
    }
    assert!(matches!(
        store.commit(id, &main, 10).await,
        Err(StoreError::Incomplete { .. })
    ));
    assert!(store
        .find(std::slice::from_ref(&main), &keys(&["parts"]), "v")
        .await
        .is_none());
    // Bytes past the announced size are refused, and so is another scope's writer.
    let mut past = store.part(id, &main, 8).await.unwrap();
    assert!(matches!(
        past.write(b"xyz").await,
        Err(StoreError::OutOfRange { .. })
    ));
    assert!(matches!(
        store.part(id, &scope("refs/heads/other"), 3).await,
        Err(StoreError::OtherScope(_))
    ));
    let mut part = store.part(id, &main, 3).await.unwrap();
    part.write(b"def").await.unwrap();
    part.finish().await.unwrap();
    assert!(matches!(
        store.commit(id, &main, 9).await,
        Err(StoreError::Incomplete { .. })
    ));
    let entry = store.commit(id, &main, 10).await.unwrap();
    assert_eq!(read(&store, entry.id).await, b"abcdefghij");
    // Committed once: the upload is over.
    assert!(matches!(
        store.commit(id, &main, 10).await,
        Err(StoreError::NoUpload(_))
    ));

    // An empty entry is an entry.
    let empty = save(&store, &main, "empty", "v", b"").await;
    assert_eq!(read(&store, empty).await, b"");
    assert!(matches!(
        store.reserve(&main, "", "v", None).await,
        Err(StoreError::BadKey)
    ));
    assert!(matches!(
        store.reserve(&main, "big", "v", Some(2 << 20)).await,
        Err(StoreError::TooLarge { .. })
    ));
    // An abandoned upload frees its key.
    let dropped = store.reserve(&main, "dropped", "v", Some(3)).await.unwrap();
    store.abandon(dropped);
    assert!(store.reserve(&main, "dropped", "v", Some(3)).await.is_ok());
}

/// Ranges of an entry, as downloads ask for them, across the parts it was uploaded in.
async fn ranges_of_an_entry_are_read(backend: Backend) {
    let place = Place::new(backend).await;
    let store = place.open(64 << 20).await;
    let main = scope("refs/heads/main");
    // Larger than one part of an S3 upload (16 MiB), uploaded in parts of 7 MiB, last first.
    let bytes: Vec<u8> = (0..20u32 << 20).map(|i| (i % 251) as u8).collect();
    let size = bytes.len() as u64;
    let id = store.reserve(&main, "big", "v", Some(size)).await.unwrap();
    let chunk = 7 << 20;
    for start in (0..bytes.len()).step_by(chunk).rev() {
        let end = (start + chunk).min(bytes.len());
        let mut part = store.part(id, &main, start as u64).await.unwrap();
        part.write(&bytes[start..end]).await.unwrap();
        part.finish().await.unwrap();
    }
    store.commit(id, &main, size).await.unwrap();
    assert!(read(&store, id).await == bytes, "the whole entry differs");
    for (start, end) in [
        (0, 1),
        (5, 4 << 20),
        (size - 10, size),
        (17 << 20, 19 << 20),
    ] {
        let (_, data) = store.open_entry(id).await.unwrap();
        let chunks: Vec<bytes::Bytes> = data
            .stream(start, end)
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        assert!(
            chunks.concat() == bytes[start as usize..end as usize],
            "bytes {start}..{end} differ"
        );
    }
    assert!(matches!(
        store.open_entry(id + 1).await,
        Err(StoreError::NoEntry(_))
    ));
}

async fn the_least_recently_used_entries_go_past_the_limit(backend: Backend) {
    let place = Place::new(backend).await;
    let gap = place.use_gap();
    let store = place.open(100).await;
    let main = scope("refs/heads/main");
    let a = save(&store, &main, "a", "v", &[1; 40]).await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let b = save(&store, &main, "b", "v", &[2; 40]).await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    // `a` used after `b` was made: `b` is the least recently used.
    read(&store, a).await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let c = save(&store, &main, "c", "v", &[3; 40]).await;
    assert!(store.entry(b).await.is_none(), "b evicted");
    assert!(store.entry(a).await.is_some() && store.entry(c).await.is_some());
    assert_eq!(store.total_size().await, 80);
    // `a`, made before `c`, used after it.
    tokio::time::sleep(gap).await;
    read(&store, a).await;
    drop(store);

    // The uses survive a restart: `c` is the least recently used now.
    let store = place.open(100).await;
    assert_eq!(store.total_size().await, 80);
    let d = save(&store, &main, "d", "v", &[4; 40]).await;
    assert!(
        store.entry(c).await.is_none(),
        "c evicted after the restart"
    );
    assert!(store.entry(a).await.is_some() && store.entry(d).await.is_some());
}

/// Two processes, or two servers on different machines (two stores on one folder or bucket):
/// each sees what the other committed, a key one committed is refused to the other even when
/// both reserved it, and eviction counts the entries of both.
async fn stores_sharing_their_entries_see_each_others(backend: Backend) {
    let place = Place::new(backend).await;
    let main = scope("refs/heads/main");
    let one = place.open_as("one", 100).await;
    let two = place.open_as("two", 100).await;
    let first = save(&one, &main, "first", "v", &[1; 40]).await;
    let found = two
        .find(std::slice::from_ref(&main), &keys(&["first"]), "v")
        .await;
    assert_eq!(found.map(|e| e.id), Some(first));
    assert_eq!(read(&two, first).await, [1; 40]);
    assert!(matches!(
        two.reserve(&main, "first", "v", None).await,
        Err(StoreError::Exists { .. })
    ));

    // Both reserve the same key; the second to commit is refused.
    let by_one = one.reserve(&main, "race", "v", Some(3)).await.unwrap();
    let by_two = two.reserve(&main, "race", "v", Some(3)).await.unwrap();
    for (store, id) in [(&one, by_one), (&two, by_two)] {
        let mut part = store.part(id, &main, 0).await.unwrap();
        part.write(b"abc").await.unwrap();
        part.finish().await.unwrap();
    }
    one.commit(by_one, &main, 3).await.unwrap();
    assert!(matches!(
        two.commit(by_two, &main, 3).await,
        Err(StoreError::Exists { .. })
    ));

    // 43 bytes held; 60 more from the second store pass the limit of 100: the least recently
    // used (`first`, read before `race` was made) goes, whoever made it.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let big = save(&two, &main, "big", "v", &[2; 60]).await;
    assert!(one.entry(first).await.is_none(), "first evicted");
    assert!(one.entry(big).await.is_some());
    assert_eq!(one.total_size().await, 63);
}

/// Makes `path` look `age` old.
fn age(path: &Path, age: Duration) {
    let file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    file.set_modified(std::time::SystemTime::now() - age)
        .unwrap();
}

/// On disk: what a crash between the commit's steps leaves is removed once old, and never
/// read as an entry.
#[tokio::test]
async fn a_crash_leaves_whole_entries_or_none_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let main = scope("refs/heads/main");
    let hours = Duration::from_secs(2 * 3600);
    let (kept, half) = {
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        let kept = save(&store, &main, "kept", "v", b"whole").await;
        let half = store.reserve(&main, "half", "v", Some(10)).await.unwrap();
        let mut part = store.part(half, &main, 0).await.unwrap();
        part.write(b"12345").await.unwrap();
        part.finish().await.unwrap();
        (kept, half)
    };
    let entries = dir.path().join("entries");
    let uploads = dir.path().join("uploads");
    // What a crash between the commit's steps leaves, two hours ago: the upload, a blob renamed
    // without its record, a record's temporary file; and a record whose blob is short.
    for file in std::fs::read_dir(&uploads).unwrap().flatten() {
        age(&file.path(), hours);
    }
    std::fs::write(entries.join("900.blob"), b"orphan").unwrap();
    age(&entries.join("900.blob"), hours);
    std::fs::write(entries.join("901.json.tmp"), b"{").unwrap();
    age(&entries.join("901.json.tmp"), hours);
    let short = serde_json::json!({"id": 902, "scope": main, "key": "short", "version": "v",
                                   "size": 100, "created": 1});
    std::fs::write(entries.join("902.json"), short.to_string()).unwrap();
    std::fs::write(entries.join("902.blob"), b"too short").unwrap();
    age(&entries.join("902.blob"), hours);
    // Another process's blob, renamed a moment ago, its record on its way: left alone.
    std::fs::write(entries.join("903.blob"), b"in progress").unwrap();

    let store = Store::open(dir.path(), 1 << 20).unwrap();
    assert_eq!(read(&store, kept).await, b"whole");
    for key in ["half", "short"] {
        assert!(store
            .find(std::slice::from_ref(&main), &keys(&[key]), "v")
            .await
            .is_none());
    }
    let mut left: Vec<String> = std::fs::read_dir(&entries)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    let mut expected = vec![
        format!("{kept}.blob"),
        format!("{kept}.json"),
        "903.blob".to_owned(),
    ];
    expected.sort();
    assert_eq!(left, expected);
    assert_eq!(std::fs::read_dir(&uploads).unwrap().count(), 0);
    // The upload from before the restart is gone.
    assert!(matches!(
        store.part(half, &main, 5).await,
        Err(StoreError::NoUpload(_))
    ));
    let again = store.reserve(&main, "half", "v", Some(10)).await.unwrap();
    assert_ne!(again, half);
}

/// The names of the objects under the bucket's prefix, sorted.
async fn objects(client: &dyn ObjectStore) -> Vec<String> {
    let listed: Vec<object_store::ObjectMeta> = client
        .list(Some(&object_store::path::Path::from("hearth/cache")))
        .try_collect()
        .await
        .unwrap();
    let mut names: Vec<String> = listed
        .into_iter()
        .map(|m| {
            m.location
                .as_ref()
                .trim_start_matches("hearth/cache/")
                .to_owned()
        })
        .collect();
    names.sort();
    names
}

/// On S3: a server that crashed mid-upload or mid-commit leaves bytes no record names (never
/// an entry, removed once old, left alone while young: another server's commit on its way),
/// a staged upload (removed once old), and records that are not entries are never read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_leaves_whole_entries_or_none_on_s3() {
    let place = Place::new(Backend::S3).await;
    let Some((_, options)) = &place.s3 else {
        unreachable!("an S3 place")
    };
    let options = S3Options {
        // Wide enough for moto's times, in whole seconds, and a loaded machine.
        sweep_after: Duration::from_secs(4),
        ..options.clone()
    };
    let staging = place.dir.path().join("staging");
    let main = scope("refs/heads/main");
    let (kept, half) = {
        let store = Store::open_s3(&options, &staging, 1 << 20).await.unwrap();
        let kept = save(&store, &main, "kept", "v", b"whole").await;
        let half = store.reserve(&main, "half", "v", Some(10)).await.unwrap();
        let mut part = store.part(half, &main, 0).await.unwrap();
        part.write(b"12345").await.unwrap();
        part.finish().await.unwrap();
        (kept, half)
    };
    let client = client(&options);
    let put = |name: &str, bytes: &'static [u8]| {
        let client = client.clone();
        let location = object_store::path::Path::from(format!("hearth/cache/{name}"));
        async move { client.put(&location, bytes.into()).await.unwrap() }
    };
    // A crashed commit's bytes, without their record; a record whose bytes are short; a
    // record that is not JSON; a use mark of an entry long gone.
    put("data/900", b"orphan").await;
    let short = serde_json::json!({"id": 902, "scope": main, "key": "short", "version": "v",
                                   "size": 100, "created": 1});
    put("data/902", b"too short").await;
    client
        .put(
            &object_store::path::Path::from("hearth/cache/entries/902.json"),
            short.to_string().into(),
        )
        .await
        .unwrap();
    put("entries/904.json", b"{").await;
    put("used/905/1", b"").await;
    // Before they are old enough, a server opening the bucket leaves the bytes alone, and
    // reads none of it as an entry.
    let early = Store::open_s3(&options, &place.dir.path().join("early"), 1 << 20)
        .await
        .unwrap();
    for key in ["half", "short"] {
        assert!(early
            .find(std::slice::from_ref(&main), &keys(&[key]), "v")
            .await
            .is_none());
    }
    assert!(objects(client.as_ref())
        .await
        .contains(&"data/900".to_owned()));
    tokio::time::sleep(Duration::from_secs(5)).await;
    // Another server's commit on its way: young bytes without a record.
    put("data/903", b"in progress").await;

    let store = Store::open_s3(&options, &staging, 1 << 20).await.unwrap();
    assert_eq!(
        objects(client.as_ref()).await,
        [
            format!("data/{kept}"),
            "data/903".to_owned(),
            format!("entries/{kept}.json")
        ]
    );
    assert_eq!(read(&store, kept).await, b"whole");
    assert_eq!(std::fs::read_dir(&staging).unwrap().count(), 0);
    assert!(matches!(
        store.part(half, &main, 5).await,
        Err(StoreError::NoUpload(_))
    ));
    let again = store.reserve(&main, "half", "v", Some(10)).await.unwrap();
    assert_ne!(again, half);
}

/// On S3 each download marks its entry used, for eviction: a server replaces its own mark, so
/// an entry has one per server that read it, and a server opening the bucket removes all but
/// the newest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uses_leave_one_mark_per_entry_on_s3() {
    let place = Place::new(Backend::S3).await;
    let Some((_, options)) = &place.s3 else {
        unreachable!("an S3 place")
    };
    let client = client(options);
    let main = scope("refs/heads/main");
    let one = place.open_as("one", 1 << 20).await;
    let two = place.open_as("two", 1 << 20).await;
    let id = save(&one, &main, "read-often", "v", b"bytes").await;
    let marks = || async {
        let all = objects(client.as_ref()).await;
        all.into_iter()
            .filter(|name| name.starts_with(&format!("used/{id}/")))
            .count()
    };
    for _ in 0..3 {
        read(&one, id).await;
        tokio::time::sleep(place.use_gap()).await;
    }
    assert_eq!(marks().await, 1, "one mark of the first server");
    read(&two, id).await;
    assert_eq!(marks().await, 2, "and one of the second");
    drop((one, two));
    let _three = place.open_as("three", 1 << 20).await;
    assert_eq!(marks().await, 1, "the newest is what eviction needs");
}

/// A client of the bucket `options` names, to look at it from outside the store.
fn client(options: &S3Options) -> Arc<dyn ObjectStore> {
    Arc::new(
        object_store::aws::AmazonS3Builder::new()
            .with_endpoint(&options.endpoint)
            .with_bucket_name(&options.bucket)
            .with_region(&options.region)
            .with_access_key_id(&options.access_key_id)
            .with_secret_access_key(&options.secret_access_key)
            .with_allow_http(true)
            .build()
            .unwrap(),
    )
}
