//! Links signed with the server's key: `?expires=<seconds>&sig=<signature>` after a path, the
//! signature an HMAC-SHA256 of what the link is for (`resource`, e.g. `cache-upload:17`) and
//! its expiry. The toolkit masks a link's `sig` in its logs.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Why a link or a token is refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error("the link is not signed")]
    Unsigned,
    #[error("the signature is malformed")]
    Malformed,
    #[error("the signature is not this server's")]
    BadSignature,
    #[error("the link expired")]
    Expired,
}

/// Seconds since the Unix epoch.
pub fn seconds_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// An HMAC-SHA256 key.
#[derive(Clone)]
pub struct Key {
    key: Vec<u8>,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(..)")
    }
}

impl Key {
    pub fn new(key: &[u8]) -> Key {
        Key { key: key.to_vec() }
    }

    /// A random key of 32 bytes.
    pub fn random() -> Result<Key, getrandom::Error> {
        let mut key = vec![0; 32];
        getrandom::fill(&mut key)?;
        Ok(Key { key })
    }

    fn mac(&self, message: &[u8]) -> Hmac<Sha256> {
        // HMAC takes a key of any length.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC accepts every key length"));
        mac.update(message);
        mac
    }

    /// The signature of `message`, URL-safe base64 without padding.
    pub fn sign(&self, message: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(self.mac(message).finalize().into_bytes())
    }

    /// Checks `signature` (as [`Key::sign`] writes it) of `message`, in constant time.
    pub fn verify(&self, message: &[u8], signature: &str) -> Result<(), LinkError> {
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| LinkError::Malformed)?;
        self.mac(message)
            .verify_slice(&signature)
            .map_err(|_| LinkError::BadSignature)
    }

    /// The query of a link to `resource` valid for `valid` from now.
    pub fn link_query(&self, resource: &str, valid: Duration) -> String {
        let expires = seconds_now() + valid.as_secs();
        let signature = self.sign(format!("{resource}:{expires}").as_bytes());
        format!("expires={expires}&sig={signature}")
    }

    /// Checks a link's `expires` and `sig` for `resource`.
    pub fn verify_link(
        &self,
        resource: &str,
        expires: Option<&str>,
        sig: Option<&str>,
    ) -> Result<(), LinkError> {
        let (Some(expires), Some(sig)) = (expires, sig) else {
            return Err(LinkError::Unsigned);
        };
        let until: u64 = expires.parse().map_err(|_| LinkError::Malformed)?;
        self.verify(format!("{resource}:{expires}").as_bytes(), sig)?;
        if until <= seconds_now() {
            return Err(LinkError::Expired);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(query: &str) -> (String, String) {
        let (expires, sig) = query.split_once('&').unwrap();
        (
            expires.trim_start_matches("expires=").to_owned(),
            sig.trim_start_matches("sig=").to_owned(),
        )
    }

    #[test]
    fn a_link_is_for_one_resource_until_it_expires() {
        let key = Key::new(b"key");
        let (expires, sig) = parts(&key.link_query("cache-upload:7", Duration::from_secs(60)));
        let check = |resource: &str, expires: &str, sig: &str| {
            key.verify_link(resource, Some(expires), Some(sig))
        };
        assert_eq!(check("cache-upload:7", &expires, &sig), Ok(()));
        assert_eq!(
            check("cache-upload:8", &expires, &sig),
            Err(LinkError::BadSignature)
        );
        let later = (expires.parse::<u64>().unwrap() + 1).to_string();
        assert_eq!(
            check("cache-upload:7", &later, &sig),
            Err(LinkError::BadSignature)
        );
        assert_eq!(
            Key::new(b"other").verify_link("cache-upload:7", Some(&expires), Some(&sig)),
            Err(LinkError::BadSignature)
        );
        let (expires, sig) = parts(&key.link_query("cache-upload:7", Duration::ZERO));
        assert_eq!(
            check("cache-upload:7", &expires, &sig),
            Err(LinkError::Expired)
        );
        assert_eq!(
            key.verify_link("cache-upload:7", None, Some(&sig)),
            Err(LinkError::Unsigned)
        );
        assert_eq!(
            check("cache-upload:7", "soon", &sig),
            Err(LinkError::Malformed)
        );
    }
}
