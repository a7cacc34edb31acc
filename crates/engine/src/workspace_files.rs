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
