//! The runner's registration (the `.runner` file's contents) kept in a Secret of the runner's
//! namespace, so that a runner Pod that is replaced keeps its identity.
//!
//! The Secret is of type `Opaque`, holds the registration under the key `.runner`, and is
//! labelled as Hearth's (`hearth.backend=kubernetes`, `app.kubernetes.io/managed-by=hearth`).
//! The runner's account needs `get`, `create` and `update` on `secrets` in its namespace; when
//! the cluster refuses, the error names the Secret, the namespace and the verb to grant.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::ByteString;
use kube::api::PostParams;

use crate::{KubernetesError, KubernetesSettings, BACKEND_LABEL};

/// The key of the Secret that holds the registration: the file's own name.
pub const RUNNER_KEY: &str = ".runner";

/// The label saying which tool manages the Secret (Kubernetes' recommended label).
pub const MANAGED_BY_LABEL: (&str, &str) = ("app.kubernetes.io/managed-by", "hearth");

/// The only type of Secret the registration is kept in.
const SECRET_TYPE: &str = "Opaque";

/// How many times a replace that lost a race with another writer is tried again.
const REPLACE_ATTEMPTS: usize = 3;

/// Where the registration is kept: a Secret of the runner's namespace, under the key `.runner`.
pub struct RunnerSecret {
    api: kube::Api<Secret>,
    namespace: String,
    name: String,
}

impl RunnerSecret {
    /// The Secret `name` in the namespace `settings` give (the runner's own in a cluster).
    pub async fn connect(
        settings: &KubernetesSettings,
        name: &str,
    ) -> Result<RunnerSecret, KubernetesError> {
        let (client, namespace) = crate::connect(settings).await?;
        Ok(RunnerSecret::with_client(client, &namespace, name))
    }

    /// The Secret `name` in `namespace`, through a client already made.
    pub fn with_client(client: kube::Client, namespace: &str, name: &str) -> RunnerSecret {
        RunnerSecret {
            api: kube::Api::namespaced(client, namespace),
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        }
    }

    /// The Secret's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The namespace the Secret is in.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The registration kept, `None` when the Secret or its key is not there yet (or the key
    /// is empty, as an empty `.runner` file counts as none).
    pub async fn load(&self) -> Result<Option<String>, KubernetesError> {
        let secret = self
            .api
            .get_opt(&self.name)
            .await
            .map_err(|source| self.api_error("get", "read", source))?;
        let Some(secret) = secret else {
            return Ok(None);
        };
        let Some(ByteString(bytes)) = secret.data.and_then(|mut data| data.remove(RUNNER_KEY))
        else {
            return Ok(None);
        };
        if bytes.is_empty() {
            return Ok(None);
        }
        String::from_utf8(bytes).map(Some).map_err(|_| {
            KubernetesError::Invalid(format!(
                "the key {RUNNER_KEY} of Secret {} in namespace {} is not UTF-8 text, so not a \
                 registration Hearth wrote",
                self.name, self.namespace
            ))
        })
    }

    /// Keeps `contents` (the `.runner` file's text), creating or replacing the Secret.
    ///
    /// A Secret already there (another runner Pod, or an earlier registration) is replaced:
    /// its `.runner` key becomes `contents`, its other keys are dropped, its labels are kept
    /// with Hearth's added. Only an `Opaque` Secret is replaced, so that a Secret of another
    /// kind that happens to have the name is never overwritten.
    pub async fn save(&self, contents: &str) -> Result<(), KubernetesError> {
        let secret = Secret {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                labels: Some(hearth_labels()),
                ..ObjectMeta::default()
            },
            type_: Some(SECRET_TYPE.to_owned()),
            data: Some(registration_data(contents)),
            ..Secret::default()
        };
        match self.api.create(&PostParams::default(), &secret).await {
            Ok(_) => {
                tracing::debug!(secret = %self.name, namespace = %self.namespace, "registration kept in a new Secret");
                return Ok(());
            }
            Err(kube::Error::Api(status)) if status.code == 409 => {}
            Err(source) => return Err(self.api_error("create", "create", source)),
        }
        // It exists: replace it as read, so that a concurrent change is noticed (409) rather
        // than overwritten unseen, and tried again on what that writer left.
        let mut attempt = 1;
        loop {
            let existing = self
                .api
                .get_opt(&self.name)
                .await
                .map_err(|source| self.api_error("get", "read", source))?;
            let Some(mut existing) = existing else {
                // Deleted between the create and now: create it again.
                return match self.api.create(&PostParams::default(), &secret).await {
                    Ok(_) => Ok(()),
                    Err(source) => Err(self.api_error("create", "create", source)),
                };
            };
            let kind = existing.type_.as_deref().unwrap_or(SECRET_TYPE);
            if kind != SECRET_TYPE {
                return Err(KubernetesError::Invalid(format!(
                    "Secret {} in namespace {} is of type {kind}, not {SECRET_TYPE}: it is not \
                     Hearth's registration; name another in kubernetes.runner_secret or delete it",
                    self.name, self.namespace
                )));
            }
            existing
                .metadata
                .labels
                .get_or_insert_with(BTreeMap::new)
                .extend(hearth_labels());
            existing.data = Some(registration_data(contents));
            existing.string_data = None;
            match self
                .api
                .replace(&self.name, &PostParams::default(), &existing)
                .await
            {
                Ok(_) => {
                    tracing::debug!(secret = %self.name, namespace = %self.namespace, "registration kept in the existing Secret");
                    return Ok(());
                }
                Err(kube::Error::Api(status))
                    if status.code == 409 && attempt < REPLACE_ATTEMPTS =>
                {
                    tracing::debug!(secret = %self.name, attempt, "Secret changed while replacing it; reading it again");
                    attempt += 1;
                }
                Err(source) => return Err(self.api_error("update", "replace", source)),
            }
        }
    }

    /// The error for a request (RBAC `verb`, described as `doing`) the API refused, naming
    /// the Secret and its namespace, and on 403 the RBAC rule the runner's account lacks.
    fn api_error(&self, verb: &str, doing: &str, source: kube::Error) -> KubernetesError {
        let forbidden = matches!(&source, kube::Error::Api(status) if status.code == 403);
        let what = if forbidden {
            format!(
                "cannot {doing} Secret {} in namespace {} (the registration): the runner's \
                 account is not allowed to {verb} secrets there; grant it the RBAC verb \
                 `{verb}` on `secrets` in namespace {} (a Role and RoleBinding)",
                self.name, self.namespace, self.namespace
            )
        } else {
            format!(
                "cannot {doing} Secret {} in namespace {} (the registration)",
                self.name, self.namespace
            )
        };
        KubernetesError::Api { what, source }
    }
}

/// The labels every registration Secret carries.
fn hearth_labels() -> BTreeMap<String, String> {
    [BACKEND_LABEL, MANAGED_BY_LABEL]
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect()
}

fn registration_data(contents: &str) -> BTreeMap<String, ByteString> {
    BTreeMap::from([(
        RUNNER_KEY.to_owned(),
        ByteString(contents.as_bytes().to_vec()),
    )])
}
