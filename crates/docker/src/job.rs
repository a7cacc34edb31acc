//! A job in its container: steps through `docker exec`, files through the bind-mounted job
//! folder (or, in copy mode, through the Engine API's archive endpoints: see `copy`), and
//! cleanup of the container, the network, the volume and the folder.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
use bollard::Docker;
use futures_util::StreamExt;
use hearth_backend::{
    BackendError, BoxFuture, CancellationToken, ContainerInfo, ExecEnd, ExecSpec, FileDigest,
    HostPath, JobContainers, JobPath, JobPaths, JobRuntime, NodeCommand, OutputSink, Stream,
};
use hearth_host::HostJob;
use tokio::time::{sleep, sleep_until, Instant};

use crate::cleanup::{self, Made};
use crate::{job_paths, JOB_ROOT, TOOL_CACHE};

/// How often a running step is asked whether its main process ended (its output may stay
/// open: a background process holding it).
const POLL: Duration = Duration::from_millis(100);
/// How long output is still waited for after the main process ended, and after each piece
/// that comes then: Docker may hand the last output over well after the process ended on a
/// loaded machine (100 ms lost a step's only line under load), while a background process
/// holding the output open must not hold the step for long ...
const DRAIN: Duration = Duration::from_millis(500);
/// ... so the wait ends this long after the main process ended, whatever still comes.
const DRAIN_MAX: Duration = Duration::from_secs(3);
/// Between interrupting a stopped step's process group and killing it.
const INTERRUPT_GRACE: Duration = Duration::from_secs(1);

/// The names of the jobs a backend runs now, shared by its clones and its jobs.
#[derive(Clone, Default)]
pub(crate) struct Live(std::sync::Arc<Mutex<std::collections::HashSet<String>>>);

impl Live {
    pub(crate) fn add(&self, name: &str) {
        lock(&self.0).insert(name.to_owned());
    }

    pub(crate) fn remove(&self, name: &str) {
        lock(&self.0).remove(name);
    }

    /// Whether `name` is a live job's, or one of its services' (`<job>-<service>`).
    pub(crate) fn holds_prefix(&self, name: &str) -> bool {
        lock(&self.0).iter().any(|job| {
            name == job
                || name
                    .strip_prefix(job.as_str())
                    .is_some_and(|r| r.starts_with('-'))
        })
    }
}

/// A service of the job.
pub(crate) struct Service {
    pub id: String,
    /// The container's id.
    pub container: String,
    /// As the `job` context shows it, once the service is ready.
    pub info: ContainerInfo,
}

/// A job running in a container; see the crate documentation.
pub struct DockerJob {
    docker: Docker,
    /// The job's folder: mounted at `/__w`, removed (by the host job) after the container.
    host_job: Option<HostJob>,
    job_dir: PathBuf,
    /// The repository mounted over the workspace (`JobSpec::bind_repository`), if bound: the
    /// workspace's files are there, and nothing removes it.
    pub(crate) workspace_source: Option<PathBuf>,
    pub(crate) tool_cache: PathBuf,
    /// The container's and the network's name.
    pub(crate) name: String,
    /// The network this backend made for the job (removed with it), if it made one.
    pub(crate) network: Option<String>,
    /// The network the job's containers are on (its own, or `container.network`).
    pub(crate) network_name: String,
    pub(crate) container: Option<String>,
    pub(crate) base_env: Vec<(String, String)>,
    /// Whether the image has `bash` (a step's default shell then), found out at start.
    pub(crate) has_bash: Option<bool>,
    /// The node the runner lends the job (mounted), if it lends one.
    pub(crate) lent_node: Option<crate::node::NodeBundle>,
    /// Why the runner lends the job no node, when it lends none.
    pub(crate) no_lent_node: String,
    /// The major version of the image's own `node` (`None`: it has none), asked once, when
    /// the first JavaScript action runs.
    image_node: tokio::sync::OnceCell<Option<u32>>,
    pub(crate) services: Vec<Service>,
    /// Forwarders making the runner's loopback addresses reachable (see `reach`).
    pub(crate) forwarders: Vec<crate::reach::Forwarder>,
    paths: JobPaths,
    /// Numbers the steps' pid files.
    execs: AtomicUsize,
    /// Host folders copied into the job.
    exposed: hearth_host::Copies,
    /// Copy mode: the job's folder is the volume `volume` inside the daemon, not the host
    /// folder, which then holds only the job's record for reaping.
    pub(crate) copy: bool,
    /// The job's own volume (copy mode), removed after its containers.
    pub(crate) volume: Option<String>,
    /// Copy mode: the repository to upload into the workspace at start.
    pub(crate) upload_repository: Option<HostPath>,
    /// Copy mode: host folders uploaded into the job, each once, by their place under `/__w`.
    uploaded: tokio::sync::Mutex<std::collections::BTreeMap<PathBuf, String>>,
    /// `/etc/hosts` entries that make the forge's name resolve in the job's containers.
    pub(crate) extra_hosts: Vec<String>,
    /// Runs steps in containers of their own (Docker actions), on the job's network.
    pub(crate) steps: Option<crate::step_container::StepContainers>,
    /// Set by `finish`, so that `Drop` has nothing left to do.
    finished: bool,
    /// Where the job is known to be live (until it is removed).
    live: Live,
}

impl DockerJob {
    pub(crate) fn new(docker: Docker, host_job: HostJob, name: String, live: Live) -> Self {
        live.add(&name);
        DockerJob {
            docker,
            job_dir: host_job.job_dir().to_path_buf(),
            workspace_source: None,
            tool_cache: host_job.tool_cache_dir().to_path_buf(),
            host_job: Some(host_job),
            name,
            network: None,
            network_name: String::new(),
            container: None,
            base_env: Vec::new(),
            has_bash: None,
            lent_node: None,
            no_lent_node: String::new(),
            image_node: tokio::sync::OnceCell::new(),
            services: Vec::new(),
            forwarders: Vec::new(),
            paths: job_paths(),
            execs: AtomicUsize::new(0),
            exposed: hearth_host::Copies::default(),
            copy: false,
            volume: None,
            upload_repository: None,
            uploaded: tokio::sync::Mutex::default(),
            extra_hosts: Vec::new(),
            steps: None,
            finished: false,
            live,
        }
    }

    /// The container's id.
    pub fn container_id(&self) -> Option<&str> {
        self.container.as_deref()
    }

    /// The job's folder on this machine (mounted at `/__w`).
    pub fn job_dir(&self) -> &Path {
        &self.job_dir
    }

    /// Whether the job's image has `bash`, asked once at start.
    pub(crate) async fn probe_bash(&mut self) {
        let spec = ExecSpec {
            argv: vec![
                "sh".into(),
                "-c".into(),
                "command -v bash >/dev/null 2>&1".into(),
            ],
            env: self.base_env.clone(),
            working_dir: self.paths.workspace.clone(),
            timeout: Some(Duration::from_secs(30)),
        };
        let mut ignore = |_: Stream, _: &[u8]| {};
        let ended = self.run(spec, &mut ignore, &CancellationToken::new()).await;
        self.has_bash = match ended {
            Ok(ExecEnd::Exited(0)) => Some(true),
            Ok(ExecEnd::Exited(_)) => Some(false),
            _ => None,
        };
    }

    /// The major version of the image's `node`, if it has one on the job's `PATH`.
    async fn probe_node(&self) -> Option<u32> {
        let spec = ExecSpec {
            argv: vec!["node".into(), "--version".into()],
            env: self.base_env.clone(),
            working_dir: self.paths.workspace.clone(),
            timeout: Some(Duration::from_secs(30)),
        };
        let mut said = Vec::new();
        let mut keep = |stream: Stream, bytes: &[u8]| {
            if stream == Stream::Stdout && said.len() < 256 {
                said.extend_from_slice(bytes);
            }
        };
        let ended = self.run(spec, &mut keep, &CancellationToken::new()).await;
        match ended {
            Ok(ExecEnd::Exited(0)) => crate::node::major_of(&String::from_utf8_lossy(&said)),
            _ => None,
        }
    }

    /// Lets whatever user the job's image or `--user` runs as write the job's folder, its
    /// workspace and temp folder (a step's pid file, files it creates): they are made by the
    /// runner's user, mounted as they are. A bound repository is the user's, and left alone.
    pub(crate) fn open_to_any_user(&self) -> std::io::Result<()> {
        use std::os::unix::fs::PermissionsExt as _;
        let open =
            |path: &Path| std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o777));
        open(&self.job_dir)?;
        open(&self.job_dir.join("temp"))?;
        if self.workspace_source.is_none() {
            open(&self.job_dir.join("workspace"))?;
        }
        Ok(())
    }

    /// The bind mounting a bound repository over the workspace, if any.
    pub(crate) fn workspace_bind(&self) -> Option<String> {
        let source = self.workspace_source.as_ref()?;
        Some(format!("{}:{}", source.display(), self.paths.workspace))
    }

    /// Where a job path is on this machine: under the bound repository (the workspace), the
    /// job folder (`/__w`) or the tool cache.
    fn on_host(&self, path: &str) -> Option<PathBuf> {
        if self.copy {
            return None;
        }
        let under = |root: &str| {
            let rest = path.strip_prefix(root)?;
            (rest.is_empty() || rest.starts_with('/')).then(|| rest.trim_start_matches('/'))
        };
        if let Some(source) = &self.workspace_source {
            if let Some(rest) = under(self.paths.workspace.as_str()) {
                return Some(source.join(rest));
            }
        }
        if let Some(rest) = under(JOB_ROOT) {
            return Some(self.job_dir.join(rest));
        }
        under(TOOL_CACHE).map(|rest| self.tool_cache.join(rest))
    }

    fn host_job_path(&self, path: &JobPath) -> Result<JobPath, BackendError> {
        self.on_host(path.as_str())
            .map(|p| JobPath::new(p.to_string_lossy().into_owned()))
            .ok_or_else(|| BackendError::NotInJob(path.to_string()))
    }

    fn container(&self) -> Result<&str, BackendError> {
        self.container
            .as_deref()
            .ok_or_else(|| BackendError::Unsupported("the job container is gone".to_owned()))
    }

    /// Runs `argv` in the container without waiting for it (a signal to a step).
    async fn exec_detached(&self, argv: Vec<String>) {
        let Ok(container) = self.container() else {
            return;
        };
        let options = CreateExecOptions {
            cmd: Some(argv),
            ..Default::default()
        };
        if let Ok(created) = self.docker.create_exec(container, options).await {
            let start = StartExecOptions {
                detach: true,
                ..Default::default()
            };
            let _ = self.docker.start_exec(&created.id, Some(start)).await;
        }
    }

    /// Signals the process group of the step whose pid is in `pid_file` (a job path).
    async fn signal_step(&self, pid_file: &JobPath, signal: &str) {
        let Some(on_host) = self.on_host(pid_file.as_str()) else {
            // Copy mode: the pid file is only in the container, read there.
            self.exec_detached(vec![
                "sh".into(),
                "-c".into(),
                "pid=$(cat \"$1\" 2>/dev/null) || exit 0; \
                 kill -s \"$0\" -- \"-$pid\" 2>/dev/null || kill -s \"$0\" \"-$pid\""
                    .into(),
                signal.into(),
                pid_file.to_string(),
            ])
            .await;
            return;
        };
        let Ok(text) = tokio::fs::read_to_string(on_host).await else {
            return;
        };
        let Ok(pid) = text.trim().parse::<u32>() else {
            return;
        };
        // POSIX's `kill -s SIG -- -PGID`, else busybox's form, which has no `--`.
        self.exec_detached(vec![
            "sh".into(),
            "-c".into(),
            "kill -s \"$0\" -- \"-$1\" 2>/dev/null || kill -s \"$0\" \"-$1\"".into(),
            signal.into(),
            pid.to_string(),
        ])
        .await;
    }

    async fn run(
        &self,
        spec: ExecSpec,
        sink: &mut dyn OutputSink,
        cancel: &CancellationToken,
    ) -> Result<ExecEnd, BackendError> {
        let (program, _) = spec.argv.split_first().ok_or(BackendError::EmptyCommand)?;
        let program = program.clone();
        if cancel.is_cancelled() {
            return Ok(ExecEnd::Cancelled);
        }
        match self.on_host(spec.working_dir.as_str()) {
            Some(dir) if !dir.is_dir() => {
                return Err(BackendError::WorkingDirectory(spec.working_dir.clone()))
            }
            _ => {}
        }
        let container = self.container()?;
        // The step's shell records its pid, so that its process group (each exec is a session
        // of its own) can be signalled on timeout or cancel; then it becomes the step.
        let n = self.execs.fetch_add(1, Ordering::Relaxed);
        // Copy mode keeps them out of the temp folder: removing one would cost an exec.
        let pid_file = if self.copy {
            JobPath::new(crate::copy::PID_DIR).join(&format!("exec-{n}.pid"))
        } else {
            self.paths.temp.join(&format!(".hearth-exec-{n}.pid"))
        };
        let pid_file_on_host = self.on_host(pid_file.as_str());
        let remove_pid_file = || async {
            if let Some(on_host) = &pid_file_on_host {
                let _ = tokio::fs::remove_file(on_host).await;
            }
        };
        let mut argv = vec![
            "sh".to_owned(),
            "-c".to_owned(),
            "echo $$ > \"$0\" && exec \"$@\"".to_owned(),
            pid_file.to_string(),
        ];
        argv.extend(spec.argv.iter().cloned());
        let lost = |e: bollard::errors::Error| BackendError::Wait {
            program: program.clone(),
            source: std::io::Error::other(docker_lost(e)),
        };
        let options = CreateExecOptions {
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            cmd: Some(argv),
            env: Some(spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
            working_dir: Some(spec.working_dir.to_string()),
            ..Default::default()
        };
        let created = self
            .docker
            .create_exec(container, options)
            .await
            .map_err(|e| BackendError::Spawn {
                program: program.clone(),
                source: std::io::Error::other(e.to_string()),
            })?;
        let StartExecResults::Attached { mut output, .. } = self
            .docker
            .start_exec(&created.id, None)
            .await
            .map_err(lost)?
        else {
            return Err(BackendError::Spawn {
                program,
                source: std::io::Error::other("the exec did not attach"),
            });
        };

        let mut runtime_said = RuntimeSaid::default();
        let deadline = spec.timeout.map(|t| Instant::now() + t);
        let mut poll_at = Instant::now() + POLL;
        let mut drain_until: Option<Instant> = None;
        let mut drain_end = None;
        // Output that comes while draining holds the drain open a little longer.
        let more_output = |drain_until: &mut Option<Instant>, drain_end: Option<Instant>| {
            if let (Some(until), Some(end)) = (drain_until.as_mut(), drain_end) {
                *until = (Instant::now() + DRAIN).min(end);
            }
        };
        let mut stopping: Option<(ExecEnd, Instant, bool)> = None;
        loop {
            let wake = [
                Some(poll_at),
                drain_until,
                stopping.map(|(_, at, _)| at),
                deadline,
            ]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(poll_at);
            tokio::select! {
                chunk = output.next() => match chunk {
                    Some(Ok(bollard::container::LogOutput::StdOut { message }))
                    | Some(Ok(bollard::container::LogOutput::Console { message })) => {
                        runtime_said.pass(sink, Stream::Stdout, message);
                        more_output(&mut drain_until, drain_end);
                    }
                    Some(Ok(bollard::container::LogOutput::StdErr { message })) => {
                        runtime_said.pass(sink, Stream::Stderr, message);
                        more_output(&mut drain_until, drain_end);
                    }
                    Some(Ok(bollard::container::LogOutput::StdIn { .. })) => {}
                    Some(Err(e)) => return Err(lost(e)),
                    None => break,
                },
                () = cancel.cancelled(), if stopping.is_none() => {
                    self.signal_step(&pid_file, "INT").await;
                    stopping = Some((ExecEnd::Cancelled, Instant::now() + INTERRUPT_GRACE, false));
                }
                () = sleep_until(wake) => {
                    let now = Instant::now();
                    if drain_until.is_some_and(|until| now >= until) {
                        break;
                    }
                    if let Some((end, at, killed)) = stopping {
                        if now >= at {
                            if killed {
                                remove_pid_file().await;
                                return Ok(end);
                            }
                            self.signal_step(&pid_file, "KILL").await;
                            stopping = Some((end, now + INTERRUPT_GRACE, true));
                        }
                    } else if deadline.is_some_and(|d| now >= d) {
                        self.signal_step(&pid_file, "INT").await;
                        stopping = Some((ExecEnd::TimedOut, now + INTERRUPT_GRACE, false));
                    }
                    if now >= poll_at && drain_until.is_none() {
                        poll_at = now + POLL;
                        let running = self.docker.inspect_exec(&created.id).await.map_err(lost)?.running;
                        if running == Some(false) {
                            drain_until = Some(now + DRAIN);
                            drain_end = Some(now + DRAIN_MAX);
                        }
                    }
                }
            }
        }
        if let Some((end, _, killed)) = stopping {
            // The main process ended on the interrupt, but what it left in the background may
            // have ignored it (a shell's `&` jobs ignore SIGINT): the whole group is killed.
            if !killed {
                self.signal_step(&pid_file, "KILL").await;
            }
            remove_pid_file().await;
            return Ok(end);
        }
        remove_pid_file().await;
        // The stream can end a moment before the exec is marked done.
        for _ in 0..50 {
            let inspected = self.docker.inspect_exec(&created.id).await.map_err(lost)?;
            if inspected.running != Some(true) {
                let code = inspected.exit_code.unwrap_or(-1);
                if code == 126 && runtime_said.missing_working_dir() {
                    return Err(BackendError::WorkingDirectory(spec.working_dir));
                }
                runtime_said.flush(sink);
                return Ok(ExecEnd::Exited(i32::try_from(code).unwrap_or(-1)));
            }
            sleep(Duration::from_millis(10)).await;
        }
        Err(lost(bollard::errors::Error::IOError {
            err: std::io::Error::other("the step's process did not end"),
        }))
    }

    /// Copy mode's `empty_files`: one upload of empty files per root (`/__w`, `/__t`), which
    /// costs one request where an exec would start a process.
    async fn empty_in_copy(&self, paths: &[JobPath]) -> Result<(), BackendError> {
        let mut by_root: Vec<(&'static str, Vec<String>)> = Vec::new();
        for path in paths {
            let (root, relative) = in_copy(path)?;
            match by_root.iter_mut().find(|(r, _)| *r == root) {
                Some((_, files)) => files.push(relative),
                None => by_root.push((root, vec![relative])),
            }
        }
        let container = self.container()?;
        for (root, files) in by_root {
            let entries: Vec<crate::copy::Entry<'_>> = files
                .iter()
                .map(|f| crate::copy::Entry::File(f, &[]))
                .collect();
            let failed = |e: String| {
                crate::copy::file_error("empty", &JobPath::new(root).join(&files[0]), e)
            };
            let tar = crate::copy::pack(&entries).map_err(|e| failed(e.to_string()))?;
            crate::copy::upload(&self.docker, container, root, tar)
                .await
                .map_err(|e| failed(e.to_string()))?;
        }
        Ok(())
    }

    /// Copy mode's `expose`: the folder uploaded under `/__w/_actions/N`, once per folder.
    async fn upload_exposed(&self, folder: &HostPath) -> Result<JobPath, BackendError> {
        // Held across the upload, so that two steps exposing one folder upload it once.
        let mut uploaded = self.uploaded.lock().await;
        if let Some(name) = uploaded.get(folder.as_path()) {
            return Ok(JobPath::new(JOB_ROOT).join(name));
        }
        let n = uploaded.len().to_string();
        let name = format!("_actions/{n}");
        crate::copy::upload_folder(
            &self.docker,
            self.container()?,
            &format!("{JOB_ROOT}/_actions"),
            folder.as_path(),
            &n,
        )
        .await
        .map_err(|e| BackendError::Prepare {
            what: "action copy in the container",
            path: folder.as_path().to_path_buf(),
            source: std::io::Error::other(e),
        })?;
        uploaded.insert(folder.as_path().to_path_buf(), name.clone());
        Ok(JobPath::new(JOB_ROOT).join(&name))
    }

    /// What the job made, taken out of it (so that it is removed once).
    fn take_made(&mut self) -> Made {
        let mut containers: Vec<(String, String)> = std::mem::take(&mut self.services)
            .into_iter()
            .map(|s| (format!("the service `{}`", s.id), s.container))
            .collect();
        if let Some(id) = self.container.take() {
            containers.push((format!("the container {}", self.name), id));
        }
        // Step containers whose runs were dropped before they removed them.
        if let Some(steps) = &self.steps {
            for id in steps.left() {
                containers.push((format!("the step container {id}"), id));
            }
        }
        Made {
            containers,
            network: self.network.take(),
            volume: self.volume.take(),
        }
    }

    /// Removes the containers and the network (not the folder: see `finish`); every failure
    /// is reported.
    pub(crate) async fn remove_all(&mut self) -> Result<(), BackendError> {
        self.forwarders.clear();
        let made = self.take_made();
        let (problems, ()) = cleanup::remove(&self.docker, made, async {}).await;
        self.live.remove(&self.name);
        cleaned(problems)
    }
}

/// The container runtime's own word when an exec could not start, held back from the step's
/// output: Docker sends it as the exec's first output with exit code 126, and one saying the
/// working directory is missing (which copy mode cannot check on this machine first) is the
/// step's `WorkingDirectory` error, not output.
#[derive(Default)]
struct RuntimeSaid {
    passed_any: bool,
    held: Option<(Stream, bytes::Bytes)>,
}

impl RuntimeSaid {
    const PREFIX: &'static [u8] = b"OCI runtime exec failed";

    fn pass(&mut self, sink: &mut dyn OutputSink, stream: Stream, chunk: bytes::Bytes) {
        if !self.passed_any && self.held.is_none() && chunk.starts_with(Self::PREFIX) {
            self.held = Some((stream, chunk));
            return;
        }
        self.flush(sink);
        self.passed_any = true;
        sink.output(stream, &chunk);
    }

    fn flush(&mut self, sink: &mut dyn OutputSink) {
        if let Some((stream, chunk)) = self.held.take() {
            self.passed_any = true;
            sink.output(stream, &chunk);
        }
    }

    fn missing_working_dir(&self) -> bool {
        self.held.as_ref().is_some_and(|(_, chunk)| {
            let text = String::from_utf8_lossy(chunk);
            text.contains("chdir to cwd") && text.contains("no such file or directory")
        })
    }
}

/// Problems met while cleaning up, as one error.
/// What an error of a running step's exec says: that the Docker daemon went away (stopped
/// or restarted, taking the job's containers with it), when that is what happened.
pub(crate) fn docker_lost(error: bollard::errors::Error) -> String {
    match error {
        bollard::errors::Error::HyperLegacyError { .. }
        | bollard::errors::Error::IOError { .. } => {
            format!(
                "the Docker daemon stopped answering while it ran (was it stopped or \
                 restarted?): {error}"
            )
        }
        other => other.to_string(),
    }
}

fn cleaned(problems: Vec<String>) -> Result<(), BackendError> {
    if problems.is_empty() {
        Ok(())
    } else {
        Err(BackendError::Cleanup(problems.join("; ")))
    }
}

impl JobRuntime for DockerJob {
    fn paths(&self) -> &JobPaths {
        &self.paths
    }

    fn base_env(&self) -> &[(String, String)] {
        &self.base_env
    }

    /// Only `bash` is known (probed at start): what picks a step's default shell.
    fn has_program(&self, program: &str, _path: &str) -> Option<bool> {
        (program == "bash").then_some(self.has_bash).flatten()
    }

    fn node(&self, major: u32) -> BoxFuture<'_, Result<NodeCommand, BackendError>> {
        Box::pin(async move {
            let image = *self.image_node.get_or_init(|| self.probe_node()).await;
            let lent = self.lent_node.as_ref();
            let chosen = crate::node::choose(major, image, lent.and_then(|b| b.major()));
            let (choice, notice) = chosen.ok_or_else(|| {
                BackendError::Unsupported(crate::node::no_node(&self.no_lent_node))
            })?;
            let argv = match (choice, lent) {
                (crate::node::Choice::Lent, Some(bundle)) if self.copy => {
                    // A daemon elsewhere sees none of this machine's folders: the bundle is
                    // copied into the job, once, when an action first needs it.
                    let folder = HostPath::new(&bundle.folder);
                    let copied = self.upload_exposed(&folder).await?;
                    bundle.argv_at(copied.as_str())
                }
                (crate::node::Choice::Lent, Some(bundle)) => bundle.argv(),
                _ => NodeCommand::on_path().argv,
            };
            Ok(NodeCommand { argv, notice })
        })
    }

    fn address(&self, url: &str) -> String {
        self.forwarders
            .iter()
            .find(|f| f.from == url)
            .map_or_else(|| url.to_owned(), |f| f.to.clone())
    }

    fn containers(&self) -> JobContainers {
        JobContainers {
            container: self.container.as_ref().map(|id| ContainerInfo {
                id: id.clone(),
                network: self.network_name.clone(),
                ports: Vec::new(),
            }),
            services: self
                .services
                .iter()
                .map(|s| (s.id.clone(), s.info.clone()))
                .collect(),
        }
    }

    fn exec<'a>(
        &'a self,
        spec: ExecSpec,
        sink: &'a mut dyn OutputSink,
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<ExecEnd, BackendError>> {
        Box::pin(self.run(spec, sink, cancel))
    }

    fn run_container<'a>(
        &'a self,
        run: hearth_backend::ContainerRun,
        sink: &'a mut dyn OutputSink,
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<ExecEnd, BackendError>> {
        Box::pin(async move {
            let steps = self
                .steps
                .as_ref()
                .ok_or_else(|| BackendError::Unsupported("the job container is gone".to_owned()))?;
            if self.copy {
                let volume = self.volume.as_deref().ok_or_else(|| {
                    BackendError::Unsupported("the job's volume is gone".to_owned())
                })?;
                let folders = crate::step_container::InVolume {
                    volume,
                    container: self.container()?,
                    scratch: &self.job_dir,
                };
                let folders = crate::step_container::JobFolders::InVolume(folders);
                return steps.run(run, folders, sink, cancel).await;
            }
            let on_host = |path: &JobPath| self.on_host(path.as_str());
            let folders = crate::step_container::JobFolders::OnHost(&on_host);
            steps.run(run, folders, sink, cancel).await
        })
    }

    fn write_file<'a>(
        &'a self,
        path: &'a JobPath,
        contents: &'a [u8],
        replaces: Option<&'a JobPath>,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async move {
            if self.copy {
                // Nothing to rename in place: the upload replaces the file whole.
                let (root, relative) = in_copy(path)?;
                let tar = crate::copy::pack(&[crate::copy::Entry::File(&relative, contents)])
                    .map_err(|e| crate::copy::file_error("write", path, e.to_string()))?;
                return crate::copy::upload(&self.docker, self.container()?, root, tar)
                    .await
                    .map_err(|e| crate::copy::file_error("write", path, e.to_string()));
            }
            let host = self.host_job_path(path)?;
            let replaces = replaces.map(|p| self.host_job_path(p)).transpose()?;
            hearth_host::files::write(&host, contents, replaces.as_ref())
                .map_err(|e| relabel(e, path))?;
            writable_by_any_user(&host).map_err(|e| relabel(e, path))
        })
    }

    fn read_file<'a>(
        &'a self,
        path: &'a JobPath,
        limit: u64,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, BackendError>> {
        Box::pin(async move {
            if self.copy {
                in_copy(path)?;
                return crate::copy::read_file(&self.docker, self.container()?, path, limit).await;
            }
            let host = self.host_job_path(path)?;
            hearth_host::files::read(&host, limit).map_err(|e| relabel(e, path))
        })
    }

    fn empty_files<'a>(&'a self, paths: &'a [JobPath]) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async move {
            if self.copy {
                return self.empty_in_copy(paths).await;
            }
            let host: Vec<JobPath> = paths
                .iter()
                .map(|p| self.host_job_path(p))
                .collect::<Result<_, _>>()?;
            hearth_host::files::empty(&host)?;
            for (file, path) in host.iter().zip(paths) {
                writable_by_any_user(file).map_err(|e| relabel(e, path))?;
            }
            Ok(())
        })
    }

    fn host_view(&self, path: &JobPath) -> Option<HostPath> {
        self.on_host(path.as_str()).map(HostPath::new)
    }

    fn file_digests<'a>(
        &'a self,
        path: &'a JobPath,
    ) -> BoxFuture<'a, Result<Option<Vec<FileDigest>>, BackendError>> {
        Box::pin(async move {
            if !self.copy {
                // The engine reads a bind-mounted folder itself (`host_view`).
                return Ok(None);
            }
            in_copy(path)?;
            crate::copy::digests(&self.docker, self.container()?, path)
                .await
                .map(Some)
        })
    }

    /// Copies the folder into the job folder, where the container sees it under `/__w` (in
    /// copy mode, uploads it there).
    fn expose<'a>(&'a self, folder: &'a HostPath) -> BoxFuture<'a, Result<JobPath, BackendError>> {
        Box::pin(async move {
            if self.copy {
                return self.upload_exposed(folder).await;
            }
            let name = self.exposed.copy(&self.job_dir, folder).await?;
            Ok(JobPath::new(JOB_ROOT).join(&name))
        })
    }

    fn finish(mut self: Box<Self>) -> BoxFuture<'static, Result<(), BackendError>> {
        Box::pin(async move {
            self.finished = true;
            self.forwarders.clear();
            // The folder goes once the containers that had it mounted are gone (the network
            // may still be going).
            let host_job = self.host_job.take();
            let folder = async move {
                match host_job {
                    Some(host_job) => host_job.finish_job().await,
                    None => Ok(()),
                }
            };
            let made = self.take_made();
            let (problems, folder) = cleanup::remove(&self.docker, made.clone(), folder).await;
            self.live.remove(&self.name);
            if !problems.is_empty() && self.docker.ping().await.is_err() {
                // Docker is away (restarting?): tried again until it is back.
                tokio::spawn(cleanup::retry_while_unavailable(self.docker.clone(), made));
            }
            cleaned(problems).and(folder)
        })
    }
}

impl Drop for DockerJob {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        // Dropped without `finish` (its future cancelled): the containers and the network are
        // removed in the background; the folder goes with the host job's own `Drop`. No
        // longer live: should the removal not happen, `reap` takes them.
        self.live.remove(&self.name);
        let (docker, made) = (self.docker.clone(), self.take_made());
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                let _ = cleanup::remove(&docker, made, async {}).await;
            });
        }
    }
}

/// A file the engine wrote (a file-command file, a script) made writable by whatever user the
/// job runs as: a step appends to `GITHUB_OUTPUT` as that user.
fn writable_by_any_user(file: &JobPath) -> Result<(), BackendError> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(file.as_str(), std::fs::Permissions::from_mode(0o666)).map_err(
        |source| BackendError::File {
            action: "open to the job's user",
            path: file.clone(),
            source,
        },
    )
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A job path in copy mode: the root it is under (`/__w` or `/__t`, where uploads go) and
/// the rest, relative to it.
fn in_copy(path: &JobPath) -> Result<(&'static str, String), BackendError> {
    for root in [JOB_ROOT, TOOL_CACHE] {
        if let Some(rest) = path
            .as_str()
            .strip_prefix(root)
            .and_then(|r| r.strip_prefix('/'))
        {
            let rest = rest.trim_start_matches('/');
            // `..` would let an upload or a read leave the job's folders.
            if !rest.is_empty() && !rest.split('/').any(|part| part == "..") {
                return Ok((root, rest.to_owned()));
            }
        }
    }
    Err(BackendError::NotInJob(path.to_string()))
}

/// A file error names the job path, not the host path behind it.
fn relabel(error: BackendError, path: &JobPath) -> BackendError {
    match error {
        BackendError::File { action, source, .. } => BackendError::File {
            action,
            path: path.clone(),
            source,
        },
        BackendError::FileTooLarge { limit, .. } => BackendError::FileTooLarge {
            path: path.clone(),
            limit,
        },
        other => other,
    }
}
