//! `hearth plan`: the jobs an event would run, in order, as `hearth exec` would run them.
//!
//! Unlike act, filters (`branches`, `tags`, `paths`, `types`) are honoured; `--ignore-filters`
//! plans every workflow that lists the event at all.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Args;
use hearth_expr::{Object, Value as ExprValue};
use hearth_workflow::filters::EventInfo;
use hearth_workflow::model::{EventConfig, Scalar, Workflow};
use hearth_workflow::plan::{self, JobEntry, JobPlan, RunContext};
use serde_json::Value;

use crate::git::Repository;
use crate::workflow_files::{self, is_action_file};

#[derive(Args, Debug)]
pub struct PlanArgs {
    /// The event that triggers the run.
    #[arg(default_value = "push")]
    event: String,

    /// Workflow files or folders (a folder's *.yml and *.yaml, not recursing) [default: the
    /// repository's .forgejo/workflows, .gitea/workflows or .github/workflows].
    #[arg(short = 'W', long = "workflows", value_name = "PATH")]
    workflows: Vec<PathBuf>,

    /// The event's webhook payload (`github.event`), a JSON file.
    #[arg(short = 'e', long = "eventpath", value_name = "FILE")]
    event_path: Option<PathBuf>,

    /// The repository.
    #[arg(
        short = 'C',
        long = "directory",
        value_name = "DIR",
        default_value = "."
    )]
    directory: PathBuf,

    /// Print one JSON array, an element per job to run.
    #[arg(long)]
    json: bool,

    /// Plan every workflow that lists the event, ignoring its branch, tag, path and type
    /// filters (act's behaviour).
    #[arg(long)]
    ignore_filters: bool,

    /// A configuration variable (`vars` context); repeatable.
    #[arg(long = "var", value_name = "NAME=VALUE", value_parser = parse_pair)]
    vars: Vec<(String, String)>,

    /// A workflow_dispatch input (`inputs` context); repeatable.
    #[arg(long = "input", value_name = "NAME=VALUE", value_parser = parse_pair)]
    inputs: Vec<(String, String)>,
}

fn parse_pair(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_owned(), value.to_owned())),
        _ => Err(format!("expected NAME=VALUE, found `{s}`")),
    }
}

/// What one workflow file came to.
enum Outcome {
    Planned(Vec<JobEntry>),
    NotTriggered(String),
}

/// Exit 0 when every workflow could be planned, 1 when one is invalid or fails to plan.
pub fn run(args: PlanArgs) -> Result<ExitCode> {
    // Action files can sit in a folder given with -W; they are not workflows to plan.
    let files: Vec<PathBuf> = workflow_files::find(&args.workflows, &args.directory)?
        .into_iter()
        .filter(|p| !is_action_file(p))
        .collect();
    if files.is_empty() {
        bail!("only action files (action.yml) were given: no workflow to plan");
    }
    let payload = match &args.event_path {
        Some(path) => read_payload(path)?,
        None => Value::Object(Default::default()),
    };
    let repository = Repository::read(&args.directory);
    let git_ref = payload
        .get("ref")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or_else(|| repository.head_ref.clone());
    let changed_paths = changed_paths(&payload);
    let event = EventInfo {
        name: &args.event,
        payload: &payload,
        git_ref: git_ref.as_deref(),
        changed_paths: changed_paths.as_deref(),
    };

    let mut failed = false;
    let mut planned = Vec::new();
    for path in &files {
        let source = workflow_files::read(path)?;
        let text = match source.text() {
            Ok(text) => text,
            Err(problem) => {
                eprintln!("{problem}");
                failed = true;
                continue;
            }
        };
        let workflow = match Workflow::parse(text, &source.label) {
            Ok(workflow) => workflow,
            Err(diagnostics) => {
                eprintln!("{diagnostics}");
                failed = true;
                continue;
            }
        };
        let outcome = match triggered(&args, &workflow, &event) {
            Err(reason) => Outcome::NotTriggered(reason),
            Ok(()) => {
                let context = run_context(&args, &workflow, path, &payload, &git_ref, &repository);
                match plan::plan(&workflow, &source.label, &context) {
                    Ok(entries) => Outcome::Planned(entries),
                    Err(diagnostics) => {
                        eprintln!("{diagnostics}");
                        failed = true;
                        continue;
                    }
                }
            }
        };
        planned.push((source.label, workflow, outcome));
    }

    if args.json {
        print_json(&planned)?;
    } else {
        print_text(&args.event, &planned);
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Whether the event starts the workflow; with `--ignore-filters`, whether it is listed at all.
fn triggered(args: &PlanArgs, workflow: &Workflow, event: &EventInfo<'_>) -> Result<(), String> {
    if !args.ignore_filters {
        return plan::triggered_by(workflow, event);
    }
    match workflow.on.event(&args.event) {
        Some(_) => Ok(()),
        None => Err(format!("the workflow does not run on `{}`", args.event)),
    }
}

fn read_payload(path: &Path) -> Result<Value> {
    let text = fs::read_to_string(path)
        .with_context(|| format!("cannot read the event payload {}", path.display()))?;
    let payload: Value = serde_json::from_str(&text)
        .with_context(|| format!("the event payload {} is not valid JSON", path.display()))?;
    if !payload.is_object() {
        bail!("the event payload {} must be a JSON object", path.display());
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

/// The contexts planning may read: a `github` context from the event and the repository,
/// `vars` from `--var`, `inputs` from the workflow's dispatch defaults and `--input`.
fn run_context(
    args: &PlanArgs,
    workflow: &Workflow,
    path: &Path,
    payload: &Value,
    git_ref: &Option<String>,
    repository: &Repository,
) -> RunContext {
    let mut github = Object::new();
    github.insert("event_name", args.event.as_str());
    github.insert("event", ExprValue::from_json(payload));
    let git_ref = git_ref.as_deref().unwrap_or("");
    github.insert("ref", git_ref);
    let (ref_type, ref_name) = match (
        git_ref.strip_prefix("refs/heads/"),
        git_ref.strip_prefix("refs/tags/"),
    ) {
        (Some(branch), _) => ("branch", branch),
        (_, Some(tag)) => ("tag", tag),
        _ => ("", git_ref),
    };
    github.insert("ref_name", ref_name);
    github.insert("ref_type", ref_type);
    github.insert("sha", repository.sha.as_deref().unwrap_or(""));
    let name = repository.name.as_deref().unwrap_or("");
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

    let vars: Object = args
        .vars
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let mut inputs = Object::new();
    if let Some(EventConfig::WorkflowDispatch(dispatch)) =
        workflow.on.event("workflow_dispatch").map(|e| &e.config)
    {
        for input in &dispatch.inputs {
            let value = match input.default.as_ref().map(|d| &d.value) {
                Some(Scalar::Bool(b)) => ExprValue::from(*b),
                Some(Scalar::Number(n)) => ExprValue::from(*n),
                Some(Scalar::String(s)) => ExprValue::from(s.as_str()),
                Some(Scalar::Null) | None => ExprValue::from(""),
            };
            inputs.insert(input.name.value.as_str(), value);
        }
    }
    for (name, value) in &args.inputs {
        inputs.insert(name.as_str(), value.as_str());
    }
    RunContext {
        github: ExprValue::object(github),
        vars: ExprValue::object(vars),
        inputs: ExprValue::object(inputs),
    }
}

fn print_json(planned: &[(String, Workflow, Outcome)]) -> Result<()> {
    let mut jobs = Vec::new();
    for (label, _, outcome) in planned {
        let Outcome::Planned(entries) = outcome else {
            continue;
        };
        for entry in entries {
            match &entry.plan {
                JobPlan::Run(instances) => jobs.extend(instances.iter().map(|j| j.to_json(label))),
                JobPlan::Deferred { job, reason } => {
                    let mut element = job.to_json(label);
                    element["deferred"] = Value::from(reason.as_str());
                    jobs.push(element);
                }
                JobPlan::Skipped { .. } => {}
            }
        }
    }
    println!("{}", serde_json::to_string_pretty(&Value::Array(jobs))?);
    Ok(())
}

fn print_text(event: &str, planned: &[(String, Workflow, Outcome)]) {
    for (label, workflow, outcome) in planned {
        let title = workflow
            .name
            .as_ref()
            .map_or_else(String::new, |n| format!(" ({})", n.value));
        match outcome {
            Outcome::NotTriggered(reason) => println!("{label}{title}: not run: {reason}"),
            Outcome::Planned(entries) => {
                println!("{label}{title}: runs on {event}");
                let rows: Vec<(String, String)> = entries.iter().flat_map(rows).collect();
                let width = rows
                    .iter()
                    .map(|(name, _)| name.chars().count())
                    .max()
                    .unwrap_or(0);
                for (name, detail) in rows {
                    println!("  {name:<width$}  {detail}");
                }
            }
        }
    }
}

/// One line per job to run: its display name, and where it runs (or why it does not).
fn rows(entry: &JobEntry) -> Vec<(String, String)> {
    let needs = if entry.needs.is_empty() {
        String::new()
    } else {
        format!("  needs: {}", entry.needs.join(", "))
    };
    match &entry.plan {
        JobPlan::Run(instances) => instances
            .iter()
            .map(|job| {
                let runs_on = if job.runs_on.is_empty() {
                    "(calls a reusable workflow)".to_owned()
                } else {
                    format!("runs-on: {}", job.runs_on.join(", "))
                };
                (job.name.clone(), format!("{runs_on}{needs}"))
            })
            .collect(),
        JobPlan::Deferred { job, reason } => {
            vec![(job.name.clone(), format!("deferred: {reason}{needs}"))]
        }
        JobPlan::Skipped { reason } => vec![(entry.job_id.clone(), format!("skipped: {reason}"))],
    }
}
