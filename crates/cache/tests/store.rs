//! The store on a real folder: GitHub's matching rules, immutable entries, parts in any order,
//! eviction by least recent use, and what a crash leaves.

use hearth_cache::{Scope, Store, StoreError};
use tokio::io::AsyncReadExt;

fn scope(reference: &str) -> Scope {
    Scope {
        repository: "acme/app".into(),
        reference: reference.into(),
    }
}

fn keys(keys: &[&str]) -> Vec<String> {
    keys.iter().map(|k| k.to_string()).collect()
}

/// Saves `bytes` as `key` in `scope`, in one part; the entry's id.
async fn save(store: &Store, scope: &Scope, key: &str, version: &str, bytes: &[u8]) -> u64 {
    let size = bytes.len() as u64;
    let id = store
        .reserve(scope, key, version, Some(size))
        .expect("reserved");
    let mut part = store.part(id, scope, 0).await.expect("part");
    part.write(bytes).await.expect("written");
    part.finish().await.expect("finished");
    store.commit(id, scope, size).await.expect("committed").id
}

async fn read(store: &Store, id: u64) -> Vec<u8> {
    let (_, mut file) = store.open_entry(id).await.expect("opened");
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).await.expect("read");
    bytes
}

#[tokio::test]
async fn keys_match_as_github_matches_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), 1 << 20).unwrap();
    let main = scope("refs/heads/main");
    let feature = scope("refs/heads/feature");
    let old = save(&store, &main, "npm-linux-aaa", "v1", b"old").await;
    let new = save(&store, &main, "npm-linux-bbb", "v1", b"new").await;
    let exact = save(&store, &main, "npm-linux", "v1", b"exact").await;
    let other_version = save(&store, &main, "npm-linux-ccc", "v2", b"v2").await;
    let on_feature = save(&store, &feature, "npm-linux-fff", "v1", b"feature").await;
    let find = |scopes: &[Scope], wanted: &[&str], version: &str| {
        store.find(scopes, &keys(wanted), version).map(|e| e.id)
    };

    // The first key exactly, before a newer entry it is a prefix of.
    assert_eq!(
        find(std::slice::from_ref(&main), &["npm-linux"], "v1"),
        Some(exact)
    );
    // A key as a prefix: the newest entry it starts.
    assert_eq!(
        find(std::slice::from_ref(&main), &["npm-linux-"], "v1"),
        Some(new)
    );
    assert_eq!(
        find(std::slice::from_ref(&main), &["npm-linux-a"], "v1"),
        Some(old)
    );
    // Restore keys in their order, after the first key.
    assert_eq!(
        find(
            std::slice::from_ref(&main),
            &["npm-linux-zzz", "npm-linux-a", "npm-"],
            "v1"
        ),
        Some(old)
    );
    // The version (paths and compression) must be the same.
    assert_eq!(
        find(std::slice::from_ref(&main), &["npm-linux-c"], "v1"),
        None
    );
    assert_eq!(
        find(std::slice::from_ref(&main), &["npm-linux-c"], "v2"),
        Some(other_version)
    );
    // Scopes in order: the branch's own entries first, then its base's.
    let both = [feature.clone(), main.clone()];
    assert_eq!(find(&both, &["npm-linux-"], "v1"), Some(on_feature));
    assert_eq!(find(&both, &["npm-linux-b"], "v1"), Some(new));
    // A scope not granted is not read.
    assert_eq!(
        find(std::slice::from_ref(&feature), &["npm-linux-b"], "v1"),
        None
    );
    // Another repository's entries, even under the same ref, are never found.
    let elsewhere = Scope {
        repository: "acme/other".into(),
        reference: "refs/heads/main".into(),
    };
    assert_eq!(find(&[elsewhere], &["npm-"], "v1"), None);
    assert_eq!(read(&store, new).await, b"new");
}

#[tokio::test]
async fn entries_never_change_and_uploads_must_be_whole() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), 1 << 20).unwrap();
    let main = scope("refs/heads/main");
    save(&store, &main, "k", "v", b"first").await;
    assert!(matches!(
        store.reserve(&main, "k", "v", Some(3)),
        Err(StoreError::Exists { .. })
    ));
    // Another scope may have its own entry of the same key.
    save(&store, &scope("refs/heads/other"), "k", "v", b"second").await;

    // Parts in any order; a gap refuses the commit, filling it lets it through.
    let id = store.reserve(&main, "parts", "v", Some(10)).unwrap();
    assert!(matches!(
        store.reserve(&main, "parts", "v", None),
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

    // An empty entry is an entry.
    let empty = save(&store, &main, "empty", "v", b"").await;
    assert_eq!(read(&store, empty).await, b"");
    assert!(matches!(
        store.reserve(&main, "", "v", None),
        Err(StoreError::BadKey)
    ));
    assert!(matches!(
        store.reserve(&main, "big", "v", Some(2 << 20)),
        Err(StoreError::TooLarge { .. })
    ));
}

#[tokio::test]
async fn the_least_recently_used_entries_go_past_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), 100).unwrap();
    let main = scope("refs/heads/main");
    let a = save(&store, &main, "a", "v", &[1; 40]).await;
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let b = save(&store, &main, "b", "v", &[2; 40]).await;
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    // `a` used after `b` was made: `b` is the least recently used.
    read(&store, a).await;
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let c = save(&store, &main, "c", "v", &[3; 40]).await;
    assert!(store.entry(b).is_none(), "b evicted");
    assert!(store.entry(a).is_some() && store.entry(c).is_some());
    assert_eq!(store.total_size(), 80);
    // `a`, made before `c`, used after it.
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    read(&store, a).await;
    drop(store);

    // The uses survive a restart (as the blobs' times): `c` is the least recently used now.
    let store = Store::open(dir.path(), 100).unwrap();
    assert_eq!(store.total_size(), 80);
    let d = save(&store, &main, "d", "v", &[4; 40]).await;
    assert!(store.entry(c).is_none(), "c evicted after the restart");
    assert!(store.entry(a).is_some() && store.entry(d).is_some());
}

/// Makes `path` look `age` old.
fn age(path: &std::path::Path, age: std::time::Duration) {
    let file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    file.set_modified(std::time::SystemTime::now() - age)
        .unwrap();
}

#[tokio::test]
async fn a_crash_leaves_whole_entries_or_none() {
    let dir = tempfile::tempdir().unwrap();
    let main = scope("refs/heads/main");
    let hours = std::time::Duration::from_secs(2 * 3600);
    let (kept, half) = {
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        let kept = save(&store, &main, "kept", "v", b"whole").await;
        let half = store.reserve(&main, "half", "v", Some(10)).unwrap();
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
    assert!(store
        .find(std::slice::from_ref(&main), &keys(&["half"]), "v")
        .is_none());
    assert!(store
        .find(std::slice::from_ref(&main), &keys(&["short"]), "v")
        .is_none());
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
    let again = store.reserve(&main, "half", "v", Some(10)).unwrap();
    assert_ne!(again, half);
}

/// Two processes (two stores) on one folder: each sees what the other committed, a key one
/// committed is refused to the other even when both reserved it, and eviction counts the
/// entries of both.
#[tokio::test]
async fn stores_sharing_a_folder_see_each_others_entries() {
    let dir = tempfile::tempdir().unwrap();
    let main = scope("refs/heads/main");
    let one = Store::open(dir.path(), 100).unwrap();
    let two = Store::open(dir.path(), 100).unwrap();
    let first = save(&one, &main, "first", "v", &[1; 40]).await;
    let found = two.find(std::slice::from_ref(&main), &keys(&["first"]), "v");
    assert_eq!(found.map(|e| e.id), Some(first));
    assert_eq!(read(&two, first).await, [1; 40]);
    assert!(matches!(
        two.reserve(&main, "first", "v", None),
        Err(StoreError::Exists { .. })
    ));

    // Both reserve the same key; the second to commit is refused.
    let by_one = one.reserve(&main, "race", "v", Some(3)).unwrap();
    let by_two = two.reserve(&main, "race", "v", Some(3)).unwrap();
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
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let big = save(&two, &main, "big", "v", &[2; 60]).await;
    assert!(one.entry(first).is_none(), "first evicted");
    assert!(one.entry(big).is_some());
    assert_eq!(one.total_size(), 63);
}
