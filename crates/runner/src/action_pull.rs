//! `hearth actions pull WORKFLOW...`: fills the action cache ahead of time, for a runner that
//! will run offline (an air-gapped site, an image built with its actions in it).
//!
//! Every `uses: owner/repo[/path]@ref` (and full-URL one) of the workflows' steps is fetched as
//! a job would fetch it; a composite action's own `uses:` are followed, to any depth, each
//! repository and ref once. What is fetched is recorded by its ref, so that an offline runner
//! with the same cache finds it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use hearth_engine::job::remote::{ActionSource, RemoteAction};
use hearth_workflow::model::{Action, Runs, Step, StepKind, Workflow};
use tokio_util::sync::CancellationToken;

use crate::actions::GitActions;

/// What was fetched: each action as `uses:` names it (without its path), and its folder.
#[derive(Debug, Default)]
pub struct Pulled {
    pub actions: Vec<(String, PathBuf)>,
}

/// Why the cache could not be filled.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
    #[error("cannot fetch the action `{action}`: {source}")]
    Fetch {
        action: String,
        #[source]
        source: hearth_engine::job::remote::FetchError,
    },
}

/// Fetches every remote action the workflow files use, and the actions those use.
pub async fn pull(
    workflows: &[PathBuf],
    source: &GitActions,
    cancel: &CancellationToken,
) -> Result<Pulled, PullError> {
    let mut wanted = Vec::new();
    for file in workflows {
        let text = read(file).await?;
        let workflow = Workflow::parse(&text, &file.display().to_string())
            .map_err(|diagnostics| PullError::Invalid(diagnostics.to_string()))?;
        for job in &workflow.jobs {
            collect(&job.steps, &mut wanted);
        }
    }
    let mut seen = BTreeSet::new();
    let mut pulled = Pulled::default();
    while let Some(uses) = wanted.pop() {
        let Some(remote) = RemoteAction::parse(&uses) else {
            continue;
        };
        let action = format!("{}@{}", remote.repository, remote.reference);
        if !seen.insert(action.clone()) {
            continue;
        }
        let folder = source
            .fetch(remote.repository, remote.reference, cancel)
            .await
            .map_err(|source| PullError::Fetch {
                action: action.clone(),
                source,
            })?;
        // A composite action's own actions are needed offline too.
        if let Some(Runs::Composite { steps }) =
            action_runs(&folder.join(remote.path), &uses).await?
        {
            collect(&steps, &mut wanted);
        }
        pulled.actions.push((action, folder));
    }
    Ok(pulled)
}

/// The `uses:` of `steps`, nested `parallel` steps included.
fn collect(steps: &[Step], into: &mut Vec<String>) {
    for step in steps {
        match &step.kind {
            StepKind::Uses { uses, .. } => into.push(uses.value.clone()),
            StepKind::Parallel { steps } => collect(steps, into),
            _ => {}
        }
    }
}

/// What the action in `folder` runs (`None` without an `action.yml`, as for a repository that
/// only holds actions in folders below).
async fn action_runs(folder: &Path, uses: &str) -> Result<Option<Runs>, PullError> {
    for name in ["action.yml", "action.yaml"] {
        let path = folder.join(name);
        match tokio::fs::read_to_string(&path).await {
            Ok(text) => {
                let action = Action::parse(&text, &format!("{uses}: {name}"))
                    .map_err(|diagnostics| PullError::Invalid(diagnostics.to_string()))?;
                return Ok(Some(action.runs));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(PullError::Read {
                    path: path.display().to_string(),
                    source,
                })
            }
        }
    }
    Ok(None)
}

async fn read(file: &Path) -> Result<String, PullError> {
    tokio::fs::read_to_string(file)
        .await
        .map_err(|source| PullError::Read {
            path: file.display().to_string(),
            source,
        })
}
