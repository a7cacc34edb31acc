//! Reaching the Docker daemon: the local socket by default; `unix://`, `tcp://` (plain, or
//! TLS with a client certificate, as `DOCKER_TLS_VERIFY` and `DOCKER_CERT_PATH` say) or
//! `http://` as `container.docker_host` or `DOCKER_HOST` name it; podman's Docker-compatible
//! socket is a `unix://` address like any other. A daemon that does not answer yet (a
//! Docker-in-Docker sidecar still starting) is waited for, with a message, rather than taken
//! for an error at once.

use std::path::PathBuf;
use std::time::Duration;

use bollard::{Docker, API_DEFAULT_VERSION};
use tokio::time::{sleep, Instant};

use crate::DockerError;

/// `container.docker_host`'s value (Forgejo's) that detects the daemon and mounts its socket
/// into job containers; Hearth mounts it only then.
pub const AUTOMOUNT: &str = "automount";

/// How long a request to the daemon may take.
const REQUEST_TIMEOUT_SECS: u64 = 120;

/// Where the daemon is and how to talk to it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DockerSettings {
    /// `unix:///path`, `tcp://host:port`, `http://host:port`; `None` for `DOCKER_HOST`, else the
    /// local socket.
    pub host: Option<String>,
    /// Speak TLS with a client certificate (`DOCKER_TLS_VERIFY`).
    pub tls_verify: bool,
    /// The folder holding `ca.pem`, `cert.pem` and `key.pem` (`DOCKER_CERT_PATH`, else
    /// `~/.docker`).
    pub cert_path: Option<PathBuf>,
}

impl DockerSettings {
    /// Where job folders live for this daemon (`container.bind_workdir`): as `bind_workdir`
    /// says when it is given; else bound for a local socket (the daemon sees this machine's
    /// folders, and the engine reads the workspace in place) and copied for a daemon reached
    /// over the network, which may be anywhere (another machine, a sidecar with its own
    /// filesystem): binds would name folders it does not have.
    pub fn workdir(&self, bind_workdir: Option<bool>) -> crate::Workdir {
        match bind_workdir {
            Some(true) => crate::Workdir::Bind,
            Some(false) => crate::Workdir::Copy,
            None => {
                let host = self.host.as_deref().unwrap_or_default().trim();
                if ["tcp://", "http://", "https://"]
                    .iter()
                    .any(|scheme| host.starts_with(scheme))
                {
                    crate::Workdir::Copy
                } else {
                    crate::Workdir::Bind
                }
            }
        }
    }

    /// What the Docker CLI's variables say, under `host` when one is configured (act_runner's
    /// `container.docker_host`: empty, `-` or Forgejo's `automount` to detect).
    pub fn from_env(host: &str) -> DockerSettings {
        let configured = match host.trim() {
            "" | "-" | AUTOMOUNT => None,
            other => Some(other.to_owned()),
        };
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        DockerSettings {
            host: configured.or_else(|| env("DOCKER_HOST")),
            tls_verify: env("DOCKER_TLS_VERIFY").is_some(),
            cert_path: env("DOCKER_CERT_PATH").map(PathBuf::from),
        }
    }

    /// The daemon's socket on this machine, to mount into job containers: `None` when the
    /// daemon is reached over TCP.
    pub fn socket(&self) -> Option<PathBuf> {
        match &self.host {
            None => Some(PathBuf::from("/var/run/docker.sock")),
            Some(host) => host.strip_prefix("unix://").map(PathBuf::from),
        }
    }

    /// The daemon's address as messages show it.
    pub fn describe(&self) -> String {
        self.host
            .clone()
            .unwrap_or_else(|| "unix:///var/run/docker.sock".to_owned())
    }

    /// A client for the daemon (nothing is sent yet).
    pub fn client(&self) -> Result<Docker, DockerError> {
        let connect = |result: Result<Docker, bollard::errors::Error>| {
            result.map_err(|e| DockerError::Connect(self.describe(), e))
        };
        let Some(host) = &self.host else {
            return connect(Docker::connect_with_local_defaults());
        };
        if let Some(path) = host.strip_prefix("unix://") {
            return connect(Docker::connect_with_unix(
                path,
                REQUEST_TIMEOUT_SECS,
                API_DEFAULT_VERSION,
            ));
        }
        let tcp = host.starts_with("tcp://") || host.starts_with("https://");
        if tcp && self.tls_verify {
            let certs = self.cert_path.clone().unwrap_or_else(|| {
                std::env::var_os("HOME")
                    .map(PathBuf::from)
                    .unwrap_or_default()
                    .join(".docker")
            });
            return connect(Docker::connect_with_ssl(
                host,
                &certs.join("key.pem"),
                &certs.join("cert.pem"),
                &certs.join("ca.pem"),
                REQUEST_TIMEOUT_SECS,
                API_DEFAULT_VERSION,
            ));
        }
        if tcp || host.starts_with("http://") {
            return connect(Docker::connect_with_http(
                host,
                REQUEST_TIMEOUT_SECS,
                API_DEFAULT_VERSION,
            ));
        }
        Err(DockerError::Address(host.clone()))
    }

    /// A client that has agreed on an API version with the daemon, waiting up to `patience`
    /// for a daemon that does not answer yet; `on_wait` hears each time it waits (with why).
    pub async fn connect(
        &self,
        patience: Duration,
        mut on_wait: impl FnMut(&str),
    ) -> Result<Docker, DockerError> {
        let until = Instant::now() + patience;
        let mut wait = Duration::from_millis(250);
        loop {
            let client = self.client()?;
            match client.negotiate_version().await {
                Ok(docker) => return Ok(docker),
                Err(e) if Instant::now() + wait <= until => {
                    on_wait(&format!(
                        "Docker at {} does not answer yet ({e}); waiting",
                        self.describe()
                    ));
                    sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(5));
                }
                Err(e) => return Err(DockerError::Connect(self.describe(), e)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn job_folders_are_copied_for_a_daemon_on_the_network_unless_told() {
        use crate::Workdir;
        let at = |host: Option<&str>| DockerSettings {
            host: host.map(str::to_owned),
            ..Default::default()
        };
        assert_eq!(at(None).workdir(None), Workdir::Bind);
        assert_eq!(
            at(Some("unix:///run/docker.sock")).workdir(None),
            Workdir::Bind
        );
        assert_eq!(at(Some("tcp://10.0.0.2:2376")).workdir(None), Workdir::Copy);
        assert_eq!(at(Some("http://dind:2375")).workdir(None), Workdir::Copy);
        assert_eq!(
            at(Some("tcp://10.0.0.2:2376")).workdir(Some(true)),
            Workdir::Bind
        );
        assert_eq!(at(None).workdir(Some(false)), Workdir::Copy);
    }

    use super::*;

    #[test]
    fn addresses_are_read_as_the_docker_cli_reads_them() {
        let settings = DockerSettings {
            host: Some("ftp://nowhere".into()),
            ..Default::default()
        };
        assert!(matches!(settings.client(), Err(DockerError::Address(_))));
        let unix = DockerSettings {
            host: Some("unix:///run/user/1000/podman/podman.sock".into()),
            ..Default::default()
        };
        // Understood as an address (podman's socket is not there: a connection error, not a
        // refusal of the address).
        assert!(!matches!(unix.client(), Err(DockerError::Address(_))));
        assert_eq!(
            DockerSettings::from_env("-").host,
            std::env::var("DOCKER_HOST").ok().filter(|h| !h.is_empty())
        );
    }
}
