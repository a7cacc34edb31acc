//! The HTTP side: a 127.0.0.1 listener whose connections can all be cut at once (the forge
//! "going down"), plain HTTP/1.1 or HTTPS with HTTP/2 and HTTP/1.1, and the translation between
//! HTTP requests and RPC replies.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_ENCODING, CONTENT_TYPE};
use hyper::{Request, Response, StatusCode, Version};
use hyper_util::rt::TokioIo;
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::error::{Code, RpcError};
use crate::faults::{FaultTiming, Faults};
use crate::git_http;
use crate::method::Method;
use crate::rpc::{self, Credentials, Reply};
use crate::state::State;
use crate::stats::stats_json;
use crate::view::GitRequest;
use crate::view::HttpVersion;

/// Request bodies above this are refused (a 200,000-row UpdateLog is far below).
const MAX_BODY_BYTES: usize = 256 * 1024 * 1024;

/// What the server tasks share with the test-facing handle.
pub(crate) struct Shared {
    state: Mutex<State>,
    faults: Mutex<Faults>,
    /// Bumped after every change, so waiters wake without polling.
    changes: watch::Sender<u64>,
}

impl Shared {
    pub fn new(state: State) -> Self {
        Shared {
            state: Mutex::new(state),
            faults: Mutex::new(Faults::default()),
            changes: watch::Sender::new(0),
        }
    }

    /// The state; a panic elsewhere while holding it leaves data that is still usable.
    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn faults(&self) -> MutexGuard<'_, Faults> {
        self.faults.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn notify(&self) {
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }
}

/// A running listener and its connections.
pub(crate) struct Listening {
    cancel: CancellationToken,
    accept_loop: JoinHandle<()>,
}

impl Listening {
    /// Stops accepting and closes every open connection; returns when the port is free.
    pub async fn stop(self) {
        self.cancel.cancel();
        let _ = self.accept_loop.await;
    }

    /// The synchronous part of `stop`, for `Drop`.
    pub fn cancel(&self) {
        self.cancel.cancel();
    }
}

/// Listens on `addr`: plain HTTP/1.1, or HTTPS when `tls` is given.
pub(crate) async fn listen(
    shared: Arc<Shared>,
    addr: SocketAddr,
    tls: Option<TlsAcceptor>,
) -> io::Result<(SocketAddr, Listening)> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let cancel = CancellationToken::new();
    let accept_loop = tokio::spawn(accept_loop(listener, shared, tls, cancel.clone()));
    Ok((
        local,
        Listening {
            cancel,
            accept_loop,
        },
    ))
}

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    tls: Option<TlsAcceptor>,
    cancel: CancellationToken,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                connections.spawn(serve_connection(
                    stream,
                    shared.clone(),
                    tls.clone(),
                    cancel.clone(),
                ));
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    // Dropping the listener refuses new connections; aborting the connection tasks drops
    // their sockets, so clients see the connection close mid-request.
    drop(listener);
    connections.shutdown().await;
}

/// Serves one connection until the client closes it (or the listener stops and aborts this
/// task). The TLS handshake happens here, not in the accept loop, so a slow client holds up
/// no one else.
async fn serve_connection(
    stream: TcpStream,
    shared: Arc<Shared>,
    tls: Option<TlsAcceptor>,
    cancel: CancellationToken,
) {
    let service = hyper::service::service_fn(move |req| handle(shared.clone(), req));
    match tls {
        None => {
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        }
        Some(acceptor) => {
            // A failed handshake (say, a client that does not trust the certificate) leaves
            // nothing to serve; the client has its own error.
            let Ok(stream) = acceptor.accept(stream).await else {
                return;
            };
            // The auto builder serves HTTP/2 when the client starts with its preface (which
            // it does after ALPN chose `h2`) and HTTP/1.1 otherwise.
            let _ = auto::Builder::new(StreamExecutor { cancel })
                .serve_connection(TokioIo::new(stream), service)
                .await;
        }
    }
}

/// Runs the tasks hyper spawns for HTTP/2 streams (each request's handler) so that they end
/// when the listener stops. An HTTP/1.1 request runs inside its connection's task and is
/// aborted with it; without this an HTTP/2 request could still change the state after the
/// forge "went down".
#[derive(Clone)]
struct StreamExecutor {
    cancel: CancellationToken,
}

impl<F> hyper::rt::Executor<F> for StreamExecutor
where
    F: Future<Output = ()> + Send + 'static,
{
    fn execute(&self, stream: F) {
        let cancel = self.cancel.clone();
        tokio::spawn(async move {
            cancel.run_until_cancelled(stream).await;
        });
    }
}

async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(respond(&shared, req).await)
}

async fn respond(shared: &Shared, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path();
    if path == "/_fake/stats" && req.method() == hyper::Method::GET {
        let stats = stats_json(&shared.state());
        return response(StatusCode::OK, "application/json", stats.to_string().into());
    }
    // Git over HTTP, for the repositories the test gave (`Options::git_root`).
    let root = shared.state().git_root.clone();
    if let Some((root, path_info)) =
        root.and_then(|root| git_http::repository_path(&root, path).map(|p| (root, p)))
    {
        let authorization = req
            .headers()
            .get(hyper::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        shared.state().git_requests.push(GitRequest {
            path: path.to_owned(),
            authorization,
        });
        return git_http::answer(root, path_info, req).await;
    }
    // Anything the forge does not route is Go's plain 404 (clients read it as unimplemented).
    let Some(method) = path
        .strip_prefix("/api/actions/")
        .and_then(Method::from_procedure)
    else {
        return not_found();
    };
    if req.method() != hyper::Method::POST {
        let mut resp = response(StatusCode::METHOD_NOT_ALLOWED, "text/plain", Bytes::new());
        resp.headers_mut()
            .insert("allow", HeaderValue::from_static("POST"));
        return resp;
    }

    shared
        .state()
        .record_request(method, http_version(req.version()));
    shared.notify();
    let (fault, delay) = {
        let mut faults = shared.faults();
        (faults.take(method), faults.delay(method))
    };
    let reply = match fault {
        Some(f) if f.timing == FaultTiming::BeforeHandling => None,
        _ => Some(call(shared, method, req).await),
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    match (fault, reply) {
        (Some(f), _) => injected_failure(f.http_status),
        (None, Some(reply)) => reply,
        (None, None) => injected_failure(500),
    }
}

/// Checks the Connect framing, then runs the RPC under the state lock.
async fn call(shared: &Shared, method: Method, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let flavour = shared.state().flavour;
    let headers = req.headers();
    // Only the binary codec is implemented; connect-go answers a codec it lacks with a bare
    // 415 (the real forges would also take application/json).
    if !is_proto(headers.get(CONTENT_TYPE)) {
        let mut resp = response(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "text/plain",
            Bytes::new(),
        );
        resp.headers_mut()
            .insert("accept-post", HeaderValue::from_static("application/proto"));
        return resp;
    }
    let encoding = headers
        .get(CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("identity");
    if !encoding.eq_ignore_ascii_case("identity") {
        let err = RpcError::connect(
            Code::Unimplemented,
            format!("unknown compression {encoding:?}: supported encodings are identity"),
        );
        return error_response(&err, flavour);
    }
    let uuid = header_str(headers, "x-runner-uuid");
    let token = header_str(headers, "x-runner-token");
    let body = match Limited::new(req.into_body(), MAX_BODY_BYTES)
        .collect()
        .await
    {
        Ok(collected) => collected.to_bytes(),
        Err(e) => {
            let err = RpcError::connect(Code::InvalidArgument, format!("read body: {e}"));
            return error_response(&err, flavour);
        }
    };
    let reply = {
        let mut state = shared.state();
        rpc::dispatch(
            &mut state,
            method,
            Credentials {
                uuid: &uuid,
                token: &token,
            },
            &body,
        )
    };
    shared.notify();
    match reply {
        Reply::Message { body, headers } => {
            let mut resp = response(StatusCode::OK, "application/proto", body.into());
            for (name, value) in headers {
                if let Ok(value) = HeaderValue::from_str(&value) {
                    resp.headers_mut().insert(name, value);
                }
            }
            resp
        }
        Reply::Error(err) => error_response(&err, flavour),
        Reply::NotRouted => not_found(),
    }
}

fn http_version(version: Version) -> HttpVersion {
    match version {
        Version::HTTP_2 => HttpVersion::Http2,
        Version::HTTP_10 => HttpVersion::Http10,
        // hyper's server parses nothing else: HTTP/0.9 is refused, HTTP/3 not served.
        _ => HttpVersion::Http11,
    }
}

fn is_proto(content_type: Option<&HeaderValue>) -> bool {
    let Some(value) = content_type.and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let media_type = value.split(';').next().unwrap_or("").trim();
    media_type.eq_ignore_ascii_case("application/proto")
}

fn header_str(headers: &hyper::HeaderMap, name: &str) -> String {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

fn error_response(err: &RpcError, flavour: crate::options::Flavour) -> Response<Full<Bytes>> {
    let (status, body) = err.body(flavour);
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response(status, "application/json", body.into())
}

/// The file of a bare repository under `root` that `path` (`/OWNER/NAME.git/...`) names, for
/// Git's dumb HTTP protocol; `None` for other paths and for any that would leave `root`.
fn not_found() -> Response<Full<Bytes>> {
    response(
        StatusCode::NOT_FOUND,
        "text/plain; charset=utf-8",
        Bytes::from_static(b"404 page not found\n"),
    )
}

fn injected_failure(status: u16) -> Response<Full<Bytes>> {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let text = format!("{status} (injected by fake-forge)\n");
    response(status, "text/plain; charset=utf-8", text.into())
}

fn response(status: StatusCode, content_type: &'static str, body: Bytes) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(body));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}
