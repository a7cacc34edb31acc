//! The HTTP/1.1 server of `/metrics`, `/healthz` and `/readyz`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::Metrics;

/// What Prometheus is told the exposition is.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The metrics address cannot be listened on.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on metrics.addr {address}: {source}")]
pub struct ServeError {
    pub address: String,
    #[source]
    pub source: std::io::Error,
}

/// The running server; stops when dropped.
pub struct Serving {
    address: SocketAddr,
    stop: watch::Sender<bool>,
}

impl Serving {
    /// Where it listens (the port chosen when the address gave 0).
    pub fn address(&self) -> SocketAddr {
        self.address
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// Listens on `address` (`host:port`) and answers from `metrics` until the [`Serving`] is
/// dropped.
pub async fn serve(address: &str, metrics: Arc<Metrics>) -> Result<Serving, ServeError> {
    let failed = |source| ServeError {
        address: address.to_owned(),
        source,
    };
    let listener = TcpListener::bind(address).await.map_err(failed)?;
    let bound = listener.local_addr().map_err(failed)?;
    let (stop, mut stopped) = watch::channel(false);
    tokio::spawn(async move {
        let mut connections = JoinSet::new();
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let Ok((stream, _)) = accepted else { continue };
                    let metrics = metrics.clone();
                    connections.spawn(async move {
                        let service = hyper::service::service_fn(move |request| {
                            let answer = answer(&metrics, &request);
                            async move { Ok::<_, Infallible>(answer) }
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
                _ = stopped.changed() => break,
            }
        }
        connections.abort_all();
    });
    tracing::info!(address = %bound, "metrics and health served on /metrics, /healthz, /readyz");
    Ok(Serving {
        address: bound,
        stop,
    })
}

fn answer<B>(metrics: &Metrics, request: &Request<B>) -> Response<Full<Bytes>> {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return text(
            StatusCode::METHOD_NOT_ALLOWED,
            "only GET\n".into(),
            "text/plain",
        );
    }
    match request.uri().path() {
        "/metrics" => text(StatusCode::OK, metrics.encode(), OPENMETRICS),
        "/healthz" => probe(metrics.health.live()),
        "/readyz" => probe(metrics.health.ready()),
        _ => text(
            StatusCode::NOT_FOUND,
            "not found: /metrics, /healthz or /readyz\n".into(),
            "text/plain",
        ),
    }
}

fn probe(result: crate::Probe) -> Response<Full<Bytes>> {
    match result {
        Ok(what) => text(StatusCode::OK, format!("{what}\n"), "text/plain"),
        Err(why) => text(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{why}\n"),
            "text/plain",
        ),
    }
}

fn text(status: StatusCode, body: String, content_type: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn get(address: SocketAddr, path: &str) -> String {
        let mut stream = tokio::net::TcpStream::connect(address)
            .await
            .expect("connect");
        let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.expect("write");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.expect("read");
        answer
    }

    #[tokio::test]
    async fn the_three_paths_answer_and_others_are_not_found() {
        let metrics = Arc::new(Metrics::new(None, Duration::from_secs(30)));
        let serving = serve("127.0.0.1:0", metrics.clone()).await.expect("serves");
        let address = serving.address();
        let scraped = get(address, "/metrics").await;
        assert!(scraped.starts_with("HTTP/1.1 200"), "{scraped}");
        assert!(scraped.contains("hearth_running_jobs 0"), "{scraped}");
        assert!(get(address, "/healthz").await.starts_with("HTTP/1.1 200"));
        let unready = get(address, "/readyz").await;
        assert!(unready.starts_with("HTTP/1.1 503"), "{unready}");
        assert!(unready.contains("not declared"), "{unready}");
        metrics.health.declared();
        assert!(get(address, "/readyz").await.starts_with("HTTP/1.1 200"));
        assert!(get(address, "/other").await.starts_with("HTTP/1.1 404"));
    }

    #[tokio::test]
    async fn an_address_in_use_is_a_clear_error() {
        let taken = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = taken.local_addr().expect("addr").to_string();
        let metrics = Arc::new(Metrics::new(None, Duration::from_secs(30)));
        let error = serve(&address, metrics).await.err().expect("refused");
        assert!(error.to_string().contains("metrics.addr"), "{error}");
    }
}
