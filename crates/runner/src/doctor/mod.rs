//! `hearth doctor`: checks, in the order a daemon needs them, what a runner needs to take and
//! run jobs, and says for each failure what to change (user pain points #1, #12, #13).
//!
//! The order: the config and the `.runner` file; the forge (name, connection, TLS, `Ping`)
//! and the runner's token (the daemon's own `Declare`, the same labels, so nothing changes on
//! the forge); the clock against the forge's; Docker, each label's image (here, or pullable
//! with the credentials a job would use) and, from a throw-away job started through the Docker
//! backend on a job network, the forge and the cache; the free space of the work folder and of
//! Docker's data root. A check whose prerequisite failed is skipped, saying which. Warnings do
//! not fail the run; failures do.
//!
//! With a `kubernetes://` label, the cluster too: its API server, and the runner's rights in
//! its namespace.
//!
//! Docker is reached through [`DockerProbe`], which the binary implements over `hearth-docker`
//! (the only crate that knows the Engine API), so this module stays testable without Docker.

mod checks;
mod disk;
mod forge;
mod report;
#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::sync::Arc;

use hearth_backend::{Backend, BoxFuture};

use crate::config::{ContainerConfig, KubernetesConfig};
use crate::labels::Labels;

pub use disk::DEFAULT_MIN_FREE;
pub use report::{render_text, Check, Report, Status};

/// The Docker daemon, as the doctor asks it.
pub trait DockerProbe: Send + Sync {
    /// Its address, for messages (`unix:///var/run/docker.sock`).
    fn address(&self) -> String;
    /// Its version and data root.
    fn facts(&self) -> BoxFuture<'_, Result<DockerFacts, String>>;
    /// Whether `image` is there or pullable with the credentials a job would use.
    fn image(&self, image: &str) -> BoxFuture<'_, ImageState>;
    /// Whether the daemon runs on this machine (its data root is then a folder here).
    fn is_local(&self) -> bool;
    /// The Docker backend jobs run on, set up as the daemon sets it up.
    fn backend(&self) -> Arc<dyn Backend>;
}

/// The daemon's version and data root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DockerFacts {
    pub version: String,
    pub api_version: String,
    pub data_root: Option<String>,
}

/// Whether a job could start with an image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImageState {
    Local,
    /// Not here; `from` (a registry's host, or `the mirror HOST`) has it.
    Pullable {
        from: String,
        credentials_from: Option<String>,
    },
    Unavailable {
        registry: String,
        answer: String,
        tried: Vec<String>,
    },
}

/// Connects to the Docker daemon the config's `container.*` keys name (no waiting: a daemon
/// that does not answer now is the finding), job folders under the given folder.
pub type ConnectDocker = Box<
    dyn FnOnce(
        ContainerConfig,
        PathBuf,
    ) -> BoxFuture<'static, Result<Box<dyn DockerProbe>, String>>,
>;

/// What the cluster of the `kubernetes:` keys said (the binary asks it through
/// `hearth-kubernetes`, the only crate that knows the Kubernetes API).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KubernetesFacts {
    /// The API server's version.
    pub version: String,
    /// Where it was reached.
    pub address: String,
    /// The namespace job Pods go to.
    pub namespace: String,
    /// The rights the runner lacks there (`create pods/exec`).
    pub missing: Vec<String>,
}

/// Asks the cluster the config's `kubernetes.*` keys name: an error says why it cannot be
/// reached, and where the runner looked.
pub type ConnectKubernetes =
    Box<dyn FnOnce(KubernetesConfig) -> BoxFuture<'static, Result<KubernetesFacts, String>>>;

/// What the doctor is given.
pub struct DoctorOptions {
    /// The config file (`-c`); `None` for the defaults.
    pub config: Option<PathBuf>,
    /// Labels given on the command line (the daemon's `--labels`), over the config's and the
    /// registration's.
    pub labels: Option<Labels>,
    /// Hearth's version, as the daemon declares it.
    pub version: String,
    pub connect_docker: ConnectDocker,
    pub connect_kubernetes: ConnectKubernetes,
    /// Free bytes below which a disk check fails; `None` for the config's disk guard
    /// threshold (`health_check.min_free_disk_space_mb`), or [`DEFAULT_MIN_FREE`] when the
    /// guard is off.
    pub min_free: Option<u64>,
}

/// Runs every check in order.
pub async fn run(options: DoctorOptions) -> Report {
    checks::run(options).await
}
