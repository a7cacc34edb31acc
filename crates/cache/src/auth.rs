//! Who may read and write what: a job's grant, signed by the server's key into a token the job
//! carries in its cache URL, and signed download links.
//!
//! The toolkit sends `ACTIONS_RUNTIME_TOKEN` as its bearer token, and in the daemon that token
//! is the forge's (artifacts go there with it), so the cache's own token cannot travel in that
//! header: it is the first segment of the job's `ACTIONS_CACHE_URL`
//! (`http://host:port/<token>/`), as forgejo-runner's cache proxy puts a run's credentials
//! there. A token is `<claims>.<signature>`, both URL-safe base64 without padding: the claims
//! are the grant as JSON, the signature an HMAC-SHA256 of them with the server's key. Nothing
//! is kept per job on the server, so several servers sharing a key (and a store) accept each
//! other's tokens.
//!
//! Protocol v2 has no room in its URLs (the toolkit calls `/twirp/...` at the root of
//! `ACTIONS_RESULTS_URL`): its grant travels in the bearer, which `hearth exec` makes a JWT of
//! its own (`RuntimeClaims`, HS256 with the same key) holding the grant and the `scp` claim
//! `@actions/artifact` reads. The daemon leaves the forge's runtime token alone, so its jobs
//! speak v1 (the toolkit does on a forge's host anyway).

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hearth_blob::links::{seconds_now, Key, LinkError};
use serde::{Deserialize, Serialize};

use crate::store::Scope;

/// What one job may do with the cache.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// The repository (`owner/name`) whose entries the job reaches; no other.
    pub repository: String,
    /// The refs whose entries it reads, in the order they are searched (its own ref, then
    /// its base's, then the default branch's, as GitHub searches).
    pub read: Vec<String>,
    /// The ref its saves go to; `None` for a job that may only read (a pull request from a
    /// fork).
    pub write: Option<String>,
    /// Seconds since the Unix epoch after which the token is refused.
    pub expires: u64,
}

impl Grant {
    /// The scopes it reads, in order.
    pub fn read_scopes(&self) -> Vec<Scope> {
        self.read
            .iter()
            .map(|reference| Scope {
                repository: self.repository.clone(),
                reference: reference.clone(),
            })
            .collect()
    }

    /// The scope it writes, if any.
    pub fn write_scope(&self) -> Option<Scope> {
        self.write.as_ref().map(|reference| Scope {
            repository: self.repository.clone(),
            reference: reference.clone(),
        })
    }
}

/// Why a token or a link is refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("no cache token")]
    Missing,
    #[error("the cache token is malformed")]
    Malformed,
    #[error("the cache token's signature is not this server's")]
    BadSignature,
    #[error("the cache token expired")]
    Expired,
}

impl From<LinkError> for AuthError {
    fn from(e: LinkError) -> AuthError {
        match e {
            LinkError::Unsigned => AuthError::Missing,
            LinkError::Malformed => AuthError::Malformed,
            LinkError::BadSignature => AuthError::BadSignature,
            LinkError::Expired => AuthError::Expired,
        }
    }
}

/// What a job's runtime token says: `hearth exec` gives its jobs a JWT as
/// `ACTIONS_RUNTIME_TOKEN`, which the toolkit sends as its bearer to `ACTIONS_RESULTS_URL` (cache
/// v2, artifacts) and `@actions/artifact` decodes, unverified, for the run's ids in `scp`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuntimeClaims {
    /// `Actions.Results:<run backend id>:<job backend id>`.
    pub scp: String,
    /// Seconds since the Unix epoch after which the token is refused.
    pub exp: u64,
    /// The job's cache grant, if it may use the cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<Grant>,
}

impl RuntimeClaims {
    /// Claims for the run `run` and its job `job`, valid until `exp`.
    pub fn new(run: &str, job: &str, exp: u64, cache: Option<Grant>) -> RuntimeClaims {
        RuntimeClaims {
            scp: format!("Actions.Results:{run}:{job}"),
            exp,
            cache,
        }
    }

    /// The run's and the job's backend ids of the `Actions.Results` scope.
    pub fn backend_ids(&self) -> Option<(&str, &str)> {
        self.scp.split(' ').find_map(|scope| {
            let mut parts = scope.split(':');
            match (parts.next(), parts.next(), parts.next(), parts.next()) {
                (Some("Actions.Results"), Some(run), Some(job), None) => Some((run, job)),
                _ => None,
            }
        })
    }
}

/// A JWT's header: HMAC-SHA256, the only algorithm taken.
const JWT_HEADER: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

/// The server's signing key.
#[derive(Clone, Debug)]
pub struct Signer {
    key: Key,
}

impl Signer {
    /// A signer with `key` (a shared secret, for servers that accept each other's tokens).
    pub fn new(key: &[u8]) -> Signer {
        Signer { key: Key::new(key) }
    }

    /// A signer with a random key of its own.
    pub fn random() -> Result<Signer, getrandom::Error> {
        Ok(Signer {
            key: Key::random()?,
        })
    }

    /// The key, which also signs the links the server hands out.
    pub fn key(&self) -> &Key {
        &self.key
    }

    /// A token carrying `grant`.
    pub fn token(&self, grant: &Grant) -> String {
        let claims = serde_json::to_vec(grant).unwrap_or_default();
        let claims = URL_SAFE_NO_PAD.encode(claims);
        let signature = self.key.sign(claims.as_bytes());
        format!("{claims}.{signature}")
    }

    /// The grant `token` carries, if this server signed it and it has not expired.
    pub fn verify(&self, token: &str) -> Result<Grant, AuthError> {
        if token.is_empty() {
            return Err(AuthError::Missing);
        }
        let (claims, signature) = token.split_once('.').ok_or(AuthError::Malformed)?;
        self.key.verify(claims.as_bytes(), signature)?;
        let claims = URL_SAFE_NO_PAD
            .decode(claims)
            .map_err(|_| AuthError::Malformed)?;
        let grant: Grant = serde_json::from_slice(&claims).map_err(|_| AuthError::Malformed)?;
        if grant.expires <= seconds_now() {
            return Err(AuthError::Expired);
        }
        Ok(grant)
    }

    /// A runtime token (a JWT: `header.claims.signature`, URL-safe base64) carrying `claims`.
    pub fn runtime_token(&self, claims: &RuntimeClaims) -> String {
        let header = URL_SAFE_NO_PAD.encode(JWT_HEADER);
        let claims = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap_or_default());
        let signed = format!("{header}.{claims}");
        let signature = self.key.sign(signed.as_bytes());
        format!("{signed}.{signature}")
    }

    /// The claims of runtime token `token`, if this server signed it (HS256) and it has not
    /// expired.
    pub fn verify_runtime_token(&self, token: &str) -> Result<RuntimeClaims, AuthError> {
        if token.is_empty() {
            return Err(AuthError::Missing);
        }
        let mut parts = token.split('.');
        let (Some(header), Some(claims), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(AuthError::Malformed);
        };
        self.key
            .verify(format!("{header}.{claims}").as_bytes(), signature)?;
        let header: serde_json::Value = URL_SAFE_NO_PAD
            .decode(header)
            .ok()
            .and_then(|h| serde_json::from_slice(&h).ok())
            .ok_or(AuthError::Malformed)?;
        if header.get("alg").and_then(|a| a.as_str()) != Some("HS256") {
            return Err(AuthError::Malformed);
        }
        let claims: RuntimeClaims = URL_SAFE_NO_PAD
            .decode(claims)
            .ok()
            .and_then(|c| serde_json::from_slice(&c).ok())
            .ok_or(AuthError::Malformed)?;
        let expired = claims.exp <= seconds_now()
            || claims
                .cache
                .as_ref()
                .is_some_and(|g| g.expires <= seconds_now());
        if expired {
            return Err(AuthError::Expired);
        }
        Ok(claims)
    }

    /// The query of a link to download entry `id` until `valid` from now:
    /// `expires=<seconds>&sig=<signature>`.
    pub fn download_query(&self, id: u64, valid: Duration) -> String {
        self.key.link_query(&format!("download:{id}"), valid)
    }

    /// Checks a download link's `expires` and `sig` for entry `id`.
    pub fn verify_download(&self, id: u64, expires: &str, sig: &str) -> Result<(), AuthError> {
        Ok(self
            .key
            .verify_link(&format!("download:{id}"), Some(expires), Some(sig))?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(expires: u64) -> Grant {
        Grant {
            repository: "acme/app".into(),
            read: vec!["refs/heads/feature".into(), "refs/heads/main".into()],
            write: Some("refs/heads/feature".into()),
            expires,
        }
    }

    #[test]
    fn tokens_carry_their_grant_and_nothing_else_passes() {
        let signer = Signer::new(b"key");
        let valid = grant(seconds_now() + 60);
        let token = signer.token(&valid);
        assert_eq!(signer.verify(&token), Ok(valid.clone()));
        // Another key, an edited claim, an expired grant, garbage.
        assert_eq!(
            Signer::new(b"other").verify(&token),
            Err(AuthError::BadSignature)
        );
        let (_, signature) = token.split_once('.').unwrap();
        let mut widened = valid.clone();
        widened.repository = "acme/other".into();
        let forged = format!(
            "{}.{signature}",
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&widened).unwrap())
        );
        assert_eq!(signer.verify(&forged), Err(AuthError::BadSignature));
        assert_eq!(
            signer.verify(&signer.token(&grant(seconds_now() - 1))),
            Err(AuthError::Expired)
        );
        assert_eq!(signer.verify(""), Err(AuthError::Missing));
        assert_eq!(signer.verify("no-dot"), Err(AuthError::Malformed));
        assert_eq!(signer.verify("a.!!"), Err(AuthError::Malformed));
        // Tokens go in URL paths: nothing to escape.
        assert!(token
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)));
    }

    #[test]
    fn runtime_tokens_are_jwts_this_server_signed() {
        let signer = Signer::new(b"key");
        let claims = RuntimeClaims::new(
            "run-1",
            "job-1",
            seconds_now() + 60,
            Some(grant(seconds_now() + 60)),
        );
        let token = signer.runtime_token(&claims);
        assert_eq!(token.split('.').count(), 3);
        assert_eq!(signer.verify_runtime_token(&token), Ok(claims.clone()));
        assert_eq!(claims.backend_ids(), Some(("run-1", "job-1")));
        // What @actions/artifact reads without verifying: the claims, base64url JSON.
        let payload = URL_SAFE_NO_PAD
            .decode(token.split('.').nth(1).unwrap())
            .unwrap();
        let payload: serde_json::Value = serde_json::from_slice(&payload).unwrap();
        assert_eq!(payload["scp"], "Actions.Results:run-1:job-1");

        assert_eq!(
            Signer::new(b"other").verify_runtime_token(&token),
            Err(AuthError::BadSignature)
        );
        // Claims widened under the old signature; `alg: none` with no signature.
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        let mut widened = claims.clone();
        widened.cache.as_mut().unwrap().repository = "acme/other".into();
        parts[1] = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&widened).unwrap());
        assert_eq!(
            signer.verify_runtime_token(&parts.join(".")),
            Err(AuthError::BadSignature)
        );
        let none_header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#);
        let unsigned = format!("{none_header}.{}.", parts[1]);
        assert_eq!(
            signer.verify_runtime_token(&unsigned),
            Err(AuthError::BadSignature)
        );
        // Even signed with the key, only HS256 is taken.
        let signed = format!("{none_header}.{}", parts[1]);
        let other_alg = format!("{signed}.{}", signer.key().sign(signed.as_bytes()));
        assert_eq!(
            signer.verify_runtime_token(&other_alg),
            Err(AuthError::Malformed)
        );
        let expired = RuntimeClaims::new("run-1", "job-1", seconds_now() - 1, None);
        assert_eq!(
            signer.verify_runtime_token(&signer.runtime_token(&expired)),
            Err(AuthError::Expired)
        );
        assert_eq!(signer.verify_runtime_token(""), Err(AuthError::Missing));
        assert_eq!(
            signer.verify_runtime_token("a.b"),
            Err(AuthError::Malformed)
        );
        // A v1 token is no runtime token, and the other way round.
        assert!(signer
            .verify_runtime_token(&signer.token(&grant(seconds_now() + 60)))
            .is_err());
        assert!(signer.verify(&token).is_err());
    }

    #[test]
    fn the_run_ids_are_read_from_the_results_scope() {
        for (scp, expected) in [
            ("Actions.Results:r:j", Some(("r", "j"))),
            ("Actions.Other Actions.Results:r:j", Some(("r", "j"))),
            ("Actions.Results:r", None),
            ("Actions.Results:r:j:x", None),
            ("", None),
        ] {
            let claims = RuntimeClaims {
                scp: scp.into(),
                exp: 0,
                cache: None,
            };
            assert_eq!(claims.backend_ids(), expected, "{scp}");
        }
    }

    #[test]
    fn download_links_are_for_one_entry_until_they_expire() {
        let signer = Signer::new(b"key");
        let query = signer.download_query(7, Duration::from_secs(60));
        let (expires, sig) = query
            .split_once('&')
            .map(|(e, s)| {
                (
                    e.trim_start_matches("expires="),
                    s.trim_start_matches("sig="),
                )
            })
            .unwrap();
        assert_eq!(signer.verify_download(7, expires, sig), Ok(()));
        assert_eq!(
            signer.verify_download(8, expires, sig),
            Err(AuthError::BadSignature)
        );
        let later = (expires.parse::<u64>().unwrap() + 1).to_string();
        assert_eq!(
            signer.verify_download(7, &later, sig),
            Err(AuthError::BadSignature)
        );
        let past = signer.download_query(7, Duration::ZERO);
        let (expires, sig) = past.split_once('&').unwrap();
        assert_eq!(
            signer.verify_download(
                7,
                expires.trim_start_matches("expires="),
                sig.trim_start_matches("sig=")
            ),
            Err(AuthError::Expired)
        );
    }
}
