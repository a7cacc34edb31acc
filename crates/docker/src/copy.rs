//! The copy mode's files (act_runner's `container.bind_workdir: false`): the job's folder is a
//! Docker volume inside the daemon, reached only through the Engine API's archive endpoints,
//! so a daemon that shares no folder with the runner (TCP, TLS, a sidecar) can run jobs.
//!
//! What goes in is a tar made here (files the engine writes, the repository, an action's
//! checkout), streamed rather than held whole; what comes out (a file-command file, the
//! workspace for `hashFiles`) is a tar read as it arrives, bounded by the caller's limit.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use bollard::body_try_stream;
use bollard::query_parameters::{
    DownloadFromContainerOptionsBuilder, UploadToContainerOptionsBuilder,
};
use bollard::Docker;
use futures_util::StreamExt;
use hearth_backend::{BackendError, FileDigest, JobPath};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

/// Where the steps' pid files are (copy mode), out of the temp folder the job sees.
pub(crate) const PID_DIR: &str = "/__w/.hearth";

/// How much a tar of one file may hold beyond the file's own bytes (its headers, long-name
/// and PAX records, padding and end blocks) before the file is known to be past the limit.
const TAR_OVERHEAD: u64 = 64 * 1024;
/// The size of the chunks a folder's tar is streamed in.
const CHUNK: usize = 64 * 1024;

/// One entry of a tar made here.
pub(crate) enum Entry<'a> {
    Dir(&'a str),
    File(&'a str, &'a [u8]),
    /// A symbolic link at the first path to the second.
    Link(&'a str, &'a str),
}

/// A tar of `entries` (paths relative to where it is unpacked), owned by root, folders 0777 and
/// files 0666: whatever user the job's image or `--user` runs as writes them (a step appends to
/// `GITHUB_OUTPUT`, writes its pid file).
pub(crate) fn pack(entries: &[Entry<'_>]) -> io::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    for entry in entries {
        let mut header = tar::Header::new_gnu();
        header.set_mtime(now());
        match entry {
            Entry::Dir(path) => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(0o777);
                header.set_size(0);
                builder.append_data(&mut header, path, io::empty())?;
            }
            Entry::File(path, contents) => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(0o666);
                header.set_size(contents.len() as u64);
                builder.append_data(&mut header, path, *contents)?;
            }
            Entry::Link(path, target) => {
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_mode(0o777);
                header.set_size(0);
                builder.append_link(&mut header, path, target)?;
            }
        }
    }
    builder.into_inner()
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Unpacks `tar` into the container's folder `into` (which must exist; missing parents of the
/// entries are made by the daemon).
pub(crate) async fn upload(
    docker: &Docker,
    container: &str,
    into: &str,
    tar: Vec<u8>,
) -> Result<(), bollard::errors::Error> {
    let options = UploadToContainerOptionsBuilder::default()
        .path(into)
        .build();
    docker
        .upload_to_container(container, Some(options), bollard::body_full(tar.into()))
        .await
}

/// Unpacks a tar of the host folder `folder`, its contents under `prefix` (`""` for none), into
/// the container's folder `into`. The tar is made on the blocking pool and streamed as it is
/// made, so a large repository is never held whole; symbolic links are kept as links, as the
/// bind mode's copy keeps them.
pub(crate) async fn upload_folder(
    docker: &Docker,
    container: &str,
    into: &str,
    folder: &Path,
    prefix: &str,
) -> Result<(), String> {
    let (sender, receiver) = mpsc::channel::<io::Result<bytes::Bytes>>(4);
    let (folder, prefix) = (folder.to_path_buf(), prefix.to_owned());
    let packing = tokio::task::spawn_blocking(move || {
        let writer = ChannelWriter {
            sender: sender.clone(),
            buffer: Vec::with_capacity(CHUNK),
        };
        let packed = pack_folder(writer, &folder, &prefix);
        if let Err(e) = &packed {
            // The daemon sees the stream fail rather than a truncated tar it would accept.
            let _ = sender.blocking_send(Err(io::Error::new(e.kind(), e.to_string())));
        }
        packed.map_err(|e| format!("{}: {e}", folder.display()))
    });
    let body = futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|item| (item, receiver))
    });
    let options = UploadToContainerOptionsBuilder::default()
        .path(into)
        .build();
    let uploaded = docker
        .upload_to_container(container, Some(options), body_try_stream(body))
        .await;
    let packed = packing
        .await
        .map_err(|e| format!("packing the folder: {e}"))?;
    // The packing error says more than the daemon's answer to a broken stream.
    packed?;
    uploaded.map_err(|e| e.to_string())
}

fn pack_folder(writer: ChannelWriter, folder: &Path, prefix: &str) -> io::Result<()> {
    let mut builder = tar::Builder::new(writer);
    builder.follow_symlinks(false);
    builder.mode(tar::HeaderMode::Complete);
    if prefix.is_empty() {
        builder.append_dir_all(".", folder)?;
    } else {
        builder.append_dir_all(prefix, folder)?;
    }
    let mut writer = builder.into_inner()?;
    writer.flush()
}

/// A `Write` on the blocking pool feeding the upload's body.
struct ChannelWriter {
    sender: mpsc::Sender<io::Result<bytes::Bytes>>,
    buffer: Vec<u8>,
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buffer.extend_from_slice(data);
        if self.buffer.len() >= CHUNK {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = bytes::Bytes::from(std::mem::replace(
            &mut self.buffer,
            Vec::with_capacity(CHUNK),
        ));
        self.sender
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the upload stopped"))
    }
}

/// Whether the daemon's error says the path is not there.
fn not_found(error: &bollard::errors::Error) -> bool {
    matches!(
        error,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

pub(crate) fn file_error(action: &'static str, path: &JobPath, message: String) -> BackendError {
    BackendError::File {
        action,
        path: path.clone(),
        source: io::Error::other(message),
    }
}

/// Copies the container's folder `path` to this machine, into the folder `into` (made here,
/// missing before): the tar is written to a file as it arrives, then unpacked (the tar
/// crate's unpacking keeps every entry inside `into`). Returns the copy's folder.
pub(crate) async fn download_folder(
    docker: &Docker,
    container: &str,
    path: &JobPath,
    into: &Path,
) -> Result<PathBuf, String> {
    tokio::fs::create_dir(into)
        .await
        .map_err(|e| format!("cannot create {}: {e}", into.display()))?;
    let tar_file = into.join(".download.tar");
    let options = DownloadFromContainerOptionsBuilder::default()
        .path(path.as_str())
        .build();
    let mut stream = docker.download_from_container(container, Some(options));
    let mut file = tokio::fs::File::create(&tar_file)
        .await
        .map_err(|e| format!("cannot create {}: {e}", tar_file.display()))?;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| format!("cannot copy {path} out of the job: {e}"))?;
        tokio::io::AsyncWriteExt::write_all(&mut file, &chunk)
            .await
            .map_err(|e| format!("cannot write {}: {e}", tar_file.display()))?;
    }
    drop(file);
    let unpacked = into.join("folder");
    let (from, to) = (tar_file.clone(), unpacked.clone());
    tokio::task::spawn_blocking(move || -> io::Result<()> {
        std::fs::create_dir(&to)?;
        let mut archive = tar::Archive::new(std::fs::File::open(&from)?);
        archive.set_preserve_permissions(false);
        archive.unpack(&to)?;
        std::fs::remove_file(&from)
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| format!("cannot unpack {path} from the job: {e}"))?;
    // The tar holds the folder itself, under its own name.
    let name = Path::new(path.as_str())
        .file_name()
        .ok_or_else(|| format!("{path} names no folder"))?;
    Ok(unpacked.join(name))
}

/// Reads the container's file `path`: `None` when it is not there, `FileTooLarge` when it
/// holds more than `limit` bytes (found out from the tar's header, or from the stream running
/// past what such a file's tar can hold, without reading the rest).
pub(crate) async fn read_file(
    docker: &Docker,
    container: &str,
    path: &JobPath,
    limit: u64,
) -> Result<Option<Vec<u8>>, BackendError> {
    let options = DownloadFromContainerOptionsBuilder::default()
        .path(path.as_str())
        .build();
    let mut stream = docker.download_from_container(container, Some(options));
    let mut tar = Vec::new();
    let too_large = || BackendError::FileTooLarge {
        path: path.clone(),
        limit,
    };
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(chunk) => tar.extend_from_slice(&chunk),
            Err(e) if not_found(&e) => return Ok(None),
            Err(e) => return Err(file_error("read", path, e.to_string())),
        }
        if tar.len() as u64 > limit.saturating_add(TAR_OVERHEAD) {
            return Err(too_large());
        }
        // The first header says the size: a file past the limit is not read further.
        if tar.len() >= 512 {
            if let Ok(size) = tar::Header::from_byte_slice(&tar[..512]).size() {
                let regular = tar::Header::from_byte_slice(&tar[..512])
                    .entry_type()
                    .is_file();
                if regular && size > limit {
                    return Err(too_large());
                }
            }
        }
    }
    let mut archive = tar::Archive::new(tar.as_slice());
    let mut entries = archive
        .entries()
        .map_err(|e| file_error("read", path, e.to_string()))?;
    // The tar of a file holds that one entry.
    if let Some(entry) = entries.next() {
        let mut entry = entry.map_err(|e| file_error("read", path, e.to_string()))?;
        let kind = entry.header().entry_type();
        if !kind.is_file() {
            return Err(file_error(
                "read",
                path,
                format!("it is not a regular file ({kind:?})"),
            ));
        }
        if entry.size() > limit {
            return Err(too_large());
        }
        let mut contents = Vec::with_capacity(usize::try_from(entry.size()).unwrap_or(0));
        entry
            .read_to_end(&mut contents)
            .map_err(|e| file_error("read", path, e.to_string()))?;
        return Ok(Some(contents));
    }
    Err(file_error(
        "read",
        path,
        "the daemon sent no file".to_owned(),
    ))
}

/// Every regular file below the container's folder `path` with its SHA-256, read from a tar of
/// the folder as it arrives (on the blocking pool; nothing is kept but the digests). A symbolic
/// link to a file of the folder counts as that file, as `hashFiles` follows links; one leading
/// outside it is left out.
pub(crate) async fn digests(
    docker: &Docker,
    container: &str,
    path: &JobPath,
) -> Result<Vec<FileDigest>, BackendError> {
    let options = DownloadFromContainerOptionsBuilder::default()
        .path(path.as_str())
        .build();
    let mut stream = docker.download_from_container(container, Some(options));
    let (sender, receiver) = std::sync::mpsc::sync_channel::<io::Result<bytes::Bytes>>(4);
    let root = path.as_str().trim_end_matches('/').to_owned();
    let hashing = tokio::task::spawn_blocking(move || {
        let reader = ChannelReader {
            receiver,
            current: bytes::Bytes::new(),
        };
        hash_tar(reader, &root)
    });
    let mut missing = false;
    while let Some(chunk) = stream.next().await {
        let item = match chunk {
            Ok(chunk) => Ok(chunk),
            Err(e) if not_found(&e) => {
                missing = true;
                break;
            }
            Err(e) => Err(io::Error::other(e.to_string())),
        };
        let failed = item.is_err();
        let sender = sender.clone();
        // The reader may stop early (a broken tar): its error is the one reported.
        let sent = tokio::task::spawn_blocking(move || sender.send(item).is_ok())
            .await
            .unwrap_or(false);
        if !sent || failed {
            break;
        }
    }
    drop(sender);
    let hashed = hashing
        .await
        .map_err(|e| file_error("hash the files of", path, e.to_string()))?;
    if missing {
        return Ok(Vec::new());
    }
    hashed.map_err(|e| file_error("hash the files of", path, e.to_string()))
}

/// The tar's regular files (their paths without the tar's top folder) and digests; `root` is
/// the folder as the job sees it, which absolute links inside it start with.
fn hash_tar(reader: impl Read, root: &str) -> io::Result<Vec<FileDigest>> {
    let mut archive = tar::Archive::new(reader);
    let mut files = Vec::new();
    let mut links: Vec<(String, PathBuf)> = Vec::new();
    for entry in archive.entries()? {
        let mut entry = entry?;
        let name = entry.path()?.into_owned();
        // The daemon names entries after the folder asked for (`workspace/...`).
        let mut parts = name.components();
        parts.next();
        let relative = parts.as_path().to_string_lossy().into_owned();
        if relative.is_empty() {
            continue;
        }
        let kind = entry.header().entry_type();
        if kind.is_file() {
            let mut hasher = Sha256::new();
            io::copy(&mut entry, &mut hasher)?;
            files.push(FileDigest {
                path: relative,
                sha256: hasher.finalize().into(),
            });
        } else if kind.is_symlink() {
            if let Some(target) = entry.link_name()? {
                let target = target.into_owned();
                if !target.is_absolute() {
                    links.push((relative, target));
                } else if let Ok(inside) = target.strip_prefix(root) {
                    links.push((relative, Path::new("/").join(inside)));
                }
            }
        } else if kind.is_hard_link() {
            if let Some(target) = entry.link_name()? {
                let mut parts = target.components();
                parts.next();
                links.push((relative, PathBuf::from("/").join(parts.as_path())));
            }
        }
    }
    // Links resolved against the files seen, a few levels deep (a link to a link).
    for _ in 0..8 {
        let mut resolved_any = false;
        links.retain(|(relative, target)| {
            let Some(target) = resolve(relative, target) else {
                return false;
            };
            match files.iter().find(|f| f.path == target) {
                Some(found) => {
                    let digest = found.sha256;
                    files.push(FileDigest {
                        path: relative.clone(),
                        sha256: digest,
                    });
                    resolved_any = true;
                    false
                }
                None => true,
            }
        });
        if !resolved_any {
            break;
        }
    }
    Ok(files)
}

/// A link's target as a path relative to the folder, when it stays inside it. A target given
/// as `/x` here is relative to the folder's root (absolute links are made so above).
fn resolve(link: &str, target: &Path) -> Option<String> {
    let mut parts: Vec<String> = if target.is_absolute() {
        Vec::new()
    } else {
        let mut base: Vec<String> = link.split('/').map(str::to_owned).collect();
        base.pop();
        base
    };
    for component in target.components() {
        match component {
            std::path::Component::Normal(part) => parts.push(part.to_string_lossy().into_owned()),
            std::path::Component::ParentDir => {
                parts.pop()?;
            }
            _ => {}
        }
    }
    Some(parts.join("/"))
}

/// A `Read` on the blocking pool over the chunks the download sends.
struct ChannelReader {
    receiver: std::sync::mpsc::Receiver<io::Result<bytes::Bytes>>,
    current: bytes::Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match self.receiver.recv() {
                Ok(chunk) => self.current = chunk?,
                Err(_) => return Ok(0),
            }
        }
        let n = buffer.len().min(self.current.len());
        buffer[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tar_of_a_folder_is_hashed_with_links_resolved_inside_it() {
        let mut builder = tar::Builder::new(Vec::new());
        let mut dir = tar::Header::new_gnu();
        dir.set_entry_type(tar::EntryType::Directory);
        dir.set_size(0);
        builder
            .append_data(&mut dir.clone(), "workspace", io::empty())
            .unwrap();
        let mut file = tar::Header::new_gnu();
        file.set_size(5);
        builder
            .append_data(&mut file, "workspace/a/x.txt", &b"hello"[..])
            .unwrap();
        let mut link = tar::Header::new_gnu();
        link.set_entry_type(tar::EntryType::Symlink);
        link.set_size(0);
        builder
            .append_link(&mut link.clone(), "workspace/b/y.txt", "../a/x.txt")
            .unwrap();
        builder
            .append_link(&mut link.clone(), "workspace/out.txt", "/etc/passwd")
            .unwrap();
        builder
            .append_link(&mut link, "workspace/abs.txt", "/__w/workspace/a/x.txt")
            .unwrap();
        let tar = builder.into_inner().unwrap();
        let mut files = hash_tar(tar.as_slice(), "/__w/workspace").unwrap();
        files.sort_by(|a, b| a.path.cmp(&b.path));
        let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["a/x.txt", "abs.txt", "b/y.txt"]);
        let hello: [u8; 32] = Sha256::digest(b"hello").into();
        assert!(files.iter().all(|f| f.sha256 == hello));
    }

    #[test]
    fn link_targets_leaving_the_folder_are_not_resolved() {
        assert_eq!(resolve("a/b", Path::new("c")), Some("a/c".to_owned()));
        assert_eq!(resolve("a/b", Path::new("../../x")), None);
        assert_eq!(resolve("b", Path::new("/x/y")), Some("x/y".to_owned()));
    }
}
