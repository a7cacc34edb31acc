//! Twirp over JSON as the toolkit's generated clients call it: `POST /twirp/<service>/<method>`
//! with a JSON body whose fields have their proto names (`snake_case`), the job's runtime
//! token as `Authorization: Bearer`, and errors as `{"code": ..., "msg": ...}` with the HTTP
//! status Twirp gives each code. The toolkit retries 5xx (and 429) answers, and gives up at
//! once on the rest.

use hyper::body::Incoming;
use hyper::header;
use hyper::{Method, Request, Response, StatusCode};
use serde::de::DeserializeOwned;

use crate::{json_response, Body};

/// The part of a path after `/twirp/`.
const PREFIX: &str = "/twirp/";

/// The method a request calls on `service` (`github.actions.results.api.v1.CacheService`):
/// `Some(method)` for a `POST /twirp/<service>/<method>`.
pub fn method<'a, B>(request: &'a Request<B>, service: &str) -> Option<&'a str> {
    let rest = request.uri().path().strip_prefix(PREFIX)?;
    let method = rest.strip_prefix(service)?.strip_prefix('/')?;
    (request.method() == Method::POST && !method.is_empty() && !method.contains('/'))
        .then_some(method)
}

/// The bearer token of a request, if it has one.
pub fn bearer<B>(request: &Request<B>) -> Option<&str> {
    let value = request
        .headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Twirp's error codes that these services answer with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    InvalidArgument,
    Unauthenticated,
    PermissionDenied,
    NotFound,
    AlreadyExists,
    ResourceExhausted,
    FailedPrecondition,
    Unimplemented,
    Internal,
}

impl Code {
    fn name(self) -> &'static str {
        match self {
            Code::InvalidArgument => "invalid_argument",
            Code::Unauthenticated => "unauthenticated",
            Code::PermissionDenied => "permission_denied",
            Code::NotFound => "not_found",
            Code::AlreadyExists => "already_exists",
            Code::ResourceExhausted => "resource_exhausted",
            Code::FailedPrecondition => "failed_precondition",
            Code::Unimplemented => "unimplemented",
            Code::Internal => "internal",
        }
    }

    /// The HTTP status Twirp's specification gives the code.
    fn status(self) -> StatusCode {
        match self {
            Code::InvalidArgument => StatusCode::BAD_REQUEST,
            Code::Unauthenticated => StatusCode::UNAUTHORIZED,
            Code::PermissionDenied => StatusCode::FORBIDDEN,
            Code::NotFound => StatusCode::NOT_FOUND,
            Code::AlreadyExists => StatusCode::CONFLICT,
            Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
            Code::FailedPrecondition => StatusCode::PRECONDITION_FAILED,
            Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
            Code::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// A Twirp error.
pub fn error(code: Code, message: &str) -> Response<Body> {
    json_response(
        code.status(),
        &serde_json::json!({ "code": code.name(), "msg": message }),
    )
}

/// A successful answer.
pub fn ok(value: &serde_json::Value) -> Response<Body> {
    json_response(StatusCode::OK, value)
}

/// A request body as JSON, at most 64 KiB of it; a Twirp error when it is not.
#[allow(clippy::result_large_err)] // the error is the answer itself
pub async fn read_json<T: DeserializeOwned>(
    request: Request<Incoming>,
) -> Result<T, Response<Body>> {
    use http_body_util::BodyExt;
    let limited = http_body_util::Limited::new(request.into_body(), 64 * 1024);
    let bytes = limited
        .collect()
        .await
        .map_err(|e| {
            error(
                Code::InvalidArgument,
                &format!("cannot read the request: {e}"),
            )
        })?
        .to_bytes();
    serde_json::from_slice(&bytes).map_err(|e| {
        error(
            Code::InvalidArgument,
            &format!("the request is not valid JSON: {e}"),
        )
    })
}

/// An `int64` as proto3's JSON reads it: a number or a string of one.
pub fn int64<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Int64 {
        Number(i64),
        Text(String),
    }
    match <Int64 as serde::Deserialize>::deserialize(deserializer)? {
        Int64::Number(n) => Ok(n),
        Int64::Text(text) => text.parse().map_err(serde::de::Error::custom),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: Method, path: &str, authorization: Option<&str>) -> Request<()> {
        let mut builder = Request::builder().method(method).uri(path);
        if let Some(value) = authorization {
            builder = builder.header(header::AUTHORIZATION, value);
        }
        builder.body(()).unwrap()
    }

    #[test]
    fn calls_are_posts_to_a_services_method() {
        let service = "github.actions.results.api.v1.CacheService";
        for (verb, path, expected) in [
            (
                Method::POST,
                "/twirp/github.actions.results.api.v1.CacheService/CreateCacheEntry",
                Some("CreateCacheEntry"),
            ),
            (
                Method::GET,
                "/twirp/github.actions.results.api.v1.CacheService/CreateCacheEntry",
                None,
            ),
            (
                Method::POST,
                "/twirp/github.actions.results.api.v1.ArtifactService/CreateArtifact",
                None,
            ),
            (
                Method::POST,
                "/twirp/github.actions.results.api.v1.CacheService/",
                None,
            ),
            (
                Method::POST,
                "/twirp/github.actions.results.api.v1.CacheService/a/b",
                None,
            ),
        ] {
            assert_eq!(
                method(&request(verb.clone(), path, None), service),
                expected,
                "{path}"
            );
        }
    }

    #[test]
    fn the_bearer_is_the_token_after_the_scheme() {
        for (header, expected) in [
            (Some("Bearer abc.def.ghi"), Some("abc.def.ghi")),
            (Some("bearer  abc "), Some("abc")),
            (Some("Basic abc"), None),
            (Some("Bearer "), None),
            (None, None),
        ] {
            assert_eq!(
                bearer(&request(Method::POST, "/", header)),
                expected,
                "{header:?}"
            );
        }
    }
}
