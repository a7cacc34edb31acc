//! A fake backend for tests: jobs run as processes on this machine (through the host backend),
//! but the job sees its folders under a root that does not exist on the host, as a job in a
//! container sees `/__w/...`. It is how the engine's own contract tests prove that the engine
//! keeps the two worlds apart:
//!
//! - every path the engine gives a job (working directory, script, environment) is a job path,
//!   translated to the host only here, just before the process starts; a host path of the job's
//!   folder in an `ExecSpec` is refused ([`BackendError::NotInJob`]) — it would not exist in a
//!   container;
//! - a job path is not a host path, so an engine that opened one with `std::fs` would fail;
//! - what the job's processes print and write into the file-command files is translated back,
//!   so the engine only ever sees job paths, as it would from a container;
//! - [`JobRuntime::expose`] copies a host folder into the job, as a container backend copies an
//!   action into its container: the job sees it under its own root, never at the host path;
//! - `container:` and `services:` are accepted without running anything (no Docker here): the
//!   job context shows made-up ids, and what the backend "pulls" is logged to the set-up log.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use hearth_backend::{
    Backend, BackendError, BoxFuture, CancellationToken, ContainerInfo, ExecEnd, ExecSpec,
    HostPath, JobContainers, JobPath, JobPaths, JobRuntime, JobSpec, OutputSink, SetupLevel,
    SetupLog, Stream,
};
use hearth_host::{HostBackend, HostJob};

/// Where every job sees its folders (the same for every job, as in a container).
pub const JOB_ROOT: &str = "/__hearth_fake/job";

/// What the fake backend saw, for tests to check.
#[derive(Clone, Debug, Default)]
pub struct Seen {
    /// Every job spec started, in order.
    pub specs: Vec<JobSpec>,
    /// Every exec's working directory and argv, as the engine gave them (job paths).
    pub execs: Vec<(JobPath, Vec<String>)>,
    /// Files written through the runtime (job paths).
    pub written: Vec<JobPath>,
    /// Folders exposed to jobs.
    pub exposed: Vec<HostPath>,
}

/// The fake backend; see the crate documentation.
#[derive(Clone)]
pub struct FakeBackend {
    host: HostBackend,
    seen: Arc<Mutex<Seen>>,
    /// Makes `finish` fail (after cleaning up), to test that the engine reports it.
    fail_finish: bool,
    /// URLs a job container's network does not reach (see [`FakeBackend::with_unreachable`]).
    unreachable: Vec<String>,
}

impl FakeBackend {
    /// Jobs' real folders go under `root`.
    pub fn new(root: PathBuf) -> Self {
        FakeBackend {
            host: HostBackend::new(root),
            seen: Arc::default(),
            fail_finish: false,
            unreachable: Vec::new(),
        }
    }

    /// A job container's network does not reach `urls`: a job given one of them to reach
    /// (`JobSpec::reach`) is told so as a container backend tells it: an optional one is one
    /// warning line of the set-up log, naming it and the fix, and the job starts; another fails
    /// the start (`BackendError::Unreachable`). A job without a container is not checked.
    pub fn with_unreachable(mut self, urls: &[&str]) -> Self {
        self.unreachable = urls.iter().map(|u| (*u).to_owned()).collect();
        self
    }

    /// Steps start from `env` (by default, this process's environment).
    pub fn with_base_env(mut self, env: Vec<(String, String)>) -> Self {
        self.host = self.host.with_base_env(env);
        self
    }

    /// `finish` cleans up, then reports an error.
    pub fn failing_finish(mut self) -> Self {
        self.fail_finish = true;
        self
    }

    /// What the backend saw so far.
    pub fn seen(&self) -> Seen {
        lock(&self.seen).clone()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The paths every fake job sees.
fn fake_paths() -> JobPaths {
    let root = JobPath::new(JOB_ROOT);
    JobPaths {
        workspace: root.join("workspace"),
        temp: root.join("temp"),
        tool_cache: root.join("tool-cache"),
    }
}

impl Backend for FakeBackend {
    fn paths_ahead(&self) -> Option<JobPaths> {
        Some(fake_paths())
    }

    fn start<'a>(
        &'a self,
        mut spec: JobSpec,
        log: &'a mut dyn SetupLog,
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<Box<dyn JobRuntime>, BackendError>> {
        Box::pin(async move {
            lock(&self.seen).specs.push(spec.clone());
            // Its job paths are translated to one job folder; a workspace elsewhere (the
            // repository itself) is not something it fakes.
            if spec.bind_repository {
                return Err(BackendError::Unsupported(
                    "the fake backend does not bind the repository as the workspace".to_owned(),
                ));
            }
            let mut containers = JobContainers::default();
            if let Some(container) = spec.container.take() {
                log.line(
                    SetupLevel::Info,
                    &format!(
                        "fake: would pull {} and start the job container",
                        container.image
                    ),
                );
                if let Some(credentials) = &container.credentials {
                    // As a registry's error might: the engine must mask it.
                    use hearth_backend::ExposeSecret as _;
                    log.line(
                        SetupLevel::Info,
                        &format!(
                            "fake: logging in as {} with {}",
                            credentials.username,
                            credentials.password.expose_secret()
                        ),
                    );
                }
                containers.container = Some(ContainerInfo {
                    id: format!("fake-{}", spec.name),
                    network: "fake-network".to_owned(),
                    ports: Vec::new(),
                });
                for reach in spec
                    .reach
                    .iter()
                    .filter(|r| self.unreachable.contains(&r.url))
                {
                    let message = format!(
                        "{} at {} cannot be reached from the job container on the network \
                         fake-network: fake: unreachable; {}",
                        reach.what, reach.url, reach.fix
                    );
                    if !reach.optional {
                        return Err(BackendError::Unreachable(message));
                    }
                    log.line(
                        SetupLevel::Warning,
                        &format!("fake: {message}. The job runs without it."),
                    );
                }
            }
            for (id, service) in std::mem::take(&mut spec.services) {
                log.line(
                    SetupLevel::Info,
                    &format!("fake: would start service {id} from {}", service.image),
                );
                let ports = service
                    .ports
                    .iter()
                    .map(|p| {
                        let inside = p.rsplit(':').next().unwrap_or(p).to_owned();
                        (inside.clone(), inside)
                    })
                    .collect();
                containers.services.push((
                    id.clone(),
                    ContainerInfo {
                        id: format!("fake-{id}"),
                        network: "fake-network".to_owned(),
                        ports,
                    },
                ));
            }
            let job = self.host.start_job(spec, cancel).await?;
            let host_root = job.job_dir().to_string_lossy().into_owned();
            Ok(Box::new(FakeJob {
                paths: fake_paths(),
                tool_cache: job.tool_cache_dir().to_string_lossy().into_owned(),
                host_root,
                job,
                containers,
                seen: self.seen.clone(),
                exposed: hearth_host::Copies::default(),
                fail_finish: self.fail_finish,
            }) as Box<dyn JobRuntime>)
        })
    }
}

/// A job of the fake backend.
struct FakeJob {
    paths: JobPaths,
    job: HostJob,
    /// The job's folder on the host (holding `workspace/` and `temp/`).
    host_root: String,
    tool_cache: String,
    containers: JobContainers,
    seen: Arc<Mutex<Seen>>,
    /// Host folders copied into the job.
    exposed: hearth_host::Copies,
    fail_finish: bool,
}

impl FakeJob {
    /// The host path of a job path, if it is one of the job's.
    fn to_host(&self, path: &str) -> Option<String> {
        let tool_cache = self.paths.tool_cache.as_str();
        if let Some(rest) = path.strip_prefix(tool_cache) {
            if rest.is_empty() || rest.starts_with('/') {
                return Some(format!("{}{rest}", self.tool_cache));
            }
        }
        let rest = path.strip_prefix(JOB_ROOT)?;
        (rest.is_empty() || rest.starts_with('/')).then(|| format!("{}{rest}", self.host_root))
    }

    /// Job paths in `text` as host paths (for what reaches the processes).
    fn text_to_host(&self, text: &str) -> String {
        text.replace(self.paths.tool_cache.as_str(), &self.tool_cache)
            .replace(JOB_ROOT, &self.host_root)
    }

    /// Host paths in `text` as job paths (for what the engine gets back).
    fn text_to_job(&self, text: &str) -> String {
        text.replace(&self.host_root, JOB_ROOT)
            .replace(&self.tool_cache, self.paths.tool_cache.as_str())
    }

    fn host_job_path(&self, path: &JobPath) -> Result<JobPath, BackendError> {
        self.to_host(path.as_str())
            .map(JobPath::new)
            .ok_or_else(|| BackendError::NotInJob(path.to_string()))
    }

    /// Refuses a host path of the job's folder where a job path belongs.
    fn check_no_host_path(&self, what: &str, value: &str) -> Result<(), BackendError> {
        if value.contains(&self.host_root) {
            return Err(BackendError::NotInJob(format!(
                "{what} `{value}` holds a host path; the job sees its folders under {JOB_ROOT}"
            )));
        }
        Ok(())
    }
}

impl JobRuntime for FakeJob {
    fn paths(&self) -> &JobPaths {
        &self.paths
    }

    fn base_env(&self) -> &[(String, String)] {
        self.job.base_env()
    }

    fn containers(&self) -> JobContainers {
        self.containers.clone()
    }

    fn exec<'a>(
        &'a self,
        spec: ExecSpec,
        sink: &'a mut dyn OutputSink,
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<ExecEnd, BackendError>> {
        Box::pin(async move {
            lock(&self.seen)
                .execs
                .push((spec.working_dir.clone(), spec.argv.clone()));
            self.check_no_host_path("the working directory", spec.working_dir.as_str())?;
            for arg in &spec.argv {
                self.check_no_host_path("an argument", arg)?;
            }
            for (name, value) in &spec.env {
                self.check_no_host_path(&format!("the variable {name}"), value)?;
            }
            let working_dir = self.host_job_path(&spec.working_dir)?;
            let host_spec = ExecSpec {
                argv: spec.argv.iter().map(|a| self.text_to_host(a)).collect(),
                env: spec
                    .env
                    .iter()
                    .map(|(k, v)| (k.clone(), self.text_to_host(v)))
                    .collect(),
                working_dir,
                timeout: spec.timeout,
            };
            let mut translated = Translating {
                job: self,
                sink,
                pending: [Vec::new(), Vec::new()],
            };
            let ended = self.job.exec(host_spec, &mut translated, cancel).await;
            translated.flush();
            ended
        })
    }

    fn has_program(&self, program: &str, path: &str) -> Option<bool> {
        self.job.has_program(program, &self.text_to_host(path))
    }

    fn write_file<'a>(
        &'a self,
        path: &'a JobPath,
        contents: &'a [u8],
        replaces: Option<&'a JobPath>,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async move {
            lock(&self.seen).written.push(path.clone());
            let host = self.host_job_path(path)?;
            let replaces = replaces.map(|p| self.host_job_path(p)).transpose()?;
            let contents = self
                .text_to_host(&String::from_utf8_lossy(contents))
                .into_bytes();
            self.job
                .write_file(&host, &contents, replaces.as_ref())
                .await
        })
    }

    fn read_file<'a>(
        &'a self,
        path: &'a JobPath,
        limit: u64,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, BackendError>> {
        Box::pin(async move {
            let host = self.host_job_path(path)?;
            let read = self
                .job
                .read_file(&host, limit)
                .await
                .map_err(|e| match e {
                    BackendError::FileTooLarge { limit, .. } => BackendError::FileTooLarge {
                        path: path.clone(),
                        limit,
                    },
                    other => other,
                })?;
            Ok(read.map(|bytes| match String::from_utf8(bytes) {
                Ok(text) => self.text_to_job(&text).into_bytes(),
                Err(e) => e.into_bytes(),
            }))
        })
    }

    fn empty_files<'a>(&'a self, paths: &'a [JobPath]) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async move {
            let host: Vec<JobPath> = paths
                .iter()
                .map(|p| self.host_job_path(p))
                .collect::<Result<_, _>>()?;
            self.job.empty_files(&host).await
        })
    }

    fn host_view(&self, path: &JobPath) -> Option<HostPath> {
        self.to_host(path.as_str()).map(HostPath::new)
    }

    /// Copies the folder into the job (as `docker cp` would); the job sees the copy.
    fn expose<'a>(&'a self, folder: &'a HostPath) -> BoxFuture<'a, Result<JobPath, BackendError>> {
        Box::pin(async move {
            lock(&self.seen).exposed.push(folder.clone());
            let name = self.exposed.copy(self.job.job_dir(), folder).await?;
            Ok(JobPath::new(JOB_ROOT).join(&name))
        })
    }

    fn finish(self: Box<Self>) -> BoxFuture<'static, Result<(), BackendError>> {
        Box::pin(async move {
            let fail = self.fail_finish;
            let host_root = self.host_root.clone();
            self.job.finish_job().await?;
            if fail {
                return Err(BackendError::Cleanup(format!(
                    "fake: pretending {host_root} could not be removed"
                )));
            }
            Ok(())
        })
    }
}

/// The job's output, line by line, with host paths turned back into job paths.
struct Translating<'a> {
    job: &'a FakeJob,
    sink: &'a mut dyn OutputSink,
    /// Bytes of an unfinished line, per stream (a path may be split between chunks).
    pending: [Vec<u8>; 2],
}

impl Translating<'_> {
    fn send(&mut self, stream: Stream, bytes: &[u8]) {
        let text = self.job.text_to_job(&String::from_utf8_lossy(bytes));
        self.sink.output(stream, text.as_bytes());
    }

    fn flush(&mut self) {
        for (i, stream) in [(0, Stream::Stdout), (1, Stream::Stderr)] {
            let rest = std::mem::take(&mut self.pending[i]);
            if !rest.is_empty() {
                self.send(stream, &rest);
            }
        }
    }
}

impl OutputSink for Translating<'_> {
    fn output(&mut self, stream: Stream, chunk: &[u8]) {
        let i = usize::from(stream == Stream::Stderr);
        self.pending[i].extend_from_slice(chunk);
        if let Some(end) = self.pending[i].iter().rposition(|&b| b == b'\n') {
            let rest = self.pending[i].split_off(end + 1);
            let lines = std::mem::replace(&mut self.pending[i], rest);
            self.send(stream, &lines);
        }
    }
}
