//! `hearth cache-server`, the cache alone for several runners: it takes tokens signed with the
//! key of `--secret-file` (a runner's `cache.secret`), and, killed in the middle of an upload
//! and started again, it never serves a partial entry while whole ones survive; on its disk
//! and with its entries in an S3 bucket (moto's server, from `scripts/s3-test-env`).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hearth_cache::auth::{Grant, Signer};

#[path = "../../cache/tests/common/mod.rs"]
mod s3;

const SECRET: &str = "a key shared by the runners and the server";

/// Where the server keeps its entries: its folder, or a bucket (`--s3-*` flags, and the
/// credentials in the environment).
#[derive(Clone, Default)]
struct Entries {
    s3_args: Vec<String>,
    s3_env: Vec<(String, String)>,
}

/// Starts the server on `dir`; the child and its address.
fn start(
    dir: &std::path::Path,
    secret_file: &std::path::Path,
    entries: &Entries,
) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(["cache-server", "-p", "0", "-d"])
        .arg(dir)
        .arg("--secret-file")
        .arg(secret_file)
        .args(&entries.s3_args)
        .envs(entries.s3_env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("hearth cache-server starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).expect("a line");
    let address = line
        .trim()
        .rsplit("http://")
        .next()
        .unwrap_or_default()
        .to_owned();
    assert!(!address.is_empty(), "{line}");
    (child, address)
}

/// One HTTP/1.1 exchange: the status and the body.
fn request(
    address: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, Vec<u8>) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).expect("connected");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    // A server may answer before it has read the body (a 404 for an upload it does not know)
    // and close: the rest of the body then cannot be written, and the answer is what counts.
    let sent = stream
        .write_all(head.as_bytes())
        .and_then(|()| stream.write_all(body));
    let mut answer = Vec::new();
    let read = stream.read_to_end(&mut answer);
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no answer to {method} {path}: sent {sent:?}, read {read:?}"));
    let head = String::from_utf8_lossy(&answer[..split]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, answer[split + 4..].to_vec())
}

fn json(body: &[u8]) -> serde_json::Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(body)))
}

#[test]
fn a_killed_server_serves_whole_entries_and_never_a_partial_one() {
    killed_server(&Entries::default());
}

/// The same with the entries in a bucket: the upload staged on the killed server's disk never
/// reaches the bucket, and a server started again (as another on the bucket would) finds the
/// whole entry only.
#[test]
fn a_killed_server_on_s3_serves_whole_entries_and_never_a_partial_one() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let moto = runtime.block_on(s3::Moto::start());
    let options = runtime.block_on(moto.bucket("fleet"));
    let entries = Entries {
        s3_args: vec![
            "--s3-bucket".into(),
            options.bucket.clone(),
            "--s3-endpoint".into(),
            options.endpoint.clone(),
            "--s3-prefix".into(),
            options.prefix.clone(),
            "--s3-path-style".into(),
        ],
        s3_env: vec![
            ("AWS_ACCESS_KEY_ID".into(), options.access_key_id.clone()),
            (
                "AWS_SECRET_ACCESS_KEY".into(),
                options.secret_access_key.clone(),
            ),
        ],
    };
    killed_server(&entries);
    drop(moto);
}

fn killed_server(entries: &Entries) {
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("secret");
    std::fs::write(&secret_file, SECRET).unwrap();
    let store = dir.path().join("store");
    let grant = Grant {
        repository: "acme/app".into(),
        read: vec!["refs/heads/main".into()],
        write: Some("refs/heads/main".into()),
        expires: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 600,
    };
    let token = Signer::new(SECRET.as_bytes()).token(&grant);
    let api = format!("/{token}/_apis/artifactcache");
    let json_header = [("Content-Type", "application/json")];

    let (mut server, address) = start(&store, &secret_file, entries);
    // A whole entry.
    let whole = vec![7u8; 1 << 20];
    let (status, body) = request(
        &address,
        "POST",
        &format!("{api}/caches"),
        &json_header,
        br#"{"key":"whole","version":"v","cacheSize":1048576}"#,
    );
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    let id = json(&body)["cacheId"].as_u64().unwrap();
    let range = format!("bytes 0-{}/*", whole.len() - 1);
    let (status, _) = request(
        &address,
        "PATCH",
        &format!("{api}/caches/{id}"),
        &[("Content-Range", range.as_str())],
        &whole,
    );
    assert_eq!(status, 204);
    let (status, _) = request(
        &address,
        "POST",
        &format!("{api}/caches/{id}"),
        &json_header,
        br#"{"size":1048576}"#,
    );
    assert_eq!(status, 204);
    // Half of another, then the server is killed.
    let (status, body) = request(
        &address,
        "POST",
        &format!("{api}/caches"),
        &json_header,
        br#"{"key":"half","version":"v","cacheSize":2097152}"#,
    );
    assert_eq!(status, 201);
    let half = json(&body)["cacheId"].as_u64().unwrap();
    let (status, _) = request(
        &address,
        "PATCH",
        &format!("{api}/caches/{half}"),
        &[("Content-Range", "bytes 0-1048575/*")],
        &whole,
    );
    assert_eq!(status, 204);
    server.kill().expect("killed");
    server.wait().expect("reaped");

    // On S3 the next server has a folder of its own, as on another machine: the whole entry
    // can only come from the bucket.
    let next = if entries.s3_args.is_empty() {
        store.clone()
    } else {
        dir.path().join("another-machine")
    };
    let (mut server, address) = start(&next, &secret_file, entries);
    let lookup = |key: &str| {
        request(
            &address,
            "GET",
            &format!("{api}/cache?keys={key}&version=v"),
            &[],
            b"",
        )
    };
    let (status, _) = lookup("half");
    assert_eq!(status, 204, "the partial entry is not served");
    let (status, _) = request(
        &address,
        "PATCH",
        &format!("{api}/caches/{half}"),
        &[("Content-Range", "bytes 1048576-2097151/*")],
        &whole,
    );
    assert_eq!(status, 404, "the upload did not survive the restart");
    let (status, body) = lookup("whole");
    assert_eq!(status, 200);
    let link = json(&body)["archiveLocation"].as_str().unwrap().to_owned();
    let path = link
        .split_once(&address)
        .map(|(_, p)| p.to_owned())
        .unwrap();
    let (status, bytes) = request(&address, "GET", &path, &[], b"");
    assert_eq!(status, 200);
    assert_eq!(bytes, whole);
    // The key can be saved anew.
    let (status, _) = request(
        &address,
        "POST",
        &format!("{api}/caches"),
        &json_header,
        br#"{"key":"half","version":"v","cacheSize":3}"#,
    );
    assert_eq!(status, 201);
    // A token signed with another key is refused.
    let foreign = Signer::new(b"not the shared key at all").token(&grant);
    let (status, _) = request(
        &address,
        "GET",
        &format!("/{foreign}/_apis/artifactcache/cache?keys=whole&version=v"),
        &[],
        b"",
    );
    assert_eq!(status, 403);
    let _ = server.kill();
    let _ = server.wait();
}

#[test]
fn a_short_or_missing_key_is_refused_saying_why() {
    let dir = tempfile::tempdir().unwrap();
    let short = dir.path().join("short");
    std::fs::write(&short, "tiny").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(["cache-server", "-d"])
        .arg(dir.path().join("store"))
        .arg("--secret-file")
        .arg(&short)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("at least 16 characters"), "{stderr}");
    let output = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(["cache-server", "--secret-file"])
        .arg(dir.path().join("missing"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("cannot read"));
}
