//! Registry credentials, resolved per image by the registry's host, in this order:
//!
//! 1. the workflow's `credentials` (job container or service);
//! 2. the runner's `container.registries` entries whose host pattern matches (password from
//!    the config, an environment variable or a file);
//! 3. Docker config files named in the runner's config (`container.docker_config`): a
//!    `config.json`, or a Kubernetes `kubernetes.io/dockerconfigjson` Secret's
//!    `.dockerconfigjson` mounted as a file — the Secret an operator already has for
//!    `imagePullSecrets` (both have `auths`);
//! 4. the runner user's own Docker config (`$DOCKER_CONFIG/config.json`, else
//!    `~/.docker/config.json`): `auths`, `credHelpers` and `credsStore` through the
//!    `docker-credential-*` helpers;
//! 5. for images on the forge's own host, the task's token (the forge's package registry);
//!    a registry that refuses it is asked again without credentials.
//!
//! Files are read at each pull, so a rotated Secret takes effect on the next job without a
//! restart. Credentials go only to the host they are for, and never into a log: what the log
//! says is where they came from.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use bollard::auth::DockerCredentials;
use hearth_backend::{Credentials, ExposeSecret, ForgeRegistry, SecretString};
use serde::Deserialize;

/// Where a configured registry password comes from.
#[derive(Clone, Debug)]
pub enum PasswordSource {
    /// Written in the config (or its `env_file`).
    Literal(SecretString),
    /// An environment variable of the runner.
    Env(String),
    /// A file (a mounted Kubernetes Secret key, a Docker secret), read at each pull.
    File(PathBuf),
}

/// One `container.registries` entry.
#[derive(Clone, Debug)]
pub struct RegistryEntry {
    /// The registry's host (`registry.example.com`, `127.0.0.1:5000`), `*` matching any run of
    /// characters (`*.example.com`).
    pub host: String,
    pub username: String,
    pub password: PasswordSource,
}

/// Where the runner finds registry credentials; see the module documentation.
#[derive(Clone, Debug, Default)]
pub struct Registries {
    pub entries: Vec<RegistryEntry>,
    /// Docker config files (`config.json` or `.dockerconfigjson`) named in the runner's config.
    pub config_files: Vec<PathBuf>,
    /// Whether the runner user's own Docker config is read too.
    pub user_config: bool,
}

/// Credentials found for a host, and where they came from (for the log).
pub(crate) struct Found {
    pub credentials: DockerCredentials,
    pub source: String,
}

/// The registry host of an image reference: its first part when that looks like a host
/// (holds a `.` or a `:`, or is `localhost`), else Docker Hub.
pub fn registry_host(image: &str) -> String {
    match image.split_once('/') {
        Some((first, _)) if first.contains('.') || first.contains(':') || first == "localhost" => {
            first.to_owned()
        }
        _ => "docker.io".to_owned(),
    }
}

/// A registry key of a Docker config (`https://index.docker.io/v1/`, `127.0.0.1:5000`) as a
/// plain host; Docker Hub's names as `docker.io`.
fn normalize(key: &str) -> String {
    let host = key
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap_or_default();
    match host {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            "docker.io".to_owned()
        }
        other => other.to_owned(),
    }
}

/// `pattern` with `*` matching any run of characters, against `host`.
fn host_matches(pattern: &str, host: &str) -> bool {
    let pattern = normalize(pattern);
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == host;
    }
    let mut rest = host;
    for (index, part) in parts.iter().enumerate() {
        if index == 0 {
            let Some(after) = rest.strip_prefix(part) else {
                return false;
            };
            rest = after;
        } else if index == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            let Some(at) = rest.find(part) else {
                return false;
            };
            rest = &rest[at + part.len()..];
        }
    }
    true
}

impl Registries {
    /// Credentials for `host`: the first source in the module's order that has some, and every
    /// source looked at (for a message when a pull fails).
    pub(crate) async fn resolve(
        &self,
        host: &str,
        workflow: Option<&Credentials>,
        forge: Option<&ForgeRegistry>,
    ) -> (Option<Found>, Vec<String>) {
        let mut tried = Vec::new();
        if let Some(credentials) = workflow {
            let source = "the workflow's credentials".to_owned();
            tried.push(source.clone());
            return (
                Some(Found {
                    credentials: docker_credentials(
                        host,
                        &credentials.username,
                        credentials.password.expose_secret(),
                    ),
                    source,
                }),
                tried,
            );
        }
        for entry in self.entries.iter().filter(|e| host_matches(&e.host, host)) {
            let source = format!("container.registries ({})", entry.host);
            tried.push(source.clone());
            match read_password(&entry.password).await {
                Ok(password) => {
                    return (
                        Some(Found {
                            credentials: docker_credentials(host, &entry.username, &password),
                            source,
                        }),
                        tried,
                    )
                }
                Err(e) => tracing::warn!("{source}: {e}"),
            }
        }
        for file in &self.config_files {
            tried.push(format!("the Docker config {}", file.display()));
            match from_config_file(file, host).await {
                Ok(Some(credentials)) => {
                    return (
                        Some(Found {
                            credentials,
                            source: format!("the Docker config {}", file.display()),
                        }),
                        tried,
                    )
                }
                Ok(None) => {}
                Err(e) => tracing::warn!("the Docker config {}: {e}", file.display()),
            }
        }
        if self.user_config {
            if let Some(file) = user_config_file() {
                tried.push(format!(
                    "the runner user's Docker config {}",
                    file.display()
                ));
                match from_config_file(&file, host).await {
                    Ok(Some(credentials)) => {
                        return (
                            Some(Found {
                                credentials,
                                source: format!(
                                    "the runner user's Docker config {}",
                                    file.display()
                                ),
                            }),
                            tried,
                        )
                    }
                    Ok(None) => {}
                    Err(e) => tracing::debug!("the Docker config {}: {e}", file.display()),
                }
            }
        }
        if let Some(forge) = forge.filter(|f| normalize(&f.host) == host) {
            tried.push(TASK_TOKEN.to_owned());
            return (
                Some(Found {
                    credentials: docker_credentials(
                        host,
                        &forge.credentials.username,
                        forge.credentials.password.expose_secret(),
                    ),
                    source: TASK_TOKEN.to_owned(),
                }),
                tried,
            );
        }
        (None, tried)
    }
}

/// How the task's token for the forge's own registry is named in the log.
pub(crate) const TASK_TOKEN: &str = "the task's token for the forge's registry";

fn docker_credentials(host: &str, username: &str, password: &str) -> DockerCredentials {
    DockerCredentials {
        username: Some(username.to_owned()),
        password: Some(password.to_owned()),
        serveraddress: Some(host.to_owned()),
        ..Default::default()
    }
}

async fn read_password(source: &PasswordSource) -> Result<String, String> {
    match source {
        PasswordSource::Literal(secret) => Ok(secret.expose_secret().to_owned()),
        PasswordSource::Env(name) => {
            std::env::var(name).map_err(|_| format!("the environment variable {name} is not set"))
        }
        PasswordSource::File(path) => tokio::fs::read_to_string(path)
            .await
            .map(|text| text.trim_end_matches(['\n', '\r']).to_owned())
            .map_err(|e| format!("cannot read {}: {e}", path.display())),
    }
}

/// `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
fn user_config_file() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir).join("config.json"));
    }
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|home| PathBuf::from(home).join(".docker/config.json"))
}

/// A Docker config file, or a `.dockerconfigjson` (the same `auths`).
#[derive(Deserialize, Default)]
struct DockerConfig {
    #[serde(default)]
    auths: HashMap<String, AuthEntry>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: HashMap<String, String>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
}

#[derive(Deserialize, Default)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default, rename = "identitytoken")]
    identity_token: Option<String>,
}

async fn from_config_file(path: &Path, host: &str) -> Result<Option<DockerCredentials>, String> {
    let text = match tokio::fs::read_to_string(path).await {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    let config: DockerConfig =
        serde_json::from_str(&text).map_err(|e| format!("not a Docker config: {e}"))?;
    if let Some(helper) = config
        .cred_helpers
        .iter()
        .find(|(key, _)| normalize(key) == host)
        .map(|(_, helper)| helper)
        .or(config.creds_store.as_ref())
    {
        if let Some(found) = from_helper(helper, host).await? {
            return Ok(Some(found));
        }
    }
    let Some(entry) = config
        .auths
        .iter()
        .find(|(key, _)| normalize(key) == host)
        .map(|(_, entry)| entry)
    else {
        return Ok(None);
    };
    if let Some(token) = &entry.identity_token {
        return Ok(Some(DockerCredentials {
            identitytoken: Some(token.clone()),
            serveraddress: Some(host.to_owned()),
            ..Default::default()
        }));
    }
    let (username, password) = match (&entry.username, &entry.password, &entry.auth) {
        (Some(user), Some(password), _) => (user.clone(), password.clone()),
        (_, _, Some(auth)) => {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .map_err(|e| format!("the `auth` of {host} is not base64: {e}"))?;
            let decoded = String::from_utf8(decoded)
                .map_err(|_| format!("the `auth` of {host} is not text"))?;
            let (user, password) = decoded
                .split_once(':')
                .ok_or_else(|| format!("the `auth` of {host} is not user:password"))?;
            (user.to_owned(), password.to_owned())
        }
        _ => return Ok(None),
    };
    Ok(Some(docker_credentials(host, &username, &password)))
}

/// Asks `docker-credential-<helper>` for `host`'s credentials, as the Docker CLI does.
async fn from_helper(helper: &str, host: &str) -> Result<Option<DockerCredentials>, String> {
    use tokio::io::AsyncWriteExt as _;
    let program = format!("docker-credential-{helper}");
    let mut child = match tokio::process::Command::new(&program)
        .arg("get")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
    {
        Ok(child) => child,
        Err(e) => return Err(format!("cannot run {program}: {e}")),
    };
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(host.as_bytes()).await;
    }
    let output = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .map_err(|_| format!("{program} did not answer within 30 s"))?
        .map_err(|e| format!("{program}: {e}"))?;
    if !output.status.success() {
        // The helper has nothing for this host ("credentials not found in native keychain").
        return Ok(None);
    }
    #[derive(Deserialize)]
    struct Answer {
        #[serde(rename = "Username")]
        username: String,
        #[serde(rename = "Secret")]
        secret: String,
    }
    let answer: Answer = serde_json::from_slice(&output.stdout)
        .map_err(|e| format!("{program} answered something else than credentials: {e}"))?;
    Ok(Some(if answer.username == "<token>" {
        DockerCredentials {
            identitytoken: Some(answer.secret),
            serveraddress: Some(host.to_owned()),
            ..Default::default()
        }
    } else {
        docker_credentials(host, &answer.username, &answer.secret)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_of_images_and_config_keys() {
        assert_eq!(registry_host("node:20"), "docker.io");
        assert_eq!(registry_host("library/node:20"), "docker.io");
        assert_eq!(registry_host("ghcr.io/o/r:1"), "ghcr.io");
        assert_eq!(registry_host("127.0.0.1:5000/x:1"), "127.0.0.1:5000");
        assert_eq!(registry_host("localhost/x"), "localhost");
        assert_eq!(normalize("https://index.docker.io/v1/"), "docker.io");
        assert_eq!(normalize("http://127.0.0.1:5000"), "127.0.0.1:5000");
        assert!(host_matches("*.example.com", "registry.example.com"));
        assert!(!host_matches("*.example.com", "example.org"));
        assert!(host_matches("127.0.0.1:5000", "127.0.0.1:5000"));
        assert!(!host_matches("ghcr.io", "ghcr.io.evil.example"));
    }

    #[tokio::test]
    async fn config_files_give_the_credentials_of_their_host_only() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(".dockerconfigjson");
        let auth = base64::engine::general_purpose::STANDARD.encode("bot:s3cret");
        std::fs::write(
            &file,
            format!(r#"{{"auths": {{"registry.example.com": {{"auth": "{auth}"}}}}}}"#),
        )
        .unwrap();
        let registries = Registries {
            config_files: vec![file.clone()],
            ..Default::default()
        };
        let (found, tried) = registries.resolve("registry.example.com", None, None).await;
        let found = found.expect("found");
        assert_eq!(found.credentials.username.as_deref(), Some("bot"));
        assert_eq!(found.credentials.password.as_deref(), Some("s3cret"));
        assert!(found.source.contains(".dockerconfigjson"));
        assert_eq!(tried.len(), 1);
        let (other, _) = registries.resolve("ghcr.io", None, None).await;
        assert!(other.is_none());
    }
}
