//! Runs the jobs of the triggered workflows as GitHub would: a job starts once all its needs
//! have ended, its `if:` decided with their real results and outputs; a matrix job's
//! combinations run side by side, at most `max-parallel` at a time, and at most `--jobs` jobs
//! run at once overall; with `fail-fast`, a failed combination cancels its siblings.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use super::called;
use crate::route::Backends;
use futures_util::stream::{FuturesUnordered, StreamExt};
use hearth_backend::HostPath;
use hearth_engine::job::remote::ActionSource;
use hearth_engine::job::{
    default_step_name, run_job, JobControl, JobOutcome, JobRequest, RunnerInfo,
};
use hearth_engine::mask::Masker;
use hearth_events::{Conclusion, Event, EventSink, JobLabel};
use hearth_expr::{Object, Status, Value as ExprValue};
use hearth_workflow::graph::{needs_status, JobResult};
use hearth_workflow::model::{Job, OrExpr, Workflow};
use hearth_workflow::plan::call::{self, MAX_CALL_DEPTH};
use hearth_workflow::plan::{decide_job, expand_job, JobContext, JobPlan, PlannedJob, RunContext};
use hearth_workflow::validate::Diagnostic;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};
use tokio::sync::Semaphore;

/// A workflow the event triggers, ready to run.
pub struct PlannedWorkflow {
    /// The file as messages name it.
    pub label: String,
    pub workflow: Workflow,
    /// `github`, `vars` and `inputs`.
    pub run: RunContext,
    /// Which jobs to run (`-j`), with what they need; `None` runs all.
    pub only: Option<Vec<String>>,
    /// Jobs of the run that are not in this workflow but that its jobs need, ended already:
    /// the forge's `needs` of a task whose job calls a workflow.
    pub needed: Vec<NeededJob>,
}

/// A job that ended elsewhere, as `needs.<id>` shows it.
#[derive(Clone, Debug)]
pub struct NeededJob {
    pub id: String,
    pub result: Conclusion,
    pub outputs: Vec<(String, String)>,
}

/// What a runner's jobs get besides what the workflow says (the daemon's: the forge's
/// variables, the forge to reach, the labels that own its containers, its registry); empty for
/// `hearth exec`.
#[derive(Clone, Debug, Default)]
pub struct JobExtras {
    pub runner_env: Vec<(String, String)>,
    pub reach: Vec<hearth_backend::Reach>,
    pub owner: Vec<(String, String)>,
    pub forge_registry: Option<hearth_backend::ForgeRegistry>,
}

/// What every job of the run shares.
pub struct Settings<'a> {
    pub secrets: Vec<(String, SecretString)>,
    /// Masks the secrets; built once and shared by every job.
    pub masker: Masker,
    pub extra_env: Vec<(String, String)>,
    /// The repository every job's workspace is a copy of.
    pub repository: Option<HostPath>,
    /// `--bind`: every job's workspace is the repository itself.
    pub bind_repository: bool,
    /// Where `uses: owner/repo@ref` actions come from.
    pub actions: Arc<dyn ActionSource>,
    pub runner: RunnerInfo,
    /// Where a job with these `runs-on` labels runs, or why it cannot.
    pub backends: Backends,
    /// `--matrix`: which combinations to run.
    pub matrix_filter: &'a (dyn Fn(&Map<String, Value>) -> bool + Sync),
    /// At most this many jobs at once (`--jobs`).
    pub parallel: usize,
    /// `--dryrun`: report the jobs and steps without running anything.
    pub dry_run: bool,
    /// What every job gets besides what the workflow says.
    pub extras: JobExtras,
}

/// How one job (one matrix combination) ended, for the exit code.
#[derive(Clone, Debug)]
pub struct JobReport {
    pub result: Conclusion,
    /// `continue-on-error` was true: a failure does not fail the run.
    pub may_fail: bool,
}

/// Runs every workflow's jobs; returns a report per job that ran or was skipped.
pub async fn run_workflows(
    workflows: &[PlannedWorkflow],
    settings: &Settings<'_>,
    sink: &dyn EventSink,
    control: &JobControl,
) -> Vec<JobReport> {
    let slots = Semaphore::new(settings.parallel.max(1));
    let scope = Scope {
        secrets: settings.secrets.clone(),
        masker: settings.masker.clone(),
        prefix: String::new(),
        depth: 1,
        root: settings.repository.as_ref().map(|r| r.as_path().to_owned()),
    };
    let runs = workflows.iter().map(|workflow| {
        let scheduler = Scheduler {
            workflow,
            settings,
            sink,
            control,
            slots: &slots,
            scope: &scope,
        };
        async move { scheduler.run().await.0 }
    });
    futures_util::future::join_all(runs)
        .await
        .into_iter()
        .flatten()
        .collect()
}

/// Runs one workflow's jobs; returns a report per job, and how each of its jobs (by id) ended
/// with its outputs (a calling job's are the called workflow's). Its `./` calls are read from
/// `root` (else from the settings' repository).
pub async fn run_workflow(
    workflow: &PlannedWorkflow,
    settings: &Settings<'_>,
    sink: &dyn EventSink,
    control: &JobControl,
    root: Option<std::path::PathBuf>,
) -> (Vec<JobReport>, Vec<NeededJob>) {
    let slots = Semaphore::new(settings.parallel.max(1));
    let scope = Scope {
        secrets: settings.secrets.clone(),
        masker: settings.masker.clone(),
        prefix: String::new(),
        depth: 1,
        root: root.or_else(|| settings.repository.as_ref().map(|r| r.as_path().to_owned())),
    };
    let scheduler = Scheduler {
        workflow,
        settings,
        sink,
        control,
        slots: &slots,
        scope: &scope,
    };
    let (reports, ended) = scheduler.run().await;
    let ended = ended
        .into_iter()
        .map(|(id, done)| NeededJob {
            id,
            result: done.result,
            outputs: done.outputs,
        })
        .collect();
    (reports, ended)
}

/// What the jobs of one workflow get from whoever runs it: the run for a workflow the event
/// triggered, the calling job for a called one.
struct Scope {
    /// The `secrets` context: the run's, or those the caller passed.
    secrets: Vec<(String, SecretString)>,
    /// Masks every secret the jobs may see or print.
    masker: Masker,
    /// `caller / ` before each job's name in a called workflow, as GitHub shows them.
    prefix: String,
    /// 1 for a workflow the event triggered, one more per call.
    depth: usize,
    /// The repository the workflow's file came from, which its `./` calls are read from.
    root: Option<std::path::PathBuf>,
}

/// A job's result and outputs, as `needs.<id>` shows them.
#[derive(Clone, Debug)]
struct Finished {
    result: Conclusion,
    outputs: Vec<(String, String)>,
}

struct Scheduler<'a> {
    workflow: &'a PlannedWorkflow,
    settings: &'a Settings<'a>,
    sink: &'a dyn EventSink,
    control: &'a JobControl,
    /// Jobs that run steps take one each; a calling job takes none (its called jobs do).
    slots: &'a Semaphore,
    scope: &'a Scope,
}

impl Scheduler<'_> {
    /// Runs the workflow's jobs; their reports, and how each job (by id) ended.
    async fn run(&self) -> (Vec<JobReport>, Vec<(String, Finished)>) {
        let jobs = &self.workflow.workflow.jobs;
        let wanted = self.wanted();
        let mut pending: Vec<&Job> = jobs.iter().filter(|j| wanted(&j.id.value)).collect();
        let mut finished: HashMap<&str, Finished> = HashMap::new();
        for needed in &self.workflow.needed {
            let done = Finished {
                result: needed.result,
                outputs: needed.outputs.clone(),
            };
            finished.insert(needed.id.as_str(), done);
        }
        let mut running = FuturesUnordered::new();
        let mut reports = Vec::new();
        loop {
            let (ready, waiting): (Vec<&Job>, Vec<&Job>) = pending.into_iter().partition(|job| {
                job.needs
                    .iter()
                    .all(|need| finished.contains_key(need.value.as_str()))
            });
            pending = waiting;
            for job in ready {
                let needs = needs_context(job, &finished);
                running.push(async move { (job, self.run_job(job, needs).await) });
            }
            let Some((job, (result, job_reports))) = running.next().await else {
                break;
            };
            reports.extend(job_reports);
            finished.insert(job.id.value.as_str(), result);
        }
        // In the workflow's order, for the `jobs` context of a called workflow's outputs.
        let ended = jobs
            .iter()
            .filter_map(|job| {
                let id = job.id.value.as_str();
                finished.remove(id).map(|done| (id.to_owned(), done))
            })
            .collect();
        (reports, ended)
    }

    /// Which jobs `-j` keeps: the named ones and everything they need, transitively.
    fn wanted(&self) -> impl Fn(&str) -> bool {
        let jobs = &self.workflow.workflow.jobs;
        let keep: Option<Vec<String>> = self.workflow.only.as_ref().map(|only| {
            let mut keep: Vec<String> = only.clone();
            let mut i = 0;
            while i < keep.len() {
                if let Some(job) = jobs.iter().find(|j| j.id.value == keep[i]) {
                    for need in &job.needs {
                        if !keep.contains(&need.value) {
                            keep.push(need.value.clone());
                        }
                    }
                }
                i += 1;
            }
            keep
        });
        move |id| {
            keep.as_ref()
                .is_none_or(|keep| keep.iter().any(|k| k == id))
        }
    }

    /// Decides whether the job runs, expands its matrix and runs the combinations.
    async fn run_job(&self, job: &Job, needs: (Object, Status)) -> (Finished, Vec<JobReport>) {
        let (needs, mut status) = needs;
        if self.control.cancel.is_cancelled() {
            status = Status::Cancelled;
        }
        let file = self.workflow.label.as_str();
        let mut contexts = Object::with_capacity(4);
        contexts.insert("github", self.workflow.run.github.clone());
        contexts.insert("vars", self.workflow.run.vars.clone());
        contexts.insert("inputs", self.workflow.run.inputs.clone());
        contexts.insert("needs", ExprValue::object(needs.clone()));
        let label = JobLabel {
            id: job.id.value.clone(),
            name: format!(
                "{}{}",
                self.scope.prefix,
                job.name
                    .as_ref()
                    .map_or_else(|| job.id.value.clone(), |n| n.value.clone())
            ),
        };

        match decide_job(file, job, &contexts, status) {
            Ok(None) => {}
            Ok(Some(reason)) => return self.skipped(&label, &reason),
            Err(e) => return self.failed(&label, &e.to_string()),
        }
        let need_ids: Vec<String> = job.needs.iter().map(|n| n.value.clone()).collect();
        let context = JobContext {
            contexts: &contexts,
            needs: &need_ids,
            needs_outputs_known: true,
        };
        let instances = match expand_job(file, job, &context) {
            Ok(JobPlan::Run(instances)) => instances,
            Ok(JobPlan::Skipped { reason }) => return self.skipped(&label, &reason),
            Ok(JobPlan::Deferred { reason, .. }) => return self.failed(&label, &reason),
            Err(e) => return self.failed(&label, &e.to_string()),
        };
        let instances: Vec<PlannedJob> = instances
            .into_iter()
            .filter(|i| {
                i.matrix
                    .as_ref()
                    .is_none_or(|m| (self.settings.matrix_filter)(m))
            })
            .map(|mut i| {
                i.name = format!("{}{}", self.scope.prefix, i.name);
                i
            })
            .collect();
        if instances.is_empty() {
            return self.skipped(&label, "no matrix combination is selected by --matrix");
        }
        self.run_instances(job, &needs, &contexts, instances).await
    }

    /// Runs a job's combinations, `max-parallel` at a time, with fail-fast.
    async fn run_instances(
        &self,
        job: &Job,
        needs: &Object,
        contexts: &Object,
        instances: Vec<PlannedJob>,
    ) -> (Finished, Vec<JobReport>) {
        let max_parallel = instances
            .first()
            .map_or(1, |i| i.strategy.max_parallel.max(1));
        let fail_fast = instances.first().is_some_and(|i| i.strategy.fail_fast);
        let matrix_slots = Semaphore::new(max_parallel);
        let siblings = self.control.cancel.child_token();
        let runs = instances.iter().map(|instance| {
            let control = JobControl {
                cancel: siblings.clone(),
                force: self.control.force.clone(),
            };
            let siblings = &siblings;
            let matrix_slots = &matrix_slots;
            async move {
                let _matrix = matrix_slots.acquire().await;
                let (outcome, reports) = if job.is_call() {
                    self.run_call(job, contexts, instance, &control).await
                } else {
                    let _slot = self.slots.acquire().await;
                    let (outcome, report) = self
                        .run_instance(job, needs, contexts, instance, &control)
                        .await;
                    (outcome, vec![report])
                };
                let may_fail = reports.iter().all(|r| r.may_fail) && !reports.is_empty();
                if fail_fast && outcome.result == Conclusion::Failure && !may_fail {
                    siblings.cancel();
                }
                (outcome, reports)
            }
        });
        let outcomes = futures_util::future::join_all(runs).await;
        let mut outputs: Vec<(String, String)> = Vec::new();
        let mut reports = Vec::with_capacity(outcomes.len());
        let mut results = Vec::with_capacity(outcomes.len());
        for (outcome, instance_reports) in outcomes {
            for (name, value) in outcome.outputs {
                outputs.retain(|(n, _)| *n != name);
                outputs.push((name, value));
            }
            results.push(outcome.result);
            reports.extend(instance_reports);
        }
        let result = combined(&results);
        (Finished { result, outputs }, reports)
    }

    async fn run_instance(
        &self,
        job: &Job,
        needs: &Object,
        contexts: &Object,
        instance: &PlannedJob,
        control: &JobControl,
    ) -> (JobOutcome, JobReport) {
        // The name was evaluated (matrix values, `vars`): masked as `run_job` masks it.
        let label = JobLabel {
            id: instance.job_id.clone(),
            name: self.scope.masker.mask_text(&instance.name),
        };
        let may_fail = match continue_on_error(&self.workflow.label, job, contexts, instance) {
            Ok(may_fail) => may_fail,
            Err(message) => {
                // As GitHub fails a job whose `continue-on-error` cannot be evaluated.
                self.sink.event(&Event::JobStarted { job: &label });
                self.sink.event(&Event::Log {
                    job: &label,
                    step: None,
                    line: hearth_events::LogLine::Error(&self.scope.masker.mask_text(&message)),
                });
                self.finish_unrun(&label, Conclusion::Failure, None);
                let report = JobReport {
                    result: Conclusion::Failure,
                    may_fail: false,
                };
                return (unrun(Conclusion::Failure), report);
            }
        };
        let report = |result| JobReport { result, may_fail };
        if control.cancel.is_cancelled() && !self.control.cancel.is_cancelled() {
            // fail-fast cancelled this combination before it started.
            self.finish_unrun(
                &label,
                Conclusion::Cancelled,
                Some("fail-fast: a sibling failed"),
            );
            return (unrun(Conclusion::Cancelled), report(Conclusion::Cancelled));
        }
        let route = match self.settings.backends.route(&instance.runs_on) {
            Ok(route) => route,
            Err(reason) => {
                self.finish_unrun(&label, Conclusion::Skipped, Some(&reason.to_string()));
                return (unrun(Conclusion::Skipped), report(Conclusion::Skipped));
            }
        };
        if self.settings.dry_run {
            self.dry_run(job, &label);
            return (unrun(Conclusion::Success), report(Conclusion::Success));
        }
        let request = JobRequest {
            file: &self.workflow.label,
            workflow: &self.workflow.workflow,
            job,
            planned: instance,
            github: self
                .workflow
                .run
                .github
                .as_object()
                .cloned()
                .unwrap_or_default(),
            vars: self
                .workflow
                .run
                .vars
                .as_object()
                .cloned()
                .unwrap_or_default(),
            secrets: self.scope.secrets.clone(),
            masker: self.scope.masker.clone(),
            inputs: self
                .workflow
                .run
                .inputs
                .as_object()
                .cloned()
                .unwrap_or_default(),
            needs: needs.clone(),
            runner: self.settings.runner.clone(),
            runner_env: self.settings.extras.runner_env.clone(),
            extra_env: self.settings.extra_env.clone(),
            repository: self.settings.repository.clone(),
            bind_repository: self.settings.bind_repository,
            label_image: route.image.clone(),
            reach: self.settings.extras.reach.clone(),
            owner: self.settings.extras.owner.clone(),
            actions: Some(self.settings.actions.clone()),
            env_folders: Vec::new(),
            forge_registry: self.settings.extras.forge_registry.clone(),
        };
        let outcome = run_job(route.backend.as_ref(), &request, self.sink, control).await;
        let result = outcome.result;
        (outcome, report(result))
    }

    /// Runs one combination of a job that calls a reusable workflow: the called workflow's
    /// jobs, named `caller / job`, with the inputs and secrets the caller gives; its outputs
    /// are the called workflow's `on.workflow_call.outputs`.
    async fn run_call(
        &self,
        job: &Job,
        contexts: &Object,
        instance: &PlannedJob,
        control: &JobControl,
    ) -> (JobOutcome, Vec<JobReport>) {
        let label = JobLabel {
            id: instance.job_id.clone(),
            name: self.scope.masker.mask_text(&instance.name),
        };
        if control.cancel.is_cancelled() && !self.control.cancel.is_cancelled() {
            self.finish_unrun(
                &label,
                Conclusion::Cancelled,
                Some("fail-fast: a sibling failed"),
            );
            let report = JobReport {
                result: Conclusion::Cancelled,
                may_fail: false,
            };
            return (unrun(Conclusion::Cancelled), vec![report]);
        }
        let (failed, reports) = match self.call(job, contexts, instance, control).await {
            Ok(ran) => return ran,
            Err(message) => self.failed(&label, &message),
        };
        (unrun(failed.result), reports)
    }

    /// [`Self::run_call`] once the call is known to be wanted; an error says why the called
    /// workflow could not run at all, for the calling job's log.
    async fn call(
        &self,
        job: &Job,
        contexts: &Object,
        instance: &PlannedJob,
        control: &JobControl,
    ) -> Result<(JobOutcome, Vec<JobReport>), String> {
        let file = self.workflow.label.as_str();
        let Some(uses) = &job.uses else {
            return Err(format!("job '{}' calls no workflow", job.id.value));
        };
        if self.scope.depth >= MAX_CALL_DEPTH {
            return Err(Diagnostic::new(
                file,
                uses.span.start,
                format!(
                    "'{}' would be level {} of nested reusable workflows; they nest at most \
                     {MAX_CALL_DEPTH} levels deep (the workflow the event triggered is the first)",
                    uses.value,
                    self.scope.depth + 1
                ),
            )
            .to_string());
        }
        let called = called::load(
            file,
            uses,
            self.scope.root.as_deref(),
            self.settings.actions.as_ref(),
            &control.cancel,
        )
        .await
        .map_err(|e| e.to_string())?;

        let mut contexts = contexts.clone();
        if let Some(matrix) = &instance.matrix {
            contexts.insert(
                "matrix",
                ExprValue::from_json(&Value::Object(matrix.clone())),
            );
        }
        contexts.insert(
            "strategy",
            ExprValue::from_json(&instance.strategy.to_json()),
        );
        let workflow_call = call::workflow_call(file, job, &called.workflow, &called.label)
            .map_err(|e| e.to_string())?
            .into_owned();
        let inputs = call::call_inputs(file, job, &workflow_call, &called.label, &contexts)
            .map_err(|e| e.to_string())?;
        let caller_secrets: Vec<(String, String)> = self
            .scope
            .secrets
            .iter()
            .map(|(name, value)| (name.clone(), value.expose_secret().to_owned()))
            .collect();
        let mut secrets_context = Object::with_capacity(caller_secrets.len());
        for (name, value) in &caller_secrets {
            secrets_context.insert(name.as_str(), value.as_str());
        }
        contexts.insert("secrets", ExprValue::object(secrets_context));
        let passed = call::call_secrets(
            file,
            job,
            &workflow_call,
            &called.label,
            &caller_secrets,
            &contexts,
        )
        .map_err(|e| e.to_string())?;

        // A passed secret may be a new value (`${{ secrets.A }}-suffix`): masked like the rest.
        let mut masker = self.scope.masker.clone();
        for (_, value) in &passed {
            masker.add(value);
        }
        masker.build();
        let scope = Scope {
            secrets: passed
                .into_iter()
                .map(|(name, value)| (name, value.into()))
                .collect(),
            masker,
            prefix: format!("{} / ", instance.name),
            depth: self.scope.depth + 1,
            root: Some(called.root),
        };
        // The `github` context is the caller's (event, ref, sha), as on GitHub.
        let run = RunContext {
            github: self.workflow.run.github.clone(),
            vars: self.workflow.run.vars.clone(),
            inputs: ExprValue::object(inputs),
        };
        let planned = PlannedWorkflow {
            label: called.label,
            workflow: called.workflow,
            run,
            only: None,
            needed: Vec::new(),
        };
        let nested = Scheduler {
            workflow: &planned,
            settings: self.settings,
            sink: self.sink,
            control,
            slots: self.slots,
            scope: &scope,
        };
        // Boxed: a called workflow's jobs may call workflows in turn.
        let nested_run: futures_util::future::LocalBoxFuture<'_, _> = Box::pin(nested.run());
        let (reports, ended) = nested_run.await;

        let results: Vec<Conclusion> = ended.iter().map(|(_, done)| done.result).collect();
        let result = combined(&results);
        let mut jobs = Object::with_capacity(ended.len());
        for (id, done) in &ended {
            let mut entry = Object::with_capacity(2);
            entry.insert("result", done.result.as_str());
            let outputs: Object = done
                .outputs
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            entry.insert("outputs", ExprValue::object(outputs));
            jobs.insert(id.as_str(), ExprValue::object(entry));
        }
        let mut callee_contexts = Object::with_capacity(4);
        callee_contexts.insert("github", planned.run.github.clone());
        callee_contexts.insert("vars", planned.run.vars.clone());
        callee_contexts.insert("inputs", planned.run.inputs.clone());
        match call::call_outputs(
            &planned.label,
            &workflow_call,
            &callee_contexts,
            ExprValue::object(jobs),
        ) {
            Ok(outputs) => Ok((JobOutcome { result, outputs }, reports)),
            Err(e) => {
                // The called jobs ran: their reports stay, beside the call's failure.
                let label = JobLabel {
                    id: instance.job_id.clone(),
                    name: self.scope.masker.mask_text(&instance.name),
                };
                let (_, failure) = self.failed(&label, &e.to_string());
                let mut all = reports;
                all.extend(failure);
                Ok((unrun(Conclusion::Failure), all))
            }
        }
    }

    /// `--dryrun`: the job and its steps reported as they would start, nothing run.
    fn dry_run(&self, job: &Job, label: &JobLabel) {
        self.sink.event(&Event::JobStarted { job: label });
        for (index, step) in job.steps.iter().enumerate() {
            let name = step
                .name
                .as_ref()
                .map_or_else(|| default_step_name(step), |n| n.value.clone());
            let step = hearth_events::StepLabel {
                index,
                id: step.id.as_ref().map(|id| id.value.clone()),
                name,
            };
            self.sink.event(&Event::StepStarted {
                job: label,
                step: &step,
            });
            self.sink.event(&Event::StepFinished {
                job: label,
                step: &step,
                outcome: Conclusion::Success,
                conclusion: Conclusion::Success,
                duration: Duration::ZERO,
            });
        }
        self.finish_unrun(label, Conclusion::Success, Some("dry run"));
    }

    /// Reports a job that did not run. Its reason may quote evaluated values (a label
    /// from `vars`), masked like everything a sink gets.
    fn finish_unrun(&self, label: &JobLabel, result: Conclusion, reason: Option<&str>) {
        let reason = reason.map(|reason| self.scope.masker.mask_text(reason));
        self.sink.event(&Event::JobFinished {
            job: label,
            result,
            reason: reason.as_deref(),
            outputs: &[],
            duration: Duration::ZERO,
        });
        self.sink.flush();
    }

    fn skipped(&self, label: &JobLabel, reason: &str) -> (Finished, Vec<JobReport>) {
        self.finish_unrun(label, Conclusion::Skipped, Some(reason));
        let report = JobReport {
            result: Conclusion::Skipped,
            may_fail: false,
        };
        (
            Finished {
                result: Conclusion::Skipped,
                outputs: Vec::new(),
            },
            vec![report],
        )
    }

    fn failed(&self, label: &JobLabel, message: &str) -> (Finished, Vec<JobReport>) {
        self.sink.event(&Event::JobStarted { job: label });
        self.sink.event(&Event::Log {
            job: label,
            step: None,
            line: hearth_events::LogLine::Error(&self.scope.masker.mask_text(message)),
        });
        self.finish_unrun(label, Conclusion::Failure, None);
        let report = JobReport {
            result: Conclusion::Failure,
            may_fail: false,
        };
        (
            Finished {
                result: Conclusion::Failure,
                outputs: Vec::new(),
            },
            vec![report],
        )
    }
}

/// The `needs` context of `job` and the status its `if:` sees.
fn needs_context(job: &Job, finished: &HashMap<&str, Finished>) -> (Object, Status) {
    let mut needs = Object::with_capacity(job.needs.len());
    let mut results = Vec::with_capacity(job.needs.len());
    for need in &job.needs {
        let Some(done) = finished.get(need.value.as_str()) else {
            continue;
        };
        let mut entry = Object::with_capacity(2);
        entry.insert("result", done.result.as_str());
        let outputs: Object = done
            .outputs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        entry.insert("outputs", ExprValue::object(outputs));
        needs.insert(need.value.as_str(), ExprValue::object(entry));
        results.push(match done.result {
            Conclusion::Success => JobResult::Success,
            Conclusion::Failure => JobResult::Failure,
            Conclusion::Cancelled => JobResult::Cancelled,
            Conclusion::Skipped => JobResult::Skipped,
        });
    }
    (needs, needs_status(results, false))
}

/// A matrix job's result: failure if any combination failed, else cancelled if any was, else
/// skipped if all were, else success.
fn combined(results: &[Conclusion]) -> Conclusion {
    if results.contains(&Conclusion::Failure) {
        Conclusion::Failure
    } else if results.contains(&Conclusion::Cancelled) {
        Conclusion::Cancelled
    } else if !results.is_empty() && results.iter().all(|r| *r == Conclusion::Skipped) {
        Conclusion::Skipped
    } else {
        Conclusion::Success
    }
}

fn unrun(result: Conclusion) -> JobOutcome {
    JobOutcome {
        result,
        outputs: Vec::new(),
    }
}

/// The job's `continue-on-error`, evaluated for one combination; an expression that fails is
/// an error that says where, never a silent `false`.
fn continue_on_error(
    file: &str,
    job: &Job,
    contexts: &Object,
    instance: &PlannedJob,
) -> Result<bool, String> {
    match &job.continue_on_error {
        None => Ok(false),
        Some(OrExpr::Value(flag)) => Ok(*flag),
        Some(OrExpr::Expr(text)) => {
            let mut contexts = contexts.clone();
            if let Some(matrix) = &instance.matrix {
                contexts.insert(
                    "matrix",
                    ExprValue::from_json(&Value::Object(matrix.clone())),
                );
            }
            contexts.insert(
                "strategy",
                ExprValue::from_json(&instance.strategy.to_json()),
            );
            let template =
                hearth_expr::Template::parse(&text.value, &hearth_expr::ParseOptions::permissive());
            template
                .and_then(|t| t.evaluate(&hearth_expr::EvalContext::new(&contexts)))
                .map(|v| v.is_truthy())
                .map_err(|e| {
                    format!(
                        "Error when evaluating 'continue-on-error' for job '{}'. {file}:{}:{}: {e}",
                        job.id.value, text.span.start.line, text.span.start.col
                    )
                })
        }
    }
}
