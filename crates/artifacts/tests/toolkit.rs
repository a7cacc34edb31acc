//! The artifact service driven by GitHub's own client, `@actions/artifact` 2 from the npm
//! registry (installed by `scripts/npm-test-env`): one job uploads, another of the same run
//! lists and downloads, a job of another run sees nothing, bad tokens and links are refused.
//! Without node or the packages these tests fail, saying so.

#[path = "../../cache/tests/toolkit/node_modules.rs"]
mod node_modules;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hearth_artifacts::{Artifacts, RunTokens};
use hearth_blob::serve::Serving;
use hearth_cache::auth::{RuntimeClaims, Signer};
use serde_json::Value;

fn seconds_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Runtime tokens as `hearth exec` signs them.
struct Tokens(Signer);

impl RunTokens for Tokens {
    fn run_of(&self, token: &str) -> Result<String, String> {
        let claims = self
            .0
            .verify_runtime_token(token)
            .map_err(|e| e.to_string())?;
        claims
            .backend_ids()
            .map(|(run, _)| run.to_owned())
            .ok_or_else(|| "the token names no run".to_owned())
    }
}

struct Server {
    serving: Serving,
    signer: Signer,
    folder: tempfile::TempDir,
}

impl Server {
    async fn start() -> Server {
        let folder = tempfile::tempdir().unwrap();
        let signer = Signer::random().unwrap();
        let artifacts =
            Artifacts::open(folder.path(), 1 << 30, Arc::new(Tokens(signer.clone()))).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let serving = hearth_blob::serve::serve(listener, vec![Arc::new(artifacts)]).unwrap();
        Server {
            serving,
            signer,
            folder,
        }
    }

    fn token(&self, run: &str, job: &str) -> String {
        self.signer
            .runtime_token(&RuntimeClaims::new(run, job, seconds_now() + 600, None))
    }
}

/// Runs the toolkit script in `dir` with `token`; what it printed.
async fn client(server: &Server, token: &str, dir: &Path, args: &[&str]) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../cache/tests/toolkit/artifact.js");
    let output = tokio::process::Command::new("node")
        .arg(script)
        .args(args)
        .current_dir(dir)
        .env("NODE_PATH", node_modules::node_modules())
        .env(
            "ACTIONS_RESULTS_URL",
            format!("http://{}/", server.serving.address()),
        )
        .env("ACTIONS_RUNTIME_TOKEN", token)
        .env("GITHUB_SERVER_URL", "https://github.com")
        .env("GITHUB_WORKSPACE", dir)
        .output()
        .await
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}{stderr}");
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("{e}: {stdout}{stderr}"))
}

/// Bytes no compressor shrinks.
fn noise(size: usize) -> Vec<u8> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..size)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_uploads_lists_downloads_and_deletes_its_artifacts() {
    let server = Server::start().await;
    let work = tempfile::tempdir().unwrap();
    let made = work.path().join("made");
    std::fs::create_dir_all(made.join("sub")).unwrap();
    std::fs::write(made.join("report.txt"), "made by the first job\n").unwrap();
    // 20 MiB: three blocks of the toolkit's 8 MiB.
    let large = noise(20 << 20);
    std::fs::write(made.join("sub/data.bin"), &large).unwrap();
    let files = [
        made.join("report.txt").display().to_string(),
        made.join("sub/data.bin").display().to_string(),
    ];
    let first_job = server.token("run-1", "job-a");
    let mut args = vec!["upload", "build output", made.to_str().unwrap()];
    args.extend(files.iter().map(String::as_str));
    let uploaded = client(&server, &first_job, work.path(), &args).await;
    assert!(uploaded["id"].as_i64().unwrap_or(0) > 0, "{uploaded}");
    // Kept as the zip the toolkit made.
    let zip = server.folder.path().join("run-1/build output.zip");
    assert_eq!(
        std::fs::metadata(&zip).map(|m| m.len()).ok(),
        uploaded["size"].as_u64(),
        "{uploaded}"
    );
    // The same name again in the same run: refused, as GitHub does.
    let again = client(&server, &first_job, work.path(), &args).await;
    assert!(again["error"].is_string(), "{again}");

    // Another job of the run finds and downloads it.
    let second_job = server.token("run-1", "job-b");
    let listed = client(&server, &second_job, work.path(), &["list"]).await;
    assert_eq!(
        listed["names"],
        serde_json::json!(["build output"]),
        "{listed}"
    );
    let into = work.path().join("fetched");
    let downloaded = client(
        &server,
        &second_job,
        work.path(),
        &["download", "build output", into.to_str().unwrap()],
    )
    .await;
    assert_eq!(downloaded["id"], uploaded["id"], "{downloaded}");
    assert_eq!(downloaded["digestMismatch"], false, "{downloaded}");
    assert_eq!(
        std::fs::read_to_string(into.join("report.txt")).unwrap(),
        "made by the first job\n"
    );
    assert!(std::fs::read(into.join("sub/data.bin")).unwrap() == large);

    // Another run sees none of it.
    let other_run = server.token("run-2", "job-a");
    let listed = client(&server, &other_run, work.path(), &["list"]).await;
    assert_eq!(listed["names"], serde_json::json!([]), "{listed}");
    let missing = client(
        &server,
        &other_run,
        work.path(),
        &["download", "build output", into.to_str().unwrap()],
    )
    .await;
    assert!(missing["error"].is_string(), "{missing}");

    // Deleted: gone from the list and the folder.
    let deleted = client(
        &server,
        &second_job,
        work.path(),
        &["delete", "build output"],
    )
    .await;
    assert_eq!(deleted["deleted"], uploaded["id"], "{deleted}");
    let listed = client(&server, &first_job, work.path(), &["list"]).await;
    assert_eq!(listed["names"], serde_json::json!([]), "{listed}");
    assert!(!zip.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_without_a_token_of_the_run_and_unsigned_links_are_refused() {
    let server = Server::start().await;
    let address = server.serving.address();
    let valid = server.token("run-1", "job-a");
    let expired = server.signer.runtime_token(&RuntimeClaims::new(
        "run-1",
        "job-a",
        seconds_now() - 1,
        None,
    ));
    let foreign = Signer::new(b"another server").runtime_token(&RuntimeClaims::new(
        "run-1",
        "job-a",
        seconds_now() + 600,
        None,
    ));
    let list = "/twirp/github.actions.results.api.v1.ArtifactService/ListArtifacts";
    let body = r#"{"workflow_run_backend_id":"run-1","workflow_job_run_backend_id":"job-a"}"#;
    let other_run = r#"{"workflow_run_backend_id":"run-2","workflow_job_run_backend_id":"job-a"}"#;
    for (token, body, status) in [
        (valid.as_str(), body, 200),
        ("", body, 401),
        (expired.as_str(), body, 401),
        (foreign.as_str(), body, 401),
        (valid.as_str(), other_run, 403),
    ] {
        let bearer = format!("Bearer {token}");
        let mut headers = vec![("Content-Type", "application/json")];
        if !token.is_empty() {
            headers.push(("Authorization", bearer.as_str()));
        }
        assert_eq!(
            status_of(address, "POST", list, &headers, body).await,
            status,
            "{token:?}"
        );
    }
    for (method, path) in [
        ("GET", "/_blob/artifacts/1"),
        ("PUT", "/_blob/artifacts/1?expires=99999999999&sig=AAAA"),
    ] {
        let blob = ("x-ms-blob-type", "BlockBlob");
        assert_eq!(
            status_of(address, method, path, &[blob], "").await,
            403,
            "{path}"
        );
    }
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
