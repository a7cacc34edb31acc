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

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

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

/// The server's signing key.
#[derive(Clone)]
pub struct Signer {
    key: Vec<u8>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(..)")
    }
}

fn seconds_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Signer {
    /// A signer with `key` (a shared secret, for servers that accept each other's tokens).
    pub fn new(key: &[u8]) -> Signer {
        Signer { key: key.to_vec() }
    }

    /// A signer with a random key of its own.
    pub fn random() -> Result<Signer, getrandom::Error> {
        let mut key = vec![0; 32];
        getrandom::fill(&mut key)?;
        Ok(Signer { key })
    }

    fn mac(&self, message: &[u8]) -> Hmac<Sha256> {
        // HMAC takes a key of any length.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC accepts every key length"));
        mac.update(message);
        mac
    }

    fn sign(&self, message: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(self.mac(message).finalize().into_bytes())
    }

    fn verify_signature(&self, message: &[u8], signature: &str) -> Result<(), AuthError> {
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| AuthError::Malformed)?;
        // Compared in constant time.
        self.mac(message)
            .verify_slice(&signature)
            .map_err(|_| AuthError::BadSignature)
    }

    /// A token carrying `grant`.
    pub fn token(&self, grant: &Grant) -> String {
        let claims = serde_json::to_vec(grant).unwrap_or_default();
        let claims = URL_SAFE_NO_PAD.encode(claims);
        let signature = self.sign(claims.as_bytes());
        format!("{claims}.{signature}")
    }

    /// The grant `token` carries, if this server signed it and it has not expired.
    pub fn verify(&self, token: &str) -> Result<Grant, AuthError> {
        if token.is_empty() {
            return Err(AuthError::Missing);
        }
        let (claims, signature) = token.split_once('.').ok_or(AuthError::Malformed)?;
        self.verify_signature(claims.as_bytes(), signature)?;
        let claims = URL_SAFE_NO_PAD
            .decode(claims)
            .map_err(|_| AuthError::Malformed)?;
        let grant: Grant = serde_json::from_slice(&claims).map_err(|_| AuthError::Malformed)?;
        if grant.expires <= seconds_now() {
            return Err(AuthError::Expired);
        }
        Ok(grant)
    }

    /// The query of a link to download entry `id` until `valid` from now:
    /// `expires=<seconds>&sig=<signature>`.
    pub fn download_query(&self, id: u64, valid: Duration) -> String {
        let expires = seconds_now() + valid.as_secs();
        let signature = self.sign(format!("download:{id}:{expires}").as_bytes());
        format!("expires={expires}&sig={signature}")
    }

    /// Checks a download link's `expires` and `sig` for entry `id`.
    pub fn verify_download(&self, id: u64, expires: &str, sig: &str) -> Result<(), AuthError> {
        let until: u64 = expires.parse().map_err(|_| AuthError::Malformed)?;
        self.verify_signature(format!("download:{id}:{expires}").as_bytes(), sig)?;
        if until <= seconds_now() {
            return Err(AuthError::Expired);
        }
        Ok(())
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
