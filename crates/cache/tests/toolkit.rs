//! The cache server driven by GitHub's own client, `@actions/cache` from the npm registry
//! (installed by `scripts/npm-test-env`), over protocol v1 as `actions/cache` speaks it on a
//! forge: saves and restores by key and restore key, entries scoped per repository and ref,
//! and requests without a valid token refused; on disk and in an S3 bucket (moto's server,
//! from `scripts/s3-test-env`), where two servers share the entries. Without node, the
//! packages or moto these tests fail, saying so.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hearth_cache::auth::{Grant, Signer};
use hearth_cache::server::{serve, Running};
use hearth_cache::{S3Options, Store};
use serde_json::Value;

/// The toolkit's packages: `HEARTH_NODE_MODULES`, or what `scripts/npm-test-env` installs.
fn node_modules() -> PathBuf {
    if let Some(folder) = std::env::var_os("HEARTH_NODE_MODULES").filter(|f| !f.is_empty()) {
        return PathBuf::from(folder);
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/npm-test-env");
    let output = Command::new(&script)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    assert!(
        output.status.success(),
        "the toolkit tests need @actions/cache ({} failed): {}",
        script.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    PathBuf::from(stdout.lines().last().unwrap_or_default().trim())
}

fn seconds_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn grant(repository: &str, read: &[&str], write: Option<&str>) -> Grant {
    Grant {
        repository: repository.into(),
        read: read.iter().map(|r| r.to_string()).collect(),
        write: write.map(str::to_owned),
        expires: seconds_now() + 600,
    }
}

struct Server {
    running: Running,
    signer: Signer,
    _dir: tempfile::TempDir,
}

impl Server {
    /// A server on a folder of its own.
    async fn start() -> Server {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("store"), 1 << 30).unwrap();
        Server::serve(store, Signer::random().unwrap(), dir).await
    }

    /// A server keeping its entries in the bucket `options` names, signing with `signer`.
    async fn start_s3(options: &S3Options, signer: Signer) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_s3(options, &dir.path().join("staging"), 1 << 30)
            .await
            .unwrap();
        Server::serve(store, signer, dir).await
    }

    async fn serve(store: Store, signer: Signer, dir: tempfile::TempDir) -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let running = serve(listener, Arc::new(store), signer.clone()).unwrap();
        Server {
            running,
            signer,
            _dir: dir,
        }
    }

    /// The cache URL a job with `grant` is given.
    fn url(&self, grant: &Grant) -> String {
        format!(
            "http://{}/{}/",
            self.running.address(),
            self.signer.token(grant)
        )
    }
}

/// Runs the toolkit script in `dir` against `url`; what it printed.
async fn client(url: &str, dir: &Path, args: &[&str]) -> Value {
    client_version("4", url, dir, args).await
}

/// The same with `@actions/cache` `version` (4 or 6).
async fn client_version(version: &str, url: &str, dir: &Path, args: &[&str]) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/toolkit/cache.js");
    let mut command = tokio::process::Command::new("node");
    command
        .arg(script)
        .args(args)
        .current_dir(dir)
        .env("NODE_PATH", node_modules())
        .env("ACTIONS_CACHE_URL", url)
        // The forge's token, which the toolkit sends as its bearer; the cache ignores it.
        .env("ACTIONS_RUNTIME_TOKEN", "the-forges-runtime-token")
        // A forge, not github.com: the toolkit speaks v1 there.
        .env("GITHUB_SERVER_URL", "http://forge.example")
        .env("RUNNER_TEMP", dir.join(".temp"))
        .env("CACHE_CLIENT", version);
    let output = command.output().await.expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}{stderr}");
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("{e}: {stdout}{stderr}"))
}

/// A folder holding `deps/` with a small file and `size` bytes of data no compressor shrinks.
fn workspace(root: &Path, name: &str, size: usize) -> PathBuf {
    let dir = root.join(name);
    std::fs::create_dir_all(dir.join("deps")).unwrap();
    std::fs::create_dir_all(dir.join(".temp")).unwrap();
    std::fs::write(dir.join("deps/small.txt"), format!("made in {name}\n")).unwrap();
    // xorshift: cheap bytes that do not compress.
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let data: Vec<u8> = (0..size)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect();
    std::fs::write(dir.join("deps/large.bin"), data).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_toolkit_saves_and_restores_by_key_and_restore_key() {
    let server = Server::start().await;
    saves_and_restores("4", &server, &server).await;
}

/// The newest client (an ES module), which still speaks v1 to a forge.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_newest_toolkit_saves_and_restores_too() {
    let server = Server::start().await;
    saves_and_restores("6", &server, &server).await;
}

/// Two servers (on two machines, say) keep their entries in one bucket: what a job saved
/// through one, a job restores through the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_sharing_a_bucket_restore_each_others_entries() {
    let moto = common::Moto::start().await;
    let options = moto.bucket("fleet").await;
    let signer = Signer::new(b"the key the fleet shares");
    let one = Server::start_s3(&options, signer.clone()).await;
    let two = Server::start_s3(&options, signer).await;
    saves_and_restores("4", &one, &two).await;
    // And the other way round, with the newest client.
    let root = tempfile::tempdir().unwrap();
    let main = grant("acme/app", &["refs/heads/main"], Some("refs/heads/main"));
    let dir = workspace(root.path(), "back", 1 << 20);
    let saved = client_version("6", &two.url(&main), &dir, &["save", "back-1", "deps"]).await;
    assert!(saved["saved"].as_i64().unwrap_or(-1) > 0, "{saved}");
    let restored = client_version(
        "6",
        &one.url(&main),
        &dir,
        &["restore", "back-2", "back-", "deps"],
    )
    .await;
    assert_eq!(restored["restored"], "back-1", "{restored}");
}

/// Saves through `saving` (40 MiB in two parts), restores through `restoring` (by key and by
/// restore key, ranged downloads), which are one server unless their entries are shared.
async fn saves_and_restores(version: &str, saving: &Server, restoring: &Server) {
    let client = |url: String, dir: PathBuf, args: Vec<&'static str>| async move {
        client_version(version, &url, &dir, &args).await
    };
    let root = tempfile::tempdir().unwrap();
    let main = saving.url(&grant(
        "acme/app",
        &["refs/heads/main"],
        Some("refs/heads/main"),
    ));
    // 40 MiB: two upload parts of the toolkit's 32 MiB, ten ranged downloads of 4 MiB.
    let saved_from = workspace(root.path(), "saved", 40 << 20);
    let saved = client(
        main.clone(),
        saved_from.clone(),
        vec!["save", "deps-linux-1", "deps"],
    )
    .await;
    assert!(saved["saved"].as_i64().unwrap_or(-1) > 0, "{saved}");
    // The same key again: entries never change.
    let again = client(
        main.clone(),
        saved_from.clone(),
        vec!["save", "deps-linux-1", "deps"],
    )
    .await;
    assert_eq!(again["saved"], -1, "{again}");
    let elsewhere = restoring.url(&grant(
        "acme/app",
        &["refs/heads/main"],
        Some("refs/heads/main"),
    ));
    let again_elsewhere = client(
        elsewhere,
        saved_from.clone(),
        vec!["save", "deps-linux-1", "deps"],
    )
    .await;
    assert_eq!(again_elsewhere["saved"], -1, "{again_elsewhere}");

    // A branch reads its own entries, then main's: a restore key finds main's entry.
    let feature = restoring.url(&grant(
        "acme/app",
        &["refs/heads/feature", "refs/heads/main"],
        Some("refs/heads/feature"),
    ));
    let restored_into = workspace(root.path(), "restored", 0);
    std::fs::remove_dir_all(restored_into.join("deps")).unwrap();
    let restored = client(
        feature.clone(),
        restored_into.clone(),
        vec!["restore", "deps-linux-2", "deps-linux-,deps-", "deps"],
    )
    .await;
    assert_eq!(restored["restored"], "deps-linux-1", "{restored}");
    for file in ["deps/small.txt", "deps/large.bin"] {
        assert!(
            std::fs::read(saved_from.join(file)).unwrap()
                == std::fs::read(restored_into.join(file)).unwrap(),
            "{file} differs"
        );
    }
    // The exact key.
    let exact = client(
        feature.clone(),
        restored_into.clone(),
        vec!["restore", "deps-linux-1", "-", "deps"],
    )
    .await;
    assert_eq!(exact["restored"], "deps-linux-1", "{exact}");
    // Nothing matches.
    let missed = client(
        feature.clone(),
        restored_into.clone(),
        vec!["restore", "other-1", "other-", "deps"],
    )
    .await;
    assert_eq!(missed["restored"], Value::Null, "{missed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_are_scoped_and_tokens_checked() {
    scoped_and_checked(&Server::start().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_are_scoped_and_tokens_checked_on_s3() {
    let moto = common::Moto::start().await;
    let options = moto.bucket("scoped").await;
    scoped_and_checked(&Server::start_s3(&options, Signer::random().unwrap()).await).await;
}

async fn scoped_and_checked(server: &Server) {
    let root = tempfile::tempdir().unwrap();
    let dir = workspace(root.path(), "job", 1024);
    let main = server.url(&grant(
        "acme/app",
        &["refs/heads/main"],
        Some("refs/heads/main"),
    ));
    let saved = client(&main, &dir, &["save", "shared-key", "deps"]).await;
    assert!(saved["saved"].as_i64().unwrap_or(-1) > 0, "{saved}");

    // Another repository never sees it, even with the same ref.
    let other = server.url(&grant(
        "acme/other",
        &["refs/heads/main"],
        Some("refs/heads/main"),
    ));
    let restored = client(&other, &dir, &["restore", "shared-key", "-", "deps"]).await;
    assert_eq!(restored["restored"], Value::Null, "{restored}");

    // A pull request reads its base but writes only its own ref, which the base never reads:
    // it cannot poison the base's entries.
    let pull = server.url(&grant(
        "acme/app",
        &["refs/pull/7/merge", "refs/heads/main"],
        Some("refs/pull/7/merge"),
    ));
    let from_base = client(&pull, &dir, &["restore", "shared-key", "-", "deps"]).await;
    assert_eq!(from_base["restored"], "shared-key", "{from_base}");
    let poisoned = client(&pull, &dir, &["save", "poison-key", "deps"]).await;
    assert!(poisoned["saved"].as_i64().unwrap_or(-1) > 0, "{poisoned}");
    let at_base = client(&main, &dir, &["restore", "poison-key", "poison-", "deps"]).await;
    assert_eq!(at_base["restored"], Value::Null, "{at_base}");
    let own = client(&pull, &dir, &["restore", "poison-key", "-", "deps"]).await;
    assert_eq!(own["restored"], "poison-key", "{own}");

    // A job that may only read (a fork's pull request) saves nothing.
    let fork = server.url(&grant("acme/app", &["refs/heads/main"], None));
    let refused = client(&fork, &dir, &["save", "fork-key", "deps"]).await;
    assert_eq!(refused["saved"], -1, "{refused}");

    // Without a token, with an expired one, with one signed by another key: refused outright.
    let address = server.running.address();
    let expired = Grant {
        expires: seconds_now() - 1,
        ..grant("acme/app", &["refs/heads/main"], Some("refs/heads/main"))
    };
    let foreign = Signer::new(b"another server").token(&grant(
        "acme/app",
        &["refs/heads/main"],
        Some("refs/heads/main"),
    ));
    for (path, status) in [
        (
            "/_apis/artifactcache/cache?keys=shared-key&version=x".to_owned(),
            401,
        ),
        (
            format!(
                "/{}/_apis/artifactcache/cache?keys=shared-key&version=x",
                server.signer.token(&expired)
            ),
            403,
        ),
        (
            format!("/{foreign}/_apis/artifactcache/cache?keys=shared-key&version=x"),
            403,
        ),
        ("/_apis/artifactcache/artifacts/1".to_owned(), 401),
        (
            "/_apis/artifactcache/artifacts/1?expires=99999999999&sig=AAAA".to_owned(),
            403,
        ),
    ] {
        assert_eq!(get_status(address, &path).await, status, "{path}");
    }
}

/// The status of a plain `GET path`.
async fn get_status(address: std::net::SocketAddr, path: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
        .await
        .expect("an answer")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not HTTP: {answer}"))
}
