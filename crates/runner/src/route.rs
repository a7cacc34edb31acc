//! Which backend runs a job: the one type through which `hearth exec` and `hearth daemon` send
//! every job somewhere, by the scheme of the label its `runs-on` picks (`linux:host`,
//! `ubuntu-latest:docker://node:20`, `k8s:kubernetes://node:20`). A backend is registered per scheme; a label whose scheme
//! has no backend here is refused with a message that says what to change.

use std::sync::Arc;

use hearth_backend::Backend;

use crate::labels::{Labels, NoMatch, Platform};

/// The backends of a runner, by label scheme.
#[derive(Clone)]
pub struct Backends {
    labels: Labels,
    host: Option<Arc<dyn Backend>>,
    docker: Option<Arc<dyn Backend>>,
    kubernetes: Option<Arc<dyn Backend>>,
    /// Whether the Docker backend gives its jobs the Docker socket.
    docker_socket_in_jobs: bool,
}

/// Where one job runs.
#[derive(Clone)]
pub struct Route {
    pub backend: Arc<dyn Backend>,
    /// The label's name.
    pub label: String,
    /// The image a `docker://` or `kubernetes://` label names: the job container's, when the
    /// job has no `container:` of its own.
    pub image: Option<String>,
    /// Whether the job's steps can reach a Docker daemon (a host job, a container job given
    /// the socket): such a job gets the registries marked `expose_to_jobs`.
    pub reaches_docker: bool,
}

impl std::fmt::Debug for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Route")
            .field("label", &self.label)
            .field("image", &self.image)
            .finish_non_exhaustive()
    }
}

/// Why a job cannot run here.
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    /// No label of this runner matches the job's `runs-on`.
    #[error(transparent)]
    NoMatch(#[from] NoMatch),
    /// The label matches, but this runner has no backend for its scheme.
    #[error(
        "label `{label}` runs jobs in Docker (image {image}), but this runner has no Docker \
         backend (Docker did not answer when it started); use the label `{label}:host` to run \
         them on this machine"
    )]
    NoDocker { label: String, image: String },
    /// The label runs jobs in Kubernetes, and this runner has no Kubernetes backend.
    #[error(
        "label `{label}` runs jobs in Kubernetes (image {image}), but this runner has no \
         Kubernetes backend (it could not use the cluster its configuration names when it \
         started, and said why then); set kubernetes.kubeconfig (or KUBECONFIG), \
         kubernetes.context and kubernetes.namespace to a cluster it can use, or use the label \
         `{label}:docker://{image}` to run them in Docker"
    )]
    NoKubernetes { label: String, image: String },
    /// The label runs jobs on the host, and this runner does not.
    #[error("label `{label}` runs jobs on the host, which this runner does not do")]
    NoHost { label: String },
}

impl Backends {
    /// A runner with these labels and no backend yet.
    pub fn new(labels: Labels) -> Self {
        Backends {
            labels,
            host: None,
            docker: None,
            kubernetes: None,
            docker_socket_in_jobs: false,
        }
    }

    /// Runs `host` labels' jobs on `backend`.
    pub fn with_host(mut self, backend: Arc<dyn Backend>) -> Self {
        self.host = Some(backend);
        self
    }

    /// Runs `docker://` labels' jobs on `backend`.
    pub fn with_docker(mut self, backend: Arc<dyn Backend>) -> Self {
        self.docker = Some(backend);
        self
    }

    /// Runs `kubernetes://` labels' jobs on `backend`.
    pub fn with_kubernetes(mut self, backend: Arc<dyn Backend>) -> Self {
        self.kubernetes = Some(backend);
        self
    }

    /// Says that the Docker backend mounts the Docker socket into its jobs.
    pub fn with_docker_socket_in_jobs(mut self, mounted: bool) -> Self {
        self.docker_socket_in_jobs = mounted;
        self
    }

    pub fn labels(&self) -> &Labels {
        &self.labels
    }

    /// Every backend registered, once each (for reaping leftovers).
    pub fn all(&self) -> impl Iterator<Item = &Arc<dyn Backend>> {
        self.host
            .iter()
            .chain(self.docker.iter())
            .chain(self.kubernetes.iter())
    }

    /// Picks the label for `runs_on` (Gitea's rule, see [`Labels::pick`]) and the backend of
    /// its scheme.
    pub fn route(&self, runs_on: &[String]) -> Result<Route, RouteError> {
        let label = self.labels.pick(runs_on)?;
        let name = label.name().to_owned();
        match label.platform() {
            Platform::Host => match &self.host {
                Some(backend) => Ok(Route {
                    backend: backend.clone(),
                    label: name,
                    image: None,
                    reaches_docker: true,
                }),
                None => Err(RouteError::NoHost { label: name }),
            },
            Platform::Docker { image } => match &self.docker {
                Some(backend) => Ok(Route {
                    backend: backend.clone(),
                    label: name,
                    image: Some(image.clone()),
                    reaches_docker: self.docker_socket_in_jobs,
                }),
                None => Err(RouteError::NoDocker {
                    label: name,
                    image: image.clone(),
                }),
            },
            // A Pod's steps reach no Docker daemon: the runner's registry credentials are not
            // written into its jobs.
            Platform::Kubernetes { image } => match &self.kubernetes {
                Some(backend) => Ok(Route {
                    backend: backend.clone(),
                    label: name,
                    image: Some(image.clone()),
                    reaches_docker: false,
                }),
                None => Err(RouteError::NoKubernetes {
                    label: name,
                    image: image.clone(),
                }),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth_backend::{
        BackendError, BoxFuture, CancellationToken, JobRuntime, JobSpec, SetupLog,
    };

    struct Nowhere;

    impl Backend for Nowhere {
        fn start<'a>(
            &'a self,
            _: JobSpec,
            _: &'a mut dyn SetupLog,
            _: &'a CancellationToken,
        ) -> BoxFuture<'a, Result<Box<dyn JobRuntime>, BackendError>> {
            Box::pin(async { Err(BackendError::Unsupported("nowhere".into())) })
        }
    }

    fn labels(specs: &[&str]) -> Labels {
        let specs: Vec<String> = specs.iter().map(|s| s.to_string()).collect();
        Labels::from_flags(&specs, &[]).unwrap()
    }

    #[test]
    fn routes_by_scheme_and_says_what_is_missing() {
        let backends = Backends::new(labels(&["linux:host", "ubuntu-latest:docker://node:20"]))
            .with_host(Arc::new(Nowhere));
        let host = backends.route(&["linux".into()]).unwrap();
        assert_eq!((host.label.as_str(), host.image), ("linux", None));
        let docker = backends.route(&["ubuntu-latest".into()]).unwrap_err();
        assert_eq!(
            docker.to_string(),
            "label `ubuntu-latest` runs jobs in Docker (image node:20), but this runner has no \
             Docker backend (Docker did not answer when it started); use the label \
             `ubuntu-latest:host` to run them on this machine"
        );
        let with_docker = backends.clone().with_docker(Arc::new(Nowhere));
        let routed = with_docker.route(&["ubuntu-latest".into()]).unwrap();
        assert_eq!(routed.image.as_deref(), Some("node:20"));
        assert!(matches!(
            backends.route(&["windows".into()]),
            Err(RouteError::NoMatch(_))
        ));
        let docker_only = Backends::new(labels(&["linux:host"])).with_docker(Arc::new(Nowhere));
        assert!(matches!(
            docker_only.route(&["linux".into()]),
            Err(RouteError::NoHost { .. })
        ));
    }

    #[test]
    fn kubernetes_labels_go_to_the_kubernetes_backend_without_docker() {
        let backends = Backends::new(labels(&[
            "linux:host",
            "d:docker://node:20",
            "k:kubernetes://hearth-test/debian:1",
        ]))
        .with_host(Arc::new(Nowhere))
        .with_docker(Arc::new(Nowhere))
        .with_docker_socket_in_jobs(true);
        let missing = backends.route(&["k".into()]).unwrap_err();
        assert!(matches!(missing, RouteError::NoKubernetes { .. }));
        let message = missing.to_string();
        for part in [
            "label `k` runs jobs in Kubernetes (image hearth-test/debian:1)",
            "no Kubernetes backend",
            "kubernetes.kubeconfig",
            "`k:docker://hearth-test/debian:1`",
        ] {
            assert!(message.contains(part), "{message}");
        }
        assert_eq!(backends.all().count(), 2);

        let kubernetes: Arc<dyn Backend> = Arc::new(Nowhere);
        let backends = backends.with_kubernetes(kubernetes.clone());
        let routed = backends.route(&["k".into()]).unwrap();
        assert!(Arc::ptr_eq(&routed.backend, &kubernetes));
        assert_eq!(routed.label, "k");
        assert_eq!(routed.image.as_deref(), Some("hearth-test/debian:1"));
        assert!(!routed.reaches_docker, "a Pod reaches no Docker daemon");
        // The Docker label still goes to Docker, the socket given.
        let docker = backends.route(&["d".into()]).unwrap();
        assert!(!Arc::ptr_eq(&docker.backend, &kubernetes));
        assert!(docker.reaches_docker);
        // Reaping and the disk guard reach every backend, Kubernetes's too.
        assert_eq!(backends.all().count(), 3);
        assert!(backends.all().any(|b| Arc::ptr_eq(b, &kubernetes)));
    }

    #[test]
    fn a_kubernetes_backend_alone_runs_no_host_or_docker_label() {
        let backends = Backends::new(labels(&["linux:host", "d:docker://node:20"]))
            .with_kubernetes(Arc::new(Nowhere));
        assert!(matches!(
            backends.route(&["linux".into()]),
            Err(RouteError::NoHost { .. })
        ));
        assert!(matches!(
            backends.route(&["d".into()]),
            Err(RouteError::NoDocker { .. })
        ));
    }
}
