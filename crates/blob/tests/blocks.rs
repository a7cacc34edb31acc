//! The Block Blob subset over HTTP, as a service would run it: blocks put in any order make the
//! blob in the order the list gives; a list naming a block never put, a blob past the limit and
//! what is no block blob are refused as Azure refuses them.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hearth_blob::block::{self, Staging};
use hearth_blob::{Answer, Mounted};
use hyper::body::Incoming;
use hyper::Request;

/// Stages uploads under `/up/<name>` and keeps each whole blob's bytes.
struct Uploads {
    staging: Staging,
    made: Mutex<Vec<(String, Vec<u8>)>>,
}

impl Mounted for Uploads {
    fn prefixes(&self) -> &[&'static str] {
        &["/up/"]
    }

    fn handle(&self, request: Request<Incoming>) -> Answer<'_> {
        Box::pin(async move {
            let name = request.uri().path().trim_start_matches("/up/").to_owned();
            let operation = match block::operation(&request) {
                Ok(Some(operation)) => operation,
                Ok(None) => {
                    return block::error(
                        hyper::StatusCode::METHOD_NOT_ALLOWED,
                        "UnsupportedHttpVerb",
                        "",
                    )
                }
                Err(e) => return e.response(),
            };
            match self
                .staging
                .apply(&name, operation, request.into_body(), 16)
                .await
            {
                Ok(None) => block::created(),
                Ok(Some((file, _))) => {
                    let bytes = std::fs::read(&file).unwrap();
                    std::fs::remove_file(&file).unwrap();
                    self.made.lock().unwrap().push((name, bytes));
                    block::created()
                }
                Err(e) => e.response(),
            }
        })
    }
}

/// `PUT path` with `headers` and `body`: the status and the `x-ms-error-code`, if any.
async fn put(
    address: std::net::SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, Option<String>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let mut request = format!(
        "PUT {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\nContent-Length: {}\r\n",
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
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not HTTP: {answer}"));
    let code = answer
        .lines()
        .find_map(|l| l.strip_prefix("x-ms-error-code: "))
        .map(|c| c.trim().to_owned());
    (status, code)
}

/// A request and what must come back: path, headers, body, status, error code.
type Case = (
    String,
    Vec<(&'static str, &'static str)>,
    String,
    u16,
    Option<&'static str>,
);

fn list(ids: &[&str]) -> String {
    let items: String = ids
        .iter()
        .map(|id| format!("<Latest>{id}</Latest>"))
        .collect();
    format!("<?xml version=\"1.0\" encoding=\"utf-8\"?><BlockList>{items}</BlockList>")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocks_make_the_blob_in_the_lists_order_and_bad_uploads_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let uploads = Arc::new(Uploads {
        staging: Staging::open(&dir.path().join("staging")).unwrap(),
        made: Mutex::default(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let serving = hearth_blob::serve::serve(listener, vec![uploads.clone()]).unwrap();
    let address = serving.address();
    let blob = ("x-ms-blob-type", "BlockBlob");

    let cases: Vec<Case> = vec![
        // Blocks in any order (ids with `/` and `+` as base64 has), the list decides.
        (
            "/up/a?comp=block&blockid=Yi8r".into(),
            vec![],
            "second-".into(),
            201,
            None,
        ),
        (
            "/up/a?comp=block&blockid=YQ%3D%3D".into(),
            vec![],
            "first-".into(),
            201,
            None,
        ),
        (
            "/up/a?comp=blocklist".into(),
            vec![],
            list(&["YQ==", "Yi8r"]),
            201,
            None,
        ),
        // A whole blob in one request.
        ("/up/b".into(), vec![blob], "whole".into(), 201, None),
        // A list naming a block never put.
        (
            "/up/c?comp=block&blockid=eA%3D%3D".into(),
            vec![],
            "x".into(),
            201,
            None,
        ),
        (
            "/up/c?comp=blocklist".into(),
            vec![],
            list(&["eA==", "eQ=="]),
            400,
            Some("InvalidBlockList"),
        ),
        // Past the limit (16 bytes), in one request or in blocks.
        (
            "/up/d".into(),
            vec![blob],
            "x".repeat(17),
            413,
            Some("RequestBodyTooLarge"),
        ),
        (
            "/up/e?comp=block&blockid=MQ%3D%3D".into(),
            vec![],
            "x".repeat(10),
            201,
            None,
        ),
        (
            "/up/e?comp=block&blockid=Mg%3D%3D".into(),
            vec![],
            "x".repeat(10),
            201,
            None,
        ),
        (
            "/up/e?comp=blocklist".into(),
            vec![],
            list(&["MQ==", "Mg=="]),
            413,
            Some("RequestBodyTooLarge"),
        ),
        // No block blob, no such operation, no name.
        (
            "/up/f".into(),
            vec![("x-ms-blob-type", "AppendBlob")],
            "x".into(),
            400,
            Some("InvalidInput"),
        ),
        (
            "/up/f?comp=appendblock".into(),
            vec![],
            "x".into(),
            400,
            Some("InvalidInput"),
        ),
        (
            "/up/..%2Fx".into(),
            vec![blob],
            "x".into(),
            400,
            Some("InvalidInput"),
        ),
        (
            "/up/g?comp=blocklist".into(),
            vec![],
            "<BlockList><Latest>".into(),
            400,
            Some("InvalidInput"),
        ),
    ];
    for (path, headers, body, status, code) in cases {
        let (got, got_code) = put(address, &path, &headers, &body).await;
        assert_eq!((got, got_code.as_deref()), (status, code), "{path}");
    }
    let made = uploads.made.lock().unwrap().clone();
    assert_eq!(
        made,
        [
            ("a".to_owned(), b"first-second-".to_vec()),
            ("b".to_owned(), b"whole".to_vec()),
        ]
    );
    // Nothing is left staged but the refused uploads' blocks (removed once an hour old).
    let left: Vec<PathBuf> = std::fs::read_dir(dir.path().join("staging"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(
        left.iter()
            .all(|p| p.extension().is_some_and(|e| e == "blocks")),
        "{left:?}"
    );
}
