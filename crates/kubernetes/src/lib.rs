//! The Kubernetes backend: every job a Pod of its own, created through the Kubernetes API
//! (`kube`), its steps run through the Pod exec API, its files reached the same way. The only
//! crate that knows the Kubernetes API.
//!
//! A job's Pod holds the job container (the label's image or `jobs.<id>.container`) and one
//! container per service, which share the Pod's network: services are reached by their ids
//! through host aliases of 127.0.0.1. The job's folders (`/__w`, `/__t`) are volumes of the Pod
//! (`emptyDir`), so nothing of the node is mounted. Every Pod and Secret the backend makes is
//! labelled `hearth.backend=kubernetes` plus the job's owner labels, deleted when the job ends,
//! and swept by [`hearth_backend::Backend::reap`] when a runner died.

pub mod runner_secret;

use std::collections::BTreeMap;
use std::path::PathBuf;

/// The label every Pod and Secret of this backend carries.
pub const BACKEND_LABEL: (&str, &str) = ("hearth.backend", "kubernetes");

/// The ServiceAccount job Pods run as when the config names none: no API rights, no token.
pub const DEFAULT_JOB_SERVICE_ACCOUNT: &str = "hearth-job";

/// The runner's `kubernetes:` keys.
#[derive(Clone, Debug, Default)]
pub struct KubernetesSettings {
    /// The namespace job Pods run in; `None`: the runner's own namespace in a cluster, else
    /// the kubeconfig context's, else `default`.
    pub namespace: Option<String>,
    /// A kubeconfig file; `None`: `KUBECONFIG`, `~/.kube/config`, then the in-cluster
    /// ServiceAccount (what `kube::Config::infer` tries).
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context; `None`: its current one.
    pub context: Option<String>,
    /// The ServiceAccount job Pods run as; empty: [`DEFAULT_JOB_SERVICE_ACCOUNT`].
    pub service_account: String,
    /// Secrets of type `kubernetes.io/dockerconfigjson` in the namespace, named in every job
    /// Pod's `imagePullSecrets`.
    pub image_pull_secrets: Vec<String>,
    /// `imagePullPolicy` of every container: `IfNotPresent` when `None`.
    pub pull_policy: Option<String>,
    /// Resource requests (`cpu`, `memory`, ...) of job containers whose options set none.
    pub requests: BTreeMap<String, String>,
    /// Resource limits of job containers whose options set none.
    pub limits: BTreeMap<String, String>,
    /// `nodeSelector` of every job Pod.
    pub node_selector: BTreeMap<String, String>,
    /// `tolerations` of every job Pod, as the Pod spec spells them.
    pub tolerations: Vec<serde_json::Value>,
    /// A Pod (as the API spells it) that job Pods start from: its labels, annotations and spec
    /// fields are kept (affinity, priority class, runtime class, ...), a container of it named
    /// `job` is the base of the job container; Hearth's own fields (containers, volumes,
    /// ServiceAccount, security settings) are set over it.
    pub pod_template: Option<serde_json::Value>,
}

/// Why the backend could not be set up, or the cluster refused what it asked.
#[derive(Debug, thiserror::Error)]
pub enum KubernetesError {
    /// The kubeconfig could not be read or used.
    #[error("cannot read the kubeconfig {path}: {source}")]
    Kubeconfig {
        path: String,
        source: kube::config::KubeconfigError,
    },
    /// No configuration was found (no kubeconfig, not in a cluster).
    #[error(
        "cannot find how to reach Kubernetes: {0} (set kubernetes.kubeconfig, KUBECONFIG, or \
         run the runner in a cluster with a ServiceAccount)"
    )]
    Infer(kube::config::InferConfigError),
    /// The client could not be built from the configuration.
    #[error("cannot make a Kubernetes client: {0}")]
    Client(kube::Error),
    /// The API answered with an error.
    #[error("{what}: {source}")]
    Api {
        what: String,
        #[source]
        source: kube::Error,
    },
    /// What the runner stored is not what it expects.
    #[error("{0}")]
    Invalid(String),
}

/// The configuration to reach the cluster from `settings`, and the namespace to work in.
pub async fn client_config(
    settings: &KubernetesSettings,
) -> Result<(kube::Config, String), KubernetesError> {
    let config = match &settings.kubeconfig {
        Some(path) => {
            let file = kube::config::Kubeconfig::read_from(path).map_err(|source| {
                KubernetesError::Kubeconfig {
                    path: path.display().to_string(),
                    source,
                }
            })?;
            let options = kube::config::KubeConfigOptions {
                context: settings.context.clone(),
                ..Default::default()
            };
            kube::Config::from_custom_kubeconfig(file, &options)
                .await
                .map_err(|source| KubernetesError::Kubeconfig {
                    path: path.display().to_string(),
                    source,
                })?
        }
        None if settings.context.is_some() => {
            let options = kube::config::KubeConfigOptions {
                context: settings.context.clone(),
                ..Default::default()
            };
            kube::Config::from_kubeconfig(&options)
                .await
                .map_err(|source| KubernetesError::Kubeconfig {
                    path: "from KUBECONFIG or ~/.kube/config".to_owned(),
                    source,
                })?
        }
        None => kube::Config::infer()
            .await
            .map_err(KubernetesError::Infer)?,
    };
    let namespace = settings
        .namespace
        .clone()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| config.default_namespace.clone());
    Ok((config, namespace))
}

/// A client for the cluster `settings` name, and the namespace to work in.
pub async fn connect(
    settings: &KubernetesSettings,
) -> Result<(kube::Client, String), KubernetesError> {
    let (config, namespace) = client_config(settings).await?;
    let client = kube::Client::try_from(config).map_err(KubernetesError::Client)?;
    Ok((client, namespace))
}

/// The Kubernetes backend: jobs as Pods in one namespace of one cluster.
#[derive(Clone)]
pub struct KubernetesBackend {
    client: kube::Client,
    namespace: String,
    settings: std::sync::Arc<KubernetesSettings>,
}

impl KubernetesBackend {
    /// Reaches the cluster `settings` name (nothing is asked of it yet).
    pub async fn connect(settings: KubernetesSettings) -> Result<Self, KubernetesError> {
        let (client, namespace) = connect(&settings).await?;
        Ok(KubernetesBackend::with_client(client, namespace, settings))
    }

    /// The backend over a client already made.
    pub fn with_client(
        client: kube::Client,
        namespace: String,
        settings: KubernetesSettings,
    ) -> Self {
        KubernetesBackend {
            client,
            namespace,
            settings: std::sync::Arc::new(settings),
        }
    }

    /// The namespace job Pods run in.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }
}

impl hearth_backend::Backend for KubernetesBackend {
    fn start<'a>(
        &'a self,
        spec: hearth_backend::JobSpec,
        log: &'a mut dyn hearth_backend::SetupLog,
        cancel: &'a hearth_backend::CancellationToken,
    ) -> hearth_backend::BoxFuture<
        'a,
        Result<Box<dyn hearth_backend::JobRuntime>, hearth_backend::BackendError>,
    > {
        let _ = (spec, log, cancel, &self.client, &self.settings);
        Box::pin(async {
            Err(hearth_backend::BackendError::Unsupported(
                "the Kubernetes backend is being built".to_owned(),
            ))
        })
    }
}
