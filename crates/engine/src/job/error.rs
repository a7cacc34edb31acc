//! Why a step could not run: typed errors that keep their source and say their kind, so that
//! a caller (the daemon's metrics, a retry) can act on what went wrong rather than on a
//! message. The step's log gets their `Display`, masked like every runner message.

use hearth_backend::{BackendError, JobPath};
use hearth_workflow::validate::Diagnostics;

use super::eval::EvalError;
use crate::shell::ShellError;

/// What kind of failure an engine error is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// An expression failed to evaluate.
    Expression,
    /// An action that cannot be used: missing, malformed or of a kind this runner lacks.
    BadAction,
    /// Fetching an action from its repository failed.
    ActionFetch,
    /// A `shell:` that cannot run the script.
    BadShell,
    /// The job ran out of time.
    TimedOut,
    /// The backend failed; its own kind says how (a registry that refused the credentials, a
    /// daemon that does not answer, a cancelled start, ...).
    Backend(hearth_backend::ErrorKind),
}

/// Why a job could not start.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    /// An expression of the job (`env`, `timeout-minutes`, `container`) failed.
    #[error(transparent)]
    Eval(#[from] EvalError),
    /// The backend could not prepare the job (or was stopped while it did).
    #[error("cannot prepare the job: {0}")]
    Backend(#[source] BackendError),
    /// The job's timeout ran out while the backend prepared it.
    #[error(
        "The job has exceeded the maximum execution time of {0}m while it was being prepared."
    )]
    TimedOut(String),
    /// A file the job needs (the event payload, the file-command files) could not be made.
    #[error("cannot write {what}: {source}")]
    Files {
        what: &'static str,
        #[source]
        source: BackendError,
    },
}

impl PrepareError {
    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            PrepareError::Backend(e) | PrepareError::Files { source: e, .. } => {
                ErrorKind::Backend(e.kind())
            }
            PrepareError::Eval(_) => ErrorKind::Expression,
            PrepareError::TimedOut(_) => ErrorKind::TimedOut,
        }
    }
}

/// Why an action could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error("`uses: {uses}`: this runner has no source for actions from other repositories")]
    NoSource { uses: String },
    #[error("cannot fetch the action `{uses}`: {source}")]
    Fetch {
        uses: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("cannot make the action `{uses}` available to the job: {source}")]
    Expose {
        uses: String,
        #[source]
        source: BackendError,
    },
    #[error("cannot read {path}: {source}")]
    ReadFetched {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read {path}: {source}")]
    Read {
        path: JobPath,
        #[source]
        source: BackendError,
    },
    #[error("{0} is not UTF-8 text")]
    NotText(String),
    #[error(transparent)]
    Invalid(#[from] Diagnostics),
    #[error("the action `{uses}` has no 'action.yml' or 'action.yaml'")]
    NoActionFile { uses: String },
    #[error(
        "Can't find 'action.yml' or 'action.yaml' under '{0}'. Did you forget to run \
         actions/checkout before running your local action?"
    )]
    NoLocalActionFile(JobPath),
    #[error(
        "`uses: {uses}` names no action: write `./path`, `owner/repo[/path]@ref` or \
         `docker://image`"
    )]
    Unrecognized { uses: String },
    /// A `with:` value or an input's default failed to evaluate.
    #[error(transparent)]
    Inputs(#[from] EvalError),
}

impl ActionError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            ActionError::Fetch { .. } => ErrorKind::ActionFetch,
            ActionError::Expose { source, .. } | ActionError::Read { source, .. } => {
                ErrorKind::Backend(source.kind())
            }
            ActionError::Inputs(_) => ErrorKind::Expression,
            ActionError::NoSource { .. }
            | ActionError::ReadFetched { .. }
            | ActionError::NotText(_)
            | ActionError::Invalid(_)
            | ActionError::NoActionFile { .. }
            | ActionError::NoLocalActionFile(_)
            | ActionError::Unrecognized { .. } => ErrorKind::BadAction,
        }
    }
}

/// Why a step's process could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error(transparent)]
    Eval(#[from] EvalError),
    #[error("invalid shell: {0}")]
    Shell(#[from] ShellError),
    #[error(transparent)]
    Action(#[from] ActionError),
    #[error("cannot {what}: {source}")]
    Backend {
        what: &'static str,
        #[source]
        source: BackendError,
    },
}

impl StepError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            StepError::Eval(_) => ErrorKind::Expression,
            StepError::Shell(_) => ErrorKind::BadShell,
            StepError::Action(e) => e.kind(),
            StepError::Backend { source, .. } => ErrorKind::Backend(source.kind()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_say_their_kind_and_keep_their_source() {
        let error = StepError::Action(ActionError::Fetch {
            uses: "o/r@v1".into(),
            source: "connection refused".into(),
        });
        assert_eq!(error.kind(), ErrorKind::ActionFetch);
        let source = std::error::Error::source(&error).map(ToString::to_string);
        assert_eq!(source.as_deref(), Some("connection refused"));
        assert_eq!(
            error.to_string(),
            "cannot fetch the action `o/r@v1`: connection refused"
        );
        let backend = StepError::Backend {
            what: "write the step's script",
            source: BackendError::Cancelled("pulling".into()),
        };
        assert_eq!(
            backend.kind(),
            ErrorKind::Backend(hearth_backend::ErrorKind::Cancelled)
        );
        let docker = ActionError::Unrecognized {
            uses: "owner@v1".into(),
        };
        assert_eq!(docker.kind(), ErrorKind::BadAction);
    }
}
