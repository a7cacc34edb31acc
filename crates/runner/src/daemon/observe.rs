//! The daemon's side of its metrics: what the forge crate and the engine's events tell, put
//! into `hearth-metrics`' handles. The crates that count know nothing of Prometheus.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hearth_events::{Event, EventSink};
use hearth_forge::proto::runner::Result as TaskResult;
use hearth_forge::{ForgeObserver, RpcError};
use hearth_metrics::Metrics;

/// The forge client's and reporters' observer.
pub struct ForgeMetrics(pub Arc<Metrics>);

impl ForgeObserver for ForgeMetrics {
    fn request(&self, method: &str, elapsed: Duration, error: Option<&RpcError>) {
        let code = error.map(|e| e.code().as_str());
        self.0.forge_request(method, elapsed, code);
    }

    fn rows_added(&self, rows: u64) {
        self.0.log_rows_pending.inc_by(gauge(rows));
    }

    fn rows_acked(&self, rows: u64) {
        self.0.log_rows_pending.dec_by(gauge(rows));
        self.0.log_rows_sent.inc_by(rows);
    }

    fn rows_dropped(&self, rows: u64) {
        self.0.log_rows_pending.dec_by(gauge(rows));
    }
}

fn gauge(count: u64) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
}

/// One task's clock: fetched, started, finished.
pub(crate) struct JobMeter {
    metrics: Arc<Metrics>,
    fetched: Instant,
    started: Mutex<Option<Instant>>,
}

impl JobMeter {
    /// A task fetched now; counted as running until [`JobMeter::finished`].
    pub fn start(metrics: Arc<Metrics>) -> JobMeter {
        metrics.running_jobs.inc();
        JobMeter {
            metrics,
            fetched: Instant::now(),
            started: Mutex::default(),
        }
    }

    fn job_started(&self) {
        let now = Instant::now();
        self.metrics
            .queue_wait
            .observe(now.duration_since(self.fetched).as_secs_f64());
        *self.started.lock().unwrap_or_else(|e| e.into_inner()) = Some(now);
    }

    /// The task's final state was delivered (or given up on).
    pub fn finished(self, result: TaskResult) {
        let started = self
            .started
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .unwrap_or(self.fetched);
        self.metrics
            .job_finished(result_name(result), started.elapsed());
        self.metrics.running_jobs.dec();
    }

    /// What the job's cache use was.
    pub fn cache(&self, hits: usize, misses: usize) {
        self.metrics.cache_hits.inc_by(hits as u64);
        self.metrics.cache_misses.inc_by(misses as u64);
    }

    /// The engine's sink `inner`, timing the job's start and its steps on the way.
    pub fn sink<'a>(&'a self, inner: &'a dyn EventSink) -> MeteredSink<'a> {
        MeteredSink { meter: self, inner }
    }
}

/// A sink that times the job's start and steps, then passes every event on.
pub(crate) struct MeteredSink<'a> {
    meter: &'a JobMeter,
    inner: &'a dyn EventSink,
}

impl EventSink for MeteredSink<'_> {
    fn event(&self, event: &Event<'_>) {
        match event {
            Event::JobStarted { .. } => self.meter.job_started(),
            Event::StepFinished { duration, .. } => self
                .meter
                .metrics
                .step_duration
                .observe(duration.as_secs_f64()),
            _ => {}
        }
        self.inner.event(event);
    }

    fn flush(&self) {
        self.inner.flush();
    }
}

/// The `result` label: `success`, `failure`, `cancelled`, `skipped`.
fn result_name(result: TaskResult) -> &'static str {
    match result {
        TaskResult::Success => "success",
        TaskResult::Failure => "failure",
        TaskResult::Cancelled => "cancelled",
        TaskResult::Skipped => "skipped",
        TaskResult::Unspecified => "unspecified",
    }
}
