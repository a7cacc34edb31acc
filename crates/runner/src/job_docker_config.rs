//! `expose_to_jobs`: a job that can reach a Docker daemon (a host job, a container job given
//! the socket) gets a Docker config of its own holding the credentials of the registries
//! marked so, in a folder `DOCKER_CONFIG` names. `docker push` then works with no `docker
//! login` step and no secret in the workflow, nothing is written to any home directory, and
//! the folder goes with the job's temp folder. Passwords are read for each job, so a rotated
//! file applies to the next one.

use base64::Engine as _;
use hearth_engine::job::EnvFolder;
use secrecy::{ExposeSecret as _, SecretString};

use crate::config::{RegistryConfig, RegistryPassword};

/// The variable the Docker CLI (and buildx, and most tools that push images) reads.
const VARIABLE: &str = "DOCKER_CONFIG";
/// The folder's name under the job's temp folder.
const FOLDER: &str = "_docker_config";

/// A job's Docker config and the values to mask in its log.
pub struct JobDockerConfig {
    pub folder: EnvFolder,
    /// The passwords and the `auth` strings that encode them.
    pub secrets: Vec<SecretString>,
}

/// Why a job's Docker config cannot be made.
#[derive(Debug, thiserror::Error)]
#[error("container.registries ({host}, expose_to_jobs): {reason}")]
pub struct JobDockerConfigError {
    host: String,
    reason: String,
}

/// The Docker config for a job from the entries marked `expose_to_jobs`; `None` when there
/// are none.
pub fn for_job(
    registries: &[RegistryConfig],
) -> Result<Option<JobDockerConfig>, JobDockerConfigError> {
    let mut auths = serde_json::Map::new();
    let mut secrets = Vec::new();
    for entry in registries.iter().filter(|e| e.expose_to_jobs) {
        let password = read_password(&entry.password).map_err(|reason| JobDockerConfigError {
            host: entry.host.clone(),
            reason,
        })?;
        let auth = base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            entry.username,
            password.expose_secret()
        ));
        auths.insert(
            entry.host.clone(),
            serde_json::json!({ "auth": auth.as_str() }),
        );
        secrets.push(password);
        secrets.push(SecretString::from(auth));
    }
    if auths.is_empty() {
        return Ok(None);
    }
    let config = serde_json::json!({ "auths": auths }).to_string();
    Ok(Some(JobDockerConfig {
        folder: EnvFolder {
            env: VARIABLE.to_owned(),
            name: FOLDER.to_owned(),
            files: vec![("config.json".to_owned(), SecretString::from(config))],
        },
        secrets,
    }))
}

fn read_password(source: &RegistryPassword) -> Result<SecretString, String> {
    match source {
        RegistryPassword::Literal(secret) => Ok(secret.clone()),
        RegistryPassword::Env(name) => std::env::var(name)
            .map(SecretString::from)
            .map_err(|_| format!("the environment variable {name} is not set")),
        RegistryPassword::File(path) => std::fs::read_to_string(path)
            .map(|text| SecretString::from(text.trim_end_matches(['\n', '\r']).to_owned()))
            .map_err(|e| format!("cannot read {}: {e}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(host: &str, password: RegistryPassword, expose_to_jobs: bool) -> RegistryConfig {
        RegistryConfig {
            host: host.to_owned(),
            username: "ci".to_owned(),
            password,
            expose_to_jobs,
        }
    }

    #[test]
    fn only_exposed_registries_are_written_with_their_current_password() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("password");
        std::fs::write(&file, "first\n").unwrap();
        let registries = [
            entry("127.0.0.1:5999", RegistryPassword::File(file.clone()), true),
            entry(
                "pull.example.com",
                RegistryPassword::Literal("kept".into()),
                false,
            ),
        ];
        let read = |registries: &[RegistryConfig]| {
            let made = for_job(registries).unwrap().unwrap();
            let (name, contents) = &made.folder.files[0];
            assert_eq!(
                (made.folder.env.as_str(), name.as_str()),
                ("DOCKER_CONFIG", "config.json")
            );
            let json: serde_json::Value = serde_json::from_str(contents.expose_secret()).unwrap();
            let masks: Vec<String> = made
                .secrets
                .iter()
                .map(|s| s.expose_secret().to_owned())
                .collect();
            (json, masks)
        };
        let (json, masks) = read(&registries);
        let auths = json["auths"].as_object().unwrap();
        assert_eq!(auths.keys().collect::<Vec<_>>(), ["127.0.0.1:5999"]);
        // `ci:first`, as the Docker CLI encodes it.
        assert_eq!(auths["127.0.0.1:5999"]["auth"], "Y2k6Zmlyc3Q=");
        assert_eq!(masks, ["first", "Y2k6Zmlyc3Q="]);
        // A rotated file applies to the next job.
        std::fs::write(&file, "second").unwrap();
        let (json, _) = read(&registries);
        assert_eq!(json["auths"]["127.0.0.1:5999"]["auth"], "Y2k6c2Vjb25k");
    }

    #[test]
    fn none_without_exposed_entries_and_an_error_naming_an_unreadable_one() {
        assert!(
            for_job(&[entry("r", RegistryPassword::Literal("p".into()), false)])
                .unwrap()
                .is_none()
        );
        let missing = entry(
            "r.example.com",
            RegistryPassword::Env("HEARTH_TEST_NO_SUCH_VARIABLE".into()),
            true,
        );
        let error = for_job(&[missing]).err().unwrap().to_string();
        assert_eq!(
            error,
            "container.registries (r.example.com, expose_to_jobs): the environment variable \
             HEARTH_TEST_NO_SUCH_VARIABLE is not set"
        );
    }
}
