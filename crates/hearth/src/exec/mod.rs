//! `hearth exec`: finds the workflows an event triggers, plans their jobs, and runs them on
//! this machine, reporting to the console (or as JSON lines).

pub mod console;
pub mod inputs;
pub mod json;
mod out;
pub mod schedule;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use hearth_backend::host::HostBackend;

use crate::actions::GitActions;
use hearth_engine::events::{Conclusion, EventSink};
use hearth_engine::job::{JobControl, RunnerInfo};
use hearth_workflow::plan::{self, JobPlan};

use crate::cmd::exec::ExecArgs;
use crate::labels::{Labels, Platform};
use crate::local_event::LocalEvent;
use crate::workflow_files::{self, is_action_file};
use inputs::{MatrixFilter, ValueFlags};
use schedule::{Place, PlannedWorkflow, Settings};

/// Runs `hearth exec`.
pub fn run(args: ExecArgs) -> Result<ExitCode> {
    let directory = std::path::absolute(&args.directory)
        .with_context(|| format!("cannot resolve {}", args.directory.display()))?;
    let values = ValueFlags {
        secrets: args.secrets.clone(),
        secret_files: args.secret_files.clone(),
        vars: args.vars.clone(),
        var_files: args.var_files.clone(),
        envs: args.envs.clone(),
        env_files: args.env_files.clone(),
        inputs: args.inputs.clone(),
        input_files: args.input_files.clone(),
    }
    .load(&directory)?;
    let labels = Labels::from_flags(&args.labels, &args.platforms)?;
    let matrix_filter = MatrixFilter::parse(&args.matrix)?;
    let vars: Vec<(String, String)> = values.vars.into_iter().collect();
    let inputs: Vec<(String, String)> = values.inputs.into_iter().collect();

    let event = LocalEvent::load(&args.event, args.event_path.as_deref(), &directory)?;
    let (workflows, invalid) = load_workflows(&args, &directory, &event, &vars, &inputs)?;
    if args.list {
        list(&workflows);
        return Ok(exit_code(invalid));
    }
    if workflows.is_empty() {
        eprintln!("hearth: no workflow runs on `{}`", args.event);
        return Ok(exit_code(invalid));
    }

    let place = |runs_on: &[String]| -> Result<Place, String> {
        let label = labels.pick(runs_on).map_err(|e| e.to_string())?;
        match label.platform() {
            Platform::Host => Ok(Place::Host),
            Platform::Docker { image } => Err(format!(
                "label `{}` runs jobs in Docker (image {image}), which `hearth exec` cannot do yet; \
                 use --label {}:host to run it on this machine",
                label.name(),
                label.name()
            )),
        }
    };
    let filter = |matrix: &serde_json::Map<String, serde_json::Value>| matrix_filter.allows(matrix);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut masker = hearth_engine::mask::Masker::new();
    for value in values.secrets.values() {
        masker.add(value);
    }
    let secrets: Vec<(String, secrecy::SecretString)> = values
        .secrets
        .into_iter()
        .map(|(name, value)| (name, value.into()))
        .collect();
    masker.build();
    let settings = Settings {
        secrets,
        masker,
        extra_env: values.env.into_iter().collect(),
        base_env: base_env(),
        repository: Some(directory.clone()),
        actions: std::sync::Arc::new(GitActions::new(&args.default_actions_url, actions_cache())),
        runner: RunnerInfo::this_machine(crate::system::host_name()),
        place: &place,
        matrix_filter: &filter,
        parallel: args.parallel.unwrap_or(cores),
        dry_run: args.dry_run,
    };
    let sink = make_sink(args.json);
    let root = std::env::temp_dir().join(format!("hearth-exec-{}", std::process::id()));
    // One run's jobs share the repository: a finished job's folder is refreshed for the next
    // rather than removed and copied anew (see hearth_backend::host's `spares`).
    let backend = HostBackend::new(root.clone()).with_folder_reuse();

    // One thread: every job's future is polled from `block_on` on this thread anyway (they are
    // joined, not spawned), so worker threads would only wait for the processes' pipes and
    // exits and hand each event over, two thread switches per event, several per step. The
    // processes run in parallel all the same; blocking file work goes to tokio's blocking pool.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let reports = runtime.block_on(async {
        let control = JobControl::default();
        let signals = watch_signals(control.clone());
        let reports =
            schedule::run_workflows(&workflows, &settings, &backend, sink.as_ref(), &control).await;
        signals.abort();
        reports
    });
    // In one removal, the folders still set aside for reuse with the rest: their folders are
    // then all removed side by side (dropping the backend afterwards finds them gone).
    let _ = hearth_backend::host::remove_folder(&root);
    drop(backend);
    sink.flush();
    if let Some(error) = sink.finish() {
        // A closed pipe (`hearth exec | head`) is the reader's choice, not a problem.
        if error.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("hearth: writing the log failed: {error}");
        }
    }

    let failed = reports
        .iter()
        .any(|r| matches!(r.result, Conclusion::Failure | Conclusion::Cancelled) && !r.may_fail);
    Ok(exit_code(invalid || failed))
}

/// Where fetched actions are kept between runs: `$XDG_CACHE_HOME/hearth/actions`, else
/// `~/.cache/hearth/actions`, else under the temporary folder.
fn actions_cache() -> PathBuf {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|home| PathBuf::from(home).join(".cache"))
        })
        .unwrap_or_else(std::env::temp_dir);
    cache.join("hearth").join("actions")
}

fn exit_code(failed: bool) -> ExitCode {
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// The sink for people or for machines, with what it must do when all jobs ended.
trait FinalSink: EventSink {
    /// Everything ran: print the summary; returns the first write that failed, if any.
    fn finish(&self) -> Option<std::io::Error>;
}

fn make_sink(json: bool) -> Box<dyn FinalSink> {
    if json {
        Box::new(json::JsonLines::new(std::io::stdout()))
    } else {
        let color = console::color_for_stdout();
        Box::new(console::Console::new(std::io::stdout(), color))
    }
}

impl<W: std::io::Write + Send> FinalSink for json::JsonLines<W> {
    fn finish(&self) -> Option<std::io::Error> {
        self.take_error()
    }
}

impl<W: std::io::Write + Send> FinalSink for console::Console<W> {
    fn finish(&self) -> Option<std::io::Error> {
        self.write_summary();
        self.take_error()
    }
}

/// Reads the workflow files and keeps those the event triggers, with `-j` applied; `true`
/// alongside when a file was invalid (already reported).
fn load_workflows(
    args: &ExecArgs,
    directory: &Path,
    event: &LocalEvent,
    vars: &[(String, String)],
    inputs: &[(String, String)],
) -> Result<(Vec<PlannedWorkflow>, bool)> {
    let files: Vec<PathBuf> = workflow_files::find(&args.workflows, directory)?
        .into_iter()
        .filter(|p| !is_action_file(p))
        .collect();
    let info = event.info();
    let mut invalid = false;
    let mut workflows = Vec::new();
    let mut found_jobs: HashMap<&str, bool> =
        args.jobs_only.iter().map(|j| (j.as_str(), false)).collect();
    for path in &files {
        let Some((label, workflow)) = workflow_files::load_workflow(path)? else {
            invalid = true;
            continue;
        };
        let triggered = if args.ignore_filters {
            match workflow.on.event(&args.event) {
                Some(_) => Ok(()),
                None => Err(format!("the workflow does not run on `{}`", args.event)),
            }
        } else {
            plan::triggered_by(&workflow, &info)
        };
        if let Err(reason) = triggered {
            if !args.json && (args.workflows.iter().any(|w| w == path) || args.list) {
                eprintln!("{}: not run: {reason}", label);
            }
            continue;
        }
        let only = if args.jobs_only.is_empty() {
            None
        } else {
            let here: Vec<String> = workflow
                .jobs
                .iter()
                .map(|j| j.id.value.clone())
                .filter(|id| args.jobs_only.contains(id))
                .collect();
            if here.is_empty() {
                continue;
            }
            for id in &here {
                if let Some(found) = found_jobs.get_mut(id.as_str()) {
                    *found = true;
                }
            }
            Some(here)
        };
        let run = event.run_context(&workflow, path, args.actor.as_deref(), vars, inputs);
        workflows.push(PlannedWorkflow {
            label,
            workflow,
            run,
            only,
        });
    }
    if let Some((missing, _)) = found_jobs.iter().find(|(_, found)| !**found) {
        bail!(
            "no job `{missing}` in the workflows that run on `{}`",
            args.event
        );
    }
    Ok((workflows, invalid))
}

/// `-l`: the jobs in stage order, as act lists them.
fn list(workflows: &[PlannedWorkflow]) {
    let mut rows = vec![[
        "Stage".to_owned(),
        "Job ID".to_owned(),
        "Job name".to_owned(),
        "Workflow name".to_owned(),
        "Workflow file".to_owned(),
    ]];
    for planned in workflows {
        let entries = match plan::plan(&planned.workflow, &planned.label, &planned.run) {
            Ok(entries) => entries,
            Err(diagnostics) => {
                eprintln!("{diagnostics}");
                continue;
            }
        };
        let mut stage: HashMap<&str, usize> = HashMap::new();
        let name = planned
            .workflow
            .name
            .as_ref()
            .map_or(String::new(), |n| n.value.clone());
        for entry in &entries {
            let depth = entry
                .needs
                .iter()
                .map(|n| stage.get(n.as_str()).map_or(0, |d| d + 1))
                .max()
                .unwrap_or(0);
            stage.insert(&entry.job_id, depth);
            let names: Vec<String> = match &entry.plan {
                JobPlan::Run(instances) => instances.iter().map(|i| i.name.clone()).collect(),
                JobPlan::Deferred { job, .. } => vec![job.name.clone()],
                JobPlan::Skipped { .. } => vec![format!("{} (skipped)", entry.job_id)],
            };
            for job_name in names {
                rows.push([
                    depth.to_string(),
                    entry.job_id.clone(),
                    job_name,
                    name.clone(),
                    planned.label.clone(),
                ]);
            }
        }
    }
    let widths: Vec<usize> = (0..5)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        println!("{}", line.join("  ").trim_end());
    }
}

/// The environment steps start from: this process's, without variables that only make sense
/// inside another runner's step (`INPUT_*`, `STATE_*`).
fn base_env() -> Vec<(String, String)> {
    std::env::vars()
        .filter(|(name, _)| !name.starts_with("INPUT_") && !name.starts_with("STATE_"))
        .collect()
}

/// First SIGINT or SIGTERM cancels the run (running steps are stopped, `always()` steps still
/// run); a second one stops those too.
fn watch_signals(control: JobControl) -> tokio::task::JoinHandle<()> {
    crate::system::on_interrupts(move |received| {
        if received == 1 {
            eprintln!("hearth: cancelling (again to stop `always()` steps too)");
            control.cancel.cancel();
        } else {
            control.force.cancel();
        }
    })
}
