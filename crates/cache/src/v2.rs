//! Cache protocol v2, what `@actions/cache` (4 and later) speaks when `ACTIONS_CACHE_SERVICE_V2`
//! is set and `GITHUB_SERVER_URL` is GitHub's (or `*.ghe.com`, `*.localhost`): Twirp JSON calls
//! to `CacheService` at the root of `ACTIONS_RESULTS_URL`, under the job's runtime token (a JWT
//! carrying its grant: see `auth`), and the archive uploaded to the link the service hands out
//! through the Block Blob API (`hearth_blob::block`).
//!
//! - `CreateCacheEntry {key, version}`: an upload of the job's write scope is reserved;
//!   `{ok, signed_upload_url}` (`/_blob/cache/<id>?expires=..&sig=..`), `already_exists` when
//!   the key and version are there or on their way;
//! - the toolkit's `BlockBlobClient` puts the archive there (one Put Blob up to 128 MiB, else
//!   Put Block of 64 MiB each and Put Block List);
//! - `FinalizeCacheEntryUpload {key, version, size_bytes}`: the upload is committed;
//!   `{ok, entry_id}`;
//! - `GetCacheEntryDownloadURL {key, restore_keys, version}`: found as v1 finds entries (the
//!   same store, scopes and matching); `{ok, signed_download_url, matched_key}` with the same
//!   signed link v1 gives (a plain `GET`: the toolkit uses the Azure SDK to download only from
//!   Azure's hosts), or `{ok: false}`.
//!
//! A call without a valid token is refused `unauthenticated`, one its grant does not allow
//! `permission_denied`, both logged without the token.

use hearth_blob::twirp::{self, Code};
use hearth_blob::{base_url, block, query_value, Body};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde::Deserialize;
use serde_json::json;

use crate::auth::{AuthError, Grant};
use crate::server::{refused, store_error, App, API, LINK_VALIDITY};
use crate::store::StoreError;

/// The Twirp service.
pub const SERVICE: &str = "github.actions.results.api.v1.CacheService";
/// Where its calls go.
pub(crate) const PREFIX: &str = "/twirp/github.actions.results.api.v1.CacheService/";
/// Where uploads go: `/_blob/cache/<id>` (the Azure SDK reads `_blob` as the account on an IP
/// address, `cache` as the container, the id as the blob).
pub(crate) const UPLOADS: &str = "/_blob/cache/";

pub(crate) async fn handle(app: &App, request: Request<Incoming>) -> Response<Body> {
    let path = request.uri().path().to_owned();
    if let Some(id) = path.strip_prefix(UPLOADS) {
        let id = id.to_owned();
        return upload(app, request, &id).await;
    }
    let Some(method) = twirp::method(&request, SERVICE).map(str::to_owned) else {
        return twirp::error(Code::NotFound, "no such method");
    };
    let token = match twirp::bearer(&request) {
        Some(token) => token.to_owned(),
        None => {
            return denied(
                &method,
                Code::Unauthenticated,
                &AuthError::Missing.to_string(),
            )
        }
    };
    let claims = match app.signer.verify_runtime_token(&token) {
        Ok(claims) => claims,
        Err(e) => return denied(&method, Code::Unauthenticated, &e.to_string()),
    };
    let Some(grant) = claims.cache else {
        return denied(&method, Code::PermissionDenied, "the token grants no cache");
    };
    let base = base_url(&request);
    match method.as_str() {
        "CreateCacheEntry" => create(app, request, &grant, &base).await,
        "FinalizeCacheEntryUpload" => finalize(app, request, &grant, &token).await,
        "GetCacheEntryDownloadURL" => lookup(app, request, &grant, &token, &base).await,
        _ => twirp::error(Code::NotFound, "no such method"),
    }
}

/// Refuses a call, logging why (never the token).
fn denied(method: &str, code: Code, why: &str) -> Response<Body> {
    tracing::warn!(method, "cache request refused: {why}");
    twirp::error(code, why)
}

fn store_refusal(e: &StoreError) -> Response<Body> {
    let code = match e {
        StoreError::Exists { .. } => Code::AlreadyExists,
        StoreError::NoUpload(_) | StoreError::NoEntry(_) => Code::NotFound,
        StoreError::OtherScope(_) => Code::PermissionDenied,
        StoreError::TooLarge { .. }
        | StoreError::OutOfRange { .. }
        | StoreError::Incomplete { .. }
        | StoreError::BadKey => Code::InvalidArgument,
        StoreError::Io { .. } => {
            tracing::error!("cache store: {e}");
            Code::Internal
        }
    };
    twirp::error(code, &e.to_string())
}

#[derive(Deserialize)]
struct CreateRequest {
    key: String,
    version: String,
}

async fn create(
    app: &App,
    request: Request<Incoming>,
    grant: &Grant,
    base: &str,
) -> Response<Body> {
    let Some(scope) = grant.write_scope() else {
        return denied(
            "CreateCacheEntry",
            Code::PermissionDenied,
            crate::server::READ_ONLY,
        );
    };
    let wanted: CreateRequest = match twirp::read_json(request).await {
        Ok(wanted) => wanted,
        Err(answer) => return answer,
    };
    match app
        .store
        .reserve(&scope, &wanted.key, &wanted.version, None)
        .await
    {
        Ok(id) => {
            let query = app
                .signer
                .key()
                .link_query(&format!("cache-upload:{id}"), LINK_VALIDITY);
            twirp::ok(&json!({
                "ok": true,
                "signed_upload_url": format!("{base}{UPLOADS}{id}?{query}"),
            }))
        }
        Err(e) => store_refusal(&e),
    }
}

#[derive(Deserialize)]
struct FinalizeRequest {
    key: String,
    version: String,
    #[serde(deserialize_with = "twirp::int64")]
    size_bytes: i64,
}

async fn finalize(
    app: &App,
    request: Request<Incoming>,
    grant: &Grant,
    token: &str,
) -> Response<Body> {
    let Some(scope) = grant.write_scope() else {
        return denied(
            "FinalizeCacheEntryUpload",
            Code::PermissionDenied,
            crate::server::READ_ONLY,
        );
    };
    let wanted: FinalizeRequest = match twirp::read_json(request).await {
        Ok(wanted) => wanted,
        Err(answer) => return answer,
    };
    let Ok(size) = u64::try_from(wanted.size_bytes) else {
        return twirp::error(Code::InvalidArgument, "size_bytes is negative");
    };
    let Some(id) = app.store.pending(&scope, &wanted.key, &wanted.version) else {
        return twirp::error(
            Code::NotFound,
            "no upload of this key and version in progress",
        );
    };
    match app.store.commit(id, &scope, size).await {
        Ok(entry) => {
            app.record(token, |a| a.saved.push(entry.key.clone()));
            tracing::debug!(entry = entry.id, key = %entry.key, size = entry.size, "cache entry saved");
            twirp::ok(&json!({ "ok": true, "entry_id": entry.id.to_string() }))
        }
        Err(e) => {
            // An upload that cannot be committed is gone: the job may try again.
            if !matches!(e, StoreError::Exists { .. }) {
                app.store.abandon(id);
            }
            store_refusal(&e)
        }
    }
}

#[derive(Deserialize)]
struct LookupRequest {
    key: String,
    #[serde(default)]
    restore_keys: Vec<String>,
    version: String,
}

async fn lookup(
    app: &App,
    request: Request<Incoming>,
    grant: &Grant,
    token: &str,
    base: &str,
) -> Response<Body> {
    let wanted: LookupRequest = match twirp::read_json(request).await {
        Ok(wanted) => wanted,
        Err(answer) => return answer,
    };
    let keys: Vec<String> = std::iter::once(wanted.key.clone())
        .chain(wanted.restore_keys)
        .collect();
    let Some(found) = app
        .store
        .find(&grant.read_scopes(), &keys, &wanted.version)
        .await
    else {
        app.record(token, |a| a.misses.push(wanted.key.clone()));
        return twirp::ok(&json!({ "ok": false }));
    };
    app.record(token, |a| {
        a.hits.push((wanted.key.clone(), found.key.clone()))
    });
    let link = format!(
        "{base}/{API}artifacts/{}?{}",
        found.id,
        app.signer.download_query(found.id, LINK_VALIDITY)
    );
    twirp::ok(&json!({
        "ok": true,
        "signed_download_url": link,
        "matched_key": found.key,
    }))
}

/// A Block Blob request to the upload link of entry `id`.
async fn upload(app: &App, request: Request<Incoming>, id: &str) -> Response<Body> {
    let path = request.uri().path().to_owned();
    let Ok(id) = id.parse::<u64>() else {
        return block::error(StatusCode::NOT_FOUND, "BlobNotFound", "no such upload");
    };
    let (expires, sig) = (
        query_value(&request, "expires"),
        query_value(&request, "sig"),
    );
    if let Err(e) = app.signer.key().verify_link(
        &format!("cache-upload:{id}"),
        expires.as_deref(),
        sig.as_deref(),
    ) {
        // Logged by `refused`, answered as Azure answers.
        let _ = refused(StatusCode::FORBIDDEN, &e.to_string(), &path);
        return block::error(
            StatusCode::FORBIDDEN,
            "AuthenticationFailed",
            &e.to_string(),
        );
    }
    let operation = match block::operation(&request) {
        Ok(Some(operation)) => operation,
        Ok(None) => {
            return block::error(
                StatusCode::METHOD_NOT_ALLOWED,
                "UnsupportedHttpVerb",
                "uploads only",
            )
        }
        Err(e) => return e.response(),
    };
    tracing::debug!(upload = id, ?operation, "cache v2 upload");
    let upload = id.to_string();
    let limit = app.store.limit();
    match app
        .staging
        .apply(&upload, operation, request.into_body(), limit)
        .await
    {
        Ok(None) => block::created(),
        Ok(Some((file, size))) => match app.store.adopt(id, &file, size).await {
            Ok(()) => block::created(),
            Err(e) => {
                app.staging.discard(&upload, &file).await;
                let answer = store_error(&e);
                block::error(answer.status(), "InvalidInput", &e.to_string())
            }
        },
        Err(e) => e.response(),
    }
}
