//! The reporter's network side: one task per reported task, detached from the job.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;

use super::{ReportError, ReporterOptions, Shared};
use crate::client::Client;
use crate::error::RpcError;
use crate::proto::runner::{self, LogRow, UpdateLogRequest, UpdateTaskRequest};

/// Sends rows and state while the job runs, then the final report once `finish` fires.
pub(super) async fn run(
    shared: Arc<Shared>,
    client: Client,
    options: ReporterOptions,
    mut finish: oneshot::Receiver<()>,
) -> Result<(), ReportError> {
    let mut sender = Sender {
        shared,
        client,
        options,
        failures: 0,
        last_failure: None,
        failed_before: false,
        syncing: None,
        last_sync: None,
    };
    let mut next_state = Instant::now();
    loop {
        if sender.failures > 0 {
            // The forge was unreachable: rows keep coming, but wait out the backoff.
            tokio::select! {
                _ = &mut finish => break,
                _ = tokio::time::sleep_until(sender.retry_at()) => {}
            }
        } else {
            tokio::select! {
                _ = &mut finish => break,
                _ = tokio::time::sleep_until(next_state) => {}
                _ = sender.shared.wake.notified() => {}
            }
        }
        let state_due = sender.failures > 0 || Instant::now() >= next_state;
        sender.sync_journal();
        let mut round = sender.send_logs(false).await.map(|_| ());
        if round.is_ok() && state_due {
            round = sender.send_state().await;
        }
        match round {
            Ok(()) => {
                sender.failures = 0;
                sender.last_failure = None;
                if state_due {
                    next_state = Instant::now() + sender.options.report_interval;
                }
            }
            Err(e) => sender.failed(&e),
        }
    }
    sender.close().await
}

struct Sender {
    shared: Arc<Shared>,
    client: Client,
    options: ReporterOptions,
    /// Consecutive failed rounds, for the backoff.
    failures: u32,
    last_failure: Option<Instant>,
    /// A request failed during the task: the forge may hold rows whose acknowledgement was
    /// lost.
    failed_before: bool,
    /// The journal's `fsync` under way, and when the last one started.
    syncing: Option<tokio::task::JoinHandle<()>>,
    last_sync: Option<Instant>,
}

impl Sender {
    /// Sends waiting rows, batch after batch, until none wait (true) or the forge takes no
    /// more for now (false); the last batch carries `no_more` when `closing`.
    async fn send_logs(&mut self, closing: bool) -> Result<bool, RpcError> {
        loop {
            let (index, rows, total) = {
                let mut inner = self.shared.lock();
                let rows = inner.log.unacked(
                    self.options.max_rows_per_request,
                    self.options.max_bytes_per_request,
                );
                (inner.log.acked(), rows, inner.log.total())
            };
            if rows.is_empty() {
                if !closing {
                    return Ok(true);
                }
                // The last request must add a row: Gitea before 1.26.2 archives the log only
                // with a `no_more` request that does.
                self.shared.lock().push_row(LogRow {
                    time: Some(super::state::now()),
                    content: String::new(),
                });
                if let Some(observer) = self.shared.observer.get() {
                    observer.rows_added(1);
                }
                continue;
            }
            let sent = rows.len() as u64;
            let request = UpdateLogRequest {
                task_id: self.shared.task_id,
                index: index as i64,
                rows,
                no_more: closing && index + sent == total,
            };
            let ack = match self.client.update_log(&request).await {
                Ok(response) => response.ack_index.max(0) as u64,
                // The log was archived already: a final upload repeated after a lost reply.
                Err(e) if closing && e.is_already_exists() => total,
                Err(e) => return Err(e),
            };
            let (pending, newly_acked) = {
                let mut inner = self.shared.lock();
                let before = inner.log.acked();
                inner.log.ack(ack);
                let acked = inner.log.acked();
                if let Some(journal) = &mut inner.journal {
                    journal.acked(acked);
                }
                (inner.log.pending(), acked.saturating_sub(before))
            };
            if let Some(observer) = self.shared.observer.get().filter(|_| newly_acked > 0) {
                observer.rows_acked(newly_acked);
            }
            if pending == 0 {
                return Ok(true);
            }
            if ack <= index {
                // The forge took nothing this time; try again later.
                return Ok(false);
            }
        }
    }

    /// Sends the state with the outputs the forge has not stored yet.
    async fn send_state(&mut self) -> Result<(), RpcError> {
        let (state, outputs) = self.shared.lock().state.snapshot();
        let running = state.result == runner::Result::Unspecified as i32;
        let request = UpdateTaskRequest {
            state: Some(state),
            outputs,
        };
        let response = self.client.update_task(&request).await?;
        self.shared.lock().state.outputs_sent(response.sent_outputs);
        let result = response.state.map_or(0, |s| s.result);
        if running && result != runner::Result::Unspecified as i32 {
            self.shared.forge_result.store(result, Ordering::Relaxed);
            self.shared.ended_by_forge.cancel();
        }
        Ok(())
    }

    /// The final report: every row (the last request with `no_more`), then the final state
    /// until the forge holds every output. Retries through errors until `close_timeout`.
    async fn close(&mut self) -> Result<(), ReportError> {
        let task_id = self.shared.task_id;
        let deadline = Instant::now() + self.options.close_timeout;
        self.failures = 0;
        let mut logs_done = false;
        // After a lost reply the forge may already hold every row still pending here; a final
        // request of only those brings it nothing new, and Gitea before 1.26.2 then ignores
        // its `no_more` (the log is never archived). Catching up first leaves the final
        // request the one empty row the forge cannot have.
        let mut caught_up = !self.failed_before;
        loop {
            self.sync_journal();
            let attempt = async {
                if !caught_up {
                    caught_up = self.send_logs(false).await?;
                    if !caught_up {
                        return Ok(false);
                    }
                }
                if !logs_done {
                    logs_done = self.send_logs(true).await?;
                    if !logs_done {
                        return Ok(false);
                    }
                }
                self.send_state().await?;
                Ok::<bool, RpcError>(self.shared.lock().state.all_outputs_sent())
            }
            .await;
            match attempt {
                Ok(true) => {
                    // The forge has everything: the journal has done its work.
                    if let Some(journal) = self.shared.lock().journal.take() {
                        journal.remove();
                    }
                    return Ok(());
                }
                Ok(false) => self.failures += 1,
                Err(e) if !e.is_transient() => {
                    return Err(ReportError::Final { task_id, source: e })
                }
                Err(e) => self.failed(&e),
            }
            let retry_at = self.retry_at();
            if retry_at > deadline {
                return Err(ReportError::GaveUp {
                    task_id,
                    seconds: self.options.close_timeout.as_secs(),
                });
            }
            tokio::time::sleep_until(retry_at).await;
        }
    }

    /// Makes what the journal holds durable (a power loss then loses none of it), at most
    /// once per report interval and off the sender's way: an `fsync` takes milliseconds on a
    /// busy disk, and waiting for one per batch of rows would slow the rows down. One runs at
    /// a time, on the blocking pool.
    fn sync_journal(&mut self) {
        if self.syncing.as_ref().is_some_and(|s| !s.is_finished()) {
            return;
        }
        if self
            .last_sync
            .is_some_and(|at| at.elapsed() < self.options.report_interval)
        {
            return;
        }
        let sync = match &mut self.shared.lock().journal {
            Some(journal) => journal.take_unsynced(),
            None => return,
        };
        if sync.is_empty() {
            return;
        }
        self.last_sync = Some(Instant::now());
        let task = self.shared.task_id;
        self.syncing = Some(tokio::task::spawn_blocking(move || {
            if let Err(e) = sync.run() {
                tracing::warn!(task, "cannot flush the task journal to disk: {e}");
            }
        }));
    }

    fn failed(&mut self, error: &RpcError) {
        self.failures += 1;
        self.failed_before = true;
        if self.failures == 1 || self.failures.is_power_of_two() {
            tracing::warn!(
                task = self.shared.task_id,
                "cannot report to the forge ({} attempts so far), retrying: {error}",
                self.failures
            );
        }
        self.last_failure = Some(Instant::now());
    }

    /// When to try again after `failures` failed rounds: doubling from the report interval up
    /// to `max_backoff`.
    fn retry_at(&self) -> Instant {
        let base = self.options.report_interval.max(Duration::from_millis(50));
        let factor = 1u32 << self.failures.saturating_sub(1).min(8);
        let delay = (base * factor).min(self.options.max_backoff);
        self.last_failure.unwrap_or_else(Instant::now) + delay
    }
}
