//! The single-job workflow a forge sends with each task
//! (`Task.workflow_payload`).
//!
//! Gitea and Forgejo do not hand the runner the user's workflow file. Their
//! job parser (`jobparser.SingleWorkflow`, in Go) splits a run into jobs,
//! expands each matrix, resolves `runs-on` and the job's display name, and
//! marshals every resulting job with go-yaml into a workflow of its own:
//! `name`, `on`, `env`, `jobs` (exactly one job), `defaults` and, on newer
//! Gitea, `permissions` and `run-name`. [`SingleJob::parse`] reads that
//! payload into the ordinary [`Workflow`] model and validates it as a
//! workflow file is validated, so every problem still points at
//! `file:line:col` in the payload text.
//!
//! Round-tripping the job through Go structs changes it in ways a user's
//! file never shows, and the loader undoes exactly those, on the positioned
//! YAML tree and before validation, so that spans keep pointing into the
//! payload:
//!
//! - **Go strings.** The job's `timeout-minutes`, `strategy.fail-fast`,
//!   `strategy.max-parallel`, `concurrency.cancel-in-progress` and a step's
//!   `timeout-minutes` are Go `string` fields, so `30` arrives as `"30"` and
//!   `false` as `"false"`. Such a string becomes the number or boolean it
//!   spells (YAML 1.2 core schema); a step's or job's `continue-on-error`
//!   given as `"true"`/`"false"` is treated the same way. Anything else,
//!   including `${{ }}` expressions, stays a string and is checked as usual.
//! - **Null steps.** `steps:` entries that are `null` are dropped, as the
//!   servers drop them (`SingleWorkflow.jobs()`). The remaining list defines
//!   the step indices the forge uses for `StepState` ids, so
//!   [`SingleJob::step`] and the model's `steps` agree with the forge.
//! - **Server keys.** Forgejo stores internal state at the root of the
//!   payload (`enable-openid-connect`, `incomplete_*`, `__metadata`). It is
//!   not part of the workflow and is dropped without a diagnostic: every key
//!   listed in [`SERVER_KEYS`] and, so that a newer Forgejo does not break
//!   every task, any root key starting with `incomplete_` or `__`.
//! - **Service `cmd`.** A service container's `cmd` (a list of strings,
//!   Forgejo's way to set the container command) is not in GitHub's schema;
//!   it is taken out and kept in [`SingleJob::service_cmd`].
//! - **`needs`.** The job's `needs` name jobs that are not in the payload
//!   (their results come in `Task.needs`), which the model's job graph would
//!   report as unknown. The ids are taken out before validation and kept in
//!   [`SingleJob::needs`]; the job in [`SingleJob::workflow`] has no `needs`.
//! - **`on`.** A payload need not have `on` (the forge already decided to
//!   run the job). When it is absent, a synthetic `on: push` is inserted so
//!   the model's "no 'on' key" rule does not fire, and [`Workflow::on`] is
//!   then reset to no events: the result never claims a trigger the payload
//!   did not name. An `on` that is present is validated as in any workflow,
//!   but when its problems are the payload's only ones they become
//!   [`SingleJob::warnings`] instead of errors, and `on` is treated as absent:
//!   the forge has already decided to run the job, and an event only a forge
//!   knows must not fail it.
//! - **Whole-tree checks.** Keys that differ only in case and nesting deeper
//!   than GitHub reads are [`SingleJob::warnings`]: GitHub refuses them, but
//!   Gitea and Forgejo read YAML case-sensitively and already ran the
//!   workflow, so the job runs as act_runner would run it.
//!
//! The matrix arrives expanded: `strategy.matrix` holds every key of the one
//! combination as a one-element list. [`SingleJob::matrix`] is that
//! combination; a matrix that expands to any other number of combinations
//! is an error.
//!
//! ```
//! use hearth_workflow::payload::SingleJob;
//!
//! let payload = br#"name: CI
//! "on":
//!     push:
//! jobs:
//!     test:
//!         name: test (20)
//!         needs: build
//!         runs-on: ubuntu-latest
//!         steps:
//!             - run: npm test
//!               timeout-minutes: "10"
//!         timeout-minutes: "30"
//!         strategy:
//!             matrix:
//!                 node:
//!                     - 20
//! "#;
//! let task = SingleJob::parse(payload, "task 812").unwrap();
//! assert_eq!(task.job_id(), "test");
//! assert_eq!(task.needs(), ["build"]);
//! assert_eq!(task.matrix()["node"], 20);
//! assert!(task.step(0).is_some());
//!
//! let errors = SingleJob::parse(b"jobs: {}\n", "task 813").unwrap_err();
//! assert_eq!(
//!     errors.to_string(),
//!     "task 813:1:1: error: the forge sent 0 jobs; a task has exactly one"
//! );
//! ```

use serde_json::{Map, Value};

use crate::matrix;
use crate::model::{Job, OrExpr, Step, Triggers, Workflow};
use crate::validate::reader::{scalar_text, Loc, Reader};
use crate::validate::schema::WORKFLOW;
use crate::validate::{Diagnostic, Diagnostics};
use crate::yaml::{self, Node, Pos, ScalarStyle, Span, YamlValue};

/// Root keys Forgejo's `SingleWorkflow` adds for its own bookkeeping. They
/// are not user input and carry nothing the runner needs.
pub const SERVER_KEYS: &[&str] = &[
    "enable-openid-connect",
    "incomplete_matrix",
    "incomplete_matrix_needs",
    "incomplete_runs_on",
    "incomplete_runs_on_needs",
    "incomplete_runs_on_matrix",
    "incomplete_with",
    "incomplete_with_needs",
    "incomplete_with_matrix",
    "__metadata",
];

/// `true` for a root key the loader drops as server-internal.
fn is_server_key(key: &str) -> bool {
    SERVER_KEYS.contains(&key) || key.starts_with("incomplete_") || key.starts_with("__")
}

/// The one job of a task, read from the forge's workflow payload.
///
/// Fields are private so that the invariant "the workflow has exactly one
/// job" holds for every value, which lets [`job`](Self::job) never fail.
#[derive(Debug, Clone, PartialEq)]
pub struct SingleJob {
    workflow: Workflow,
    needs: Vec<String>,
    matrix: Map<String, Value>,
    service_cmd: Vec<(String, Vec<String>)>,
    warnings: Vec<Diagnostic>,
}

impl SingleJob {
    /// Reads and validates the payload `payload`; `file` labels it in
    /// messages (for example `task 812`).
    ///
    /// # Errors
    ///
    /// Every problem found, each at `file:line:col`: bytes that are not
    /// UTF-8, YAML errors, a payload with other than one job, anything the
    /// workflow model rejects, and a matrix that is not a single combination.
    pub fn parse(payload: &[u8], file: &str) -> Result<SingleJob, Diagnostics> {
        let source = std::str::from_utf8(payload).map_err(|e| {
            Diagnostic::new(
                file,
                Pos::START,
                format!(
                    "the payload is not valid UTF-8 (invalid byte at offset {})",
                    e.valid_up_to()
                ),
            )
        })?;
        let mut root = yaml::load(source, file)?;
        if root.is_null() {
            return Err(Diagnostic::new(
                file,
                root.span.start,
                "the payload is empty: the forge sent no workflow",
            )
            .into());
        }
        let YamlValue::Mapping(entries) = &mut root.value else {
            return Err(Diagnostic::new(
                file,
                root.span.start,
                format!(
                    "the workflow: expected a mapping, found {}",
                    root.kind_with_article()
                ),
            )
            .into());
        };
        entries.retain(|(key, _)| !key.as_str().is_some_and(is_server_key));
        check_job_count(&root, file)?;

        let mut checks = Reader::new(file, &WORKFLOW, "the workflow");
        let (needs, service_cmd) = match the_job_mut(&mut root) {
            Some((job_id, job)) => {
                let loc = Loc::root().key("jobs").any_key(&job_id);
                let needs = take_needs(&mut checks, job, &loc);
                let service_cmd = take_service_cmd(&mut checks, job, &loc);
                drop_null_steps(job);
                normalise_go_strings(job);
                (needs, service_cmd)
            }
            // `jobs` or the job is not a mapping: validation says so.
            None => (Vec::new(), Vec::new()),
        };
        let mut synthetic_on = insert_synthetic_on(&mut root);
        let checks = checks.finish(());

        let (validated, mut warnings) = Workflow::from_forge_yaml(&root, file);
        let mut validated = merge(validated, checks.clone());
        if let (Err(problems), Some(on)) = (&validated, on_span(&root)) {
            // The forge already decided to run the job; `on` only informs it. A trigger this
            // model does not know (a forge-only event, say) must not fail the task.
            if problems.iter().all(|d| on.start <= d.pos && d.pos < on.end) {
                warnings.extend(problems.0.iter().cloned());
                replace_on(&mut root);
                synthetic_on = true;
                validated = merge(Workflow::from_forge_yaml(&root, file).0, checks);
            }
        }
        let mut workflow = validated?;
        if synthetic_on {
            workflow.on = Triggers::default();
        }
        if workflow.jobs.len() != 1 {
            // Unreachable after `check_job_count` and a clean validation; kept
            // so that a model change cannot break `job()`.
            return Err(job_count_error(file, root.span.start, workflow.jobs.len()).into());
        }
        let matrix = the_combination(&workflow.jobs[0], file)?;
        Ok(SingleJob {
            workflow,
            needs,
            matrix,
            service_cmd,
            warnings,
        })
    }

    /// The validated workflow: exactly one job, without `needs`.
    pub fn workflow(&self) -> &Workflow {
        &self.workflow
    }

    /// The validated workflow, consuming `self`.
    pub fn into_workflow(self) -> Workflow {
        self.workflow
    }

    /// The job's id, the key under `jobs`.
    pub fn job_id(&self) -> &str {
        &self.job().id.value
    }

    /// The job. Its `name` is the display name the forge computed (matrix
    /// values included) and its `runs-on` the resolved labels.
    pub fn job(&self) -> &Job {
        // `parse` only builds a `SingleJob` from a workflow with one job, and
        // the fields are private.
        &self.workflow.jobs[0]
    }

    /// The step the forge numbers `index` (0-based, null steps dropped): the
    /// id of its `StepState`.
    pub fn step(&self, index: usize) -> Option<&Step> {
        self.job().steps.get(index)
    }

    /// Ids of the jobs the job needs, in order; their outputs and results
    /// come in `Task.needs`.
    pub fn needs(&self) -> &[String] {
        &self.needs
    }

    /// The job's `matrix` context: the one combination of its expanded
    /// matrix, keys in payload order; empty for a job without a matrix.
    pub fn matrix(&self) -> &Map<String, Value> {
        &self.matrix
    }

    /// Problems in the payload's `on`, which were set aside rather than fail the task: the
    /// runner does not need `on`, and [`Workflow::on`] then has no events. For the log.
    pub fn warnings(&self) -> &[Diagnostic] {
        &self.warnings
    }

    /// The Forgejo `cmd` of service `service`: the container command as a
    /// list of arguments (expressions not yet evaluated). `None` when the
    /// service has no `cmd`.
    pub fn service_cmd(&self, service: &str) -> Option<&[String]> {
        self.service_cmd
            .iter()
            .find(|(name, _)| name == service)
            .map(|(_, cmd)| cmd.as_slice())
    }
}

fn job_count_error(file: &str, pos: Pos, count: usize) -> Diagnostic {
    Diagnostic::new(
        file,
        pos,
        format!("the forge sent {count} jobs; a task has exactly one"),
    )
}

/// Runners refuse a payload without exactly one job: with none there is
/// nothing to run, with several there is no way to tell which the task is.
/// A `jobs` that is not a mapping at all is left to validation.
fn check_job_count(root: &Node, file: &str) -> Result<(), Diagnostic> {
    let Some((key, jobs)) = root.entry("jobs") else {
        return Err(job_count_error(file, root.span.start, 0));
    };
    let count = match &jobs.value {
        YamlValue::Null => 0,
        YamlValue::Mapping(entries) => entries.len(),
        _ => return Ok(()),
    };
    if count == 1 {
        Ok(())
    } else {
        Err(job_count_error(file, key.span.start, count))
    }
}

/// The mapping value with string key `key`.
fn get_mut<'n>(node: &'n mut Node, key: &str) -> Option<&'n mut Node> {
    match &mut node.value {
        YamlValue::Mapping(entries) => entries
            .iter_mut()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v),
        _ => None,
    }
}

/// Removes the entry with string key `key`, returning its value.
fn remove(node: &mut Node, key: &str) -> Option<Node> {
    let YamlValue::Mapping(entries) = &mut node.value else {
        return None;
    };
    let index = entries.iter().position(|(k, _)| k.as_str() == Some(key))?;
    Some(entries.remove(index).1)
}

/// The id and mapping of the payload's job, if `jobs` holds one mapping.
fn the_job_mut(root: &mut Node) -> Option<(String, &mut Node)> {
    let YamlValue::Mapping(jobs) = &mut get_mut(root, "jobs")?.value else {
        return None;
    };
    let (key, job) = jobs.first_mut()?;
    let id = scalar_text(key)?;
    matches!(job.value, YamlValue::Mapping(_)).then_some((id, job))
}

/// Takes `needs` out of the job (a string or a list of strings, as in a
/// workflow file) and returns the ids.
fn take_needs(checks: &mut Reader, job: &mut Node, loc: &Loc) -> Vec<String> {
    let Some(node) = remove(job, "needs") else {
        return Vec::new();
    };
    checks
        .string_list(&node, &loc.key("needs"))
        .into_iter()
        .map(|id| id.value)
        .collect()
}

/// Takes `cmd` out of every service. Items are kept as written: an empty
/// argument is a valid argument, and expressions are evaluated by the
/// runner later.
fn take_service_cmd(checks: &mut Reader, job: &mut Node, loc: &Loc) -> Vec<(String, Vec<String>)> {
    let Some(services) = get_mut(job, "services") else {
        return Vec::new();
    };
    let YamlValue::Mapping(entries) = &mut services.value else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for (name, service) in entries {
        let Some(cmd) = remove(service, "cmd") else {
            continue;
        };
        let name = scalar_text(name).unwrap_or_default();
        let path = format!("{}.services.{name}.cmd", loc.path);
        let mut args = Vec::new();
        match &cmd.value {
            YamlValue::Null => {}
            YamlValue::Sequence(items) => {
                for (i, item) in items.iter().enumerate() {
                    match scalar_text(item) {
                        Some(arg) if item.value.is_scalar() => args.push(arg),
                        _ => checks.error(
                            item.span.start,
                            format!(
                                "'{path}[{i}]': expected a string, found {}",
                                item.kind_with_article()
                            ),
                        ),
                    }
                }
            }
            _ => checks.error(
                cmd.span.start,
                format!(
                    "'{path}': expected a sequence of strings, found {}",
                    cmd.kind_with_article()
                ),
            ),
        }
        found.push((name, args));
    }
    found
}

/// Drops `null` entries of `steps`, as the servers do before numbering the
/// steps.
fn drop_null_steps(job: &mut Node) {
    if let Some(Node {
        value: YamlValue::Sequence(steps),
        ..
    }) = get_mut(job, "steps")
    {
        steps.retain(|step| !step.is_null());
    }
}

/// What a Go string field held before go-yaml quoted it.
#[derive(Clone, Copy)]
enum GoString {
    Number,
    Bool,
}

/// Turns the Go-string fields of the job and its steps back into the
/// numbers and booleans the user wrote.
fn normalise_go_strings(job: &mut Node) {
    unquote(job, "timeout-minutes", GoString::Number);
    unquote(job, "continue-on-error", GoString::Bool);
    if let Some(strategy) = get_mut(job, "strategy") {
        unquote(strategy, "fail-fast", GoString::Bool);
        unquote(strategy, "max-parallel", GoString::Number);
    }
    if let Some(concurrency) = get_mut(job, "concurrency") {
        unquote(concurrency, "cancel-in-progress", GoString::Bool);
    }
    if let Some(Node {
        value: YamlValue::Sequence(steps),
        ..
    }) = get_mut(job, "steps")
    {
        for step in steps {
            unquote(step, "timeout-minutes", GoString::Number);
            unquote(step, "continue-on-error", GoString::Bool);
        }
    }
}

/// Replaces the string under `key` by the number or boolean it spells as a
/// plain YAML scalar, keeping its span. Other strings (expressions, typos)
/// are left for validation to accept or report.
fn unquote(mapping: &mut Node, key: &str, want: GoString) {
    let Some(node) = get_mut(mapping, key) else {
        return;
    };
    let YamlValue::String(text) = &node.value else {
        return;
    };
    let value = yaml::resolve_plain(text.clone());
    let fits = match want {
        GoString::Number => matches!(value, YamlValue::Int(_) | YamlValue::Float(_)),
        GoString::Bool => matches!(value, YamlValue::Bool(_)),
    };
    if fits {
        node.value = value;
        // Only strings may be quoted; the value now reads as if written plain.
        node.style = Some(ScalarStyle::Plain);
    }
}

/// Inserts `on: push` at the start of the root when the payload has no
/// `on`; returns whether it did.
fn insert_synthetic_on(root: &mut Node) -> bool {
    let at = Span::at(root.span.start);
    let YamlValue::Mapping(entries) = &mut root.value else {
        return false;
    };
    if entries.iter().any(|(k, _)| k.as_str() == Some("on")) {
        return false;
    }
    let scalar = |text: &str| {
        Node::new(
            YamlValue::String(text.to_owned()),
            at,
            Some(ScalarStyle::Plain),
        )
    };
    entries.insert(0, (scalar("on"), scalar("push")));
    true
}

/// Where the root's `on` key and value were written.
fn on_span(root: &Node) -> Option<Span> {
    let (key, value) = root.entry("on")?;
    Some(Span::new(key.span.start, value.span.end.max(key.span.end)))
}

/// Replaces the value of the root's `on` with a synthetic `push`.
fn replace_on(root: &mut Node) {
    if let Some(value) = get_mut(root, "on") {
        *value = Node::new(
            YamlValue::String("push".to_owned()),
            value.span,
            Some(ScalarStyle::Plain),
        );
    }
}

/// The model's result and the loader's own checks, as one result with every
/// problem in source order.
fn merge(
    validated: Result<Workflow, Diagnostics>,
    checks: Result<(), Diagnostics>,
) -> Result<Workflow, Diagnostics> {
    match (validated, checks) {
        (Ok(workflow), Ok(())) => Ok(workflow),
        (validated, checks) => {
            let mut all: Vec<Diagnostic> = validated
                .err()
                .into_iter()
                .chain(checks.err())
                .flat_map(|d| d.0)
                .collect();
            all.sort_by_key(|d| d.pos);
            all.dedup();
            Err(Diagnostics(all))
        }
    }
}

/// The job's one matrix combination; empty without a matrix.
fn the_combination(job: &Job, file: &str) -> Result<Map<String, Value>, Diagnostic> {
    let id = &job.id.value;
    let strategy = match &job.strategy {
        None => return Ok(Map::new()),
        Some(OrExpr::Value(strategy)) => strategy,
        Some(OrExpr::Expr(text)) => {
            return Err(Diagnostic::new(
                file,
                text.span.start,
                format!("'jobs.{id}.strategy': the forge sent an expression; a task's strategy must already be evaluated"),
            ))
        }
    };
    let Some(node) = &strategy.matrix else {
        return Ok(Map::new());
    };
    let Value::Object(matrix) = node.to_json() else {
        return Err(Diagnostic::new(
            file,
            node.span.start,
            format!("'jobs.{id}.strategy.matrix': the forge sent an expression; a task's matrix must already be expanded"),
        ));
    };
    let combinations = matrix::expand(&matrix)
        .map_err(|e| Diagnostic::new(file, node.span.start, e.message_for_job(id)))?;
    let count = combinations.len();
    let mut combinations = combinations.into_iter();
    match (combinations.next(), combinations.next()) {
        (Some(combination), None) => Ok(combination.into_values()),
        _ => Err(Diagnostic::new(
            file,
            node.span.start,
            format!(
                "the matrix of job '{id}' expands to {count} combinations; a task runs exactly one"
            ),
        )),
    }
}
