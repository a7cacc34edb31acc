//! A job's files, reached in its Pod through exec: the Pod's volumes are not on the runner's
//! machine. Each operation is one exec of a short `sh` script (what every image with a shell
//! has: `head`, `cat`, `wc`, `tar`, `find`, `sha256sum`), so a step costs a few round trips.

use hearth_backend::{BackendError, FileDigest, HostPath, JobPath};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;

use std::sync::Arc;

use crate::deferred::Deferred;
use crate::exec::{self, Captured, ExecError};
use crate::pod::JOB_CONTAINER;

/// One job Pod, as the runtime reaches it.
#[derive(Clone)]
pub struct PodFiles {
    pub api: Api<Pod>,
    pub pod: String,
    /// Writes held back until the next exec in the job container (the one below, or a step's).
    pub deferred: Arc<Deferred>,
    /// Service ids the API refuses as host aliases (`web_db`), in the job container's hosts
    /// file instead; a step's own Pod adds them to its hosts file too.
    pub extra_hosts: Arc<[String]>,
}

/// Exit codes of the scripts below that are answers, not failures.
const TOO_LARGE: i32 = 3;
const MISSING: i32 = 4;

impl PodFiles {
    /// `sh -c SCRIPT NAME ARGS...` for the job container, the held-back writes done first.
    pub fn sh_argv(
        &self,
        script: &str,
        name: &str,
        args: impl IntoIterator<Item = String>,
    ) -> Vec<String> {
        let (preamble, mut held) = self.deferred.take();
        let mut argv = vec![
            "sh".to_owned(),
            "-c".to_owned(),
            format!("{preamble}{script}"),
            name.to_owned(),
        ];
        argv.append(&mut held);
        argv.extend(args);
        argv
    }

    async fn sh(
        &self,
        script: &str,
        args: &[&str],
        input: Option<&[u8]>,
        limit: usize,
    ) -> Result<Captured, ExecError> {
        let argv = self.sh_argv(script, "hearth", args.iter().map(|a| (*a).to_owned()));
        exec::capture(&self.api, &self.pod, JOB_CONTAINER, &argv, input, limit).await
    }

    /// Writes `contents` to `path` (its folder made), open to any user as in a Docker job.
    pub async fn write(&self, path: &JobPath, contents: &[u8]) -> Result<(), BackendError> {
        let script = r#"mkdir -p "${1%/*}" && head -c "$2" > "$1" && chmod 0666 "$1""#;
        let length = contents.len().to_string();
        let done = self
            .sh(script, &[path.as_str(), &length], Some(contents), 0)
            .await;
        checked(done, "write", path).map(|_| ())
    }

    /// Reads `path`: `None` when there is none, an error past `limit` bytes.
    pub async fn read(&self, path: &JobPath, limit: u64) -> Result<Option<Vec<u8>>, BackendError> {
        let script = r#"if [ -f "$1" ]; then
  [ "$(wc -c < "$1")" -gt "$2" ] && exit 3
  exec cat "$1"
elif [ -e "$1" ]; then echo "not a regular file" >&2; exit 1
else exit 4; fi"#;
        let bound = usize::try_from(limit).unwrap_or(usize::MAX);
        let done = self
            .sh(script, &[path.as_str(), &limit.to_string()], None, bound)
            .await;
        match done {
            Ok(c) if c.code == MISSING => Ok(None),
            Ok(c) if c.code == TOO_LARGE => Err(BackendError::FileTooLarge {
                path: path.clone(),
                limit,
            }),
            Err(ExecError::Stream(m)) if m.contains("printed more than") => {
                Err(BackendError::FileTooLarge {
                    path: path.clone(),
                    limit,
                })
            }
            done => checked(done, "read", path).map(|c| Some(c.stdout)),
        }
    }

    /// Makes each file exist and be empty, leaving alone those that are.
    pub async fn empty(&self, paths: &[JobPath]) -> Result<(), BackendError> {
        let Some(first) = paths.first() else {
            return Ok(());
        };
        let script = r#"for f; do
  mkdir -p "${f%/*}" || exit 1
  if [ -s "$f" ] || [ ! -e "$f" ]; then : > "$f" && chmod 0666 "$f" || exit 1; fi
done"#;
        let args: Vec<&str> = paths.iter().map(JobPath::as_str).collect();
        checked(self.sh(script, &args, None, 0).await, "empty", first).map(|_| ())
    }

    /// Which of `paths` are not empty files any more (written to, or removed), in one exec.
    pub async fn not_empty(&self, paths: &[String]) -> Result<Vec<String>, BackendError> {
        let Some(first) = paths.first() else {
            return Ok(Vec::new());
        };
        let script =
            r#"for f; do if [ -s "$f" ] || [ ! -f "$f" ]; then printf '%s\n' "$f"; fi; done"#;
        let args: Vec<&str> = paths.iter().map(String::as_str).collect();
        let done = self.sh(script, &args, None, 1 << 20).await;
        let listing = checked(done, "look at", &JobPath::new(first.clone()))?.stdout;
        Ok(String::from_utf8_lossy(&listing)
            .lines()
            .map(str::to_owned)
            .collect())
    }

    /// Copies the host folder `folder` into the Pod at `target` (made, or emptied first).
    pub async fn upload(&self, folder: &HostPath, target: &JobPath) -> Result<(), BackendError> {
        let tar = tar_of_host_folder(folder).await?;
        let script = r#"rm -rf "$1" && mkdir -p "$1" && head -c "$2" | tar -x -f - -C "$1""#;
        let length = tar.len().to_string();
        let done = self
            .sh(script, &[target.as_str(), &length], Some(&tar), 0)
            .await;
        checked(done, "copy into", target).map(|_| ())
    }

    /// Every regular file below `folder` with its SHA-256, hashed in the Pod.
    pub async fn digests(&self, folder: &JobPath) -> Result<Vec<FileDigest>, BackendError> {
        let script = r#"cd "$1" 2>/dev/null || exit 4
find -L . -type f -exec sha256sum {} +"#;
        let done = self.sh(script, &[folder.as_str()], None, 256 << 20).await;
        let listing = match done {
            Ok(c) if c.code == MISSING => return Ok(Vec::new()),
            done => checked(done, "hash the files of", folder)?.stdout,
        };
        let text = String::from_utf8_lossy(&listing);
        let mut digests = Vec::new();
        for line in text.lines() {
            let Some((hex, path)) = line.split_once("  ") else {
                continue;
            };
            let Some(sha256) = from_hex(hex) else {
                continue;
            };
            let path = path.strip_prefix("./").unwrap_or(path).to_owned();
            digests.push(FileDigest { path, sha256 });
        }
        digests.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(digests)
    }
}

/// A failed exec or script as the contract's file error.
fn checked(
    done: Result<Captured, ExecError>,
    action: &'static str,
    path: &JobPath,
) -> Result<Captured, BackendError> {
    let message = match done {
        Ok(c) if c.code == 0 => return Ok(c),
        Ok(c) => format!(
            "exit code {}: {}",
            c.code,
            String::from_utf8_lossy(&c.stderr).trim()
        ),
        Err(e) => e.to_string(),
    };
    Err(BackendError::File {
        action,
        path: path.clone(),
        source: std::io::Error::other(message),
    })
}

fn from_hex(hex: &str) -> Option<[u8; 32]> {
    if hex.len() != 64 {
        return None;
    }
    let mut bytes = [0u8; 32];
    for (i, byte) in bytes.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(bytes)
}

/// A tar of the host folder `folder`'s contents, to unpack in the Pod.
pub async fn tar_of_host_folder(folder: &HostPath) -> Result<Vec<u8>, BackendError> {
    let source = folder.as_path().to_owned();
    tokio::task::spawn_blocking(move || tar_of(&source))
        .await
        .map_err(|e| BackendError::Cleanup(format!("packing a folder: {e}")))?
        .map_err(|source| BackendError::Prepare {
            what: "copy of a folder",
            path: folder.as_path().to_owned(),
            source,
        })
}

/// A tar of `folder`'s contents (links kept as links).
fn tar_of(folder: &std::path::Path) -> std::io::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    builder.follow_symlinks(false);
    builder.mode(tar::HeaderMode::Complete);
    builder.append_dir_all(".", folder)?;
    builder.into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_digests_are_read() {
        let hex = "ab".repeat(32);
        assert_eq!(from_hex(&hex), Some([0xab; 32]));
        assert_eq!(from_hex("abc"), None);
        assert_eq!(from_hex(&"zz".repeat(32)), None);
    }
}
