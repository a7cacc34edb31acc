//! The runner's registration (the `.runner` file's contents) kept in a Secret of the runner's
//! namespace, so that a runner Pod that is replaced keeps its identity.

use crate::{KubernetesError, KubernetesSettings};

/// Where the registration is kept: a Secret of the runner's namespace, under the key `.runner`.
pub struct RunnerSecret {
    api: kube::Api<k8s_openapi::api::core::v1::Secret>,
    name: String,
}

impl RunnerSecret {
    /// The Secret `name` in the namespace `settings` give (the runner's own in a cluster).
    pub async fn connect(
        settings: &KubernetesSettings,
        name: &str,
    ) -> Result<RunnerSecret, KubernetesError> {
        let (client, namespace) = crate::connect(settings).await?;
        Ok(RunnerSecret {
            api: kube::Api::namespaced(client, &namespace),
            name: name.to_owned(),
        })
    }

    /// The registration kept, `None` when the Secret or its key is not there yet.
    pub async fn load(&self) -> Result<Option<String>, KubernetesError> {
        let _ = (&self.api, &self.name);
        Err(KubernetesError::Invalid("not implemented yet".to_owned()))
    }

    /// Keeps `contents` (the `.runner` file's text), creating or replacing the Secret.
    pub async fn save(&self, contents: &str) -> Result<(), KubernetesError> {
        let _ = contents;
        Err(KubernetesError::Invalid("not implemented yet".to_owned()))
    }
}
