//! The cache over HTTP: GitHub's cache protocol v1 (`/_apis/artifactcache/…`, what
//! `actions/cache` speaks when `ACTIONS_CACHE_URL` is set), each request under the job's token
//! (`/<token>/_apis/artifactcache/…`), and downloads through signed links.
//!
//! v1, as the toolkit uses it:
//! - `GET cache?keys=k1,k2&version=V`: 200 with `{cacheKey, scope, creationTime,
//!   archiveLocation}` or 204 when nothing matches;
//! - `POST caches` `{key, version, cacheSize}`: 201 `{cacheId}`, 409 when the key exists or is
//!   being saved, 400 when it is larger than the cache;
//! - `PATCH caches/<id>` with `Content-Range: bytes a-b/*`: one part, 204; parts come in
//!   parallel and in any order;
//! - `POST caches/<id>` `{size}`: the entry is committed, 204;
//! - `GET`/`HEAD` on `archiveLocation`, with or without `Range`.
//!
//! A request without a valid token, or for a scope its token does not grant, is refused (401
//! or 403) and logged; tokens never appear in the log. Protocol v2 (`crate::v2`) is served at
//! the same address, and so are the services mounted beside it (`serve_with`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use hearth_blob::block::Staging;
use hearth_blob::serve::Serving;
use hearth_blob::{base_url, full, json_response, query_value, respond, Answer, Body, Mounted};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header;
use hyper::{Method, Request, Response, StatusCode};
use serde::Deserialize;
use serde_json::json;
use tokio::net::TcpListener;

use crate::auth::{AuthError, Grant, Signer};
use crate::store::{Store, StoreError};

/// How long a download or upload link stays valid.
pub(crate) const LINK_VALIDITY: Duration = Duration::from_secs(3600);
/// The API prefix after the token.
pub(crate) const API: &str = "_apis/artifactcache/";

/// What the server serves from.
pub(crate) struct App {
    pub(crate) store: Arc<Store>,
    pub(crate) signer: Signer,
    /// Where protocol v2's uploads are staged.
    pub(crate) staging: Staging,
    /// What each job (by its token) restored, missed and saved, until the runner takes it.
    activity: Mutex<HashMap<String, JobActivity>>,
}

/// How many jobs' activity is kept at most (the oldest go first): a runner takes its jobs'
/// when they end; jobs of runners that never ask (a shared server) must not grow it forever.
const MAX_ACTIVITY: usize = 4096;

/// What one job did with the cache, for the line its log gets.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JobActivity {
    /// Keys restored: the key asked for first, and the entry's key.
    pub hits: Vec<(String, String)>,
    /// The first key of each lookup that found nothing.
    pub misses: Vec<String>,
    /// Keys saved.
    pub saved: Vec<String>,
    /// When it was first recorded, to drop the oldest.
    first: u64,
}

impl JobActivity {
    /// Adds what `other` recorded (the same job over the other protocol).
    pub fn merge(&mut self, other: JobActivity) {
        self.hits.extend(other.hits);
        self.misses.extend(other.misses);
        self.saved.extend(other.saved);
    }

    /// One line for the job's log, or `None` when the job did not use the cache.
    pub fn summary(&self) -> Option<String> {
        if self.hits.is_empty() && self.misses.is_empty() && self.saved.is_empty() {
            return None;
        }
        let mut parts = Vec::new();
        for (asked, found) in &self.hits {
            if asked == found {
                parts.push(format!("hit {found}"));
            } else {
                parts.push(format!("hit {found} (for {asked})"));
            }
        }
        parts.extend(self.misses.iter().map(|key| format!("missed {key}")));
        parts.extend(self.saved.iter().map(|key| format!("saved {key}")));
        Some(format!("Cache: {}", parts.join("; ")))
    }
}

impl App {
    pub(crate) fn record(&self, token: &str, change: impl FnOnce(&mut JobActivity)) {
        let mut activity = self.activity.lock().unwrap_or_else(PoisonError::into_inner);
        if !activity.contains_key(token) && activity.len() >= MAX_ACTIVITY {
            if let Some(oldest) = activity
                .iter()
                .min_by_key(|(_, a)| a.first)
                .map(|(t, _)| t.clone())
            {
                activity.remove(&oldest);
            }
        }
        let entry = activity
            .entry(token.to_owned())
            .or_insert_with(|| JobActivity {
                first: std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as u64),
                ..JobActivity::default()
            });
        change(entry);
    }
}

/// A running server; stopped when dropped or by [`Running::stop`].
pub struct Running {
    app: Arc<App>,
    serving: Serving,
}

impl Running {
    /// Where it listens.
    pub fn address(&self) -> SocketAddr {
        self.serving.address()
    }

    /// What the job with `token` did with the cache so far, forgotten here.
    pub fn take_activity(&self, token: &str) -> Option<JobActivity> {
        self.app
            .activity
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(token)
    }

    /// Stops listening and ends the connections.
    pub async fn stop(self) {
        self.serving.stop().await;
    }
}

/// Serves `store` on `listener`, accepting the tokens `signer` signs.
pub fn serve(listener: TcpListener, store: Arc<Store>, signer: Signer) -> std::io::Result<Running> {
    serve_with(listener, store, signer, Vec::new())
}

/// The same, with other services answering at the same address the requests under their
/// prefixes (`ACTIONS_RESULTS_URL` holds cache v2 and `hearth exec`'s artifacts alike).
pub fn serve_with(
    listener: TcpListener,
    store: Arc<Store>,
    signer: Signer,
    mut services: Vec<Arc<dyn Mounted>>,
) -> std::io::Result<Running> {
    let staging = Staging::open(&store.staging_dir()).map_err(std::io::Error::other)?;
    let app = Arc::new(App {
        store,
        signer,
        staging,
        activity: Mutex::default(),
    });
    // The cache takes what the others do not.
    services.push(app.clone());
    let serving = hearth_blob::serve::serve(listener, services)?;
    Ok(Running { app, serving })
}

impl Mounted for App {
    fn prefixes(&self) -> &[&'static str] {
        &["/"]
    }

    fn handle(&self, request: Request<Incoming>) -> Answer<'_> {
        Box::pin(handle(self, request))
    }
}

pub(crate) fn error(status: StatusCode, message: &str) -> Response<Body> {
    json_response(status, &json!({ "message": message }))
}

/// Refuses a request, logging why; `shown` names the request without its token.
pub(crate) fn refused(status: StatusCode, why: &str, shown: &str) -> Response<Body> {
    tracing::warn!(request = %shown, "cache request refused: {why}");
    error(status, why)
}

/// What a job whose grant reads only (a pull request from a fork) is told when it writes.
pub(crate) const READ_ONLY: &str = "this job may only read the cache";

/// The refusal (logged) of a write by a job that may only read.
fn read_only(shown: &str) -> Response<Body> {
    refused(StatusCode::FORBIDDEN, READ_ONLY, shown)
}

/// A path without its first segment, the token, for the log.
fn without_token(path: &str) -> &str {
    path.trim_start_matches('/')
        .split_once('/')
        .map_or("", |(_, rest)| rest)
}

async fn handle(app: &App, request: Request<Incoming>) -> Response<Body> {
    let path = request.uri().path().to_owned();
    if path.starts_with(crate::v2::PREFIX) || path.starts_with(crate::v2::UPLOADS) {
        return crate::v2::handle(app, request).await;
    }
    let rest = path.trim_start_matches('/');
    // Downloads carry a signed link instead of a token.
    if let Some(id) = rest
        .strip_prefix(API)
        .and_then(|r| r.strip_prefix("artifacts/"))
    {
        return download(app, &request, id).await;
    }
    if rest.starts_with(API) {
        return refused(
            StatusCode::UNAUTHORIZED,
            &AuthError::Missing.to_string(),
            rest,
        );
    }
    let Some((token, route)) = rest.split_once('/') else {
        return error(StatusCode::NOT_FOUND, "no such route");
    };
    let Some(route) = route.strip_prefix(API) else {
        return error(StatusCode::NOT_FOUND, "no such route");
    };
    let grant = match app.signer.verify(token) {
        Ok(grant) => grant,
        Err(e) => {
            let status = if e == AuthError::Missing {
                StatusCode::UNAUTHORIZED
            } else {
                StatusCode::FORBIDDEN
            };
            return refused(status, &e.to_string(), without_token(&path));
        }
    };
    let route = route.trim_end_matches('/').to_owned();
    match (request.method().clone(), route.as_str()) {
        (Method::GET, "cache") => lookup(app, &request, &grant, token).await,
        (Method::POST, "caches") => reserve(app, request, &grant, without_token(&path)).await,
        (method, id) if id.starts_with("caches/") => {
            let Ok(id) = id["caches/".len()..].parse::<u64>() else {
                return error(StatusCode::BAD_REQUEST, "the cache id is not a number");
            };
            match method {
                Method::PATCH => upload(app, request, &grant, id, without_token(&path)).await,
                Method::POST => commit(app, request, &grant, id, token, without_token(&path)).await,
                _ => error(StatusCode::METHOD_NOT_ALLOWED, "not allowed"),
            }
        }
        _ => error(StatusCode::NOT_FOUND, "no such route"),
    }
}

async fn lookup(
    app: &App,
    request: &Request<Incoming>,
    grant: &Grant,
    token: &str,
) -> Response<Body> {
    let (Some(keys), Some(version)) = (
        query_value(request, "keys"),
        query_value(request, "version"),
    ) else {
        return error(StatusCode::BAD_REQUEST, "keys and version are required");
    };
    let keys: Vec<String> = keys
        .split(',')
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(str::to_owned)
        .collect();
    let asked = keys.first().cloned().unwrap_or_default();
    let Some(found) = app.store.find(&grant.read_scopes(), &keys, &version).await else {
        app.record(token, |a| a.misses.push(asked));
        return respond(StatusCode::NO_CONTENT, full(Bytes::new()));
    };
    app.record(token, |a| a.hits.push((asked, found.key.clone())));
    let link = format!(
        "{}/{API}artifacts/{}?{}",
        base_url(request),
        found.id,
        app.signer.download_query(found.id, LINK_VALIDITY)
    );
    json_response(
        StatusCode::OK,
        &json!({
            "cacheKey": found.key,
            "scope": found.scope.reference,
            "creationTime": httpdate::fmt_http_date(
                std::time::UNIX_EPOCH + Duration::from_millis(found.created)
            ),
            "archiveLocation": link,
        }),
    )
}

/// A request body as JSON, at most 64 KiB of it.
async fn read_json<T: for<'de> Deserialize<'de>>(request: Request<Incoming>) -> Result<T, String> {
    let limited = http_body_util::Limited::new(request.into_body(), 64 * 1024);
    let bytes = limited
        .collect()
        .await
        .map_err(|e| format!("cannot read the request: {e}"))?
        .to_bytes();
    serde_json::from_slice(&bytes).map_err(|e| format!("the request is not valid JSON: {e}"))
}

pub(crate) fn store_error(e: &StoreError) -> Response<Body> {
    let status = match e {
        StoreError::Exists { .. } => StatusCode::CONFLICT,
        StoreError::NoUpload(_) | StoreError::NoEntry(_) => StatusCode::NOT_FOUND,
        StoreError::OtherScope(_) => StatusCode::FORBIDDEN,
        StoreError::TooLarge { .. }
        | StoreError::OutOfRange { .. }
        | StoreError::Incomplete { .. }
        | StoreError::BadKey => StatusCode::BAD_REQUEST,
        StoreError::Io { .. } => {
            tracing::error!("cache store: {e}");
            StatusCode::INTERNAL_SERVER_ERROR
        }
    };
    error(status, &e.to_string())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReserveRequest {
    key: String,
    version: String,
    cache_size: Option<u64>,
}

async fn reserve(
    app: &App,
    request: Request<Incoming>,
    grant: &Grant,
    path: &str,
) -> Response<Body> {
    let Some(scope) = grant.write_scope() else {
        return read_only(path);
    };
    let wanted: ReserveRequest = match read_json(request).await {
        Ok(wanted) => wanted,
        Err(e) => return error(StatusCode::BAD_REQUEST, &e),
    };
    match app
        .store
        .reserve(&scope, &wanted.key, &wanted.version, wanted.cache_size)
        .await
    {
        Ok(id) => json_response(StatusCode::CREATED, &json!({ "cacheId": id })),
        Err(e) => store_error(&e),
    }
}

/// `bytes a-b/*` (or `/N`): the part's first and last byte.
fn content_range(request: &Request<Incoming>) -> Option<(u64, u64)> {
    let value = request
        .headers()
        .get(header::CONTENT_RANGE)?
        .to_str()
        .ok()?;
    let range = value.trim().strip_prefix("bytes ")?.split('/').next()?;
    let (start, end) = range.split_once('-')?;
    let (start, end) = (start.trim().parse().ok()?, end.trim().parse().ok()?);
    (start <= end).then_some((start, end))
}

async fn upload(
    app: &App,
    request: Request<Incoming>,
    grant: &Grant,
    id: u64,
    path: &str,
) -> Response<Body> {
    let Some(scope) = grant.write_scope() else {
        return read_only(path);
    };
    let Some((start, end)) = content_range(&request) else {
        return error(
            StatusCode::BAD_REQUEST,
            "a part needs a Content-Range of bytes a-b/*",
        );
    };
    let mut part = match app.store.part(id, &scope, start).await {
        Ok(part) => part,
        Err(e @ StoreError::OtherScope(_)) => {
            return refused(StatusCode::FORBIDDEN, &e.to_string(), path)
        }
        Err(e) => return store_error(&e),
    };
    let mut body = request.into_body();
    while let Some(frame) = body.frame().await {
        let frame = match frame {
            Ok(frame) => frame,
            Err(e) => return error(StatusCode::BAD_REQUEST, &format!("the part broke off: {e}")),
        };
        if let Some(data) = frame.data_ref() {
            if let Err(e) = part.write(data).await {
                return store_error(&e);
            }
        }
    }
    match part.finish().await {
        Ok(written) if written == end - start + 1 => {
            respond(StatusCode::NO_CONTENT, full(Bytes::new()))
        }
        // The bytes that came are kept; the commit says what is missing.
        Ok(written) => error(
            StatusCode::BAD_REQUEST,
            &format!(
                "the part has {written} bytes, its Content-Range says {}",
                end - start + 1
            ),
        ),
        Err(e) => store_error(&e),
    }
}

#[derive(Deserialize)]
struct CommitRequest {
    size: u64,
}

async fn commit(
    app: &App,
    request: Request<Incoming>,
    grant: &Grant,
    id: u64,
    token: &str,
    path: &str,
) -> Response<Body> {
    let Some(scope) = grant.write_scope() else {
        return read_only(path);
    };
    let wanted: CommitRequest = match read_json(request).await {
        Ok(wanted) => wanted,
        Err(e) => return error(StatusCode::BAD_REQUEST, &e),
    };
    match app.store.commit(id, &scope, wanted.size).await {
        Ok(entry) => {
            app.record(token, |a| a.saved.push(entry.key.clone()));
            tracing::debug!(entry = entry.id, key = %entry.key, size = entry.size, "cache entry saved");
            respond(StatusCode::NO_CONTENT, full(Bytes::new()))
        }
        Err(e @ StoreError::OtherScope(_)) => refused(StatusCode::FORBIDDEN, &e.to_string(), path),
        Err(e) => store_error(&e),
    }
}

async fn download(app: &App, request: &Request<Incoming>, id: &str) -> Response<Body> {
    let path = request.uri().path();
    let Ok(id) = id.trim_end_matches('/').parse::<u64>() else {
        return error(StatusCode::NOT_FOUND, "no such entry");
    };
    let (Some(expires), Some(sig)) = (query_value(request, "expires"), query_value(request, "sig"))
    else {
        return refused(StatusCode::UNAUTHORIZED, "the link is not signed", path);
    };
    if let Err(e) = app.signer.verify_download(id, &expires, &sig) {
        return refused(StatusCode::FORBIDDEN, &e.to_string(), path);
    }
    if !(request.method() == Method::HEAD || request.method() == Method::GET) {
        return error(StatusCode::METHOD_NOT_ALLOWED, "not allowed");
    }
    match app.store.open_entry(id).await {
        Ok((info, data)) => {
            hearth_blob::download::serve_ranges(request, info.size, |start, end| async move {
                data.stream(start, end)
                    .await
                    .map_err(|e| std::io::Error::other(e.to_string()))
            })
            .await
        }
        Err(e) => store_error(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::JobActivity;

    #[test]
    fn a_jobs_activity_is_one_line() {
        assert_eq!(JobActivity::default().summary(), None);
        let activity = JobActivity {
            hits: vec![
                ("deps-2".into(), "deps-1".into()),
                ("tools".into(), "tools".into()),
            ],
            misses: vec!["lint-9".into()],
            saved: vec!["deps-2".into()],
            first: 0,
        };
        assert_eq!(
            activity.summary().as_deref(),
            Some("Cache: hit deps-1 (for deps-2); hit tools; missed lint-9; saved deps-2")
        );
    }
}
