//! Turning a used workspace back into a fresh copy of the repository, in place.
//!
//! A reused job folder (see `spares`) still holds the last job's workspace. Rather than
//! removing it and copying the repository anew, [`refresh_tree`] changes only what differs, so
//! that the files and folders themselves are kept: creating and removing them is what costs
//! on some file systems (on ext4 without a journal, every new inode skips each one freed in
//! the last minute; with `discard`, removing a folder waits for the disk).
//!
//! The result is what [`copy_tree`](super::copy::copy_tree) into an empty folder gives: the
//! same names, kinds, contents, modes and link targets, whatever the last job did. What cannot
//! be put right in place is removed and copied afresh:
//!
//! - an entry of another kind (a folder where the repository has a file, a symlink where it has
//!   a folder, a FIFO, ...), or one the repository does not have;
//! - a file with other hard links: writing into it would change the other names too (a job may
//!   have linked it into the tool cache);
//! - an entry owned by another user or group, or carrying extended attributes (ACLs, security
//!   labels, `user.*`), which a fresh copy would not have. Where every file has a label (SELinux),
//!   this copies everything afresh: correct, only not faster.
//!
//! Files whose contents are already right are not written (their modification time stays that
//! of the earlier copy); the others are overwritten and cut to length.

use std::collections::HashSet;
use std::ffi::{CString, OsString};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::copy::{CopyError, FolderId};
use super::remove::remove_tree;

/// The owner a file created in the workspace gets: this process's user, and its group unless
/// the workspace is set-group-ID (then the workspace's group, as for every folder made in it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Owner {
    pub uid: u32,
    pub gid: u32,
}

impl Owner {
    /// Who owns what is created inside `folder`.
    pub fn of_new_files_in(folder: &fs::Metadata) -> Owner {
        // SAFETY: geteuid and getegid take nothing and cannot fail.
        let (uid, egid) = unsafe { (libc::geteuid(), libc::getegid()) };
        let gid = if folder.mode() & libc::S_ISGID != 0 {
            folder.gid()
        } else {
            egid
        };
        Owner { uid, gid }
    }

    fn owns(self, meta: &fs::Metadata) -> bool {
        meta.uid() == self.uid && meta.gid() == self.gid
    }
}

/// Makes the existing folder `dst` hold exactly what [`copy_tree`](super::copy::copy_tree)
/// would copy from `src` into an empty folder (see the module documentation). `owner` is who
/// owns new files in `dst`; a folder whose identity is `skip` is left out, as the copy does.
pub(crate) fn refresh_tree(
    src: &Path,
    dst: &Path,
    skip: Option<FolderId>,
    owner: Owner,
) -> Result<(), CopyError> {
    let at = |path: &Path| {
        let path = path.to_path_buf();
        move |source| CopyError { path, source }
    };
    // Folder modes to apply once their contents are right (they may lack write permission).
    let mut modes: Vec<(PathBuf, fs::Permissions)> = Vec::new();
    let mut pending: Vec<(PathBuf, PathBuf)> = vec![(src.to_path_buf(), dst.to_path_buf())];
    while let Some((from_dir, to_dir)) = pending.pop() {
        let mut wanted = Vec::new();
        for entry in fs::read_dir(&from_dir).map_err(at(&from_dir))? {
            let entry = entry.map_err(at(&from_dir))?;
            let kind = entry.file_type().map_err(at(&entry.path()))?;
            if kind.is_dir() {
                let meta = entry.metadata().map_err(at(&entry.path()))?;
                if skip == Some((meta.dev(), meta.ino())) {
                    continue;
                }
            } else if !kind.is_file() && !kind.is_symlink() {
                continue;
            }
            wanted.push((entry.file_name(), kind));
        }
        let names = wanted.iter().map(|(name, _)| name.clone()).collect();
        remove_except(&to_dir, &names).map_err(at(&to_dir))?;

        for (name, kind) in wanted {
            let from = from_dir.join(&name);
            let to = to_dir.join(&name);
            let existing = match fs::symlink_metadata(&to) {
                Ok(meta) => Some(meta),
                Err(e) if e.kind() == io::ErrorKind::NotFound => None,
                Err(e) => return Err(at(&to)(e)),
            };
            if kind.is_symlink() {
                let target = fs::read_link(&from).map_err(at(&from))?;
                let same = existing.as_ref().is_some_and(|meta| {
                    meta.file_type().is_symlink()
                        && meta.uid() == owner.uid
                        && fs::read_link(&to).is_ok_and(|t| t == target)
                });
                if !same {
                    clear(&to, existing.as_ref()).map_err(at(&to))?;
                    std::os::unix::fs::symlink(&target, &to).map_err(at(&to))?;
                }
            } else if kind.is_dir() {
                let meta = fs::metadata(&from).map_err(at(&from))?;
                match existing {
                    Some(old) if old.is_dir() && reusable(&to, &old, owner) => {
                        // Writable while its contents are put right; its mode comes last.
                        if old.mode() & 0o700 != 0o700 {
                            fs::set_permissions(
                                &to,
                                fs::Permissions::from_mode(old.mode() | 0o700),
                            )
                            .map_err(at(&to))?;
                        }
                    }
                    other => {
                        clear(&to, other.as_ref()).map_err(at(&to))?;
                        fs::create_dir(&to).map_err(at(&to))?;
                    }
                }
                modes.push((to.clone(), meta.permissions()));
                pending.push((from, to));
            } else {
                match existing {
                    Some(old)
                        if old.is_file() && old.nlink() == 1 && reusable(&to, &old, owner) =>
                    {
                        overwrite(&from, &to, &old).map_err(at(&to))?;
                    }
                    other => {
                        clear(&to, other.as_ref()).map_err(at(&to))?;
                        fs::copy(&from, &to).map_err(at(&from))?;
                    }
                }
            }
        }
    }
    for (path, perms) in modes {
        fs::set_permissions(&path, perms).map_err(at(&path))?;
    }
    Ok(())
}

/// Removes the entries of the folder `dir` whose name is not in `keep` (an entry the
/// refresh keeps but of the wrong kind is cleared when its name comes up).
pub(crate) fn remove_except(dir: &Path, keep: &HashSet<OsString>) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if !keep.contains(&entry.file_name()) {
            let path = entry.path();
            let meta = fs::symlink_metadata(&path)?;
            clear(&path, Some(&meta))?;
        }
    }
    Ok(())
}

/// Removes whatever is at `path` (described by `meta`, `None` when nothing is).
fn clear(path: &Path, meta: Option<&fs::Metadata>) -> io::Result<()> {
    match meta {
        None => Ok(()),
        Some(meta) if meta.is_dir() => remove_tree(path),
        Some(_) => fs::remove_file(path),
    }
}

/// Whether the entry at `path` can be kept as it is: owned as a new one would be, without
/// extended attributes.
fn reusable(path: &Path, meta: &fs::Metadata, owner: Owner) -> bool {
    owner.owns(meta) && !has_xattrs(path)
}

/// Whether the entry at `path` (not following a symlink) has extended attributes. An error
/// counts as having some (the entry is then replaced), but for `ENOTSUP`: a file system
/// without them.
pub(crate) fn has_xattrs(path: &Path) -> bool {
    let Ok(c_path) = CString::new(path.as_os_str().as_bytes()) else {
        return true;
    };
    // SAFETY: a NUL-terminated path; with a null buffer and size 0, llistxattr only returns
    // the size the list of names would take.
    let size = unsafe { libc::llistxattr(c_path.as_ptr(), std::ptr::null_mut(), 0) };
    if size < 0 {
        return io::Error::last_os_error().raw_os_error() != Some(libc::ENOTSUP);
    }
    size > 0
}

/// Makes the file `to` (a plain file with no other links, described by `old`) hold the
/// contents and mode of `from`, writing only when the contents differ.
fn overwrite(from: &Path, to: &Path, old: &fs::Metadata) -> io::Result<()> {
    let mut src = File::open(from)?;
    let src_meta = src.metadata()?;
    // Readable and writable for the comparison and the write; the mode is set last.
    if old.mode() & 0o600 != 0o600 {
        fs::set_permissions(to, fs::Permissions::from_mode(old.mode() | 0o600))?;
    }
    let mut dst = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(to)?;
    if old.len() != src_meta.len() || !same_contents(&mut src, &mut dst)? {
        src.seek(SeekFrom::Start(0))?;
        dst.seek(SeekFrom::Start(0))?;
        // Not truncated first: ext4 writes a file out at once when it is truncated to nothing
        // and written again.
        io::copy(&mut src, &mut dst)?;
        dst.set_len(src_meta.len())?;
    }
    dst.set_permissions(src_meta.permissions())
}

/// Whether two files of the same length hold the same bytes.
fn same_contents(a: &mut File, b: &mut File) -> io::Result<bool> {
    let mut left = vec![0u8; 64 * 1024];
    let mut right = vec![0u8; 64 * 1024];
    loop {
        let n = read_full(a, &mut left)?;
        let m = read_full(b, &mut right)?;
        if n != m || left[..n] != right[..m] {
            return Ok(false);
        }
        if n == 0 {
            return Ok(true);
        }
    }
}

/// Reads until `buf` is full or the file ends; returns how much was read.
fn read_full(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::super::copy::{copy_tree, folder_id};
    use super::*;
    use std::os::unix::fs::symlink;

    fn owner(dir: &Path) -> Owner {
        Owner::of_new_files_in(&fs::metadata(dir).unwrap())
    }

    /// Every entry under `dir`: its path, kind, mode and contents or link target.
    fn listing(dir: &Path) -> Vec<String> {
        let mut out = Vec::new();
        let mut pending = vec![dir.to_path_buf()];
        while let Some(d) = pending.pop() {
            for entry in fs::read_dir(&d).unwrap().flatten() {
                let path = entry.path();
                let meta = fs::symlink_metadata(&path).unwrap();
                let rel = path.strip_prefix(dir).unwrap().display().to_string();
                let mode = meta.mode() & 0o7777;
                if meta.file_type().is_symlink() {
                    let target = fs::read_link(&path).unwrap();
                    out.push(format!("{rel} -> {}", target.display()));
                } else if meta.is_dir() {
                    out.push(format!("{rel}/ {mode:o}"));
                    pending.push(path);
                } else {
                    let text = fs::read_to_string(&path).unwrap_or_default();
                    out.push(format!("{rel} {mode:o} {text:?}"));
                }
            }
        }
        out.sort();
        out
    }

    fn make_writable(dir: &Path) {
        for entry in fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            let meta = fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
                make_writable(&path);
            }
        }
    }

    /// A source tree with a bit of everything.
    fn source(base: &Path) -> PathBuf {
        let src = base.join("src");
        fs::create_dir_all(src.join("d/e")).unwrap();
        fs::write(src.join("d/e/f"), "deep").unwrap();
        fs::write(src.join("same-size"), "aaaa").unwrap();
        fs::write(src.join("run.sh"), "#!/bin/sh\n").unwrap();
        fs::set_permissions(src.join("run.sh"), fs::Permissions::from_mode(0o755)).unwrap();
        fs::write(src.join("ro"), "read only").unwrap();
        fs::set_permissions(src.join("ro"), fs::Permissions::from_mode(0o444)).unwrap();
        symlink("d", src.join("dlink")).unwrap();
        symlink("nowhere", src.join("dangling")).unwrap();
        fs::set_permissions(src.join("d"), fs::Permissions::from_mode(0o555)).unwrap();
        src
    }

    #[test]
    fn undoes_what_a_job_did() {
        let base = tempfile::tempdir().unwrap();
        let src = source(base.path());
        let fresh = base.path().join("fresh");
        let used = base.path().join("used");
        for dst in [&fresh, &used] {
            fs::create_dir(dst).unwrap();
            copy_tree(&src, dst, None).unwrap();
        }
        make_writable(&used);

        // What a job might do to its workspace.
        fs::write(used.join("d/e/f"), "changed and longer").unwrap();
        fs::write(used.join("same-size"), "bbbb").unwrap();
        fs::set_permissions(used.join("run.sh"), fs::Permissions::from_mode(0o600)).unwrap();
        fs::remove_file(used.join("dlink")).unwrap();
        symlink("elsewhere", used.join("dlink")).unwrap();
        fs::remove_file(used.join("dangling")).unwrap();
        fs::create_dir(used.join("dangling")).unwrap();
        fs::write(used.join("dangling/inside"), "x").unwrap();
        fs::create_dir_all(used.join("new/deeper")).unwrap();
        fs::write(used.join("new/deeper/file"), "x").unwrap();
        fs::set_permissions(used.join("new"), fs::Permissions::from_mode(0o500)).unwrap();
        fs::write(used.join("extra"), "x").unwrap();
        fs::remove_dir_all(used.join("d/e")).unwrap();
        fs::write(used.join("d/e"), "a file where a folder was").unwrap();
        fs::set_permissions(used.join("d"), fs::Permissions::from_mode(0o500)).unwrap();

        refresh_tree(&src, &used, None, owner(&used)).unwrap();
        assert_eq!(listing(&used), listing(&fresh));

        for dir in [&src, &fresh, &used] {
            make_writable(dir);
        }
    }

    #[test]
    fn keeps_files_that_are_right_and_never_writes_through_links() {
        let base = tempfile::tempdir().unwrap();
        let src = base.path().join("src");
        fs::create_dir(&src).unwrap();
        fs::write(src.join("kept"), "same").unwrap();
        fs::write(src.join("linked"), "original").unwrap();
        let used = base.path().join("used");
        fs::create_dir(&used).unwrap();
        copy_tree(&src, &used, None).unwrap();
        let kept = fs::metadata(used.join("kept")).unwrap().ino();

        // A job linked a workspace file elsewhere and changed it through the link.
        let outside = base.path().join("outside");
        fs::hard_link(used.join("linked"), &outside).unwrap();
        fs::write(&outside, "changed").unwrap();

        refresh_tree(&src, &used, None, owner(&used)).unwrap();
        assert_eq!(fs::metadata(used.join("kept")).unwrap().ino(), kept);
        assert_eq!(fs::read_to_string(used.join("linked")).unwrap(), "original");
        assert_eq!(fs::read_to_string(&outside).unwrap(), "changed");
    }

    #[test]
    fn skips_the_backend_root_and_empties_folders() {
        let base = tempfile::tempdir().unwrap();
        let src = base.path().join("src");
        let inner = src.join("runner-root");
        let used = inner.join("ws");
        fs::create_dir_all(&used).unwrap();
        fs::write(src.join("a"), "a").unwrap();
        refresh_tree(&src, &used, folder_id(&inner), owner(&used)).unwrap();
        let names: Vec<_> = fs::read_dir(&used)
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names, ["a"]);

        remove_except(&used, &HashSet::new()).unwrap();
        assert!(listing(&used).is_empty());
    }
}
