//! Finalizing the tasks a runner was running when it stopped without reporting (SIGKILL, a
//! power loss), from their [`journal`](super::journal)s, when it starts again.
//!
//! For each journal: a heartbeat asks the forge whether the task still runs (a task it has
//! ended, cancelled or reaped, needs nothing: its journal just goes); then the rows the
//! journal holds go with `UpdateLog` from the first one held (the forge's `ack_index` rules
//! skip those it has, so none is doubled and none missed), then one row saying the runner
//! stopped, with `no_more`, then the final state: the steps that finished as they ended, the
//! one that was running failed, the others cancelled, the job failed. Transient errors are
//! retried; a journal that could not be finalized stays for the next start. A damaged
//! journal is finalized with what could be read, said in the task's log and the runner's, and
//! set aside in `journal-damaged/` beside the journals for a person to look at.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::journal::{read_journal, JournalContents};
use super::rows;
use super::state::now;
use crate::client::Client;
use crate::error::RpcError;
use crate::proto::runner::{
    self, LogRow, StepState, TaskState, UpdateLogRequest, UpdateTaskRequest,
};

/// The row that ends the log of a task finalized from its journal.
pub const STOPPED_ROW: &str =
    "The runner stopped while the job ran (it was killed, or its machine \
     lost power); it finalized the task from its journal when it started again. Steps that had \
     not ended are marked failed or cancelled.";

/// The row that ends the log of a task whose job had ended when the runner stopped, its
/// final report not yet delivered.
pub const ENDED_ROW: &str = "The runner stopped after the job ended, before the forge had its \
     final report; it delivered the report from its journal when it started again (without \
     the job's outputs).";

/// Folder beside the journals where damaged ones are set aside.
pub const DAMAGED_DIR: &str = "journal-damaged";

/// How long one journal's finalization keeps trying through transient errors at start-up.
const PATIENCE: Duration = Duration::from_secs(300);

/// Rows per `UpdateLog` when sending a journal's rows.
const ROWS_PER_REQUEST: usize = 2000;
const BYTES_PER_REQUEST: usize = 2 << 20;

/// What became of one journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finalized {
    /// The forge has the rows and the failed result.
    Reported {
        task_id: i64,
        /// Rows the journal held (the forge skipped those it had).
        rows_held: u64,
        /// The journal was damaged (set aside): rows after the damage are lost.
        damaged: bool,
    },
    /// The forge had ended the task already: nothing to send.
    EndedByForge { task_id: i64 },
    /// The forge does not know the task (any more), or refused it for good: dropped.
    Refused { task_id: i64, reason: String },
    /// Not finalized now (forge unreachable, or the daemon is stopping): kept for next time.
    Kept { task_id: i64, reason: String },
}

/// Finalizes every journal under `root` (`<spool>/journal`) with the forge. Stops early
/// when `shutdown` fires (the journals left stay for the next start).
pub async fn finalize_journals(
    client: &Client,
    root: &Path,
    shutdown: &CancellationToken,
) -> Vec<Finalized> {
    let mut done = Vec::new();
    let entries = match std::fs::read_dir(root) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return done,
        Err(e) => {
            tracing::warn!("cannot read the task journals in {}: {e}", root.display());
            return done;
        }
    };
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect();
    dirs.sort();
    for dir in dirs {
        // Held while finalizing; a journal whose lock a live process holds is its task's.
        let _lock = match super::journal::lock(&dir) {
            Ok(Some(lock)) => lock,
            Ok(None) => {
                tracing::warn!(
                    "{} belongs to a runner process that is running (is this runner started \
                     twice?); left alone",
                    dir.display()
                );
                continue;
            }
            Err(e) => {
                tracing::warn!(
                    "cannot lock the task journal {}: {e}; left alone",
                    dir.display()
                );
                continue;
            }
        };
        let contents = match read_journal(&dir) {
            Ok(contents) => contents,
            Err(e) => {
                tracing::warn!("{e}; left alone");
                continue;
            }
        };
        let task_id = contents.task_id;
        tracing::info!(
            task = task_id,
            "the runner stopped while task {task_id} ran: finalizing it from its journal ({} \
             rows)",
            contents.rows.len()
        );
        let finalized = finalize(client, contents, shutdown).await;
        match &finalized {
            Finalized::Kept { reason, .. } => {
                tracing::warn!(task = task_id, "task {task_id} not finalized yet: {reason}");
            }
            Finalized::Reported { damaged: true, .. } => set_aside(root, &dir, task_id),
            Finalized::Reported { .. } | Finalized::EndedByForge { .. } => remove(&dir),
            Finalized::Refused { reason, .. } => {
                tracing::warn!(
                    task = task_id,
                    "the forge refused the final report of task {task_id}; its journal is \
                     dropped: {reason}"
                );
                remove(&dir);
            }
        }
        if let Finalized::Reported { .. } | Finalized::EndedByForge { .. } = &finalized {
            tracing::info!(task = task_id, "task {task_id} finalized: {finalized:?}");
        }
        done.push(finalized);
        if shutdown.is_cancelled() {
            break;
        }
    }
    done
}

async fn finalize(
    client: &Client,
    contents: JournalContents,
    shutdown: &CancellationToken,
) -> Finalized {
    let task_id = contents.task_id;
    let mut retry = Retry::new(shutdown);
    let stopped = |e: Stop| match e {
        Stop::Refused(e) => Finalized::Refused {
            task_id,
            reason: e.to_string(),
        },
        Stop::Kept(reason) => Finalized::Kept { task_id, reason },
    };

    // Does the forge still have it running? A heartbeat with no steps changes nothing else.
    let heartbeat = UpdateTaskRequest {
        state: Some(TaskState {
            id: task_id,
            ..TaskState::default()
        }),
        outputs: HashMap::new(),
    };
    let answer = match retry.call(|| client.update_task(&heartbeat)).await {
        Ok(answer) => answer,
        Err(e) => return stopped(e),
    };
    if answer
        .state
        .is_some_and(|s| s.result != runner::Result::Unspecified as i32)
    {
        return Finalized::EndedByForge { task_id };
    }

    let log_end = match send_rows(client, &contents, &mut retry).await {
        Ok(end) => end,
        Err(e) => return stopped(e),
    };
    let mut last_rows = Vec::new();
    if let Some(damage) = &contents.damage {
        tracing::error!(
            task = task_id,
            "the journal of task {task_id} is damaged: {damage}"
        );
        last_rows.push(rows::row_text(&hearth_events::LogLine::Warning(
            "The runner's journal of this task was damaged; rows after the damage are lost.",
        )));
    }
    last_rows.push(if contents.result != 0 {
        rows::row_text(&hearth_events::LogLine::Warning(ENDED_ROW))
    } else {
        rows::row_text(&hearth_events::LogLine::Error(STOPPED_ROW))
    });
    let time = now();
    let last = UpdateLogRequest {
        task_id,
        index: log_end as i64,
        rows: last_rows
            .into_iter()
            .map(|content| LogRow {
                time: Some(time),
                content,
            })
            .collect(),
        no_more: true,
    };
    match retry.call(|| client.update_log(&last)).await {
        Ok(_) => {}
        // Archived already: the forge has the whole log.
        Err(Stop::Refused(e)) if e.is_already_exists() => {}
        Err(e) => return stopped(e),
    }

    let state = final_state(&contents, log_end);
    let last_state = UpdateTaskRequest {
        state: Some(state),
        outputs: HashMap::new(),
    };
    if let Err(e) = retry.call(|| client.update_task(&last_state)).await {
        return stopped(e);
    }
    Finalized::Reported {
        task_id,
        rows_held: contents.rows.len() as u64,
        damaged: contents.damage.is_some(),
    }
}

/// Sends the journal's rows from the first it holds; returns how many rows the forge holds
/// (its `ack_index`), where the last rows go.
async fn send_rows(
    client: &Client,
    contents: &JournalContents,
    retry: &mut Retry<'_>,
) -> Result<u64, Stop> {
    let first = contents.first_row;
    let end = first + contents.rows.len() as u64;
    let mut from = first;
    let mut stalled = 0;
    loop {
        let offset = (from - first) as usize;
        let mut bytes = 0;
        let chunk: Vec<LogRow> = contents.rows[offset..]
            .iter()
            .take_while(|row| {
                bytes += row.content.len() + 48;
                bytes <= BYTES_PER_REQUEST
            })
            .take(ROWS_PER_REQUEST)
            .cloned()
            .collect();
        let chunk = if chunk.is_empty() && offset < contents.rows.len() {
            vec![contents.rows[offset].clone()]
        } else {
            chunk
        };
        let request = UpdateLogRequest {
            task_id: contents.task_id,
            index: from as i64,
            rows: chunk,
            no_more: false,
        };
        let ack = retry.call(|| client.update_log(&request)).await?.ack_index;
        let ack = ack.max(0) as u64;
        if ack >= end || request.rows.is_empty() {
            return Ok(ack);
        }
        if ack < first {
            // The forge lacks rows the journal no longer holds (acknowledged, then lost by
            // the forge): they cannot be sent again.
            tracing::error!(
                task = contents.task_id,
                "the forge holds {ack} rows of task {}, fewer than the {first} it had \
                 acknowledged; the rows in between are lost",
                contents.task_id
            );
            return Ok(ack);
        }
        if ack <= from {
            stalled += 1;
            if stalled > 10 {
                return Err(Stop::Kept(format!(
                    "the forge takes no rows past {ack} of task {}",
                    contents.task_id
                )));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        } else {
            stalled = 0;
        }
        from = ack;
    }
}

/// The task's final state: failed, the steps as the journal last saw them, the one that
/// was running failed with every row up to `log_end`, the others cancelled.
fn final_state(contents: &JournalContents, log_end: u64) -> TaskState {
    if contents.result != 0 {
        // The job had ended: its own result and steps, as the final report would have had.
        return TaskState {
            id: contents.task_id,
            result: contents.result,
            started_at: contents.started_at.or(contents.stopped_at),
            stopped_at: contents.stopped_at.or(Some(now())),
            steps: contents.steps.clone(),
        };
    }
    let stopped_at = now();
    let steps = (0..contents.step_count.max(contents.steps.len()))
        .map(|index| {
            let id = index as i64;
            let recorded = contents.steps.iter().find(|s| s.id == id);
            let mut step = recorded.cloned().unwrap_or(StepState {
                id,
                ..StepState::default()
            });
            if step.result == runner::Result::Unspecified as i32 {
                if step.started_at.is_some() {
                    step.result = runner::Result::Failure as i32;
                    step.log_length = (log_end as i64 - step.log_index).max(0);
                } else {
                    step.result = runner::Result::Cancelled as i32;
                    step.log_index = log_end as i64;
                    step.log_length = 0;
                }
                step.stopped_at = Some(stopped_at);
            }
            step
        })
        .collect();
    TaskState {
        id: contents.task_id,
        result: runner::Result::Failure as i32,
        started_at: contents.started_at.or(Some(stopped_at)),
        stopped_at: Some(stopped_at),
        steps,
    }
}

enum Stop {
    /// The forge said no for good.
    Refused(RpcError),
    /// Gave up for now.
    Kept(String),
}

/// Retries transient errors with a doubling wait, up to [`PATIENCE`] for the journal.
struct Retry<'a> {
    shutdown: &'a CancellationToken,
    deadline: Instant,
}

impl<'a> Retry<'a> {
    fn new(shutdown: &'a CancellationToken) -> Retry<'a> {
        Retry {
            shutdown,
            deadline: Instant::now() + PATIENCE,
        }
    }

    async fn call<T, F, Fut>(&mut self, mut call: F) -> Result<T, Stop>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, RpcError>>,
    {
        let mut wait = Duration::from_millis(500);
        loop {
            if self.shutdown.is_cancelled() {
                return Err(Stop::Kept("the runner is stopping".into()));
            }
            let error = match call().await {
                Ok(answer) => return Ok(answer),
                Err(e) if gone_for_good(&e) || !e.is_transient() => return Err(Stop::Refused(e)),
                Err(e) => e,
            };
            if Instant::now() + wait > self.deadline {
                return Err(Stop::Kept(format!(
                    "the forge did not take it for {} s: {error}",
                    PATIENCE.as_secs()
                )));
            }
            tracing::warn!("cannot finalize a task from its journal yet, retrying: {error}");
            tokio::select! {
                _ = self.shutdown.cancelled() => {}
                _ = tokio::time::sleep(wait) => {}
            }
            wait = (wait * 2).min(Duration::from_secs(10));
        }
    }
}

/// Gitea answers these as internal errors, which are otherwise worth retrying: the task is
/// not there, or not this runner's. No retry changes that.
fn gone_for_good(error: &RpcError) -> bool {
    error.message.contains("does not exist") || error.message.contains("invalid runner for task")
}

fn remove(dir: &Path) {
    if let Err(e) = std::fs::remove_dir_all(dir) {
        tracing::warn!("cannot remove the journal {}: {e}", dir.display());
    }
}

/// Moves a damaged journal to `<spool>/journal-damaged/<task>-<seconds>` for a person to look
/// at; removes it when even that fails.
fn set_aside(root: &Path, dir: &Path, task_id: i64) {
    let aside = root.parent().unwrap_or(root).join(DAMAGED_DIR);
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let target = aside.join(format!("{task_id}-{seconds}"));
    let moved = std::fs::create_dir_all(&aside).and_then(|()| std::fs::rename(dir, &target));
    match moved {
        Ok(()) => tracing::warn!(
            task = task_id,
            "the damaged journal of task {task_id} is set aside in {}",
            target.display()
        ),
        Err(e) => {
            tracing::warn!(
                "cannot set the damaged journal {} aside: {e}",
                dir.display()
            );
            remove(dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_running_step_fails_with_its_rows_and_the_rest_are_cancelled() {
        let done = StepState {
            id: 0,
            result: runner::Result::Success as i32,
            log_index: 1,
            log_length: 3,
            started_at: Some(now()),
            stopped_at: Some(now()),
        };
        let running = StepState {
            id: 1,
            log_index: 4,
            started_at: Some(now()),
            ..StepState::default()
        };
        let contents = JournalContents {
            task_id: 3,
            step_count: 3,
            steps: vec![done, running],
            ..JournalContents::default()
        };
        let state = final_state(&contents, 10);
        assert_eq!(state.result, runner::Result::Failure as i32);
        assert_eq!(state.steps[0], done);
        assert_eq!(state.steps[1].result, runner::Result::Failure as i32);
        assert_eq!(
            (state.steps[1].log_index, state.steps[1].log_length),
            (4, 6)
        );
        assert_eq!(state.steps[2].result, runner::Result::Cancelled as i32);
        assert_eq!(
            (state.steps[2].log_index, state.steps[2].log_length),
            (10, 0)
        );
        assert!(state.stopped_at.is_some() && state.started_at.is_some());
    }

    #[test]
    fn a_job_that_had_ended_keeps_its_own_result() {
        let contents = JournalContents {
            task_id: 3,
            step_count: 1,
            result: runner::Result::Success as i32,
            stopped_at: Some(now()),
            steps: vec![StepState {
                id: 0,
                result: runner::Result::Success as i32,
                ..StepState::default()
            }],
            ..JournalContents::default()
        };
        let state = final_state(&contents, 10);
        assert_eq!(state.result, runner::Result::Success as i32);
        assert_eq!(state.steps, contents.steps);
        assert_eq!(state.stopped_at, contents.stopped_at);
    }
}
