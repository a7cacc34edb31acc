//! The Docker backend as the config's `container.*` keys set it up, for `hearth daemon` and
//! `hearth exec -c FILE` alike.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hearth_backend::Backend;

use hearth_docker::connect::DockerSettings;
use hearth_docker::registry::{PasswordSource, Registries, RegistryEntry};
use hearth_docker::{ContainerSettings, DockerBackend, HostWithDocker};
use hearth_runner::config::{ContainerConfig, RegistryPassword};
use hearth_runner::trust::CaBundle;

/// Connects to the Docker daemon `container.docker_host` (else `DOCKER_HOST`) names, waiting
/// up to `patience` for one that does not answer yet, and sets the backend up from the
/// config. Job folders go under `root`; the node lent to images without one under
/// `externals`. `warn` hears what is waited for and what is not done. Also says whether job
/// containers get the Docker socket.
pub async fn backend(
    container: &ContainerConfig,
    trust: Option<&CaBundle>,
    root: PathBuf,
    externals: PathBuf,
    patience: Duration,
    warn: impl Fn(&str),
) -> Result<(DockerBackend, bool), hearth_docker::DockerError> {
    let settings = DockerSettings::from_env(&container.docker_host);
    let client = settings.connect(patience, &warn).await?;
    let socket = socket_for_jobs(container, &settings, &warn);
    let in_jobs = socket.is_some();
    let backend = DockerBackend::with_client(client, root)
        .with_node_lending(externals)
        .with_registries(registries(container))
        .with_settings(ContainerSettings {
            network: container.network.clone(),
            privileged: container.privileged,
            valid_volumes: container.valid_volumes.clone(),
            force_pull: container.force_pull,
            force_rebuild: container.force_rebuild,
            docker_socket: socket,
            options: container.options.clone(),
            nano_cpus: container.cpus,
            memory: container.memory,
            registry_mirrors: container.registry_mirrors.clone(),
            workdir: settings.workdir(container.bind_workdir),
            ca_bundle: trust.map(|bundle| hearth_docker::trust::CaBundle::new(bundle.pem.clone())),
        });
    Ok((backend, in_jobs))
}

/// Registry credentials: the config's `container.registries` and `container.docker_config`
/// files, then the user's own Docker config.
fn registries(container: &ContainerConfig) -> Registries {
    Registries {
        entries: container
            .registries
            .iter()
            .map(|entry| RegistryEntry {
                host: entry.host.clone(),
                username: entry.username.clone(),
                password: match &entry.password {
                    RegistryPassword::Literal(secret) => PasswordSource::Literal(secret.clone()),
                    RegistryPassword::Env(name) => PasswordSource::Env(name.clone()),
                    RegistryPassword::File(path) => PasswordSource::File(path.clone()),
                },
            })
            .collect(),
        config_files: container.docker_config.clone(),
        user_config: true,
    }
}

/// The Docker socket to mount into job containers: only with `container.docker_host:
/// automount`, and only when the daemon has one on this machine.
fn socket_for_jobs(
    container: &ContainerConfig,
    settings: &DockerSettings,
    warn: impl Fn(&str),
) -> Option<PathBuf> {
    if container.docker_host.trim() != hearth_docker::connect::AUTOMOUNT {
        return None;
    }
    let socket = settings.socket();
    if socket.is_none() {
        warn(&format!(
            "container.docker_host is automount, but Docker is reached at {}, not through a \
             socket on this machine: job containers do not get it",
            settings.describe()
        ));
    }
    socket
}

/// The host backend, its jobs given Docker actions and `docker://` steps: through `docker`,
/// the runner's Docker backend, when it has one (one set of live jobs, so that its `reap`
/// leaves host jobs' step containers be); else through the daemon the config names, reached
/// at a job's first such step (a host-only runner does not wait for Docker at start), with
/// `folders`, the job folders' root and the externals folder, as [`backend`] takes them.
pub fn host_with_docker(
    host: Arc<dyn Backend>,
    docker: Option<DockerBackend>,
    container: &ContainerConfig,
    trust: Option<&CaBundle>,
    folders: (PathBuf, PathBuf),
) -> Arc<dyn Backend> {
    let container = container.clone();
    let trust = trust.cloned();
    let connect: hearth_docker::Connect = Arc::new(move || {
        let (docker, container, trust) = (docker.clone(), container.clone(), trust.clone());
        let (root, externals) = folders.clone();
        Box::pin(async move {
            if let Some(docker) = docker {
                return Ok(docker);
            }
            let quiet = |m: &str| tracing::debug!("{m}");
            let connected = backend(
                &container,
                trust.as_ref(),
                root,
                externals,
                Duration::ZERO,
                quiet,
            )
            .await;
            connected
                .map(|(backend, _)| backend)
                .map_err(|e| e.to_string())
        })
    });
    Arc::new(HostWithDocker::new(host, connect))
}
