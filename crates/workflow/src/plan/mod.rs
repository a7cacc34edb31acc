//! The planner: from a loaded workflow and an event to the jobs that run, in order.
//!
//! A forge does this itself before it hands a runner one job; `hearth exec` and `hearth plan`
//! need it locally. The steps, each GitHub's:
//!
//! 1. [`triggered_by`]: does the event, with its filters, start the workflow?
//! 2. [`plan`]: walk the job graph in dependency order; decide each job's `if:` from what its
//!    needs are expected to do; [`expand_job`] the rest.
//! 3. [`expand_job`]: evaluate `strategy` (fail-fast, max-parallel, a matrix written out or as
//!    `${{ fromJSON(...) }}`), expand the matrix, and give each combination its display name,
//!    `runs-on` labels, `matrix` and `strategy` contexts.
//!
//! Before a run nothing is known of job outputs. A job whose matrix or `runs-on` reads
//! `needs` is therefore [`JobPlan::Deferred`]: the engine calls [`expand_job`] again once its
//! needs have finished, with their real outputs.

pub mod call;
mod eval;

pub use eval::text_reads;

use hearth_expr::{Object, Status, Value as ExprValue};
use serde_json::{Map, Value};

use crate::filters::{EventInfo, SkipReason};
use crate::graph::{needs_status, JobGraph, JobResult};
use crate::matrix::{self, display_name, strategy_contexts, StrategyContext};
use crate::model::{Job, OrExpr, RunsOn, Workflow};
use crate::validate::{Diagnostic, Diagnostics};

/// What is known of the run before any job starts: the contexts a job's `strategy`,
/// `runs-on`, `name` and `if` may read besides `needs`, `matrix` and `strategy`.
#[derive(Clone, Debug)]
pub struct RunContext {
    /// The `github` context.
    pub github: ExprValue,
    /// The `vars` context (configuration variables).
    pub vars: ExprValue,
    /// The `inputs` context (`workflow_dispatch` / `workflow_call` inputs).
    pub inputs: ExprValue,
}

impl Default for RunContext {
    fn default() -> Self {
        RunContext {
            github: ExprValue::object(Object::new()),
            vars: ExprValue::object(Object::new()),
            inputs: ExprValue::object(Object::new()),
        }
    }
}

impl RunContext {
    fn contexts(&self) -> Object {
        let mut contexts = Object::with_capacity(6);
        contexts.insert("github", self.github.clone());
        contexts.insert("vars", self.vars.clone());
        contexts.insert("inputs", self.inputs.clone());
        contexts
    }
}

/// One job to run: a job of the workflow with one combination of its matrix.
#[derive(Clone, Debug, PartialEq)]
pub struct PlannedJob {
    /// The job's id in the workflow.
    pub job_id: String,
    /// The display name, e.g. `build (ubuntu-latest, 20)`.
    pub name: String,
    /// The `matrix` context; `None` for a job without a matrix.
    pub matrix: Option<Map<String, Value>>,
    /// The `strategy` context.
    pub strategy: StrategyContext,
    /// `runs-on`, evaluated: the labels a runner must have. Empty for a job that calls a
    /// reusable workflow.
    pub runs_on: Vec<String>,
    /// The ids of the jobs it needs, spelled as they are declared.
    pub needs: Vec<String>,
}

impl PlannedJob {
    /// The job as `hearth plan --json` prints it: `{"workflow", "job", "name", "matrix",
    /// "runs_on", "needs"}`, `matrix` being `null` for a job without one.
    pub fn to_json(&self, workflow: &str) -> Value {
        let mut object = Map::with_capacity(6);
        object.insert("workflow".into(), Value::from(workflow));
        object.insert("job".into(), Value::from(self.job_id.as_str()));
        object.insert("name".into(), Value::from(self.name.as_str()));
        object.insert(
            "matrix".into(),
            self.matrix.clone().map_or(Value::Null, Value::Object),
        );
        object.insert("runs_on".into(), Value::from(self.runs_on.clone()));
        object.insert("needs".into(), Value::from(self.needs.clone()));
        Value::Object(object)
    }
}

/// What becomes of one job of the workflow.
#[derive(Clone, Debug, PartialEq)]
pub enum JobPlan {
    /// It runs, once per matrix combination, in GitHub's order.
    Run(Vec<PlannedJob>),
    /// Its matrix or `runs-on` reads outputs of its needs, so it is expanded when they finish.
    Deferred {
        /// The job as far as it is known: the name without matrix values, no matrix.
        job: PlannedJob,
        /// Why it waits.
        reason: String,
    },
    /// Its `if:` is false (or a need of it is skipped and its `if:` has no status function).
    Skipped {
        /// Why, for people.
        reason: String,
    },
}

/// One job of a planned workflow.
#[derive(Clone, Debug, PartialEq)]
pub struct JobEntry {
    /// The job's id in the workflow.
    pub job_id: String,
    /// The job's needs, spelled as they are declared.
    pub needs: Vec<String>,
    /// What becomes of it.
    pub plan: JobPlan,
}

/// Checks whether `event` starts `workflow`, filters included.
///
/// # Errors
///
/// Why not, for people: the event is not under `on:`, or which filter excludes it.
pub fn triggered_by(workflow: &Workflow, event: &EventInfo<'_>) -> Result<(), String> {
    let filters = workflow.on.filters().map_err(|e| e.to_string())?;
    let mut reason = None;
    for filter in &filters {
        match filter.check(event) {
            Ok(()) => return Ok(()),
            Err(SkipReason::OtherEvent { .. }) => {}
            Err(other) => reason = Some(other.to_string()),
        }
    }
    Err(reason.unwrap_or_else(|| format!("the workflow does not run on `{}`", event.name)))
}

/// The jobs of `workflow`, in an order that respects `needs`, each with what becomes of it.
///
/// Every job that runs is assumed to succeed, so a job needing a skipped job is skipped (unless
/// its `if:` uses a status function), as it would be on GitHub. An `if:` that reads `needs` is
/// left to run time and the job planned as running.
///
/// # Errors
///
/// Every problem found, e.g. a matrix that does not expand or an expression that fails.
pub fn plan(
    workflow: &Workflow,
    file: &str,
    run: &RunContext,
) -> Result<Vec<JobEntry>, Diagnostics> {
    let graph =
        JobGraph::build(file, crate::model::graph_jobs(&workflow.jobs)).map_err(|errors| {
            Diagnostics(
                errors
                    .into_iter()
                    .map(|e| Diagnostic::new(e.file, e.span.start, e.message))
                    .collect(),
            )
        })?;

    let base = run.contexts();
    let mut results = vec![JobResult::Success; workflow.jobs.len()];
    let mut entries = Vec::with_capacity(workflow.jobs.len());
    let mut errors = Vec::new();
    for &index in graph.order() {
        let job = &workflow.jobs[index];
        let need_indices = graph.needs_of(index);
        let needs: Vec<String> = need_indices
            .iter()
            .map(|&n| workflow.jobs[n].id.value.clone())
            .collect();
        let mut contexts = base.clone();
        contexts.insert("needs", expected_needs(&needs, need_indices, &results));
        let status = needs_status(need_indices.iter().map(|&n| results[n]), false);

        let plan = match decide_if(file, job, &contexts, status, true) {
            Ok(Some(reason)) => Ok(JobPlan::Skipped { reason }),
            Ok(None) => expand_job(
                file,
                job,
                &JobContext {
                    contexts: &contexts,
                    needs: &needs,
                    needs_outputs_known: false,
                },
            ),
            Err(e) => Err(e),
        };
        match plan {
            Ok(plan) => {
                if matches!(plan, JobPlan::Skipped { .. }) {
                    results[index] = JobResult::Skipped;
                }
                entries.push(JobEntry {
                    job_id: job.id.value.clone(),
                    needs,
                    plan,
                });
            }
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(entries)
    } else {
        errors.sort_by_key(|e| (e.pos.line, e.pos.col));
        Err(Diagnostics(errors))
    }
}

/// The `needs` context as planning expects it: each need's result, no outputs yet.
fn expected_needs(ids: &[String], indices: &[usize], results: &[JobResult]) -> ExprValue {
    let mut needs = Object::with_capacity(ids.len());
    for (id, &index) in ids.iter().zip(indices) {
        let mut need = Object::with_capacity(2);
        need.insert("outputs", Object::new());
        need.insert("result", results[index].as_str());
        needs.insert(id.as_str(), need);
    }
    ExprValue::object(needs)
}

/// Decides at run time whether a job runs, now that its needs have ended: `contexts` holds
/// `github`, `vars`, `inputs` and the real `needs`, `status` is [`needs_status`] of their
/// results (cancelled when the run is). `Some(reason)` when the job is skipped.
///
/// # Errors
///
/// The `if:` cannot be evaluated, at its position.
pub fn decide_job(
    file: &str,
    job: &Job,
    contexts: &Object,
    status: Status,
) -> Result<Option<String>, Diagnostic> {
    decide_if(file, job, contexts, status, false)
}

/// `Some(reason)` when the job's `if:` (or the implicit `success()`) is false. Before the run
/// (`before_needs`), an `if:` reading `needs` is left undecided (`None`).
fn decide_if(
    file: &str,
    job: &Job,
    contexts: &Object,
    status: Status,
    before_needs: bool,
) -> Result<Option<String>, Diagnostic> {
    let needs_failed = status != Status::Success;
    match &job.condition {
        // What the needs' outputs will be is not known yet: run time decides.
        Some(condition) if before_needs && eval::condition_reads(&condition.value, "needs") => {
            Ok(None)
        }
        Some(condition) => {
            let runs = eval::condition(file, condition, contexts, status)?;
            Ok((!runs).then(|| {
                let because = if needs_failed {
                    " (a job it needs did not succeed)"
                } else {
                    ""
                };
                format!("`if: {}` is false{because}", condition.value.trim())
            }))
        }
        None => Ok(needs_failed.then(|| {
            "a job it needs did not succeed (without `if:`, a job runs only after its needs \
             succeed)"
                .to_owned()
        })),
    }
}

/// What [`expand_job`] evaluates against.
#[derive(Clone, Copy, Debug)]
pub struct JobContext<'a> {
    /// `github`, `vars`, `inputs` and `needs`.
    pub contexts: &'a Object,
    /// The ids of the job's needs, spelled as declared.
    pub needs: &'a [String],
    /// `false` before the needs ran: a matrix or `runs-on` reading `needs` is then deferred.
    pub needs_outputs_known: bool,
}

/// Expands one job: its strategy and matrix, and per combination the display name, labels and
/// contexts.
///
/// # Errors
///
/// A `strategy` that is not a mapping, a matrix GitHub would reject (with GitHub's message), or
/// an expression that fails, at its position.
pub fn expand_job(file: &str, job: &Job, context: &JobContext<'_>) -> Result<JobPlan, Diagnostic> {
    let strategy_reads_needs = match &job.strategy {
        Some(OrExpr::Expr(text)) => eval::text_reads(&text.value, "needs"),
        Some(OrExpr::Value(s)) => s
            .matrix
            .as_ref()
            .is_some_and(|m| eval::node_reads(m, "needs")),
        None => false,
    };
    let runs_on_reads_needs = job.runs_on.as_ref().is_some_and(|r| {
        r.labels
            .iter()
            .any(|label| eval::text_reads(&label.value, "needs"))
    });
    if !context.needs_outputs_known && (strategy_reads_needs || runs_on_reads_needs) {
        let what = if strategy_reads_needs {
            "strategy"
        } else {
            "runs-on"
        };
        let name = match &job.name {
            Some(name) if !name.has_expression() => name.value.clone(),
            _ => job.id.value.clone(),
        };
        return Ok(JobPlan::Deferred {
            job: PlannedJob {
                job_id: job.id.value.clone(),
                name,
                matrix: None,
                strategy: strategy_contexts(1, true, None)[0],
                runs_on: Vec::new(),
                needs: context.needs.to_vec(),
            },
            reason: format!(
                "its {what} reads the outputs of {}, known when they finish",
                context.needs.join(", ")
            ),
        });
    }

    let strategy = evaluate_strategy(file, job, context.contexts)?;
    let combinations =
        match &strategy.matrix {
            Some(matrix) => Some(matrix::expand(matrix).map_err(|e| {
                Diagnostic::new(file, strategy.pos, e.message_for_job(&job.id.value))
            })?),
            None => None,
        };
    let total = combinations.as_ref().map_or(1, Vec::len);
    let strategies = strategy_contexts(total, strategy.fail_fast, strategy.max_parallel);
    let name_reads_matrix = job
        .name
        .as_ref()
        .is_some_and(|name| eval::text_reads(&name.value, "matrix"));

    let mut contexts = context.contexts.clone();
    let mut planned = Vec::with_capacity(total);
    for (index, strategy) in strategies.into_iter().enumerate() {
        let combination = combinations.as_ref().and_then(|c| c.get(index));
        let matrix_json = combination.map_or_else(|| Value::Object(Map::new()), |c| c.to_json());
        contexts.insert("matrix", ExprValue::from_json(&matrix_json));
        contexts.insert("strategy", ExprValue::from_json(&strategy.to_json()));
        let base = match &job.name {
            Some(name) => eval::text(file, name, &contexts)?,
            None => job.id.value.clone(),
        };
        let name = match combination {
            Some(combination) => display_name(&base, combination, name_reads_matrix),
            None => base,
        };
        let runs_on = match &job.runs_on {
            Some(runs_on) => labels(file, runs_on, &contexts)?,
            None => Vec::new(),
        };
        planned.push(PlannedJob {
            job_id: job.id.value.clone(),
            name,
            matrix: combination.map(|c| c.values().clone()),
            strategy,
            runs_on,
            needs: context.needs.to_vec(),
        });
    }
    Ok(JobPlan::Run(planned))
}

/// A job's `strategy` with its expressions evaluated.
struct EvaluatedStrategy {
    matrix: Option<Map<String, Value>>,
    fail_fast: bool,
    max_parallel: Option<i64>,
    /// Where the matrix (or the whole strategy) was written, for matrix errors.
    pos: crate::yaml::Pos,
}

fn evaluate_strategy(
    file: &str,
    job: &Job,
    contexts: &Object,
) -> Result<EvaluatedStrategy, Diagnostic> {
    let mut evaluated = EvaluatedStrategy {
        matrix: None,
        fail_fast: true,
        max_parallel: None,
        pos: job.span.start,
    };
    match &job.strategy {
        None => {}
        Some(OrExpr::Value(strategy)) => {
            if let Some(node) = &strategy.matrix {
                evaluated.pos = node.span.start;
                evaluated.matrix = Some(matrix_object(
                    file,
                    node.span.start,
                    eval::node(file, node, contexts)?,
                )?);
            }
            evaluated.fail_fast = match &strategy.fail_fast {
                None => true,
                Some(OrExpr::Value(b)) => *b,
                Some(OrExpr::Expr(text)) => {
                    eval::template(file, &text.value, text.span.start, contexts)?.is_truthy()
                }
            };
            evaluated.max_parallel = match &strategy.max_parallel {
                None => None,
                Some(OrExpr::Value(n)) => Some(truncate(*n)),
                Some(OrExpr::Expr(text)) => Some(truncate(
                    eval::template(file, &text.value, text.span.start, contexts)?.to_number(),
                )),
            };
        }
        Some(OrExpr::Expr(text)) => {
            evaluated.pos = text.span.start;
            let value = eval::template(file, &text.value, text.span.start, contexts)?.to_json();
            let Value::Object(mut strategy) = value else {
                return Err(Diagnostic::new(
                    file,
                    text.span.start,
                    format!(
                        "'strategy' must evaluate to a mapping, found {}",
                        matrix::kind_name(&value)
                    ),
                ));
            };
            if let Some(matrix) = strategy.remove("matrix") {
                evaluated.matrix = Some(matrix_object(file, text.span.start, matrix)?);
            }
            if let Some(fail_fast) = strategy.get("fail-fast") {
                evaluated.fail_fast = ExprValue::from_json(fail_fast).is_truthy();
            }
            if let Some(max_parallel) = strategy.get("max-parallel") {
                evaluated.max_parallel =
                    Some(truncate(ExprValue::from_json(max_parallel).to_number()));
            }
        }
    }
    Ok(evaluated)
}

fn matrix_object(
    file: &str,
    pos: crate::yaml::Pos,
    value: Value,
) -> Result<Map<String, Value>, Diagnostic> {
    match value {
        Value::Object(map) => Ok(map),
        other => Err(Diagnostic::new(
            file,
            pos,
            format!(
                "'strategy.matrix' must be a mapping, found {}",
                matrix::kind_name(&other)
            ),
        )),
    }
}

/// `max-parallel` as GitHub casts it to an integer; NaN counts as unset (0).
fn truncate(n: f64) -> i64 {
    if n.is_nan() {
        0
    } else {
        // Saturating: `as` clamps out-of-range floats.
        n.trunc() as i64
    }
}

/// `runs-on` with its expressions evaluated; an expression producing a list adds each item.
fn labels(file: &str, runs_on: &RunsOn, contexts: &Object) -> Result<Vec<String>, Diagnostic> {
    let mut labels = Vec::with_capacity(runs_on.labels.len());
    for label in &runs_on.labels {
        if !label.has_expression() {
            labels.push(label.value.clone());
            continue;
        }
        let value = eval::template(file, &label.value, label.span.start, contexts)?;
        match value.as_array() {
            Some(items) => labels.extend(items.iter().map(ExprValue::to_display_string)),
            None => labels.push(value.to_display_string()),
        }
    }
    labels.retain(|label| !label.is_empty());
    Ok(labels)
}
