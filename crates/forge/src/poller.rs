//! Asking the forge for work: the `tasks_version` protocol, capacity and pacing.
//!
//! One loop fetches for every slot, so the forge sees one request per interval however large
//! the capacity. A slot is taken before each fetch; a task keeps it until its job ends. After a
//! task the loop fetches again at once (several jobs may be waiting, and the forge answers
//! immediately, never holding the request); after an empty answer it waits the fetch
//! interval, growing by half each time up to the maximum; after an error it backs off
//! doubling. Waits carry a little jitter, so runners started together drift apart.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::client::Client;
use crate::error::{Code, RpcError};
use crate::observe::{NoHooks, PollHooks};
use crate::proto::runner::FetchTaskRequest;
use crate::task::TaskInfo;

#[derive(Clone, Debug)]
pub struct PollerOptions {
    /// How many tasks may run at once.
    pub capacity: usize,
    /// The wait after an empty answer (grows while the forge stays idle).
    pub fetch_interval: Duration,
    /// The longest wait when idle.
    pub fetch_interval_max: Duration,
    /// The longest wait after errors.
    pub error_backoff_max: Duration,
    /// The longest a `FetchTask` may take.
    pub fetch_timeout: Duration,
    /// Stop after the first task (ephemeral runners, `--once`).
    pub once: bool,
}

/// Why polling stopped.
#[derive(Debug, thiserror::Error)]
pub enum PollError {
    #[error("the forge no longer knows this runner (it was deleted, or its token is wrong); register it again: {0}")]
    Unregistered(RpcError),
    #[error("the forge refused to give tasks: {0}")]
    Refused(RpcError),
}

/// Fetches tasks until `shutdown` fires (or, with `once`, until one task arrived) and hands
/// each to `on_task` with the slot it holds; dropping the slot frees it.
pub async fn poll(
    client: &Client,
    options: &PollerOptions,
    shutdown: &CancellationToken,
    on_task: impl FnMut(TaskInfo, OwnedSemaphorePermit),
) -> Result<(), PollError> {
    poll_with(client, options, shutdown, &NoHooks, on_task).await
}

/// [`poll`], with `hooks` gating each fetch and told of each round.
pub async fn poll_with(
    client: &Client,
    options: &PollerOptions,
    shutdown: &CancellationToken,
    hooks: &dyn PollHooks,
    mut on_task: impl FnMut(TaskInfo, OwnedSemaphorePermit),
) -> Result<(), PollError> {
    let slots = Arc::new(Semaphore::new(options.capacity.max(1)));
    let mut tasks_version = 0i64;
    let mut request_key = new_request_key();
    let mut empties = 0u32;
    let mut errors = 0u32;
    loop {
        hooks.waiting(true);
        let slot = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => return Ok(()),
            },
        };
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            () = hooks.before_fetch() => {}
        }
        hooks.waiting(false);
        let request = FetchTaskRequest { tasks_version };
        let fetched = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            fetched = client.fetch_task(&request, options.fetch_timeout, &request_key) => fetched,
        };
        hooks.round();
        let wait = match fetched {
            Ok(response) => {
                // Answered: the next fetch is a new request. After an error or a timeout the
                // key is kept, so Forgejo can hand back a task it assigned to the lost answer.
                request_key = new_request_key();
                errors = 0;
                match response.task {
                    Some(task) => {
                        // Others may be waiting: ask the database again, at once.
                        tasks_version = 0;
                        empties = 0;
                        on_task(TaskInfo::from_task(task), slot);
                        if options.once {
                            return Ok(());
                        }
                        continue;
                    }
                    None => {
                        tasks_version = tasks_version.max(response.tasks_version);
                        empties += 1;
                        idle_wait(options, empties)
                    }
                }
            }
            // A slow forge is an idle one (as the reference runners see it).
            Err(e) if e.code() == Code::DeadlineExceeded => {
                empties += 1;
                idle_wait(options, empties)
            }
            Err(e) if e.is_unregistered() => return Err(PollError::Unregistered(e)),
            Err(e) if !e.is_transient() && !e.is_unimplemented() => {
                return Err(PollError::Refused(e))
            }
            Err(e) => {
                errors += 1;
                if errors == 1 || errors.is_power_of_two() {
                    tracing::warn!("cannot fetch a task ({errors} attempts so far): {e}");
                }
                error_wait(options, errors)
            }
        };
        drop(slot);
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

fn new_request_key() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// After `empties` empty answers in a row: the interval, growing by half each time, capped.
fn idle_wait(options: &PollerOptions, empties: u32) -> Duration {
    let growth = 1.5f64.powi(empties.saturating_sub(1).min(16) as i32);
    let wait = options.fetch_interval.mul_f64(growth);
    jitter(wait.min(options.fetch_interval_max.max(options.fetch_interval)))
}

/// After `errors` failures in a row: doubling from the interval, capped.
fn error_wait(options: &PollerOptions, errors: u32) -> Duration {
    let factor = 1u32 << errors.saturating_sub(1).min(10);
    let cap = options.error_backoff_max.max(options.fetch_interval);
    jitter((options.fetch_interval * factor).min(cap))
}

/// Between 90 % and 100 % of `wait`: never more, so an idle runner stays within its request
/// budget.
fn jitter(wait: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    // The clock's low bits are random enough to spread runners apart.
    let fraction = f64::from(nanos % 1000) / 10_000.0;
    wait.mul_f64(1.0 - fraction)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> PollerOptions {
        PollerOptions {
            capacity: 1,
            fetch_interval: Duration::from_secs(2),
            fetch_interval_max: Duration::from_secs(3),
            error_backoff_max: Duration::from_secs(10),
            fetch_timeout: Duration::from_secs(5),
            once: false,
        }
    }

    #[test]
    fn idle_waits_grow_to_the_maximum() {
        let o = options();
        let first = idle_wait(&o, 1);
        assert!(first <= Duration::from_secs(2) && first >= Duration::from_millis(1800));
        let second = idle_wait(&o, 2);
        assert!(second <= Duration::from_secs(3) && second >= Duration::from_millis(2700));
        assert!(idle_wait(&o, 40) <= Duration::from_secs(3));
    }

    #[test]
    fn error_waits_double_to_their_cap() {
        let o = options();
        assert!(error_wait(&o, 2) >= Duration::from_millis(3600));
        assert!(error_wait(&o, 2) <= Duration::from_secs(4));
        assert!(error_wait(&o, 30) <= Duration::from_secs(10));
    }
}
