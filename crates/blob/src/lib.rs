//! What the services a job reaches at `ACTIONS_RESULTS_URL` share: the cache's protocol v2
//! (`hearth-cache`) and the artifacts of `hearth exec` (`hearth-artifacts`) both answer Twirp
//! JSON calls (`twirp`), take uploads through the subset of Azure's Block Blob API the
//! toolkit's `BlockBlobClient` uses (`block`), hand out links signed with the server's key
//! (`links`) and serve files with ranges (`download`). One server holds them all at one
//! address: each is a [`Mounted`] handler, and `serve` runs them on one listener.

pub mod block;
pub mod download;
pub mod links;
pub mod serve;
pub mod twirp;

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};

/// The body of every response.
pub type Body = BoxBody<Bytes, std::io::Error>;

/// A boxed future of a response.
pub type Answer<'a> = Pin<Box<dyn Future<Output = Response<Body>> + Send + 'a>>;

/// A service that another's server carries at the same address: it takes the requests whose
/// path starts with one of its prefixes.
pub trait Mounted: Send + Sync {
    /// The path prefixes (starting with `/`) it answers.
    fn prefixes(&self) -> &[&'static str];
    /// Answers one request.
    fn handle(&self, request: Request<Incoming>) -> Answer<'_>;
}

/// A body of these bytes.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never: Infallible| match never {})
        .boxed()
}

/// A response with `status` and `body`.
pub fn respond(status: StatusCode, body: Body) -> Response<Body> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response
}

/// A JSON response.
pub fn json_response(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    let mut response = respond(status, full(value.to_string()));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// The query's value of `name`, percent-decoded.
pub fn query_value<B>(request: &Request<B>, name: &str) -> Option<String> {
    let query = request.uri().query()?;
    form_urlencoded::parse(query.as_bytes())
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

/// The base URL the client reached the server at (its `Host`), for links it follows: a job
/// in a container reaches the runner's loopback through its network's gateway, and must be
/// sent back there.
pub fn base_url<B>(request: &Request<B>) -> String {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    format!("http://{host}")
}
