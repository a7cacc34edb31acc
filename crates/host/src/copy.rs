//! Copying a repository's working tree into a job's workspace.
//!
//! A plain copy rather than `git clone` or `git worktree add`: those only carry what is
//! committed, while a local run wants the tree *as it is*, dirty and untracked files included,
//! and steps want a `.git` they can run `git` against. So everything is copied, `.git` too:
//!
//! - symlinks stay symlinks with the same target (relative links keep working inside the copy,
//!   and links to folders are not descended into);
//! - file modes are kept (`std::fs::copy` copies them), so executable scripts stay executable;
//!   folder modes are applied after their contents, so read-only folders copy too;
//! - FIFOs, sockets and device files are skipped: they are not part of a working tree.
//!
//! Limitation: when the repository is itself a linked worktree or a submodule, its `.git` is a
//! *file* pointing at a git dir elsewhere; the copy points at the same git dir, so git commands
//! in steps then share that git dir's index and HEAD with the original.

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// A failure, with the path it happened at.
#[derive(Debug)]
pub(crate) struct CopyError {
    pub path: PathBuf,
    pub source: io::Error,
}

/// A folder identity (device, inode), to recognise a folder whatever path reaches it.
pub(crate) type FolderId = (u64, u64);

/// The identity of the folder at `path`, if it exists.
pub(crate) fn folder_id(path: &Path) -> Option<FolderId> {
    fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// Copies the contents of folder `src` into the existing folder `dst`. A folder whose identity
/// is `skip` is left out: the backend's own root may live inside the repository, and copying
/// it would copy the copy.
pub(crate) fn copy_tree(src: &Path, dst: &Path, skip: Option<FolderId>) -> Result<(), CopyError> {
    let at = |path: &Path| {
        let path = path.to_path_buf();
        move |source| CopyError { path, source }
    };
    // Folder modes to apply once their contents are in place.
    let mut modes: Vec<(PathBuf, fs::Permissions)> = Vec::new();
    let mut pending: Vec<(PathBuf, PathBuf)> = vec![(src.to_path_buf(), dst.to_path_buf())];
    while let Some((from_dir, to_dir)) = pending.pop() {
        for entry in fs::read_dir(&from_dir).map_err(at(&from_dir))? {
            let entry = entry.map_err(at(&from_dir))?;
            let from = entry.path();
            let to = to_dir.join(entry.file_name());
            let kind = entry.file_type().map_err(at(&from))?;
            if kind.is_symlink() {
                let target = fs::read_link(&from).map_err(at(&from))?;
                std::os::unix::fs::symlink(&target, &to).map_err(at(&to))?;
            } else if kind.is_dir() {
                let meta = entry.metadata().map_err(at(&from))?;
                if skip == Some((meta.dev(), meta.ino())) {
                    continue;
                }
                fs::create_dir(&to).map_err(at(&to))?;
                modes.push((to.clone(), meta.permissions()));
                pending.push((from, to));
            } else if kind.is_file() {
                fs::copy(&from, &to).map_err(at(&from))?;
            } else {
                tracing::debug!(path = %from.display(), "not copying a special file");
            }
        }
    }
    // Any order works: every folder already holds all of its contents.
    for (path, perms) in modes {
        fs::set_permissions(&path, perms).map_err(at(&path))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn copies_links_modes_and_read_only_folders() {
        let base = tempfile::tempdir().unwrap();
        let src = base.path().join("src");
        fs::create_dir_all(src.join("d/e")).unwrap();
        fs::write(src.join("d/e/f"), "deep").unwrap();
        fs::write(src.join("run.sh"), "#!/bin/sh\n").unwrap();
        fs::set_permissions(src.join("run.sh"), fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::symlink("d", src.join("dlink")).unwrap();
        std::os::unix::fs::symlink("nowhere", src.join("dangling")).unwrap();
        fs::set_permissions(src.join("d"), fs::Permissions::from_mode(0o555)).unwrap();
        let dst = base.path().join("dst");
        fs::create_dir(&dst).unwrap();

        copy_tree(&src, &dst, None).unwrap();

        assert_eq!(fs::read_to_string(dst.join("d/e/f")).unwrap(), "deep");
        let mode = |p: &Path| fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dst.join("run.sh")), 0o755);
        assert_eq!(mode(&dst.join("d")), 0o555);
        assert_eq!(fs::read_link(dst.join("dlink")).unwrap(), Path::new("d"));
        assert_eq!(
            fs::read_link(dst.join("dangling")).unwrap(),
            Path::new("nowhere")
        );

        for p in [src.join("d"), dst.join("d")] {
            fs::set_permissions(p, fs::Permissions::from_mode(0o755)).unwrap();
        }
    }

    #[test]
    fn skips_the_folder_being_copied_into() {
        let base = tempfile::tempdir().unwrap();
        let src = base.path();
        fs::write(src.join("a"), "a").unwrap();
        let inner = src.join("runner-root");
        fs::create_dir(&inner).unwrap();
        let dst = inner.join("ws");
        fs::create_dir(&dst).unwrap();
        copy_tree(src, &dst, folder_id(&inner)).unwrap();
        assert!(dst.join("a").exists());
        assert!(!dst.join("runner-root").exists());
    }

    #[test]
    fn reports_the_failing_path() {
        let base = tempfile::tempdir().unwrap();
        let err = copy_tree(&base.path().join("missing"), base.path(), None).unwrap_err();
        assert!(err.path.ends_with("missing"));
        assert_eq!(err.source.kind(), io::ErrorKind::NotFound);
    }
}
