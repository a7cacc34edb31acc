//! Paths in two worlds: as the job's processes see them ([`JobPath`]) and as the runner reaches
//! files on its own machine ([`HostPath`]). In a container the two differ (`/__w/repo/repo` in
//! the job is a volume or a copy on the host, or not on the host at all when the runner talks
//! to a remote Docker); keeping them apart in the types makes mixing them up a compile error,
//! not a bug found in a container job.

use std::fmt;
use std::path::{Path, PathBuf};

/// A path as the job's processes see it: always a POSIX path, absolute, in the job's file
/// system (the host's for the host backend, the container's for a container backend).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobPath(String);

impl JobPath {
    /// A job path from its text. Relative paths are taken as they are; callers make them
    /// absolute with [`JobPath::join`] on a folder of the job.
    pub fn new(path: impl Into<String>) -> JobPath {
        JobPath(path.into())
    }

    /// `relative` under this folder; an absolute `relative` replaces it, as a shell's `cd`
    /// and `PathBuf::join` do. A `/` is never doubled.
    pub fn join(&self, relative: &str) -> JobPath {
        if relative.starts_with('/') {
            return JobPath(relative.to_owned());
        }
        if relative.is_empty() {
            return self.clone();
        }
        let base = self.0.trim_end_matches('/');
        JobPath(format!("{base}/{relative}"))
    }

    /// The part of this path under `folder` (without a leading `/`), if it is under it.
    pub fn strip_prefix(&self, folder: &JobPath) -> Option<&str> {
        let base = folder.0.trim_end_matches('/');
        let rest = self.0.strip_prefix(base)?;
        if rest.is_empty() {
            Some("")
        } else {
            rest.strip_prefix('/')
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for JobPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A path on the machine the runner runs on: a folder the runner prepared (an action's
/// checkout), a repository to copy in.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HostPath(PathBuf);

impl HostPath {
    pub fn new(path: impl Into<PathBuf>) -> HostPath {
        HostPath(path.into())
    }

    pub fn join(&self, relative: impl AsRef<Path>) -> HostPath {
        HostPath(self.0.join(relative))
    }

    pub fn as_path(&self) -> &Path {
        &self.0
    }
}

impl fmt::Display for HostPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.display().fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_and_strip() {
        let w = JobPath::new("/__w/repo/repo/");
        assert_eq!(w.join("src").as_str(), "/__w/repo/repo/src");
        assert_eq!(w.join("/etc").as_str(), "/etc");
        assert_eq!(w.join("").as_str(), "/__w/repo/repo/");
        let inner = JobPath::new("/__w/repo/repo/src/a.rs");
        assert_eq!(inner.strip_prefix(&w), Some("src/a.rs"));
        assert_eq!(JobPath::new("/__w/repo/repox").strip_prefix(&w), None);
        assert_eq!(JobPath::new("/__w/repo/repo").strip_prefix(&w), Some(""));
    }
}
