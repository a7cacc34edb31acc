//! What the cache's tests share: an S3-compatible server of their own (moto's server mode,
//! installed by `scripts/s3-test-env`), started on the loopback at a free port and stopped when
//! dropped. Without it the S3 tests fail, saying so.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hearth_cache::S3Options;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// moto's server program: `HEARTH_MOTO_SERVER`, or what `scripts/s3-test-env` installs.
fn moto_program() -> PathBuf {
    if let Some(program) = std::env::var_os("HEARTH_MOTO_SERVER").filter(|p| !p.is_empty()) {
        return PathBuf::from(program);
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/s3-test-env");
    let output = Command::new(&script)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    assert!(
        output.status.success(),
        "the S3 tests need moto's server ({} failed): {}",
        script.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    PathBuf::from(stdout.lines().last().unwrap_or_default().trim())
}

/// A moto server on 127.0.0.1, stopped when dropped.
pub struct Moto {
    child: Child,
    pub address: std::net::SocketAddr,
}

impl Moto {
    /// Starts one at a free port and waits until it answers.
    pub async fn start() -> Moto {
        let program = moto_program();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(&program)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
        let moto = Moto {
            child,
            address: ([127, 0, 0, 1], port).into(),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if request(moto.address, "GET", "/").await.is_some() {
                return moto;
            }
            assert!(
                Instant::now() < deadline,
                "moto ({}) did not answer on {} within a minute",
                program.display(),
                moto.address
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Makes the bucket `name`; the options that reach it (path-style, any credentials).
    pub async fn bucket(&self, name: &str) -> S3Options {
        let status = request(self.address, "PUT", &format!("/{name}"))
            .await
            .expect("moto answers");
        assert_eq!(status, 200, "cannot make the bucket {name}");
        S3Options {
            endpoint: format!("http://{}", self.address),
            bucket: name.to_owned(),
            region: "us-east-1".into(),
            prefix: "hearth/cache".into(),
            access_key_id: "hearth-test".into(),
            secret_access_key: "hearth-test-secret".into(),
            path_style: true,
            ..S3Options::default()
        }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The status of a bodiless `method path` to `address`, or `None` when nothing answers.
async fn request(address: std::net::SocketAddr, method: &str, path: &str) -> Option<u16> {
    let mut stream = tokio::net::TcpStream::connect(address).await.ok()?;
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
        .await
        .ok()?
        .ok()?;
    String::from_utf8_lossy(&answer)
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}
