//! The Kubernetes backend as the config's `kubernetes.*` keys set it up, for `hearth daemon`
//! and `hearth exec` alike, and the registration kept in a Secret (`kubernetes.runner_secret`)
//! for `hearth register` and `hearth daemon`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use hearth_kubernetes::runner_secret::RunnerSecret;
use hearth_kubernetes::{KubernetesBackend, KubernetesSettings};
use hearth_runner::config::{Config, KubernetesConfig};
use hearth_runner::runner_file::{Registration, RunnerFileError};

/// The backend's settings from the config's section.
pub fn settings(config: &KubernetesConfig) -> KubernetesSettings {
    KubernetesSettings {
        namespace: config.namespace.clone(),
        kubeconfig: config.kubeconfig.clone(),
        context: config.context.clone(),
        service_account: config.service_account.clone(),
        image_pull_secrets: config.image_pull_secrets.clone(),
        pull_policy: Some(config.pull_policy.as_str().to_owned()),
        requests: config.requests.clone(),
        limits: config.limits.clone(),
        node_selector: config.node_selector.clone(),
        tolerations: config.tolerations.clone(),
        pod_template: config.pod_template.clone(),
    }
}

/// Where the runner looks for the cluster, in the words of the config: for messages that
/// must say what to change.
pub fn describe(config: &KubernetesConfig) -> String {
    let kubeconfig = match &config.kubeconfig {
        Some(path) => format!("kubernetes.kubeconfig {}", path.display()),
        None => match std::env::var_os("KUBECONFIG").filter(|v| !v.is_empty()) {
            Some(value) => format!(
                "KUBECONFIG {} (kubernetes.kubeconfig is not set)",
                value.to_string_lossy()
            ),
            None => "the default kubeconfig (~/.kube/config, else the ServiceAccount of the \
                     Pod the runner runs in; kubernetes.kubeconfig and KUBECONFIG are not set)"
                .to_owned(),
        },
    };
    let context = match &config.context {
        Some(context) => format!("context {context}"),
        None => "its current context".to_owned(),
    };
    let namespace = match &config.namespace {
        Some(namespace) => format!("namespace {namespace}"),
        None => "the context's namespace (kubernetes.namespace is not set)".to_owned(),
    };
    format!("{kubeconfig}, {context}, {namespace}")
}

/// The backend, or why the runner cannot use the cluster, naming where it looked; it lends
/// the runner's node (bundled under `externals`, as for Docker) to images without one.
pub async fn backend(
    config: &KubernetesConfig,
    externals: std::path::PathBuf,
) -> Result<KubernetesBackend> {
    let backend = KubernetesBackend::connect(settings(config))
        .await
        .with_context(|| format!("cannot use Kubernetes through {}", describe(config)))?;
    Ok(backend.with_node_lending(externals))
}

/// Where the registration is kept: `runner.file`, or the Secret `kubernetes.runner_secret`
/// (then `runner.file` is read only when the Secret has none yet, to move it there).
pub enum RegistrationStore {
    File(PathBuf),
    Secret {
        /// Boxed: the client is large, and the store is moved around once.
        secret: Box<RunnerSecret>,
        name: String,
        file: PathBuf,
    },
}

impl RegistrationStore {
    /// The store the config names; a Secret is reached (not read) here. Needs the runtime:
    /// the Kubernetes client runs on it.
    pub async fn open(config: &Config) -> Result<RegistrationStore> {
        let file = config.runner.file.clone();
        let Some(name) = &config.kubernetes.runner_secret else {
            return Ok(RegistrationStore::File(file));
        };
        let secret = RunnerSecret::connect(&settings(&config.kubernetes), name)
            .await
            .with_context(|| {
                format!(
                    "cannot reach the Secret {name} (kubernetes.runner_secret) that keeps the \
                     registration, through {}",
                    describe(&config.kubernetes)
                )
            })?;
        Ok(RegistrationStore::Secret {
            secret: Box::new(secret),
            name: name.clone(),
            file,
        })
    }

    /// Where the registration is, for messages: the file, or `secret/NAME`.
    pub fn origin(&self) -> PathBuf {
        match self {
            RegistrationStore::File(file) => file.clone(),
            RegistrationStore::Secret { name, .. } => secret_origin(name),
        }
    }

    /// The registration. From a Secret that has none yet, the file's (as written by an
    /// earlier `register` without `runner_secret`), which is then kept in the Secret.
    pub async fn load(&self) -> Result<Registration> {
        let (secret, name, file) = match self {
            RegistrationStore::File(file) => return Ok(Registration::load(file)?),
            RegistrationStore::Secret { secret, name, file } => (secret, name, file),
        };
        let kept = secret.load().await.with_context(|| {
            format!(
                "cannot read the registration from the Secret {name} (kubernetes.runner_secret)"
            )
        })?;
        if let Some(text) = kept {
            return Ok(Registration::parse(text.as_bytes(), &secret_origin(name))?);
        }
        let registration = match Registration::load(file) {
            Ok(registration) => registration,
            Err(RunnerFileError::NotFound { .. }) => anyhow::bail!(
                "no registration in the Secret {name} (kubernetes.runner_secret) nor in {}: \
                 register the runner first (hearth register, with the same config, writes it \
                 into the Secret)",
                file.display()
            ),
            Err(e) => return Err(e.into()),
        };
        self.save(&registration).await?;
        tracing::info!(
            "the registration of {} is now kept in the Secret {name}; the file is no longer read",
            file.display()
        );
        Ok(registration)
    }

    /// Fails when a Secret cannot be read (the cluster out of reach, no right to it): said
    /// before registering, not after, when the forge would list a runner nothing can run as.
    pub async fn check(&self) -> Result<()> {
        if let RegistrationStore::Secret { secret, name, .. } = self {
            secret.load().await.with_context(|| {
                format!("cannot read the Secret {name} (kubernetes.runner_secret)")
            })?;
        }
        Ok(())
    }

    /// Keeps `registration` where the config says (only there).
    pub async fn save(&self, registration: &Registration) -> Result<()> {
        match self {
            RegistrationStore::File(file) => registration
                .save(file)
                .context("cannot save the registration"),
            RegistrationStore::Secret { secret, name, .. } => {
                let text = registration
                    .to_text()
                    .context("cannot write the registration")?;
                secret.save(&text).await.with_context(|| {
                    format!(
                        "cannot save the registration in the Secret {name} \
                         (kubernetes.runner_secret)"
                    )
                })
            }
        }
    }
}

/// How messages name the Secret, as `kubectl` does.
fn secret_origin(name: &str) -> PathBuf {
    Path::new("secret").join(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth_runner::config::PullPolicy;

    /// The config's default and the backend's are one ServiceAccount (the runner crate does
    /// not depend on the backend's, so they are two constants).
    #[test]
    fn the_default_service_account_is_the_backends() {
        assert_eq!(
            hearth_runner::config::DEFAULT_SERVICE_ACCOUNT,
            hearth_kubernetes::DEFAULT_JOB_SERVICE_ACCOUNT
        );
    }

    #[test]
    fn settings_carry_every_key() {
        let text = r#"
kubernetes:
  namespace: ci
  kubeconfig: /etc/kubeconfig
  context: ci-context
  image_pull_secrets: [pull]
  pull_policy: Never
  resources: {requests: {cpu: 500m}, limits: {memory: 1Gi}}
  node_selector: {disk: ssd}
  tolerations: [{operator: Exists}]
  pod_template: {spec: {priorityClassName: low}}
  runner_secret: hearth-runner
"#;
        let (config, warnings) = Config::from_yaml(text, "config.yaml", &|_| None).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        let made = settings(&config.kubernetes);
        assert_eq!(made.namespace.as_deref(), Some("ci"));
        assert_eq!(
            made.kubeconfig.as_deref(),
            Some(Path::new("/etc/kubeconfig"))
        );
        assert_eq!(made.context.as_deref(), Some("ci-context"));
        assert_eq!(made.service_account, "hearth-job");
        assert_eq!(made.image_pull_secrets, ["pull"]);
        assert_eq!(made.pull_policy.as_deref(), Some("Never"));
        assert_eq!(made.requests.get("cpu").map(String::as_str), Some("500m"));
        assert_eq!(made.limits.get("memory").map(String::as_str), Some("1Gi"));
        assert_eq!(
            made.node_selector.get("disk").map(String::as_str),
            Some("ssd")
        );
        assert_eq!(
            made.tolerations,
            [serde_json::json!({"operator": "Exists"})]
        );
        assert_eq!(
            made.pod_template,
            Some(serde_json::json!({"spec": {"priorityClassName": "low"}}))
        );
        let defaults = settings(&Config::load_with_env(None, &|_| None).unwrap().0.kubernetes);
        assert_eq!(defaults.namespace, None);
        assert_eq!(defaults.kubeconfig, None);
        assert_eq!(defaults.context, None);
        assert_eq!(
            defaults.pull_policy.as_deref(),
            Some(PullPolicy::IfNotPresent.as_str())
        );
        assert!(defaults.pod_template.is_none());
    }

    #[test]
    fn the_description_names_what_to_set() {
        let config = KubernetesConfig {
            kubeconfig: Some("/nowhere/kubeconfig".into()),
            context: Some("ci".to_owned()),
            namespace: Some("jobs".to_owned()),
            ..KubernetesConfig::default()
        };
        assert_eq!(
            describe(&config),
            "kubernetes.kubeconfig /nowhere/kubeconfig, context ci, namespace jobs"
        );
        let unset = describe(&KubernetesConfig::default());
        assert!(unset.contains("kubernetes.namespace is not set"), "{unset}");
    }

    /// A kubeconfig that is not there is said at once, with where the runner looked.
    #[tokio::test]
    async fn a_missing_kubeconfig_is_named() {
        let config = KubernetesConfig {
            kubeconfig: Some("/nowhere/kubeconfig".into()),
            namespace: Some("jobs".to_owned()),
            ..KubernetesConfig::default()
        };
        let Err(error) = backend(&config, std::env::temp_dir()).await else {
            panic!("a kubeconfig that is not there should not give a backend");
        };
        let message = format!("{error:#}");
        assert!(
            message.starts_with(
                "cannot use Kubernetes through kubernetes.kubeconfig /nowhere/kubeconfig, its \
                 current context, namespace jobs: cannot read the kubeconfig /nowhere/kubeconfig"
            ),
            "{message}"
        );
    }
}
