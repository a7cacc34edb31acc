//! Reports a running task to the forge: its log, row by row, and its state.
//!
//! [`TaskReporter`] is the engine's event sink for one task. Events become log rows (one per
//! output line, already masked by the engine) and step states; a sender task of its own ships
//! them with `UpdateLog` and `UpdateTask` every report interval, at once when a batch of rows is
//! waiting, and keeps trying through errors with backoff while the job goes on. Rows wait in a
//! [`LogBuffer`](log_buffer::LogBuffer) that spills to disk, so a forge that is down costs no
//! memory and loses nothing. The sender is detached from the job: cancelling the job never
//! cuts a report short. [`TaskReporter::finish`] delivers the last rows with `no_more`, then the
//! final state, and retries each until the forge has acknowledged it.
//!
//! With [`ReporterOptions::journal`] every row and step state is also written to the task's
//! [`journal`] before the sink returns, and the journal goes once the forge has the final
//! state; a runner that died mid-job finalizes what it finds there at start ([`recover`]).
//!
//! A reply to `UpdateTask` whose result is set while the job runs means the forge has ended
//! the task (a user cancelled it, or it was reaped): [`TaskReporter::ended_by_forge`] fires.

pub mod journal;
mod log_buffer;
pub mod recover;
mod rows;
mod sender;
mod state;

use std::path::PathBuf;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use hearth_events::{Event, EventSink, LogLine};
use tokio::sync::{oneshot, Notify};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::client::Client;
use crate::error::RpcError;
use crate::observe::Observer;
use crate::proto::runner::{self, LogRow};
use journal::Journal;
use log_buffer::LogBuffer;
use state::TaskStateModel;

/// How the reporter paces itself.
#[derive(Clone, Debug)]
pub struct ReporterOptions {
    /// How often the state (and any waiting rows) are sent; also how soon the forge's cancel
    /// is noticed.
    pub report_interval: Duration,
    /// Send at once when this many rows wait, instead of at the next interval.
    pub batch_rows: usize,
    /// The most rows in one `UpdateLog`.
    pub max_rows_per_request: usize,
    /// About the most bytes of row content in one `UpdateLog`.
    pub max_bytes_per_request: usize,
    /// Rows held in memory (bytes, roughly) before they spill to disk.
    pub memory_limit: usize,
    /// Where spill files go.
    pub spill_dir: PathBuf,
    /// The longest wait between retries after errors.
    pub max_backoff: Duration,
    /// How long the final report keeps trying before it gives up.
    pub close_timeout: Duration,
    /// Told about rows written and acknowledged.
    pub observer: Observer,
    /// Where task journals go (`<spool>/journal`), or none.
    pub journal: Option<PathBuf>,
}

impl Default for ReporterOptions {
    fn default() -> Self {
        ReporterOptions {
            report_interval: Duration::from_secs(1),
            batch_rows: 500,
            max_rows_per_request: 10_000,
            max_bytes_per_request: 2 << 20,
            memory_limit: 4 << 20,
            spill_dir: std::env::temp_dir(),
            max_backoff: Duration::from_secs(10),
            close_timeout: Duration::from_secs(3600),
            observer: Observer::default(),
            journal: None,
        }
    }
}

/// The final report could not be delivered.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("the forge did not take the final log and state of task {task_id}: {source}")]
    Final { task_id: i64, source: RpcError },
    #[error(
        "the forge did not answer for {seconds} s; the final report of task {task_id} is lost"
    )]
    GaveUp { task_id: i64, seconds: u64 },
    #[error("the reporter of task {task_id} stopped unexpectedly")]
    Stopped { task_id: i64 },
}

/// What the sender and the sink share.
struct Shared {
    task_id: i64,
    inner: Mutex<Inner>,
    /// A batch of rows is waiting: send now rather than at the next interval.
    wake: Notify,
    batch_rows: u64,
    /// Fires when the forge has ended the task.
    ended_by_forge: CancellationToken,
    /// The result the forge reported when it ended the task.
    forge_result: AtomicI32,
    observer: Observer,
}

impl Drop for Shared {
    fn drop(&mut self) {
        // Rows no one will send any more are no longer pending.
        let pending = self.lock().log.pending();
        if let Some(observer) = self.observer.get().filter(|_| pending > 0) {
            observer.rows_dropped(pending);
        }
    }
}

struct Inner {
    log: LogBuffer,
    state: TaskStateModel,
    /// The task's journal, when there is one.
    journal: Option<Journal>,
}

impl Inner {
    /// Adds a row to the log, and to the journal first.
    fn push_row(&mut self, row: LogRow) {
        if let Some(journal) = &mut self.journal {
            journal.row(self.log.total(), &row);
        }
        self.log.push(row);
    }

    /// Writes step `index`'s state to the journal, and the job's start once it is known.
    fn journal_step(&mut self, index: usize) {
        let Some(journal) = &mut self.journal else {
            return;
        };
        if let Some(at) = self.state.started_at() {
            journal.started(at);
        }
        if let Some(step) = self.state.step(index) {
            journal.step(step);
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the rows half-written in a way that
        // matters more than losing the report; keep going with what is there.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a line's rows (several if it is longer than a row may be).
    fn push_line(&self, inner: &mut Inner, text: &str) {
        let time = state::now();
        let mut added = 0;
        for piece in rows::split_row(text) {
            inner.push_row(LogRow {
                time: Some(time),
                content: piece.to_owned(),
            });
            added += 1;
        }
        inner.state.rows_added(added);
        if let Some(observer) = self.observer.get() {
            observer.rows_added(added);
        }
        if let (Some(journal), Some(at)) = (&mut inner.journal, inner.state.started_at()) {
            journal.started(at);
        }
        if inner.log.pending() >= self.batch_rows {
            self.wake.notify_one();
        }
    }
}

/// Reports one task. Give [`TaskReporter`] to the engine as its sink (it implements
/// [`EventSink`]), then call [`finish`](TaskReporter::finish).
pub struct TaskReporter {
    shared: Arc<Shared>,
    finish: Option<oneshot::Sender<()>>,
    sender: Option<JoinHandle<Result<(), ReportError>>>,
}

impl TaskReporter {
    /// Starts reporting task `task_id`, whose job has `step_count` steps (the forge's step
    /// ids are their indices).
    pub fn start(
        client: Client,
        task_id: i64,
        step_count: usize,
        options: ReporterOptions,
    ) -> TaskReporter {
        let journal = options.journal.as_deref().and_then(|root| {
            Journal::create(root, task_id, step_count)
                .map_err(|e| {
                    tracing::warn!(
                        "task {task_id} runs without a journal (a crash would leave it running \
                         in the forge until it times out): cannot write in {}: {e}",
                        root.display()
                    )
                })
                .ok()
        });
        let shared = Arc::new(Shared {
            task_id,
            inner: Mutex::new(Inner {
                log: LogBuffer::new(options.memory_limit, &options.spill_dir),
                state: TaskStateModel::new(task_id, step_count),
                journal,
            }),
            wake: Notify::new(),
            batch_rows: options.batch_rows.max(1) as u64,
            ended_by_forge: CancellationToken::new(),
            forge_result: AtomicI32::new(runner::Result::Unspecified as i32),
            observer: options.observer.clone(),
        });
        let (finish, finish_rx) = oneshot::channel();
        let sender = tokio::spawn(sender::run(shared.clone(), client, options, finish_rx));
        TaskReporter {
            shared,
            finish: Some(finish),
            sender: Some(sender),
        }
    }

    /// Fires when the forge ends the task while it runs (cancelled by a user, or reaped).
    pub fn ended_by_forge(&self) -> CancellationToken {
        self.shared.ended_by_forge.clone()
    }

    /// The result the forge gave when it ended the task.
    pub fn forge_result(&self) -> Option<runner::Result> {
        let value = self.shared.forge_result.load(Ordering::Relaxed);
        match runner::Result::try_from(value) {
            Ok(runner::Result::Unspecified) => None,
            Ok(result) => Some(result),
            Err(_) => Some(runner::Result::Failure),
        }
    }

    /// A line of the runner's own (set-up and tear-down messages), outside any step.
    pub fn log(&self, text: &str) {
        let mut inner = self.shared.lock();
        for line in text.lines() {
            self.shared.push_line(&mut inner, line);
        }
    }

    /// Ends the task with `result` and the job's `outputs`: delivers every row (the last
    /// request with `no_more`), then the final state, each retried until acknowledged.
    pub async fn finish(
        mut self,
        result: runner::Result,
        outputs: Vec<(String, String)>,
    ) -> Result<(), ReportError> {
        {
            let mut inner = self.shared.lock();
            let dropped = inner.state.set_outputs(outputs);
            for message in dropped {
                self.shared
                    .push_line(&mut inner, &rows::row_text(&LogLine::Warning(&message)));
            }
            if let Some(error) = inner.log.spill_error().map(str::to_owned) {
                self.shared.push_line(
                    &mut inner,
                    &rows::row_text(&LogLine::Warning(&format!(
                        "The runner could not use its disk for log rows while the forge was away: {error}"
                    ))),
                );
            }
            let end = inner.log.total();
            inner.state.finish(result, end);
            let (state, _) = inner.state.snapshot();
            if let Some(journal) = &mut inner.journal {
                journal.ended(&state);
            }
        }
        if let Some(finish) = self.finish.take() {
            let _ = finish.send(());
        }
        self.join().await
    }

    async fn join(&mut self) -> Result<(), ReportError> {
        let task_id = self.shared.task_id;
        match self.sender.take() {
            Some(sender) => sender
                .await
                .unwrap_or(Err(ReportError::Stopped { task_id })),
            None => Err(ReportError::Stopped { task_id }),
        }
    }
}

impl Drop for TaskReporter {
    fn drop(&mut self) {
        // Dropped without `finish` (the daemon is going away): stop the sender.
        if let Some(sender) = self.sender.take() {
            sender.abort();
            // The journal stays on disk for the next start, its lock let go now (the aborted
            // sender may hold the rest a moment longer).
            drop(self.shared.lock().journal.take());
        }
    }
}

impl EventSink for TaskReporter {
    fn event(&self, event: &Event<'_>) {
        let mut inner = self.shared.lock();
        match event {
            Event::JobStarted { .. } => inner.state.job_started(),
            Event::StepStarted { step, .. } => {
                let index = inner.log.total();
                inner.state.step_started(step.index, index);
                inner.journal_step(step.index);
            }
            Event::Log { line, .. } => {
                let text = rows::row_text(line);
                self.shared.push_line(&mut inner, &text);
            }
            Event::StepSummary { .. } => {}
            Event::StepFinished {
                step, conclusion, ..
            } => {
                let end = inner.log.total();
                inner.state.step_finished(step.index, *conclusion, end);
                inner.journal_step(step.index);
            }
            Event::JobFinished { reason, .. } => {
                if let Some(reason) = reason {
                    let text = rows::row_text(&LogLine::Info(reason));
                    self.shared.push_line(&mut inner, &text);
                }
            }
        }
    }
}
