//! The job's files, reached in place: on the host a job path is a path of this machine (public
//! for backends that keep their jobs' files in host folders, the Docker one with bind mounts).
//!
//! Written and read in the ways that keep a job of many short steps cheap on file systems that
//! avoid reusing recently freed inodes (ext4 without a journal, where every new file skips each
//! inode freed in the last minutes): a file no longer needed is renamed into the next one
//! rather than a new file created, and a file is overwritten, then cut to length, rather than
//! truncated first (ext4 writes a file out at once when it is truncated to nothing and written
//! again, its guard for programs that replace contents that way: milliseconds per step).

use std::fs;
use std::io::{self, Write};
use std::path::Path;

use hearth_backend::{BackendError, JobPath};

fn host(path: &JobPath) -> Result<&Path, BackendError> {
    let path = Path::new(path.as_str());
    if path.is_absolute() {
        Ok(path)
    } else {
        Err(BackendError::NotInJob(path.display().to_string()))
    }
}

fn failed<'p>(
    action: &'static str,
    path: &'p JobPath,
) -> impl FnOnce(io::Error) -> BackendError + 'p {
    move |source| BackendError::File {
        action,
        path: path.clone(),
        source,
    }
}

pub fn write(
    path: &JobPath,
    contents: &[u8],
    replaces: Option<&JobPath>,
) -> Result<(), BackendError> {
    let on_host = host(path)?;
    if let Some(old) = replaces {
        // A step may have removed or moved the old file; then a new one is written.
        let _ = fs::rename(host(old)?, on_host);
    }
    let open = || {
        fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(on_host)
    };
    let mut file = match open() {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if let Some(parent) = on_host.parent() {
                fs::create_dir_all(parent).map_err(failed("create the folder of", path))?;
            }
            open()
        }
        opened => opened,
    }
    .map_err(failed("write", path))?;
    file.write_all(contents).map_err(failed("write", path))?;
    file.set_len(contents.len() as u64)
        .map_err(failed("write", path))
}

pub fn read(path: &JobPath, limit: u64) -> Result<Option<Vec<u8>>, BackendError> {
    let on_host = host(path)?;
    let meta = match fs::metadata(on_host) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(failed("read", path)(e)),
    };
    // Most steps write none of their files: an empty one is not opened.
    if meta.is_file() && meta.len() == 0 {
        return Ok(Some(Vec::new()));
    }
    if meta.len() > limit {
        return Err(BackendError::FileTooLarge {
            path: path.clone(),
            limit,
        });
    }
    // Read through a bounded reader: the file may grow between the `stat` and the read.
    let file = fs::File::open(on_host).map_err(failed("read", path))?;
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    io::Read::read_to_end(&mut io::Read::take(file, limit + 1), &mut bytes)
        .map_err(failed("read", path))?;
    if bytes.len() as u64 > limit {
        return Err(BackendError::FileTooLarge {
            path: path.clone(),
            limit,
        });
    }
    Ok(Some(bytes))
}

pub fn empty(paths: &[JobPath]) -> Result<(), BackendError> {
    for path in paths {
        let on_host = host(path)?;
        // One `stat` for a file found empty, as most are, instead of an open.
        let is_empty =
            fs::symlink_metadata(on_host).is_ok_and(|meta| meta.is_file() && meta.len() == 0);
        if !is_empty {
            if let Some(parent) = on_host.parent() {
                fs::create_dir_all(parent).map_err(failed("create the folder of", path))?;
            }
            fs::File::create(on_host).map_err(failed("empty", path))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job_path(dir: &Path, name: &str) -> JobPath {
        JobPath::new(dir.join(name).to_string_lossy().into_owned())
    }

    #[test]
    fn reads_are_bounded_and_missing_files_are_none() {
        let dir = tempfile::tempdir().unwrap();
        let file = job_path(dir.path(), "out");
        assert_eq!(read(&file, 10).unwrap(), None);
        write(&file, b"0123456789", None).unwrap();
        assert_eq!(read(&file, 10).unwrap().unwrap(), b"0123456789");
        assert!(matches!(
            read(&file, 9),
            Err(BackendError::FileTooLarge { limit: 9, .. })
        ));
        assert!(matches!(
            read(&JobPath::new("relative"), 9),
            Err(BackendError::NotInJob(_))
        ));
    }

    #[test]
    fn writes_reuse_the_replaced_file_and_cut_to_length() {
        let dir = tempfile::tempdir().unwrap();
        let (first, second) = (job_path(dir.path(), "a/s1"), job_path(dir.path(), "a/s2"));
        write(&first, b"a longer script", None).unwrap();
        write(&second, b"short", Some(&first)).unwrap();
        assert!(!Path::new(first.as_str()).exists());
        assert_eq!(fs::read(second.as_str()).unwrap(), b"short");
        empty(&[second.clone(), job_path(dir.path(), "b/new")]).unwrap();
        assert_eq!(fs::read(second.as_str()).unwrap(), b"");
        assert!(dir.path().join("b/new").is_file());
    }
}
