//! Where a job's steps run.
//!
//! The engine drives a [`Backend`] and never learns what is behind it: the `host` backend runs
//! processes directly on this machine, a Docker backend runs them in a job container. The
//! contract is small on purpose:
//!
//! - [`Backend::start`] prepares a job's place to run — a workspace holding the repository,
//!   a temp folder, a tool cache — and returns the [`JobRuntime`] for it.
//! - [`JobRuntime::exec`] runs one process (a step's shell) to its end, streaming its output,
//!   honouring a timeout and a cancellation token by stopping the whole process tree.
//! - [`JobRuntime::finish`] removes everything the job left: processes, folders (and, for
//!   Docker, containers, networks, volumes). It runs whatever happened before. (The host
//!   backend can be asked to keep a job's folders for its next job instead, made fresh again.)
//!
//! Paths come in two views ([`JobPaths`]): as the job's processes see them, and as the engine
//! (on the host) reaches the same files. The engine writes step scripts and reads the env files
//! (`GITHUB_ENV`, `GITHUB_OUTPUT`, ...) through the host view of the temp folder.

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

pub use tokio_util::sync::CancellationToken;

/// What the engine asks of a backend for one job.
#[derive(Clone, Debug, Default)]
pub struct JobSpec {
    /// A short name for the job, used in folder names and logs (not necessarily unique).
    pub name: String,
    /// The repository to put in the workspace; `None` leaves the workspace empty.
    pub repository: Option<PathBuf>,
}

/// The folders of a job.
#[derive(Clone, Debug)]
pub struct JobPaths {
    /// The workspace (`GITHUB_WORKSPACE`), as the job's processes see it.
    pub workspace: PathBuf,
    /// The job's temp folder (`RUNNER_TEMP`), as the job's processes see it.
    pub temp: PathBuf,
    /// The tool cache (`RUNNER_TOOL_CACHE`), as the job's processes see it.
    pub tool_cache: PathBuf,
    /// The same temp folder as the engine reaches it on the host.
    pub temp_on_host: PathBuf,
    /// The same workspace as the engine reaches it on the host.
    pub workspace_on_host: PathBuf,
}

/// One process to run.
#[derive(Clone, Debug, Default)]
pub struct ExecSpec {
    /// The program and its arguments.
    pub argv: Vec<String>,
    /// The complete environment of the process: nothing else is inherited.
    pub env: Vec<(String, String)>,
    /// The working directory, as the job's processes see it.
    pub working_dir: PathBuf,
    /// Stop the process tree after this long.
    pub timeout: Option<Duration>,
}

/// Which output stream a chunk came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// How a process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExecEnd {
    /// It exited with this code.
    Exited(i32),
    /// A signal killed it (not one Hearth sent).
    Signalled(i32),
    /// It ran past its timeout; its process tree was stopped.
    TimedOut,
    /// The cancellation token fired; its process tree was stopped.
    Cancelled,
}

impl ExecEnd {
    /// `true` for exit code 0.
    pub fn success(self) -> bool {
        self == ExecEnd::Exited(0)
    }
}

/// Receives a process's output as it comes, in chunks of any size (not split at lines).
pub trait OutputSink: Send {
    fn output(&mut self, stream: Stream, chunk: &[u8]);
}

impl<F: FnMut(Stream, &[u8]) + Send> OutputSink for F {
    fn output(&mut self, stream: Stream, chunk: &[u8]) {
        self(stream, chunk)
    }
}

/// Why a backend could not do what was asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackendError {
    /// Preparing the job's folders failed.
    #[error("cannot prepare the job's {what} at {path}: {source}")]
    Prepare {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// The program could not be started.
    #[error("cannot start `{program}`: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    /// Waiting for the process or reading its output failed.
    #[error("lost track of `{program}`: {source}")]
    Wait {
        program: String,
        source: std::io::Error,
    },
    /// Cleaning up after the job failed; what could be removed was.
    #[error("cleaning up the job: {0}")]
    Cleanup(String),
    /// The working directory is not there (a step's `working-directory` that does not exist).
    #[error("the working directory {} does not exist", .0.display())]
    WorkingDirectory(PathBuf),
    /// An empty `argv`.
    #[error("nothing to run: the command is empty")]
    EmptyCommand,
}

/// A place to run jobs.
pub trait Backend: Send + Sync {
    /// A prepared job.
    type Job: JobRuntime;

    /// Prepares a job's folders (and, for container backends, its container).
    fn start(&self, spec: JobSpec) -> impl Future<Output = Result<Self::Job, BackendError>> + Send;
}

/// A prepared job: run processes in it, then clean it up.
pub trait JobRuntime: Send + Sync {
    /// The job's folders.
    fn paths(&self) -> &JobPaths;

    /// Runs one process to its end, sending its output to `sink` as it comes. On timeout or
    /// cancellation the whole process tree is stopped (interrupt, then kill shortly after) and
    /// the call returns within about two seconds.
    fn exec(
        &self,
        spec: ExecSpec,
        sink: &mut dyn OutputSink,
        cancel: &CancellationToken,
    ) -> impl Future<Output = Result<ExecEnd, BackendError>> + Send;

    /// Whether `program` is on `path` (a `PATH` value as the job's processes see it), for
    /// picking a step's default shell; `None` when the backend cannot tell without running
    /// something (the engine then assumes it is not there).
    fn has_program(&self, program: &str, path: &str) -> Option<bool> {
        let _ = (program, path);
        None
    }

    /// Stops every process the job started that is still running, and removes the job's
    /// folders and anything else it created (a backend may instead keep the folders for its
    /// next job, which gets them as fresh as new ones).
    fn finish(self) -> impl Future<Output = Result<(), BackendError>> + Send;
}
