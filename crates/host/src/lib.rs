//! The host backend: a job's steps run as plain processes on this machine.
//!
//! Layout under the backend's root folder:
//!
//! ```text
//! root/
//!   tool-cache/            RUNNER_TOOL_CACHE, shared by all jobs and kept (unless configured
//!                          elsewhere with `with_tool_cache`)
//!   <job-name>-<unique>/   one per job, removed by `finish`
//!     .hearth-job          whose job it is (owner labels, runner process, tracking id), for
//!                          `reap`; not in what the job is given
//!     workspace/           GITHUB_WORKSPACE: a copy of the repository, if any (empty
//!                          and unused when the spec binds the repository: the workspace is
//!                          then the repository itself, which nothing here ever removes)
//!     temp/                RUNNER_TEMP
//!   spare-<unique>/        with `with_folder_reuse`: a finished job's folder, set aside by
//!                          `finish` for the next job, which gets it renamed and made fresh
//! ```
//!
//! Nothing else under the root is the backend's: other folders there (a runner's actions
//! cache) are left alone, by `reap` too.
//!
//! Processes are tracked the way GitHub's runner does it: each job gets a unique tracking id,
//! and the backend adds `RUNNER_TRACKING_ID=<id>` to the environment of every process it starts
//! (the engine passes the complete environment; this one entry is the backend's). Environments
//! are inherited, so at `finish` every process carrying the id is found through `/proc`, even
//! ones that left the step's process group; members of the job's process groups are found too.
//! They get `SIGTERM`, then `SIGKILL`, until none is left.
//!
//! A runner that dies without finishing its jobs leaves their folders and processes behind;
//! [`Backend::reap`] (`reap`) finds them by the record in each job folder and removes them,
//! except the jobs this backend holds now.

mod copy;
mod exec;
pub mod files;
mod ids;
pub mod node_bundle;
mod procs;
mod reap;
mod record;
mod refresh;
mod remove;
mod spares;

pub use node_bundle::{NodeBundle, NodeLender};

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::{sleep, Instant};

use exec::{lock, Graces, Lookup, Tracker, TRACKING_VAR};
use hearth_backend::{
    Backend, BackendError, BoxFuture, CancellationToken, ExecEnd, ExecSpec, HostPath, JobPath,
    JobPaths, JobRuntime, JobSpec, OutputSink, Reaped, SetupLog,
};
use procs::{SIGKILL, SIGTERM};
use reap::Live;
use record::{Record, Runner};
use spares::{Fresh, Spares, TEMP, WORKSPACE};

/// How often `finish` looks again whether the job's processes are gone.
const POLL: Duration = Duration::from_millis(25);
/// How long `finish` keeps killing before it gives up (a fork bomb outrunning it, or a process
/// stuck in uninterruptible sleep).
const KILL_PERSISTENCE: Duration = Duration::from_secs(5);
/// How many times `start` tries another folder name when one already exists.
const NAME_ATTEMPTS: usize = 8;

/// Runs jobs as processes on this machine; see the module documentation.
#[derive(Clone, Debug)]
pub struct HostBackend {
    root: PathBuf,
    tool_cache: Option<PathBuf>,
    graces: Graces,
    terminate_grace: Duration,
    /// Finished jobs' folders kept for the next job; `None` unless asked for.
    spares: Option<Arc<Spares>>,
    /// The environment steps start from.
    base_env: Arc<[(String, String)]>,
    /// The folders this backend and its clones hold (jobs running, folders set aside), which
    /// `reap` must leave alone.
    live: Arc<Live>,
}

impl HostBackend {
    /// A backend keeping its jobs' folders under `root` (created when the first job starts).
    pub fn new(root: PathBuf) -> Self {
        HostBackend {
            root,
            tool_cache: None,
            graces: Graces {
                interrupt: Duration::from_secs(1),
                drain: Duration::from_millis(100),
            },
            terminate_grace: Duration::from_secs(1),
            spares: None,
            base_env: runner_env().into(),
            live: Arc::default(),
        }
    }

    /// Steps start from `env` instead of this process's environment.
    pub fn with_base_env(mut self, env: Vec<(String, String)>) -> Self {
        self.base_env = env.into();
        self
    }

    /// Keeps a finished job's folder for the next job instead of removing it: the next job
    /// gets it renamed, its temp folder emptied and its workspace refreshed in place from the
    /// repository, which spares creating and removing every file of the copy (see the
    /// `spares` module). Folders still kept are removed when the backend is dropped (its last
    /// clone, and the last job it started).
    pub fn with_folder_reuse(mut self) -> Self {
        self.spares = Some(Arc::new(Spares::new(self.live.clone())));
        self
    }

    /// Uses `path` as the tool cache instead of `root/tool-cache` (e.g. one shared by several
    /// runners). It is created if missing and never removed.
    pub fn with_tool_cache(mut self, path: PathBuf) -> Self {
        self.tool_cache = Some(path);
        self
    }

    /// How long a timed-out or cancelled process has between `SIGINT` and `SIGKILL`
    /// (default 1 s). Keep it well under 2 s: `exec` promises to return within about that.
    pub fn with_interrupt_grace(mut self, grace: Duration) -> Self {
        self.graces.interrupt = grace;
        self
    }

    /// How long output is still read after the main process exited while background processes
    /// hold its pipes open (default 100 ms).
    pub fn with_drain_grace(mut self, grace: Duration) -> Self {
        self.graces.drain = grace;
        self
    }

    /// How long `finish` gives the job's remaining processes between `SIGTERM` and `SIGKILL`
    /// (default 1 s).
    pub fn with_terminate_grace(mut self, grace: Duration) -> Self {
        self.terminate_grace = grace;
        self
    }

    /// The tool cache jobs get.
    fn tool_cache(&self, root: &Path) -> PathBuf {
        match &self.tool_cache {
            Some(path) => std::path::absolute(path).unwrap_or_else(|_| path.clone()),
            None => root.join("tool-cache"),
        }
    }
}

/// Copies the folder `from` to `to` (made if missing) as the backend copies a repository into
/// a workspace: files, links and modes, nothing followed out of `from`. For backends that
/// build on the host's folders (a container backend exposing an action's checkout).
pub fn copy_folder(from: &Path, to: &Path) -> io::Result<()> {
    std::fs::create_dir_all(to)?;
    copy::copy_tree(from, to, None).map_err(|e| {
        io::Error::new(
            e.source.kind(),
            format!("{}: {}", e.path.display(), e.source),
        )
    })
}

/// Host folders copied into a job's folder (an action's checkout, for a job whose processes
/// do not see the host's folders), each once, under `_actions/<n>`: for backends that build
/// on the host's job folders (Docker's bind mount, the fake backend).
#[derive(Debug, Default)]
pub struct Copies(Mutex<std::collections::BTreeMap<PathBuf, String>>);

impl Copies {
    /// Copies `folder` into `job_dir` unless it was already; its place relative to `job_dir`.
    pub async fn copy(&self, job_dir: &Path, folder: &HostPath) -> Result<String, BackendError> {
        if let Some(name) = lock(&self.0).get(folder.as_path()) {
            return Ok(name.clone());
        }
        let name = format!("_actions/{}", lock(&self.0).len());
        let target = job_dir.join(&name);
        let (source, copy_to) = (folder.as_path().to_path_buf(), target.clone());
        tokio::task::spawn_blocking(move || copy_folder(&source, &copy_to))
            .await
            .map_err(|e| BackendError::Prepare {
                what: "action copy",
                path: target.clone(),
                source: io::Error::other(e),
            })?
            .map_err(|source| BackendError::Prepare {
                what: "action copy",
                path: target,
                source,
            })?;
        lock(&self.0).insert(folder.as_path().to_path_buf(), name.clone());
        Ok(name)
    }
}

/// Removes a folder and everything in it as the backend removes job folders: whatever the
/// permissions, and without waiting for the disk once per folder (see the `remove` module).
/// For a runner removing the backend's root folder once done.
pub fn remove_folder(path: &Path) -> io::Result<()> {
    remove::remove_tree(path)
}

fn prepare(what: &'static str, path: &Path) -> impl FnOnce(io::Error) -> BackendError {
    let path = path.to_path_buf();
    move |source| BackendError::Prepare { what, path, source }
}

impl HostBackend {
    /// Prepares a job, as [`Backend::start`] does, keeping its type (tests and tools that
    /// need the job's tracking id or folder).
    pub async fn start_job(
        &self,
        mut spec: JobSpec,
        cancel: &CancellationToken,
    ) -> Result<HostJob, BackendError> {
        if let Some(container) = &spec.container {
            return Err(BackendError::Unsupported(format!(
                "the job asks for a container (image `{}`), but its label runs jobs on the host; \
                 give it a label that runs jobs in Docker",
                container.image
            )));
        }
        if !spec.services.is_empty() {
            return Err(BackendError::Unsupported(
                "the job has `services:`, which need a label that runs jobs in Docker".to_owned(),
            ));
        }
        // A bound repository is the workspace itself: nothing is copied, and the job folder's
        // own `workspace/` stays empty and unused. Only the job folder is ever removed, so the
        // repository outlives the job.
        let bound = match spec.repository.take() {
            Some(repository) if spec.bind_repository => Some(bound_workspace(&repository)?),
            repository => {
                spec.repository = repository;
                None
            }
        };
        // Absolute, so that the paths handed to steps mean the same from any working dir.
        let root = std::path::absolute(&self.root).map_err(prepare("root folder", &self.root))?;
        let tool_cache = self.tool_cache(&root);
        let tracking_id = ids::tracking_id();
        let started = procs::ticks_since_boot();
        let record = Record {
            runner: Runner::this_process().clone(),
            tracking_id: tracking_id.clone(),
            job_started: started,
            owner: spec.owner.clone(),
        };
        // Making the folders is blocking work, done in one go off the async threads.
        let spares = self.spares.clone();
        let live = self.live.clone();
        let cache = tool_cache.clone();
        let preparing = tokio::task::spawn_blocking(move || {
            prepare_job_dir(&root, &cache, &spec, spares.as_deref(), &live, &record)
        });
        let prepared = tokio::select! {
            prepared = preparing => prepared,
            () = cancel.cancelled() => return Err(BackendError::Cancelled("preparing the job's folders".into())),
        };
        let (job_dir, fresh) = prepared.map_err(|e| BackendError::Prepare {
            what: "job folder",
            path: self.root.clone(),
            source: io::Error::other(e),
        })??;
        let seen = |path: &Path| JobPath::new(path.to_string_lossy().into_owned());
        let workspace = bound.unwrap_or_else(|| job_dir.join(WORKSPACE));
        Ok(HostJob {
            paths: JobPaths {
                workspace: seen(&workspace),
                temp: seen(&job_dir.join(TEMP)),
                tool_cache: seen(&tool_cache),
            },
            tool_cache,
            base_env: self.base_env.clone(),
            workspace,
            job_dir,
            fresh,
            spares: self.spares.clone(),
            live: self.live.clone(),
            tracking_id,
            started,
            graces: self.graces,
            terminate_grace: self.terminate_grace,
            groups: Mutex::new(HashSet::new()),
            drains: Mutex::new(Vec::new()),
            lookup: Mutex::new(None),
            finished: false,
        })
    }
}

impl Backend for HostBackend {
    fn start<'a>(
        &'a self,
        spec: JobSpec,
        _log: &'a mut dyn SetupLog,
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<Box<dyn JobRuntime>, BackendError>> {
        Box::pin(async move {
            let job = self.start_job(spec, cancel).await?;
            Ok(Box::new(job) as Box<dyn JobRuntime>)
        })
    }

    fn reap<'a>(
        &'a self,
        owner: &'a [(String, String)],
    ) -> BoxFuture<'a, Result<Reaped, BackendError>> {
        Box::pin(self.reap_leftovers(owner))
    }

    /// Leftovers, then the folders set aside for reuse (made again when needed).
    fn free_space<'a>(
        &'a self,
        owner: &'a [(String, String)],
    ) -> BoxFuture<'a, Result<Reaped, BackendError>> {
        Box::pin(async move {
            let mut reaped = self.reap_leftovers(owner).await?;
            if let Some(spares) = self.spares.clone() {
                let removed = tokio::task::spawn_blocking(move || spares.clear())
                    .await
                    .map_err(|e| BackendError::Cleanup(format!("removing spare folders: {e}")))?;
                reaped.removed.extend(
                    removed
                        .into_iter()
                        .map(|dir| format!("folder set aside {}", dir.display())),
                );
            }
            Ok(reaped)
        })
    }
}

/// The workspace of a job bound to `repository`: its absolute path, which must be a folder.
fn bound_workspace(repository: &HostPath) -> Result<PathBuf, BackendError> {
    let path = repository.as_path();
    let absolute = std::path::absolute(path).map_err(prepare("repository", path))?;
    match std::fs::metadata(&absolute) {
        Ok(meta) if meta.is_dir() => Ok(absolute),
        Ok(_) => Err(prepare("repository", &absolute)(io::Error::new(
            io::ErrorKind::NotADirectory,
            "not a folder",
        ))),
        Err(e) => Err(prepare("repository", &absolute)(e)),
    }
}

/// The environment a host job starts from: this process's, without variables that only make
/// sense inside another runner's step (`INPUT_*`, `STATE_*`), so a runner started from a step
/// does not leak its step's inputs into its jobs.
pub fn runner_env() -> Vec<(String, String)> {
    std::env::vars()
        .filter(|(name, _)| !name.starts_with("INPUT_") && !name.starts_with("STATE_"))
        .collect()
}

/// Makes the root folder and the tool cache if missing, then the job's folder under `root`: a
/// folder set aside by an earlier job when there is one (see `spares`), else a new one, its
/// workspace holding a copy of the repository; then writes the job's `record` into it. The
/// folder is in `live` from its creation on. Returns the job folder and how it looked when
/// made. On failure nothing of the job's folder is left.
fn prepare_job_dir(
    root: &Path,
    tool_cache: &Path,
    spec: &JobSpec,
    spares: Option<&Spares>,
    live: &Live,
    record: &Record,
) -> Result<(PathBuf, Fresh), BackendError> {
    std::fs::create_dir_all(root).map_err(prepare("root folder", root))?;
    std::fs::create_dir_all(tool_cache).map_err(prepare("tool cache", tool_cache))?;
    let repository = spec.repository.as_ref().map(HostPath::as_path);
    let skip = copy::folder_id(root);
    let revived = spares.and_then(|spares| spares.revive(root, &spec.name, repository, skip));
    let (job_dir, fresh) = match revived {
        Some(revived) => revived,
        None => {
            let job_dir = create_job_dir(root, &spec.name)?;
            // Held before the record exists: `reap` never sees this job's record unheld.
            live.add(&job_dir);
            match fill_job_dir(&job_dir, repository, skip) {
                Ok(fresh) => (job_dir, fresh),
                Err(e) => {
                    discard_job_dir(&job_dir, live);
                    return Err(e);
                }
            }
        }
    };
    // Before any process of the job runs, so that a runner killed from here on leaves a
    // folder `reap` can tell is its own.
    if let Err(e) = record.write(&job_dir) {
        discard_job_dir(&job_dir, live);
        return Err(prepare("job record", &job_dir)(e));
    }
    Ok((job_dir, fresh))
}

/// Removes a job folder that could not be prepared.
fn discard_job_dir(job_dir: &Path, live: &Live) {
    if let Err(e) = remove::remove_tree(job_dir) {
        tracing::warn!(job = %job_dir.display(), error = %e, "cannot remove the job folder");
    }
    live.remove(job_dir);
}

/// Makes the new job folder's workspace (a copy of `repository`) and temp folder.
fn fill_job_dir(
    job_dir: &Path,
    repository: Option<&Path>,
    skip: Option<copy::FolderId>,
) -> Result<Fresh, BackendError> {
    let workspace = job_dir.join(WORKSPACE);
    let temp = job_dir.join(TEMP);
    std::fs::create_dir(&workspace).map_err(prepare("workspace", &workspace))?;
    std::fs::create_dir(&temp).map_err(prepare("temp folder", &temp))?;
    // Before the copy: the workspace's own mode and owner are those of a new folder.
    let fresh = Fresh::read(job_dir).map_err(prepare("job folder", job_dir))?;
    if let Some(repository) = repository {
        copy::copy_tree(repository, &workspace, skip).map_err(|e| BackendError::Prepare {
            what: "repository copy",
            path: e.path,
            source: e.source,
        })?;
    }
    Ok(fresh)
}

/// Creates a fresh, uniquely named folder for a job under `root`.
fn create_job_dir(root: &Path, name: &str) -> Result<PathBuf, BackendError> {
    let mut last = None;
    for _ in 0..NAME_ATTEMPTS {
        let dir = root.join(ids::folder_name(name));
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some((dir, e)),
            Err(e) => return Err(prepare("job folder", &dir)(e)),
        }
    }
    let (dir, e) =
        last.unwrap_or_else(|| (root.to_path_buf(), io::ErrorKind::AlreadyExists.into()));
    Err(prepare("job folder", &dir)(e))
}

/// A job on the host. Call [`JobRuntime::finish`] when done; dropping it instead does a quick,
/// blocking, last-resort cleanup (kill with `SIGKILL`, remove the folders).
#[derive(Debug)]
pub struct HostJob {
    paths: JobPaths,
    tool_cache: PathBuf,
    base_env: Arc<[(String, String)]>,
    /// The workspace: `job_dir/workspace`, or the repository itself when bound (never
    /// removed then).
    workspace: PathBuf,
    /// The job's own folder, holding its workspace (unless bound) and temp folder.
    job_dir: PathBuf,
    /// How the job's folders looked when made, for reusing them.
    fresh: Fresh,
    /// Where `finish` sets the folder aside for the next job, if the backend reuses folders.
    spares: Option<Arc<Spares>>,
    /// The backend's held folders, which hold `job_dir` until it is removed or set aside.
    live: Arc<Live>,
    tracking_id: String,
    /// When the job started, before any of its processes (clock ticks since boot): older
    /// processes cannot carry its tracking id.
    started: u64,
    graces: Graces,
    terminate_grace: Duration,
    /// Every process group an exec created.
    groups: Mutex<HashSet<i32>>,
    /// Tasks discarding the output of background processes.
    drains: Mutex<Vec<JoinHandle<()>>>,
    /// The last program `has_program` found, for the next `exec`.
    lookup: Mutex<Option<Lookup>>,
    /// Set by `finish`, so that `Drop` has nothing left to do.
    finished: bool,
}

impl HostJob {
    /// The value of `RUNNER_TRACKING_ID` in this job's processes.
    pub fn tracking_id(&self) -> &str {
        &self.tracking_id
    }

    /// The job's own folder (holding `workspace/` and `temp/`), removed (or set aside for the
    /// next job) by `finish`.
    pub fn job_dir(&self) -> &Path {
        &self.job_dir
    }

    /// The workspace, temp folder and tool cache (for the host backend, the job sees the same).
    pub fn workspace_dir(&self) -> PathBuf {
        self.workspace.clone()
    }
    pub fn temp_dir(&self) -> PathBuf {
        self.job_dir.join(TEMP)
    }
    pub fn tool_cache_dir(&self) -> &Path {
        &self.tool_cache
    }

    /// Runs one process (the typed form of [`JobRuntime::exec`]).
    pub async fn run(
        &self,
        spec: ExecSpec,
        sink: &mut dyn OutputSink,
        cancel: &CancellationToken,
    ) -> Result<ExecEnd, BackendError> {
        let tracker = Tracker {
            tracking_id: &self.tracking_id,
            groups: &self.groups,
            drains: &self.drains,
        };
        let known = lock(&self.lookup).take();
        exec::run(spec, known, tracker, self.graces, sink, cancel).await
    }

    /// Stops the job's processes and removes (or sets aside) its folder (the typed form of
    /// [`JobRuntime::finish`]).
    pub async fn finish_job(mut self) -> Result<(), BackendError> {
        self.finished = true;
        let mut problems = Vec::new();
        if let Err(e) = self.stop_processes().await {
            problems.push(e);
        }
        for drain in lock(&self.drains).drain(..) {
            drain.abort();
        }
        // Only a folder no process of the job can still write into is handed to another job.
        if problems.is_empty() {
            if let Some(spares) = &self.spares {
                match spares.park(&self.job_dir, self.fresh) {
                    Ok(()) => return Ok(()),
                    Err(e) => {
                        tracing::debug!(job = %self.job_dir.display(), error = %e, "cannot set the job folder aside");
                    }
                }
            }
        }
        let job_dir = self.job_dir.clone();
        match tokio::task::spawn_blocking(move || remove::remove_tree(&job_dir)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => problems.push(format!("cannot remove {}: {e}", self.job_dir.display())),
            Err(e) => problems.push(format!("removing {}: {e}", self.job_dir.display())),
        }
        // Released only now: a folder halfway removed is no leftover for `reap`. One that
        // could not be removed is, for a later reap to try again.
        self.live.remove(&self.job_dir);
        if problems.is_empty() {
            Ok(())
        } else {
            Err(BackendError::Cleanup(problems.join("; ")))
        }
    }

    /// A snapshot of what identifies the job's processes.
    fn survey(&self) -> Survey {
        Survey {
            needle: format!("{TRACKING_VAR}={}", self.tracking_id).into_bytes(),
            groups: lock(&self.groups).clone(),
            since: self.started,
        }
    }

    /// Stops every process of the job (see [`stop_survey`]).
    async fn stop_processes(&self) -> Result<(), String> {
        stop_survey(&self.survey(), self.terminate_grace).await.1
    }
}

/// Stops every process `survey` finds: `SIGTERM`, then `SIGKILL` after `terminate_grace`,
/// looking again and again (processes may fork while being killed) until none is left or
/// [`KILL_PERSISTENCE`] has passed. Returns the processes signalled, and whether all are gone.
async fn stop_survey(
    survey: &Survey,
    terminate_grace: Duration,
) -> (HashSet<i32>, Result<(), String>) {
    let mut signalled = HashSet::new();
    let outcome = async {
        if survey
            .signal_until_gone(SIGTERM, terminate_grace, &mut signalled)
            .await?
        {
            return Ok(());
        }
        if survey
            .signal_until_gone(SIGKILL, KILL_PERSISTENCE, &mut signalled)
            .await?
        {
            return Ok(());
        }
        let left = survey.find().await?;
        Err(format!(
            "{} processes still running after SIGKILL: {left:?}",
            left.len()
        ))
    }
    .await;
    (signalled, outcome)
}

/// What identifies a job's processes, detached from the job so that it can move into blocking
/// tasks.
#[derive(Clone)]
struct Survey {
    needle: Vec<u8>,
    groups: HashSet<i32>,
    /// The job's start, in clock ticks since boot.
    since: u64,
}

impl Survey {
    /// The job's living processes (reading `/proc` is blocking work).
    async fn find(&self) -> Result<Vec<i32>, String> {
        let survey = self.clone();
        tokio::task::spawn_blocking(move || survey.find_now())
            .await
            .map_err(|e| format!("looking for the job's processes: {e}"))?
    }

    fn find_now(&self) -> Result<Vec<i32>, String> {
        procs::job_processes(&self.needle, &self.groups, self.since)
            .map_err(|e| format!("cannot list processes in /proc: {e}"))
    }

    /// Sends `signal` to every process of the job, and to newcomers, until none is left
    /// (`true`) or `patience` has passed (`false`). `signalled` gathers the processes signalled
    /// (a polite signal goes once to each of them).
    async fn signal_until_gone(
        &self,
        signal: i32,
        patience: Duration,
        signalled: &mut HashSet<i32>,
    ) -> Result<bool, String> {
        let until = Instant::now() + patience;
        loop {
            let pids = self.find().await?;
            if pids.is_empty() {
                return Ok(true);
            }
            if Instant::now() >= until {
                return Ok(false);
            }
            for pid in pids {
                // SIGKILL is repeated each round (harmless); a polite signal is sent once.
                let first = signalled.insert(pid);
                if signal == SIGKILL || first {
                    if let Err(e) = procs::kill(pid, signal) {
                        tracing::warn!(pid, signal, error = %e, "cannot signal a job process");
                    }
                }
            }
            sleep(POLL).await;
        }
    }
}

impl JobRuntime for HostJob {
    fn paths(&self) -> &JobPaths {
        &self.paths
    }

    fn base_env(&self) -> &[(String, String)] {
        &self.base_env
    }

    /// Looks through `path`'s folders for an executable file named `program`, as a shell would.
    /// The program found is remembered for the next `exec`, which the engine makes for the
    /// step it is preparing: it then need not search `PATH` again.
    fn has_program(&self, program: &str, path: &str) -> Option<bool> {
        let found = exec::find_on_path(program, path);
        let lookup = found.as_ref().map(|found| Lookup {
            program: program.to_owned(),
            path: path.to_owned(),
            found: found.clone(),
        });
        *lock(&self.lookup) = lookup;
        Some(found.is_some())
    }

    /// Runs one process; `RUNNER_TRACKING_ID` is added to (or replaces the one in) `spec.env`.
    fn exec<'a>(
        &'a self,
        spec: ExecSpec,
        sink: &'a mut dyn OutputSink,
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<ExecEnd, BackendError>> {
        Box::pin(self.run(spec, sink, cancel))
    }

    // The job's files are small and on a local disk: they are reached in place rather than
    // handed to tokio's blocking pool and back, which would cost two thread switches per file
    // per step (see bench/README.md). Their size is bounded by the caller's `limit`.
    fn write_file<'a>(
        &'a self,
        path: &'a JobPath,
        contents: &'a [u8],
        replaces: Option<&'a JobPath>,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(std::future::ready(files::write(path, contents, replaces)))
    }

    fn read_file<'a>(
        &'a self,
        path: &'a JobPath,
        limit: u64,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, BackendError>> {
        Box::pin(std::future::ready(files::read(path, limit)))
    }

    fn empty_files<'a>(&'a self, paths: &'a [JobPath]) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(std::future::ready(files::empty(paths)))
    }

    fn host_view(&self, path: &JobPath) -> Option<HostPath> {
        Some(HostPath::new(path.as_str()))
    }

    fn expose<'a>(&'a self, folder: &'a HostPath) -> BoxFuture<'a, Result<JobPath, BackendError>> {
        let seen = JobPath::new(folder.as_path().to_string_lossy().into_owned());
        Box::pin(std::future::ready(Ok(seen)))
    }

    fn finish(self: Box<Self>) -> BoxFuture<'static, Result<(), BackendError>> {
        Box::pin(self.finish_job())
    }
}

impl Drop for HostJob {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        tracing::warn!(job = %self.job_dir.display(), "job dropped without finish; cleaning up");
        let survey = self.survey();
        // A few quick rounds: enough for ordinary leftovers, short enough for a destructor.
        for _ in 0..20 {
            match survey.find_now() {
                Ok(pids) if !pids.is_empty() => {
                    for pid in pids {
                        let _ = procs::kill(pid, SIGKILL);
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
                _ => break,
            }
        }
        for drain in lock(&self.drains).drain(..) {
            drain.abort();
        }
        // Removing a tree can take seconds: not on an async thread of the daemon. Inside a
        // runtime it goes to the blocking pool (which the runtime waits for when shut down);
        // outside one it is done here.
        let job_dir = std::mem::take(&mut self.job_dir);
        let live = self.live.clone();
        let remove = move || {
            if let Err(e) = remove::remove_tree(&job_dir) {
                tracing::warn!(job = %job_dir.display(), error = %e, "cannot remove the job folder");
            }
            live.remove(&job_dir);
        };
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => drop(handle.spawn_blocking(remove)),
            Err(_) => remove(),
        }
    }
}
