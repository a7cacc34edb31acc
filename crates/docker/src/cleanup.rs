//! Removing what a job made: its containers (the job's and its services'), its network, and
//! what must wait for the containers to be gone (the job folder they had mounted, the job's
//! volume in copy mode).
//!
//! Removing the network is the slowest part (~0.2 s on the project's machine: Docker deletes
//! the bridge and its firewall rules), and Docker refuses it while a container is attached.
//! Waiting for the containers' removal first put the two one after the other; instead every
//! container is disconnected first (its endpoint goes at once, ~0.07 s, all side by side), and
//! then the network goes while the containers are being removed.

use std::future::Future;
use std::time::Duration;

use bollard::models::NetworkDisconnectRequest;
use bollard::query_parameters::{RemoveContainerOptionsBuilder, RemoveVolumeOptions};
use bollard::Docker;
use futures_util::future::join_all;

/// What a job made that has to go.
#[derive(Clone, Debug, Default)]
pub(crate) struct Made {
    /// Each container as messages name it (`the container hearth-…`), and its id.
    pub containers: Vec<(String, String)>,
    /// The job's own network, if it has one.
    pub network: Option<String>,
    /// The job's own volume (copy mode), which goes once no container uses it.
    pub volume: Option<String>,
}

/// Removes `made`, running `after_containers` once the containers are gone; returns the
/// problems met (each said in full) and what `after_containers` gave.
pub(crate) async fn remove<T>(
    docker: &Docker,
    made: Made,
    after_containers: impl Future<Output = T>,
) -> (Vec<String>, T) {
    let Made {
        containers,
        network,
        volume,
    } = made;
    let detached = match &network {
        Some(network) => join_all(containers.iter().map(|(_, id)| {
            docker.disconnect_network(
                network,
                NetworkDisconnectRequest {
                    container: id.clone(),
                    force: Some(true),
                },
            )
        }))
        .await
        .iter()
        .all(Result::is_ok),
        None => false,
    };
    let containers = async {
        let removed = join_all(containers.iter().map(|(what, id)| async move {
            let options = RemoveContainerOptionsBuilder::default()
                .force(true)
                .v(true)
                .build();
            docker
                .remove_container(id, Some(options))
                .await
                .or_else(already_gone)
                .map_err(|e| format!("cannot remove {what}: {e}"))
        }))
        .await;
        let volume = match volume {
            Some(volume) => docker
                .remove_volume(&volume, None::<RemoveVolumeOptions>)
                .await
                .or_else(already_gone)
                .err()
                .map(|e| format!("cannot remove the volume {volume}: {e}")),
            None => None,
        };
        let after = after_containers.await;
        let problems: Vec<String> = removed
            .into_iter()
            .filter_map(Result::err)
            .chain(volume)
            .collect();
        (problems, after)
    };
    let network = async {
        let network = network?;
        let removed = docker.remove_network(&network).await.or_else(already_gone);
        removed
            .err()
            .map(|e| format!("cannot remove the network {network}: {e}"))
    };
    let ((mut problems, after), network) = if detached {
        tokio::join!(containers, network)
    } else {
        // A container still attached (its disconnection failed) would make the network's
        // removal fail: it waits.
        let containers = containers.await;
        (containers, network.await)
    };
    problems.extend(network);
    (problems, after)
}

/// A removal that finds nothing to remove (a second try, after a first one the reply of which
/// was lost) has what it wanted.
fn already_gone(error: bollard::errors::Error) -> Result<(), bollard::errors::Error> {
    match error {
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        } => Ok(()),
        other => Err(other),
    }
}

/// How often, and how long, the removal is tried again while Docker does not answer.
const RETRY_EVERY: Duration = Duration::from_secs(5);
const RETRY_FOR: Duration = Duration::from_secs(600);

/// Removes `made` again, now and again, while the cleanup of a job met a Docker daemon that
/// did not answer (stopped, or restarting): once it is back, the job leaves nothing. Gives up
/// after [`RETRY_FOR`]; the runner's periodic reap takes what is left then.
pub(crate) async fn retry_while_unavailable(docker: Docker, made: Made) {
    let started = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(RETRY_EVERY).await;
        let (problems, ()) = remove(&docker, made.clone(), async {}).await;
        if problems.is_empty() {
            tracing::info!("removed what a job left while Docker was away: {made:?}");
            return;
        }
        if started.elapsed() >= RETRY_FOR {
            tracing::warn!(
                "still cannot remove what a job left; the runner's reap will: {}",
                problems.join("; ")
            );
            return;
        }
    }
}
