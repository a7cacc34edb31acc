//! Removing what the jobs of a runner that died left behind ([`Backend::reap`]).
//!
//! A runner killed with `SIGKILL` (or by a power loss) cannot `finish` its jobs: their folders
//! stay under the root, and their background processes may run on. Every job folder holds a
//! record of whose job it is (see `record`). `reap(owner)` looks at each folder directly under
//! the root and removes one when:
//!
//! - its record carries every label of `owner` (a folder without a record, made by an older
//!   Hearth or by someone else, is left alone, as is the tool cache);
//! - this backend does not hold it: the job folders of the jobs it runs and the folders it
//!   set aside for reuse are in its [`Live`] set, shared by its clones;
//! - the runner that wrote the record is gone, or is this very process (a job of another
//!   `HostBackend` in this process that was dropped or forgotten). A record of a runner that
//!   still runs means another runner shares the root: its jobs are skipped with a warning.
//!
//! First the job's processes are stopped (found by the tracking id in the record, as `finish`
//! finds them), then the folder is removed. Nothing is followed out of the root: entries that
//! are symlinks are skipped, the record is not read through one, and tree removal never
//! follows one.
//!
//! The [`Live`] set is what keeps `reap` away from jobs running now: a new folder is added to
//! it before its record is written, and folders set aside are renamed in and out of it under
//! its lock, so a folder of this backend never has a record while outside the set.
//!
//! [`Backend::reap`]: hearth_backend::Backend::reap

use std::collections::HashSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use hearth_backend::{BackendError, Reaped};

use super::exec::{lock, TRACKING_VAR};
use super::record::{Record, Runner, RunnerState};
use super::remove::remove_tree;
use super::{stop_survey, HostBackend, Survey};

/// The folders a backend (and its clones) holds now: its running jobs' folders, the folders it
/// set aside for reuse, and those it is reaping.
#[derive(Debug, Default)]
pub(crate) struct Live {
    dirs: Mutex<HashSet<PathBuf>>,
}

impl Live {
    pub fn add(&self, dir: &Path) {
        lock(&self.dirs).insert(dir.to_path_buf());
    }

    pub fn remove(&self, dir: &Path) {
        lock(&self.dirs).remove(dir);
    }

    /// Renames the folder `from` (held) to `to`, which is held instead: one step under the
    /// lock, so that `reap` never sees it unheld under either name.
    pub fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut dirs = lock(&self.dirs);
        fs::rename(from, to)?;
        dirs.remove(from);
        dirs.insert(to.to_path_buf());
        Ok(())
    }

    /// Holds `dir` for a reap unless something holds it already.
    fn claim(self: &Arc<Self>, dir: &Path) -> Option<Claim> {
        lock(&self.dirs).insert(dir.to_path_buf()).then(|| Claim {
            live: self.clone(),
            dir: dir.to_path_buf(),
        })
    }
}

/// A folder being reaped, released when done (or when the reap is dropped halfway).
struct Claim {
    live: Arc<Live>,
    dir: PathBuf,
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.live.remove(&self.dir);
    }
}

/// A leftover job folder to remove.
struct Leftover {
    claim: Claim,
    record: Record,
}

impl HostBackend {
    /// Removes what jobs carrying every label of `owner` left behind (the typed form of
    /// [`Backend::reap`](hearth_backend::Backend::reap); see the `reap` module). Folders that
    /// cannot be cleaned are logged and left for the next reap; only a root that cannot be
    /// read is an error.
    pub async fn reap_leftovers(&self, owner: &[(String, String)]) -> Result<Reaped, BackendError> {
        let root = std::path::absolute(&self.root).map_err(|e| {
            BackendError::Cleanup(format!("cannot find {}: {e}", self.root.display()))
        })?;
        let keep = [root.join("tool-cache"), self.tool_cache(&root)];
        let live = self.live.clone();
        let owner = owner.to_vec();
        let listing = root.clone();
        let leftovers = tokio::task::spawn_blocking(move || {
            find_leftovers(&listing, &keep, &owner, &live, Runner::this_process())
        })
        .await
        .map_err(|e| BackendError::Cleanup(format!("looking for leftovers: {e}")))?
        .map_err(|e| BackendError::Cleanup(format!("cannot list {}: {e}", root.display())))?;

        let mut reaped = Reaped::default();
        for leftover in leftovers {
            self.reap_one(leftover, &mut reaped).await;
        }
        Ok(reaped)
    }

    /// Stops a leftover job's processes and removes its folder, noting both in `reaped`.
    async fn reap_one(&self, leftover: Leftover, reaped: &mut Reaped) {
        let Leftover { claim, record } = leftover;
        let dir = claim.dir.clone();
        // After a restart no process of the job is left (and its ticks mean nothing today).
        if record.runner.boot == Runner::this_process().boot {
            let survey = Survey {
                needle: format!("{TRACKING_VAR}={}", record.tracking_id).into_bytes(),
                groups: HashSet::new(),
                since: record.job_started,
            };
            let (stopped, outcome) = stop_survey(&survey, self.terminate_grace).await;
            if !stopped.is_empty() {
                let mut pids: Vec<i32> = stopped.into_iter().collect();
                pids.sort_unstable();
                let pids: Vec<String> = pids.iter().map(i32::to_string).collect();
                reaped.removed.push(format!(
                    "processes {} of folder {}",
                    pids.join(" "),
                    dir.display()
                ));
            }
            if let Err(e) = outcome {
                // The folder still goes: a process stuck in the kernel does not need it.
                tracing::warn!(folder = %dir.display(), "stopping a leftover job's processes: {e}");
            }
        }
        let removing = dir.clone();
        match tokio::task::spawn_blocking(move || remove_tree(&removing)).await {
            Ok(Ok(())) => reaped.removed.push(format!("folder {}", dir.display())),
            Ok(Err(e)) => {
                tracing::warn!(folder = %dir.display(), error = %e, "cannot remove a leftover job folder");
            }
            Err(e) => {
                tracing::warn!(folder = %dir.display(), error = %e, "removing a leftover job folder");
            }
        }
        drop(claim);
    }
}

/// The folders directly under `root` that are leftovers of jobs carrying `owner` (see the
/// module documentation), each claimed in `live`. A missing root holds none.
fn find_leftovers(
    root: &Path,
    keep: &[PathBuf],
    owner: &[(String, String)],
    live: &Arc<Live>,
    me: &Runner,
) -> io::Result<Vec<Leftover>> {
    let entries = match fs::read_dir(root) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut leftovers = Vec::new();
    for entry in entries {
        // An entry that vanished while listed is no leftover.
        let Ok(entry) = entry else { continue };
        let dir = entry.path();
        // `file_type` does not follow a symlink: a link to elsewhere is not a job folder.
        if !entry.file_type().is_ok_and(|t| t.is_dir()) || keep.contains(&dir) {
            continue;
        }
        let record = match Record::read(&dir) {
            Ok(Some(record)) => record,
            Ok(None) => continue,
            Err(e) => {
                tracing::warn!(folder = %dir.display(), error = %e, "a job folder's record cannot be read; leaving the folder alone");
                continue;
            }
        };
        if !record.owned_by(owner) {
            continue;
        }
        match record.runner.state(me) {
            RunnerState::Dead | RunnerState::Us => {}
            RunnerState::Alive => {
                tracing::warn!(
                    folder = %dir.display(),
                    pid = record.runner.pid,
                    "a job folder of another runner process that is still running, which shares \
                     this runner's folder and owner labels; leaving it alone"
                );
                continue;
            }
            RunnerState::Unknown => {
                tracing::warn!(
                    folder = %dir.display(),
                    namespace = %record.runner.pid_namespace,
                    "a job folder of a runner in another pid namespace (another container?), \
                     which cannot be told to be gone; leaving it alone"
                );
                continue;
            }
        }
        // Held means a job of this backend (or a reap in progress): not a leftover.
        if let Some(claim) = live.claim(&dir) {
            leftovers.push(Leftover { claim, record });
        }
    }
    Ok(leftovers)
}
