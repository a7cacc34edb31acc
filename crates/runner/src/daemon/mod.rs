//! `hearth daemon`: declare the runner's labels, fetch tasks, run them, report them, and shut
//! down without losing a job's final state.
//!
//! Shutdown: the first SIGINT/SIGTERM stops fetching and lets running jobs go on for
//! `runner.shutdown_timeout`; then they are cancelled (their `always()` and post steps still run
//! and their final state is still reported). A second signal cancels them at once, a third
//! stops their `always()` steps too.

mod resident;
pub mod task;

use std::cell::RefCell;
use std::collections::HashSet;
use std::process::ExitCode;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use hearth_forge::proto::runner::DeclareRequest;
use hearth_forge::{poll, Client, PollError, PollerOptions};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use task::{TaskRuntime, TaskStop};

/// What the daemon tells the forge, and how it shuts down.
pub struct DaemonOptions {
    pub poller: PollerOptions,
    pub shutdown_timeout: Duration,
    /// Label names (the schemes stay here).
    pub label_names: Vec<String>,
    pub version: String,
}

/// What this runner supports beyond the base protocol: `cancelling` means a job cancelled in
/// the UI gets to run its post steps before it reports (new Gitea).
const CAPABILITIES: &[&str] = &["cancelling"];

/// The forge's capabilities, after declaring this runner's labels and version. An old forge
/// without `Declare` is fine: it keeps the labels given at registration.
pub async fn declare(
    client: &Client,
    options: &DaemonOptions,
    shutdown: &CancellationToken,
) -> anyhow::Result<Vec<String>> {
    let request = DeclareRequest {
        version: options.version.clone(),
        labels: options.label_names.clone(),
        capabilities: CAPABILITIES.iter().map(|c| c.to_string()).collect(),
    };
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
            Err(e) if e.is_unregistered() => {
                anyhow::bail!(
                    "the forge no longer knows this runner (deleted, or the .runner file is not \
                     its own); register it again: {e}"
                )
            }
            Err(e) if e.is_transient() => {
                attempt += 1;
                let wait = Duration::from_secs(1 << attempt.min(5));
                tracing::warn!("cannot reach the forge, trying again in {wait:?}: {e}");
                tokio::select! {
                    _ = shutdown.cancelled() => anyhow::bail!("stopped before the forge answered"),
                    _ = tokio::time::sleep(wait) => {}
                }
            }
            Err(e) => return Err(e).context("the forge refused the runner's declaration"),
        }
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
) -> anyhow::Result<ExitCode> {
    let runtime = Arc::new(runtime);
    let mut running = JoinSet::new();
    // Start-up is over: its code need not stay resident.
    resident::release_program_pages();
    // The ids of the tasks running now: a forge recovering a lost answer (Forgejo's request
    // key) may hand out a task again, which must not run twice.
    let active: Rc<RefCell<HashSet<i64>>> = Rc::default();
    let polled = poll(&client, &options.poller, &shutdown, |task, slot| {
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
    match polled {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(PollError::Unregistered(e)) => Err(anyhow::anyhow!(
            "the forge no longer knows this runner (deleted, or its token is wrong); \
             register it again: {e}"
        )),
        Err(e) => Err(e.into()),
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
