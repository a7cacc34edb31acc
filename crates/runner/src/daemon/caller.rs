//! A task whose job calls a reusable workflow (`jobs.<id>.uses`), as a forge that does not
//! expand calls itself sends it (current Gitea and Forgejo expand them and send the called
//! jobs; older ones sent the caller). The runner then does what act_runner did: it runs the
//! called workflow's jobs itself, one after another in `needs` order, within the one task,
//! through the same scheduler as `hearth exec` (`exec::schedule`), every row in the task's
//! log. The task's result and outputs are the calling job's: the called workflow's
//! `on.workflow_call.outputs`.
//!
//! A local call (`./.gitea/workflows/x.yml`) is read from the repository at the task's commit,
//! fetched from the forge with the task's token like an action; a remote one like an action.

use std::sync::Arc;

use hearth_engine::job::remote::ActionSource;
use hearth_engine::job::JobControl;
use hearth_events::{Conclusion, Event, EventSink, LogLine};
use hearth_expr::{Object, Value};
use hearth_forge::proto::runner::Result as TaskResult;
use hearth_forge::{TaskInfo, TaskReporter};
use hearth_workflow::payload::SingleJob;
use hearth_workflow::plan::RunContext;

use super::task::{TaskRuntime, RUNNER_LABEL, TASK_LABEL};
use crate::exec::schedule::{self, JobExtras, NeededJob, PlannedWorkflow, Settings};

/// What the task shares with its called jobs, as `task::prepare` makes it for a plain job.
pub(super) struct CallerTask<'a> {
    pub file: &'a str,
    pub single: &'a SingleJob,
    pub github: Object,
    pub vars: Object,
    pub inputs: Object,
    pub secrets: Vec<(String, secrecy::SecretString)>,
    pub masker: hearth_engine::mask::Masker,
    pub runner_env: Vec<(String, String)>,
    /// The runner's side the jobs must reach besides the forge (the cache).
    pub reach: Vec<hearth_backend::Reach>,
    pub forge_registry: Option<hearth_backend::ForgeRegistry>,
    pub actions: Arc<crate::actions::GitActions>,
}

/// Runs the called workflow's jobs for the task; its result and outputs.
pub(super) async fn run(
    runtime: &TaskRuntime,
    task: &TaskInfo,
    caller: CallerTask<'_>,
    reporter: &TaskReporter,
    control: &JobControl,
) -> (TaskResult, Vec<(String, String)>) {
    let job = caller.single.job();
    let log = |text: &str| {
        reporter.event(&Event::Log {
            job: &hearth_events::JobLabel {
                id: job.id.value.clone(),
                name: job.id.value.clone(),
            },
            step: None,
            line: LogLine::Info(&caller.masker.mask_text(text)),
        });
    };
    let uses = job
        .uses
        .as_ref()
        .map(|u| u.value.as_str())
        .unwrap_or_default();
    log(&format!(
        "This job calls the reusable workflow {uses}: the runner runs its jobs here, one after \
         another"
    ));
    // A local call is a file of the repository at the task's commit.
    let root = if uses.starts_with("./") {
        let repository = format!(
            "{}/{}",
            runtime.address.trim_end_matches('/'),
            task.context_str("repository")
        );
        let sha = task.context_str("sha");
        match caller
            .actions
            .fetch(&repository, sha, &control.cancel)
            .await
        {
            Ok(folder) => Some(folder),
            Err(e) => {
                let message = format!(
                    "##[error]cannot fetch the repository {repository} at {sha} to read {uses}: {e}"
                );
                log(&message);
                return (TaskResult::Failure, Vec::new());
            }
        }
    } else {
        None
    };

    let needed = task
        .needs
        .iter()
        .map(|(id, need)| NeededJob {
            id: id.clone(),
            result: match need.result.as_str() {
                "success" => Conclusion::Success,
                "skipped" => Conclusion::Skipped,
                "cancelled" => Conclusion::Cancelled,
                _ => Conclusion::Failure,
            },
            outputs: need
                .outputs
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        })
        .collect();
    // The payload's job has its `needs` taken out (they are not in the payload); given back
    // here, so that the caller's expressions see `needs.<id>` as the forge sent them.
    let mut workflow = caller.single.workflow().clone();
    if let Some(calling) = workflow.jobs.first_mut() {
        calling.needs = caller
            .single
            .needs()
            .iter()
            .map(|id| hearth_workflow::model::Text {
                value: id.clone(),
                span: calling.id.span,
            })
            .collect();
    }
    let planned = PlannedWorkflow {
        label: caller.file.to_owned(),
        workflow,
        run: RunContext {
            github: Value::object(caller.github),
            vars: Value::object(caller.vars),
            inputs: Value::object(caller.inputs),
        },
        only: None,
        needed,
    };
    let every = |_: &serde_json::Map<String, serde_json::Value>| true;
    let settings = Settings {
        secrets: caller.secrets,
        masker: caller.masker.clone(),
        extra_env: runtime.envs.clone(),
        // Jobs start with an empty workspace, as the daemon's jobs do (they check out).
        repository: None,
        bind_repository: false,
        actions: caller.actions.clone(),
        runner: runtime.runner.clone(),
        backends: runtime.backends.clone(),
        matrix_filter: &every,
        parallel: 1,
        dry_run: false,
        extras: JobExtras {
            runner_env: caller.runner_env,
            reach: std::iter::once(super::task::forge_reach(&runtime.address))
                .chain(caller.reach)
                .collect(),
            owner: vec![
                (RUNNER_LABEL.to_owned(), runtime.runner_uuid.clone()),
                (TASK_LABEL.to_owned(), task.id.to_string()),
            ],
            forge_registry: caller.forge_registry,
        },
    };
    let sink = CalledJobsLog { reporter };
    let (_, ended) = schedule::run_workflow(&planned, &settings, &sink, control, root).await;
    let Some(done) = ended.into_iter().find(|done| done.id == job.id.value) else {
        // Only when a job it needs is missing from what the forge sent.
        log("##[error]the calling job did not run: the forge did not send the results of the jobs it needs");
        return (TaskResult::Failure, Vec::new());
    };
    let result = match done.result {
        Conclusion::Success => TaskResult::Success,
        Conclusion::Failure => TaskResult::Failure,
        Conclusion::Cancelled => TaskResult::Cancelled,
        Conclusion::Skipped => TaskResult::Skipped,
    };
    (result, done.outputs)
}

/// The called jobs' events as rows of the one task: their steps are not the task's (it has
/// none), so each job and step is told in a row of its own.
struct CalledJobsLog<'a> {
    reporter: &'a TaskReporter,
}

impl CalledJobsLog<'_> {
    fn say(&self, job: &hearth_events::JobLabel, text: &str) {
        self.reporter.event(&Event::Log {
            job,
            step: None,
            line: LogLine::Info(text),
        });
    }
}

impl EventSink for CalledJobsLog<'_> {
    fn event(&self, event: &Event<'_>) {
        match event {
            Event::JobStarted { job } => {
                self.reporter.event(event);
                self.say(job, &format!("Job {}", job.name));
            }
            Event::StepStarted { job, step } => self.say(job, &format!("▶ {}", step.name)),
            Event::StepFinished {
                job,
                step,
                conclusion,
                ..
            } => self.say(job, &format!("◀ {}: {}", step.name, conclusion.as_str())),
            Event::JobFinished {
                job,
                result,
                reason,
                ..
            } => {
                let why = reason.map(|r| format!(" ({r})")).unwrap_or_default();
                self.say(job, &format!("Job {}: {}{why}", job.name, result.as_str()));
            }
            Event::Log { .. } | Event::StepSummary { .. } => self.reporter.event(event),
        }
    }
}
