//! A Connect unary client for the forge's `/api/actions` services.
//!
//! Every call is one `POST {address}/api/actions/<service>/<Method>` with the request message
//! as binary protobuf (no envelope, unlike gRPC), so it works over HTTP/1.1 and through any
//! reverse proxy; HTTP/2 is negotiated by ALPN on `https://`. Proxy variables (`HTTPS_PROXY`,
//! `HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY`, either case) are honoured as by the reference
//! runners: reqwest reads them when [`Client::new`] builds the client, so a change to them
//! needs a new client.

use std::path::PathBuf;
use std::time::Duration;

use prost::Message;
use reqwest::header::{HeaderMap, HeaderValue, CONTENT_TYPE};

use crate::error::{ClientError, Code, RpcError};
use crate::proto::ping::{PingRequest, PingResponse};
use crate::proto::runner::{
    DeclareRequest, DeclareResponse, FetchTaskRequest, FetchTaskResponse, RegisterRequest,
    RegisterResponse, UpdateLogRequest, UpdateLogResponse, UpdateTaskRequest, UpdateTaskResponse,
};
use crate::secret::Secret;
use crate::tls_error::{certificate_problem, find_certificate_error};

/// The response header in which new Gitea lists what it supports (`job-summary`).
const CAPABILITIES_HEADER: &str = "x-gitea-actions-capabilities";

/// How to reach the forge.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// The instance URL as the user gave it (`https://git.example.com/gitea`).
    pub address: String,
    /// Accept any certificate on `https://` (the forges' `insecure` switch).
    pub insecure: bool,
    /// Extra trusted certificates (PEM), on top of the system's.
    pub ca_file: Option<PathBuf>,
    /// The longest any call may take (the reference runners use 60 s).
    pub request_timeout: Duration,
    /// `hearth/<version>`, sent as the user agent and the deprecated `x-runner-version`.
    pub version: String,
}

/// The runner's identity for every call but `Register` and `Ping`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    pub uuid: String,
    pub token: Secret,
}

/// What `Declare` answered.
#[derive(Clone, Debug, Default)]
pub struct Declared {
    pub response: DeclareResponse,
    /// The forge's capabilities, from the `X-Gitea-Actions-Capabilities` header.
    pub capabilities: Vec<String>,
}

/// A client for one forge. Cloning shares the connection pool.
#[derive(Clone, Debug)]
pub struct Client {
    http: reqwest::Client,
    /// `{address}/api/actions`, without a trailing slash.
    base: String,
    credentials: Option<Credentials>,
    version: String,
}

impl Client {
    pub fn new(options: &ClientOptions) -> Result<Client, ClientError> {
        let address = options.address.trim_end_matches('/');
        if !(address.starts_with("http://") || address.starts_with("https://")) {
            return Err(ClientError::Address {
                address: options.address.clone(),
            });
        }
        let mut builder = reqwest::Client::builder()
            .user_agent(format!("hearth/{}", options.version))
            .timeout(options.request_timeout)
            .connect_timeout(options.request_timeout.min(Duration::from_secs(30)))
            .pool_max_idle_per_host(4)
            .danger_accept_invalid_certs(options.insecure);
        if let Some(path) = &options.ca_file {
            let pem = std::fs::read(path).map_err(|source| ClientError::CaFile {
                path: path.clone(),
                source,
            })?;
            let certificates = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                ClientError::CaCertificate {
                    path: path.clone(),
                    message: e.to_string(),
                }
            })?;
            if certificates.is_empty() {
                return Err(ClientError::CaCertificate {
                    path: path.clone(),
                    message: "no certificate found".into(),
                });
            }
            builder = builder.tls_certs_merge(certificates);
        } else if address.starts_with("http://") {
            // A plain-HTTP forge needs no certificate store, and a machine without one (a
            // minimal container image) must still reach it: loading the system's would fail.
            builder = builder.tls_certs_only(Vec::new());
        }
        let http = builder.build().map_err(|e| match &options.ca_file {
            // A PEM block rustls cannot parse is only found here, when the verifier takes
            // the CA file's certificates.
            Some(path) if find_certificate_error(&e).is_some() => ClientError::CaCertificate {
                path: path.clone(),
                message: error_chain(&e),
            },
            _ => ClientError::Http(error_chain(&e)),
        })?;
        Ok(Client {
            http,
            base: format!("{address}/api/actions"),
            credentials: None,
            version: options.version.clone(),
        })
    }

    /// This client, calling as the runner `credentials` identify.
    pub fn with_credentials(mut self, credentials: Credentials) -> Client {
        self.credentials = Some(credentials);
        self
    }

    pub async fn ping(&self, data: &str) -> Result<PingResponse, RpcError> {
        let request = PingRequest { data: data.into() };
        let (response, _) = self
            .call("ping.v1.PingService/Ping", &request, None)
            .await?;
        Ok(response)
    }

    /// [`ping`](Self::ping), with the forge's clock as its answer's `Date` header gives it
    /// (`None` when it sends none or one that is not an HTTP date): `hearth doctor` compares
    /// it with this machine's, since JWTs and signed URLs depend on both agreeing.
    pub async fn ping_dated(
        &self,
        data: &str,
    ) -> Result<(PingResponse, Option<std::time::SystemTime>), RpcError> {
        let request = PingRequest { data: data.into() };
        let (response, headers) = self
            .call("ping.v1.PingService/Ping", &request, None)
            .await?;
        let date = headers
            .get(reqwest::header::DATE)
            .and_then(|value| value.to_str().ok())
            .and_then(|text| httpdate::parse_http_date(text).ok());
        Ok((response, date))
    }

    pub async fn register(&self, request: &RegisterRequest) -> Result<RegisterResponse, RpcError> {
        let (response, _) = self
            .call("runner.v1.RunnerService/Register", request, None)
            .await?;
        Ok(response)
    }

    pub async fn declare(&self, request: &DeclareRequest) -> Result<Declared, RpcError> {
        let (response, headers) = self
            .call("runner.v1.RunnerService/Declare", request, None)
            .await?;
        let capabilities = headers
            .get(CAPABILITIES_HEADER)
            .and_then(|value| value.to_str().ok())
            .map(|value| {
                value
                    .split(',')
                    .map(str::trim)
                    .filter(|name| !name.is_empty())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default();
        Ok(Declared {
            response,
            capabilities,
        })
    }

    /// Asks for a task; `timeout` bounds this call (the config's `fetch_timeout`).
    ///
    /// `request_key` makes the call idempotent on Forgejo (`x-runner-request-key`): asked again
    /// with the same key after a lost answer, it hands back the task it already assigned
    /// instead of leaving it orphaned. Gitea ignores the header.
    pub async fn fetch_task(
        &self,
        request: &FetchTaskRequest,
        timeout: Duration,
        request_key: &str,
    ) -> Result<FetchTaskResponse, RpcError> {
        let headers = [("x-runner-request-key", request_key)];
        let (response, _) = self
            .call_with(
                "runner.v1.RunnerService/FetchTask",
                request,
                Some(timeout),
                &headers,
            )
            .await?;
        Ok(response)
    }

    pub async fn update_task(
        &self,
        request: &UpdateTaskRequest,
    ) -> Result<UpdateTaskResponse, RpcError> {
        let (response, _) = self
            .call("runner.v1.RunnerService/UpdateTask", request, None)
            .await?;
        Ok(response)
    }

    pub async fn update_log(
        &self,
        request: &UpdateLogRequest,
    ) -> Result<UpdateLogResponse, RpcError> {
        let (response, _) = self
            .call("runner.v1.RunnerService/UpdateLog", request, None)
            .await?;
        Ok(response)
    }

    /// One Connect unary call.
    async fn call<Request: Message, Response: Message + Default>(
        &self,
        procedure: &'static str,
        request: &Request,
        timeout: Option<Duration>,
    ) -> Result<(Response, HeaderMap), RpcError> {
        self.call_with(procedure, request, timeout, &[]).await
    }

    /// One Connect unary call with extra headers.
    async fn call_with<Request: Message, Response: Message + Default>(
        &self,
        procedure: &'static str,
        request: &Request,
        timeout: Option<Duration>,
        extra_headers: &[(&str, &str)],
    ) -> Result<(Response, HeaderMap), RpcError> {
        let transport = |code: Code, message: String| RpcError {
            procedure,
            wire_code: code,
            message,
            http_status: None,
        };
        let mut http = self
            .http
            .post(format!("{}/{procedure}", self.base))
            .header(CONTENT_TYPE, "application/proto")
            .header("connect-protocol-version", "1")
            .body(request.encode_to_vec());
        if let Some(timeout) = timeout {
            http = http
                .timeout(timeout)
                .header("connect-timeout-ms", timeout.as_millis().to_string());
        }
        for (name, value) in extra_headers {
            http = http.header(*name, header_value(value));
        }
        if let Some(credentials) = &self.credentials {
            http = http
                .header("x-runner-uuid", header_value(&credentials.uuid))
                .header(
                    "x-runner-token",
                    sensitive(header_value(credentials.token.expose())),
                )
                .header("x-runner-version", header_value(&self.version));
        }
        let response = http.send().await.map_err(|e| {
            let code = if e.is_timeout() {
                Code::DeadlineExceeded
            } else {
                Code::Unavailable
            };
            let mut message = error_chain(&e);
            if let Some(problem) = certificate_problem(&e) {
                message = format!("{message}: {problem}");
            }
            transport(code, message)
        })?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.bytes().await.map_err(|e| {
            let code = if e.is_timeout() {
                Code::DeadlineExceeded
            } else {
                Code::Unavailable
            };
            transport(code, error_chain(&e))
        })?;
        if !status.is_success() {
            return Err(error_from_response(procedure, status.as_u16(), &body));
        }
        let message = Response::decode(body.as_ref()).map_err(|e| RpcError {
            procedure,
            wire_code: Code::Internal,
            message: format!("the forge's answer is not a valid message: {e}"),
            http_status: Some(status.as_u16()),
        })?;
        Ok((message, headers))
    }
}

/// A header value; a credential with characters HTTP forbids is sent empty, and the forge
/// then answers that the runner is not registered (it cannot be, with such a token).
fn header_value(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// A header value that `Debug` (reqwest's and hyper's) never shows.
fn sensitive(mut value: HeaderValue) -> HeaderValue {
    value.set_sensitive(true);
    value
}

/// The Connect error in a non-200 answer, or what its HTTP status means when the body is not
/// one (a proxy's page, a path the forge does not route).
fn error_from_response(procedure: &'static str, status: u16, body: &[u8]) -> RpcError {
    #[derive(serde::Deserialize)]
    struct WireError {
        code: Option<String>,
        message: Option<String>,
    }
    let parsed = serde_json::from_slice::<WireError>(body).ok();
    let code = parsed
        .as_ref()
        .and_then(|e| e.code.as_deref())
        .and_then(Code::from_connect);
    let message = match parsed.and_then(|e| e.message) {
        Some(message) => message,
        None => {
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            let short: String = text.chars().take(200).collect();
            if short.is_empty() {
                format!("HTTP {status}")
            } else {
                format!("HTTP {status}: {short}")
            }
        }
    };
    RpcError {
        procedure,
        wire_code: code.unwrap_or_else(|| Code::from_http_status(status)),
        message,
        http_status: Some(status),
    }
}

/// An error with its causes (`error sending request: connection refused`).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    for cause in std::iter::successors(error.source(), |e| e.source()) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_runner_token() {
        let credentials = Credentials {
            uuid: "uuid-1".into(),
            token: "runner-token-5a1f".into(),
        };
        let client = Client::new(&ClientOptions {
            address: "http://127.0.0.1:1".into(),
            insecure: false,
            ca_file: None,
            request_timeout: Duration::from_secs(1),
            version: "test".into(),
        })
        .expect("client")
        .with_credentials(credentials.clone());
        for shown in [format!("{credentials:?}"), format!("{client:#?}")] {
            assert!(!shown.contains("runner-token-5a1f"), "{shown}");
            assert!(shown.contains("uuid-1"), "{shown}");
        }
    }

    #[test]
    fn connect_error_bodies_are_read() {
        let e = error_from_response(
            "runner.v1.RunnerService/FetchTask",
            500,
            br#"{"code":"unknown","message":"rpc error: code = Unauthenticated desc = unregistered runner"}"#,
        );
        assert_eq!(e.wire_code, Code::Unknown);
        assert!(e.is_unregistered());
        let e = error_from_response(
            "x",
            401,
            br#"{"code":"unauthenticated","message":"unregistered runner"}"#,
        );
        assert_eq!(e.wire_code, Code::Unauthenticated);
    }

    #[test]
    fn other_bodies_fall_back_to_the_status() {
        let e = error_from_response("x", 404, b"404 page not found\n");
        assert!(e.is_unimplemented());
        assert_eq!(e.message, "HTTP 404: 404 page not found");
        let e = error_from_response("x", 502, b"<html>Bad Gateway</html>");
        assert!(e.is_transient());
        let e = error_from_response("x", 503, b"");
        assert_eq!(e.message, "HTTP 503");
    }

    #[test]
    fn addresses_must_be_http() {
        let options = ClientOptions {
            address: "git.example.com".into(),
            insecure: false,
            ca_file: None,
            request_timeout: Duration::from_secs(1),
            version: "0".into(),
        };
        assert!(matches!(
            Client::new(&options),
            Err(ClientError::Address { .. })
        ));
        let options = ClientOptions {
            address: "https://git.example.com/sub/".into(),
            ..options
        };
        let client = Client::new(&options).expect("a valid address");
        assert_eq!(client.base, "https://git.example.com/sub/api/actions");
    }
}
