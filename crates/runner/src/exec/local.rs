//! A local run (`hearth exec`) as a library call: the workflows an event triggers in a
//! repository, planned and run on the backends given, reported to the sink given. The binary
//! adds only its command line, the console, signals and the exit code; tests run the same code
//! in-process, on any backend.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use hearth_backend::{HostPath, SecretString};
use hearth_engine::job::remote::ActionSource;
use hearth_engine::job::{JobControl, RunnerInfo};
use hearth_engine::mask::Masker;
use hearth_events::{Conclusion, EventSink};
use hearth_workflow::plan;

use super::inputs::{InputError, MatrixFilter, ValueFlags};
use super::schedule::{self, JobReport, PlannedWorkflow, Settings};
use crate::local_event::{LocalEvent, PayloadError};
use crate::route::Backends;
use crate::workflow_files::{self, is_action_file, FilesError};

/// What to run: act's flags, read.
#[derive(Clone, Debug, Default)]
pub struct LocalOptions {
    /// The event that triggers the run (`push`).
    pub event: String,
    /// Workflow files or folders; empty for the repository's workflow folder.
    pub workflows: Vec<PathBuf>,
    /// The repository (absolute).
    pub directory: PathBuf,
    /// The event's payload file.
    pub event_path: Option<PathBuf>,
    /// `-j`: only these jobs (and what they need).
    pub jobs_only: Vec<String>,
    /// Secrets, vars, env and inputs, as flags and files.
    pub values: ValueFlags,
    /// `--matrix` filters.
    pub matrix: Vec<String>,
    /// `github.actor`.
    pub actor: Option<String>,
    /// Run workflows whatever their filters say.
    pub ignore_filters: bool,
    /// `--dryrun`.
    pub dry_run: bool,
    /// `--bind`: jobs work in the repository itself instead of a copy of it.
    pub bind: bool,
    /// At most this many jobs at once (default: the number of cores).
    pub parallel: Option<usize>,
    /// Which workflows that do not run on the event get a line on stderr saying why.
    pub explain_skips: ExplainSkips,
    /// Where `-s NAME` (a name without a value) is looked up; `None` for this process's
    /// environment (tests give their own rather than change the process's).
    pub environment: Option<std::collections::BTreeMap<String, String>>,
}

/// Which workflows that do not run get a line on stderr saying why.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ExplainSkips {
    /// None (`--json`: stderr is not for people either).
    #[default]
    Quiet,
    /// Those named on the command line.
    Named,
    /// All (`-l`).
    All,
}

/// Why a local run could not start.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error(transparent)]
    Input(#[from] InputError),
    #[error(transparent)]
    Payload(#[from] PayloadError),
    #[error(transparent)]
    Files(#[from] FilesError),
    #[error("no job `{job}` in the workflows that run on `{event}`")]
    NoSuchJob { job: String, event: String },
}

/// The workflows a local run would run.
pub struct Loaded {
    pub workflows: Vec<PlannedWorkflow>,
    /// A workflow file was invalid (its problems were printed to stderr).
    pub invalid: bool,
    secrets: Vec<(String, String)>,
    env: Vec<(String, String)>,
    matrix: MatrixFilter,
}

/// How a local run ended.
#[derive(Debug)]
pub struct LocalOutcome {
    /// One report per job (matrix combination) that ran or was skipped.
    pub reports: Vec<JobReport>,
    /// A workflow file was invalid.
    pub invalid: bool,
    /// What the run's jobs restored, missed and saved in the cache, as one line.
    pub cache_activity: Option<String>,
}

impl LocalOutcome {
    /// `true` when a job failed (and was not allowed to) or a workflow was invalid: the exit
    /// code is 1.
    pub fn failed(&self) -> bool {
        self.invalid
            || self.reports.iter().any(|r| {
                matches!(r.result, Conclusion::Failure | Conclusion::Cancelled) && !r.may_fail
            })
    }
}

/// Reads the values, the event and the workflow files, and keeps the workflows the event
/// triggers, with `-j` applied.
pub fn load(options: &LocalOptions) -> Result<Loaded, LocalError> {
    let values = match &options.environment {
        Some(environment) => options
            .values
            .load_with_env(&options.directory, &|name| environment.get(name).cloned())?,
        None => options.values.load(&options.directory)?,
    };
    let matrix = MatrixFilter::parse(&options.matrix)?;
    let vars: Vec<(String, String)> = values.vars.into_iter().collect();
    let inputs: Vec<(String, String)> = values.inputs.into_iter().collect();
    let event = LocalEvent::load(
        &options.event,
        options.event_path.as_deref(),
        &options.directory,
    )?;
    let (workflows, invalid) = load_workflows(options, &event, &vars, &inputs)?;
    Ok(Loaded {
        workflows,
        invalid,
        secrets: values.secrets.into_iter().collect(),
        env: local_env(values.env),
        matrix,
    })
}

/// What act tells a workflow it runs locally: `ACT=true` in every job's environment.
///
/// Workflows written for act skip what must not run on a developer's machine with
/// `if: ${{ !env.ACT }}`; act puts the variable in the `env` context, so it is visible to
/// expressions as well as to processes. It is the lowest layer, under `--env` and the
/// workflow's `env:`, so `--env ACT=` runs such steps after all. Only `hearth exec` sets it;
/// jobs from a forge never see it.
const ACT_ENV: (&str, &str) = ("ACT", "true");

/// The variables under every job's workflow `env:`: [`ACT_ENV`], then `--env`'s.
fn local_env(flags: super::inputs::Values) -> Vec<(String, String)> {
    let (name, value) = ACT_ENV;
    std::iter::once((name.to_owned(), value.to_owned()))
        .chain(flags)
        .collect()
}

/// Runs what [`load`] found on `backends`, reporting to `sink`; `actions` fetches actions of
/// other repositories; the jobs are given `results` (the cache's `ACTIONS_CACHE_URL`, and
/// `ACTIONS_RESULTS_URL` with the runtime token for cache v2 and artifacts), when there are.
pub async fn run(
    options: &LocalOptions,
    loaded: Loaded,
    backends: Backends,
    actions: Arc<dyn ActionSource>,
    results: Option<&super::results::RunResults>,
    sink: &dyn EventSink,
    control: &JobControl,
) -> LocalOutcome {
    let mut masker = Masker::new();
    for (_, value) in &loaded.secrets {
        masker.add(value);
    }
    // One run, one repository and ref: one grant for all its jobs, valid a day.
    let mut extras = schedule::JobExtras::default();
    let github = loaded
        .workflows
        .first()
        .and_then(|w| w.run.github.as_object().cloned())
        .map(|mut github| {
            // A repository without a remote has no name: its folder stands for it, so that
            // its entries are its own.
            let named = matches!(github.get("repository"), Some(hearth_expr::Value::String(s)) if !s.is_empty());
            if !named {
                let folder = std::fs::canonicalize(&options.directory)
                    .unwrap_or_else(|_| options.directory.clone());
                let name = format!("local:{}", folder.display());
                github.insert("repository", hearth_expr::Value::string(name.as_str()));
            }
            github
        });
    let access = results
        .zip(github)
        .map(|(results, github)| results.for_run(&github, std::time::Duration::from_secs(86400)));
    if let Some(access) = &access {
        for secret in &access.secrets {
            masker.add(secret);
        }
        extras.runner_env.extend(access.env.iter().cloned());
        extras.reach.extend(access.reach.iter().cloned());
    }
    // The proxy this process is given, for container jobs too (host jobs inherit it anyway).
    if let Some(proxy) = crate::proxy::JobProxy::from_process() {
        let own: Vec<String> = extras.reach.iter().map(|r| r.url.clone()).collect();
        let own: Vec<&str> = own.iter().map(String::as_str).collect();
        let (env, reach) = proxy.for_job(&own);
        extras.runner_env.extend(env);
        extras.reach.extend(reach);
        for secret in proxy.secrets() {
            masker.add(&secret);
        }
    }
    masker.build();
    let secrets: Vec<(String, SecretString)> = loaded
        .secrets
        .into_iter()
        .map(|(name, value)| (name, value.into()))
        .collect();
    let matrix = loaded.matrix;
    let filter = |m: &serde_json::Map<String, serde_json::Value>| matrix.allows(m);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let settings = Settings {
        secrets,
        masker,
        extra_env: loaded.env,
        repository: Some(HostPath::new(options.directory.clone())),
        bind_repository: options.bind,
        actions,
        runner: RunnerInfo::this_machine(crate::system::host_name()),
        backends,
        matrix_filter: &filter,
        parallel: options.parallel.unwrap_or(cores),
        dry_run: options.dry_run,
        extras,
    };
    let reports = schedule::run_workflows(&loaded.workflows, &settings, sink, control).await;
    let cache_activity = results
        .zip(access.as_ref())
        .and_then(|(results, access)| results.activity(access));
    LocalOutcome {
        reports,
        invalid: loaded.invalid,
        cache_activity,
    }
}

/// Reads the workflow files and keeps those the event triggers, with `-j` applied; `true`
/// alongside when a file was invalid (already reported).
fn load_workflows(
    options: &LocalOptions,
    event: &LocalEvent,
    vars: &[(String, String)],
    inputs: &[(String, String)],
) -> Result<(Vec<PlannedWorkflow>, bool), LocalError> {
    let files: Vec<PathBuf> = workflow_files::find(&options.workflows, &options.directory)?
        .into_iter()
        .filter(|p| !is_action_file(p))
        .collect();
    let info = event.info();
    let mut invalid = false;
    let mut workflows = Vec::new();
    let mut found_jobs: HashMap<&str, bool> = options
        .jobs_only
        .iter()
        .map(|j| (j.as_str(), false))
        .collect();
    for path in &files {
        let Some((label, workflow)) = workflow_files::load_workflow(path)? else {
            invalid = true;
            continue;
        };
        let triggered = if options.ignore_filters {
            match workflow.on.event(&options.event) {
                Some(_) => Ok(()),
                None => Err(format!("the workflow does not run on `{}`", options.event)),
            }
        } else {
            plan::triggered_by(&workflow, &info)
        };
        if let Err(reason) = triggered {
            let named = options.workflows.iter().any(|w| w == path);
            let explain = match options.explain_skips {
                ExplainSkips::Quiet => false,
                ExplainSkips::Named => named,
                ExplainSkips::All => true,
            };
            if explain {
                eprintln!("{label}: not run: {reason}");
            }
            continue;
        }
        let only = if options.jobs_only.is_empty() {
            None
        } else {
            let here: Vec<String> = workflow
                .jobs
                .iter()
                .map(|j| j.id.value.clone())
                .filter(|id| options.jobs_only.contains(id))
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
        let run = event.run_context(&workflow, path, options.actor.as_deref(), vars, inputs);
        workflows.push(PlannedWorkflow {
            label,
            workflow,
            run,
            only,
            needed: Vec::new(),
        });
    }
    if let Some((missing, _)) = found_jobs.iter().find(|(_, found)| !**found) {
        return Err(LocalError::NoSuchJob {
            job: (*missing).to_owned(),
            event: options.event.clone(),
        });
    }
    Ok((workflows, invalid))
}

/// Where fetched actions are kept between runs: `$XDG_CACHE_HOME/hearth/actions`, else
/// `~/.cache/hearth/actions`, else under the temporary folder.
pub fn actions_cache() -> PathBuf {
    hearth_cache().join("actions")
}

/// Where `hearth exec` keeps the node it lends to job containers whose image has none (see
/// `hearth_docker`'s node lending): beside the actions, so that it is bundled once, not per run.
pub fn externals_dir() -> PathBuf {
    hearth_cache().join("externals")
}

/// `$XDG_CACHE_HOME/hearth`, else `$HOME/.cache/hearth`, else under the temporary folder.
fn hearth_cache() -> PathBuf {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|home| PathBuf::from(home).join(".cache"))
        })
        .unwrap_or_else(std::env::temp_dir);
    cache.join("hearth")
}
