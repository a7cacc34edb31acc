//! [`Secret`]: a token or password that never shows itself by accident.
//!
//! The runner's token, a registration token, a task's token and secrets travel through
//! structs that derive `Debug`, get printed in errors, and may one day reach a `tracing` field.
//! A `Secret` prints as `***` in both `Debug` and `Display`; the value comes out only through
//! [`Secret::expose`], which makes every place that needs it visible. The value is kept in
//! `secrecy`'s `SecretString`, which also wipes it from memory when dropped.
//!
//! A newtype rather than `SecretString` itself, because the types that hold secrets here need
//! what `SecretString` leaves out on purpose: equality (tests compare tasks and
//! registrations), serialisation as a plain string (the `.runner` file) and a `Display` that
//! prints a placeholder instead of not compiling in a `format!`.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// What `Debug` and `Display` print instead of the value (the masker's replacement).
pub const PLACEHOLDER: &str = "***";

/// A token or password; `Debug` and `Display` print [`PLACEHOLDER`].
#[derive(Clone, Default)]
pub struct Secret(SecretString);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(SecretString::from(value.into()))
    }

    /// The value, for the one place that must send or compare it.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    pub fn is_empty(&self) -> bool {
        self.expose().is_empty()
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Secret {
        Secret::new(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Secret {
        Secret::new(value)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({PLACEHOLDER})")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(PLACEHOLDER)
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Secret) -> bool {
        self.expose() == other.expose()
    }
}

impl Eq for Secret {}

/// As the plain string it is on the wire and in files.
impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.expose())
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Secret, D::Error> {
        String::deserialize(deserializer).map(Secret::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_show_the_value() {
        let secret = Secret::from("hunter2-token");
        for shown in [
            format!("{secret:?}"),
            format!("{secret:#?}"),
            format!("{secret}"),
            format!("{:?}", Some(&secret)),
        ] {
            assert!(!shown.contains("hunter2"), "{shown}");
            assert!(shown.contains(PLACEHOLDER), "{shown}");
        }
        assert_eq!(secret.expose(), "hunter2-token");
    }

    #[test]
    fn it_is_a_plain_string_in_json_and_compares_by_value() {
        let secret = Secret::from("abc");
        assert_eq!(serde_json::to_string(&secret).unwrap(), r#""abc""#);
        let back: Secret = serde_json::from_str(r#""abc""#).unwrap();
        assert_eq!(back, secret);
        assert_ne!(back, Secret::from("abd"));
        assert!(Secret::default().is_empty());
    }
}
