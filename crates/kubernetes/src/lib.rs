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

mod capability;
mod check;
mod cleanup;
mod deferred;
mod empties;
mod exec;
mod files;
mod node;
mod options;
mod pod;
mod pull_race;
pub mod runner_secret;
mod runtime;
mod start;
mod step_pod;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

pub use check::ClusterCheck;
use hearth_backend::{
    Backend, BackendError, BoxFuture, CancellationToken, JobPath, JobPaths, JobRuntime, JobSpec,
    Reaped, SetupLog,
};

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
    /// The API answered with an error, or did not answer.
    #[error("{what}: {}", error_chain(.source))]
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
    settings: Arc<KubernetesSettings>,
    /// The Pods of jobs running now, which `reap` leaves alone.
    live: cleanup::Live,
    /// Checked once, at the first job: the job ServiceAccount is there, and whether the
    /// cluster keeps `hostUsers: false`.
    prepared: Arc<tokio::sync::OnceCell<bool>>,
    /// The node lent to job Pods whose image has none (see `node`); lends none by default.
    lent_node: hearth_host::NodeLender,
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
            settings: Arc::new(settings),
            live: Default::default(),
            prepared: Default::default(),
            lent_node: Default::default(),
        }
    }

    /// The namespace job Pods run in.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// Whether job Pods get `hostUsers: false` (a user namespace of their own): the cluster
    /// keeps the field (Kubernetes 1.25 and later with user namespaces on). Asked once.
    pub async fn user_namespaces(&self) -> Result<bool, hearth_backend::BackendError> {
        self.prepare(&mut hearth_backend::NoSetupLog).await
    }

    /// What is checked once per backend, before its first job.
    async fn prepare(
        &self,
        log: &mut dyn hearth_backend::SetupLog,
    ) -> Result<bool, hearth_backend::BackendError> {
        let first = !self.prepared.initialized();
        let host_users = *self
            .prepared
            .get_or_try_init(|| capability::prepare(&self.client, &self.namespace, &self.settings))
            .await?;
        if first && !host_users {
            log.line(
                hearth_backend::SetupLevel::Info,
                "This cluster does not run Pods in user namespaces of their own (hostUsers: \
                 false needs Kubernetes 1.25 or later with user namespaces on); job Pods run \
                 without one",
            );
        }
        Ok(host_users)
    }
}

/// The job paths every job Pod has, as a Docker job's.
fn job_paths() -> JobPaths {
    JobPaths {
        workspace: JobPath::new(format!("{}/workspace", pod::WORK_DIR)),
        temp: JobPath::new(format!("{}/temp", pod::WORK_DIR)),
        tool_cache: JobPath::new(pod::TOOL_CACHE),
    }
}

/// `error` and its causes, so that "client error (Connect)" says what the connection met
/// ("Connection refused", a certificate not trusted), and one the API server's answer says as
/// much when it did not answer.
pub(crate) fn error_chain(error: &kube::Error) -> String {
    let mut text = error.to_string();
    let mut cause = std::error::Error::source(error);
    while let Some(error) = cause {
        let said = error.to_string();
        if !text.contains(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        cause = error.source();
    }
    if matches!(error, kube::Error::Service(_) | kube::Error::HyperError(_)) {
        format!("the API server does not answer ({text})")
    } else {
        text
    }
}

/// Eight hex digits that differ from one call to the next, for names.
fn random_suffix() -> String {
    use std::hash::{BuildHasher, Hasher};
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    format!("{:08x}", hasher.finish() as u32)
}

impl Backend for KubernetesBackend {
    fn start<'a>(
        &'a self,
        spec: JobSpec,
        log: &'a mut dyn SetupLog,
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<Box<dyn JobRuntime>, BackendError>> {
        Box::pin(start::start(self, spec, log, cancel))
    }

    fn paths_ahead(&self) -> Option<JobPaths> {
        Some(job_paths())
    }

    fn reap<'a>(
        &'a self,
        owner: &'a [(String, String)],
    ) -> BoxFuture<'a, Result<Reaped, BackendError>> {
        Box::pin(async move {
            let pods = kube::Api::namespaced(self.client.clone(), &self.namespace);
            let secrets = kube::Api::namespaced(self.client.clone(), &self.namespace);
            cleanup::reap(&pods, &secrets, owner, &self.live)
                .await
                .map_err(|e| {
                    start::api_error("sweep the Pods of jobs that ended", &self.namespace, e)
                })
        })
    }
}
