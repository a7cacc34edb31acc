//! The forge's Git over HTTP, as Gitea and Forgejo serve it: smart HTTP (and the dumb files
//! too) through `git http-backend`, for the bare repositories under `Options::git_root`, at
//! `/{owner}/{repo}` and `/{owner}/{repo}.git` alike (a repository kept as `repo.git` on disk).
//! Every request's `Authorization` header is recorded, so a test can tell who sent a token.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{HeaderMap, Request, Response, StatusCode};
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

/// What the backend answers to a path that is a repository's, or `None` when the path names
/// no repository under `root`.
pub(crate) fn repository_path(root: &Path, path: &str) -> Option<String> {
    let mut parts = path.trim_start_matches('/').splitn(3, '/');
    let (owner, repo, rest) = (parts.next()?, parts.next()?, parts.next()?);
    let plain = |part: &str| !part.is_empty() && part != "." && part != "..";
    if !plain(owner) || !plain(repo) || rest.split('/').any(|p| !plain(p)) {
        return None;
    }
    let service = rest == "info/refs"
        || rest == "git-upload-pack"
        || rest == "HEAD"
        || rest.starts_with("objects/");
    if !service {
        return None;
    }
    let on_disk = if root.join(owner).join(repo).is_dir() {
        repo.to_owned()
    } else if root.join(owner).join(format!("{repo}.git")).is_dir() {
        format!("{repo}.git")
    } else {
        return None;
    };
    Some(format!("/{owner}/{on_disk}/{rest}"))
}

/// Answers one Git request with `git http-backend` run as CGI.
pub(crate) async fn answer(
    root: PathBuf,
    path_info: String,
    req: Request<Incoming>,
) -> Response<http_body_util::Full<Bytes>> {
    let method = req.method().to_string();
    let query = req.uri().query().unwrap_or_default().to_owned();
    let headers = req.headers().clone();
    let body = match req.into_body().collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return plain(StatusCode::BAD_REQUEST, "cannot read the request body\n"),
    };
    let header = |name: &str| header_text(&headers, name);
    let spawned = Command::new("git")
        .arg("http-backend")
        .env("GIT_PROJECT_ROOT", &root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("REQUEST_METHOD", &method)
        .env("PATH_INFO", &path_info)
        .env("QUERY_STRING", &query)
        .env("CONTENT_TYPE", header("content-type"))
        .env("CONTENT_LENGTH", body.len().to_string())
        .env("HTTP_CONTENT_ENCODING", header("content-encoding"))
        .env("GIT_PROTOCOL", header("git-protocol"))
        .env("REMOTE_ADDR", "127.0.0.1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn();
    let Ok(mut backend) = spawned else {
        return plain(
            StatusCode::INTERNAL_SERVER_ERROR,
            "cannot run git http-backend\n",
        );
    };
    if let Some(mut stdin) = backend.stdin.take() {
        let _ = stdin.write_all(&body).await;
    }
    let Ok(output) = backend.wait_with_output().await else {
        return plain(
            StatusCode::INTERNAL_SERVER_ERROR,
            "git http-backend failed\n",
        );
    };
    cgi_response(&output.stdout)
}

/// A header's value as text (empty when missing or not text).
pub(crate) fn header_text(headers: &HeaderMap, name: &str) -> String {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// The HTTP response for a CGI program's output: its headers (`Status:` as the status line),
/// a blank line, the body.
fn cgi_response(cgi: &[u8]) -> Response<http_body_util::Full<Bytes>> {
    let split = cgi
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|at| (at, 4))
        .or_else(|| cgi.windows(2).position(|w| w == b"\n\n").map(|at| (at, 2)));
    let Some((at, gap)) = split else {
        return plain(
            StatusCode::INTERNAL_SERVER_ERROR,
            "git http-backend said nothing\n",
        );
    };
    let mut response = Response::builder();
    let mut status = StatusCode::OK;
    for line in String::from_utf8_lossy(&cgi[..at]).lines() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("status") {
            let code = value.split_whitespace().next().unwrap_or_default();
            status = code.parse().unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        } else {
            response = response.header(name.trim(), value);
        }
    }
    let body = Bytes::copy_from_slice(&cgi[at + gap..]);
    response
        .status(status)
        .body(http_body_util::Full::new(body))
        .unwrap_or_else(|_| plain(StatusCode::INTERNAL_SERVER_ERROR, "bad CGI headers\n"))
}

fn plain(status: StatusCode, text: &'static str) -> Response<http_body_util::Full<Bytes>> {
    let mut response = Response::new(http_body_util::Full::new(Bytes::from_static(
        text.as_bytes(),
    )));
    *response.status_mut() = status;
    response
}
