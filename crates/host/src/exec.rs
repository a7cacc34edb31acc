//! Running one process: spawn, stream, stop.
//!
//! Each process runs in a process group of its own so that the whole tree a step starts can be
//! signalled at once. Its output is read in chunks as it comes and passed on unsplit.
//!
//! Ending:
//!
//! - **Normal exit.** Once the main process has exited, the pipes are drained until EOF, but for
//!   a short grace only: a background process (`server &`) inherits the pipes and may hold them
//!   open for the rest of the job. GitHub lets such processes live until the job ends, so they
//!   must neither block the step nor die of `SIGPIPE` when they write again; the pipes are
//!   handed to a task that reads and discards until EOF (which comes when `finish` kills them).
//! - **Timeout or cancellation.** `SIGINT` to the group (what Ctrl-C does: shells and most
//!   tools shut down cleanly), then `SIGKILL` to the group once the main process exits or the
//!   interrupt grace runs out, whichever is first.
//! - **Dropped mid-run** (the engine's future was cancelled) **or an error.** A guard sends
//!   `SIGKILL` to the group on drop. `kill_on_drop` alone would only kill the direct child.

use std::collections::HashSet;
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::{ChildStderr, ChildStdout, Command};
use tokio::task::JoinHandle;
use tokio::time::{sleep_until, Instant};

use super::procs::{self, SIGINT, SIGKILL};
use hearth_backend::{BackendError, CancellationToken, ExecEnd, ExecSpec, OutputSink, Stream};

/// The variable that marks a job's processes (as in GitHub's runner).
pub(crate) const TRACKING_VAR: &str = "RUNNER_TRACKING_ID";

/// Size of each read from a pipe: large enough that 10 MB of output is a few hundred reads.
const CHUNK: usize = 64 * 1024;

/// How long the stopping and draining steps wait.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Graces {
    /// After `SIGINT`, how long before `SIGKILL`.
    pub interrupt: Duration,
    /// After the main process exits, how long to keep reading pipes that stay open.
    pub drain: Duration,
}

/// The job-wide state an exec reads and records into.
pub(crate) struct Tracker<'a> {
    /// The value of `RUNNER_TRACKING_ID` for this job.
    pub tracking_id: &'a str,
    /// Every process group this job created; `finish` kills what is left in them.
    pub groups: &'a Mutex<HashSet<i32>>,
    /// Tasks still discarding the output of background processes; `finish` aborts them.
    pub drains: &'a Mutex<Vec<JoinHandle<()>>>,
}

/// Kills a process group with `SIGKILL` when dropped, unless disarmed.
struct GroupGuard {
    pgid: i32,
    armed: bool,
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if self.armed {
            if let Err(e) = procs::kill_group(self.pgid, SIGKILL) {
                tracing::warn!(pgid = self.pgid, error = %e, "cannot kill an abandoned process group");
            }
        }
    }
}

/// Why the process is being stopped, and when the interrupt turns into a kill.
struct Stopping {
    why: ExecEnd,
    kill_at: Option<Instant>,
}

/// A program found on a `PATH` for the engine (`has_program`), while it prepared a step.
#[derive(Debug)]
pub(crate) struct Lookup {
    pub program: String,
    pub path: String,
    pub found: std::path::PathBuf,
}

/// `program` found on the `PATH` of `env` when it is a bare name. Handing the OS an absolute
/// path lets the standard library start it with `posix_spawn`; with a bare name and a cleared
/// environment it falls back to fork and searches `PATH` in the child, which costs about a third
/// of a millisecond per step. A name not found is left as it is, for the spawn error to name.
///
/// `known` is the engine's lookup for this step, if any: when it was of this program on this
/// `PATH`, its answer is taken rather than searching again (a search is one `stat` per folder
/// of `PATH`, and the default shell is looked up for every step).
fn resolve(program: &str, env: &[(String, String)], known: Option<Lookup>) -> std::path::PathBuf {
    if program.contains('/') {
        return program.into();
    }
    let path = env.iter().rev().find(|(name, _)| name == "PATH");
    if let (Some(known), Some((_, path))) = (known, path) {
        if known.program == program && known.path == *path {
            return known.found;
        }
    }
    path.and_then(|(_, path)| find_on_path(program, path))
        .unwrap_or_else(|| program.into())
}

/// The first executable file named `program` in the folders of `path`, as a shell finds it.
pub(crate) fn find_on_path(program: &str, path: &str) -> Option<std::path::PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    std::env::split_paths(path)
        .map(|dir| dir.join(program))
        .find(|candidate| {
            std::fs::metadata(candidate)
                .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
        })
}

/// Runs `spec` to its end; see the module documentation.
pub(crate) async fn run(
    spec: ExecSpec,
    known: Option<Lookup>,
    tracker: Tracker<'_>,
    graces: Graces,
    sink: &mut dyn OutputSink,
    cancel: &CancellationToken,
) -> Result<ExecEnd, BackendError> {
    let (program, args) = spec.argv.split_first().ok_or(BackendError::EmptyCommand)?;
    // Nothing is started for a job that is already cancelled.
    if cancel.is_cancelled() {
        return Ok(ExecEnd::Cancelled);
    }
    let lost = |source: io::Error| BackendError::Wait {
        program: program.clone(),
        source,
    };

    let working_dir = std::path::Path::new(spec.working_dir.as_str());
    let mut command = Command::new(resolve(program, &spec.env, known));
    command
        .args(args)
        .env_clear()
        // The job's tracking id wins over one in `env`: a step cannot opt its shell out of
        // tracking through the engine (a process may still change its own environment, as on
        // GitHub, but then the process-group sweep catches it unless it also leaves the group).
        .envs(
            spec.env
                .iter()
                .filter(|(name, _)| name != TRACKING_VAR)
                .map(|(name, value)| (name.as_str(), value.as_str())),
        )
        .env(TRACKING_VAR, tracker.tracking_id)
        .current_dir(working_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    // Said plainly: a spawn error alone would blame the program, not the folder.
    if !working_dir.is_dir() {
        return Err(BackendError::WorkingDirectory(spec.working_dir.clone()));
    }
    let mut child = command.spawn().map_err(|source| BackendError::Spawn {
        program: program.clone(),
        source,
    })?;
    let pgid = child
        .id()
        .and_then(|pid| i32::try_from(pid).ok())
        .ok_or_else(|| lost(io::Error::other("the started process has no pid")))?;
    // From here on the group dies with this future unless it ends normally.
    let mut guard = GroupGuard { pgid, armed: true };
    lock(tracker.groups).insert(pgid);

    let mut stdout = child
        .stdout
        .take()
        .ok_or_else(|| lost(io::Error::other("no stdout pipe")))?;
    let mut stderr = child
        .stderr
        .take()
        .ok_or_else(|| lost(io::Error::other("no stderr pipe")))?;
    let mut out_buf = vec![0u8; CHUNK];
    let mut err_buf = vec![0u8; CHUNK];
    let (mut out_open, mut err_open) = (true, true);

    let deadline = spec.timeout.map(|t| Instant::now() + t);
    let mut stopping: Option<Stopping> = None;
    // The main process's status, and until when to drain after it.
    let mut exited: Option<(ExitStatus, Instant)> = None;

    let status = loop {
        if let Some((status, _)) = exited {
            if !out_open && !err_open {
                break status;
            }
        }
        let running = exited.is_none();
        let kill_at = stopping.as_ref().and_then(|s| s.kill_at);
        tokio::select! {
            read = stdout.read(&mut out_buf), if out_open => {
                match read {
                    Ok(0) => out_open = false,
                    Ok(n) => sink.output(Stream::Stdout, &out_buf[..n]),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(lost(e)),
                }
            }
            read = stderr.read(&mut err_buf), if err_open => {
                match read {
                    Ok(0) => err_open = false,
                    Ok(n) => sink.output(Stream::Stderr, &err_buf[..n]),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(lost(e)),
                }
            }
            status = child.wait(), if running => {
                let status = status.map_err(lost)?;
                if stopping.is_some() {
                    // The main process is gone; the rest of the tree goes now, not later.
                    signal_group(pgid, SIGKILL);
                }
                exited = Some((status, Instant::now() + graces.drain));
            }
            () = at(deadline), if running && stopping.is_none() && deadline.is_some() => {
                stopping = Some(interrupt(pgid, ExecEnd::TimedOut, graces));
            }
            () = cancel.cancelled(), if running && stopping.is_none() => {
                stopping = Some(interrupt(pgid, ExecEnd::Cancelled, graces));
            }
            () = at(kill_at), if running && kill_at.is_some() => {
                signal_group(pgid, SIGKILL);
                if let Some(s) = stopping.as_mut() {
                    s.kill_at = None;
                }
            }
            () = at(exited.map(|(_, until)| until)), if !running => {
                if let Some((status, _)) = exited {
                    break status;
                }
            }
        }
    };

    // What is still running in the group was started in the background on purpose; it lives
    // until `finish` (after a stop, the group has been killed already).
    guard.armed = false;
    discard_rest(
        out_open.then_some(stdout),
        err_open.then_some(stderr),
        tracker.drains,
    );

    Ok(match stopping {
        Some(s) => s.why,
        None => end_of(status).map_err(lost)?,
    })
}

/// Starts stopping the group: `SIGINT` now, `SIGKILL` after the grace.
fn interrupt(pgid: i32, why: ExecEnd, graces: Graces) -> Stopping {
    signal_group(pgid, SIGINT);
    Stopping {
        why,
        kill_at: Some(Instant::now() + graces.interrupt),
    }
}

/// Signals a group; a failure (only `EPERM` is possible for our own children) is logged, and
/// the process's end is still waited for.
fn signal_group(pgid: i32, signal: i32) {
    if let Err(e) = procs::kill_group(pgid, signal) {
        tracing::warn!(pgid, signal, error = %e, "cannot signal a process group");
    }
}

/// Waits until `when`, or forever for `None` (the `select!` arm is disabled then anyway).
async fn at(when: Option<Instant>) {
    match when {
        Some(when) => sleep_until(when).await,
        None => std::future::pending().await,
    }
}

/// How a process ended, from its wait status.
fn end_of(status: ExitStatus) -> io::Result<ExecEnd> {
    if let Some(code) = status.code() {
        Ok(ExecEnd::Exited(code))
    } else if let Some(signal) = status.signal() {
        Ok(ExecEnd::Signalled(signal))
    } else {
        Err(io::Error::other(format!("unexpected wait status {status}")))
    }
}

/// Keeps reading (and dropping) pipes that background processes still hold, so that their
/// writes neither block nor fail; the task ends at EOF or when `finish` aborts it.
fn discard_rest(
    stdout: Option<ChildStdout>,
    stderr: Option<ChildStderr>,
    drains: &Mutex<Vec<JoinHandle<()>>>,
) {
    if stdout.is_none() && stderr.is_none() {
        return;
    }
    let task = tokio::spawn(async move {
        tokio::join!(discard(stdout), discard(stderr));
    });
    let mut drains = lock(drains);
    drains.retain(|t| !t.is_finished());
    drains.push(task);
}

async fn discard(pipe: Option<impl AsyncRead + Unpin>) {
    let Some(mut pipe) = pipe else { return };
    let mut buf = vec![0u8; 8 * 1024];
    loop {
        match pipe.read(&mut buf).await {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

/// Locks a mutex; a panic elsewhere while holding it leaves plain data that is still usable.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
