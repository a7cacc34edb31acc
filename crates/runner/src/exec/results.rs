//! What a local run's jobs reach at `ACTIONS_RESULTS_URL`: the cache over protocol v2 and the
//! run's artifacts (`hearth-artifacts`), at one address. With the runner's own cache server
//! running, the artifacts are mounted in it; otherwise (`--no-cache-server`, an external
//! cache) they get a server of their own on the loopback, and jobs keep cache v1 (an
//! external server is reached at `ACTIONS_CACHE_URL`, which v2 ignores).
//!
//! Every job of the run gets one runtime token (`ACTIONS_RUNTIME_TOKEN`, masked): a JWT signed
//! by the server's key whose claims hold the run's cache grant and the `scp` claim
//! `Actions.Results:<run id>:<job id>` from which `@actions/artifact` reads the run, the
//! artifacts' scope. The daemon does none of this: its jobs get the forge's
//! `ACTIONS_RESULTS_URL` and runtime token, where the forge keeps artifacts.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hearth_artifacts::{Artifacts, RunTokens};
use hearth_backend::Reach;
use hearth_blob::serve::Serving;
use hearth_cache::auth::{RuntimeClaims, Signer};
use hearth_expr::Object;

use crate::cache::{CacheError, JobCache};
use crate::config::CacheConfig;

/// The most bytes one artifact may have.
const ARTIFACT_LIMIT: u64 = 10 << 30;

#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    #[error("cannot keep artifacts in {dir}: {source}")]
    Artifacts {
        dir: PathBuf,
        source: hearth_artifacts::ArtifactsError,
    },
    #[error("cannot listen for artifacts: {0}")]
    Listen(std::io::Error),
    #[error("cannot make a signing key: {0}")]
    Key(String),
}

/// Runtime tokens this run's server signed: the run they name.
struct Tokens(Signer);

impl RunTokens for Tokens {
    fn run_of(&self, token: &str) -> Result<String, String> {
        let claims = self
            .0
            .verify_runtime_token(token)
            .map_err(|e| e.to_string())?;
        claims
            .backend_ids()
            .map(|(run, _)| run.to_owned())
            .ok_or_else(|| "the token names no run".to_owned())
    }
}

/// The services of one local run.
pub struct RunResults {
    cache: Option<Arc<JobCache>>,
    /// The artifacts' own server, when the cache's does not carry them.
    serving: Option<Serving>,
    signer: Signer,
    /// Where jobs on this machine reach `ACTIONS_RESULTS_URL` (no trailing `/`).
    base: String,
    /// Cache v2 is served here (the runner's own cache server runs).
    cache_v2: bool,
    /// Why the cache asked for did not start, if it did not.
    cache_error: Option<CacheError>,
}

/// What a job's log says when a job container cannot reach the run's artifacts server.
const ARTIFACTS_FIX: &str = "give hearth exec --cache-server-addr an address of this machine \
                             that the job network reaches";

/// What the jobs of a run are given.
#[derive(Clone, Debug, Default)]
pub struct RunAccess {
    /// The runner's variables for the jobs.
    pub env: Vec<(String, String)>,
    /// Tokens to mask.
    pub secrets: Vec<String>,
    /// Addresses of the runner's side the jobs reach (`JobRequest::reach`), all optional:
    /// a job that cannot reach them runs without its cache and artifacts, told so.
    pub reach: Vec<Reach>,
    /// The tokens the cache counts the run's activity under.
    cache_tokens: Vec<String>,
}

impl RunResults {
    /// Starts the cache `cache` asks for and the artifact service keeping its artifacts in
    /// `artifacts`; a cache that cannot start is told by [`RunResults::cache_error`], the
    /// artifacts served without it.
    pub async fn start(cache: &CacheConfig, artifacts: &Path) -> Result<RunResults, ResultsError> {
        let service = |signer: &Signer| {
            Artifacts::open(artifacts, ARTIFACT_LIMIT, Arc::new(Tokens(signer.clone())))
                .map(Arc::new)
                .map_err(|source| ResultsError::Artifacts {
                    dir: artifacts.to_owned(),
                    source,
                })
        };
        let mut config = cache.clone();
        let mut cache_error = None;
        if config.enabled && config.external_server.is_empty() {
            // The artifacts, mounted in the cache's server, check tokens with its key: one
            // made here unless the config shares one.
            if config.secret.is_empty() {
                config.secret = random_hex(32)?;
            }
            let signer = Signer::new(config.secret.as_bytes());
            let artifacts = service(&signer)?;
            match JobCache::start_with(&config, vec![artifacts]).await {
                Ok(Some(cache)) => {
                    let base = cache.base().to_owned();
                    return Ok(RunResults {
                        cache: Some(cache),
                        serving: None,
                        signer,
                        base,
                        cache_v2: true,
                        cache_error: None,
                    });
                }
                Ok(None) => {}
                // The artifacts go on alone.
                Err(e) => {
                    config.enabled = false;
                    cache_error = Some(e);
                }
            }
        }
        let cache = match JobCache::start(&config).await {
            Ok(cache) => cache,
            Err(e) => {
                cache_error = Some(e);
                None
            }
        };
        let signer = Signer::new(random_hex(32)?.as_bytes());
        let artifacts = service(&signer)?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(ResultsError::Listen)?;
        let serving =
            hearth_blob::serve::serve(listener, vec![artifacts]).map_err(ResultsError::Listen)?;
        let base = format!("http://{}", serving.address());
        Ok(RunResults {
            cache,
            serving: Some(serving),
            signer,
            base,
            cache_v2: false,
            cache_error,
        })
    }

    /// Why the cache did not start (the artifacts are served all the same).
    pub fn cache_error(&self) -> Option<&CacheError> {
        self.cache_error.as_ref()
    }

    /// The cache, if the run has one.
    pub fn cache(&self) -> Option<&JobCache> {
        self.cache.as_deref()
    }

    /// What the jobs of the run with the `github` context `github` are given, valid for
    /// `valid`.
    pub fn for_run(&self, github: &Object, valid: Duration) -> RunAccess {
        let mut access = RunAccess::default();
        let cache = self.cache.as_ref().and_then(|c| c.for_job(github, valid));
        if let Some(cache) = &cache {
            access
                .env
                .push(("ACTIONS_CACHE_URL".to_owned(), cache.url.clone()));
            access.reach.push(cache.reach.clone());
            if let Some(token) = &cache.token {
                access.secrets.push(token.clone());
                access.cache_tokens.push(token.clone());
            }
        }
        let grant = if self.cache_v2 {
            crate::cache::grant(github, valid)
        } else {
            None
        };
        let expires = hearth_blob::links::seconds_now() + valid.as_secs();
        // A run's id needs no secrecy, only to differ from other runs': the key is random.
        let run = random_hex(16).unwrap_or_else(|_| format!("run-{}", std::process::id()));
        let claims = RuntimeClaims::new(&run, "job", expires, grant.clone());
        let token = self.signer.runtime_token(&claims);
        let url = format!("{}/", self.base);
        access.env.extend([
            ("ACTIONS_RESULTS_URL".to_owned(), url.clone()),
            ("ACTIONS_RUNTIME_URL".to_owned(), url),
            ("ACTIONS_RUNTIME_TOKEN".to_owned(), token.clone()),
        ]);
        if grant.is_some() {
            access
                .env
                .push(("ACTIONS_CACHE_SERVICE_V2".to_owned(), "true".to_owned()));
            access.cache_tokens.push(token.clone());
        }
        access.secrets.push(token);
        if !access.reach.iter().any(|r| r.url == self.base) {
            access.reach.push(Reach::optional(
                &self.base,
                "the run's artifacts server",
                ARTIFACTS_FIX,
            ));
        }
        access
    }

    /// The line for the log of the run given `access`: what its jobs did with the cache.
    pub fn activity(&self, access: &RunAccess) -> Option<String> {
        let tokens: Vec<&str> = access.cache_tokens.iter().map(String::as_str).collect();
        self.cache.as_ref()?.activity_of(&tokens)
    }

    /// Stops the artifacts' own server, if it has one.
    pub async fn stop(self) {
        if let Some(serving) = self.serving {
            serving.stop().await;
        }
    }
}

/// `bytes` random bytes in hex.
fn random_hex(bytes: usize) -> Result<String, ResultsError> {
    let mut random = vec![0u8; bytes];
    getrandom::fill(&mut random).map_err(|e| ResultsError::Key(e.to_string()))?;
    Ok(random.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn github() -> Object {
        let json = serde_json::json!({"repository": "acme/app", "ref": "refs/heads/main"});
        match hearth_expr::Value::from_json(&json) {
            hearth_expr::Value::Object(object) => (*object).clone(),
            other => panic!("not an object: {other:?}"),
        }
    }

    fn config(dir: &Path, enabled: bool, port: u16) -> CacheConfig {
        CacheConfig {
            enabled,
            dir: dir.join("cache"),
            host: String::new(),
            port,
            external_server: String::new(),
            secret: String::new(),
            size_limit: 1 << 20,
            s3: None,
        }
    }

    fn value<'a>(access: &'a RunAccess, name: &str) -> Option<&'a str> {
        access
            .env
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// With the runner's own cache: one address for v1, v2 and artifacts, and a runtime token
    /// that its server takes, holding the grant and the run; the tokens are to be masked.
    #[tokio::test]
    async fn the_cache_and_the_artifacts_share_one_address_and_one_token() {
        let dir = tempfile::tempdir().unwrap();
        let results = RunResults::start(&config(dir.path(), true, 0), &dir.path().join("a"))
            .await
            .unwrap();
        assert!(results.cache_error().is_none());
        let access = results.for_run(&github(), Duration::from_secs(60));
        let base = results.cache().unwrap().base().to_owned();
        assert_eq!(
            value(&access, "ACTIONS_RESULTS_URL"),
            Some(&*format!("{base}/"))
        );
        assert_eq!(
            value(&access, "ACTIONS_RUNTIME_URL"),
            Some(&*format!("{base}/"))
        );
        assert_eq!(value(&access, "ACTIONS_CACHE_SERVICE_V2"), Some("true"));
        assert!(value(&access, "ACTIONS_CACHE_URL").is_some_and(|u| u.starts_with(&base)));
        let reached: Vec<&str> = access.reach.iter().map(|r| r.url.as_str()).collect();
        assert_eq!(reached, [base.as_str()]);
        let token = value(&access, "ACTIONS_RUNTIME_TOKEN").unwrap();
        let claims = results.signer.verify_runtime_token(token).unwrap();
        assert_eq!(claims.cache.as_ref().unwrap().repository, "acme/app");
        assert!(claims.backend_ids().is_some());
        assert!(access.secrets.iter().any(|s| s == token));
        assert_eq!(
            access.secrets.len(),
            2,
            "the v1 token and the runtime token"
        );
    }

    /// Without a cache (or when it cannot listen), the artifacts have a server of their own,
    /// and the jobs get no v2 and no grant.
    #[tokio::test]
    async fn the_artifacts_are_served_without_a_cache() {
        let dir = tempfile::tempdir().unwrap();
        let off = RunResults::start(&config(dir.path(), false, 0), &dir.path().join("a"))
            .await
            .unwrap();
        let access = off.for_run(&github(), Duration::from_secs(60));
        assert!(off.cache().is_none() && off.cache_error().is_none());
        assert!(value(&access, "ACTIONS_RESULTS_URL").is_some());
        assert!(value(&access, "ACTIONS_CACHE_SERVICE_V2").is_none());
        assert!(value(&access, "ACTIONS_CACHE_URL").is_none());
        let token = value(&access, "ACTIONS_RUNTIME_TOKEN").unwrap();
        assert!(off
            .signer
            .verify_runtime_token(token)
            .unwrap()
            .cache
            .is_none());

        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = taken.local_addr().unwrap().port();
        let busy = RunResults::start(&config(dir.path(), true, port), &dir.path().join("b"))
            .await
            .unwrap();
        assert!(busy.cache_error().is_some());
        let access = busy.for_run(&github(), Duration::from_secs(60));
        assert!(value(&access, "ACTIONS_RESULTS_URL").is_some());
        assert!(value(&access, "ACTIONS_CACHE_SERVICE_V2").is_none());
    }
}
