//! The Docker backend: each job in a fresh container, on a network of its own, through the
//! Docker Engine API (`bollard`); the only crate that knows that API.
//!
//! A job's folders are the host backend's (`hearth-host`: a folder per job with the workspace
//! and temp folder, the repository copied in, a record for reaping), bind-mounted into the job
//! container at `/__w` (act_runner's `container.bind_workdir`): the engine reaches the job's
//! files through the runtime, which maps `/__w/...` to the folder on this machine. The tool
//! cache is mounted at `/__t`. The container is kept alive by a sleeper (`tail -f /dev/null`,
//! as act does, after saying whether the image has `bash`) and each step runs through `docker
//! exec`. Everything created carries the job's owner labels and `hearth.backend=docker`, and
//! `finish` removes it whatever happened; `reap` removes what a dead runner left. What does not
//! depend on each other goes side by side: the network and the containers are created
//! together, the containers started together, and the network removed while the containers are.
//!
//! The parts: `connect` (the daemon's address, TLS, waiting for it), `registry` (credentials
//! per image host), `options` (a container's `options:` against an allow-list), `services`
//! (ports, health checks, the wait), `reach` (the forge reachable from the job), `sleeper` (the
//! job container's main process), `job` (exec, files), `cleanup` (removing what a job made),
//! `copy` (copy mode, `Workdir::Copy`: the job's folder a volume in the daemon, reached
//! through the archive API, for daemons that do not share this machine's folders),
//! `step_container` (steps in containers of their own: Docker actions, `docker://` steps, their
//! images pulled or built), `on_host` ([`HostWithDocker`]: host jobs given those steps too),
//! `doctor` (what `hearth doctor` asks: the daemon's version and data root, an image here or
//! pullable without pulling it).

mod cleanup;
pub mod connect;
mod copy;
pub mod doctor;
mod job;
mod mirror;
mod node;
mod on_host;
pub mod options;
mod reach;
pub mod registry;
mod services;
mod sleeper;
pub mod step_container;
pub mod trust;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use bollard::models::{
    ContainerCreateBody, HostConfig, NetworkConnectRequest, NetworkCreateRequest,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, CreateImageOptionsBuilder, ListContainersOptionsBuilder,
    ListNetworksOptionsBuilder, ListVolumesOptionsBuilder, RemoveContainerOptionsBuilder,
    RemoveVolumeOptions, TagImageOptionsBuilder,
};
use bollard::Docker;
use futures_util::future::join_all;
use futures_util::StreamExt;
use hearth_backend::{
    Backend, BackendError, BoxFuture, CancellationToken, ForgeRegistry, JobPath, JobPaths,
    JobRuntime, JobSpec, Reaped, SetupLevel, SetupLog,
};
use hearth_host::HostBackend;
use registry::Registries;

pub use job::DockerJob;
pub use on_host::{Connect, HostWithDocker};

/// Where the job's folder is mounted in its container.
pub const JOB_ROOT: &str = "/__w";
/// Where the tool cache is mounted.
pub const TOOL_CACHE: &str = "/__t";
/// The tool cache's volume in copy mode: shared by the jobs, kept (as act_runner's
/// `act-toolcache`), carrying no owner's labels so that no `reap` removes it.
pub const TOOL_CACHE_VOLUME: &str = "hearth-toolcache";
/// The label saying when a job's containers and network were made.
const CREATED_LABEL: &str = "hearth.created";
/// The label every container and network of this backend carries.
const BACKEND_LABEL: (&str, &str) = ("hearth.backend", "docker");

/// Why the Docker backend could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    #[error("cannot reach the Docker daemon at {0}: {1}")]
    Connect(String, #[source] bollard::errors::Error),
    #[error("`{0}` is not a Docker address (unix://, tcp:// or http://)")]
    Address(String),
}

/// Where a job's folder (`/__w`) lives: act_runner's `container.bind_workdir`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Workdir {
    /// A folder on the runner's machine, bind-mounted: the daemon must see this machine's
    /// folders (a local daemon). The engine reads the workspace in place.
    #[default]
    Bind,
    /// A volume of the job's inside the daemon, filled and read through the Engine API
    /// (archive uploads and downloads): for a daemon that shares no folder with the runner.
    Copy,
}

/// The runner's settings for its container jobs (act_runner's `container.*` keys).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContainerSettings {
    /// `container.network`: empty for a network of each job's own; `host`, `bridge` or the
    /// name of a network otherwise.
    pub network: String,
    /// `container.privileged`: job containers run privileged, and `--privileged` in a
    /// workflow's `options` is accepted.
    pub privileged: bool,
    /// `container.valid_volumes`: glob patterns (`*` within a path segment, `**` across
    /// segments) of the volumes and bind mounts jobs may mount; empty allows none.
    pub valid_volumes: Vec<String>,
    /// `container.force_pull` (`hearth exec --pull`): pull images even when they are there.
    pub force_pull: bool,
    /// `container.force_rebuild`: build Docker actions' images even when an image of the
    /// same files is there (Docker's layer cache still applies).
    pub force_rebuild: bool,
    /// `container.registry_mirrors`: a mirror (host, and a path prefix if any) by registry
    /// host (`docker.io`, `ghcr.io`), pulled from first.
    pub registry_mirrors: std::collections::BTreeMap<String, String>,
    /// The daemon's socket, mounted into job containers at `/var/run/docker.sock` (with
    /// `container.docker_host: automount`); `None` by default: a job given the socket
    /// controls the machine.
    pub docker_socket: Option<PathBuf>,
    /// `container.options` (`hearth exec --container-options`): `docker create` options for
    /// every job container (not services, as in act), read against the same allow-list as a
    /// workflow's `options:`, which come after them and win where both set a flag.
    pub options: String,
    /// `container.cpus`, in billionths of a CPU: the limit of job and service containers
    /// whose options set no `--cpus`.
    pub nano_cpus: Option<i64>,
    /// `container.memory`, in bytes: the limit of job and service containers whose options
    /// set no `--memory`.
    pub memory: Option<i64>,
    /// `container.bind_workdir`: the job's folder bound from this machine or copied into a
    /// volume in the daemon.
    pub workdir: Workdir,
    /// The runner's CA bundle (`runner.ca_file` over its system store), copied into every
    /// job, service and step container and named by [`hearth_backend::CA_BUNDLE_VARIABLES`].
    pub ca_bundle: Option<trust::CaBundle>,
}

/// A container as the workflow wants it, checked: its spec, `options:`, allowed volumes and
/// ports to publish.
struct Wanted<'a> {
    spec: &'a hearth_backend::ContainerSpec,
    options: options::ContainerOptions,
    volumes: Vec<String>,
    ports: (Option<Vec<String>>, Option<bollard::models::PortMap>),
}

/// An error of the daemon's, said as what could not be done.
fn failed(what: &str) -> impl Fn(bollard::errors::Error) -> BackendError {
    let what = what.to_owned();
    move |e| BackendError::Unsupported(format!("{what}: {e}"))
}

/// Runs jobs in containers of one Docker daemon.
#[derive(Clone)]
pub struct DockerBackend {
    docker: Docker,
    /// The job folders (bind-mounted into the containers, so on the daemon's machine).
    host: HostBackend,
    /// Where registry credentials come from.
    registries: Registries,
    settings: ContainerSettings,
    /// The names of the jobs this backend (and its clones) runs now: `reap` leaves them be.
    live: job::Live,
    /// The node lent to job containers, found and bundled at the first job that could use it
    /// (see `node`), or why there is none, to say when an action needs it.
    lent_node: hearth_host::NodeLender,
}

impl std::fmt::Debug for DockerBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DockerBackend").finish_non_exhaustive()
    }
}

impl DockerBackend {
    /// Connects to the daemon `DOCKER_HOST` names (the local socket by default), agreeing on
    /// an API version it speaks; job folders go under `root`.
    pub async fn connect(root: PathBuf) -> Result<Self, DockerError> {
        let settings = connect::DockerSettings::from_env("");
        let docker = settings.connect(Duration::ZERO, |_| {}).await?;
        Ok(Self::with_client(docker, root))
    }

    /// A backend over a client already connected (see [`connect::DockerSettings::connect`]).
    pub fn with_client(docker: Docker, root: PathBuf) -> Self {
        DockerBackend {
            docker,
            host: HostBackend::new(root),
            registries: Registries {
                user_config: true,
                ..Registries::default()
            },
            settings: ContainerSettings::default(),
            live: job::Live::default(),
            lent_node: hearth_host::NodeLender::default(),
        }
    }

    /// Lends the `node` on the runner's `PATH` to job containers whose image has none, for
    /// JavaScript actions: bundled once under `externals` (a folder that outlives the runner,
    /// shared by runners on this machine) and mounted read-only; for a daemon that does not
    /// share this machine's folders (`container.bind_workdir: false`), copied into the job
    /// when an action first needs it.
    pub fn with_node_lending(mut self, externals: PathBuf) -> Self {
        self.lent_node = hearth_host::NodeLender::new(externals);
        self
    }

    /// Applies the runner's `container.*` settings.
    pub fn with_settings(mut self, settings: ContainerSettings) -> Self {
        self.settings = settings;
        self
    }

    /// Takes registry credentials from `registries` (see the `registry` module).
    pub fn with_registries(mut self, registries: Registries) -> Self {
        self.registries = registries;
        self
    }

    /// Pulls `image` unless it is there already (from its registry's mirror first, when it
    /// has one), logging what it does.
    async fn ensure_image(
        &self,
        spec: &hearth_backend::ContainerSpec,
        forge: Option<&ForgeRegistry>,
        log: &mut dyn SetupLog,
        cancel: &CancellationToken,
    ) -> Result<(), BackendError> {
        if !self.settings.force_pull && self.docker.inspect_image(&spec.image).await.is_ok() {
            return Ok(());
        }
        if let Some(mirrored) = mirror::mirrored(&spec.image, &self.settings.registry_mirrors) {
            // The workflow's credentials are for the image's registry, not for the mirror.
            match self
                .pull(&mirrored.reference, None, None, log, cancel)
                .await
            {
                Ok(()) => {
                    let options = TagImageOptionsBuilder::default()
                        .repo(&mirrored.repository)
                        .tag(&mirrored.tag)
                        .build();
                    return self
                        .docker
                        .tag_image(&mirrored.reference, Some(options))
                        .await
                        .map_err(|e| {
                            BackendError::Unsupported(format!(
                                "cannot tag {} as {}: {e}",
                                mirrored.reference, spec.image
                            ))
                        });
                }
                Err(e) if e.kind() == hearth_backend::ErrorKind::Cancelled => return Err(e),
                Err(e) => log.line(
                    SetupLevel::Warning,
                    &format!(
                        "The mirror {} did not serve {} ({e}); pulling it from its registry",
                        mirrored.mirror, spec.image
                    ),
                ),
            }
        }
        self.pull(&spec.image, spec.credentials.as_ref(), forge, log, cancel)
            .await
    }

    /// Pulls `image` with the credentials found for its registry.
    async fn pull(
        &self,
        image: &str,
        workflow: Option<&hearth_backend::Credentials>,
        forge: Option<&ForgeRegistry>,
        log: &mut dyn SetupLog,
        cancel: &CancellationToken,
    ) -> Result<(), BackendError> {
        let host = registry::registry_host(image);
        let (found, tried) = self.registries.resolve(&host, workflow, forge).await;
        let (credentials, source) = match found {
            Some(found) => (Some(found.credentials), Some(found.source)),
            None => (None, None),
        };
        let from = source
            .as_deref()
            .map(|source| format!(" with credentials from {source}"))
            .unwrap_or_default();
        log.line(SetupLevel::Info, &format!("Pulling {image}{from}"));
        let refused = match self.stream_pull(image, credentials, cancel).await? {
            None => return Ok(()),
            Some(answer) => answer,
        };
        let refusal = |answer: &str, tried: &[String]| {
            let tried = if tried.is_empty() {
                "no credentials were found for it (the workflow's, container.registries, \
                 container.docker_config, the runner user's Docker config)"
                    .to_owned()
            } else {
                format!("credentials tried: {}", tried.join(", "))
            };
            format!("cannot pull the image {image} from {host}: {answer}; {tried}")
        };
        let mut message = refusal(&refused, &tried);
        // The task's token is tried for any image on the forge's host; a public image there
        // needs none, and a registry may refuse a token it does not know.
        if source.as_deref() == Some(registry::TASK_TOKEN) {
            tracing::debug!("{message}; pulling without credentials");
            match self.stream_pull(image, None, cancel).await? {
                None => return Ok(()),
                Some(anonymous) => message.push_str(&format!(
                    "; without credentials: {}",
                    refusal(&anonymous, &[])
                )),
            }
        }
        Err(BackendError::Registry(message))
    }

    /// Pulls `image` to its end; the registry's answer when it refuses.
    async fn stream_pull(
        &self,
        image: &str,
        credentials: Option<bollard::auth::DockerCredentials>,
        cancel: &CancellationToken,
    ) -> Result<Option<String>, BackendError> {
        let options = CreateImageOptionsBuilder::default()
            .from_image(image)
            .build();
        let mut pull = self.docker.create_image(Some(options), None, credentials);
        loop {
            let next = tokio::select! {
                next = pull.next() => next,
                () = cancel.cancelled() => {
                    return Err(BackendError::Cancelled(format!("pulling {image}")))
                }
            };
            match next {
                None => return Ok(None),
                Some(Ok(_progress)) => {}
                Some(Err(e)) => return Ok(Some(registry_answer(&e))),
            }
        }
    }

    async fn start_job(
        &self,
        spec: JobSpec,
        log: &mut dyn SetupLog,
        cancel: &CancellationToken,
    ) -> Result<DockerJob, BackendError> {
        let Some(container) = spec.container.clone() else {
            return Err(BackendError::Unsupported(
                "a Docker job needs an image: give its label one (`name:docker://IMAGE`) or the \
                 job a `container:`"
                    .to_owned(),
            ));
        };
        // Everything the workflow asks for is checked before anything is made.
        let privileged = self.settings.privileged;
        let job_wanted = Wanted {
            spec: &container,
            volumes: self.volumes(&container)?,
            ports: services::ports(&container.ports)?,
            options: self.job_options(&container.options)?,
        };
        let copy = self.settings.workdir == Workdir::Copy;
        if copy && spec.bind_repository {
            return Err(BackendError::Unsupported(
                "the repository cannot be bound into the job container: this runner copies job                  folders into the Docker daemon (container.bind_workdir: false); run without                  --bind"
                    .to_owned(),
            ));
        }
        let bound = bound_repository(&spec)?;
        let mut services_wanted = Vec::with_capacity(spec.services.len());
        for (id, service) in &spec.services {
            let options = options::parse(&service.options, privileged)
                .map_err(|e| BackendError::Unsupported(format!("service `{id}`: {e}")))?;
            let wanted = Wanted {
                spec: service,
                volumes: self.volumes(service)?,
                ports: services::ports(&service.ports)?,
                options: self.limited(options),
            };
            services_wanted.push((id.as_str(), wanted));
        }
        let mut labels: HashMap<String, String> = spec.owner.iter().cloned().collect();
        labels.insert(BACKEND_LABEL.0.to_owned(), BACKEND_LABEL.1.to_owned());
        // When it was made, for an operator looking at what is there (seconds since the epoch).
        let created = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        labels.insert(CREATED_LABEL.to_owned(), created.to_string());
        let folders = JobSpec {
            name: spec.name.clone(),
            // A bound repository is mounted over the workspace instead of copied into it; in
            // copy mode the repository is uploaded into the container, and the folder here
            // holds only the job's record.
            repository: spec.repository.clone().filter(|_| bound.is_none() && !copy),
            owner: spec.owner.clone(),
            ..JobSpec::default()
        };
        // The images are looked at (or pulled) while the repository is copied.
        let forge = spec.forge_registry.as_ref();
        let images = async {
            self.ensure_image(&container, forge, log, cancel).await?;
            for (_, service) in &spec.services {
                self.ensure_image(service, forge, log, cancel).await?;
            }
            Ok(())
        };
        let (images, host_job, lent_node) = tokio::join!(
            images,
            self.host.start_job(folders, cancel),
            self.lent_node.bundle()
        );
        let host_job = host_job?;
        if let Err(e) = images {
            let _ = host_job.finish_job().await;
            return Err(e);
        }
        // Names: the job folder's, which is unique under the backend's root.
        let name = host_job
            .job_dir()
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| spec.name.clone());
        let name = format!("hearth-{}", sanitize(&name));
        let mut job = DockerJob::new(self.docker.clone(), host_job, name, self.live.clone());
        job.workspace_source = bound;
        match lent_node {
            Ok(bundle) => job.lent_node = Some(bundle),
            Err(why) => job.no_lent_node = why,
        }
        job.copy = copy;
        job.upload_repository = spec.repository.clone().filter(|_| copy);
        if !copy {
            job.open_to_any_user().map_err(|e| {
                BackendError::Unsupported(format!("cannot open the job's folders to its user: {e}"))
            })?;
        }
        let made = self.make(
            &mut job,
            (&job_wanted, &services_wanted),
            &labels,
            &spec.reach,
            log,
            cancel,
        );
        match made.await {
            Ok(()) => {
                // Docker actions join the job's network, where its services are.
                let network = Some(job.network_name.clone());
                job.steps = Some(
                    step_container::StepContainers::new(
                        self.clone(),
                        network,
                        labels,
                        spec.forge_registry.clone(),
                        job.name.clone(),
                    )
                    .with_extra_hosts(job.extra_hosts.clone()),
                );
                Ok(job)
            }
            Err(e) => {
                // Nothing half made stays: the network, the containers and the folder go.
                let _ = job.remove_all().await;
                Err(e)
            }
        }
    }

    /// Makes the job's network and containers, starts them and waits for the services.
    ///
    /// Whatever can go side by side does: Docker resolves a container's network when it starts
    /// it, so the containers are created while the network is, and started together.
    async fn make(
        &self,
        job: &mut DockerJob,
        (container, services): (&Wanted<'_>, &[(&str, Wanted<'_>)]),
        labels: &HashMap<String, String>,
        reach: &[hearth_backend::Reach],
        log: &mut dyn SetupLog,
        cancel: &CancellationToken,
    ) -> Result<(), BackendError> {
        let docker = &self.docker;
        if job.copy {
            // Before the container: Docker would make a missing volume itself, unlabelled.
            let request = bollard::models::VolumeCreateRequest {
                name: Some(job.name.clone()),
                labels: Some(labels.clone()),
                ..Default::default()
            };
            docker
                .create_volume(request)
                .await
                .map_err(failed("cannot create the job's volume"))?;
            job.volume = Some(job.name.clone());
        }
        let own_network = self.settings.network.is_empty();
        job.network_name = if own_network {
            job.name.clone()
        } else {
            self.settings.network.clone()
        };
        let network = job.network_name.clone();
        let urls: Vec<String> = reach.iter().map(|r| r.url.clone()).collect();
        let reach_urls = urls.as_slice();
        let extra_hosts = reach::host_entries(reach_urls).await;
        // Step containers (Docker actions) reach the forge by the same names.
        job.extra_hosts = extra_hosts.clone();
        let job_body = self.job_body(job, container, labels.clone(), extra_hosts);
        let service_bodies: Vec<_> = services
            .iter()
            .map(|(id, wanted)| {
                let name = format!("{}-{}", job.name, sanitize(id));
                let body = self.service_body(&network, id, wanted, labels.clone());
                (*id, name, body)
            })
            .collect();
        let network_made = async {
            if !own_network {
                return Ok(());
            }
            let request = NetworkCreateRequest {
                name: network.clone(),
                driver: Some("bridge".to_owned()),
                labels: Some(labels.clone()),
                ..Default::default()
            };
            docker
                .create_network(request)
                .await
                .map(|_| ())
                .map_err(failed("cannot create the job's network"))
        };
        let create = |name: String, body: ContainerCreateBody| async move {
            let options = CreateContainerOptionsBuilder::default().name(&name).build();
            docker
                .create_container(Some(options), body)
                .await
                .map(|created| created.id)
        };
        // Podman, unlike Docker, refuses a container whose network is not made yet: what it
        // refused so is created again once the network is there.
        let retries: Vec<_> = std::iter::once((job.name.clone(), job_body.clone()))
            .chain(
                service_bodies
                    .iter()
                    .map(|(_, name, body)| (name.clone(), body.clone())),
            )
            .collect();
        let services_created = join_all(
            service_bodies
                .into_iter()
                .map(|(id, name, body)| async move { (id, create(name, body).await) }),
        );
        let (network_made, mut job_created, mut services_created) = tokio::join!(
            network_made,
            create(job.name.clone(), job_body),
            services_created
        );
        if network_made.is_ok() {
            let mut retries = retries.into_iter();
            let created = std::iter::once(&mut job_created)
                .chain(services_created.iter_mut().map(|(_, created)| created));
            for (created, (name, body)) in created.zip(&mut retries) {
                if matches!(created, Err(e) if network_missing(e)) {
                    *created = create(name, body).await;
                }
            }
        }
        // What was made is the job's to remove, whatever else failed.
        if own_network && network_made.is_ok() {
            job.network = Some(network.clone());
        }
        if let Ok(id) = &job_created {
            job.container = Some(id.clone());
        }
        let mut service_failed = None;
        for ((id, created), (_, wanted)) in services_created.into_iter().zip(services) {
            match created {
                Ok(container) => job.services.push(job::Service {
                    id: id.to_owned(),
                    container,
                    info: hearth_backend::ContainerInfo::default(),
                }),
                Err(e) => {
                    let what = format!(
                        "cannot create the service `{id}` from {}",
                        wanted.spec.image
                    );
                    service_failed.get_or_insert_with(|| failed(&what)(e));
                }
            }
        }
        network_made?;
        let id = job_created.map_err(failed(&format!(
            "cannot create the job container from {}",
            container.spec.image
        )))?;
        if let Some(e) = service_failed {
            return Err(e);
        }
        // A forge on another network of this daemon (a runner beside it in a container, given
        // the socket): the job container joins that network too, as Docker keeps bridge
        // networks apart.
        if !reach.is_empty() && network != "host" {
            for forge_network in reach::forge_networks(docker, reach_urls, &network).await {
                let request = NetworkConnectRequest {
                    container: id.clone(),
                    endpoint_config: None,
                };
                docker
                    .connect_network(&forge_network, request)
                    .await
                    .map_err(failed(&format!(
                        "cannot join the forge's Docker network {forge_network}"
                    )))?;
                log.line(
                    SetupLevel::Info,
                    &format!(
                        "The forge is on the Docker network {forge_network}: the job container \
                         joins it"
                    ),
                );
            }
        }
        if job.copy {
            // Filled before it starts: the working directory is there when the sleeper is.
            let repository = job.upload_repository.take();
            self.fill_volume(&id, repository.as_ref(), log, cancel)
                .await?;
        }

        // The forge as the job reaches it: forwarded from the network's gateway when it is on
        // this machine's loopback (see `reach`). A container on the host's network reaches the
        // host's loopback as it is. Listened on once the containers run: podman (netavark)
        // brings a network's bridge, and with it the gateway's address here, up only when its
        // first container starts.
        let forwarders = async {
            if reach.is_empty() || network == "host" {
                return Ok(Vec::new());
            }
            let inspected = docker
                .inspect_network(&network, None)
                .await
                .map_err(failed("cannot inspect the job's network"))?;
            let gateway = inspected
                .ipam
                .and_then(|ipam| ipam.config)
                .and_then(|configs| configs.into_iter().find_map(|c| c.gateway))
                .and_then(|gateway| gateway.parse().ok());
            match gateway {
                Some(gateway) => reach::forward(reach, gateway).await,
                None => Ok(Vec::new()),
            }
        };
        if let Some(bundle) = &self.settings.ca_bundle {
            let installed = join_all(
                std::iter::once(("the job container".to_owned(), id.as_str()))
                    .chain(
                        job.services
                            .iter()
                            .map(|s| (format!("the service `{}`", s.id), s.container.as_str())),
                    )
                    .map(|(what, id)| async move { bundle.install(docker, id, &what).await }),
            );
            installed
                .await
                .into_iter()
                .collect::<Result<Vec<()>, _>>()?;
        }
        let started = join_all(
            std::iter::once(("the job container".to_owned(), id.as_str()))
                .chain(
                    job.services
                        .iter()
                        .map(|s| (format!("the service `{}`", s.id), s.container.as_str())),
                )
                .map(|(what, id)| async move {
                    docker
                        .start_container(id, None)
                        .await
                        .map_err(failed(&format!("cannot start {what}")))
                }),
        );
        started.await.into_iter().collect::<Result<Vec<()>, _>>()?;
        job.forwarders = forwarders.await?;
        let folder = match self.settings.workdir {
            Workdir::Bind => "",
            Workdir::Copy => " (its folder a volume of the daemon's, copied through the API)",
        };
        log.line(
            SetupLevel::Info,
            &format!(
                "Started the job container {} from {}{folder}",
                job.name, container.spec.image
            ),
        );

        // The job container's environment and whether it has bash, while the services get
        // healthy.
        let (inspected, has_bash, healthy) = tokio::join!(
            docker.inspect_container(&id, None),
            sleeper::has_bash(docker, &id),
            services::wait_healthy(docker, &mut job.services, &network, log, cancel)
        );
        healthy?;
        let inspected = inspected.map_err(failed("cannot inspect the job container"))?;
        let pid = inspected.state.as_ref().and_then(|state| state.pid);
        job.base_env = inspected
            .config
            .and_then(|c| c.env)
            .unwrap_or_default()
            .iter()
            .filter_map(|pair| pair.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        job.has_bash = has_bash;
        if job.has_bash.is_none() {
            job.probe_bash().await;
        }
        // Before the first step: the container reaches the forge and the cache.
        if !reach.is_empty() {
            let checks: Vec<reach::Check> = reach
                .iter()
                .map(|r| reach::Check {
                    seen: job.address(&r.url),
                    reach: r.clone(),
                })
                .collect();
            let lent_node = job
                .lent_node
                .as_ref()
                .filter(|_| !job.copy)
                .map(|bundle| bundle.argv());
            let container = reach::Container {
                id: &id,
                pid,
                network: &network,
                hosts: &job.extra_hosts,
            };
            for warning in reach::check(docker, container, &checks, lent_node).await? {
                log.line(SetupLevel::Warning, &warning);
            }
        }
        Ok(())
    }

    /// Copy mode: the job's volume gets the folders a job folder has (`workspace`, `temp`,
    /// `_actions`, the pid files' folder) and the repository in the workspace.
    async fn fill_volume(
        &self,
        container: &str,
        repository: Option<&hearth_backend::HostPath>,
        log: &mut dyn SetupLog,
        cancel: &CancellationToken,
    ) -> Result<(), BackendError> {
        use copy::Entry;
        let pid_dir = copy::PID_DIR
            .strip_prefix(JOB_ROOT)
            .unwrap_or(copy::PID_DIR)
            .trim_start_matches('/');
        let skeleton = copy::pack(&[
            Entry::Dir("workspace"),
            Entry::Dir("temp"),
            Entry::Dir("_actions"),
            Entry::Dir(pid_dir),
        ])
        .map_err(|e| BackendError::Unsupported(format!("cannot make the job's folders: {e}")))?;
        copy::upload(&self.docker, container, JOB_ROOT, skeleton)
            .await
            .map_err(failed("cannot make the job's folders in its volume"))?;
        let Some(repository) = repository else {
            return Ok(());
        };
        log.line(
            SetupLevel::Info,
            &format!(
                "Copying {} into the job container",
                repository.as_path().display()
            ),
        );
        let workspace = format!("{JOB_ROOT}/workspace");
        let uploaded = copy::upload_folder(
            &self.docker,
            container,
            &workspace,
            repository.as_path(),
            "",
        );
        tokio::select! {
            uploaded = uploaded => uploaded.map_err(|e| {
                BackendError::Unsupported(format!(
                    "cannot copy the repository {} into the job container: {e}",
                    repository.as_path().display()
                ))
            }),
            () = cancel.cancelled() => {
                Err(BackendError::Cancelled("copying the repository".to_owned()))
            }
        }
    }

    /// The job container's options: the runner's (`container.options`) under the workflow's
    /// `options`, then the runner's limits where neither sets one.
    fn job_options(&self, workflow: &str) -> Result<options::ContainerOptions, BackendError> {
        let privileged = self.settings.privileged;
        let runners = options::parse(&self.settings.options, privileged).map_err(|e| {
            BackendError::Unsupported(format!(
                "the runner's container options (container.options, --container-options): {e}"
            ))
        })?;
        let parsed = options::parse(workflow, privileged).map_err(BackendError::Unsupported)?;
        Ok(self.limited(parsed.over(&runners)))
    }

    /// `options` with the runner's CPU and memory limits (`container.cpus`,
    /// `container.memory`) where they set none of their own.
    fn limited(&self, mut options: options::ContainerOptions) -> options::ContainerOptions {
        options.nano_cpus = options.nano_cpus.or(self.settings.nano_cpus);
        options.memory = options.memory.or(self.settings.memory);
        options
    }

    /// The job container: the sleeper as its main process, the job folder and the tool cache
    /// mounted, on the job's network.
    fn job_body(
        &self,
        job: &DockerJob,
        wanted: &Wanted<'_>,
        labels: HashMap<String, String>,
        extra_hosts: Vec<String>,
    ) -> ContainerCreateBody {
        let Wanted {
            spec,
            options,
            volumes,
            ports: (exposed_ports, port_bindings),
        } = wanted;
        let mut binds = match &job.volume {
            // Copy mode: nothing of this machine's, so a remote daemon can run the job.
            Some(volume) => vec![
                format!("{volume}:{JOB_ROOT}"),
                format!("{TOOL_CACHE_VOLUME}:{TOOL_CACHE}"),
            ],
            None => vec![
                format!("{}:{JOB_ROOT}", job.job_dir().display()),
                format!("{}:{TOOL_CACHE}", job.tool_cache.display()),
            ],
        };
        binds.extend(job.workspace_bind());
        if job.volume.is_none() {
            binds.extend(job.lent_node.as_ref().map(node::bind));
        }
        binds.extend(volumes.iter().cloned());
        if let Some(socket) = &self.settings.docker_socket {
            binds.push(format!("{}:/var/run/docker.sock", socket.display()));
        }
        let mut extra_hosts = extra_hosts;
        extra_hosts.extend(options.extra_hosts.iter().cloned());
        let env = self.container_env(spec, options);
        ContainerCreateBody {
            image: Some(spec.image.clone()),
            entrypoint: Some(sleeper::entrypoint()),
            cmd: Some(Vec::new()),
            env: Some(env),
            labels: Some(labels),
            user: options.user.clone(),
            hostname: options.hostname.clone(),
            exposed_ports: exposed_ports.clone(),
            working_dir: Some(format!("{JOB_ROOT}/workspace")),
            host_config: Some(HostConfig {
                binds: Some(binds),
                network_mode: Some(job.network_name.clone()),
                privileged: self.settings.privileged.then_some(true),
                port_bindings: port_bindings.clone(),
                nano_cpus: options.nano_cpus,
                memory: options.memory,
                extra_hosts: (!extra_hosts.is_empty()).then_some(extra_hosts),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// A job or service container's environment: the variables naming the runner's CA bundle,
    /// then the workflow's `env` and `--env` options, which win.
    fn container_env(
        &self,
        spec: &hearth_backend::ContainerSpec,
        options: &options::ContainerOptions,
    ) -> Vec<String> {
        let trust = self
            .settings
            .ca_bundle
            .iter()
            .flat_map(trust::CaBundle::env);
        trust
            .chain(
                spec.env
                    .iter()
                    .chain(&options.env)
                    .map(|(k, v)| format!("{k}={v}")),
            )
            .collect()
    }

    /// A container's `volumes:`, each allowed by `container.valid_volumes`, as binds.
    fn volumes(&self, spec: &hearth_backend::ContainerSpec) -> Result<Vec<String>, BackendError> {
        spec.volumes
            .iter()
            .map(|volume| {
                let source = volume.split(':').next().unwrap_or_default();
                if self
                    .settings
                    .valid_volumes
                    .iter()
                    .any(|pattern| glob_matches(pattern, source))
                {
                    Ok(volume.clone())
                } else {
                    Err(BackendError::Unsupported(format!(
                        "the volume `{volume}` is not allowed: `{source}` matches none of this \
                         runner's container.valid_volumes"
                    )))
                }
            })
            .collect()
    }

    /// The service `id`, on the job's network with its id as a DNS alias.
    fn service_body(
        &self,
        network: &str,
        id: &str,
        wanted: &Wanted<'_>,
        labels: HashMap<String, String>,
    ) -> ContainerCreateBody {
        let Wanted {
            spec,
            options,
            volumes,
            ports: (exposed_ports, port_bindings),
        } = wanted;
        // Aliases exist on user-defined networks only.
        let aliased = !matches!(network, "host" | "bridge" | "none");
        let env = self.container_env(spec, options);
        let mut aliases = vec![id.to_owned()];
        aliases.extend(options.aliases.iter().cloned());
        ContainerCreateBody {
            image: Some(spec.image.clone()),
            entrypoint: spec.entrypoint.as_ref().map(|e| vec![e.clone()]),
            cmd: spec
                .command
                .as_ref()
                .map(|c| c.split_whitespace().map(str::to_owned).collect()),
            env: Some(env),
            labels: Some(labels),
            user: options.user.clone(),
            working_dir: options.workdir.clone(),
            hostname: options.hostname.clone(),
            exposed_ports: exposed_ports.clone(),
            healthcheck: services::health(options),
            host_config: Some(HostConfig {
                network_mode: Some(network.to_owned()),
                binds: (!volumes.is_empty()).then(|| volumes.clone()),
                privileged: self.settings.privileged.then_some(true),
                port_bindings: port_bindings.clone(),
                nano_cpus: options.nano_cpus,
                memory: options.memory,
                extra_hosts: (!options.extra_hosts.is_empty()).then(|| options.extra_hosts.clone()),
                ..Default::default()
            }),
            networking_config: aliased.then(|| bollard::models::NetworkingConfig {
                endpoints_config: Some(HashMap::from([(
                    network.to_owned(),
                    bollard::models::EndpointSettings {
                        aliases: Some(aliases),
                        ..Default::default()
                    },
                )])),
            }),
            ..Default::default()
        }
    }

    /// Removes this backend's containers and networks carrying `owner`'s labels.
    async fn reap_labelled(&self, owner: &[(String, String)]) -> Result<Reaped, BackendError> {
        let mut filters: HashMap<String, Vec<String>> = HashMap::new();
        let mut wanted: Vec<String> = owner.iter().map(|(k, v)| format!("{k}={v}")).collect();
        wanted.push(format!("{}={}", BACKEND_LABEL.0, BACKEND_LABEL.1));
        filters.insert("label".to_owned(), wanted);
        let mut reaped = Reaped::default();
        let listing = |e: bollard::errors::Error| BackendError::Cleanup(format!("listing: {e}"));
        let containers = self
            .docker
            .list_containers(Some(
                ListContainersOptionsBuilder::default()
                    .all(true)
                    .filters(&filters)
                    .build(),
            ))
            .await
            .map_err(listing)?;
        for container in containers {
            let Some(id) = container.id else { continue };
            // A job of this backend (its containers are named after it) is not a leftover.
            let names = container.names.unwrap_or_default();
            if names
                .iter()
                .any(|n| self.live.holds_prefix(n.trim_start_matches('/')))
            {
                continue;
            }
            let options = RemoveContainerOptionsBuilder::default()
                .force(true)
                .v(true)
                .build();
            match self.docker.remove_container(&id, Some(options)).await {
                Ok(()) => reaped.removed.push(format!("container {id}")),
                Err(e) => {
                    tracing::warn!(container = %id, error = %e, "cannot remove a leftover container")
                }
            }
        }
        let networks = self
            .docker
            .list_networks(Some(
                ListNetworksOptionsBuilder::default()
                    .filters(&filters)
                    .build(),
            ))
            .await
            .map_err(listing)?;
        for network in networks {
            let Some(name) = network.name else { continue };
            if self.live.holds_prefix(&name) {
                continue;
            }
            match self.docker.remove_network(&name).await {
                Ok(()) => reaped.removed.push(format!("network {name}")),
                Err(e) => {
                    tracing::warn!(network = %name, error = %e, "cannot remove a leftover network")
                }
            }
        }
        // Copy mode's job volumes, once their containers are gone (above).
        let volumes = self
            .docker
            .list_volumes(Some(
                ListVolumesOptionsBuilder::default()
                    .filters(&filters)
                    .build(),
            ))
            .await
            .map_err(listing)?;
        for volume in volumes.volumes.unwrap_or_default() {
            let name = volume.name;
            if self.live.holds_prefix(&name) {
                continue;
            }
            match self
                .docker
                .remove_volume(&name, None::<RemoveVolumeOptions>)
                .await
            {
                Ok(()) => reaped.removed.push(format!("volume {name}")),
                Err(e) => {
                    tracing::warn!(volume = %name, error = %e, "cannot remove a leftover volume")
                }
            }
        }
        Ok(reaped)
    }
}

impl Backend for DockerBackend {
    fn start<'a>(
        &'a self,
        spec: JobSpec,
        log: &'a mut dyn SetupLog,
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<Box<dyn JobRuntime>, BackendError>> {
        Box::pin(async move {
            let job = self.start_job(spec, log, cancel).await?;
            Ok(Box::new(job) as Box<dyn JobRuntime>)
        })
    }

    fn paths_ahead(&self) -> Option<JobPaths> {
        Some(job_paths())
    }

    fn reap<'a>(
        &'a self,
        owner: &'a [(String, String)],
    ) -> BoxFuture<'a, Result<Reaped, BackendError>> {
        Box::pin(async move {
            let mut reaped = self.reap_labelled(owner).await?;
            let folders = self.host.reap(owner).await?;
            reaped.removed.extend(folders.removed);
            Ok(reaped)
        })
    }

    /// Leftovers and spare folders, then the images this backend built for Docker actions
    /// that no container uses (they carry its label; they are built again when needed).
    /// Docker's build cache is left alone: its entries carry no label, so the user's cannot be
    /// told from Hearth's.
    fn free_space<'a>(
        &'a self,
        owner: &'a [(String, String)],
    ) -> BoxFuture<'a, Result<Reaped, BackendError>> {
        Box::pin(async move {
            let mut reaped = self.reap_labelled(owner).await?;
            let folders = self.host.free_space(owner).await?;
            reaped.removed.extend(folders.removed);
            reaped.removed.extend(self.prune_action_images().await?);
            Ok(reaped)
        })
    }

    /// Docker's data root (`DockerRootDir`) when the daemon shares this machine's folders
    /// (bind mode) and the folder is here.
    fn data_root(&self) -> BoxFuture<'_, Option<PathBuf>> {
        Box::pin(async move {
            if self.settings.workdir != Workdir::Bind {
                return None;
            }
            let info = self.docker.info().await.ok()?;
            let root = PathBuf::from(info.docker_root_dir?);
            root.is_dir().then_some(root)
        })
    }
}

impl DockerBackend {
    /// Removes the unused images built for Docker actions (dangling or tagged
    /// `hearth-action:*`, all labelled as this backend's) more than an hour old: a younger one
    /// may have just been built for a step about to start. Returns what went.
    async fn prune_action_images(&self) -> Result<Vec<String>, BackendError> {
        let label = format!("{}={}", BACKEND_LABEL.0, BACKEND_LABEL.1);
        let filters = HashMap::from([
            ("label".to_owned(), vec![label]),
            // `false`: tagged images too, not only dangling ones (unused ones only, always).
            ("dangling".to_owned(), vec!["false".to_owned()]),
            ("until".to_owned(), vec!["1h".to_owned()]),
        ]);
        let pruned = self
            .docker
            .prune_images(Some(
                bollard::query_parameters::PruneImagesOptionsBuilder::default()
                    .filters(&filters)
                    .build(),
            ))
            .await
            .map_err(|e| BackendError::Cleanup(format!("pruning action images: {e}")))?;
        let mut removed = Vec::new();
        for deleted in pruned.images_deleted.unwrap_or_default() {
            if let Some(tag) = deleted.untagged {
                removed.push(format!("image {tag}"));
            }
        }
        if let Some(bytes) = pruned.space_reclaimed.filter(|b| *b > 0) {
            removed.push(format!("{} MB of images", bytes / (1 << 20)));
        }
        Ok(removed)
    }
}

/// The repository a job binds as its workspace (`JobSpec::bind_repository`), checked before
/// anything is made: an absolute folder whose path a bind can name.
fn bound_repository(spec: &JobSpec) -> Result<Option<PathBuf>, BackendError> {
    let Some(repository) = spec.repository.as_ref().filter(|_| spec.bind_repository) else {
        return Ok(None);
    };
    let failed = |source: std::io::Error| BackendError::Prepare {
        what: "repository",
        path: repository.as_path().to_path_buf(),
        source,
    };
    let path = std::path::absolute(repository.as_path()).map_err(failed)?;
    if !std::fs::metadata(&path).map_err(failed)?.is_dir() {
        return Err(failed(std::io::Error::new(
            std::io::ErrorKind::NotADirectory,
            "not a folder",
        )));
    }
    // A bind is written `SOURCE:TARGET`: a colon in the source would split it.
    let text = path.to_string_lossy();
    if text.contains(':') {
        return Err(BackendError::Unsupported(format!(
            "the repository {text} cannot be bound into a container: its path holds a `:`"
        )));
    }
    Ok(Some(path))
}

/// Whether `error` is a daemon's refusal of a container whose network does not exist (yet).
fn network_missing(error: &bollard::errors::Error) -> bool {
    let message = registry_answer(error).to_ascii_lowercase();
    message.contains("network") && (message.contains("not found") || message.contains("no such"))
}

/// What the registry (through the daemon) said, without bollard's wrapping.
fn registry_answer(error: &bollard::errors::Error) -> String {
    match error {
        bollard::errors::Error::DockerResponseServerError { message, .. } => message.clone(),
        bollard::errors::Error::DockerStreamError { error } => error.clone(),
        other => other.to_string(),
    }
}

/// `pattern` against `path`: `**` matches anything, `*` anything but `/`, other characters
/// themselves.
fn glob_matches(pattern: &str, path: &str) -> bool {
    fn matches(p: &[u8], s: &[u8]) -> bool {
        match p {
            [] => s.is_empty(),
            [b'*', b'*', rest @ ..] => (0..=s.len()).any(|i| matches(rest, &s[i..])),
            [b'*', rest @ ..] => (0..=s.len())
                .take_while(|&i| i == 0 || s[i - 1] != b'/')
                .any(|i| matches(rest, &s[i..])),
            [c, rest @ ..] => s.first() == Some(c) && matches(rest, &s[1..]),
        }
    }
    matches(pattern.as_bytes(), path.as_bytes())
}

/// A container or network name from a folder name: Docker allows `[a-zA-Z0-9][a-zA-Z0-9_.-]`.
fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// The job's paths as its processes see them.
fn job_paths() -> JobPaths {
    let root = JobPath::new(JOB_ROOT);
    JobPaths {
        workspace: root.join("workspace"),
        temp: root.join("temp"),
        tool_cache: JobPath::new(TOOL_CACHE),
    }
}

#[cfg(test)]
mod tests {
    use super::glob_matches;

    #[test]
    fn valid_volume_globs_match_as_act_runner_documents_them() {
        assert!(glob_matches("data", "data"));
        assert!(!glob_matches("data", "data2"));
        assert!(glob_matches("/srv/shared/*.json", "/srv/shared/a.json"));
        assert!(!glob_matches("/srv/shared/*.json", "/srv/shared/x/a.json"));
        assert!(glob_matches("/srv/**", "/srv/x/y/z"));
        assert!(glob_matches("**", "/anything/at/all"));
        assert!(!glob_matches("/srv/*", "/etc/passwd"));
    }
}
