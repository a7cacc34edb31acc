//! Loading actions: `uses: ./path` from the job's workspace (read through the runtime: the
//! job's files may not be on this machine), and `uses: owner/repo[/path]@ref` fetched through
//! the runner's [`ActionSource`] once per job, then made available to the job by the runtime
//! (the same folder on the host, a copy in a container).

use std::collections::BTreeMap;

use hearth_backend::{CancellationToken, HostPath, JobPath, JobRuntime};
use hearth_workflow::model::Action;

use super::error::ActionError;
use super::remote::{ActionSource, RemoteAction};

/// The most of an `action.yml` the engine reads.
const ACTION_FILE_LIMIT: u64 = 4 * 1024 * 1024;

/// A loaded action and where it lives.
pub(super) struct Loaded {
    pub action: Action,
    /// The file's name for messages (`./path/action.yml`).
    pub file: String,
    /// The action's folder as the job's processes see it.
    pub dir: JobPath,
    /// Fetched from another repository (not `./path`).
    pub remote: bool,
}

/// The actions a job fetched so far.
#[derive(Default)]
pub(super) struct ActionLoader {
    /// By `uses:` value: the folder on the host, and as the job sees it.
    fetched: BTreeMap<String, (HostPath, JobPath)>,
}

impl ActionLoader {
    /// Finds and parses `action.yml` (or `action.yaml`) of the action `uses` names.
    pub async fn load(
        &mut self,
        uses: &str,
        runtime: &dyn JobRuntime,
        source: Option<&dyn ActionSource>,
        cancel: &CancellationToken,
    ) -> Result<Loaded, ActionError> {
        if let Some(remote) = RemoteAction::parse(uses) {
            return self
                .load_remote(uses, &remote, runtime, source, cancel)
                .await;
        }
        let Some(relative) = uses.strip_prefix("./") else {
            return Err(ActionError::Unrecognized {
                uses: uses.to_owned(),
            });
        };
        let relative = relative.trim_end_matches('/');
        let seen = runtime.paths().workspace.join(relative);
        for file in ["action.yml", "action.yaml"] {
            let path = seen.join(file);
            let read = runtime
                .read_file(&path, ACTION_FILE_LIMIT)
                .await
                .map_err(|source| ActionError::Read {
                    path: path.clone(),
                    source,
                })?;
            if let Some(bytes) = read {
                let text =
                    String::from_utf8(bytes).map_err(|_| ActionError::NotText(path.to_string()))?;
                return parse(&text, &format!("./{relative}"), file, seen);
            }
        }
        Err(ActionError::NoLocalActionFile(seen))
    }

    async fn load_remote(
        &mut self,
        uses: &str,
        remote: &RemoteAction<'_>,
        runtime: &dyn JobRuntime,
        source: Option<&dyn ActionSource>,
        cancel: &CancellationToken,
    ) -> Result<Loaded, ActionError> {
        let Some(source) = source else {
            return Err(ActionError::NoSource {
                uses: uses.to_owned(),
            });
        };
        // Fetched once per job: when the job starts (for `pre`), or at its first use.
        let (on_host, seen) = match self.fetched.get(uses) {
            Some(folders) => folders.clone(),
            None => {
                let folder = source
                    .fetch(remote.repository, remote.reference, cancel)
                    .await
                    .map_err(|source| ActionError::Fetch {
                        uses: uses.to_owned(),
                        source,
                    })?;
                let on_host = HostPath::new(folder);
                // The runner fetched it on its own machine; the job may see it elsewhere.
                let seen =
                    runtime
                        .expose(&on_host)
                        .await
                        .map_err(|source| ActionError::Expose {
                            uses: uses.to_owned(),
                            source,
                        })?;
                self.fetched
                    .insert(uses.to_owned(), (on_host.clone(), seen.clone()));
                (on_host, seen)
            }
        };
        let name = match remote.path {
            "" => remote.repository.to_owned(),
            path => format!("{}/{path}", remote.repository),
        };
        let label = format!("{name}@{}", remote.reference);
        // The runner's own checkout: read here, where the runner put it.
        let folder = on_host.join(remote.path);
        for file in ["action.yml", "action.yaml"] {
            let path = folder.join(file);
            match tokio::fs::read_to_string(path.as_path()).await {
                Ok(text) => {
                    let loaded = parse(&text, &label, file, seen.join(remote.path))?;
                    return Ok(Loaded {
                        remote: true,
                        ..loaded
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(ActionError::ReadFetched {
                        path: path.to_string(),
                        source,
                    })
                }
            }
        }
        Err(ActionError::NoActionFile {
            uses: uses.to_owned(),
        })
    }
}

/// Parses an action's `file` (`action.yml` or `action.yaml`); `label` names its folder in
/// messages, `dir` is the folder as the job's processes see it.
fn parse(text: &str, label: &str, file: &str, dir: JobPath) -> Result<Loaded, ActionError> {
    let file = format!("{label}/{file}");
    let action = Action::parse(text, &file)?;
    Ok(Loaded {
        action,
        file,
        dir,
        remote: false,
    })
}
