//! Where a job's steps run: the contract every backend fulfils.
//!
//! The engine drives a [`Backend`] and never learns what is behind it: the host backend
//! (`hearth-host`) runs processes on this machine, a container backend runs them in a job
//! container. Everything the engine needs of the place a job runs goes through this contract:
//!
//! - [`Backend::start`] prepares a job's place — a workspace (holding the repository, for a
//!   local run), a temp folder, a tool cache, and for a container backend the job container
//!   and its services ([`JobSpec::container`], [`JobSpec::services`]) — and returns its
//!   [`JobRuntime`]. It logs what it does to the job's log ([`SetupLog`]: an image pull is
//!   part of the job) and stops when the job is cancelled or runs out of time.
//! - [`JobRuntime::exec`] runs one process (a step's shell) to its end, streaming its output,
//!   honouring a timeout and a cancellation token by stopping the whole process tree.
//! - [`JobRuntime::run_container`] runs a step in a container of its own (a Docker action),
//!   for backends that can; the others refuse it with [`BackendError::Unsupported`].
//! - The job's files are reached through the runtime ([`JobRuntime::write_file`],
//!   [`JobRuntime::read_file`], [`JobRuntime::empty_files`]), never by opening a path: a runner
//!   that talks to a remote Docker daemon shares no folder with its jobs.
//! - Paths are typed ([`JobPath`] as the job sees it, [`HostPath`] on the runner's machine);
//!   [`JobRuntime::expose`] says how a host folder (an action's checkout) is seen by the job.
//! - The environment steps start from is the runtime's ([`JobRuntime::base_env`]): a
//!   container's image environment, not the runner's own.
//! - [`JobRuntime::finish`] removes everything the job left: processes, folders (and for a
//!   container backend, containers, networks, volumes); its errors are the engine's to report.
//!   [`Backend::reap`] removes what jobs of a runner that died left behind, found by the labels
//!   given in [`JobSpec::owner`].
//!
//! Every method is object-safe (futures are boxed), so a runner holds its backends as
//! `Arc<dyn Backend>` and picks one per job by label.

mod paths;

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::Duration;

pub use paths::{HostPath, JobPath};

/// The variables that name a bundle of CA certificates for the tools jobs run: OpenSSL (curl,
/// wget, Python's `ssl`, Ruby), Node.js (added to its own store), git, and Python's `requests`.
/// A runner with `runner.ca_file` sets them in every job's environment, host or container.
pub const CA_BUNDLE_VARIABLES: [&str; 4] = [
    "SSL_CERT_FILE",
    "NODE_EXTRA_CA_CERTS",
    "GIT_SSL_CAINFO",
    "REQUESTS_CA_BUNDLE",
];
pub use secrecy::{ExposeSecret, SecretString};
pub use tokio_util::sync::CancellationToken;

/// A boxed future, as the contract's methods return them.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What the engine asks of a backend for one job.
#[derive(Clone, Debug, Default)]
pub struct JobSpec {
    /// A short name for the job, used in folder and container names and logs (not unique).
    pub name: String,
    /// The repository to copy into the workspace; `None` leaves the workspace empty (a forge's
    /// job checks it out itself).
    pub repository: Option<HostPath>,
    /// The workspace is `repository` itself rather than a copy (`hearth exec --bind`): what
    /// the job writes there stays in the repository. Cleanup never removes it: it is the
    /// user's. A backend that cannot do this refuses the job ([`BackendError::Unsupported`]).
    pub bind_repository: bool,
    /// The job container (`jobs.<id>.container`, or the image of a `docker://` label); `None`
    /// for a job that runs where the backend runs its processes by default.
    pub container: Option<ContainerSpec>,
    /// `jobs.<id>.services`, by service id.
    pub services: Vec<(String, ContainerSpec)>,
    /// Labels that say whose the job is (runner, task), put on everything the job creates so
    /// that [`Backend::reap`] can find what a dead runner left.
    pub owner: Vec<(String, String)>,
    /// What on the runner's side the job is given and must reach (the forge, the cache): a
    /// container backend makes each reachable from the job, checks from where the job runs
    /// that it answers before the first step, and [`JobRuntime::address`] says how the job
    /// sees each.
    pub reach: Vec<Reach>,
    /// The forge's own registry and the task's token: tried last for images on that host.
    pub forge_registry: Option<ForgeRegistry>,
}

/// A URL of the runner's side that a job is given (the forge's address, the cache's), with
/// what to say when the job cannot reach it from where it runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reach {
    /// The URL as the runner reaches it (`http://127.0.0.1:3000`).
    pub url: String,
    /// What it is, for messages: `the forge`, `the cache`.
    pub what: String,
    /// What the runner's user changes when the job cannot reach it.
    pub fix: String,
    /// Whether the job can do without it (the cache): a miss is then one warning in the set-up
    /// log and the job goes on. A miss of one that is not optional (the forge) fails the start
    /// ([`ErrorKind::Unreachable`]).
    pub optional: bool,
}

impl Reach {
    /// Something the job cannot do without.
    pub fn required(url: impl Into<String>, what: &str, fix: &str) -> Reach {
        Reach {
            url: url.into(),
            what: what.to_owned(),
            fix: fix.to_owned(),
            optional: false,
        }
    }

    /// Something the job can do without.
    pub fn optional(url: impl Into<String>, what: &str, fix: &str) -> Reach {
        Reach {
            optional: true,
            ..Reach::required(url, what, fix)
        }
    }
}

/// The forge's own container registry (Gitea's and Forgejo's packages) and the credentials a
/// task has for it (the actor and the task's token), for images on the forge's host that no
/// other source has credentials for. A registry that refuses them is asked again without
/// credentials: the image may be public.
#[derive(Clone, Debug)]
pub struct ForgeRegistry {
    /// The forge's host as image references name it (`git.example.com`, `127.0.0.1:3000`).
    pub host: String,
    pub credentials: Credentials,
}

/// A container to run: the job container or a service, as the workflow gives it (expressions
/// evaluated).
#[derive(Clone, Debug, Default)]
pub struct ContainerSpec {
    pub image: String,
    /// Registry credentials for pulling `image`.
    pub credentials: Option<Credentials>,
    pub env: Vec<(String, String)>,
    /// `ports:` entries (`8080`, `8080:80`, `8080:80/udp`).
    pub ports: Vec<String>,
    /// `volumes:` entries (`name:/path`, `/host:/path:ro`).
    pub volumes: Vec<String>,
    /// `options:`, the `docker create` flags as written.
    pub options: String,
    /// A service's `entrypoint:` and `command:` (Gitea/Forgejo's `cmd`).
    pub entrypoint: Option<String>,
    pub command: Option<String>,
}

/// A registry user and password (or token). The password never shows in `Debug`.
#[derive(Clone, Debug)]
pub struct Credentials {
    pub username: String,
    pub password: SecretString,
}

/// What a job's containers are, for the `job` context (`job.container`, `job.services`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JobContainers {
    /// The job container, for a job that runs in one.
    pub container: Option<ContainerInfo>,
    /// The services, by id.
    pub services: Vec<(String, ContainerInfo)>,
}

/// One running container, as the `job` context shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContainerInfo {
    pub id: String,
    pub network: String,
    /// Container port to host port (`job.services.<id>.ports`).
    pub ports: Vec<(String, String)>,
}

/// The folders of a job, as its processes see them.
#[derive(Clone, Debug)]
pub struct JobPaths {
    /// The workspace (`GITHUB_WORKSPACE`).
    pub workspace: JobPath,
    /// The job's temp folder (`RUNNER_TEMP`), emptied for every job.
    pub temp: JobPath,
    /// The tool cache (`RUNNER_TOOL_CACHE`).
    pub tool_cache: JobPath,
}

/// A regular file below a job folder and the SHA-256 of its content, as `hashFiles` needs it
/// when the engine cannot read the folder itself ([`JobRuntime::file_digests`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileDigest {
    /// Relative to the folder asked about, `/`-separated.
    pub path: String,
    pub sha256: [u8; 32],
}

/// One process to run.
#[derive(Clone, Debug)]
pub struct ExecSpec {
    /// The program and its arguments.
    pub argv: Vec<String>,
    /// The complete environment of the process: nothing else is inherited.
    pub env: Vec<(String, String)>,
    /// The working directory.
    pub working_dir: JobPath,
    /// Stop the process tree after this long.
    pub timeout: Option<Duration>,
}

/// Where the image of a container step comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImageSource {
    /// An image by reference (`alpine:3`, `docker://` stripped), pulled when it is missing,
    /// with the credentials the backend finds for its registry.
    Pull(String),
    /// Built from a Dockerfile: `context` is the build context (the action's folder, a
    /// folder of the job), `dockerfile` the Dockerfile's path relative to it. The backend
    /// builds it again only when the context's files change.
    Build {
        context: JobPath,
        dockerfile: String,
    },
}

/// A folder of the job mounted into a step's container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mount {
    /// The job's folder (made, empty, when it is not there yet).
    pub source: JobPath,
    /// Where the container sees it.
    pub target: String,
}

/// A step that runs in a container of its own (a Docker action, a `uses: docker://` step),
/// beside the job rather than in it: the container is removed when it ends, whatever ends it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerRun {
    pub image: ImageSource,
    /// Replaces the image's entrypoint.
    pub entrypoint: Option<String>,
    /// Replaces the image's command when not empty.
    pub args: Vec<String>,
    /// The complete environment the step sets (the image's own is kept under it).
    pub env: Vec<(String, String)>,
    /// The job's folders the container sees.
    pub mounts: Vec<Mount>,
    /// The working directory, as the container sees it.
    pub working_dir: String,
    /// Stop the container after this long.
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

/// How serious a line of a backend's set-up log is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetupLevel {
    Info,
    Warning,
}

/// The job's log while a backend prepares it (pulling an image, creating a network): what a
/// backend writes here shows in the job's log, masked by the engine.
pub trait SetupLog: Send {
    fn line(&mut self, level: SetupLevel, text: &str);
}

/// A set-up log that drops every line.
pub struct NoSetupLog;

impl SetupLog for NoSetupLog {
    fn line(&mut self, _: SetupLevel, _: &str) {}
}

/// What kind of failure a [`BackendError`] is, for callers that act on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The job asked for something this backend does not do (a container on the host).
    Unsupported,
    /// The registry refused the credentials, or the image does not exist.
    RegistryDenied,
    /// The engine or daemon behind the backend does not answer.
    Unavailable,
    /// Something the job must reach (the forge, a [`Reach`] not optional) cannot be reached
    /// from where it runs.
    Unreachable,
    /// The job was cancelled or ran out of time while this was going on.
    Cancelled,
    /// Anything else: a file that cannot be written, a process that cannot start.
    Other,
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
    /// A file of the job could not be read or written.
    #[error("cannot {action} {path}: {source}")]
    File {
        action: &'static str,
        path: JobPath,
        source: std::io::Error,
    },
    /// A file of the job is larger than the engine reads.
    #[error("{path} is larger than {limit} bytes")]
    FileTooLarge { path: JobPath, limit: u64 },
    /// A path the engine gave is not one of the job's.
    #[error("{0} is not a path of this job")]
    NotInJob(String),
    /// Cleaning up after the job failed; what could be removed was.
    #[error("cleaning up the job: {0}")]
    Cleanup(String),
    /// The working directory is not there (a step's `working-directory` that does not exist).
    #[error("the working directory {0} does not exist")]
    WorkingDirectory(JobPath),
    /// An empty `argv`.
    #[error("nothing to run: the command is empty")]
    EmptyCommand,
    /// The job asks for something this backend cannot do.
    #[error("{0}")]
    Unsupported(String),
    /// Start was cancelled (the job was cancelled or ran out of time).
    #[error("cancelled while {0}")]
    Cancelled(String),
    /// An image could not be pulled: the registry refused the credentials, or has no such image.
    #[error("{0}")]
    Registry(String),
    /// What the job must reach (the forge) cannot be reached from where it runs; says from
    /// where and what to change.
    #[error("{0}")]
    Unreachable(String),
    /// A step's own container could not be made: its image did not build, the container
    /// could not be created. Says which and why.
    #[error("{0}")]
    Container(String),
}

impl BackendError {
    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            BackendError::Unsupported(_) => ErrorKind::Unsupported,
            BackendError::Cancelled(_) => ErrorKind::Cancelled,
            BackendError::Registry(_) => ErrorKind::RegistryDenied,
            BackendError::Unreachable(_) => ErrorKind::Unreachable,
            _ => ErrorKind::Other,
        }
    }
}

/// What [`Backend::reap`] removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reaped {
    /// One line per thing removed (`folder /x/y`, `container abc123`).
    pub removed: Vec<String>,
}

/// A place to run jobs.
pub trait Backend: Send + Sync {
    /// Prepares a job's folders (and, for a container backend, its containers), logging what
    /// it does to `log`. Stops with [`BackendError::Cancelled`] when `cancel` fires (the job was
    /// cancelled or its `timeout-minutes` ran out), leaving nothing behind.
    fn start<'a>(
        &'a self,
        spec: JobSpec,
        log: &'a mut dyn SetupLog,
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<Box<dyn JobRuntime>, BackendError>>;

    /// The paths every job of this backend gets, when they are known before [`Backend::start`]
    /// (a container backend's fixed ones). The job's `container:`, `services:` and
    /// `timeout-minutes` decide what `start` does, so they are evaluated before it: this is
    /// where they read `github.workspace` and `runner.temp` from. `None` (the host, whose job
    /// folder is made by `start`) leaves those values out until the job has started.
    fn paths_ahead(&self) -> Option<JobPaths> {
        None
    }

    /// Removes what jobs labelled with `owner` left behind (a runner that was killed), except
    /// the jobs this backend is running now.
    fn reap<'a>(
        &'a self,
        owner: &'a [(String, String)],
    ) -> BoxFuture<'a, Result<Reaped, BackendError>> {
        let _ = owner;
        Box::pin(async { Ok(Reaped::default()) })
    }
}

/// How a job runs `node` (see [`JobRuntime::node`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeCommand {
    /// The program and its leading arguments, as the job's processes see them.
    pub argv: Vec<String>,
    /// Said in the step's log when the node is not what the action asked for (another major
    /// version), so that a surprise has a reason next to it.
    pub notice: Option<String>,
}

impl NodeCommand {
    /// `node`, from the job's `PATH`.
    pub fn on_path() -> NodeCommand {
        NodeCommand {
            argv: vec!["node".to_owned()],
            notice: None,
        }
    }
}

/// A prepared job: run processes in it, reach its files, then clean it up.
pub trait JobRuntime: Send + Sync {
    /// The job's folders, as its processes see them.
    fn paths(&self) -> &JobPaths;

    /// The environment every step starts from: the runner's own for the host backend, the
    /// image's for a container (the engine adds the job's variables on top).
    fn base_env(&self) -> &[(String, String)];

    /// How the job reaches `url`, the URL of one of [`JobSpec::reach`]: the same URL on the host; for a
    /// container, an address it can reach when the runner's one is its own loopback.
    fn address(&self, url: &str) -> String {
        url.to_owned()
    }

    /// The job's containers, for the `job` context.
    fn containers(&self) -> JobContainers {
        JobContainers::default()
    }

    /// Runs one process to its end, sending its output to `sink` as it comes. On timeout or
    /// cancellation the whole process tree is stopped (interrupt, then kill shortly after) and
    /// the call returns within about two seconds.
    fn exec<'a>(
        &'a self,
        spec: ExecSpec,
        sink: &'a mut dyn OutputSink,
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<ExecEnd, BackendError>>;

    /// Runs a step in a container of its own (see [`ContainerRun`]): the image pulled or
    /// built first (what that says goes to `sink` too), the container on the job's network
    /// when the job has one, its output streamed to `sink`, and the container removed when it
    /// ends, times out or is cancelled. A backend that cannot run containers answers
    /// [`BackendError::Unsupported`] (the default).
    fn run_container<'a>(
        &'a self,
        run: ContainerRun,
        sink: &'a mut dyn OutputSink,
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<ExecEnd, BackendError>> {
        let _ = (run, sink, cancel);
        Box::pin(async {
            Err(BackendError::Unsupported(
                "this job's backend cannot run containers; run the job in a container (a \
                 `docker://` label) or on a host whose runner reaches Docker"
                    .to_owned(),
            ))
        })
    }

    /// Whether `program` is on `path` (a `PATH` value as the job's processes see it), for
    /// picking a step's default shell; `None` when the backend cannot tell without running
    /// something (the engine then assumes it is not there).
    fn has_program(&self, program: &str, path: &str) -> Option<bool> {
        let _ = (program, path);
        None
    }

    /// The `node` a JavaScript action of `runs.using: node{major}` runs with in this job: the
    /// command line the script's path is appended to. The default is the `node` on the job's
    /// `PATH`; a container job whose image has none gets one the runner lends it.
    fn node(&self, major: u32) -> BoxFuture<'_, Result<NodeCommand, BackendError>> {
        let _ = major;
        Box::pin(async { Ok(NodeCommand::on_path()) })
    }

    /// Writes `contents` to the job's file `path`, making its folder if needed. `replaces`
    /// names a file of the job that is no longer needed and may be reused for this one (the
    /// host backend renames it rather than creating a new file).
    fn write_file<'a>(
        &'a self,
        path: &'a JobPath,
        contents: &'a [u8],
        replaces: Option<&'a JobPath>,
    ) -> BoxFuture<'a, Result<(), BackendError>>;

    /// Reads the job's file `path`: `None` when there is none, [`BackendError::FileTooLarge`]
    /// when it holds more than `limit` bytes (a step controls the file and must not make the
    /// runner read gigabytes into memory).
    fn read_file<'a>(
        &'a self,
        path: &'a JobPath,
        limit: u64,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, BackendError>>;

    /// Makes each file exist and be empty (the file-command files before every step). Files
    /// already empty are left alone.
    fn empty_files<'a>(&'a self, paths: &'a [JobPath]) -> BoxFuture<'a, Result<(), BackendError>>;

    /// Where the engine can read the job's folder `path` on this machine, when it can (the
    /// host backend, a container whose workspace is a bind mount): for `hashFiles` and local
    /// actions' `action.yml`. `None` when the job's files are not on this machine.
    fn host_view(&self, path: &JobPath) -> Option<HostPath>;

    /// Every regular file below the job's folder `path` with the SHA-256 of its content (a
    /// symbolic link to a file inside the folder counts as that file), for `hashFiles` where
    /// [`JobRuntime::host_view`] gives nothing: a container whose folders live in the daemon.
    /// `Ok(None)` when the backend cannot tell (the default); an empty list when the folder is
    /// not there.
    fn file_digests<'a>(
        &'a self,
        path: &'a JobPath,
    ) -> BoxFuture<'a, Result<Option<Vec<FileDigest>>, BackendError>> {
        let _ = path;
        Box::pin(async { Ok(None) })
    }

    /// How the job sees the host folder `folder` (an action fetched by the runner): the same
    /// path on the host, a copy in the container.
    fn expose<'a>(&'a self, folder: &'a HostPath) -> BoxFuture<'a, Result<JobPath, BackendError>>;

    /// Stops every process the job started that is still running, and removes the job's
    /// folders and anything else it created (a backend may instead keep the folders for its
    /// next job, which gets them as fresh as new ones).
    fn finish(self: Box<Self>) -> BoxFuture<'static, Result<(), BackendError>>;
}
