//! A started job: its Pod, the steps run in the job container through exec, its files reached
//! through [`PodFiles`], and the Pod and its Secret deleted at the end.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use hearth_backend::{
    BackendError, BoxFuture, CancellationToken, ContainerInfo, ContainerRun, ExecEnd, ExecSpec,
    FileDigest, HostPath, JobContainers, JobPath, JobPaths, JobRuntime, OutputSink,
};

use crate::cleanup::JobObjects;
use crate::deferred::PREAMBLE_FAILED;
use crate::exec::{self, Ended, ExecError};
use crate::files::PodFiles;
use crate::pod::JOB_CONTAINER;

/// Where pid files of running steps go, so that a second exec can signal them.
pub const PID_DIR: &str = "/__w/.hearth";

/// Exit codes of the step wrapper that say it did not get to run the step.
const NO_COMMAND: i32 = 196;
const NO_PID_FILE: i32 = 198;
const NO_WORKDIR: i32 = 199;

/// How long a stopped step's output is still read while it is signalled.
const STOP_GRACE: Duration = Duration::from_secs(3);

pub struct PodRuntime {
    pub files: PodFiles,
    pub paths: JobPaths,
    pub base_env: Vec<(String, String)>,
    /// Whether the image has bash (`run:` steps' default shell then).
    pub has_bash: bool,
    pub containers: JobContainers,
    /// Deleted in `finish`, or in the background when the runtime is dropped without it.
    pub objects: Option<JobObjects>,
    pub steps: AtomicUsize,
    /// The job's files known to be empty (the file-command files between steps).
    pub empty: crate::empties::KnownEmpty,
    /// Host folders already copied into the Pod, and where.
    pub exposed: Mutex<HashMap<std::path::PathBuf, JobPath>>,
    /// The job's node for JavaScript actions: the image's, or the one the runner lends.
    pub node: crate::node::JobNode,
}

impl PodRuntime {
    async fn run(
        &self,
        spec: ExecSpec,
        sink: &mut dyn OutputSink,
        cancel: &CancellationToken,
    ) -> Result<ExecEnd, BackendError> {
        if spec.argv.is_empty() {
            return Err(BackendError::EmptyCommand);
        }
        let program = spec.argv[0].clone();
        let step = self.steps.fetch_add(1, Ordering::Relaxed);
        let pid_file = format!("{PID_DIR}/step-{step}.pid");
        // `env -i` gives the step exactly the environment the engine made. The command and its
        // environment come on stdin as a script of `set --` (an exec's arguments travel in its
        // request's URL, which the client caps at 64 KiB: a `toJSON(github)` in `env:` would not
        // fit), sourced and removed before the pid is written; the step's own stdin is
        // /dev/null. The writes held back (the step's script among them) are done first.
        let env_file = format!("{PID_DIR}/step-{step}.env");
        let mut command = String::from("set --");
        let words = ["env".to_owned(), "-i".to_owned()]
            .into_iter()
            .chain(spec.env.iter().map(|(k, v)| format!("{k}={v}")))
            .chain(spec.argv.iter().cloned());
        for word in words {
            command.push(' ');
            command.push_str(&shell_words::quote(&word));
        }
        command.push('\n');
        let wrapper = format!(
            r#"p=$1; w=$2; f=$3; head -c "$4" > "$f" && . "$f" || exit {NO_COMMAND}
rm -f "$f"; echo $$ > "$p" || exit {NO_PID_FILE}
cd "$w" 2>/dev/null || exit {NO_WORKDIR}
exec "$@" < /dev/null"#
        );
        let args = [
            pid_file.clone(),
            spec.working_dir.as_str().to_owned(),
            env_file,
            command.len().to_string(),
        ];
        let argv = self.files.sh_argv(&wrapper, "hearth-step", args);
        let process = exec::start(&self.files.api, &self.files.pod, JOB_CONTAINER, &argv, true)
            .await
            .map_err(|e| lost(&program, e))?;
        let timed_out = AtomicBool::new(false);
        let stop = async {
            tokio::select! {
                () = cancel.cancelled() => {}
                () = sleep_or_never(spec.timeout) => timed_out.store(true, Ordering::Relaxed),
            }
        };
        let signal = self.signal(&pid_file);
        let mut forward = |stream, chunk: &[u8]| sink.output(stream, chunk);
        let ended = exec::stream(
            process,
            Some(command.as_bytes()),
            &mut forward,
            stop,
            signal,
            STOP_GRACE,
        )
        .await
        .map_err(|e| lost(&program, e))?;
        match ended {
            Ended::Stopped if timed_out.load(Ordering::Relaxed) => Ok(ExecEnd::TimedOut),
            Ended::Stopped => Ok(ExecEnd::Cancelled),
            Ended::Exited(NO_WORKDIR) if !self.is_dir(&spec.working_dir).await => {
                Err(BackendError::WorkingDirectory(spec.working_dir))
            }
            // The wrapper's own codes, unless the step ran (its pid file is there) and they are
            // the step's.
            Ended::Exited(code @ (NO_COMMAND | NO_PID_FILE | PREAMBLE_FAILED))
                if !self.is_file(&pid_file).await =>
            {
                let what = match code {
                    NO_PID_FILE => format!("cannot write {pid_file} in the job container"),
                    NO_COMMAND => {
                        format!("cannot write the step's command to {PID_DIR} in the job container")
                    }
                    _ => "cannot write the step's files in the job container".to_owned(),
                };
                Err(lost(&program, ExecError::Stream(what)))
            }
            Ended::Exited(code) => Ok(ExecEnd::Exited(code)),
        }
    }

    /// Stops the step whose pid is in `pid_file` and its process group: SIGINT, then SIGKILL
    /// once a second has passed with it still there.
    async fn signal(&self, pid_file: &str) {
        let script = r#"p=$(cat "$1" 2>/dev/null) || exit 0
sig() { kill -"$1" -- -"$p" 2>/dev/null || kill -"$1" "$p" 2>/dev/null; pkill -"$1" -P "$p" 2>/dev/null; }
sig INT
i=0
while kill -0 "$p" 2>/dev/null && [ $i -lt 10 ]; do sleep 0.1; i=$((i+1)); done
sig KILL
exit 0"#;
        let argv = [
            "sh".to_owned(),
            "-c".to_owned(),
            script.to_owned(),
            "hearth-stop".to_owned(),
            pid_file.to_owned(),
        ];
        let api = &self.files.api;
        if let Err(e) = exec::capture(api, &self.files.pod, JOB_CONTAINER, &argv, None, 0).await {
            tracing::warn!(pod = %self.files.pod, "cannot signal a step: {e}");
        }
    }

    async fn is_dir(&self, path: &JobPath) -> bool {
        self.test("-d", path.as_str()).await
    }

    async fn is_file(&self, path: &str) -> bool {
        self.test("-f", path).await
    }

    async fn test(&self, option: &str, path: &str) -> bool {
        let argv = ["test".to_owned(), option.to_owned(), path.to_owned()];
        let api = &self.files.api;
        matches!(
            exec::capture(api, &self.files.pod, JOB_CONTAINER, &argv, None, 0).await,
            Ok(c) if c.code == 0
        )
    }
}

fn lost(program: &str, error: ExecError) -> BackendError {
    BackendError::Wait {
        program: program.to_owned(),
        source: std::io::Error::other(format!("in the job's Pod: {error}")),
    }
}

async fn sleep_or_never(timeout: Option<Duration>) {
    match timeout {
        Some(timeout) => tokio::time::sleep(timeout).await,
        None => std::future::pending().await,
    }
}

impl JobRuntime for PodRuntime {
    fn paths(&self) -> &JobPaths {
        &self.paths
    }

    fn base_env(&self) -> &[(String, String)] {
        &self.base_env
    }

    fn containers(&self) -> JobContainers {
        self.containers.clone()
    }

    fn has_program(&self, program: &str, _path: &str) -> Option<bool> {
        (program == "bash").then_some(self.has_bash)
    }

    fn exec<'a>(
        &'a self,
        spec: ExecSpec,
        sink: &'a mut dyn OutputSink,
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<ExecEnd, BackendError>> {
        self.empty.ran();
        Box::pin(self.run(spec, sink, cancel))
    }

    fn run_container<'a>(
        &'a self,
        run: ContainerRun,
        sink: &'a mut dyn OutputSink,
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<ExecEnd, BackendError>> {
        self.empty.ran();
        let n = self.steps.fetch_add(1, Ordering::Relaxed);
        Box::pin(crate::step_pod::run(&self.files, n, run, sink, cancel))
    }

    fn node(&self, major: u32) -> BoxFuture<'_, Result<hearth_backend::NodeCommand, BackendError>> {
        Box::pin(self.node.command(&self.files, major))
    }

    fn write_file<'a>(
        &'a self,
        path: &'a JobPath,
        contents: &'a [u8],
        _replaces: Option<&'a JobPath>,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        self.empty.written(path);
        Box::pin(async move {
            if self.files.deferred.write(path, contents) {
                return Ok(());
            }
            self.files.write(path, contents).await
        })
    }

    fn read_file<'a>(
        &'a self,
        path: &'a JobPath,
        limit: u64,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, BackendError>> {
        Box::pin(async move {
            if self.empty.is_empty(&self.files, path).await? {
                return Ok(Some(Vec::new()));
            }
            self.files.read(path, limit).await
        })
    }

    fn empty_files<'a>(&'a self, paths: &'a [JobPath]) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async move {
            // The engine empties them before each step, and once more at the job's start.
            if self.empty.are_empty(paths) {
                return Ok(());
            }
            if !self.files.deferred.empty(paths) {
                self.files.empty(paths).await?;
            }
            self.empty.emptied(paths);
            Ok(())
        })
    }

    fn host_view(&self, _path: &JobPath) -> Option<HostPath> {
        None
    }

    fn file_digests<'a>(
        &'a self,
        path: &'a JobPath,
    ) -> BoxFuture<'a, Result<Option<Vec<FileDigest>>, BackendError>> {
        Box::pin(async move { self.files.digests(path).await.map(Some) })
    }

    fn expose<'a>(&'a self, folder: &'a HostPath) -> BoxFuture<'a, Result<JobPath, BackendError>> {
        Box::pin(async move {
            let known = self
                .exposed
                .lock()
                .map_err(|_| BackendError::Cleanup("a lock was poisoned".to_owned()))?
                .get(folder.as_path())
                .cloned();
            if let Some(path) = known {
                return Ok(path);
            }
            let n = self
                .exposed
                .lock()
                .map(|m| m.len())
                .map_err(|_| BackendError::Cleanup("a lock was poisoned".to_owned()))?;
            let target = JobPath::new(format!("{}/_actions/{n}", crate::pod::WORK_DIR));
            self.files.upload(folder, &target).await?;
            if let Ok(mut exposed) = self.exposed.lock() {
                exposed.insert(folder.as_path().to_owned(), target.clone());
            }
            Ok(target)
        })
    }

    fn finish(mut self: Box<Self>) -> BoxFuture<'static, Result<(), BackendError>> {
        let objects = self.objects.take();
        Box::pin(async move {
            match objects {
                Some(objects) => objects.delete().await.map_err(BackendError::Cleanup),
                None => Ok(()),
            }
        })
    }
}

impl Drop for PodRuntime {
    fn drop(&mut self) {
        if let Some(objects) = self.objects.take() {
            objects.delete_in_background();
        }
    }
}

/// The `job` context's view of a job Pod.
pub fn containers(
    pod: &str,
    services: &[(String, hearth_backend::ContainerSpec)],
) -> JobContainers {
    JobContainers {
        container: Some(ContainerInfo {
            id: pod.to_owned(),
            network: String::new(),
            ports: Vec::new(),
        }),
        services: services
            .iter()
            .map(|(id, spec)| {
                (
                    id.clone(),
                    ContainerInfo {
                        id: format!("{pod}/{}", crate::pod::service_container_name(id)),
                        network: String::new(),
                        ports: crate::pod::service_ports(spec),
                    },
                )
            })
            .collect(),
    }
}
