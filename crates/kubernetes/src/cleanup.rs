//! Deleting what a job made (its Pod, its registry Secret) when it ends, and sweeping what
//! jobs of a runner that died left.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use hearth_backend::Reaped;
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::api::{DeleteParams, ListParams};
use kube::Api;

/// The names of the Pods this backend runs now, which `reap` leaves alone.
pub type Live = Arc<Mutex<HashSet<String>>>;

/// The label that ties a job's Secret and its step Pods to its Pod.
pub const POD_LABEL: &str = "hearth.pod";

/// A job's objects, deleted together.
pub struct JobObjects {
    pub pods: Api<Pod>,
    pub secrets: Api<Secret>,
    pub pod: String,
    pub secret: Option<String>,
    pub live: Live,
}

/// Deleted at once: a job's Pod holds nothing that needs a graceful end.
pub(crate) fn now() -> DeleteParams {
    DeleteParams::background().grace_period(0)
}

impl JobObjects {
    /// Deletes the Pod and the Secret; one already gone counts as deleted.
    pub async fn delete(self) -> Result<(), String> {
        let mut errors = Vec::new();
        // Step Pods (`step_pod`) are deleted by their steps; one is left when a step's future
        // was dropped while its deletion was on its way.
        if let Err(e) = delete_steps(&self.pods, &self.pod).await {
            errors.push(format!("the step Pods of {}: {e}", self.pod));
        }
        if let Err(e) = gone(self.pods.delete(&self.pod, &now()).await) {
            errors.push(format!("Pod {}: {e}", self.pod));
        }
        if let Some(secret) = &self.secret {
            if let Err(e) = gone(self.secrets.delete(secret, &now()).await) {
                errors.push(format!("Secret {secret}: {e}"));
            }
        }
        if let Ok(mut live) = self.live.lock() {
            live.remove(&self.pod);
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(format!("cannot delete {}", errors.join("; ")))
        }
    }

    /// Deletes them on the runtime in the background (a job dropped without `finish`).
    pub fn delete_in_background(self) {
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn(async move {
                    let pod = self.pod.clone();
                    if let Err(e) = self.delete().await {
                        tracing::warn!(%pod, "{e}");
                    }
                });
            }
            Err(_) => tracing::warn!(pod = %self.pod, "no runtime left to delete the job's Pod"),
        }
    }
}

/// Deletes the step Pods of the job Pod `pod`.
async fn delete_steps(pods: &Api<Pod>, pod: &str) -> Result<(), kube::Error> {
    let (key, value) = crate::BACKEND_LABEL;
    let params = ListParams::default().labels(&format!("{key}={value},{POD_LABEL}={pod}"));
    for step in pods.list_metadata(&params).await? {
        if let Some(name) = step.metadata.name {
            gone(pods.delete(&name, &now()).await)?;
        }
    }
    Ok(())
}

/// `Ok` for a deletion done or one that found nothing.
pub(crate) fn gone<T>(result: Result<T, kube::Error>) -> Result<(), kube::Error> {
    match result {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

/// The label selector of `owner`'s objects.
pub fn selector(owner: &[(String, String)]) -> String {
    let (key, value) = crate::BACKEND_LABEL;
    let mut parts = vec![format!("{key}={value}")];
    for (key, value) in owner {
        parts.push(format!("{key}={}", crate::pod::label_value(value)));
    }
    parts.join(",")
}

/// Deletes the Pods and Secrets labelled with `owner` that belong to no live job.
pub async fn reap(
    pods: &Api<Pod>,
    secrets: &Api<Secret>,
    owner: &[(String, String)],
    live: &Live,
) -> Result<Reaped, kube::Error> {
    let params = ListParams::default().labels(&selector(owner));
    let is_live = |name: &str| live.lock().map(|l| l.contains(name)).unwrap_or(true);
    let mut reaped = Reaped::default();
    for pod in pods.list_metadata(&params).await? {
        let Some(name) = pod.metadata.name else {
            continue;
        };
        // A live job's step Pods are named after it and labelled with its name.
        let job_pod = pod.metadata.labels.as_ref().and_then(|l| l.get(POD_LABEL));
        if is_live(&name) || job_pod.is_some_and(|job| is_live(job)) {
            continue;
        }
        gone(pods.delete(&name, &now()).await)?;
        reaped.removed.push(format!("pod {name}"));
    }
    for secret in secrets.list_metadata(&params).await? {
        let Some(name) = secret.metadata.name else {
            continue;
        };
        let owner_pod = secret
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(POD_LABEL))
            .cloned()
            .unwrap_or_default();
        if is_live(&owner_pod) {
            continue;
        }
        gone(secrets.delete(&name, &now()).await)?;
        reaped.removed.push(format!("secret {name}"));
    }
    Ok(reaped)
}
