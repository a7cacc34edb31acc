//! `hearth daemon`: declare the runner's labels, fetch tasks, run them, report them, and shut
//! down without losing a job's final state.
//!
//! Start-up: before the first task is fetched, every backend removes what this runner's jobs
//! left when it last stopped without cleaning up (killed with SIGKILL, a power loss): job
//! folders and their processes, found by the runner's name among the jobs' owner labels
//! ([`reap_leftovers`]). Before that, the tasks it was running then are finalized with the
//! forge from their journals (`hearth_forge::finalize_journals`): their rows, the steps that
//! ended, and a failure saying the runner stopped.
//!
//! Shutdown: the first SIGINT/SIGTERM stops fetching and lets running jobs go on for
//! `runner.shutdown_timeout`; then they are cancelled (their `always()` and post steps still run
//! and their final state is still reported). A second signal cancels them at once, a third
//! stops their `always()` steps too.

mod caller;
pub mod disk_guard;
pub mod observe;
mod resident;
pub mod task;

use std::cell::RefCell;
use std::collections::HashSet;
use std::process::ExitCode;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use hearth_forge::proto::runner::DeclareRequest;
use hearth_forge::{poll_with, Client, PollError, PollHooks, PollerOptions, RpcError};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::route::Backends;
use disk_guard::{Disk, DiskGuard};

pub use task::{TaskRuntime, TaskStop, RUNNER_LABEL, TASK_LABEL};

/// What the daemon tells the forge, and how it shuts down.
pub struct DaemonOptions {
    pub poller: PollerOptions,
    pub shutdown_timeout: Duration,
    /// Label names (the schemes stay here).
    pub label_names: Vec<String>,
    pub version: String,
    /// The disk guard (`health_check.*`): the work folder whose disk it watches (Docker's data
    /// root is asked of the backends), and its thresholds in MB; a minimum of 0 turns it off.
    pub work_folder: std::path::PathBuf,
    pub min_free_disk_space_mb: u64,
    pub resume_free_disk_space_mb: u64,
}

/// What this runner supports beyond the base protocol: `cancelling` means a job cancelled in
/// the UI gets to run its post steps before it reports (new Gitea).
const CAPABILITIES: &[&str] = &["cancelling"];

/// How long the disk guard waits, at start, for a backend to say where its data is.
const DATA_ROOT_PATIENCE: Duration = Duration::from_secs(10);

/// How often the daemon looks for leftovers of its jobs besides at start.
const REAP_INTERVAL: Duration = Duration::from_secs(15 * 60);

/// Why the daemon stopped or could not start.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(
        "the forge no longer knows this runner (deleted, or its token is wrong: the .runner \
         file is not its own); register it again: {0}"
    )]
    Unregistered(#[source] RpcError),
    #[error("stopped before the forge answered")]
    Stopped,
    #[error("the forge refused the runner's declaration: {0}")]
    Declare(#[source] RpcError),
    #[error(transparent)]
    Poll(PollError),
}

/// The forge's capabilities, after declaring this runner's labels and version. An old forge
/// without `Declare` is fine: it keeps the labels given at registration.
pub async fn declare(
    client: &Client,
    options: &DaemonOptions,
    shutdown: &CancellationToken,
) -> Result<Vec<String>, DaemonError> {
    let request = declare_request(&options.label_names, &options.version);
    let mut attempt = 0u32;
    loop {
        match client.declare(&request).await {
            Ok(declared) => {
                tracing::info!(
                    "declared labels {:?} to the forge{}",
                    options.label_names,
                    if declared.capabilities.is_empty() {
                        String::new()
                    } else {
                        format!(" (it supports {})", declared.capabilities.join(", "))
                    }
                );
                return Ok(declared.capabilities);
            }
            Err(e) if e.is_unimplemented() => {
                tracing::warn!(
                    "the forge is too old to take the runner's labels at start-up (Declare); \
                     it keeps those given at registration"
                );
                return Ok(Vec::new());
            }
            Err(e) if e.is_unregistered() => return Err(DaemonError::Unregistered(e)),
            Err(e) if e.is_transient() => {
                attempt += 1;
                let wait = Duration::from_secs(1 << attempt.min(5));
                tracing::warn!("cannot reach the forge, trying again in {wait:?}: {e}");
                tokio::select! {
                    _ = shutdown.cancelled() => return Err(DaemonError::Stopped),
                    _ = tokio::time::sleep(wait) => {}
                }
            }
            Err(e) => return Err(DaemonError::Declare(e)),
        }
    }
}

/// What the daemon declares: its version, its label names and [`CAPABILITIES`]. `hearth doctor`
/// sends the same, so that its check changes nothing on the forge.
pub fn declare_request(label_names: &[String], version: &str) -> DeclareRequest {
    DeclareRequest {
        version: version.to_owned(),
        labels: label_names.to_vec(),
        capabilities: CAPABILITIES.iter().map(|c| c.to_string()).collect(),
    }
}

/// Fetches and runs tasks until a signal (or, with `once`, one task) ends it. Call it inside a
/// [`tokio::task::LocalSet`]: jobs run as local tasks (the engine's futures stay on one thread,
/// which is all a runner waiting on processes and the network needs).
pub async fn run(
    client: Client,
    runtime: TaskRuntime,
    options: DaemonOptions,
    shutdown: CancellationToken,
    stop: TaskStop,
) -> Result<ExitCode, DaemonError> {
    // A signal during the reap stops it (a folder half done is finished next time) and the
    // poll below returns at once.
    if let Some(journals) = &runtime.reporter.journal {
        hearth_forge::finalize_journals(&client, journals, &shutdown).await;
    }
    tokio::select! {
        () = reap_leftovers(&runtime.backends, &runtime.runner_uuid) => {}
        () = shutdown.cancelled() => {}
    }
    let metrics = runtime.metrics.clone();
    let hooks = DaemonHooks {
        guard: disk_guard(&runtime, &options).await,
        metrics: metrics.clone(),
    };
    // Readiness ends with the first signal, not when the poll loop notices it.
    let _draining = metrics.clone().map(|metrics| {
        let shutdown = shutdown.clone();
        AbortOnDrop(tokio::task::spawn_local(async move {
            shutdown.cancelled().await;
            metrics.health.draining();
        }))
    });
    if let Some(metrics) = &metrics {
        metrics
            .capacity
            .set(i64::try_from(options.poller.capacity).unwrap_or(i64::MAX));
        metrics.health.declared();
    }
    let runtime = Arc::new(runtime);
    let mut running = JoinSet::new();
    // And then now and again: leftovers a crash of a job's own cleanup left (the backends
    // leave the jobs they run alone).
    let sweeper = {
        let backends = runtime.backends.clone();
        let uuid = runtime.runner_uuid.clone();
        tokio::task::spawn_local(async move {
            loop {
                tokio::time::sleep(REAP_INTERVAL).await;
                reap_leftovers(&backends, &uuid).await;
            }
        })
    };
    // Start-up is over: its code need not stay resident.
    resident::release_program_pages();
    // The ids of the tasks running now: a forge recovering a lost answer (Forgejo's request
    // key) may hand out a task again, which must not run twice.
    let active: Rc<RefCell<HashSet<i64>>> = Rc::default();
    let polled = poll_with(&client, &options.poller, &shutdown, &hooks, |task, slot| {
        let id = task.id;
        if !active.borrow_mut().insert(id) {
            tracing::warn!("task {id} was handed out again while it runs here; ignored");
            return;
        }
        tracing::info!("task {id} received");
        let runtime = runtime.clone();
        let stop = stop.clone();
        let active = active.clone();
        running.spawn_local(async move {
            let result = task::run_task(runtime, task, stop).await;
            drop(slot);
            tracing::info!("task {id} finished: {}", result.as_str_name());
            active.borrow_mut().remove(&id);
            if active.borrow().is_empty() {
                // Idle again: the jobs' code (engine, masking) need not stay resident.
                resident::release_program_pages();
            }
        });
    })
    .await;
    // No more jobs are taken, whatever ended the loop (`--once`, an error).
    if let Some(metrics) = &metrics {
        metrics.health.draining();
    }

    if !running.is_empty() {
        if shutdown.is_cancelled() && !stop.cancel.is_cancelled() {
            tracing::info!(
                "waiting up to {:?} for {} running job(s)",
                options.shutdown_timeout,
                running.len()
            );
            let drained = tokio::time::timeout(options.shutdown_timeout, async {
                tokio::select! {
                    _ = join_all(&mut running) => {}
                    _ = stop.cancel.cancelled() => {}
                }
            })
            .await;
            if drained.is_err() {
                tracing::info!("cancelling the running job(s)");
            }
            stop.cancel.cancel();
        }
        // Cancelled or not, every job reports its final state before the daemon exits.
        join_all(&mut running).await;
    }
    sweeper.abort();
    match polled {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(PollError::Unregistered(e)) => Err(DaemonError::Unregistered(e)),
        Err(e) => Err(DaemonError::Poll(e)),
    }
}

/// Asks every backend to remove what jobs of the runner `runner` (its uuid) left behind, logging
/// what went. A failure is logged and the daemon goes on: leftovers cost disk space and
/// perhaps a stray process, not the jobs to come.
pub async fn reap_leftovers(backends: &Backends, runner: &str) {
    let owner = [(RUNNER_LABEL.to_owned(), runner.to_owned())];
    for backend in backends.all() {
        match backend.reap(&owner).await {
            Ok(reaped) => {
                for line in reaped.removed {
                    tracing::info!("removed what an earlier run left: {line}");
                }
            }
            Err(e) => tracing::warn!("cannot remove what earlier runs left behind: {e}"),
        }
    }
}

/// The disk guard of `options`, watching the work folder and the backends' data roots.
async fn disk_guard(runtime: &TaskRuntime, options: &DaemonOptions) -> Option<DiskGuard> {
    if options.min_free_disk_space_mb == 0 {
        return None;
    }
    let mut disks = vec![Disk {
        name: "work",
        path: options.work_folder.clone(),
    }];
    for backend in runtime.backends.all() {
        // A Docker that does not answer soon is not watched, rather than holding up the start.
        let root = tokio::time::timeout(DATA_ROOT_PATIENCE, backend.data_root()).await;
        if let Ok(Some(root)) = root {
            if !disks.iter().any(|d| d.path == root) {
                disks.push(Disk {
                    name: "docker",
                    path: root,
                });
            }
        }
    }
    DiskGuard::new(
        disks,
        options.min_free_disk_space_mb,
        options.resume_free_disk_space_mb,
        runtime.backends.clone(),
        vec![(RUNNER_LABEL.to_owned(), runtime.runner_uuid.clone())],
        runtime.metrics.clone(),
    )
}

/// What the poll loop is gated by (the disk guard) and tells (the health's heartbeat).
struct DaemonHooks {
    guard: Option<DiskGuard>,
    metrics: Option<Arc<hearth_metrics::Metrics>>,
}

impl PollHooks for DaemonHooks {
    fn before_fetch(&self) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + '_>> {
        Box::pin(async move {
            if let Some(guard) = &self.guard {
                guard.wait_for_space().await;
            }
        })
    }

    fn round(&self) {
        if let Some(metrics) = &self.metrics {
            metrics.health.beat();
        }
    }

    fn waiting(&self, waiting: bool) {
        if let Some(metrics) = &self.metrics {
            metrics.health.waiting(waiting);
        }
    }
}

/// A spawned task that ends when its handle is dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn join_all(running: &mut JoinSet<()>) {
    while let Some(joined) = running.join_next().await {
        if let Err(e) = joined {
            tracing::error!("a task crashed: {e}");
        }
    }
}

/// First signal: stop fetching (`shutdown`); second: cancel the jobs; third: force them.
pub fn watch_signals(shutdown: CancellationToken, stop: TaskStop) -> tokio::task::JoinHandle<()> {
    crate::system::on_interrupts(move |received| match received {
        1 => {
            tracing::info!("stopping: no new jobs (again to cancel the running ones)");
            shutdown.cancel();
        }
        2 => {
            tracing::info!("cancelling the running jobs");
            stop.cancel.cancel();
        }
        _ => stop.force.cancel(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth_backend::{
        Backend, BackendError, BoxFuture, CancellationToken as Token, JobRuntime, JobSpec, Reaped,
        SetupLog,
    };
    use std::sync::Mutex;

    /// A backend that notes what it was asked to reap, and answers `reaped`.
    struct Reaper {
        asked: Mutex<Vec<Vec<(String, String)>>>,
        fails: bool,
    }

    impl Backend for Reaper {
        fn start<'a>(
            &'a self,
            _: JobSpec,
            _: &'a mut dyn SetupLog,
            _: &'a Token,
        ) -> BoxFuture<'a, Result<Box<dyn JobRuntime>, BackendError>> {
            Box::pin(async { Err(BackendError::Unsupported("no jobs here".into())) })
        }

        fn reap<'a>(
            &'a self,
            owner: &'a [(String, String)],
        ) -> BoxFuture<'a, Result<Reaped, BackendError>> {
            self.asked.lock().unwrap().push(owner.to_vec());
            let fails = self.fails;
            Box::pin(async move {
                if fails {
                    Err(BackendError::Cleanup("the disk is gone".into()))
                } else {
                    Ok(Reaped {
                        removed: vec!["folder /x".into()],
                    })
                }
            })
        }
    }

    #[tokio::test]
    async fn every_backend_reaps_this_runners_leftovers_and_a_failure_stops_nothing() {
        let reaper = |fails| {
            Arc::new(Reaper {
                asked: Mutex::default(),
                fails,
            })
        };
        let (host, docker) = (reaper(true), reaper(false));
        let specs = [
            "linux:host".to_owned(),
            "ubuntu:docker://node:20".to_owned(),
        ];
        let labels = crate::labels::Labels::from_flags(&specs, &[]).unwrap();
        let backends = Backends::new(labels)
            .with_host(host.clone())
            .with_docker(docker.clone());
        reap_leftovers(&backends, "my-runner").await;
        let expected = vec![vec![(RUNNER_LABEL.to_owned(), "my-runner".to_owned())]];
        assert_eq!(*host.asked.lock().unwrap(), expected);
        assert_eq!(*docker.asked.lock().unwrap(), expected);
    }
}
