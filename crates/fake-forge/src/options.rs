//! How a fake forge is set up when it starts.

use std::str::FromStr;

/// Which forge the fake imitates where Gitea and Forgejo differ on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Flavour {
    /// Errors arrive as Connect `unknown`/500 with gRPC-style or plain messages (spec §1.5).
    #[default]
    Gitea,
    /// Real Connect codes (`unauthenticated` 401, `invalid_argument`, `already_exists` ...),
    /// and the `FORGEJO_TOKEN` secret.
    Forgejo,
}

impl FromStr for Flavour {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "gitea" => Ok(Flavour::Gitea),
            "forgejo" => Ok(Flavour::Forgejo),
            other => Err(format!("unknown flavour {other:?} (gitea or forgejo)")),
        }
    }
}

/// Which UpdateLog rules the server follows (spec §3.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogRules {
    /// Gitea ≤ 1.26.1 and Forgejo: a request without new rows never archives, even with
    /// `no_more`; any write-capable request after archiving is `already_exists`.
    #[default]
    Gitea1261,
    /// Gitea ≥ 1.26.2: `no_more` without new rows finalizes when `index <= ack`; a repeated
    /// finalize after archiving is acknowledged; only new rows past the seal fail.
    Gitea1262,
}

/// How the fake serves HTTPS (see [`Options::tls`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tls {
    /// A self-signed certificate for `127.0.0.1` and `localhost`, made when the forge starts;
    /// trust it through [`crate::FakeForge::certificate_pem`].
    SelfSigned,
    /// The test's own certificate chain (leaf first) and private key, both PEM, for tests that
    /// play a private CA.
    Pem {
        certificate_chain: String,
        private_key: String,
    },
}

/// Settings for [`crate::FakeForge::start`]. `Options::default()` is a Gitea ≥ 1.21 (≤ 1.26.1)
/// on a random port, over plain HTTP/1.1.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The port on 127.0.0.1; `None` (or 0) takes a free one.
    pub port: Option<u16>,
    /// Listen on this address instead of 127.0.0.1: one of a network the test made itself
    /// (a Compose network's gateway), so that containers on it reach the forge.
    pub host: Option<std::net::IpAddr>,
    pub flavour: Flavour,
    pub log_rules: LogRules,
    /// Registration tokens accepted from the start (more with `add_registration_token`).
    pub registration_tokens: Vec<String>,
    /// The `X-Gitea-Actions-Capabilities` header Declare answers with (e.g. `job-summary`);
    /// `None` sends no header, like every released Gitea up to 1.26.
    pub declare_capabilities: Option<String>,
    /// Play a server older than Declare (Gitea < 1.21): Declare answers HTTP 404 without a
    /// Connect body, which clients read as `unimplemented`.
    pub declare_unimplemented: bool,
    /// Serve `https://` (HTTP/2 or HTTP/1.1, as the client's ALPN asks) instead of plain
    /// HTTP/1.1.
    pub tls: Option<Tls>,
    /// Serve the repositories under this folder (`OWNER/NAME.git` or `OWNER/NAME`, bare or
    /// not) over Git's smart HTTP (and dumb) protocols, through `git http-backend`, at
    /// `/OWNER/NAME` and `/OWNER/NAME.git`, as a forge serves clones and action fetches at
    /// its own address. Requests and their `Authorization` headers are recorded
    /// (`FakeForge::git_requests`).
    pub git_root: Option<std::path::PathBuf>,
}

impl Options {
    pub fn gitea() -> Self {
        Options::default()
    }

    pub fn forgejo() -> Self {
        Options {
            flavour: Flavour::Forgejo,
            ..Options::default()
        }
    }

    pub fn with_registration_token(mut self, token: impl Into<String>) -> Self {
        self.registration_tokens.push(token.into());
        self
    }

    pub fn with_port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    pub fn with_git_root(mut self, root: impl Into<std::path::PathBuf>) -> Self {
        self.git_root = Some(root.into());
        self
    }

    pub fn with_tls(mut self, tls: Tls) -> Self {
        self.tls = Some(tls);
        self
    }
}
