//! The host backend: a job's steps run as plain processes on this machine.
//!
//! Layout under the backend's root folder:
//!
//! ```text
//! root/
//!   tool-cache/            RUNNER_TOOL_CACHE, shared by all jobs and kept (unless configured
//!                          elsewhere with `with_tool_cache`)
//!   <job-name>-<unique>/   one per job, removed by `finish`
//!     workspace/           GITHUB_WORKSPACE: a copy of the repository, if any
//!     temp/                RUNNER_TEMP
//!   spare-<unique>/        with `with_folder_reuse`: a finished job's folder, set aside by
//!                          `finish` for the next job, which gets it renamed and made fresh
//! ```
//!
//! Processes are tracked the way GitHub's runner does it: each job gets a unique tracking id,
//! and the backend adds `RUNNER_TRACKING_ID=<id>` to the environment of every process it starts
//! (the engine passes the complete environment; this one entry is the backend's). Environments
//! are inherited, so at `finish` every process carrying the id is found through `/proc`, even
//! ones that left the step's process group; members of the job's process groups are found too.
//! They get `SIGTERM`, then `SIGKILL`, until none is left.

mod copy;
mod exec;
mod ids;
mod procs;
mod refresh;
mod remove;
mod spares;

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::{sleep, Instant};

use exec::{lock, Graces, Lookup, Tracker, TRACKING_VAR};
use hearth_backend::{
    Backend, BackendError, CancellationToken, ExecEnd, ExecSpec, JobPaths, JobRuntime, JobSpec,
    OutputSink,
};
use procs::{SIGKILL, SIGTERM};
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
        }
    }

    /// Keeps a finished job's folder for the next job instead of removing it: the next job
    /// gets it renamed, its temp folder emptied and its workspace refreshed in place from the
    /// repository, which spares creating and removing every file of the copy (see the
    /// `spares` module). Folders still kept are removed when the backend is dropped (its last
    /// clone, and the last job it started).
    pub fn with_folder_reuse(mut self) -> Self {
        self.spares = Some(Arc::new(Spares::default()));
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

impl Backend for HostBackend {
    type Job = HostJob;

    async fn start(&self, spec: JobSpec) -> Result<HostJob, BackendError> {
        // Absolute, so that the paths handed to steps mean the same from any working dir.
        let root = std::path::absolute(&self.root).map_err(prepare("root folder", &self.root))?;
        let tool_cache = self.tool_cache(&root);
        // Making the folders is blocking work, done in one go.
        let spares = self.spares.clone();
        let cache = tool_cache.clone();
        let (job_dir, fresh) = tokio::task::spawn_blocking(move || {
            prepare_job_dir(&root, &cache, &spec, spares.as_deref())
        })
        .await
        .map_err(|e| BackendError::Prepare {
            what: "job folder",
            path: self.root.clone(),
            source: io::Error::other(e),
        })??;
        Ok(HostJob {
            paths: JobPaths {
                workspace: job_dir.join(WORKSPACE),
                temp: job_dir.join(TEMP),
                tool_cache,
                temp_on_host: job_dir.join(TEMP),
                workspace_on_host: job_dir.join(WORKSPACE),
            },
            job_dir,
            fresh,
            spares: self.spares.clone(),
            tracking_id: ids::tracking_id(),
            started: procs::ticks_since_boot(),
            graces: self.graces,
            terminate_grace: self.terminate_grace,
            groups: Mutex::new(HashSet::new()),
            drains: Mutex::new(Vec::new()),
            lookup: Mutex::new(None),
            finished: false,
        })
    }
}

/// Makes the root folder and the tool cache if missing, then the job's folder under `root`: a
/// folder set aside by an earlier job when there is one (see `spares`), else a new one, its
/// workspace holding a copy of the repository. Returns the job folder and how it looked when
/// made. On failure nothing of the job's folder is left.
fn prepare_job_dir(
    root: &Path,
    tool_cache: &Path,
    spec: &JobSpec,
    spares: Option<&Spares>,
) -> Result<(PathBuf, Fresh), BackendError> {
    std::fs::create_dir_all(root).map_err(prepare("root folder", root))?;
    std::fs::create_dir_all(tool_cache).map_err(prepare("tool cache", tool_cache))?;
    let repository = spec.repository.as_deref();
    let skip = copy::folder_id(root);
    if let Some(revived) =
        spares.and_then(|spares| spares.revive(root, &spec.name, repository, skip))
    {
        return Ok(revived);
    }
    let job_dir = create_job_dir(root, &spec.name)?;
    let filled = fill_job_dir(&job_dir, repository, skip);
    if filled.is_err() {
        if let Err(e) = remove::remove_tree(&job_dir) {
            tracing::warn!(job = %job_dir.display(), error = %e, "cannot remove the job folder");
        }
    }
    filled.map(|fresh| (job_dir, fresh))
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
    /// The job's own folder, holding its workspace and temp folder.
    job_dir: PathBuf,
    /// How the job's folders looked when made, for reusing them.
    fresh: Fresh,
    /// Where `finish` sets the folder aside for the next job, if the backend reuses folders.
    spares: Option<Arc<Spares>>,
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

    /// A snapshot of what identifies the job's processes.
    fn survey(&self) -> Survey {
        Survey {
            needle: format!("{TRACKING_VAR}={}", self.tracking_id).into_bytes(),
            groups: lock(&self.groups).clone(),
            since: self.started,
        }
    }

    /// Stops every process of the job: `SIGTERM`, then `SIGKILL` after the terminate grace,
    /// looking again and again (processes may fork while being killed) until none is left or
    /// [`KILL_PERSISTENCE`] has passed.
    async fn stop_processes(&self) -> Result<(), String> {
        let survey = self.survey();
        if survey
            .signal_until_gone(SIGTERM, self.terminate_grace)
            .await?
        {
            return Ok(());
        }
        if survey.signal_until_gone(SIGKILL, KILL_PERSISTENCE).await? {
            return Ok(());
        }
        let left = survey.find().await?;
        Err(format!(
            "{} processes still running after SIGKILL: {left:?}",
            left.len()
        ))
    }
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
    /// (`true`) or `patience` has passed (`false`).
    async fn signal_until_gone(&self, signal: i32, patience: Duration) -> Result<bool, String> {
        let until = Instant::now() + patience;
        let mut signalled = HashSet::new();
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
                if signal == SIGKILL || signalled.insert(pid) {
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
    async fn exec(
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

    async fn finish(mut self) -> Result<(), BackendError> {
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
        if problems.is_empty() {
            Ok(())
        } else {
            Err(BackendError::Cleanup(problems.join("; ")))
        }
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
        if let Err(e) = remove::remove_tree(&self.job_dir) {
            tracing::warn!(job = %self.job_dir.display(), error = %e, "cannot remove the job folder");
        }
    }
}
