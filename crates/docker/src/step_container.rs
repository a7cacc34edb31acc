//! Steps in containers of their own (`JobRuntime::run_container`: Docker actions and
//! `docker://` steps), for container jobs (`DockerJob`) and host jobs (`DockerStepsOnHost`).
//!
//! The image is pulled when missing (with the credentials the backend finds for its registry)
//! or built from the action's folder: the build context is packed into a tar with fixed
//! owners and times, and the image tagged `hearth-action:<digest of the context>`, so that it
//! is built once and reused until a file of the context changes. The credentials found for
//! the registries of the Dockerfile's `FROM` images go with the build (`X-Registry-Config`).
//! The container is created with the job's folders bind-mounted (where this machine has
//! them; in copy mode, the job's volume, see `volume_binds`), on the job's network when there is one, labelled as the job's containers are, and
//! removed when it ends, times out or is cancelled; should that not happen (a future dropped
//! half-way), the job's `finish` removes what is left.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bollard::container::LogOutput;
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    AttachContainerOptionsBuilder, BuildImageOptionsBuilder, CreateContainerOptionsBuilder,
    RemoveContainerOptionsBuilder, StopContainerOptionsBuilder,
};
use bollard::Docker;
use futures_util::StreamExt;
use hearth_backend::{
    BackendError, CancellationToken, ContainerRun, ContainerSpec, ExecEnd, ForgeRegistry,
    ImageSource, JobPath, Mount, OutputSink, SetupLevel, SetupLog, Stream,
};
use tokio::time::{sleep_until, Instant};

use crate::DockerBackend;

/// The repository of images built from actions' Dockerfiles; the tag is their context's
/// digest.
pub const ACTION_IMAGE: &str = "hearth-action";
/// How long a stopped step's container has between its stop signal and being killed.
const STOP_GRACE_SECONDS: i32 = 1;
/// How long the container's end is awaited once its output closed. Generous: podman under
/// load takes seconds to report it, and its inspect output (the fallback) names a state
/// (`stopped`) the Engine API's schema does not have.
const DRAIN: Duration = Duration::from_secs(10);

/// Where a step container finds the job's folders.
pub(crate) enum JobFolders<'a> {
    /// On the runner's machine, bound from there; the closure says where a job path is
    /// (`None`: not on this machine).
    OnHost(&'a (dyn Fn(&JobPath) -> Option<PathBuf> + Send + Sync)),
    /// In a volume of the daemon's (copy mode).
    InVolume(InVolume<'a>),
}

/// A copy-mode job's folders: its volume, reached through its container.
pub(crate) struct InVolume<'a> {
    pub volume: &'a str,
    pub container: &'a str,
    /// A folder of the job's on the runner's machine, for copies on their way.
    pub scratch: &'a Path,
}

/// Binds of the mounts' folders on the runner's machine.
fn host_binds(
    mounts: &[Mount],
    on_host: &(dyn Fn(&JobPath) -> Option<PathBuf> + Send + Sync),
) -> Result<Vec<String>, BackendError> {
    let mut binds = Vec::with_capacity(mounts.len());
    for mount in mounts {
        let Some(folder) = on_host(&mount.source) else {
            return Err(BackendError::Unsupported(format!(
                "a step in a container of its own needs the job's folder {} on the runner's \
                 machine",
                mount.source
            )));
        };
        make_folder(&folder).map_err(|source| BackendError::Prepare {
            what: "folder for a step's container",
            path: folder.clone(),
            source,
        })?;
        binds.push(format!("{}:{}", folder.display(), mount.target));
    }
    Ok(binds)
}

/// Runs a job's step containers; shared by the job's runtime for its whole life.
pub(crate) struct StepContainers {
    backend: DockerBackend,
    /// The job's network, for a job in a container (its services by their aliases).
    network: Option<String>,
    /// The job's labels (owner, backend), on every step container.
    labels: HashMap<String, String>,
    forge: Option<ForgeRegistry>,
    /// Step containers are named `<prefix>-step-<n>`.
    prefix: String,
    count: AtomicUsize,
    /// Containers not removed yet, for `finish`.
    left: Arc<Mutex<HashSet<String>>>,
    /// Whether the prefix is in the backend's live set on this one's account.
    holds_live: bool,
    /// `/etc/hosts` entries the job container has for the forge (see `reach`).
    extra_hosts: Vec<String>,
}

impl Drop for StepContainers {
    fn drop(&mut self) {
        if self.holds_live {
            self.backend.live.remove(&self.prefix);
        }
    }
}

impl StepContainers {
    pub(crate) fn new(
        backend: DockerBackend,
        network: Option<String>,
        labels: HashMap<String, String>,
        forge: Option<ForgeRegistry>,
        prefix: String,
    ) -> Self {
        StepContainers {
            backend,
            network,
            labels,
            forge,
            prefix,
            count: AtomicUsize::new(0),
            left: Arc::default(),
            holds_live: false,
            extra_hosts: Vec::new(),
        }
    }

    /// Runs `run`, the job's folders found as `folders` says.
    pub(crate) async fn run(
        &self,
        run: ContainerRun,
        folders: JobFolders<'_>,
        sink: &mut dyn OutputSink,
        cancel: &CancellationToken,
    ) -> Result<ExecEnd, BackendError> {
        let started = Instant::now();
        let deadline = run.timeout.map(|t| started + t);
        let mut binds = match &folders {
            JobFolders::OnHost(on_host) => host_binds(&run.mounts, on_host)?,
            JobFolders::InVolume(job) => self.volume_binds(&run.mounts, job).await?,
        };
        let settings = &self.backend.settings;
        // As GitHub mounts it into container actions, where the runner gives it to its jobs.
        if let Some(socket) = &settings.docker_socket {
            binds.push(format!("{}:/var/run/docker.sock", socket.display()));
        }
        let image = {
            let preparing = self.image(&run.image, &folders, sink, cancel);
            tokio::select! {
                image = preparing => image?,
                () = cancel.cancelled() => return Ok(ExecEnd::Cancelled),
                () = sleep_until_or_never(deadline) => return Ok(ExecEnd::TimedOut),
            }
        };
        let n = self.count.fetch_add(1, Ordering::Relaxed);
        let name = format!("{}-step-{n}", self.prefix);
        let body = ContainerCreateBody {
            image: Some(image.clone()),
            entrypoint: run.entrypoint.clone().map(|e| vec![e]),
            cmd: (!run.args.is_empty()).then(|| run.args.clone()),
            env: Some(step_env(&run.env, settings.ca_bundle.as_ref())),
            working_dir: Some(run.working_dir.clone()),
            labels: Some(self.labels.clone()),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            host_config: Some(HostConfig {
                binds: Some(binds),
                network_mode: self.network.clone(),
                // The runner's limits of its job containers (`container.cpus`, `.memory`).
                nano_cpus: settings.nano_cpus,
                memory: settings.memory,
                extra_hosts: (!self.extra_hosts.is_empty()).then(|| self.extra_hosts.clone()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let docker = &self.backend.docker;
        let options = CreateContainerOptionsBuilder::default().name(&name).build();
        let id = docker
            .create_container(Some(options), body)
            .await
            .map_err(|e| {
                BackendError::Container(format!("cannot create a container from {image}: {e}"))
            })?
            .id;
        let removal = Removal::new(docker.clone(), id.clone(), self.left.clone());
        if let Some(bundle) = &settings.ca_bundle {
            if let Err(e) = bundle.install(docker, &id, "the step's container").await {
                removal.now().await?;
                return Err(e);
            }
        }
        let ended = self.attach_and_wait(&id, sink, cancel, deadline).await;
        let removed = removal.now().await;
        let ended = ended?;
        removed?;
        Ok(ended)
    }

    /// Attaches to the container, starts it and streams its output until it ends or is
    /// stopped.
    async fn attach_and_wait(
        &self,
        id: &str,
        sink: &mut dyn OutputSink,
        cancel: &CancellationToken,
        deadline: Option<Instant>,
    ) -> Result<ExecEnd, BackendError> {
        let docker = &self.backend.docker;
        let lost = |e: bollard::errors::Error| BackendError::Wait {
            program: format!("the step's container {id}"),
            source: std::io::Error::other(crate::job::docker_lost(e)),
        };
        let options = AttachContainerOptionsBuilder::default()
            .stream(true)
            .stdout(true)
            .stderr(true)
            // Attached before it starts: `logs` would replay what the stream then sends again.
            .logs(false)
            .build();
        let mut attached = docker
            .attach_container(id, Some(options))
            .await
            .map_err(lost)?
            .output;
        docker
            .start_container(id, None)
            .await
            .map_err(|e| BackendError::Spawn {
                program: format!("the step's container {id}"),
                source: std::io::Error::other(e.to_string()),
            })?;
        let mut stopped = None;
        loop {
            tokio::select! {
                next = attached.next() => match next {
                    Some(Ok(output)) => pass(sink, output),
                    Some(Err(e)) => return Err(lost(e)),
                    None => break,
                },
                () = cancel.cancelled(), if stopped.is_none() => {
                    self.stop(id).await;
                    stopped = Some(ExecEnd::Cancelled);
                }
                () = sleep_until_or_never(deadline), if stopped.is_none() => {
                    self.stop(id).await;
                    stopped = Some(ExecEnd::TimedOut);
                }
            }
        }
        if let Some(end) = stopped {
            return Ok(end);
        }
        let waited = tokio::time::timeout(DRAIN, docker.wait_container(id, None).next()).await;
        match waited {
            Ok(Some(Ok(response))) => Ok(exit(response.status_code)),
            Ok(Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. }))) => {
                Ok(exit(code))
            }
            Ok(Some(Err(e))) => Err(lost(e)),
            Ok(None) | Err(_) => {
                let inspected = docker.inspect_container(id, None).await.map_err(lost)?;
                let code = inspected.state.and_then(|s| s.exit_code).unwrap_or(-1);
                Ok(exit(code))
            }
        }
    }

    /// Stops the container: its stop signal, then a kill after a second.
    async fn stop(&self, id: &str) {
        let options = StopContainerOptionsBuilder::default()
            .t(STOP_GRACE_SECONDS)
            .build();
        if let Err(e) = self.backend.docker.stop_container(id, Some(options)).await {
            tracing::debug!(container = %id, error = %e, "cannot stop a step's container");
        }
    }

    /// The image to run, pulled or built.
    async fn image(
        &self,
        source: &ImageSource,
        folders: &JobFolders<'_>,
        sink: &mut dyn OutputSink,
        cancel: &CancellationToken,
    ) -> Result<String, BackendError> {
        match source {
            ImageSource::Pull(image) => {
                let spec = ContainerSpec {
                    image: image.clone(),
                    ..Default::default()
                };
                let mut log = SinkLog(sink);
                self.backend
                    .ensure_image(&spec, self.forge.as_ref(), &mut log, cancel)
                    .await?;
                Ok(image.clone())
            }
            ImageSource::Build {
                context,
                dockerfile,
            } => {
                let seen = context.join(dockerfile);
                match folders {
                    JobFolders::OnHost(on_host) => {
                        let Some(folder) = on_host(context) else {
                            return Err(BackendError::Unsupported(format!(
                                "the Docker action's folder {context} is not on the runner's \
                                 machine, where its image is built from"
                            )));
                        };
                        self.build(&folder, &seen, dockerfile, sink).await
                    }
                    JobFolders::InVolume(job) => {
                        // The folder is in the daemon: copied here for the build, then gone.
                        let n = self.count.fetch_add(1, Ordering::Relaxed);
                        let scratch = job.scratch.join(format!(".action-context-{n}"));
                        let copied = crate::copy::download_folder(
                            &self.backend.docker,
                            job.container,
                            context,
                            &scratch,
                        )
                        .await;
                        let built = match copied {
                            Ok(folder) => self.build(&folder, &seen, dockerfile, sink).await,
                            Err(e) => Err(BackendError::Container(format!(
                                "cannot build the Docker action's image from {seen}: {e}"
                            ))),
                        };
                        let _ = tokio::fs::remove_dir_all(&scratch).await;
                        built
                    }
                }
            }
        }
    }

    /// The volume binds of a step container in copy mode: the job's volume mounted where the
    /// mounts' targets are (one folder, `/github`), so the workspace is there under its own
    /// name, and a relative link in the volume for each other target to its folder
    /// (`file_commands -> temp/_runner_file_commands`), which reads the same from the job
    /// container. Docker before API 1.45 cannot mount a part of a volume, which would
    /// otherwise do this.
    async fn volume_binds(
        &self,
        mounts: &[Mount],
        job: &InVolume<'_>,
    ) -> Result<Vec<String>, BackendError> {
        let unsupported = |why: String| {
            BackendError::Unsupported(format!(
                "a step in a container of its own cannot see the job's folders: {why}"
            ))
        };
        let mut parent = None;
        let mut folders = Vec::with_capacity(mounts.len());
        let mut links = Vec::new();
        for mount in mounts {
            let (at, name) = mount
                .target
                .rsplit_once('/')
                .filter(|(at, name)| !at.is_empty() && !name.is_empty())
                .ok_or_else(|| unsupported(format!("{} is not below a folder", mount.target)))?;
            if parent.is_some_and(|p| p != at) {
                return Err(unsupported(format!(
                    "{} is not in the folder of the other mounts",
                    mount.target
                )));
            }
            parent = Some(at);
            let relative = mount
                .source
                .as_str()
                .strip_prefix(crate::JOB_ROOT)
                .and_then(|r| r.strip_prefix('/'))
                .filter(|r| !r.is_empty() && !r.split('/').any(|part| part == ".."))
                .ok_or_else(|| {
                    unsupported(format!("{} is not in the job's volume", mount.source))
                })?;
            folders.push(relative);
            if relative != name {
                links.push((name, relative));
            }
        }
        // A link must not stand where a folder of the job is.
        for (name, _) in &links {
            if folders.iter().any(|f| f.split('/').next() == Some(*name)) {
                return Err(unsupported(format!("{name} is a folder of the job")));
            }
        }
        let Some(parent) = parent else {
            return Ok(Vec::new());
        };
        let mut entries: Vec<crate::copy::Entry<'_>> =
            folders.iter().map(|f| crate::copy::Entry::Dir(f)).collect();
        entries.extend(
            links
                .iter()
                .map(|(name, to)| crate::copy::Entry::Link(name, to)),
        );
        let tar = crate::copy::pack(&entries)
            .map_err(|e| unsupported(format!("cannot pack the links: {e}")))?;
        crate::copy::upload(&self.backend.docker, job.container, crate::JOB_ROOT, tar)
            .await
            .map_err(|e| {
                BackendError::Container(format!(
                    "cannot link the job's folders for a step's container: {e}"
                ))
            })?;
        Ok(vec![format!("{}:{parent}", job.volume)])
    }

    /// Builds the image of the Dockerfile `dockerfile` in `folder` (`seen` as the job sees
    /// it, for messages) unless an image of the same context is there; its tag.
    async fn build(
        &self,
        folder: &Path,
        seen: &JobPath,
        dockerfile: &str,
        sink: &mut dyn OutputSink,
    ) -> Result<String, BackendError> {
        let cannot = |e: String| {
            BackendError::Container(format!(
                "cannot build the Docker action's image from {seen}: {e}"
            ))
        };
        let packed = {
            let folder = folder.to_path_buf();
            let dockerfile = dockerfile.to_owned();
            tokio::task::spawn_blocking(move || context::pack(&folder, &dockerfile))
                .await
                .map_err(|e| cannot(e.to_string()))?
                .map_err(|e| cannot(e.to_string()))?
        };
        let tag = format!("{ACTION_IMAGE}:{}", packed.digest);
        let docker = &self.backend.docker;
        let rebuild = self.backend.settings.force_rebuild;
        if !rebuild && docker.inspect_image(&tag).await.is_ok() {
            sink.output(
                Stream::Stdout,
                format!("Using the action's image {tag}, built from the same files before\n")
                    .as_bytes(),
            );
            return Ok(tag);
        }
        sink.output(
            Stream::Stdout,
            format!("Building the action's image {tag}\n").as_bytes(),
        );
        let mut credentials = HashMap::new();
        for image in context::from_images(&packed.dockerfile_text) {
            let host = crate::registry::registry_host(&image);
            if credentials.contains_key(&host) {
                continue;
            }
            let (found, _) = self
                .backend
                .registries
                .resolve(&host, None, self.forge.as_ref())
                .await;
            if let Some(found) = found {
                credentials.insert(host, found.credentials);
            }
        }
        // Docker's key for its own registry in X-Registry-Config.
        let credentials: HashMap<String, _> = credentials
            .into_iter()
            .map(|(host, c)| match host.as_str() {
                "docker.io" => ("https://index.docker.io/v1/".to_owned(), c),
                _ => (host, c),
            })
            .collect();
        let options = BuildImageOptionsBuilder::default()
            .dockerfile(dockerfile)
            .t(&tag)
            .rm(true)
            .forcerm(true)
            .labels(&HashMap::from([(
                crate::BACKEND_LABEL.0.to_owned(),
                crate::BACKEND_LABEL.1.to_owned(),
            )]))
            .build();
        let mut built = docker.build_image(
            options,
            (!credentials.is_empty()).then_some(credentials),
            Some(bollard::body_full(packed.tar.into())),
        );
        while let Some(next) = built.next().await {
            match next {
                Ok(info) => {
                    if let Some(detail) = info.error_detail.and_then(|d| d.message) {
                        return Err(cannot(detail));
                    }
                    if let Some(text) = info.stream {
                        sink.output(Stream::Stdout, text.as_bytes());
                    }
                }
                Err(e) => return Err(cannot(e.to_string())),
            }
        }
        docker
            .inspect_image(&tag)
            .await
            .map_err(|e| cannot(format!("the image is not there after the build: {e}")))?;
        Ok(tag)
    }

    /// Removes the step containers still there (their runs' futures were dropped); the
    /// problems met.
    pub(crate) async fn remove_left(&self) -> Vec<String> {
        let left: Vec<String> = lock(&self.left).drain().collect();
        let mut problems = Vec::new();
        for id in left {
            if let Err(e) = remove(&self.backend.docker, &id).await {
                problems.push(format!("cannot remove the step container {id}: {e}"));
            }
        }
        problems
    }

    /// With the job container's `/etc/hosts` entries for the forge.
    pub(crate) fn with_extra_hosts(mut self, extra_hosts: Vec<String>) -> Self {
        self.extra_hosts = extra_hosts;
        self
    }

    /// Holds the containers' name prefix in the backend's live set until dropped, so that
    /// the backend's `reap` leaves them be (a host job's, which the backend does not run).
    pub(crate) fn live_while_held(mut self) -> Self {
        self.backend.live.add(&self.prefix);
        self.holds_live = true;
        self
    }

    /// The step containers not removed yet.
    pub(crate) fn left(&self) -> Vec<String> {
        lock(&self.left).iter().cloned().collect()
    }
}

/// Removes a step's container when its run ends, or, if the run's future is dropped before,
/// in the background.
struct Removal {
    docker: Docker,
    id: Option<String>,
    left: Arc<Mutex<HashSet<String>>>,
}

impl Removal {
    fn new(docker: Docker, id: String, left: Arc<Mutex<HashSet<String>>>) -> Self {
        lock(&left).insert(id.clone());
        Removal {
            docker,
            id: Some(id),
            left,
        }
    }

    async fn now(mut self) -> Result<(), BackendError> {
        let Some(id) = self.id.take() else {
            return Ok(());
        };
        let removed = remove(&self.docker, &id).await;
        lock(&self.left).remove(&id);
        removed.map_err(|e| {
            BackendError::Cleanup(format!("cannot remove the step's container {id}: {e}"))
        })
    }
}

impl Drop for Removal {
    fn drop(&mut self) {
        let Some(id) = self.id.take() else {
            return;
        };
        let (docker, left) = (self.docker.clone(), self.left.clone());
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                if remove(&docker, &id).await.is_ok() {
                    lock(&left).remove(&id);
                }
            });
        }
    }
}

async fn remove(docker: &Docker, id: &str) -> Result<(), bollard::errors::Error> {
    let options = RemoveContainerOptionsBuilder::default()
        .force(true)
        .v(true)
        .build();
    match docker.remove_container(id, Some(options)).await {
        Ok(()) => Ok(()),
        // Gone already.
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => Ok(()),
        Err(e) => Err(e),
    }
}

/// A container's output chunk to the step's sink.
/// A step container's environment: the step's, with the variables naming the runner's CA
/// bundle pointing at the container's copy (a host job's name the runner's own file).
fn step_env(env: &[(String, String)], bundle: Option<&crate::trust::CaBundle>) -> Vec<String> {
    let names = hearth_backend::CA_BUNDLE_VARIABLES;
    env.iter()
        .filter(|(k, _)| bundle.is_none() || !names.contains(&k.as_str()))
        .map(|(k, v)| format!("{k}={v}"))
        .chain(bundle.into_iter().flat_map(crate::trust::CaBundle::env))
        .collect()
}

fn pass(sink: &mut dyn OutputSink, output: LogOutput) {
    match output {
        LogOutput::StdErr { message } => sink.output(Stream::Stderr, &message),
        LogOutput::StdOut { message } | LogOutput::Console { message } => {
            sink.output(Stream::Stdout, &message)
        }
        LogOutput::StdIn { .. } => {}
    }
}

fn exit(code: i64) -> ExecEnd {
    ExecEnd::Exited(i32::try_from(code).unwrap_or(-1))
}

async fn sleep_until_or_never(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// A folder mounted into a step's container, made when missing and open to any user (the
/// action's image may run as another user than the runner's).
fn make_folder(folder: &Path) -> std::io::Result<()> {
    if folder.is_dir() {
        return Ok(());
    }
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::create_dir_all(folder)?;
    std::fs::set_permissions(folder, std::fs::Permissions::from_mode(0o777))
}

/// What the image's pull says, as lines of the step's output.
struct SinkLog<'a>(&'a mut dyn OutputSink);

impl SetupLog for SinkLog<'_> {
    fn line(&mut self, _: SetupLevel, text: &str) {
        self.0
            .output(Stream::Stdout, format!("{text}\n").as_bytes());
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// An action's build context: packed the same way whenever its files are the same.
pub(crate) mod context {
    use std::io;
    use std::path::Path;

    use sha2::{Digest, Sha256};

    /// A build context as a tar, with its digest and the Dockerfile's text.
    pub struct Packed {
        pub tar: Vec<u8>,
        /// Hex SHA-256 of the Dockerfile's name and the tar (which holds names, kinds, modes
        /// and contents only: owners and times are fixed).
        pub digest: String,
        pub dockerfile_text: String,
    }

    /// Packs `folder` (files, folders and symbolic links, in name order).
    pub fn pack(folder: &Path, dockerfile: &str) -> io::Result<Packed> {
        let dockerfile_text = std::fs::read_to_string(folder.join(dockerfile))
            .map_err(|e| io::Error::new(e.kind(), format!("cannot read {dockerfile}: {e}")))?;
        let mut builder = tar::Builder::new(Vec::new());
        builder.follow_symlinks(false);
        add_folder(&mut builder, folder, "")?;
        let tar = builder.into_inner()?;
        let mut hasher = Sha256::new();
        hasher.update(dockerfile.as_bytes());
        hasher.update([0]);
        hasher.update(&tar);
        let digest: String = hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Ok(Packed {
            tar,
            digest,
            dockerfile_text,
        })
    }

    fn add_folder(
        builder: &mut tar::Builder<Vec<u8>>,
        folder: &Path,
        prefix: &str,
    ) -> io::Result<()> {
        let mut entries: Vec<_> = std::fs::read_dir(folder)?.collect::<Result<_, _>>()?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let path = format!("{prefix}{name}");
            let kind = entry.file_type()?;
            let mut header = tar::Header::new_gnu();
            header.set_mtime(0);
            header.set_uid(0);
            header.set_gid(0);
            if kind.is_symlink() {
                let target = std::fs::read_link(entry.path())?;
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_mode(0o777);
                header.set_size(0);
                builder.append_link(&mut header, &path, target)?;
            } else if kind.is_dir() {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(0o755);
                header.set_size(0);
                builder.append_data(&mut header, format!("{path}/"), io::empty())?;
                add_folder(builder, &entry.path(), &format!("{path}/"))?;
            } else if kind.is_file() {
                use std::os::unix::fs::PermissionsExt as _;
                let executable = entry.metadata()?.permissions().mode() & 0o111 != 0;
                let contents = std::fs::read(entry.path())?;
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(if executable { 0o755 } else { 0o644 });
                header.set_size(contents.len() as u64);
                builder.append_data(&mut header, &path, contents.as_slice())?;
            }
        }
        Ok(())
    }

    /// The images a Dockerfile's `FROM` lines name (not `scratch`, not earlier stages, not
    /// ones built from build arguments), for the registries' credentials.
    pub fn from_images(dockerfile: &str) -> Vec<String> {
        let mut stages: Vec<String> = Vec::new();
        let mut images = Vec::new();
        for line in dockerfile.lines() {
            let mut words = line.split_whitespace();
            if !words.next().is_some_and(|w| w.eq_ignore_ascii_case("from")) {
                continue;
            }
            let mut words = words.skip_while(|w| w.starts_with("--"));
            let Some(image) = words.next() else {
                continue;
            };
            let earlier_stage = stages.iter().any(|s| s.eq_ignore_ascii_case(image));
            if !(image.eq_ignore_ascii_case("scratch") || image.contains('$') || earlier_stage) {
                images.push(image.to_owned());
            }
            if words.next().is_some_and(|w| w.eq_ignore_ascii_case("as")) {
                if let Some(stage) = words.next() {
                    stages.push(stage.to_owned());
                }
            }
        }
        images
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn from_lines_name_the_images_to_pull() {
            let dockerfile = "FROM --platform=linux/amd64 golang:1 AS build\nRUN x\n\
                              from build\nFROM scratch\nFROM ${BASE}\nFROM 127.0.0.1:5999/private/busybox:1\n";
            assert_eq!(
                from_images(dockerfile),
                ["golang:1", "127.0.0.1:5999/private/busybox:1"]
            );
        }

        #[test]
        fn the_digest_follows_the_files_not_their_times() {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join("Dockerfile"), "FROM scratch\n").unwrap();
            std::fs::create_dir(dir.path().join("sub")).unwrap();
            std::fs::write(dir.path().join("sub/a"), "a").unwrap();
            let first = pack(dir.path(), "Dockerfile").unwrap().digest;
            let file = std::fs::File::options()
                .write(true)
                .open(dir.path().join("sub/a"))
                .unwrap();
            file.set_modified(std::time::SystemTime::UNIX_EPOCH)
                .unwrap();
            assert_eq!(pack(dir.path(), "Dockerfile").unwrap().digest, first);
            std::fs::write(dir.path().join("sub/a"), "b").unwrap();
            assert_ne!(pack(dir.path(), "Dockerfile").unwrap().digest, first);
        }
    }
}

#[cfg(test)]
mod step_env_tests {
    use super::step_env;
    use crate::trust::CaBundle;

    #[test]
    fn a_step_container_names_its_own_copy_of_the_ca_bundle() {
        let env = vec![
            (
                "SSL_CERT_FILE".to_owned(),
                "/runner/_externals/ca.crt".to_owned(),
            ),
            ("KEEP".to_owned(), "1".to_owned()),
        ];
        let bundle = CaBundle::new(b"PEM".to_vec());
        let with = step_env(&env, Some(&bundle));
        assert!(with.contains(&"KEEP=1".to_owned()));
        assert!(with.contains(&"SSL_CERT_FILE=/__e/ca-certificates.crt".to_owned()));
        assert!(with.contains(&"GIT_SSL_CAINFO=/__e/ca-certificates.crt".to_owned()));
        assert!(!with.iter().any(|v| v.contains("/runner/")), "{with:?}");
        let without = step_env(&env, None);
        assert_eq!(
            without,
            ["SSL_CERT_FILE=/runner/_externals/ca.crt", "KEEP=1"]
        );
    }
}
