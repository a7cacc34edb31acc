//! Finding and reading workflow files, as the forges do.

use std::fs;
use std::path::{Path, PathBuf};

/// The folders a repository's workflows live in, in the forges' order of preference: Forgejo
/// reads `.forgejo/workflows` when it exists, Gitea `.gitea/workflows`, both fall back to
/// `.github/workflows`. Only the first folder that exists is used.
pub const DEFAULT_FOLDERS: [&str; 3] = [
    ".forgejo/workflows",
    ".gitea/workflows",
    ".github/workflows",
];

/// A workflow (or action) file read from disk.
pub struct SourceFile {
    /// The path as it is shown in messages.
    pub label: String,
    /// The text, or where and why it is not text.
    pub text: Result<String, NotText>,
}

/// A file that is not UTF-8, with the position of the first bad byte.
pub struct NotText {
    pub line: usize,
    pub col: usize,
}

impl SourceFile {
    /// The text, or the diagnostic saying why there is none.
    pub fn text(&self) -> Result<&str, String> {
        match &self.text {
            Ok(text) => Ok(text),
            Err(NotText { line, col }) => Err(format!(
                "{}:{line}:{col}: error: the file is not UTF-8 text",
                self.label
            )),
        }
    }
}

/// Why workflow files could not be found or read.
#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    #[error("no workflow folder in {root}: looked for {looked_for}")]
    NoFolder { root: String, looked_for: String },
    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: String,
        source: std::io::Error,
    },
    #[error("no workflow files (*.yml, *.yaml) in {0}")]
    NoFiles(String),
}

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> FilesError {
    let path = display_path(path);
    move |source| FilesError::Io {
        action,
        path,
        source,
    }
}

/// The workflow folder of the repository at `root`: the first of [`DEFAULT_FOLDERS`] that
/// exists.
pub fn default_folder(root: &Path) -> Result<PathBuf, FilesError> {
    for folder in DEFAULT_FOLDERS {
        let path = root.join(folder);
        if path.is_dir() {
            return Ok(path);
        }
    }
    Err(FilesError::NoFolder {
        root: root.display().to_string(),
        looked_for: DEFAULT_FOLDERS.join(", "),
    })
}

/// The files named by `paths`: a file as is, a folder's `*.yml` and `*.yaml` files (without
/// descending into sub-folders, as the forges and act do), sorted by name.
pub fn collect(paths: &[PathBuf]) -> Result<Vec<PathBuf>, FilesError> {
    let mut files = Vec::new();
    for path in paths {
        let metadata = fs::metadata(path).map_err(io_error("read", path))?;
        if !metadata.is_dir() {
            files.push(path.clone());
            continue;
        }
        let mut found: Vec<PathBuf> = fs::read_dir(path)
            .map_err(io_error("list", path))?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|p| p.is_file() && is_yaml(p))
            .collect();
        found.sort();
        files.extend(found);
    }
    Ok(files)
}

/// The workflow files a command works on: those under `paths`, or in the repository's workflow
/// folder ([`default_folder`] of `directory`) when no path is given.
///
/// # Errors
///
/// No workflow folder, an unreadable path, or no `*.yml` / `*.yaml` file at all.
pub fn find(paths: &[PathBuf], directory: &Path) -> Result<Vec<PathBuf>, FilesError> {
    let paths = if paths.is_empty() {
        vec![default_folder(directory)?]
    } else {
        paths.to_vec()
    };
    let files = collect(&paths)?;
    if files.is_empty() {
        let places: Vec<String> = paths.iter().map(|p| display_path(p)).collect();
        return Err(FilesError::NoFiles(places.join(", ")));
    }
    Ok(files)
}

fn is_yaml(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("yml") || e.eq_ignore_ascii_case("yaml"))
}

/// `true` for `action.yml` and `action.yaml`, which hold an action rather than a workflow.
pub fn is_action_file(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n == "action.yml" || n == "action.yaml")
}

/// Reads `path`. A file that is not UTF-8 is not an I/O error but a problem with the file,
/// reported like the other problems in it.
pub fn read(path: &Path) -> Result<SourceFile, FilesError> {
    let label = display_path(path);
    let bytes = fs::read(path).map_err(io_error("read", path))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line_start = valid.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let col = String::from_utf8_lossy(&valid[line_start..])
            .chars()
            .count()
            + 1;
        let line = valid.iter().filter(|&&b| b == b'\n').count() + 1;
        NotText { line, col }
    });
    Ok(SourceFile { label, text })
}

/// `path` relative to the current directory when it is below it, without `./`, as compilers
/// print paths.
pub fn display_path(path: &Path) -> String {
    let relative = std::env::current_dir()
        .ok()
        .and_then(|cwd| path.strip_prefix(cwd).ok().map(Path::to_path_buf))
        .unwrap_or_else(|| path.to_path_buf());
    let cleaned: PathBuf = relative
        .components()
        .filter(|c| !matches!(c, std::path::Component::CurDir))
        .collect();
    cleaned.display().to_string()
}

/// Reads and parses the workflow at `path`, as `plan` and `exec` load them: a file that is not
/// text or not a valid workflow has its problems printed to stderr and gives `None`.
///
/// # Errors
///
/// The file cannot be read at all.
pub fn load_workflow(
    path: &Path,
) -> Result<Option<(String, hearth_workflow::model::Workflow)>, FilesError> {
    let source = read(path)?;
    let text = match source.text() {
        Ok(text) => text,
        Err(problem) => {
            eprintln!("{problem}");
            return Ok(None);
        }
    };
    match hearth_workflow::model::Workflow::parse(text, &source.label) {
        Ok(workflow) => Ok(Some((source.label, workflow))),
        Err(diagnostics) => {
            eprintln!("{diagnostics}");
            Ok(None)
        }
    }
}
