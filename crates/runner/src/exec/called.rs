//! Reading the workflow a job calls (`jobs.<id>.uses`): a file of the repository being run, or
//! of another repository, fetched at its ref as remote actions are (`ActionSource`). The
//! workflow crate checks the reference and parses the text; this is the I/O between them.

use std::path::{Path, PathBuf};

use hearth_engine::job::remote::{ActionSource, FetchError};
use hearth_workflow::model::{Text, Workflow};
use hearth_workflow::plan::call::WorkflowRef;
use hearth_workflow::validate::{Diagnostic, Diagnostics};
use tokio_util::sync::CancellationToken;

use crate::workflow_files;

/// A called workflow, parsed.
pub struct CalledWorkflow {
    /// The file as messages name it: the path for a local file, `owner/repo/path@ref` for a
    /// remote one.
    pub label: String,
    pub workflow: Workflow,
    /// The repository it came from, which its own `./` calls are read from.
    pub root: PathBuf,
}

/// Why a called workflow could not be had.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The `uses:` value itself is wrong (at its position in the caller).
    #[error(transparent)]
    Reference(Diagnostic),
    #[error("cannot call `{uses}`: there is no repository to read it from")]
    NoRepository { uses: String },
    #[error("cannot fetch the reusable workflow `{uses}`: {source}")]
    Fetch {
        uses: String,
        #[source]
        source: FetchError,
    },
    #[error("cannot read the reusable workflow {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the reusable workflow {label} is not inside its repository")]
    Outside { label: String },
    /// The file is not UTF-8 (the message holds its position).
    #[error("{0}")]
    NotText(String),
    /// The file is not a valid workflow.
    #[error("{0}")]
    Invalid(Diagnostics),
}

/// Reads and parses the workflow `uses` names; `file` is the caller's label (for a bad
/// reference), `repository` the folder local calls are read from: the repository the caller
/// itself came from (a workflow fetched from another repository calls its own files).
pub async fn load(
    file: &str,
    uses: &Text,
    repository: Option<&Path>,
    actions: &dyn ActionSource,
    cancel: &CancellationToken,
) -> Result<CalledWorkflow, CallError> {
    let reference = WorkflowRef::parse(&uses.value).map_err(|message| {
        CallError::Reference(Diagnostic::new(
            file,
            uses.span.start,
            format!("invalid reusable workflow reference {message}"),
        ))
    })?;
    let (root, path, label) = match reference {
        WorkflowRef::Local { path } => {
            let root = repository.ok_or_else(|| CallError::NoRepository {
                uses: uses.value.clone(),
            })?;
            (root.to_owned(), path, path.to_owned())
        }
        WorkflowRef::Remote {
            repository,
            path,
            reference,
        } => {
            let root = actions
                .fetch(repository, reference, cancel)
                .await
                .map_err(|source| CallError::Fetch {
                    uses: uses.value.clone(),
                    source,
                })?;
            (root, path, uses.value.clone())
        }
    };
    let file_path = inside(&root, path, &label).await?;
    let root_of_callee = root.clone();
    let source = tokio::task::spawn_blocking(move || workflow_files::read(&file_path))
        .await
        .map_err(|e| CallError::Read {
            path: label.clone(),
            source: std::io::Error::other(e),
        })?
        .map_err(|e| match e {
            workflow_files::FilesError::Io { source, .. } => CallError::Read {
                path: label.clone(),
                source,
            },
            other => CallError::Read {
                path: label.clone(),
                source: std::io::Error::other(other.to_string()),
            },
        })?;
    let text = source.text.map_err(|bad| {
        CallError::NotText(format!(
            "{label}:{}:{}: error: the file is not UTF-8 text",
            bad.line, bad.col
        ))
    })?;
    let workflow = Workflow::parse(&text, &label).map_err(CallError::Invalid)?;
    Ok(CalledWorkflow {
        label,
        workflow,
        root: root_of_callee,
    })
}

/// `root/path`, refused when a symbolic link takes it out of `root` (a fetched repository is
/// not the user's own).
async fn inside(root: &Path, path: &str, label: &str) -> Result<PathBuf, CallError> {
    let read_error = |source| CallError::Read {
        path: label.to_owned(),
        source,
    };
    let root = tokio::fs::canonicalize(root).await.map_err(read_error)?;
    let full = tokio::fs::canonicalize(root.join(path))
        .await
        .map_err(read_error)?;
    if full.starts_with(&root) {
        Ok(full)
    } else {
        Err(CallError::Outside {
            label: label.to_owned(),
        })
    }
}
