//! The registration file (`.runner`): who this runner is to the forge.
//!
//! A JSON object, as act_runner writes it, with the keys in its order: `WARNING` (a notice
//! for people who open the file, ignored on load), `id`, `uuid`, `name`, `token`, `address`,
//! `labels` (full `name:scheme:arg` specs) and `ephemeral`. Files written by act_runner and
//! forgejo-runner load as they are: a missing key or a `null` counts as empty, unknown keys
//! are ignored, and a file without `ephemeral` is a runner that is not ephemeral.
//!
//! The token is a secret: the file is written with mode 0600, and as a [`Secret`] it never
//! shows in [`Registration`]'s `Debug`.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use hearth_forge::Secret;
use serde::{Deserialize, Deserializer, Serialize};
use thiserror::Error;

use crate::labels::{LabelError, Labels};

/// What Hearth writes under `WARNING`.
const WARNING_TEXT: &str = "Written by Hearth when the runner was registered; it holds the \
runner's secret token. Edit it only if you know what you are doing. Deleting it means the \
runner must be registered again, and the forge will see it as a new runner.";

/// A registered runner, as kept in the `.runner` file.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Registration {
    /// The runner's id at the forge.
    #[serde(default, deserialize_with = "null_as_default")]
    pub id: i64,
    /// Sent as `x-runner-uuid`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub uuid: String,
    /// The name the forge gave back.
    #[serde(default, deserialize_with = "null_as_default")]
    pub name: String,
    /// Sent as `x-runner-token`; a secret.
    #[serde(default, deserialize_with = "null_as_default")]
    pub token: Secret,
    /// The forge's address as given at registration, e.g. `https://forge.example/`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub address: String,
    /// Labels in full (`name:scheme:arg`); only the names go to the forge.
    #[serde(default, deserialize_with = "null_as_default")]
    pub labels: Vec<String>,
    /// Whether the runner takes one job and is then removed by the forge.
    #[serde(default, deserialize_with = "null_as_default")]
    pub ephemeral: bool,
}

/// The file as written: the notice first, then the registration's keys in order.
#[derive(Serialize)]
struct RegistrationFile<'a> {
    #[serde(rename = "WARNING")]
    warning: &'a str,
    #[serde(flatten)]
    registration: &'a Registration,
}

/// Why the registration file cannot be read or written.
#[derive(Debug, Error)]
pub enum RunnerFileError {
    #[error(
        "{}: no registration file; register the runner first (hearth register), \
         or set runner.file in the config to where the file is",
        path.display()
    )]
    NotFound { path: PathBuf },
    #[error("cannot read the registration file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "the registration file {} is damaged ({source}); fix it, or delete it and register \
         the runner again",
        path.display()
    )]
    Malformed {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "the registration file {} has no {key}; delete it and register the runner again",
        path.display()
    )]
    Incomplete { path: PathBuf, key: &'static str },
    #[error("cannot write the registration file {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl Registration {
    /// Reads the registration file at `path`.
    pub fn load(path: &Path) -> Result<Registration, RunnerFileError> {
        let bytes = fs::read(path).map_err(|source| match source.kind() {
            io::ErrorKind::NotFound => RunnerFileError::NotFound {
                path: path.to_owned(),
            },
            _ => RunnerFileError::Read {
                path: path.to_owned(),
                source,
            },
        })?;
        Self::parse(&bytes, path)
    }

    /// Reads the file's text `bytes`, from the file `path` or kept elsewhere (a Kubernetes
    /// Secret, which `path` then names in messages).
    pub fn parse(bytes: &[u8], path: &Path) -> Result<Registration, RunnerFileError> {
        let malformed = |source| RunnerFileError::Malformed {
            path: path.to_owned(),
            source,
        };
        // Read as a value first: serde would also take a JSON array as the struct.
        let value: serde_json::Value = serde_json::from_slice(bytes).map_err(malformed)?;
        if !value.is_object() {
            return Err(malformed(serde::de::Error::custom(
                "expected a JSON object",
            )));
        }
        let registration: Registration = serde_json::from_value(value).map_err(malformed)?;
        // Without these the forge cannot know the runner; better to say so now than to
        // get "unauthenticated" at the first request.
        for (key, empty) in [
            ("uuid", registration.uuid.is_empty()),
            ("token", registration.token.is_empty()),
        ] {
            if empty {
                return Err(RunnerFileError::Incomplete {
                    path: path.to_owned(),
                    key,
                });
            }
        }
        Ok(registration)
    }

    /// Writes the registration to `path`: a new file beside it, readable by the owner
    /// only, then renamed over the old one, so a crash never leaves half a file.
    pub fn save(&self, path: &Path) -> Result<(), RunnerFileError> {
        let write_error = |source| RunnerFileError::Write {
            path: path.to_owned(),
            source,
        };
        let text = self.to_text().map_err(write_error)?;
        let temp = temp_path(path);
        let written = write_private(&temp, text.as_bytes()).and_then(|()| fs::rename(&temp, path));
        if let Err(source) = written {
            // Best effort: a leftover temporary file must not hold the token.
            let _ = fs::remove_file(&temp);
            return Err(write_error(source));
        }
        Ok(())
    }

    /// The file's text, as [`save`](Self::save) writes it (and a Secret keeps it): it holds
    /// the token.
    pub fn to_text(&self) -> Result<String, io::Error> {
        let mut text = serde_json::to_string_pretty(&RegistrationFile {
            warning: WARNING_TEXT,
            registration: self,
        })
        .map_err(io::Error::other)?;
        text.push('\n');
        Ok(text)
    }

    /// The labels, parsed.
    pub fn parsed_labels(&self) -> Result<Labels, LabelError> {
        Labels::parse(&self.labels)
    }
}

/// A temporary name in the same folder (so the rename stays on one file system), hidden
/// and unique to this process.
fn temp_path(path: &Path) -> PathBuf {
    let name = path.file_name().map_or_else(
        || ".runner".into(),
        |name| name.to_string_lossy().into_owned(),
    );
    path.with_file_name(format!(".{name}.{}.tmp", std::process::id()))
}

/// Creates `path` afresh with mode 0600 (on Unix) and writes `bytes` to disk.
fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file: File = options.open(path)?;
    // A leftover file of the same name may have had wider permissions.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(fs::Permissions::from_mode(0o600))?;
    }
    file.write_all(bytes)?;
    file.sync_all()
}

/// Go writes zero values and reads `null` as them; so does Hearth.
fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Registration {
        Registration {
            id: 42,
            uuid: "6d1c3a4e-2b7f-4c1a-9e8d-0f5b6a7c8d9e".to_owned(),
            name: "builder-1".to_owned(),
            token: "0123456789abcdef0123456789abcdef01234567".into(),
            address: "https://forge.example/".to_owned(),
            labels: vec![
                "ubuntu-latest:docker://node:20-bookworm".to_owned(),
                "self-hosted:host".to_owned(),
            ],
            ephemeral: false,
        }
    }

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".runner");
        let mut registration = sample();
        registration.save(&path).unwrap();
        assert_eq!(Registration::load(&path).unwrap(), registration);
        registration.ephemeral = true;
        registration.save(&path).unwrap();
        assert_eq!(Registration::load(&path).unwrap(), registration);
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(names, [".runner"], "no temporary file is left");
    }

    #[test]
    fn written_with_two_space_indent_in_act_runners_key_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".runner");
        sample().save(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let expected = format!(
            "{{\n  \"WARNING\": {},\n  \"id\": 42,\n  \
             \"uuid\": \"6d1c3a4e-2b7f-4c1a-9e8d-0f5b6a7c8d9e\",\n  \"name\": \"builder-1\",\n  \
             \"token\": \"0123456789abcdef0123456789abcdef01234567\",\n  \
             \"address\": \"https://forge.example/\",\n  \"labels\": [\n    \
             \"ubuntu-latest:docker://node:20-bookworm\",\n    \"self-hosted:host\"\n  ],\n  \
             \"ephemeral\": false\n}}\n",
            serde_json::to_string(WARNING_TEXT).unwrap()
        );
        assert_eq!(text, expected);
    }

    #[cfg(unix)]
    #[test]
    fn file_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".runner");
        std::fs::write(&path, "{}").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        sample().save(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    /// As act_runner writes it (its notice replaced by other text: only the key matters).
    #[test]
    fn reads_act_runners_file() {
        let text = r#"{
  "WARNING": "a notice from another runner",
  "id": 7,
  "uuid": "1b4e28ba-2fa1-11d2-883f-0016d3cca427",
  "name": "gitea-runner",
  "token": "abcdef0123456789abcdef0123456789abcdef01",
  "address": "http://gitea:3000",
  "labels": [
    "ubuntu-latest:docker://docker.gitea.com/runner-images:ubuntu-latest",
    "ubuntu-22.04:docker://docker.gitea.com/runner-images:ubuntu-22.04"
  ],
  "ephemeral": true
}
"#;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".runner");
        std::fs::write(&path, text).unwrap();
        let registration = Registration::load(&path).unwrap();
        assert_eq!(registration.id, 7);
        assert_eq!(registration.uuid, "1b4e28ba-2fa1-11d2-883f-0016d3cca427");
        assert_eq!(registration.name, "gitea-runner");
        assert_eq!(
            registration.token.expose(),
            "abcdef0123456789abcdef0123456789abcdef01"
        );
        assert_eq!(registration.address, "http://gitea:3000");
        assert!(registration.ephemeral);
        let labels = registration.parsed_labels().unwrap();
        assert_eq!(
            labels.get("ubuntu-22.04").and_then(|l| l.image()),
            Some("docker.gitea.com/runner-images:ubuntu-22.04")
        );
    }

    /// Older act_runner and forgejo-runner files: no `ephemeral`, unknown or null keys.
    #[test]
    fn reads_files_without_ephemeral_and_with_extra_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".runner");
        std::fs::write(
            &path,
            r#"{"WARNING":"x","id":3,"uuid":"u","name":"n","token":"t",
                "address":"https://code.forgejo.example","labels":null,"extra":{"a":1}}"#,
        )
        .unwrap();
        let registration = Registration::load(&path).unwrap();
        assert_eq!(registration.id, 3);
        assert!(!registration.ephemeral);
        assert!(registration.labels.is_empty());
    }

    #[test]
    fn missing_file_says_to_register() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".runner");
        let error = Registration::load(&path).unwrap_err();
        assert!(matches!(error, RunnerFileError::NotFound { .. }), "{error}");
        let message = error.to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(message.contains("register the runner first"), "{message}");
    }

    #[test]
    fn malformed_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".runner");
        for text in ["", "{", "[]", r#"{"id": "7"}"#, r#"{"labels": "a"}"#] {
            std::fs::write(&path, text).unwrap();
            let error = Registration::load(&path).unwrap_err();
            assert!(
                matches!(error, RunnerFileError::Malformed { .. }),
                "{text:?}: {error}"
            );
            assert!(error.to_string().contains(".runner"), "{error}");
        }
    }

    #[test]
    fn file_without_uuid_or_token_is_incomplete() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".runner");
        for (text, key) in [("{}", "uuid"), (r#"{"uuid": "u", "token": null}"#, "token")] {
            std::fs::write(&path, text).unwrap();
            let error = Registration::load(&path).unwrap_err();
            assert!(
                matches!(error, RunnerFileError::Incomplete { key: k, .. } if k == key),
                "{text}: {error}"
            );
        }
    }

    /// What a Secret keeps is the file's text, and it reads back the same.
    #[test]
    fn text_is_the_files_and_parses_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".runner");
        let mut registration = sample();
        registration
            .labels
            .push("k8s:kubernetes://hearth-test/debian:1".to_owned());
        registration.save(&path).unwrap();
        let text = registration.to_text().unwrap();
        assert_eq!(text, std::fs::read_to_string(&path).unwrap());
        let origin = Path::new("secret/hearth-runner");
        assert_eq!(
            Registration::parse(text.as_bytes(), origin).unwrap(),
            registration
        );
        let error = Registration::parse(b"[]", origin).unwrap_err();
        assert!(
            error.to_string().contains("secret/hearth-runner"),
            "{error}"
        );
    }

    #[test]
    fn debug_hides_the_token() {
        let registration = sample();
        let shown = format!("{registration:?}{registration:#?}{}", registration.token);
        assert!(!shown.contains("0123456789abcdef"), "{shown}");
        assert!(shown.contains("builder-1"), "{shown}");
    }

    #[test]
    fn save_into_a_missing_folder_fails_cleanly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent").join(".runner");
        let error = sample().save(&path).unwrap_err();
        assert!(matches!(error, RunnerFileError::Write { .. }), "{error}");
    }
}
