//! Docker actions in host jobs: [`HostWithDocker`] wraps the host backend (or any backend
//! whose job paths are this machine's) and gives its jobs `run_container` through a Docker
//! daemon, reached the first time a job needs it. The host backend knows nothing of Docker;
//! the runner decides, by wrapping it, that its host jobs may run containers.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use hearth_backend::{
    Backend, BackendError, BoxFuture, CancellationToken, ContainerRun, ExecEnd, ExecSpec,
    FileDigest, ForgeRegistry, HostPath, JobContainers, JobPath, JobPaths, JobRuntime, JobSpec,
    NodeCommand, OutputSink, Reaped, SetupLog,
};
use tokio::sync::OnceCell;

use crate::step_container::StepContainers;
use crate::DockerBackend;

/// Connects to the Docker daemon when a host job first runs a container; the error says why
/// it could not.
pub type Connect = Arc<dyn Fn() -> BoxFuture<'static, Result<DockerBackend, String>> + Send + Sync>;

/// Numbers host jobs, for their step containers' names.
static JOBS: AtomicUsize = AtomicUsize::new(0);

/// A backend whose jobs also run steps in containers of their own through Docker.
#[derive(Clone)]
pub struct HostWithDocker {
    host: Arc<dyn Backend>,
    docker: Arc<Docker>,
}

/// The daemon, connected by the first job that needs it (asked again by a later job while it
/// does not answer: it may start after the runner).
struct Docker {
    connect: Connect,
    connected: tokio::sync::Mutex<Option<DockerBackend>>,
}

impl Docker {
    async fn backend(&self) -> Result<DockerBackend, BackendError> {
        let mut connected = self.connected.lock().await;
        if let Some(backend) = connected.as_ref() {
            return Ok(backend.clone());
        }
        let backend = (self.connect)().await.map_err(|e| {
            BackendError::Unsupported(format!(
                "Docker does not answer on this machine ({e}); start it, or run the job in a \
                 container (a `docker://` label) on a runner that reaches Docker"
            ))
        })?;
        *connected = Some(backend.clone());
        Ok(backend)
    }
}

impl Docker {
    /// The daemon if it answers now; `None` (quietly) if it does not.
    async fn answering(&self) -> Option<DockerBackend> {
        match self.backend().await {
            Ok(backend) => Some(backend),
            Err(e) => {
                tracing::debug!("no Docker leftovers looked for: {e}");
                None
            }
        }
    }
}

impl HostWithDocker {
    /// `host`'s jobs, with containers run through the daemon `connect` reaches.
    pub fn new(host: Arc<dyn Backend>, connect: Connect) -> Self {
        HostWithDocker {
            host,
            docker: Arc::new(Docker {
                connect,
                connected: tokio::sync::Mutex::new(None),
            }),
        }
    }
}

impl Backend for HostWithDocker {
    fn start<'a>(
        &'a self,
        spec: JobSpec,
        log: &'a mut dyn SetupLog,
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<Box<dyn JobRuntime>, BackendError>> {
        Box::pin(async move {
            let mut labels: HashMap<String, String> = spec.owner.iter().cloned().collect();
            labels.insert(
                crate::BACKEND_LABEL.0.to_owned(),
                crate::BACKEND_LABEL.1.to_owned(),
            );
            let n = JOBS.fetch_add(1, Ordering::Relaxed);
            let prefix = format!(
                "hearth-{}-{}-{n}",
                crate::sanitize(&spec.name),
                std::process::id()
            );
            let forge = spec.forge_registry.clone();
            let inner = self.host.start(spec, log, cancel).await?;
            Ok(Box::new(HostJobWithDocker {
                inner,
                docker: self.docker.clone(),
                labels,
                forge,
                prefix,
                steps: OnceCell::new(),
            }) as Box<dyn JobRuntime>)
        })
    }

    fn paths_ahead(&self) -> Option<hearth_backend::JobPaths> {
        self.host.paths_ahead()
    }

    /// The step containers (and their networks and volumes) a dead runner's host jobs left,
    /// when Docker answers: a runner with host labels only has no Docker backend of its own to
    /// reap them. Then the host's leftovers: the containers go first, since they bind the job
    /// folders. The Docker backend is the one the jobs use (the runner's, when it has one for
    /// its `docker://` labels), so running host jobs' step containers, which it holds, are
    /// left alone. A Docker that does not answer has nothing to reap: asked again at the next
    /// sweep.
    fn reap<'a>(
        &'a self,
        owner: &'a [(String, String)],
    ) -> BoxFuture<'a, Result<Reaped, BackendError>> {
        Box::pin(async move {
            let mut reaped = Reaped::default();
            if let Some(docker) = self.docker.answering().await {
                reaped = docker.reap_labelled(owner).await?;
            }
            reaped.removed.extend(self.host.reap(owner).await?.removed);
            Ok(reaped)
        })
    }

    fn free_space<'a>(
        &'a self,
        owner: &'a [(String, String)],
    ) -> BoxFuture<'a, Result<Reaped, BackendError>> {
        Box::pin(async move {
            let mut reaped = Reaped::default();
            if let Some(docker) = self.docker.answering().await {
                reaped = docker.reap_labelled(owner).await?;
                reaped.removed.extend(docker.prune_action_images().await?);
            }
            reaped
                .removed
                .extend(self.host.free_space(owner).await?.removed);
            Ok(reaped)
        })
    }
}

/// A host job whose steps may also run in containers: every other method of the contract is
/// the host job's own (a method added to `JobRuntime` with a default must be passed on here).
struct HostJobWithDocker {
    inner: Box<dyn JobRuntime>,
    docker: Arc<Docker>,
    labels: HashMap<String, String>,
    forge: Option<ForgeRegistry>,
    prefix: String,
    /// Made at the job's first container.
    steps: OnceCell<StepContainers>,
}

impl HostJobWithDocker {
    async fn steps(&self) -> Result<&StepContainers, BackendError> {
        self.steps
            .get_or_try_init(|| async {
                let backend = self.docker.backend().await?;
                if backend.settings.workdir == crate::Workdir::Copy {
                    // A bind of this machine's folders would name folders the daemon lacks
                    // (Docker makes them, empty): the step would run on nothing.
                    return Err(BackendError::Unsupported(
                        "a step in a container of its own in a host job binds the job's \
                         folders into it, and this runner's Docker daemon shares no folder \
                         with it (container.bind_workdir: false); run the job in a container \
                         (a `docker://` label)"
                            .to_owned(),
                    ));
                }
                let steps = StepContainers::new(
                    backend,
                    None,
                    self.labels.clone(),
                    self.forge.clone(),
                    self.prefix.clone(),
                );
                // Live while the job runs: the Docker backend's `reap` leaves its containers.
                Ok(steps.live_while_held())
            })
            .await
    }
}

impl JobRuntime for HostJobWithDocker {
    fn paths(&self) -> &JobPaths {
        self.inner.paths()
    }

    fn base_env(&self) -> &[(String, String)] {
        self.inner.base_env()
    }

    fn address(&self, url: &str) -> String {
        self.inner.address(url)
    }

    fn containers(&self) -> JobContainers {
        self.inner.containers()
    }

    fn exec<'a>(
        &'a self,
        spec: ExecSpec,
        sink: &'a mut dyn OutputSink,
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<ExecEnd, BackendError>> {
        self.inner.exec(spec, sink, cancel)
    }

    fn run_container<'a>(
        &'a self,
        run: ContainerRun,
        sink: &'a mut dyn OutputSink,
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<ExecEnd, BackendError>> {
        Box::pin(async move {
            let steps = self.steps().await?;
            let on_host = |path: &JobPath| {
                self.inner
                    .host_view(path)
                    .map(|p| p.as_path().to_path_buf())
            };
            let folders = crate::step_container::JobFolders::OnHost(&on_host);
            steps.run(run, folders, sink, cancel).await
        })
    }

    fn has_program(&self, program: &str, path: &str) -> Option<bool> {
        self.inner.has_program(program, path)
    }

    fn node(&self, major: u32) -> BoxFuture<'_, Result<NodeCommand, BackendError>> {
        self.inner.node(major)
    }

    fn write_file<'a>(
        &'a self,
        path: &'a JobPath,
        contents: &'a [u8],
        replaces: Option<&'a JobPath>,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        self.inner.write_file(path, contents, replaces)
    }

    fn read_file<'a>(
        &'a self,
        path: &'a JobPath,
        limit: u64,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, BackendError>> {
        self.inner.read_file(path, limit)
    }

    fn empty_files<'a>(&'a self, paths: &'a [JobPath]) -> BoxFuture<'a, Result<(), BackendError>> {
        self.inner.empty_files(paths)
    }

    fn host_view(&self, path: &JobPath) -> Option<HostPath> {
        self.inner.host_view(path)
    }

    fn file_digests<'a>(
        &'a self,
        path: &'a JobPath,
    ) -> BoxFuture<'a, Result<Option<Vec<FileDigest>>, BackendError>> {
        self.inner.file_digests(path)
    }

    fn expose<'a>(&'a self, folder: &'a HostPath) -> BoxFuture<'a, Result<JobPath, BackendError>> {
        self.inner.expose(folder)
    }

    /// Removes the step containers still there (runs dropped half-way), then finishes the
    /// host job; every problem is reported.
    fn finish(mut self: Box<Self>) -> BoxFuture<'static, Result<(), BackendError>> {
        Box::pin(async move {
            let mut problems = Vec::new();
            if let Some(steps) = self.steps.take() {
                problems = steps.remove_left().await;
            }
            let finished = self.inner.finish().await;
            match (finished, problems.is_empty()) {
                (Ok(()), true) => Ok(()),
                (Ok(()), false) => Err(BackendError::Cleanup(problems.join("; "))),
                (Err(e), true) => Err(e),
                (Err(e), false) => Err(BackendError::Cleanup(format!(
                    "{}; {e}",
                    problems.join("; ")
                ))),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth_backend::{ImageSource, NoSetupLog, Stream};

    /// With a daemon that shares no folder with the runner (copy mode), a host job's step
    /// container is refused saying why, before anything is made in Docker.
    #[tokio::test]
    async fn a_host_jobs_step_container_is_refused_when_docker_is_remote() {
        let root = tempfile::tempdir().expect("temp dir");
        let host: Arc<dyn Backend> = Arc::new(hearth_host::HostBackend::new(root.path().into()));
        let client = bollard::Docker::connect_with_http(
            "http://127.0.0.1:9",
            1,
            bollard::API_DEFAULT_VERSION,
        )
        .expect("a client (it is never used)");
        let remote = DockerBackend::with_client(client, root.path().join("docker")).with_settings(
            crate::ContainerSettings {
                workdir: crate::Workdir::Copy,
                ..Default::default()
            },
        );
        let connect: Connect = Arc::new(move || {
            let remote = remote.clone();
            Box::pin(async move { Ok(remote) })
        });
        let backend = HostWithDocker::new(host, connect);
        let cancel = CancellationToken::new();
        let spec = JobSpec {
            name: "j".into(),
            ..Default::default()
        };
        let job = backend
            .start(spec, &mut NoSetupLog, &cancel)
            .await
            .expect("started");
        let run = ContainerRun {
            image: ImageSource::Pull("hearth-test/busybox:1".into()),
            entrypoint: None,
            args: Vec::new(),
            env: Vec::new(),
            mounts: Vec::new(),
            working_dir: "/github/workspace".into(),
            timeout: None,
        };
        let mut ignore = |_: Stream, _: &[u8]| {};
        let refused = job
            .run_container(run, &mut ignore, &cancel)
            .await
            .expect_err("refused");
        assert_eq!(refused.kind(), hearth_backend::ErrorKind::Unsupported);
        assert!(
            refused.to_string().contains("bind_workdir: false"),
            "{refused}"
        );
        job.finish().await.expect("finished");
    }
}
