//! What `hearth doctor` asks the Docker daemon: its version and data root, and whether a
//! label's image is there or could be pulled with the credentials a job would use, without
//! pulling it (the registry's manifest through the Engine API's distribution inspect).

use crate::mirror::mirrored;
use crate::registry::{registry_host, Found};
use crate::DockerBackend;

/// The daemon, as `docker version` and `docker info` describe it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EngineFacts {
    /// The daemon's version (`20.10.24`, podman's own).
    pub version: String,
    /// The Engine API version it speaks.
    pub api_version: String,
    /// Where it keeps images and containers (`/var/lib/docker`), on the daemon's machine.
    pub data_root: Option<String>,
}

/// Whether a job could start with an image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImageAvailability {
    /// The daemon has it.
    Local,
    /// Not here, but its registry has it for the credentials a job would use.
    Pullable {
        /// The registry's host, or `the mirror HOST`.
        from: String,
        /// Where the credentials come from; `None`: none were sent.
        credentials_from: Option<String>,
    },
    /// Neither: what the registry (or the daemon) said, and the credential sources looked at.
    Unavailable {
        registry: String,
        answer: String,
        tried: Vec<String>,
    },
}

impl DockerBackend {
    /// The daemon's version and data root.
    pub async fn engine_facts(&self) -> Result<EngineFacts, bollard::errors::Error> {
        let version = self.docker.version().await?;
        // An old or odd daemon without `info` still answered `version`: the data root is
        // then unknown, not an error.
        let info = self.docker.info().await.ok();
        Ok(EngineFacts {
            version: version.version.unwrap_or_default(),
            api_version: version.api_version.unwrap_or_default(),
            data_root: info.and_then(|info| info.docker_root_dir),
        })
    }

    /// Whether `image` is here or pullable as a job's pull would pull it: from its
    /// registry's mirror first (`container.registry_mirrors`), then from the registry with
    /// the credentials found for it (`container.registries`, `container.docker_config`, the
    /// user's Docker config; not a task's token, which only a task has). With
    /// `container.force_pull` an image that is here is pulled anyway, so its registry counts.
    pub async fn image_availability(&self, image: &str) -> ImageAvailability {
        if !self.settings.force_pull && self.docker.inspect_image(image).await.is_ok() {
            return ImageAvailability::Local;
        }
        let mut answers = Vec::new();
        if let Some(mirrored) = mirrored(image, &self.settings.registry_mirrors) {
            // As a pull from the mirror: without the registry's credentials.
            match self
                .docker
                .inspect_registry_image(&mirrored.reference, None)
                .await
            {
                Ok(_) => {
                    return ImageAvailability::Pullable {
                        from: format!("the mirror {}", mirrored.mirror),
                        credentials_from: None,
                    }
                }
                Err(e) => answers.push(format!(
                    "the mirror {} said: {}",
                    mirrored.mirror,
                    engine_message(&e)
                )),
            }
        }
        let registry = registry_host(image);
        let (found, tried) = self.registries.resolve(&registry, None, None).await;
        let (credentials, credentials_from) = match found {
            Some(Found {
                credentials,
                source,
            }) => (Some(credentials), Some(source)),
            None => (None, None),
        };
        match self.docker.inspect_registry_image(image, credentials).await {
            Ok(_) => ImageAvailability::Pullable {
                from: registry,
                credentials_from,
            },
            Err(e) => {
                answers.push(engine_message(&e));
                ImageAvailability::Unavailable {
                    registry,
                    answer: answers.join("; "),
                    tried,
                }
            }
        }
    }
}

/// The daemon's own message for a refused request, else the error as bollard says it.
fn engine_message(error: &bollard::errors::Error) -> String {
    match error {
        bollard::errors::Error::DockerResponseServerError { message, .. } => message.clone(),
        other => other.to_string(),
    }
}
