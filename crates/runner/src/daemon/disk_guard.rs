//! The disk guard: no job is fetched while the work folder's disk, or Docker's data root on
//! this machine, is nearly full (`health_check.min_free_disk_space_mb`).
//!
//! Checked before each fetch (one `statvfs` per disk, cheap). Below the minimum the guard
//! pauses: one warning line naming the folder, its free space and the threshold; the metric
//! and `/readyz` say so; every backend frees what is its own to free (leftover job folders and
//! processes, folders set aside, its stopped containers, networks and volumes, the images it
//! built for Docker actions). It resumes, with one info line, once every disk has the resume
//! threshold free (`health_check.resume_free_disk_space_mb`, above the minimum so that a job
//! writing a little does not flap it). While paused it looks again every few seconds, and
//! frees space again every few minutes.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hearth_metrics::Metrics;

use crate::route::Backends;

/// How often a paused guard looks at the disks again.
const RECHECK: Duration = Duration::from_secs(2);
/// How often a paused guard frees space again (jobs still running may have written more).
const FREE_AGAIN: Duration = Duration::from_secs(5 * 60);

const MB: u64 = 1 << 20;

/// A folder whose disk is watched, named in the metric's `disk` label.
#[derive(Clone, Debug)]
pub struct Disk {
    pub name: &'static str,
    pub path: PathBuf,
}

pub struct DiskGuard {
    disks: Vec<Disk>,
    min_bytes: u64,
    resume_bytes: u64,
    paused: AtomicBool,
    backends: Backends,
    owner: Vec<(String, String)>,
    metrics: Option<Arc<Metrics>>,
}

/// A disk's free space as last read.
struct Reading<'a> {
    disk: &'a Disk,
    free: u64,
}

impl DiskGuard {
    /// A guard of `disks` with thresholds in megabytes; `None` when `min_mb` is 0 (off).
    pub fn new(
        disks: Vec<Disk>,
        min_mb: u64,
        resume_mb: u64,
        backends: Backends,
        owner: Vec<(String, String)>,
        metrics: Option<Arc<Metrics>>,
    ) -> Option<DiskGuard> {
        (min_mb > 0).then(|| DiskGuard {
            disks,
            min_bytes: min_mb.saturating_mul(MB),
            resume_bytes: resume_mb.max(min_mb).saturating_mul(MB),
            paused: AtomicBool::new(false),
            backends,
            owner,
            metrics,
        })
    }

    /// Returns when a job may be fetched: at once while every disk has room; else after
    /// pausing, freeing space and waiting until the resume threshold is free everywhere.
    pub async fn wait_for_space(&self) {
        let mut freed_at: Option<Instant> = None;
        loop {
            let readings = self.read();
            if !self.paused.load(Ordering::Relaxed) {
                let Some(low) = lowest_below(&readings, self.min_bytes) else {
                    return;
                };
                tracing::warn!(
                    "disk nearly full: {} has {} MB free, below health_check.min_free_disk_space_mb \
                     ({} MB); taking no jobs until {} MB are free, removing what is the runner's \
                     own to remove",
                    low.disk.path.display(),
                    low.free / MB,
                    self.min_bytes / MB,
                    self.resume_bytes / MB,
                );
                self.set_paused(true);
            } else if lowest_below(&readings, self.resume_bytes).is_none() {
                let free = readings.iter().map(|r| r.free).min().unwrap_or_default();
                tracing::info!(
                    "disk space is back ({} MB free at least, resume threshold {} MB); taking \
                     jobs again",
                    free / MB,
                    self.resume_bytes / MB,
                );
                self.set_paused(false);
                return;
            }
            if freed_at.is_none_or(|at| at.elapsed() >= FREE_AGAIN) {
                freed_at = Some(Instant::now());
                self.free_space().await;
                // Looked at again at once: freeing may have been enough.
                continue;
            }
            tokio::time::sleep(RECHECK).await;
        }
    }

    fn set_paused(&self, paused: bool) {
        self.paused.store(paused, Ordering::Relaxed);
        if let Some(metrics) = &self.metrics {
            metrics.disk_paused.set(i64::from(paused));
            metrics.health.disk_paused(paused);
        }
    }

    /// Every disk's free space (a disk that cannot be read is not counted: the guard is no
    /// reason to stop a runner that works).
    fn read(&self) -> Vec<Reading<'_>> {
        let mut readings = Vec::with_capacity(self.disks.len());
        for disk in &self.disks {
            match free_bytes(&disk.path) {
                Ok(free) => {
                    if let Some(metrics) = &self.metrics {
                        metrics.disk_free(disk.name, free);
                    }
                    readings.push(Reading { disk, free });
                }
                Err(e) => tracing::debug!(
                    folder = %disk.path.display(),
                    "cannot read the free space of the disk: {e}"
                ),
            }
        }
        readings
    }

    async fn free_space(&self) {
        for backend in self.backends.all() {
            match backend.free_space(&self.owner).await {
                Ok(freed) => {
                    for line in freed.removed {
                        tracing::info!("removed to free disk space: {line}");
                    }
                }
                Err(e) => tracing::warn!("cannot free disk space: {e}"),
            }
        }
    }
}

/// The reading with the least free space below `threshold`, if any.
fn lowest_below<'a, 'b>(readings: &'b [Reading<'a>], threshold: u64) -> Option<&'b Reading<'a>> {
    readings
        .iter()
        .filter(|r| r.free < threshold)
        .min_by_key(|r| r.free)
}

/// The space an unprivileged process may still use on the disk holding `path` (or its
/// nearest existing parent: the work folder is made by the first job).
pub fn free_bytes(path: &Path) -> std::io::Result<u64> {
    let existing = path
        .ancestors()
        .find(|p| p.exists())
        .unwrap_or(Path::new("/"));
    let stat = rustix::fs::statvfs(existing)?;
    Ok(stat.f_bavail.saturating_mul(stat.f_frsize))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_space_is_read_from_the_nearest_existing_folder() {
        let dir = tempfile::tempdir().expect("dir");
        let free = free_bytes(dir.path()).expect("statvfs");
        assert!(free > 0);
        let deeper = free_bytes(&dir.path().join("not/made/yet")).expect("statvfs");
        // The same disk; a little may have been written between the two reads.
        assert!(deeper.abs_diff(free) < 64 * MB, "{deeper} vs {free}");
    }

    #[test]
    fn the_lowest_disk_below_the_threshold_is_named() {
        let (a, b) = (
            Disk {
                name: "work",
                path: "/a".into(),
            },
            Disk {
                name: "docker",
                path: "/b".into(),
            },
        );
        let readings = [
            Reading {
                disk: &a,
                free: 300,
            },
            Reading {
                disk: &b,
                free: 100,
            },
        ];
        assert_eq!(lowest_below(&readings, 50).map(|r| r.free), None);
        assert_eq!(
            lowest_below(&readings, 200).map(|r| r.disk.name),
            Some("docker")
        );
        assert_eq!(
            lowest_below(&readings, 1000).map(|r| r.disk.name),
            Some("docker")
        );
    }
}
