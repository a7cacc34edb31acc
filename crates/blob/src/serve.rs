//! The HTTP/1.1 server the services run in: each request goes to the first service one of
//! whose prefixes its path starts with.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use hyper::StatusCode;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::{json_response, Mounted};

/// A running server; stopped when dropped or by [`Serving::stop`].
pub struct Serving {
    address: SocketAddr,
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Serving {
    /// Where it listens.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Stops listening and ends the connections.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// Serves `services` on `listener`.
pub fn serve(listener: TcpListener, services: Vec<Arc<dyn Mounted>>) -> std::io::Result<Serving> {
    let address = listener.local_addr()?;
    let services: Arc<[Arc<dyn Mounted>]> = services.into();
    let (stop, mut stopped) = watch::channel(false);
    let task = tokio::spawn(async move {
        let mut connections = JoinSet::new();
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let Ok((stream, _)) = accepted else { continue };
                    let services = services.clone();
                    connections.spawn(async move {
                        let service = hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                            let services = services.clone();
                            async move {
                                let path = request.uri().path();
                                let found = services
                                    .iter()
                                    .find(|s| s.prefixes().iter().any(|p| path.starts_with(p)))
                                    .cloned();
                                Ok::<_, Infallible>(match found {
                                    Some(service) => service.handle(request).await,
                                    None => json_response(
                                        StatusCode::NOT_FOUND,
                                        &serde_json::json!({"message": "no such route"}),
                                    ),
                                })
                            }
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
    Ok(Serving {
        address,
        stop,
        task: Some(task),
    })
}
