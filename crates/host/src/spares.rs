//! Job folders kept for the next job, when the backend is asked to
//! ([`HostBackend::with_folder_reuse`](super::HostBackend::with_folder_reuse)).
//!
//! A job's folder holds a copy of the repository, which the next job of the same run needs
//! again. On some file systems creating and removing files and folders is what costs most: on
//! ext4 without a journal, every new inode skips each one freed in the last minute (a
//! buffer-cache lookup each), and with `discard` removing a folder waits for the disk. A matrix
//! of short jobs then spends most of its time making and removing copies of `.git`. So
//! `finish` puts the folder aside instead (renamed, its processes already stopped), and the next
//! `start` turns it back into a fresh one: everything in `temp/` is removed, and the workspace
//! is refreshed in place from the repository (see `refresh`). Nothing the last job left shows:
//! the folder is renamed for the new job, and what it holds is what a new folder would hold.
//!
//! A folder whose own folders (the job folder, `workspace/`, `temp/`) no longer look as they did
//! when made (mode, owner, extended attributes) is removed instead, as is one that fails to
//! refresh; the job then gets a new folder. The folders still set aside are removed when the
//! backend (its last clone) is dropped.
//!
//! A folder set aside is still the backend's: it is renamed in and out of the backend's held
//! folders (`reap::Live`) in one step, so `reap` never takes it for a leftover. It keeps its
//! last job's record until revived, so one left by a runner that died is reaped.

use std::collections::HashSet;
use std::ffi::OsString;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::copy::{CopyError, FolderId};
use super::exec::lock;
use super::ids;
use super::reap::Live;
use super::record::RECORD;
use super::refresh::{self, Owner};
use super::remove::remove_tree;

/// The names of a job folder's own folders.
pub(crate) const WORKSPACE: &str = "workspace";
pub(crate) const TEMP: &str = "temp";

/// How many names `revive` tries when one is taken.
const NAME_ATTEMPTS: usize = 8;

/// What a job's own folders (the job folder, its workspace and temp folder) looked like when
/// they were made: a reused folder must look the same.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Fresh {
    folders: [Look; 3],
}

/// A folder's mode and owner, and whether it has extended attributes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Look {
    mode: u32,
    uid: u32,
    gid: u32,
    xattrs: bool,
}

impl Fresh {
    /// How the folders of the job folder `job_dir` look now.
    pub fn read(job_dir: &Path) -> io::Result<Fresh> {
        let look = |path: &Path| -> io::Result<Look> {
            let meta = fs::symlink_metadata(path)?;
            if !meta.is_dir() {
                return Err(io::Error::other(format!(
                    "{} is no longer a folder",
                    path.display()
                )));
            }
            Ok(Look {
                mode: meta.mode(),
                uid: meta.uid(),
                gid: meta.gid(),
                xattrs: refresh::has_xattrs(path),
            })
        };
        Ok(Fresh {
            folders: [
                look(job_dir)?,
                look(&job_dir.join(WORKSPACE))?,
                look(&job_dir.join(TEMP))?,
            ],
        })
    }
}

/// A job folder set aside, and how its folders looked when made.
#[derive(Debug)]
struct Spare {
    dir: PathBuf,
    fresh: Fresh,
}

/// The folders set aside for reuse; see the module documentation.
#[derive(Debug, Default)]
pub(crate) struct Spares {
    folders: Mutex<Vec<Spare>>,
    /// The backend's held folders, which hold every folder set aside.
    live: Arc<Live>,
}

impl Spares {
    /// Spares of the backend whose held folders are `live`.
    pub fn new(live: Arc<Live>) -> Spares {
        Spares {
            folders: Mutex::default(),
            live,
        }
    }

    /// Sets the finished job's folder `job_dir` aside (renamed, so that its path is gone as
    /// after a removal). On an error the folder is where it was.
    pub fn park(&self, job_dir: &Path, fresh: Fresh) -> io::Result<()> {
        let parent = job_dir.parent().unwrap_or(job_dir);
        let dir = parent.join(ids::folder_name("spare"));
        self.live.rename(job_dir, &dir)?;
        lock(&self.folders).push(Spare { dir, fresh });
        Ok(())
    }

    /// Turns a folder set aside into a new job's folder under `root`, named for the job `name`,
    /// its workspace holding a fresh copy of `repository` (`skip`: as for the copy); returns
    /// the folder and how it looked when made. `None` when no folder is set aside, or when the
    /// one taken could not be reused (it is removed then).
    pub fn revive(
        &self,
        root: &Path,
        name: &str,
        repository: Option<&Path>,
        skip: Option<FolderId>,
    ) -> Option<(PathBuf, Fresh)> {
        let spare = lock(&self.folders).pop()?;
        match revive(&spare, root, name, repository, skip, &self.live) {
            Ok(job_dir) => Some((job_dir, spare.fresh)),
            Err((at, e)) => {
                tracing::debug!(folder = %at.display(), error = %e, "not reusing a job folder");
                if let Err(e) = remove_tree(&at) {
                    tracing::warn!(folder = %at.display(), error = %e, "cannot remove a job folder");
                }
                self.live.remove(&at);
                None
            }
        }
    }
}

impl Spares {
    /// Removes every folder set aside (the disk is short); returns those removed.
    pub fn clear(&self) -> Vec<PathBuf> {
        let folders = std::mem::take(&mut *lock(&self.folders));
        remove_spares(folders, &self.live)
    }
}

/// Removes `folders` and lets `live` forget them; returns those removed.
fn remove_spares(folders: Vec<Spare>, live: &Live) -> Vec<PathBuf> {
    let mut removed = Vec::with_capacity(folders.len());
    for spare in folders {
        match remove_tree(&spare.dir) {
            Ok(()) => removed.push(spare.dir.clone()),
            Err(e) => {
                tracing::warn!(folder = %spare.dir.display(), error = %e, "cannot remove a job folder")
            }
        }
        live.remove(&spare.dir);
    }
    removed
}

impl Drop for Spares {
    fn drop(&mut self) {
        let folders = std::mem::take(
            self.folders
                .get_mut()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        );
        remove_spares(folders, &self.live);
    }
}

/// Renames `spare` for the job (held in `live` under its new name) and makes it fresh; on
/// failure, says where the folder now is.
fn revive(
    spare: &Spare,
    root: &Path,
    name: &str,
    repository: Option<&Path>,
    skip: Option<FolderId>,
    live: &Live,
) -> Result<PathBuf, (PathBuf, io::Error)> {
    let job_dir = rename_for(&spare.dir, root, name, live).map_err(|e| (spare.dir.clone(), e))?;
    let failed = |e: io::Error| (job_dir.clone(), e);
    if Fresh::read(&job_dir).map_err(failed)? != spare.fresh {
        return Err(failed(io::Error::other("its folders were changed")));
    }
    // The record stays until `start` writes the new job's over it: a runner killed meanwhile
    // still leaves a folder `reap` knows.
    let own: HashSet<OsString> = [WORKSPACE, TEMP, RECORD]
        .into_iter()
        .map(OsString::from)
        .collect();
    refresh::remove_except(&job_dir, &own).map_err(failed)?;
    let temp = job_dir.join(TEMP);
    refresh::remove_except(&temp, &HashSet::new()).map_err(failed)?;
    let workspace = job_dir.join(WORKSPACE);
    match repository {
        Some(repository) => {
            let owner = Owner::of_new_files_in(&fs::metadata(&workspace).map_err(failed)?);
            refresh::refresh_tree(repository, &workspace, skip, owner).map_err(
                |CopyError { path, source }| {
                    failed(io::Error::new(
                        source.kind(),
                        format!("{}: {source}", path.display()),
                    ))
                },
            )?;
        }
        None => refresh::remove_except(&workspace, &HashSet::new()).map_err(failed)?,
    }
    Ok(job_dir)
}

/// Renames the folder `dir` to a new job folder name under `root`, held in `live`.
fn rename_for(dir: &Path, root: &Path, name: &str, live: &Live) -> io::Result<PathBuf> {
    for _ in 0..NAME_ATTEMPTS {
        let job_dir = root.join(ids::folder_name(name));
        // A rename onto an empty folder would replace it: never take a name in use.
        if fs::symlink_metadata(&job_dir).is_ok() {
            continue;
        }
        live.rename(dir, &job_dir)?;
        return Ok(job_dir);
    }
    Err(io::ErrorKind::AlreadyExists.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A job folder as `start` makes it, with `file` in its workspace.
    fn job_folder(root: &Path, file: &str) -> (PathBuf, Fresh) {
        let job_dir = root.join(ids::folder_name("job"));
        for dir in [&job_dir, &job_dir.join(WORKSPACE), &job_dir.join(TEMP)] {
            fs::create_dir(dir).unwrap();
        }
        fs::write(job_dir.join(WORKSPACE).join(file), "x").unwrap();
        let fresh = Fresh::read(&job_dir).unwrap();
        (job_dir, fresh)
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_parked_folder_comes_back_fresh_under_a_new_name() {
        let root = tempfile::tempdir().unwrap();
        let repo = tempfile::tempdir().unwrap();
        fs::write(repo.path().join("file"), "x").unwrap();
        let spares = Spares::default();
        let (job_dir, fresh) = job_folder(root.path(), "file");
        fs::write(job_dir.join(TEMP).join("left"), "x").unwrap();
        fs::write(job_dir.join(WORKSPACE).join("built"), "x").unwrap();
        fs::write(job_dir.join("beside"), "x").unwrap();

        spares.park(&job_dir, fresh).unwrap();
        assert!(!job_dir.exists());
        let (next, next_fresh) = spares
            .revive(root.path(), "next job", Some(repo.path()), None)
            .unwrap();
        assert_eq!(next_fresh, fresh);
        assert!(next
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("next_job-"));
        assert_eq!(names(&next), [TEMP, WORKSPACE]);
        assert!(names(&next.join(TEMP)).is_empty());
        assert_eq!(names(&next.join(WORKSPACE)), ["file"]);
        assert!(spares.revive(root.path(), "x", None, None).is_none());
    }

    #[test]
    fn a_changed_folder_is_removed_and_the_rest_on_drop() {
        let root = tempfile::tempdir().unwrap();
        let spares = Spares::default();
        let (changed, fresh) = job_folder(root.path(), "a");
        let mode = fs::metadata(changed.join(TEMP)).unwrap().mode() & 0o777;
        let other = std::os::unix::fs::PermissionsExt::from_mode(mode ^ 0o005);
        fs::set_permissions(changed.join(TEMP), other).unwrap();
        spares.park(&changed, fresh).unwrap();
        assert!(spares.revive(root.path(), "x", None, None).is_none());
        assert!(names(root.path()).is_empty());

        let (kept, fresh) = job_folder(root.path(), "b");
        spares.park(&kept, fresh).unwrap();
        assert_eq!(names(root.path()).len(), 1);
        drop(spares);
        assert!(names(root.path()).is_empty());
    }
}
