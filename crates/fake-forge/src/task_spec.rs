//! What a test queues: a job, as the forge would hand it to a runner.

use std::collections::BTreeMap;

use hearth_forge::proto::runner::Result as ProtoResult;
use serde_json::Value;

/// A job to queue with [`crate::FakeForge::queue_task`]. Built with [`TaskSpec::new`] and the
/// `with_*` methods; every field can also be set directly.
#[derive(Debug, Clone)]
pub struct TaskSpec {
    /// The single-job workflow YAML sent as `workflow_payload`.
    pub payload_yaml: String,
    pub context: ContextSpec,
    /// Secrets besides `GITHUB_TOKEN`/`GITEA_TOKEN` (and Forgejo's `FORGEJO_TOKEN`), which the
    /// forge adds with the task token.
    pub secrets: BTreeMap<String, String>,
    pub vars: BTreeMap<String, String>,
    pub needs: BTreeMap<String, NeedSpec>,
    /// The job's `runs-on` labels; `None` reads them from the payload (`jobs.<id>.runs-on`).
    /// An empty list matches every runner.
    pub runs_on: Option<Vec<String>>,
    /// How many step rows the forge creates; `None` counts the payload job's `steps:`.
    pub step_count: Option<usize>,
}

/// The task's context.
#[derive(Debug, Clone)]
pub enum ContextSpec {
    /// [`crate::context::gitea_context`] with these overrides merged in (see
    /// [`crate::context::merge`]); `Value::Null` for none.
    GiteaDefaults(Value),
    /// Exactly this object (the forge still sets `token`, and `gitea_runtime_token` when the
    /// key is present, at pick time).
    Exact(Value),
}

/// One entry of `Task.needs`.
#[derive(Debug, Clone, Default)]
pub struct NeedSpec {
    pub outputs: BTreeMap<String, String>,
    /// A `Result` number; the forge casts its status into it, so anything can be sent.
    pub result: i32,
}

impl TaskSpec {
    pub fn new(payload_yaml: impl Into<String>) -> Self {
        TaskSpec {
            payload_yaml: payload_yaml.into(),
            context: ContextSpec::GiteaDefaults(Value::Null),
            secrets: BTreeMap::new(),
            vars: BTreeMap::new(),
            needs: BTreeMap::new(),
            runs_on: None,
            step_count: None,
        }
    }

    /// Overrides merged into the default Gitea context (`null` removes a key).
    pub fn with_context(mut self, overrides: Value) -> Self {
        self.context = ContextSpec::GiteaDefaults(overrides);
        self
    }

    pub fn with_exact_context(mut self, context: Value) -> Self {
        self.context = ContextSpec::Exact(context);
        self
    }

    pub fn with_secret(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.secrets.insert(name.into(), value.into());
        self
    }

    pub fn with_var(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.vars.insert(name.into(), value.into());
        self
    }

    pub fn with_need<K, V>(
        mut self,
        job: impl Into<String>,
        result: ProtoResult,
        outputs: impl IntoIterator<Item = (K, V)>,
    ) -> Self
    where
        K: Into<String>,
        V: Into<String>,
    {
        let outputs = outputs
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        self.needs.insert(
            job.into(),
            NeedSpec {
                outputs,
                result: result as i32,
            },
        );
        self
    }

    pub fn with_runs_on<S: Into<String>>(mut self, labels: impl IntoIterator<Item = S>) -> Self {
        self.runs_on = Some(labels.into_iter().map(Into::into).collect());
        self
    }

    pub fn with_step_count(mut self, steps: usize) -> Self {
        self.step_count = Some(steps);
        self
    }
}

/// What the forge reads from the payload itself, as Gitea's job parser would have.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct PayloadFacts {
    /// The YAML key of the single job (the context's `job`).
    pub job_key: String,
    pub step_count: usize,
    pub runs_on: Vec<String>,
}

/// Reads the payload leniently: a payload the fake cannot read (tests of the runner's own
/// rejection) gives no job key, no steps and no labels.
pub(crate) fn payload_facts(yaml: &str) -> PayloadFacts {
    let Ok(root) = hearth_workflow::yaml::load(yaml, "payload") else {
        return PayloadFacts::default();
    };
    let Some(jobs) = root.get("jobs").and_then(|j| j.as_mapping()) else {
        return PayloadFacts::default();
    };
    let Some((key, job)) = jobs.first() else {
        return PayloadFacts::default();
    };
    let step_count = job
        .get("steps")
        .and_then(|s| s.as_sequence())
        .map_or(0, <[_]>::len);
    let runs_on = match job.get("runs-on") {
        Some(node) => match (node.as_str(), node.as_sequence()) {
            (Some(label), _) => vec![label.to_string()],
            (None, Some(items)) => items
                .iter()
                .filter_map(|n| n.as_str().map(str::to_string))
                .collect(),
            (None, None) => Vec::new(),
        },
        None => Vec::new(),
    };
    PayloadFacts {
        job_key: key.as_str().unwrap_or_default().to_string(),
        step_count,
        runs_on,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_job_key_steps_and_labels() {
        let facts = payload_facts(
            "name: t\non: push\njobs:\n  build:\n    runs-on: [ubuntu-latest, big]\n    steps:\n      - run: a\n      - run: b\n",
        );
        assert_eq!(facts.job_key, "build");
        assert_eq!(facts.step_count, 2);
        assert_eq!(facts.runs_on, vec!["ubuntu-latest", "big"]);
        assert_eq!(payload_facts("not: [valid"), PayloadFacts::default());
    }
}
