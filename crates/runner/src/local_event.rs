//! The event a local run (`hearth plan`, `hearth exec`) reacts to, and the `github`, `vars`
//! and `inputs` contexts built from it and from the repository's `git` state.

use std::fs;
use std::path::Path;

use hearth_expr::{Object, Value as ExprValue};
use hearth_workflow::filters::EventInfo;
use hearth_workflow::model::{EventConfig, InputType, Scalar, Workflow};
use hearth_workflow::plan::RunContext;
use serde_json::Value;

use crate::git::Repository;

/// An event and the repository it happens in.
pub struct LocalEvent {
    /// `push`, `pull_request`, ...
    pub name: String,
    /// The webhook payload (`github.event`); `{}` when none was given.
    pub payload: Value,
    /// The payload's `ref`, else the checked-out branch.
    pub git_ref: Option<String>,
    pub repository: Repository,
    /// What the payload's commits changed, for path filters; `None` when it does not say.
    changed_paths: Option<Vec<String>>,
}

impl LocalEvent {
    /// The event `name` with the payload in `event_path`, in the repository around `directory`.
    pub fn load(
        name: &str,
        event_path: Option<&Path>,
        directory: &Path,
    ) -> Result<Self, PayloadError> {
        let payload = match event_path {
            Some(path) => read_payload(path)?,
            None => Value::Object(Default::default()),
        };
        let repository = Repository::read(directory);
        let git_ref = payload
            .get("ref")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .or_else(|| repository.head_ref.clone());
        let changed_paths = changed_paths(&payload);
        Ok(LocalEvent {
            name: name.to_owned(),
            payload,
            git_ref,
            repository,
            changed_paths,
        })
    }

    /// What event filters check.
    pub fn info(&self) -> EventInfo<'_> {
        EventInfo {
            name: &self.name,
            payload: &self.payload,
            git_ref: self.git_ref.as_deref(),
            changed_paths: self.changed_paths.as_deref(),
        }
    }

    /// The `github` context for `workflow` (read from `path`), as GitHub fills it for a run;
    /// `actor` defaults to the payload's sender, else `hearth`. A `workflow_dispatch` payload
    /// without `inputs` gets them from `inputs`, as strings, as GitHub's payload has them.
    fn github(
        &self,
        workflow: &Workflow,
        path: &Path,
        actor: Option<&str>,
        inputs: &Object,
    ) -> Object {
        let mut github = Object::new();
        github.insert("event_name", self.name.as_str());
        let mut payload = self.payload.clone();
        if self.name == "workflow_dispatch" && payload.get("inputs").is_none() {
            let as_strings: serde_json::Map<String, Value> = inputs
                .iter()
                .map(|(k, v)| (k.to_owned(), Value::from(v.to_display_string())))
                .collect();
            if let Some(object) = payload.as_object_mut() {
                object.insert("inputs".to_owned(), Value::Object(as_strings));
            }
        }
        github.insert("event", ExprValue::from_json(&payload));
        // A pull request runs on its merge ref, `refs/pull/<number>/merge`.
        let pull_ref = (self.name == "pull_request")
            .then(|| {
                self.payload
                    .get("number")
                    .or_else(|| self.payload.pointer("/pull_request/number"))
                    .and_then(Value::as_u64)
            })
            .flatten()
            .map(|number| format!("refs/pull/{number}/merge"));
        let git_ref = pull_ref
            .as_deref()
            .or(self.git_ref.as_deref())
            .unwrap_or("");
        github.insert("ref", git_ref);
        let (ref_type, ref_name) = match (
            git_ref.strip_prefix("refs/heads/"),
            git_ref.strip_prefix("refs/tags/"),
        ) {
            (Some(branch), _) => ("branch", branch),
            (_, Some(tag)) => ("tag", tag),
            _ => match git_ref.strip_prefix("refs/pull/") {
                // GitHub's ref_name of a pull request is `<number>/merge`.
                Some(pull) => ("branch", pull),
                None => ("", git_ref),
            },
        };
        github.insert("ref_name", ref_name);
        github.insert("ref_type", ref_type);
        github.insert("ref_protected", false);
        let sha = self.repository.sha.as_deref().unwrap_or("");
        github.insert("sha", sha);
        let name = self.repository.name.as_deref().unwrap_or("");
        github.insert("repository", name);
        github.insert("repository_owner", name.split('/').next().unwrap_or(""));
        let workflow_name = workflow.name.as_ref().map_or_else(
            || {
                path.file_name()
                    .map_or(String::new(), |n| n.to_string_lossy().into_owned())
            },
            |n| n.value.clone(),
        );
        github.insert("workflow", workflow_name);
        let payload_actor = self
            .payload
            .pointer("/sender/login")
            .and_then(Value::as_str);
        let actor = actor.or(payload_actor).unwrap_or("hearth");
        github.insert("actor", actor);
        github.insert("triggering_actor", actor);
        if let (Some(base), Some(head)) = (
            self.payload
                .pointer("/pull_request/base/ref")
                .and_then(Value::as_str),
            self.payload
                .pointer("/pull_request/head/ref")
                .and_then(Value::as_str),
        ) {
            github.insert("base_ref", base);
            github.insert("head_ref", head);
        } else {
            github.insert("base_ref", "");
            github.insert("head_ref", "");
        }
        github.insert("server_url", "https://github.com");
        github.insert("api_url", "https://api.github.com");
        github.insert("graphql_url", "https://api.github.com/graphql");
        github.insert("run_id", "1");
        github.insert("run_number", "1");
        github.insert("run_attempt", "1");
        github.insert("retention_days", "0");
        let file = path.to_string_lossy();
        github.insert(
            "workflow_ref",
            format!("{name}/{file}@{git_ref}").trim_start_matches('/'),
        );
        github.insert("workflow_sha", sha);
        github
    }

    /// What planning reads: `github`, `vars`, and `inputs` (the workflow's `workflow_dispatch`
    /// defaults under the values given).
    pub fn run_context(
        &self,
        workflow: &Workflow,
        path: &Path,
        actor: Option<&str>,
        vars: &[(String, String)],
        inputs: &[(String, String)],
    ) -> RunContext {
        let vars: Object = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let inputs = inputs_context(workflow, &self.payload, inputs);
        RunContext {
            github: ExprValue::object(self.github(workflow, path, actor, &inputs)),
            vars: ExprValue::object(vars),
            inputs: ExprValue::object(inputs),
        }
    }
}

/// The `inputs` context: the workflow's `workflow_dispatch` defaults, then the payload's
/// `inputs`, then `given`; booleans and numbers typed as the inputs declare them (GitHub keeps
/// a boolean input a boolean in `inputs`, while `github.event.inputs` has strings). The daemon
/// builds a forge task's `inputs` with it too.
pub(crate) fn inputs_context(
    workflow: &Workflow,
    payload: &Value,
    given: &[(String, String)],
) -> Object {
    let mut inputs = Object::new();
    let declared = match workflow.on.event("workflow_dispatch").map(|e| &e.config) {
        Some(EventConfig::WorkflowDispatch(dispatch)) => dispatch.inputs.as_slice(),
        _ => &[],
    };
    for input in declared {
        let value = match input.default.as_ref().map(|d| &d.value) {
            Some(Scalar::Bool(b)) => ExprValue::from(*b),
            Some(Scalar::Number(n)) => ExprValue::from(*n),
            Some(Scalar::String(s)) => typed(&input.kind, s),
            Some(Scalar::Null) | None => ExprValue::from(""),
        };
        inputs.insert(input.name.value.as_str(), value);
    }
    let kind_of = |name: &str| {
        declared
            .iter()
            .find(|i| i.name.value == name)
            .map(|i| &i.kind)
    };
    let from_payload = payload.get("inputs").and_then(Value::as_object);
    for (name, value) in from_payload.into_iter().flatten() {
        let value = match (value, kind_of(name)) {
            (Value::String(s), Some(kind)) => typed(kind, s),
            (other, _) => ExprValue::from_json(other),
        };
        inputs.insert(name.as_str(), value);
    }
    for (name, value) in given {
        let value = match kind_of(name) {
            Some(kind) => typed(kind, value),
            None => ExprValue::from(value.as_str()),
        };
        inputs.insert(name.as_str(), value);
    }
    inputs
}

/// A string value of an input of type `kind`: `true`/`false` for booleans and numbers become
/// those; anything else stays the string given.
fn typed(kind: &InputType, value: &str) -> ExprValue {
    match kind {
        InputType::Boolean if value.eq_ignore_ascii_case("true") => ExprValue::from(true),
        InputType::Boolean if value.eq_ignore_ascii_case("false") => ExprValue::from(false),
        InputType::Number => match value.trim().parse::<f64>() {
            Ok(n) if n.is_finite() => ExprValue::from(n),
            _ => ExprValue::from(value),
        },
        _ => ExprValue::from(value),
    }
}

/// Why an event payload file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    #[error("cannot read the event payload {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("the event payload {path} is not valid JSON: {source}")]
    Json {
        path: String,
        source: serde_json::Error,
    },
    #[error("the event payload {0} must be a JSON object")]
    NotObject(String),
}

fn read_payload(path: &Path) -> Result<Value, PayloadError> {
    let shown = || path.display().to_string();
    let text = fs::read_to_string(path).map_err(|source| PayloadError::Read {
        path: shown(),
        source,
    })?;
    let payload: Value = serde_json::from_str(&text).map_err(|source| PayloadError::Json {
        path: shown(),
        source,
    })?;
    if !payload.is_object() {
        return Err(PayloadError::NotObject(shown()));
    }
    Ok(payload)
}

/// The files a push payload says changed (`commits[].added/removed/modified`), so that path
/// filters can be applied; `None` when the payload does not say.
fn changed_paths(payload: &Value) -> Option<Vec<String>> {
    let commits = payload.get("commits")?.as_array()?;
    let mut paths = Vec::new();
    for commit in commits {
        for key in ["added", "removed", "modified"] {
            let files = commit.get(key).and_then(Value::as_array);
            for file in files.into_iter().flatten().filter_map(Value::as_str) {
                if !paths.iter().any(|p| p == file) {
                    paths.push(file.to_owned());
                }
            }
        }
    }
    Some(paths)
}
