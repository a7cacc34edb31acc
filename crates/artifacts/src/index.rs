//! The artifacts a server holds: per run, by name, each with an id; its bytes (the zip the
//! toolkit made) in `<folder>/<run>/<name>.zip` once uploaded.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// One artifact.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Artifact {
    pub id: i64,
    /// The run's backend id (the scope: a run sees its own artifacts only).
    pub run: String,
    /// The backend id of the job that made it.
    pub job: String,
    pub name: String,
    /// The bytes uploaded, once they are.
    pub uploaded: Option<u64>,
    /// `sha256:<hex>`, as the toolkit gives it at finalization.
    pub digest: Option<String>,
    pub created: SystemTime,
    /// Finalized: listed and downloadable.
    pub finalized: bool,
}

/// Why a name or an id cannot be a file's.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error(
        "the artifact name is empty, longer than 255 bytes, `.` or `..`, or holds `/`, `\\` or NUL"
    )]
    BadName,
    #[error("the run id may hold letters, digits, `-` and `_` only")]
    BadRun,
}

/// Checks an artifact's name: it becomes a file name.
pub fn check_name(name: &str) -> Result<(), NameError> {
    let bad = name.is_empty()
        || name.len() > 255
        || name == "."
        || name == ".."
        || name.contains(['/', '\\', '\0']);
    if bad {
        Err(NameError::BadName)
    } else {
        Ok(())
    }
}

/// Checks a run id: it becomes a folder name.
pub fn check_run(run: &str) -> Result<(), NameError> {
    let good = !run.is_empty()
        && run.len() <= 128
        && run
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if good {
        Ok(())
    } else {
        Err(NameError::BadRun)
    }
}

/// The artifacts, in memory: one server lives as long as the run whose artifacts it holds.
#[derive(Debug, Default)]
pub struct Index {
    next: i64,
    artifacts: BTreeMap<i64, Artifact>,
}

impl Index {
    /// Where artifact `artifact`'s zip is kept under `folder`.
    pub fn file(folder: &Path, artifact: &Artifact) -> PathBuf {
        folder
            .join(&artifact.run)
            .join(format!("{}.zip", artifact.name))
    }

    /// The artifact of `run` named `name`, finalized or not.
    pub fn named(&self, run: &str, name: &str) -> Option<&Artifact> {
        self.artifacts
            .values()
            .find(|a| a.run == run && a.name == name)
    }

    pub fn get(&self, id: i64) -> Option<&Artifact> {
        self.artifacts.get(&id)
    }

    pub fn get_mut(&mut self, id: i64) -> Option<&mut Artifact> {
        self.artifacts.get_mut(&id)
    }

    /// A new artifact of `run` named `name`, replacing one not yet finalized; `None` when a
    /// finalized one has the name (artifacts never change: delete it first).
    pub fn create(&mut self, run: &str, job: &str, name: &str) -> Option<&Artifact> {
        match self.named(run, name) {
            Some(existing) if existing.finalized => return None,
            Some(existing) => {
                let id = existing.id;
                self.artifacts.remove(&id);
            }
            None => {}
        }
        self.next += 1;
        let id = self.next;
        self.artifacts.insert(
            id,
            Artifact {
                id,
                run: run.to_owned(),
                job: job.to_owned(),
                name: name.to_owned(),
                uploaded: None,
                digest: None,
                created: SystemTime::now(),
                finalized: false,
            },
        );
        self.artifacts.get(&id)
    }

    /// The finalized artifacts of `run`, oldest first.
    pub fn finalized<'a>(&'a self, run: &'a str) -> impl Iterator<Item = &'a Artifact> {
        self.artifacts
            .values()
            .filter(move |a| a.run == run && a.finalized)
    }

    pub fn remove(&mut self, id: i64) -> Option<Artifact> {
        self.artifacts.remove(&id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_are_no_file_name_are_refused() {
        for (name, good) in [
            ("build output", true),
            ("report.v2", true),
            ("", false),
            (".", false),
            ("..", false),
            ("a/b", false),
            ("a\\b", false),
            ("a\0", false),
        ] {
            assert_eq!(check_name(name).is_ok(), good, "{name:?}");
        }
        assert!(check_name(&"x".repeat(256)).is_err());
        assert!(check_run("3f2a-run_1").is_ok());
        assert!(check_run("../x").is_err());
        assert!(check_run("").is_err());
    }

    #[test]
    fn a_finalized_name_is_taken_an_unfinished_one_replaced() {
        let mut index = Index::default();
        let first = index.create("run", "job", "out").unwrap().id;
        let second = index.create("run", "job", "out").unwrap().id;
        assert_ne!(first, second);
        assert!(index.get(first).is_none());
        index.get_mut(second).unwrap().finalized = true;
        assert!(index.create("run", "job", "out").is_none());
        // Another run has names of its own.
        assert!(index.create("other", "job", "out").is_some());
        assert_eq!(index.finalized("run").count(), 1);
        assert_eq!(index.finalized("other").count(), 0);
    }
}
