//! The node the runner lends to job Pods whose image has none, for JavaScript actions: the
//! runner's own `node`, bundled on this machine with its libraries and loader by
//! `hearth_host::node_bundle` (as the Docker backend does), and copied into the job's Pod, at
//! `/__e/node<major>` on a volume of its own, when an action first needs it. A Pod mounts no
//! folder of the node it runs on, so the bundle travels as a tar through exec, once per job.
//!
//! Which node runs an action is chosen as in a Docker job: the image's `node --version` is
//! asked once per job, at the first JavaScript action; the exact major wins (the image's
//! first), else the newer of the two, with a notice for the step's log.

use std::path::PathBuf;
use std::time::Duration;

use hearth_backend::{BackendError, HostPath, JobPath, NodeCommand};
use hearth_host::node_bundle::{choose, major_of, no_node, Choice, NodeBundle};
use hearth_host::NodeLender;
use tokio::sync::OnceCell;

use crate::exec;
use crate::files::PodFiles;
use crate::pod::JOB_CONTAINER;
use crate::KubernetesBackend;

/// How long the image's `node --version` may take before the image counts as having none.
const PROBE_TIMEOUT: Duration = Duration::from_secs(30);

impl KubernetesBackend {
    /// Lends the `node` on the runner's `PATH` to job Pods whose image has none, for
    /// JavaScript actions: bundled once under `externals` (a folder that outlives the runner,
    /// shared by runners on this machine) and copied into a job's Pod when an action of it
    /// first needs it.
    pub fn with_node_lending(mut self, externals: PathBuf) -> Self {
        self.lent_node = NodeLender::new(externals);
        self
    }
}

/// One job's node: what its image has, and whether the lent one is in its Pod yet.
pub struct JobNode {
    lender: NodeLender,
    /// The major version of the image's `node` (`None`: it has none), asked once.
    image: OnceCell<Option<u32>>,
    /// Set once the lent bundle is in the Pod.
    copied: OnceCell<()>,
}

impl JobNode {
    pub fn new(lender: NodeLender) -> JobNode {
        JobNode {
            lender,
            image: OnceCell::new(),
            copied: OnceCell::new(),
        }
    }

    /// The command line a `node{major}` action runs with in the job's Pod (see
    /// [`hearth_backend::JobRuntime::node`]).
    pub async fn command(&self, files: &PodFiles, major: u32) -> Result<NodeCommand, BackendError> {
        let image = *self.image.get_or_init(|| image_node(files)).await;
        // The image's own node of the exact major needs nothing bundled.
        if image == Some(major) {
            return Ok(NodeCommand::on_path());
        }
        let lent = self.lender.bundle().await;
        let chosen = choose(major, image, lent.as_ref().ok().and_then(NodeBundle::major));
        let (choice, notice) = chosen.ok_or_else(|| {
            let why = lent.as_ref().err().map_or("", String::as_str);
            BackendError::Unsupported(no_node(why))
        })?;
        let argv = match (choice, &lent) {
            (Choice::Lent, Ok(bundle)) => {
                self.copied
                    .get_or_try_init(|| copy_into_pod(files, bundle))
                    .await?;
                bundle.argv()
            }
            _ => NodeCommand::on_path().argv,
        };
        Ok(NodeCommand { argv, notice })
    }
}

/// The major version of the `node` on the job container's `PATH`, if it has one.
async fn image_node(files: &PodFiles) -> Option<u32> {
    let argv = ["node".to_owned(), "--version".to_owned()];
    let asked = exec::capture(&files.api, &files.pod, JOB_CONTAINER, &argv, None, 256);
    match tokio::time::timeout(PROBE_TIMEOUT, asked).await {
        Ok(Ok(said)) if said.code == 0 => major_of(&String::from_utf8_lossy(&said.stdout)),
        // No node (the runtime could not start it, or a shell said 127), or no answer.
        Ok(Ok(_)) | Ok(Err(_)) | Err(_) => None,
    }
}

/// Copies `bundle` into the job's Pod at its mount point (on the Pod's `/__e` volume).
async fn copy_into_pod(files: &PodFiles, bundle: &NodeBundle) -> Result<(), BackendError> {
    let started = std::time::Instant::now();
    let target = JobPath::new(bundle.mount_point());
    files
        .upload(&HostPath::new(&bundle.folder), &target)
        .await?;
    tracing::debug!(
        pod = %files.pod,
        "lent node {} copied into the Pod in {:?}",
        bundle.version,
        started.elapsed()
    );
    Ok(())
}
