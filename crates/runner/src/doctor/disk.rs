//! Free space where jobs write: the work folder and Docker's data root.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::Check;

/// The free space below which a disk fails when the config sets no threshold: less than a
/// GiB does not hold a typical job's checkout, images and caches.
pub const DEFAULT_MIN_FREE: u64 = 1 << 30;

/// The bytes an unprivileged user may still write on the filesystem holding `path` (or its
/// nearest existing parent: the work folder is made at the first job), and that folder.
pub fn free_space(path: &Path) -> io::Result<(u64, PathBuf)> {
    let existing = path
        .ancestors()
        .find(|p| p.exists())
        .unwrap_or_else(|| Path::new("/"))
        .to_path_buf();
    let text = CString::new(existing.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a NUL in the path"))?;
    let mut stats = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `text` is a NUL-terminated path and `stats` a buffer statvfs(3) fills.
    if unsafe { libc::statvfs(text.as_ptr(), stats.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: statvfs returned 0, so it filled the buffer.
    let stats = unsafe { stats.assume_init() };
    #[allow(clippy::unnecessary_cast)] // the field types differ between platforms
    let free = (stats.f_bavail as u64).saturating_mul(stats.f_frsize as u64);
    Ok((free, existing))
}

/// The check `name` of the disk holding `path`: failed below `min_free` with `advice`.
pub fn check(name: &str, path: &Path, what: &str, min_free: u64, advice: &str) -> Check {
    match free_space(path) {
        Ok((free, at)) => {
            let detail = format!(
                "{} free on the filesystem of {what} {} (checked at {})",
                mib(free),
                path.display(),
                at.display()
            );
            if free < min_free {
                Check::fail(
                    name,
                    format!("only {detail}, less than {}", mib(min_free)),
                    advice,
                )
            } else {
                Check::pass(name, detail)
            }
        }
        Err(e) => Check::fail(
            name,
            format!("cannot tell the free space of {}: {e}", path.display()),
            advice,
        ),
    }
}

fn mib(bytes: u64) -> String {
    format!("{} MiB", bytes >> 20)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_yet_to_be_made_is_measured_at_its_parent() {
        let dir = tempfile::tempdir().unwrap();
        let (free, at) = free_space(&dir.path().join("work/not/yet")).unwrap();
        assert_eq!(at, dir.path());
        assert!(free > 0);
    }

    #[test]
    fn below_the_threshold_fails_with_the_advice() {
        let dir = tempfile::tempdir().unwrap();
        let passed = check("disk:work", dir.path(), "the work folder", 1, "free some");
        assert!(passed.passed(), "{passed:?}");
        let failed = check(
            "disk:work",
            dir.path(),
            "the work folder",
            u64::MAX,
            "free some",
        );
        assert_eq!(failed.status, super::super::Status::Fail);
        assert!(failed.detail.starts_with("only "), "{failed:?}");
        assert_eq!(failed.advice.as_deref(), Some("free some"));
    }
}
