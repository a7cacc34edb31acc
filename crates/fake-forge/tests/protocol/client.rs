//! A minimal Connect client over reqwest: just enough to speak to the fake as a runner does.

use hearth_fake_forge::{FakeForge, Method};
use hearth_forge::proto::runner::{RegisterRequest, RegisterResponse, Runner};
use prost::Message;

/// A Connect error as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireError {
    pub http_status: u16,
    /// `code` of the JSON body; empty for a body that is not a Connect error.
    pub code: String,
    pub message: String,
}

pub struct Client {
    http: reqwest::Client,
    base: String,
    pub uuid: String,
    pub token: String,
}

#[derive(Debug)]
pub struct Reply<M> {
    pub message: M,
    pub headers: reqwest::header::HeaderMap,
    pub body_len: usize,
}

impl Client {
    pub fn new(forge: &FakeForge) -> Self {
        Client::over(reqwest::Client::new(), forge)
    }

    /// A client on `http`, for HTTPS tests that set up what it trusts.
    pub fn over(http: reqwest::Client, forge: &FakeForge) -> Self {
        Client {
            http,
            base: forge.url(),
            uuid: String::new(),
            token: String::new(),
        }
    }

    pub fn with_credentials(mut self, runner: &Runner) -> Self {
        self.uuid = runner.uuid.clone();
        self.token = runner.token.clone();
        self
    }

    /// Registers with `labels` and returns a client carrying the new runner's credentials.
    pub async fn registered(forge: &FakeForge, token: &str, labels: &[&str]) -> (Client, Runner) {
        let client = Client::new(forge);
        let runner = client
            .call::<_, RegisterResponse>(
                Method::Register,
                &RegisterRequest {
                    name: "test-runner".into(),
                    token: token.into(),
                    version: "v0.0.1".into(),
                    labels: labels.iter().map(|l| l.to_string()).collect(),
                    ..Default::default()
                },
            )
            .await
            .expect("register")
            .runner
            .expect("runner");
        (client.with_credentials(&runner), runner)
    }

    pub async fn call<Req: Message, Resp: Message + Default>(
        &self,
        method: Method,
        request: &Req,
    ) -> Result<Resp, WireError> {
        self.call_full(method, request).await.map(|r| r.message)
    }

    pub async fn call_full<Req: Message, Resp: Message + Default>(
        &self,
        method: Method,
        request: &Req,
    ) -> Result<Reply<Resp>, WireError> {
        self.post(method, "application/proto", request.encode_to_vec())
            .await
    }

    pub async fn post<Resp: Message + Default>(
        &self,
        method: Method,
        content_type: &str,
        body: Vec<u8>,
    ) -> Result<Reply<Resp>, WireError> {
        let mut req = self
            .http
            .post(format!("{}/api/actions/{}", self.base, method.procedure()))
            .header("content-type", content_type)
            .header("connect-protocol-version", "1")
            .body(body);
        if !self.uuid.is_empty() {
            req = req
                .header("x-runner-uuid", &self.uuid)
                .header("x-runner-token", &self.token);
        }
        let resp = req.send().await.map_err(|e| WireError {
            http_status: 0,
            code: "transport".into(),
            message: e.to_string(),
        })?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.map_err(|e| WireError {
            http_status: status,
            code: "transport".into(),
            message: e.to_string(),
        })?;
        if status != 200 {
            let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
            return Err(WireError {
                http_status: status,
                code: json["code"].as_str().unwrap_or_default().to_string(),
                message: json["message"].as_str().unwrap_or_default().to_string(),
            });
        }
        assert_eq!(
            headers.get("content-type").and_then(|v| v.to_str().ok()),
            Some("application/proto")
        );
        let message = Resp::decode(bytes.as_ref()).expect("decodable response");
        Ok(Reply {
            message,
            headers,
            body_len: bytes.len(),
        })
    }
}
