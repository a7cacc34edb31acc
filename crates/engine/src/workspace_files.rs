//! The workspace on local disk, as `hashFiles` reads it.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use hearth_expr::WorkspaceFiles;
use sha2::{Digest, Sha256};

/// A directory on this machine, read as GitHub's `hashFiles` reads the workspace: symbolic
/// links are followed, directories are walked in name order.
pub struct DirWorkspace {
    root: PathBuf,
    root_text: String,
}

impl DirWorkspace {
    /// The workspace at `root`, which must exist.
    ///
    /// # Errors
    ///
    /// `root` cannot be resolved (it does not exist, or a parent cannot be read).
    pub fn new(root: &Path) -> std::io::Result<Self> {
        let root = fs::canonicalize(root)?;
        let root_text = root.to_string_lossy().into_owned();
        Ok(DirWorkspace { root, root_text })
    }
}

impl WorkspaceFiles for DirWorkspace {
    fn root(&self) -> &str {
        &self.root_text
    }

    fn list_files(&self, dir: &str) -> Result<Vec<String>, String> {
        let mut files = Vec::new();
        let start = self.root.join(dir);
        if !start.exists() {
            return Ok(files);
        }
        // Depth-bounded, so a symbolic-link loop ends rather than recursing forever.
        let mut pending = vec![(start, dir.to_string(), 0usize)];
        while let Some((path, relative, depth)) = pending.pop() {
            let meta = fs::metadata(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            if meta.is_file() {
                files.push(relative);
            } else if meta.is_dir() && depth < 64 {
                let entries =
                    fs::read_dir(&path).map_err(|e| format!("{}: {e}", path.display()))?;
                for entry in entries {
                    let entry = entry.map_err(|e| format!("{}: {e}", path.display()))?;
                    let name = entry.file_name().to_string_lossy().into_owned();
                    let child = if relative.is_empty() {
                        name
                    } else {
                        format!("{relative}/{name}")
                    };
                    pending.push((entry.path(), child, depth + 1));
                }
            }
        }
        Ok(files)
    }

    fn sha256(&self, path: &str) -> Result<[u8; 32], String> {
        let full = self.root.join(path);
        let mut file = fs::File::open(&full).map_err(|e| format!("{}: {e}", full.display()))?;
        let mut hasher = Sha256::new();
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            let n = file
                .read(&mut buffer)
                .map_err(|e| format!("{}: {e}", full.display()))?;
            if n == 0 {
                break;
            }
            hasher.update(&buffer[..n]);
        }
        Ok(hasher.finalize().into())
    }
}

/// The workspace as a backend described it ([`hearth_backend::JobRuntime::file_digests`]):
/// its files and their digests, for a job whose folders are not on this machine (a container
/// in a remote Docker daemon). Taken when a step needs it, so it is as fresh as the step.
pub struct DigestWorkspace {
    root_text: String,
    files: std::collections::BTreeMap<String, [u8; 32]>,
}

impl DigestWorkspace {
    /// The workspace at `root` (as the job sees it) holding `files`.
    pub fn new(root: &str, files: Vec<hearth_backend::FileDigest>) -> Self {
        DigestWorkspace {
            root_text: root.trim_end_matches('/').to_owned(),
            files: files.into_iter().map(|f| (f.path, f.sha256)).collect(),
        }
    }
}

impl WorkspaceFiles for DigestWorkspace {
    fn root(&self) -> &str {
        &self.root_text
    }

    fn list_files(&self, dir: &str) -> Result<Vec<String>, String> {
        let dir = dir.trim_end_matches('/');
        Ok(self
            .files
            .keys()
            .filter(|path| {
                dir.is_empty()
                    || path.as_str() == dir
                    || path
                        .strip_prefix(dir)
                        .is_some_and(|rest| rest.starts_with('/'))
            })
            .cloned()
            .collect())
    }

    fn sha256(&self, path: &str) -> Result<[u8; 32], String> {
        self.files
            .get(path)
            .copied()
            .ok_or_else(|| format!("{}/{path}: no such file", self.root_text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A workspace described by digests hashes as the same files read from disk do.
    #[test]
    fn digests_hash_as_the_folder_they_describe() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("src/deep")).unwrap();
        fs::write(root.join("src/a.rs"), "a").unwrap();
        fs::write(root.join("src/deep/b.rs"), "b").unwrap();
        fs::write(root.join("srcx.rs"), "x").unwrap();
        fs::write(root.join("README"), "r").unwrap();
        let on_disk = DirWorkspace::new(root).unwrap();
        let digest = |text: &str| -> [u8; 32] { Sha256::digest(text.as_bytes()).into() };
        let files = [
            ("src/a.rs", "a"),
            ("src/deep/b.rs", "b"),
            ("srcx.rs", "x"),
            ("README", "r"),
        ]
        .map(|(path, text)| hearth_backend::FileDigest {
            path: path.to_owned(),
            sha256: digest(text),
        });
        let described = DigestWorkspace::new("/__w/workspace", files.to_vec());
        for patterns in [
            vec!["src/**"],
            vec!["**/*.rs"],
            vec!["**/*.rs", "!src/deep/**"],
            vec!["/__w/workspace/src/a.rs"],
            vec!["nothing"],
        ] {
            let patterns: Vec<String> = patterns.iter().map(|p| p.to_string()).collect();
            let absolute: Vec<String> = patterns
                .iter()
                .map(|p| p.replace("/__w/workspace", on_disk.root()))
                .collect();
            assert_eq!(
                hearth_expr::hash_files(&described, &patterns).unwrap(),
                hearth_expr::hash_files(&on_disk, &absolute).unwrap(),
                "{patterns:?}"
            );
        }
        assert_eq!(
            described.list_files("src").unwrap(),
            ["src/a.rs", "src/deep/b.rs"]
        );
    }
}
