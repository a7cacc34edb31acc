//! The cache this runner's jobs reach (`cache.*` in the config): Hearth's cache server
//! (`hearth-cache`) started with the runner, and each job's grant to it.
//!
//! A job reads the entries of its own ref, then its base's (a pull request's target branch),
//! then the default branch's, and writes only its own ref, as GitHub scopes caches: a pull
//! request writes under `refs/pull/N/merge`, which its base never reads, so it cannot poison
//! the base's entries. The grant is signed into a token that is the first segment of the job's
//! `ACTIONS_CACHE_URL`; the caller masks it. The server listens on this machine's loopback
//! unless `cache.host` says where, and a job in a container reaches it as it reaches a forge on
//! the loopback (the backend forwards from the job network's gateway: see `JobRequest::reach`).
//! The cache is an optional `Reach`: a container job that cannot reach it is told so in one
//! warning line naming the address and what to change, and runs without it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hearth_backend::Reach;
use hearth_cache::auth::{Grant, Signer};
use hearth_cache::server::Running;
use hearth_cache::{S3Options, Store};
use hearth_expr::{Object, Value};

use crate::config::{CacheConfig, CacheS3Config};

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("cannot open the cache (its folder {dir}): {source}")]
    Store {
        dir: PathBuf,
        source: hearth_cache::StoreError,
    },
    #[error("cannot listen for the cache at {address}: {source}")]
    Listen {
        address: String,
        source: std::io::Error,
    },
    #[error("cannot make the cache's signing key: {0}")]
    Key(String),
}

/// The cache jobs are given: Hearth's own server, run by the runner, or an external one.
pub struct JobCache {
    /// `http://host:port` (no trailing `/`), where jobs on this machine reach the server.
    base: String,
    /// Signs the jobs' grants: a random key for the runner's own server, or `cache.secret`,
    /// the key shared with an external `hearth cache-server`. `None`: an external server that
    /// takes no tokens, given to jobs as it is (act_runner's way).
    signer: Option<Signer>,
    running: Option<Running>,
}

/// What a job's log says when a job container cannot reach the runner's own server.
const FIX_OWN: &str = "set cache.host (hearth exec: --cache-server-addr) to an address of \
                       this machine that the job network reaches, or cache.external_server to \
                       a cache server it reaches";
/// What a job's log says when a job container cannot reach an external server.
const FIX_EXTERNAL: &str = "set cache.external_server to an address the job network reaches";

/// What one job is given: the URL with its token, and the parts the caller needs.
#[derive(Clone, Debug)]
pub struct JobCacheAccess {
    /// `ACTIONS_CACHE_URL`: `http://host:port/<token>/`, or an external server's URL.
    pub url: String,
    /// The server's address without the token, for `JobRequest::reach`: optional (a job
    /// that cannot reach it runs without its cache, told so in one line of its log).
    pub reach: Reach,
    /// The job's token, to mask.
    pub token: Option<String>,
}

impl JobCache {
    /// The cache the config asks for: `None` when `cache.enabled` is false; the server named
    /// by `cache.external_server` (with tokens signed with `cache.secret`, when set); else a
    /// server of the runner's own, started now.
    pub async fn start(config: &CacheConfig) -> Result<Option<Arc<JobCache>>, CacheError> {
        JobCache::start_with(config, Vec::new()).await
    }

    /// The same, with `services` answering at the same address when the runner runs its own
    /// server (`hearth exec`'s artifacts).
    pub async fn start_with(
        config: &CacheConfig,
        services: Vec<Arc<dyn hearth_blob::Mounted>>,
    ) -> Result<Option<Arc<JobCache>>, CacheError> {
        if !config.enabled {
            return Ok(None);
        }
        let shared = (!config.secret.is_empty()).then(|| Signer::new(config.secret.as_bytes()));
        if !config.external_server.is_empty() {
            return Ok(Some(Arc::new(JobCache {
                base: config.external_server.trim_end_matches('/').to_owned(),
                signer: shared,
                running: None,
            })));
        }
        let store = open_store(config).await?;
        let host = match config.host.as_str() {
            "" => "127.0.0.1",
            host => host,
        };
        let address = format!("{host}:{}", config.port);
        let listen = |source| CacheError::Listen {
            address: address.clone(),
            source,
        };
        let listener = tokio::net::TcpListener::bind(&address)
            .await
            .map_err(listen)?;
        let signer = match shared {
            Some(signer) => signer,
            None => Signer::random().map_err(|e| CacheError::Key(e.to_string()))?,
        };
        let running =
            hearth_cache::server::serve_with(listener, Arc::new(store), signer.clone(), services)
                .map_err(listen)?;
        let base = advertised(running.address());
        match &config.s3 {
            None => {
                tracing::info!(address = %base, dir = %config.dir.display(), "cache server started")
            }
            Some(s3) => tracing::info!(
                address = %base,
                bucket = %s3.bucket,
                prefix = %s3.prefix,
                endpoint = %s3.endpoint,
                "cache server started, its entries in S3"
            ),
        }
        Ok(Some(Arc::new(JobCache {
            base,
            signer: Some(signer),
            running: Some(running),
        })))
    }

    /// The line for the log of the job with `token`: what it restored, missed and saved, then
    /// forgotten; `None` when it did not use the cache (or the server is not the runner's).
    pub fn activity(&self, token: &str) -> Option<String> {
        self.activity_of(&[token])
    }

    /// The same for a job that used the cache under several tokens (v1's, v2's), in one line.
    pub fn activity_of(&self, tokens: &[&str]) -> Option<String> {
        let running = self.running.as_ref()?;
        let mut all = hearth_cache::server::JobActivity::default();
        for token in tokens {
            if let Some(activity) = running.take_activity(token) {
                all.merge(activity);
            }
        }
        all.summary()
    }

    /// Where the runner's own server listens.
    pub fn address(&self) -> Option<SocketAddr> {
        self.running.as_ref().map(Running::address)
    }

    /// The key of the runner's own server, which also signs the runtime tokens its protocol
    /// v2 takes; `None` for an external server.
    pub fn own_signer(&self) -> Option<&Signer> {
        self.running.as_ref().and(self.signer.as_ref())
    }

    /// `http://host:port`, where jobs on this machine reach the server.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The access of a job whose `github` context is `github`, valid for `valid`; `None` when
    /// tokens are signed and the context names no repository.
    pub fn for_job(&self, github: &Object, valid: Duration) -> Option<JobCacheAccess> {
        let Some(signer) = &self.signer else {
            return Some(JobCacheAccess {
                url: format!("{}/", self.base),
                reach: self.reach(),
                token: None,
            });
        };
        let token = signer.token(&grant(github, valid)?);
        Some(JobCacheAccess {
            url: format!("{}/{token}/", self.base),
            reach: self.reach(),
            token: Some(token),
        })
    }

    /// The server's address as a job is given it, without a job's token: what a job must
    /// reach (`hearth doctor` checks it from a job network).
    pub fn reach(&self) -> Reach {
        let fix = match self.running {
            Some(_) => FIX_OWN,
            None => FIX_EXTERNAL,
        };
        Reach::optional(&self.base, "the cache", fix)
    }
}

/// The store `config` names: `cache.dir`, or the bucket of `cache.s3` with uploads staged in
/// `cache.dir/s3-uploads`.
async fn open_store(config: &CacheConfig) -> Result<Store, CacheError> {
    let failed = |source| CacheError::Store {
        dir: config.dir.clone(),
        source,
    };
    match &config.s3 {
        None => Store::open(&config.dir, config.size_limit).map_err(failed),
        Some(s3) => {
            let staging = config.dir.join("s3-uploads");
            Store::open_s3(&s3_options(s3), &staging, config.size_limit)
                .await
                .map_err(failed)
        }
    }
}

/// What `hearth-cache` needs to reach the bucket of `cache.s3`.
pub fn s3_options(s3: &CacheS3Config) -> S3Options {
    use hearth_backend::ExposeSecret as _;
    S3Options {
        endpoint: s3.endpoint.clone(),
        bucket: s3.bucket.clone(),
        region: s3.region.clone(),
        prefix: s3.prefix.clone(),
        access_key_id: s3.access_key_id.clone(),
        secret_access_key: s3.secret_access_key.expose_secret().to_owned(),
        path_style: s3.path_style,
        ..S3Options::default()
    }
}

/// `http://ADDRESS` as a client reaches a server listening there (any address: loopback).
fn advertised(address: SocketAddr) -> String {
    let ip = address.ip();
    let host = if ip.is_unspecified() {
        "127.0.0.1".to_owned()
    } else if ip.is_ipv6() {
        format!("[{ip}]")
    } else {
        ip.to_string()
    };
    format!("http://{host}:{}", address.port())
}

fn text<'a>(object: &'a Object, key: &str) -> &'a str {
    match object.get(key) {
        Some(Value::String(s)) => s.as_ref(),
        _ => "",
    }
}

/// The grant of a job with the `github` context `github`: its repository; reads its ref, its
/// base's and the default branch's; writes its ref.
pub fn grant(github: &Object, valid: Duration) -> Option<Grant> {
    let repository = text(github, "repository");
    let reference = text(github, "ref");
    if repository.is_empty() || reference.is_empty() {
        return None;
    }
    let mut read = vec![reference.to_owned()];
    let mut also = |branch: &str| {
        if branch.is_empty() {
            return;
        }
        let full = if branch.starts_with("refs/") {
            branch.to_owned()
        } else {
            format!("refs/heads/{branch}")
        };
        if !read.contains(&full) {
            read.push(full);
        }
    };
    also(text(github, "base_ref"));
    let default_branch = match github.get("event") {
        Some(Value::Object(event)) => match event.get("repository") {
            Some(Value::Object(repository)) => text(repository, "default_branch").to_owned(),
            _ => String::new(),
        },
        _ => String::new(),
    };
    also(&default_branch);
    let expires = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
        + valid.as_secs();
    Some(Grant {
        repository: repository.to_owned(),
        read,
        write: Some(reference.to_owned()),
        expires,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn github(json: serde_json::Value) -> Object {
        match Value::from_json(&json) {
            Value::Object(object) => (*object).clone(),
            other => panic!("not an object: {other:?}"),
        }
    }

    fn config(external_server: &str, secret: &str) -> CacheConfig {
        CacheConfig {
            enabled: true,
            dir: PathBuf::from("/nonexistent"),
            host: String::new(),
            port: 0,
            external_server: external_server.to_owned(),
            secret: secret.to_owned(),
            size_limit: 1 << 20,
            s3: None,
        }
    }

    /// An external `hearth cache-server` with the shared key: jobs get tokens it accepts; one
    /// without a key is given to jobs as it is; a disabled cache gives nothing.
    #[tokio::test]
    async fn an_external_server_gets_tokens_signed_with_the_shared_key() {
        let push = github(serde_json::json!({"repository": "acme/app", "ref": "refs/heads/main"}));
        let valid = Duration::from_secs(60);
        let shared = JobCache::start(&config("http://cache.internal:9000/", "shared key"))
            .await
            .unwrap()
            .unwrap();
        let access = shared.for_job(&push, valid).unwrap();
        let token = access.token.clone().unwrap();
        assert_eq!(access.url, format!("http://cache.internal:9000/{token}/"));
        assert_eq!(access.reach.url, "http://cache.internal:9000");
        assert!(access.reach.optional);
        assert!(access.reach.fix.contains("cache.external_server"));
        let grant = Signer::new(b"shared key").verify(&token).unwrap();
        assert_eq!(grant.repository, "acme/app");
        assert!(shared.address().is_none(), "no server of its own");

        let plain = JobCache::start(&config("http://cache.internal:9000", ""))
            .await
            .unwrap()
            .unwrap();
        let access = plain.for_job(&push, valid).unwrap();
        assert_eq!(access.url, "http://cache.internal:9000/");
        assert!(access.token.is_none());

        // The runner's own server names the keys that move it.
        let folder = tempfile::tempdir().unwrap();
        let mut own = config("", "");
        own.dir = folder.path().to_owned();
        let own = JobCache::start(&own).await.unwrap().unwrap();
        let reach = own.for_job(&push, valid).unwrap().reach;
        assert!(reach.optional && reach.url.starts_with("http://127.0.0.1:"));
        assert!(reach
            .fix
            .starts_with("set cache.host (hearth exec: --cache-server-addr)"));

        let mut off = config("", "");
        off.enabled = false;
        assert!(JobCache::start(&off).await.unwrap().is_none());
    }

    #[test]
    fn a_branch_reads_its_own_entries_then_the_default_branchs() {
        let push = github(serde_json::json!({
            "repository": "acme/app", "ref": "refs/heads/feature", "base_ref": "",
            "event": {"repository": {"default_branch": "main"}}
        }));
        let grant = grant(&push, Duration::from_secs(60)).unwrap();
        assert_eq!(grant.read, ["refs/heads/feature", "refs/heads/main"]);
        assert_eq!(grant.write.as_deref(), Some("refs/heads/feature"));
    }

    #[test]
    fn a_pull_request_reads_its_base_and_writes_only_its_own_ref() {
        let pull = github(serde_json::json!({
            "repository": "acme/app", "ref": "refs/pull/7/merge", "base_ref": "release",
            "event": {"repository": {"default_branch": "main"}}
        }));
        let grant = grant(&pull, Duration::from_secs(60)).unwrap();
        assert_eq!(
            grant.read,
            ["refs/pull/7/merge", "refs/heads/release", "refs/heads/main"]
        );
        assert_eq!(grant.write.as_deref(), Some("refs/pull/7/merge"));
    }

    #[test]
    fn the_default_branch_is_read_once_and_no_repository_gets_no_grant() {
        let main = github(serde_json::json!({
            "repository": "acme/app", "ref": "refs/heads/main",
            "event": {"repository": {"default_branch": "main"}}
        }));
        assert_eq!(
            grant(&main, Duration::from_secs(60)).unwrap().read,
            ["refs/heads/main"]
        );
        let none = github(serde_json::json!({"ref": "refs/heads/main"}));
        assert!(grant(&none, Duration::from_secs(60)).is_none());
    }
}
