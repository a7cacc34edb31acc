//! The cache server driven by GitHub's own client, `@actions/cache` from the npm registry
//! (installed by `scripts/npm-test-env`), over protocol v1 as `actions/cache` speaks it on a
//! forge and over protocol v2 as it speaks it on GitHub (what `hearth exec` gives its jobs):
//! saves and restores by key and restore key, entries scoped per repository and ref, and
//! requests without a valid token refused, logged without it; on disk and in an S3 bucket
//! (moto's server, from `scripts/s3-test-env`), where two servers share the entries. Without
//! node, the packages or moto these tests fail, saying so.

mod common;

#[path = "toolkit/node_modules.rs"]
mod node_modules;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hearth_cache::auth::{Grant, RuntimeClaims, Signer};
use hearth_cache::server::{serve, Running};
use hearth_cache::{S3Options, Store};
use serde_json::Value;

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

    /// The access over protocol v2 of a job with `grant`: its runtime token carries it.
    fn v2(&self, grant: &Grant) -> Access {
        let claims = RuntimeClaims::new("run-1", "job-1", grant.expires, Some(grant.clone()));
        Access::V2 {
            results_url: format!("http://{}/", self.running.address()),
            token: self.signer.runtime_token(&claims),
        }
    }
}

/// How a job reaches the cache.
#[derive(Clone, Debug)]
enum Access {
    /// `ACTIONS_CACHE_URL` with the token in it, on a forge.
    V1(String),
    /// `ACTIONS_RESULTS_URL` and the runtime token, on GitHub.
    V2 { results_url: String, token: String },
}

impl From<String> for Access {
    fn from(url: String) -> Access {
        Access::V1(url)
    }
}

impl From<&Access> for Access {
    fn from(access: &Access) -> Access {
        access.clone()
    }
}

impl From<&String> for Access {
    fn from(url: &String) -> Access {
        Access::V1(url.clone())
    }
}

/// Runs the toolkit script in `dir` against `url`; what it printed.
async fn client(access: impl Into<Access>, dir: &Path, args: &[&str]) -> Value {
    client_version("4", access, dir, args).await
}

/// The same with `@actions/cache` `version` (4 or 6).
async fn client_version(
    version: &str,
    access: impl Into<Access>,
    dir: &Path,
    args: &[&str],
) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/toolkit/cache.js");
    let mut command = tokio::process::Command::new("node");
    command
        .arg(script)
        .args(args)
        .current_dir(dir)
        .env("NODE_PATH", node_modules::node_modules())
        .env("RUNNER_TEMP", dir.join(".temp"))
        .env("CACHE_CLIENT", version)
        .env_remove("ACTIONS_CACHE_SERVICE_V2");
    match access.into() {
        Access::V1(url) => {
            command
                .env("ACTIONS_CACHE_URL", url)
                // The forge's token, which the toolkit sends as its bearer; the cache ignores it.
                .env("ACTIONS_RUNTIME_TOKEN", "the-forges-runtime-token")
                // A forge, not github.com: the toolkit speaks v1 there.
                .env("GITHUB_SERVER_URL", "http://forge.example");
        }
        Access::V2 { results_url, token } => {
            command
                .env("ACTIONS_RESULTS_URL", results_url)
                .env("ACTIONS_RUNTIME_TOKEN", token)
                .env("ACTIONS_CACHE_SERVICE_V2", "true")
                .env("GITHUB_SERVER_URL", "https://github.com")
                .env_remove("ACTIONS_CACHE_URL");
        }
    }
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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Protocol {
    V1,
    V2,
}

impl Server {
    /// What a job with `grant` is given to reach the cache over `protocol`.
    fn access(&self, protocol: Protocol, grant: &Grant) -> Access {
        match protocol {
            Protocol::V1 => Access::V1(self.url(grant)),
            Protocol::V2 => self.v2(grant),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_toolkit_saves_and_restores_by_key_and_restore_key() {
    let server = Server::start().await;
    saves_and_restores("4", Protocol::V1, 40 << 20, &server, &server).await;
}

/// The newest client (an ES module), which still speaks v1 to a forge.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_newest_toolkit_saves_and_restores_too() {
    let server = Server::start().await;
    saves_and_restores("6", Protocol::V1, 40 << 20, &server, &server).await;
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
    saves_and_restores("4", Protocol::V1, 40 << 20, &one, &two).await;
    // And the other way round, with the newest client.
    let root = tempfile::tempdir().unwrap();
    let main = grant("acme/app", &["refs/heads/main"], Some("refs/heads/main"));
    let dir = workspace(root.path(), "back", 1 << 20);
    let saved = client_version(
        "6",
        two.access(Protocol::V1, &main),
        &dir,
        &["save", "back-1", "deps"],
    )
    .await;
    assert!(saved["saved"].as_i64().unwrap_or(-1) > 0, "{saved}");
    let restored = client_version(
        "6",
        one.access(Protocol::V1, &main),
        &dir,
        &["restore", "back-2", "back-", "deps"],
    )
    .await;
    assert_eq!(restored["restored"], "back-1", "{restored}");
}

/// Protocol v2, an archive under the Block Blob client's single-shot size (128 MiB): one Put
/// Blob.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_toolkit_saves_and_restores_over_v2() {
    let server = Server::start().await;
    saves_and_restores("4", Protocol::V2, 1 << 20, &server, &server).await;
}

/// The newest client over v2, with an archive past the single-shot size (which the toolkit
/// fixes at 128 MiB): three Put Blocks of 64 MiB and a Put Block List.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_newest_toolkit_saves_a_large_entry_in_blocks_over_v2() {
    let server = Server::start().await;
    saves_and_restores("6", Protocol::V2, 130 << 20, &server, &server).await;
}

/// Saves through `saving` over `protocol` (`size` bytes: v1's 40 MiB are two upload parts of
/// the toolkit's 32 MiB and ten ranged downloads of 4 MiB), restores through `restoring` (by
/// key and by restore key), which are one server unless their entries are shared.
async fn saves_and_restores(
    version: &str,
    protocol: Protocol,
    size: usize,
    saving: &Server,
    restoring: &Server,
) {
    let log = captured_log();
    let client = |access: Access, dir: PathBuf, args: Vec<&'static str>| async move {
        client_version(version, access, &dir, &args).await
    };
    let root = tempfile::tempdir().unwrap();
    let main = saving.access(
        protocol,
        &grant("acme/app", &["refs/heads/main"], Some("refs/heads/main")),
    );
    let saved_from = workspace(root.path(), "saved", size);
    let saved = client(
        main.clone(),
        saved_from.clone(),
        vec!["save", "deps-linux-1", "deps"],
    )
    .await;
    assert!(saved["saved"].as_i64().unwrap_or(-1) > 0, "{saved}");
    if protocol == Protocol::V2 {
        // The Block Blob client's way: whole up to 128 MiB, else in blocks.
        let log = String::from_utf8_lossy(&log.lock().unwrap()).into_owned();
        let way = if size > 128 << 20 {
            "PutBlockList"
        } else {
            "PutBlob"
        };
        assert!(
            log.contains(&format!("operation={way}")),
            "no {way} in {log}"
        );
    }
    // The same key again: entries never change.
    let again = client(
        main.clone(),
        saved_from.clone(),
        vec!["save", "deps-linux-1", "deps"],
    )
    .await;
    assert_eq!(again["saved"], -1, "{again}");
    let elsewhere = restoring.access(
        protocol,
        &grant("acme/app", &["refs/heads/main"], Some("refs/heads/main")),
    );
    let again_elsewhere = client(
        elsewhere,
        saved_from.clone(),
        vec!["save", "deps-linux-1", "deps"],
    )
    .await;
    assert_eq!(again_elsewhere["saved"], -1, "{again_elsewhere}");

    // A branch reads its own entries, then main's: a restore key finds main's entry.
    let feature = restoring.access(
        protocol,
        &grant(
            "acme/app",
            &["refs/heads/feature", "refs/heads/main"],
            Some("refs/heads/feature"),
        ),
    );
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
    entries_are_scoped(Protocol::V1, &Server::start().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_are_scoped_and_tokens_checked_on_s3() {
    let moto = common::Moto::start().await;
    let options = moto.bucket("scoped").await;
    let server = Server::start_s3(&options, Signer::random().unwrap()).await;
    entries_are_scoped(Protocol::V1, &server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_are_scoped_over_v2_too() {
    entries_are_scoped(Protocol::V2, &Server::start().await).await;
}

async fn entries_are_scoped(protocol: Protocol, server: &Server) {
    let root = tempfile::tempdir().unwrap();
    let dir = workspace(root.path(), "job", 1024);
    let main = server.access(
        protocol,
        &grant("acme/app", &["refs/heads/main"], Some("refs/heads/main")),
    );
    let saved = client(&main, &dir, &["save", "shared-key", "deps"]).await;
    assert!(saved["saved"].as_i64().unwrap_or(-1) > 0, "{saved}");

    // Another repository never sees it, even with the same ref.
    let other = server.access(
        protocol,
        &grant("acme/other", &["refs/heads/main"], Some("refs/heads/main")),
    );
    let restored = client(&other, &dir, &["restore", "shared-key", "-", "deps"]).await;
    assert_eq!(restored["restored"], Value::Null, "{restored}");

    // A pull request reads its base but writes only its own ref, which the base never reads:
    // it cannot poison the base's entries.
    let pull = server.access(
        protocol,
        &grant(
            "acme/app",
            &["refs/pull/7/merge", "refs/heads/main"],
            Some("refs/pull/7/merge"),
        ),
    );
    let from_base = client(&pull, &dir, &["restore", "shared-key", "-", "deps"]).await;
    assert_eq!(from_base["restored"], "shared-key", "{from_base}");
    let poisoned = client(&pull, &dir, &["save", "poison-key", "deps"]).await;
    assert!(poisoned["saved"].as_i64().unwrap_or(-1) > 0, "{poisoned}");
    let at_base = client(&main, &dir, &["restore", "poison-key", "poison-", "deps"]).await;
    assert_eq!(at_base["restored"], Value::Null, "{at_base}");
    let own = client(&pull, &dir, &["restore", "poison-key", "-", "deps"]).await;
    assert_eq!(own["restored"], "poison-key", "{own}");

    // A job that may only read (a fork's pull request) saves nothing.
    let fork = server.access(protocol, &grant("acme/app", &["refs/heads/main"], None));
    let refused = client(&fork, &dir, &["save", "fork-key", "deps"]).await;
    assert_eq!(refused["saved"], -1, "{refused}");

    if protocol == Protocol::V2 {
        return;
    }
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
    status_of(address, "GET", path, &[], "").await
}

/// The status of a request.
async fn status_of(
    address: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
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

/// What the server logs, for every test of this file (they share the process).
fn captured_log() -> Arc<std::sync::Mutex<Vec<u8>>> {
    static LOG: std::sync::OnceLock<Arc<std::sync::Mutex<Vec<u8>>>> = std::sync::OnceLock::new();
    LOG.get_or_init(|| {
        let log = Arc::new(std::sync::Mutex::new(Vec::new()));
        let writer = log.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(move || Captured(writer.clone()))
            .finish();
        let _ = tracing::subscriber::set_global_default(subscriber);
        log
    })
    .clone()
}

struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Over v2, the call is refused without a runtime token this server signed, valid, granting
/// the cache: missing, expired, forged, another server's, a v1 token, a token of a job without
/// the cache; and so is an upload link that is not signed. Each refusal is logged, no token is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_refuses_calls_without_a_valid_token_and_logs_no_token() {
    let log = captured_log();
    let server = Server::start().await;
    let address = server.running.address();
    let main = grant("acme/app", &["refs/heads/main"], Some("refs/heads/main"));
    let claims = |exp: u64, cache: Option<Grant>| RuntimeClaims::new("run-1", "job-1", exp, cache);
    let valid = server
        .signer
        .runtime_token(&claims(seconds_now() + 600, Some(main.clone())));
    let expired = server
        .signer
        .runtime_token(&claims(seconds_now() - 1, Some(main.clone())));
    let foreign = Signer::new(b"another server")
        .runtime_token(&claims(seconds_now() + 600, Some(main.clone())));
    let mut widened = claims(seconds_now() + 600, Some(main.clone()));
    if let Some(grant) = widened.cache.as_mut() {
        grant.repository = "acme/other".into();
    }
    let forged = {
        use base64::Engine as _;
        let mut parts: Vec<String> = valid.split('.').map(str::to_owned).collect();
        parts[1] = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(serde_json::to_vec(&widened).unwrap());
        parts.join(".")
    };
    let v1_token = server.signer.token(&main);
    let no_cache = server
        .signer
        .runtime_token(&claims(seconds_now() + 600, None));
    let lookup = "/twirp/github.actions.results.api.v1.CacheService/GetCacheEntryDownloadURL";
    let create = "/twirp/github.actions.results.api.v1.CacheService/CreateCacheEntry";
    let body = r#"{"key":"k","version":"v"}"#;
    let json = ("Content-Type", "application/json");
    for (path, token, status) in [
        (lookup, valid.as_str(), 200),
        (lookup, "", 401),
        (lookup, expired.as_str(), 401),
        (lookup, foreign.as_str(), 401),
        (lookup, forged.as_str(), 401),
        (create, forged.as_str(), 401),
        (lookup, v1_token.as_str(), 401),
        (create, no_cache.as_str(), 403),
    ] {
        let bearer = format!("Bearer {token}");
        let mut headers = vec![json];
        if !token.is_empty() {
            headers.push(("Authorization", bearer.as_str()));
        }
        assert_eq!(
            status_of(address, "POST", path, &headers, body).await,
            status,
            "{path} with {token:?}"
        );
    }
    // The toolkit itself with an expired token: nothing saved, nothing restored.
    let root = tempfile::tempdir().unwrap();
    let dir = workspace(root.path(), "job", 1024);
    let stale = Access::V2 {
        results_url: format!("http://{address}/"),
        token: expired.clone(),
    };
    let saved = client(&stale, &dir, &["save", "k", "deps"]).await;
    assert_eq!(saved["saved"], -1, "{saved}");
    let restored = client(&stale, &dir, &["restore", "k", "-", "deps"]).await;
    assert_eq!(restored["restored"], Value::Null, "{restored}");
    // Uploads need the link's signature, for that upload.
    let blob = ("x-ms-blob-type", "BlockBlob");
    let other_link = server
        .signer
        .key()
        .link_query("cache-upload:2", Duration::from_secs(60));
    for path in [
        "/_blob/cache/1".to_owned(),
        "/_blob/cache/1?expires=99999999999&sig=AAAA".to_owned(),
        format!("/_blob/cache/1?{other_link}"),
    ] {
        assert_eq!(
            status_of(address, "PUT", &path, &[blob], "data").await,
            403,
            "{path}"
        );
    }

    let log = String::from_utf8_lossy(&log.lock().unwrap()).into_owned();
    assert!(log.contains("cache request refused"), "{log}");
    for token in [&valid, &expired, &foreign, &forged, &v1_token, &no_cache] {
        // A token's signature (its last part) is what would give it away.
        let signature = token.rsplit('.').next().unwrap_or(token);
        assert!(!log.contains(signature), "a token in the log: {log}");
    }
}
