//! `hearth plan`: the jobs an event would run, in order, as `hearth exec` would run them.
//!
//! Unlike act, filters (`branches`, `tags`, `paths`, `types`) are honoured; `--ignore-filters`
//! plans every workflow that lists the event at all.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::Args;
use hearth_workflow::filters::EventInfo;
use hearth_workflow::model::Workflow;
use hearth_workflow::plan::{self, JobEntry, JobPlan};
use serde_json::Value;

use hearth_runner::local_event::LocalEvent;
use hearth_runner::workflow_files::{self, is_action_file};

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
    let event = LocalEvent::load(&args.event, args.event_path.as_deref(), &args.directory)?;
    let event_info = event.info();

    let mut failed = false;
    let mut planned = Vec::new();
    for path in &files {
        let Some((label, workflow)) = workflow_files::load_workflow(path)? else {
            failed = true;
            continue;
        };
        let outcome = match triggered(&args, &workflow, &event_info) {
            Err(reason) => Outcome::NotTriggered(reason),
            Ok(()) => {
                let context = event.run_context(&workflow, path, None, &args.vars, &args.inputs);
                match plan::plan(&workflow, &label, &context) {
                    Ok(entries) => Outcome::Planned(entries),
                    Err(diagnostics) => {
                        eprintln!("{diagnostics}");
                        failed = true;
                        continue;
                    }
                }
            }
        };
        planned.push((label, workflow, outcome));
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

fn print_json(planned: &[(String, Workflow, Outcome)]) -> Result<()> {
    let mut jobs = Vec::new();
    for (label, workflow, outcome) in planned {
        let Outcome::Planned(entries) = outcome else {
            continue;
        };
        for entry in entries {
            match &entry.plan {
                JobPlan::Run(instances) => jobs.extend(instances.iter().map(|j| {
                    let mut element = j.to_json(label);
                    if let Some(uses) = called(workflow, &entry.job_id) {
                        element["uses"] = Value::from(uses);
                    }
                    element
                })),
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
                let rows: Vec<(String, String)> = entries
                    .iter()
                    .flat_map(|entry| rows(workflow, entry))
                    .collect();
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

/// The workflow a job calls (`jobs.<id>.uses`), as written.
fn called<'a>(workflow: &'a Workflow, job_id: &str) -> Option<&'a str> {
    workflow
        .jobs
        .iter()
        .find(|job| job.id.value == job_id)
        .and_then(|job| job.uses.as_ref())
        .map(|uses| uses.value.as_str())
}

/// One line per job to run: its display name, and where it runs (or why it does not).
fn rows(workflow: &Workflow, entry: &JobEntry) -> Vec<(String, String)> {
    let needs = if entry.needs.is_empty() {
        String::new()
    } else {
        format!("  needs: {}", entry.needs.join(", "))
    };
    match &entry.plan {
        JobPlan::Run(instances) => instances
            .iter()
            .map(|job| {
                let runs_on = if let Some(uses) = called(workflow, &entry.job_id) {
                    format!("calls {uses}")
                } else if job.runs_on.is_empty() {
                    "runs-on: (none)".to_owned()
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
