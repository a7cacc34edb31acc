//! Runs one job: prepares it on a backend, builds its contexts, runs its steps in order with
//! GitHub's status rules, and reports everything to a sink.
//!
//! The job's life, as GitHub's runner lives it:
//!
//! 1. `timeout-minutes`, `container:` and `services:` are evaluated (with the paths the backend
//!    knows ahead, if any); the backend prepares the workspace, temp folder and tool cache
//!    (and containers); the event payload is written to `RUNNER_TEMP`; then the workflow's and
//!    the job's `env:`, `defaults.run` and `cancel-timeout-minutes` are evaluated with
//!    `github.workspace` and `runner.temp` known, as GitHub's runner evaluates them.
//! 2. Each step's `if:` is evaluated with the job's status so far (`success()` unless written
//!    otherwise). A step that runs gets fresh file-command files, its `env:` on top of the job's
//!    environment, and its output streamed through command parsing and masking.
//! 3. After each step its files are applied: `GITHUB_ENV` to later steps' environment and
//!    `env` context, `GITHUB_PATH` in front of `PATH`, `GITHUB_OUTPUT` to `steps.<id>.outputs`.
//! 4. On cancellation (or the job's timeout) the running step's processes are stopped; steps
//!    whose `if:` holds for a cancelled job (`always()`, `cancelled()`) still run, under the
//!    `force` token and `cancel-timeout-minutes`.
//! 5. The job's `outputs:` are evaluated (values holding a secret are dropped, as GitHub
//!    drops them) and the backend removes everything the job left.

mod action;
mod container_step;
mod containers;
mod error;
mod eval;
mod files;
mod load;
mod output;
pub mod remote;
mod state;
mod step;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hearth_backend::{
    Backend, CancellationToken, HostPath, JobRuntime, JobSpec, SetupLevel, SetupLog,
};
use hearth_expr::{Object, Status, Value};
use hearth_workflow::model::{Job, OrExpr, Workflow};
use hearth_workflow::plan::PlannedJob;
use secrecy::{ExposeSecret, SecretString};

use crate::mask::Masker;
use crate::matchers::MatcherSet;
use crate::workspace_files::DirWorkspace;
use hearth_events::{AnnotationRef, Conclusion, Event, EventSink, JobLabel, LogLine, StepLabel};
use state::{env_object, Clock, JobState};

pub use error::{ActionError, ErrorKind, PrepareError, StepError};
pub use eval::EvalError;
pub use step::default_step_name;

/// GitHub's default `timeout-minutes` of a job.
pub const DEFAULT_JOB_TIMEOUT_MINUTES: f64 = 360.0;
/// GitHub's default `cancel-timeout-minutes`: how long steps may run after cancellation.
pub const DEFAULT_CANCEL_TIMEOUT_MINUTES: f64 = 5.0;

/// Everything a job needs besides a backend, a sink and its cancellation tokens.
pub struct JobRequest<'a> {
    /// The workflow file's name as messages show it.
    pub file: &'a str,
    pub workflow: &'a Workflow,
    pub job: &'a Job,
    /// The job's matrix combination, display name and strategy, from the planner.
    pub planned: &'a PlannedJob,
    /// The `github` context as the caller knows it (event, ref, sha, repository, actor, ...);
    /// the engine adds `job`, `workspace`, `event_path`, `action` and the per-step file paths.
    pub github: Object,
    /// The `vars` context.
    pub vars: Object,
    /// The `secrets` context; every value is masked. Held as `SecretString`, whose `Debug`
    /// never shows a value.
    pub secrets: Vec<(String, SecretString)>,
    /// A masker the job starts from, e.g. one holding the run's secrets already (built with
    /// [`Masker::build`], its automaton is shared by every job cloning it); the job adds the
    /// secrets above and its own `add-mask` values to its copy.
    pub masker: Masker,
    /// The `inputs` context.
    pub inputs: Object,
    /// The `needs` context: `{ <id>: { result, outputs } }` for the job's needs.
    pub needs: Object,
    /// About the machine, for the `runner` context.
    pub runner: RunnerInfo,
    /// Variables the runner gives every job (the forge's `ACTIONS_RUNTIME_URL`, ...), over the
    /// environment the job's runtime starts from (the runner's own on the host, the image's
    /// in a container).
    pub runner_env: Vec<(String, String)>,
    /// Variables under the workflow's `env:` (`hearth exec --env`).
    pub extra_env: Vec<(String, String)>,
    /// The repository to copy into the workspace.
    pub repository: Option<HostPath>,
    /// The workspace is the repository itself, not a copy (`hearth exec --bind`).
    pub bind_repository: bool,
    /// The image the job's label names (`name:docker://IMAGE`), for a job without `container:`.
    pub label_image: Option<String>,
    /// Labels that say whose the job's resources are (runner, task), for the backend.
    pub owner: Vec<(String, String)>,
    /// What of the runner's side the job is given and must reach (the forge, the cache); the
    /// runtime may give the job another address for each, and the engine puts that one in the
    /// job's contexts and environment.
    pub reach: Vec<hearth_backend::Reach>,
    /// Where `uses: owner/repo@ref` actions come from; without one they are an error.
    pub actions: Option<Arc<dyn remote::ActionSource>>,
    /// Folders of files the runner hands the job (a `DOCKER_CONFIG` with registry
    /// credentials). The caller adds their secrets to `masker`.
    pub env_folders: Vec<EnvFolder>,
    /// The forge's own registry and the task's credentials for it, tried last for images on
    /// the forge's host (masked here).
    pub forge_registry: Option<hearth_backend::ForgeRegistry>,
}

/// A folder of files for the job's steps, written into the job's temp folder before the first
/// step and gone with the job's folders; the variable `env` names it to every step.
#[derive(Clone, Debug)]
pub struct EnvFolder {
    /// The variable that names the folder (`DOCKER_CONFIG`).
    pub env: String,
    /// The folder's name under the job's temp folder.
    pub name: String,
    /// Its files, by name; their contents are secret.
    pub files: Vec<(String, SecretString)>,
}

/// The `runner` context's fixed part.
#[derive(Clone, Debug)]
pub struct RunnerInfo {
    pub name: String,
    /// `Linux`, `macOS` or `Windows`.
    pub os: String,
    /// `X64`, `ARM64`, `X86` or `ARM`.
    pub arch: String,
    /// `self-hosted` (or `github-hosted`).
    pub environment: String,
}

impl RunnerInfo {
    /// This machine, under `name`.
    pub fn this_machine(name: impl Into<String>) -> Self {
        let os = match std::env::consts::OS {
            "linux" => "Linux",
            "macos" => "macOS",
            "windows" => "Windows",
            other => other,
        };
        let arch = match std::env::consts::ARCH {
            "x86_64" => "X64",
            "aarch64" => "ARM64",
            "x86" => "X86",
            "arm" => "ARM",
            other => other,
        };
        RunnerInfo {
            name: name.into(),
            os: os.to_owned(),
            arch: arch.to_owned(),
            environment: "self-hosted".to_owned(),
        }
    }
}

/// How a job is stopped from outside.
#[derive(Clone, Debug, Default)]
pub struct JobControl {
    /// Cancels the job: the running step is stopped, then `always()` steps run.
    pub cancel: CancellationToken,
    /// Stops those too (a second Ctrl-C).
    pub force: CancellationToken,
}

/// How a job ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobOutcome {
    /// `needs.<id>.result`.
    pub result: Conclusion,
    /// The job's `outputs:`, evaluated.
    pub outputs: Vec<(String, String)>,
}

/// Runs the job on `backend`, reporting to `sink`.
pub async fn run_job(
    backend: &dyn Backend,
    request: &JobRequest<'_>,
    sink: &dyn EventSink,
    control: &JobControl,
) -> JobOutcome {
    let started = Instant::now();
    let mut masker = request.masker.clone();
    for (_, value) in &request.secrets {
        masker.add(value.expose_secret());
    }
    // Built once here, so that the job's own copy below shares the automaton.
    masker.build();
    // The display name was evaluated from the contexts (`github.token` among them).
    let label = JobLabel {
        id: request.job.id.value.clone(),
        name: masker.mask_text(&request.planned.name),
    };
    sink.event(&Event::JobStarted { job: &label });
    sink.flush();

    let outcome = match JobRun::prepare(request, &label, sink, &mut masker, backend, control).await
    {
        Ok(mut run) => {
            let outcome = run.run_steps(control).await;
            let JobRun {
                runtime, masker, ..
            } = run;
            report_finish(sink, &label, &masker, runtime).await;
            outcome
        }
        Err(error) => {
            // Preparing quotes evaluated values (`timeout-minutes must be a number, not
            // '...'`), which may hold a secret: `log` masks.
            log(
                sink,
                &label,
                None,
                &masker,
                LogLine::Error(&error.to_string()),
            );
            JobOutcome {
                result: match error.kind() {
                    ErrorKind::Backend(hearth_backend::ErrorKind::Cancelled)
                        if control.cancel.is_cancelled() =>
                    {
                        Conclusion::Cancelled
                    }
                    _ => Conclusion::Failure,
                },
                outputs: Vec::new(),
            }
        }
    };
    sink.event(&Event::JobFinished {
        job: &label,
        result: outcome.result,
        reason: None,
        outputs: &outcome.outputs,
        duration: started.elapsed(),
    });
    sink.flush();
    outcome
}

/// Cleans the job up; a failure is reported in the job's log, not dropped.
async fn report_finish(
    sink: &dyn EventSink,
    label: &JobLabel,
    masker: &Masker,
    runtime: Box<dyn JobRuntime>,
) {
    if let Err(e) = runtime.finish().await {
        let message = format!("cleaning up the job failed: {e}");
        log(sink, label, None, masker, LogLine::Error(&message));
    }
}

/// The job's log while the backend prepares the job: each line masked, then sent as a log line
/// of the job's set-up.
struct SetupLines<'a> {
    sink: &'a dyn EventSink,
    label: &'a JobLabel,
    masker: &'a Masker,
}

impl SetupLog for SetupLines<'_> {
    fn line(&mut self, level: SetupLevel, text: &str) {
        let line = match level {
            SetupLevel::Info => LogLine::Info(text),
            SetupLevel::Warning => LogLine::Warning(text),
        };
        log(self.sink, self.label, None, self.masker, line);
        self.sink.flush();
    }
}

/// Sends a line of the runner's own (of the job, or of `step`), masked: its messages quote
/// evaluated values, paths and errors from below, any of which may hold a secret, and a sink
/// must never see one. Every runner message goes through here; the steps' output is masked on
/// its own path (`output.rs`), line by line as it streams.
fn log(
    sink: &dyn EventSink,
    job: &JobLabel,
    step: Option<&StepLabel>,
    masker: &Masker,
    line: LogLine<'_>,
) {
    let send = |line: LogLine<'_>| sink.event(&Event::Log { job, step, line });
    let mask = |text| masked(masker, text);
    match line {
        LogLine::Output(text) => send(LogLine::Output(&mask(text))),
        LogLine::Echo(text) => send(LogLine::Echo(&mask(text))),
        LogLine::Group(text) => send(LogLine::Group(&mask(text))),
        LogLine::Debug(text) => send(LogLine::Debug(&mask(text))),
        LogLine::Info(text) => send(LogLine::Info(&mask(text))),
        LogLine::Warning(text) => send(LogLine::Warning(&mask(text))),
        LogLine::Error(text) => send(LogLine::Error(&mask(text))),
        LogLine::Annotation(annotation) => {
            let message = mask(annotation.message);
            let title = annotation.title.map(mask);
            let file = annotation.file.map(mask);
            send(LogLine::Annotation(AnnotationRef {
                message: &message,
                title: title.as_deref(),
                file: file.as_deref(),
                ..annotation
            }))
        }
        LogLine::EndGroup => send(line),
    }
}

/// `text` masked, borrowed back when it holds nothing secret (nearly always).
fn masked<'t>(masker: &Masker, text: &'t str) -> Cow<'t, str> {
    match masker.mask(text.as_bytes()) {
        Cow::Borrowed(_) => Cow::Borrowed(text),
        Cow::Owned(bytes) => Cow::Owned(String::from_utf8_lossy(&bytes).into_owned()),
    }
}

/// A job that is running: what it runs on and reports to, its state (pure, `state.rs`), what
/// its steps need to run (`step.rs`), and the actions it loaded (`action.rs`).
struct JobRun<'r> {
    request: &'r JobRequest<'r>,
    runtime: Box<dyn JobRuntime>,
    sink: &'r dyn EventSink,
    label: &'r JobLabel,
    masker: Masker,
    /// Contexts, env, status, clock and the frames of composite actions.
    state: JobState,
    /// The workspace, for `hashFiles`, when the engine can read it.
    workspace: Option<Arc<DirWorkspace>>,
    /// Numbers steps for their scripts.
    counter: usize,
    /// The file-command files every step gets (emptied before each).
    files: files::StepFiles,
    /// The scripts of `run:` steps.
    scripts: files::Scripts,
    /// `ACTIONS_STEP_DEBUG`.
    step_debug: bool,
    /// The runner's variables for the job, with the forge's address as the job reaches it.
    runner_env: Vec<(String, String)>,
    /// `defaults.run`, evaluated when the job started.
    run_defaults: RunDefaults,
    /// Post steps of actions that ran, in the order they registered (run in reverse).
    posts: Vec<action::PostStep>,
    /// What the `pre` of a step's action saved (`GITHUB_STATE`), by the step's index, for its
    /// `main` and `post`.
    pre_states: BTreeMap<usize, Vec<(String, String)>>,
    /// The actions loaded so far (remote ones fetched once per job).
    actions: load::ActionLoader,
    /// The problem matchers steps added (`::add-matcher::`), newest first.
    matchers: MatcherSet,
}

impl<'r> JobRun<'r> {
    async fn prepare(
        request: &'r JobRequest<'r>,
        label: &'r JobLabel,
        sink: &'r dyn EventSink,
        masker: &mut Masker,
        backend: &dyn Backend,
        control: &JobControl,
    ) -> Result<Self, PrepareError> {
        let started = Instant::now();
        let mut contexts = Object::with_capacity(10);
        contexts.insert("github", Value::object(request.github.clone()));
        contexts.insert("vars", Value::object(request.vars.clone()));
        let mut secrets = Object::with_capacity(request.secrets.len());
        for (name, value) in &request.secrets {
            secrets.insert(name.as_str(), Value::string(value.expose_secret()));
        }
        contexts.insert("secrets", Value::object(secrets));
        contexts.insert("inputs", Value::object(request.inputs.clone()));
        contexts.insert("needs", Value::object(request.needs.clone()));
        contexts.insert(
            "matrix",
            match &request.planned.matrix {
                Some(matrix) => Value::from_json(&serde_json::Value::Object(matrix.clone())),
                None => Value::Null,
            },
        );
        contexts.insert(
            "strategy",
            Value::from_json(&request.planned.strategy.to_json()),
        );

        let enabled = |name: &str| {
            let secret = request.secrets.iter().find(|(k, _)| k == name);
            let var = request.vars.get(name).map(|v| v.to_display_string());
            secret
                .map(|(_, v)| v.expose_secret().to_owned())
                .or(var)
                .is_some_and(|v| v.eq_ignore_ascii_case("true"))
        };
        let step_debug = enabled("ACTIONS_STEP_DEBUG");
        let runner_debug = enabled("ACTIONS_RUNNER_DEBUG");

        // What decides how the job starts is evaluated before it starts: with the paths a
        // backend knows ahead (a container backend's), else without them.
        let ahead = backend.paths_ahead();
        let known = JobPlace {
            request,
            label,
            paths: ahead.as_ref(),
            runner_debug: runner_debug || step_debug,
        };
        known.insert_into(&mut contexts, request.github.clone());
        // Registry credentials may read `env` (GitHub evaluates them after the job's `env`):
        // for a job with containers, the env as known before the start.
        let with_env;
        let before_start = if request.job.container.is_some() || request.job.services.is_some() {
            let env = JobKeys::env(request, &contexts, &request.extra_env)?;
            let mut contexts = contexts.clone();
            contexts.insert("env", Value::object(env_object(&env)));
            with_env = contexts;
            &with_env
        } else {
            &contexts
        };
        let scope = eval::Scope {
            file: request.file,
            contexts: before_start,
            status: Status::Success,
            files: None,
        };
        // Preparing counts inside `timeout-minutes`. Only one that reads `github` or `runner`
        // from a backend that cannot tell its paths ahead waits for the started job (below);
        // the host's preparing (making folders) is bounded by the default meanwhile.
        let timeout_after_start = ahead.is_none()
            && matches!(
                &request.job.timeout_minutes,
                Some(OrExpr::Expr(text))
                    if hearth_workflow::plan::text_reads(&text.value, "github")
                        || hearth_workflow::plan::text_reads(&text.value, "runner")
            );
        let timeout_minutes = if timeout_after_start {
            None
        } else {
            scope.minutes(request.job.timeout_minutes.as_ref())?
        }
        .unwrap_or(DEFAULT_JOB_TIMEOUT_MINUTES);
        let container =
            containers::job_container(&scope, request.job, request.label_image.as_deref())?;
        let services = containers::services(&scope, request.job)?;
        let service_names: Vec<String> = services.iter().map(|(id, _)| id.clone()).collect();
        // Credentials are secrets: a registry's error may quote them.
        for spec in container.iter().chain(services.iter().map(|(_, s)| s)) {
            if let Some(credentials) = &spec.credentials {
                use hearth_backend::ExposeSecret as _;
                masker.add(credentials.password.expose_secret());
            }
        }

        // Preparing counts inside `timeout-minutes` (an image pull may take long) and stops
        // when the job is cancelled.
        let deadline = started + minutes(timeout_minutes);
        let start_cancel = control.cancel.child_token();
        let spec = JobSpec {
            name: label.id.clone(),
            repository: request.repository.clone(),
            bind_repository: request.bind_repository,
            container,
            services,
            owner: request.owner.clone(),
            reach: request.reach.clone(),
            forge_registry: request.forge_registry.clone(),
        };
        if let Some(forge) = &request.forge_registry {
            masker.add(forge.credentials.password.expose_secret());
        }
        let mut setup_log = SetupLines {
            sink,
            label,
            masker,
        };
        let start = backend.start(spec, &mut setup_log, &start_cancel);
        tokio::pin!(start);
        let started_job = tokio::select! {
            started = &mut start => started,
            () = tokio::time::sleep_until(tokio::time::Instant::from_std(deadline)) => {
                // The backend stops and cleans up what it made so far.
                start_cancel.cancel();
                start.await
            }
        };
        let runtime = match started_job {
            Ok(runtime) => runtime,
            Err(e)
                if e.kind() == hearth_backend::ErrorKind::Cancelled
                    && !control.cancel.is_cancelled() =>
            {
                return Err(PrepareError::TimedOut(hearth_expr::format_number(
                    timeout_minutes,
                )))
            }
            Err(e) => return Err(PrepareError::Backend(e)),
        };
        let paths = runtime.paths().clone();

        // The forge's address as the job reaches it (a container's own loopback is not the
        // runner's): in the `github` context and the runner's variables alike.
        let moved: Vec<(String, String)> = request
            .reach
            .iter()
            .map(|reach| (reach.url.clone(), runtime.address(&reach.url)))
            .filter(|(url, seen)| url != seen)
            .collect();
        let relocate = |text: &str| {
            let mut text = text.to_owned();
            for (url, seen) in &moved {
                if text.starts_with(url.as_str()) {
                    text = format!("{seen}{}", &text[url.len()..]);
                }
            }
            text
        };
        let mut runner_env: Vec<(String, String)> = request
            .runner_env
            .iter()
            .map(|(k, v)| (k.clone(), relocate(v)))
            .collect();
        let job_side: Vec<String> = moved
            .iter()
            .filter_map(|(_, seen)| crate::variables::url_host(seen).map(str::to_owned))
            .chain(service_names)
            .collect();
        crate::variables::extend_no_proxy(&mut runner_env, &job_side);
        let mut github = request.github.clone();
        if !moved.is_empty() {
            for key in ["server_url", "api_url"] {
                if let Some(value) = github.get(key).map(|v| v.to_display_string()) {
                    github.insert(key, Value::string(relocate(&value)));
                }
            }
        }
        let place = JobPlace {
            paths: Some(&paths),
            ..known
        };
        place.insert_into(&mut contexts, github);
        let event = request.github.get("event").cloned().unwrap_or_default();
        let event_path = paths.temp.join(files::WORKFLOW_FOLDER).join("event.json");
        let event_json = serde_json::to_vec(&event.to_json()).unwrap_or_default();
        let files = files::StepFiles::new(&paths.temp);
        let made = async {
            let named = write_env_folders(runtime.as_ref(), &paths, &request.env_folders)
                .await
                .map_err(|source| PrepareError::Files {
                    what: "the runner's files for the job (such as its DOCKER_CONFIG)",
                    source,
                })?;
            runner_env.extend(named);
            runtime
                .write_file(&event_path, &event_json, None)
                .await
                .map_err(|source| PrepareError::Files {
                    what: "the event payload",
                    source,
                })?;
            files
                .reset(runtime.as_ref())
                .await
                .map_err(|source| PrepareError::Files {
                    what: "the step files in the job's temp folder",
                    source,
                })
        }
        .await;
        // The rest of the job's keys are evaluated on the started job, as GitHub's runner
        // evaluates them once the workspace is known: `github.workspace` and `runner.temp`
        // are the paths the job's steps see (a container's, in a container job).
        let evaluated = made.and_then(|()| {
            JobKeys::evaluate(request, &contexts, &request.extra_env).map_err(PrepareError::from)
        });
        let keys = match evaluated {
            Ok(keys) => keys,
            Err(e) => {
                report_finish(sink, label, masker, runtime).await;
                return Err(e);
            }
        };
        let mut job = Object::with_capacity(3);
        let containers = runtime.containers();
        if let Some(container) = &containers.container {
            job.insert("container", container_value(container));
        }
        if !containers.services.is_empty() {
            let mut services = Object::with_capacity(containers.services.len());
            for (id, service) in &containers.services {
                services.insert(id.as_str(), container_value(service));
            }
            job.insert("services", Value::object(services));
        }
        // `hashFiles` reads the workspace where the engine can reach it.
        let workspace = runtime
            .host_view(&paths.workspace)
            .and_then(|folder| DirWorkspace::new(folder.as_path()).ok())
            .map(Arc::new);
        let JobKeys {
            env,
            cancel_timeout_minutes,
            run_defaults,
        } = keys;
        // A `timeout-minutes` left for the started job is evaluated now, with
        // `github.workspace` known, counted from when preparing began.
        let (deadline, timeout_minutes) = if timeout_after_start {
            let scope = eval::Scope {
                file: request.file,
                contexts: &contexts,
                status: Status::Success,
                files: None,
            };
            match scope.minutes(request.job.timeout_minutes.as_ref()) {
                Ok(minutes_now) => {
                    let timeout = minutes_now.unwrap_or(DEFAULT_JOB_TIMEOUT_MINUTES);
                    (started + minutes(timeout), timeout)
                }
                Err(e) => {
                    report_finish(sink, label, masker, runtime).await;
                    return Err(e.into());
                }
            }
        } else {
            (deadline, timeout_minutes)
        };
        let state = JobState::new(
            contexts,
            env,
            job,
            request.file,
            Clock {
                deadline,
                timeout_minutes,
                cancel_timeout: minutes(cancel_timeout_minutes),
            },
        );
        Ok(JobRun {
            request,
            runtime,
            sink,
            label,
            masker: masker.clone(),
            state,
            workspace,
            counter: 0,
            files,
            scripts: files::Scripts::new(&paths.temp),
            step_debug,
            runner_env,
            run_defaults,
            posts: Vec::new(),
            pre_states: BTreeMap::new(),
            actions: load::ActionLoader::default(),
            matchers: MatcherSet::default(),
        })
    }

    fn masker_text(&self, text: &str) -> String {
        self.masker.mask_text(text)
    }

    fn log(&self, line: LogLine<'_>) {
        log(self.sink, self.label, None, &self.masker, line);
    }

    async fn run_steps(&mut self, control: &JobControl) -> JobOutcome {
        let steps = &self.request.job.steps;
        // Pre steps, then the main ones, then posts: pres and posts are numbered after the
        // main steps, whose numbers are their places in `steps:` (the forge's step ids).
        let mut index = self.run_pres(steps.len(), control).await;
        for (place, step) in steps.iter().enumerate() {
            self.run_step(place, step, control).await;
        }
        while let Some(post) = self.posts.pop() {
            self.run_post(index, post, control).await;
            index += 1;
        }
        let result = self.state.result();
        let outputs = self.outputs();
        JobOutcome { result, outputs }
    }

    /// Evaluates the job's `outputs:`; values that hold a secret are left out with a warning.
    fn outputs(&self) -> Vec<(String, String)> {
        let Some(map) = &self.request.job.outputs else {
            return Vec::new();
        };
        let contexts = self.state.step_contexts(&env_object(&self.state.env));
        let scope = eval::Scope {
            file: self.request.file,
            contexts: &contexts,
            status: self.state.status(),
            files: None,
        };
        let mut outputs = Vec::with_capacity(map.entries.len());
        for (name, value) in &map.entries {
            match scope.string(value) {
                Ok(value) => {
                    if matches!(
                        self.masker.mask(value.as_bytes()),
                        std::borrow::Cow::Owned(_)
                    ) {
                        self.log(LogLine::Warning(&format!(
                            "Skip output '{}' since it may contain secret.",
                            name.value
                        )));
                    } else {
                        outputs.push((name.value.clone(), value));
                    }
                }
                Err(e) => self.log(LogLine::Error(&e.to_string())),
            }
        }
        outputs
    }

    /// Checks whether the job was cancelled from outside or ran out of time.
    fn check_cancelled(&mut self, control: &JobControl) {
        if self.state.is_cancelled() {
            return;
        }
        if control.cancel.is_cancelled() {
            self.state.cancel();
            self.log(LogLine::Error("The operation was canceled."));
        } else if Instant::now() >= self.state.clock().deadline {
            self.time_out();
        }
    }

    fn time_out(&mut self) {
        if self.state.time_out() {
            self.log(LogLine::Error(&self.state.timed_out_message()));
        }
    }
}

/// Where a job runs, as its `github` and `runner` contexts tell it: the parts the runner adds to
/// what the caller gave.
#[derive(Clone, Copy)]
struct JobPlace<'a> {
    request: &'a JobRequest<'a>,
    label: &'a JobLabel,
    /// The job's paths; `None` before a start whose paths the backend cannot tell ahead.
    paths: Option<&'a hearth_backend::JobPaths>,
    runner_debug: bool,
}

impl JobPlace<'_> {
    /// Puts `github` (given, with `job`, `workspace` and `event_path` added) and `runner` into
    /// `contexts`.
    fn insert_into(&self, contexts: &mut Object, mut github: Object) {
        let info = &self.request.runner;
        let mut runner = Object::with_capacity(8);
        runner.insert("name", Value::string(info.name.as_str()));
        runner.insert("os", Value::string(info.os.as_str()));
        runner.insert("arch", Value::string(info.arch.as_str()));
        if let Some(paths) = self.paths {
            runner.insert("temp", Value::string(paths.temp.as_str()));
            runner.insert("tool_cache", Value::string(paths.tool_cache.as_str()));
        }
        runner.insert("environment", Value::string(info.environment.as_str()));
        // GitHub sets `runner.debug` whenever debug logging is on, step debug included.
        if self.runner_debug {
            runner.insert("debug", Value::string("1"));
        }
        contexts.insert("runner", Value::object(runner));
        github.insert("job", Value::string(self.label.id.as_str()));
        if let Some(paths) = self.paths {
            github.insert("workspace", Value::string(paths.workspace.as_str()));
            let event_path = paths.temp.join(files::WORKFLOW_FOLDER).join("event.json");
            github.insert("event_path", Value::string(event_path.as_str()));
        }
        contexts.insert("github", Value::object(github));
    }
}

/// `defaults.run` of a job, its expressions evaluated: the job's over the workflow's, key by
/// key.
#[derive(Clone, Debug, Default)]
pub(crate) struct RunDefaults {
    pub shell: Option<String>,
    pub working_directory: Option<String>,
}

/// The job's keys GitHub's runner evaluates once the job has started: `env` (the workflow's,
/// then the job's over it), `defaults` (which may read that `env`) and
/// `cancel-timeout-minutes`.
struct JobKeys {
    env: BTreeMap<String, String>,
    cancel_timeout_minutes: f64,
    run_defaults: RunDefaults,
}

impl JobKeys {
    /// The workflow's `env`, then the job's over it, over the runner's `extra_env`.
    fn env(
        request: &JobRequest<'_>,
        contexts: &Object,
        extra_env: &[(String, String)],
    ) -> Result<BTreeMap<String, String>, EvalError> {
        let scope = eval::Scope {
            file: request.file,
            contexts,
            status: Status::Success,
            files: None,
        };
        let mut env: BTreeMap<String, String> = extra_env.iter().cloned().collect();
        env.extend(scope.env(request.workflow.env.as_ref())?);
        env.extend(scope.env(request.job.env.as_ref())?);
        Ok(env)
    }

    fn evaluate(
        request: &JobRequest<'_>,
        contexts: &Object,
        extra_env: &[(String, String)],
    ) -> Result<JobKeys, EvalError> {
        let scope = eval::Scope {
            file: request.file,
            contexts,
            status: Status::Success,
            files: None,
        };
        let env = Self::env(request, contexts, extra_env)?;
        let cancel_timeout_minutes = scope
            .minutes(request.job.cancel_timeout_minutes.as_ref())?
            .unwrap_or(DEFAULT_CANCEL_TIMEOUT_MINUTES);
        let mut with_env = contexts.clone();
        with_env.insert("env", Value::object(env_object(&env)));
        let scope = eval::Scope {
            contexts: &with_env,
            ..scope
        };
        let workflow = scope.run_defaults(request.workflow.defaults.as_ref())?;
        let job = scope.run_defaults(request.job.defaults.as_ref())?;
        Ok(JobKeys {
            env,
            cancel_timeout_minutes,
            run_defaults: RunDefaults {
                shell: job.shell.or(workflow.shell),
                working_directory: job.working_directory.or(workflow.working_directory),
            },
        })
    }
}

/// `job.container` or `job.services.<id>`: `id`, `network`, and a service's `ports`.
fn container_value(container: &hearth_backend::ContainerInfo) -> Value {
    let mut object = Object::with_capacity(3);
    object.insert("id", Value::string(container.id.as_str()));
    object.insert("network", Value::string(container.network.as_str()));
    let mut ports = Object::with_capacity(container.ports.len());
    for (inside, outside) in &container.ports {
        ports.insert(inside.as_str(), Value::string(outside.as_str()));
    }
    object.insert("ports", Value::object(ports));
    Value::object(object)
}

fn minutes(minutes: f64) -> Duration {
    Duration::try_from_secs_f64(minutes.max(0.0) * 60.0).unwrap_or(Duration::MAX)
}

/// Writes the runner's folders for the job under its temp folder; returns the variables that
/// name them.
async fn write_env_folders(
    runtime: &dyn JobRuntime,
    paths: &hearth_backend::JobPaths,
    folders: &[EnvFolder],
) -> Result<Vec<(String, String)>, hearth_backend::BackendError> {
    let mut named = Vec::with_capacity(folders.len());
    for folder in folders {
        let dir = paths.temp.join(&folder.name);
        for (file, contents) in &folder.files {
            runtime
                .write_file(&dir.join(file), contents.expose_secret().as_bytes(), None)
                .await?;
        }
        named.push((folder.env.clone(), dir.as_str().to_owned()));
    }
    Ok(named)
}
