//! Files of the job known to be empty, so that reading them costs no exec: the engine empties
//! the file-command files before every step and reads each of them after it, and most steps
//! write none. After anything ran in the job, the first read of such a file checks them all
//! in one exec (which are not empty any more), instead of one exec per file.

use std::collections::HashSet;
use std::sync::Mutex;

use hearth_backend::{BackendError, JobPath};

use crate::files::PodFiles;

#[derive(Default)]
pub struct KnownEmpty {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Empty when last looked at.
    paths: HashSet<String>,
    /// Something ran in the job since: `paths` must be checked before it is believed.
    stale: bool,
}

impl KnownEmpty {
    /// `paths` were just emptied (and nothing else is vouched for).
    pub fn emptied(&self, paths: &[JobPath]) {
        if let Ok(mut state) = self.state.lock() {
            state.paths = paths.iter().map(|p| p.as_str().to_owned()).collect();
            state.stale = false;
        }
    }

    /// Whether all of `paths` are empty for sure without looking (nothing ran since).
    pub fn are_empty(&self, paths: &[JobPath]) -> bool {
        match self.state.lock() {
            Ok(state) => !state.stale && paths.iter().all(|p| state.paths.contains(p.as_str())),
            Err(_) => false,
        }
    }

    /// A process ran, or is about to run, in the job: it may write any file.
    pub fn ran(&self) {
        if let Ok(mut state) = self.state.lock() {
            state.stale = true;
        }
    }

    /// `path` was written.
    pub fn written(&self, path: &JobPath) {
        if let Ok(mut state) = self.state.lock() {
            state.paths.remove(path.as_str());
        }
    }

    /// Whether `path` is empty for sure, checking every known one in one exec when needed.
    pub async fn is_empty(&self, files: &PodFiles, path: &JobPath) -> Result<bool, BackendError> {
        let check: Vec<String> = match self.state.lock() {
            Ok(state) if !state.paths.contains(path.as_str()) => return Ok(false),
            Ok(state) if !state.stale => return Ok(true),
            Ok(state) => state.paths.iter().cloned().collect(),
            Err(_) => return Ok(false),
        };
        let changed = files.not_empty(&check).await?;
        let Ok(mut state) = self.state.lock() else {
            return Ok(false);
        };
        for path in changed {
            state.paths.remove(&path);
        }
        state.stale = false;
        Ok(state.paths.contains(path.as_str()))
    }
}
