//! The daemon's metrics and health, for Prometheus and for probes.
//!
//! [`Metrics`] owns a `prometheus-client` registry and typed handles to every metric the
//! daemon keeps (prefix `hearth_`); the crates that count are handed these handles (through
//! observers of their own, so that `forge` and `engine` know nothing of Prometheus). [`Health`]
//! is what `/healthz` and `/readyz` answer from: the poll loop's heartbeat, the declaration to
//! the forge, the drain after a first SIGTERM and the disk guard's pause. [`serve`] answers
//! `/metrics`, `/healthz` and `/readyz` on the opt-in address (`metrics.addr`).

mod health;
mod server;

use std::path::{Path, PathBuf};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};

pub use health::{Health, Probe};
pub use server::{serve, ServeError, Serving};

/// A job's result, as the `result` label of `hearth_jobs_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    pub result: String,
}

/// A forge RPC method (`FetchTask`, `UpdateLog`, ...).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MethodLabel {
    pub method: String,
}

/// A forge RPC method and the Connect code of its failure (`unavailable`, ...).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabel {
    pub method: String,
    pub code: String,
}

/// A folder the disk guard watches (`work`, `docker`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DiskLabel {
    pub disk: String,
}

/// Every metric of the daemon. Handles are cheap clones sharing their value.
pub struct Metrics {
    registry: Registry,
    pub jobs: Family<ResultLabel, Counter>,
    pub queue_wait: Histogram,
    pub job_duration: Histogram,
    pub step_duration: Histogram,
    pub running_jobs: Gauge,
    pub capacity: Gauge,
    pub log_rows_sent: Counter,
    pub log_rows_pending: Gauge,
    pub forge_request_duration: Family<MethodLabel, Histogram>,
    pub forge_request_errors: Family<ErrorLabel, Counter>,
    pub cache_hits: Counter,
    pub cache_misses: Counter,
    journal_bytes: Gauge,
    /// The task journal's folder, measured at each scrape.
    journal_dir: Option<PathBuf>,
    pub disk_paused: Gauge,
    pub disk_free_bytes: Family<DiskLabel, Gauge>,
    pub health: Health,
}

/// Buckets from 50 ms to about 3.6 h: a step of a second and a job of hours both land in one.
fn duration_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(0.05, 2.0, 19)
}

/// Buckets from 5 ms to about 80 s: forge requests, whose timeout is a minute.
fn request_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 15))
}

impl Metrics {
    /// The registry with every metric at zero. `journal_dir` is the task journal's folder
    /// (its size is read at each scrape); `stale_after` is how long the poll loop may go
    /// without a round before `/healthz` fails.
    pub fn new(journal_dir: Option<PathBuf>, stale_after: Duration) -> Metrics {
        let mut registry = Registry::with_prefix("hearth");
        let jobs = Family::<ResultLabel, Counter>::default();
        registry.register(
            "jobs",
            "Jobs finished, by result (success, failure, cancelled, skipped)",
            jobs.clone(),
        );
        let queue_wait = Histogram::new(duration_buckets());
        registry.register_with_unit(
            "queue_wait",
            "From the task's fetch to its job's start (the forge's task message carries no \
             creation time, so the wait in the forge's queue before the fetch is not included)",
            Unit::Seconds,
            queue_wait.clone(),
        );
        let job_duration = Histogram::new(duration_buckets());
        registry.register_with_unit(
            "job_duration",
            "How long jobs ran, from their start to their final state",
            Unit::Seconds,
            job_duration.clone(),
        );
        let step_duration = Histogram::new(duration_buckets());
        registry.register_with_unit(
            "step_duration",
            "How long steps ran",
            Unit::Seconds,
            step_duration.clone(),
        );
        let running_jobs = Gauge::default();
        registry.register("running_jobs", "Jobs running now", running_jobs.clone());
        let capacity = Gauge::default();
        registry.register(
            "capacity",
            "Jobs the runner may run at once (runner.capacity)",
            capacity.clone(),
        );
        let log_rows_sent = Counter::default();
        registry.register(
            "log_rows_sent",
            "Log rows the forge has acknowledged",
            log_rows_sent.clone(),
        );
        let log_rows_pending = Gauge::default();
        registry.register(
            "log_rows_pending",
            "Log rows written but not yet acknowledged by the forge",
            log_rows_pending.clone(),
        );
        let forge_request_duration =
            Family::<MethodLabel, Histogram>::new_with_constructor(request_buckets as fn() -> _);
        registry.register_with_unit(
            "forge_request_duration",
            "Requests to the forge, by method, answered or not",
            Unit::Seconds,
            forge_request_duration.clone(),
        );
        let forge_request_errors = Family::<ErrorLabel, Counter>::default();
        registry.register(
            "forge_request_errors",
            "Requests to the forge that failed, by method and Connect code",
            forge_request_errors.clone(),
        );
        let cache_hits = Counter::default();
        registry.register(
            "cache_hits",
            "Cache lookups of jobs that found an entry (the runner's own cache server)",
            cache_hits.clone(),
        );
        let cache_misses = Counter::default();
        registry.register(
            "cache_misses",
            "Cache lookups of jobs that found nothing (the runner's own cache server)",
            cache_misses.clone(),
        );
        let journal_bytes = Gauge::default();
        registry.register_with_unit(
            "journal_size",
            "The size of the task journal's files (0 when there is none)",
            Unit::Bytes,
            journal_bytes.clone(),
        );
        let disk_paused = Gauge::default();
        registry.register(
            "disk_guard_paused",
            "1 while the disk guard keeps the runner from taking jobs (too little free space)",
            disk_paused.clone(),
        );
        let disk_free_bytes = Family::<DiskLabel, Gauge>::default();
        registry.register_with_unit(
            "disk_free",
            "Free space the disk guard last saw, by disk (work, docker)",
            Unit::Bytes,
            disk_free_bytes.clone(),
        );
        Metrics {
            registry,
            jobs,
            queue_wait,
            job_duration,
            step_duration,
            running_jobs,
            capacity,
            log_rows_sent,
            log_rows_pending,
            forge_request_duration,
            forge_request_errors,
            cache_hits,
            cache_misses,
            journal_bytes,
            journal_dir,
            disk_paused,
            disk_free_bytes,
            health: Health::new(stale_after),
        }
    }

    /// Counts a finished job by `result`.
    pub fn job_finished(&self, result: &str, duration: Duration) {
        self.jobs
            .get_or_create(&ResultLabel {
                result: result.to_owned(),
            })
            .inc();
        self.job_duration.observe(duration.as_secs_f64());
    }

    /// Notes one forge request of `method`, failed with `code` when it did.
    pub fn forge_request(&self, method: &str, elapsed: Duration, code: Option<&str>) {
        let label = MethodLabel {
            method: method.to_owned(),
        };
        self.forge_request_duration
            .get_or_create(&label)
            .observe(elapsed.as_secs_f64());
        if let Some(code) = code {
            self.forge_request_errors
                .get_or_create(&ErrorLabel {
                    method: label.method,
                    code: code.to_owned(),
                })
                .inc();
        }
    }

    /// The free space of `disk` the guard saw.
    pub fn disk_free(&self, disk: &str, bytes: u64) {
        self.disk_free_bytes
            .get_or_create(&DiskLabel {
                disk: disk.to_owned(),
            })
            .set(i64::try_from(bytes).unwrap_or(i64::MAX));
    }

    /// The text exposition (OpenMetrics), with scrape-time values read now.
    pub fn encode(&self) -> String {
        let journal = self.journal_dir.as_deref().map_or(0, folder_size);
        self.journal_bytes
            .set(i64::try_from(journal).unwrap_or(i64::MAX));
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

/// The total size of the files under `dir` (symlinks not followed); 0 when it is absent.
pub fn folder_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| match entry.file_type() {
            Ok(kind) if kind.is_dir() => folder_size(&entry.path()),
            Ok(kind) if kind.is_file() => entry.metadata().map_or(0, |m| m.len()),
            _ => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_is_exposed_with_its_prefix_and_values() {
        let journal = tempfile::tempdir().expect("dir");
        std::fs::create_dir(journal.path().join("task-1")).expect("dir");
        std::fs::write(journal.path().join("task-1/rows"), [0u8; 700]).expect("file");
        std::fs::write(journal.path().join("state"), [0u8; 300]).expect("file");
        let metrics = Metrics::new(Some(journal.path().to_owned()), Duration::from_secs(30));
        metrics.job_finished("success", Duration::from_secs(2));
        metrics.job_finished("failure", Duration::from_secs(3));
        metrics.job_finished("success", Duration::from_secs(1));
        metrics.forge_request("FetchTask", Duration::from_millis(20), None);
        metrics.forge_request("UpdateLog", Duration::from_millis(20), Some("unavailable"));
        metrics.capacity.set(4);
        metrics.disk_free("work", 12345);
        let text = metrics.encode();
        for expected in [
            "hearth_jobs_total{result=\"success\"} 2",
            "hearth_jobs_total{result=\"failure\"} 1",
            "hearth_job_duration_seconds_count 3",
            "hearth_job_duration_seconds_sum 6.0",
            "hearth_forge_request_duration_seconds_count{method=\"FetchTask\"} 1",
            "hearth_forge_request_errors_total{method=\"UpdateLog\",code=\"unavailable\"} 1",
            "hearth_capacity 4",
            "hearth_running_jobs 0",
            "hearth_journal_size_bytes 1000",
            "hearth_disk_free_bytes{disk=\"work\"} 12345",
            "hearth_disk_guard_paused 0",
            "hearth_log_rows_sent_total 0",
            "hearth_cache_hits_total 0",
        ] {
            assert!(text.lines().any(|l| l == expected), "{expected}:\n{text}");
        }
    }

    #[test]
    fn an_absent_journal_measures_zero() {
        let metrics = Metrics::new(
            Some(PathBuf::from("/nonexistent/hearth/journal")),
            Duration::from_secs(30),
        );
        assert!(metrics
            .encode()
            .lines()
            .any(|l| l == "hearth_journal_size_bytes 0"));
    }
}
