//! The certificates the runner's containers trust: the runner's CA bundle (its system store
//! with `runner.ca_file` added) copied into every job, service and step container the backend
//! makes, and named by the variables the usual tools read.
//!
//! Copied through the archive API before the container starts, rather than bind-mounted: it
//! works the same with a remote daemon (copy mode), needs no `container.valid_volumes` entry,
//! and a service gets it without the job's folders.

use std::sync::Arc;

use bollard::Docker;
use hearth_backend::BackendError;

use crate::copy;

/// Where the bundle is in a container (beside the lent node, under the runner's own folder).
pub const BUNDLE_PATH: &str = "/__e/ca-certificates.crt";

/// A PEM bundle of certificates for containers to trust.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaBundle(Arc<Vec<u8>>);

impl CaBundle {
    pub fn new(pem: Vec<u8>) -> CaBundle {
        CaBundle(Arc::new(pem))
    }

    /// The variables naming the bundle, as `NAME=value` for a container's environment.
    pub(crate) fn env(&self) -> impl Iterator<Item = String> {
        hearth_backend::CA_BUNDLE_VARIABLES
            .iter()
            .map(|name| format!("{name}={BUNDLE_PATH}"))
    }

    /// Copies the bundle into the created container `id` (before it starts: its entrypoint and
    /// health check may already need it). Readable by any user the image runs as.
    pub(crate) async fn install(
        &self,
        docker: &Docker,
        id: &str,
        what: &str,
    ) -> Result<(), BackendError> {
        let (folder, file) = BUNDLE_PATH
            .trim_start_matches('/')
            .split_once('/')
            .unwrap_or(("", BUNDLE_PATH));
        let path = format!("{folder}/{file}");
        let tar = copy::pack(&[copy::Entry::Dir(folder), copy::Entry::File(&path, &self.0)])
            .map_err(|e| BackendError::Unsupported(format!("cannot pack the CA bundle: {e}")))?;
        copy::upload(docker, id, "/", tar).await.map_err(|e| {
            BackendError::Unsupported(format!(
                "cannot copy the runner's CA bundle (runner.ca_file) into {what}: {e}"
            ))
        })
    }
}
