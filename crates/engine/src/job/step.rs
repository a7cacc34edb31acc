//! One step of a job: its `if:`, its environment, running it, and what it leaves behind.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::time::Instant;

use hearth_backend::{BackendError, ContainerRun, ErrorKind, ExecEnd, ExecSpec, JobPath};
use hearth_expr::{Object, Value, WorkspaceFiles};
use hearth_workflow::model::{OrExpr, Step, StepKind, Text};

use super::error::StepError;
use super::eval::Scope;
use super::files::StepFiles;
use super::output::{exec_with_output, StepMatching, StepOutput, StepRun};
use super::state::env_object;
use super::{JobControl, JobRun};
use crate::commands::{
    convert_to_boolean, CommandParser, ParserOptions, ALLOW_UNSECURE_COMMANDS,
    ALLOW_UNSECURE_STOP_COMMAND_TOKENS,
};
use crate::env_files::{self, FileCommand, Newlines};
use crate::shell::Shell;
use crate::variables::step_variables;
use crate::workspace_files::DigestWorkspace;
use hearth_events::{Conclusion, Event, LogLine, StepLabel};

/// What running a step's body gave.
pub(super) struct StepEnd {
    pub outcome: Conclusion,
    pub outputs: Vec<(String, String)>,
}

impl StepEnd {
    pub(super) fn of(outcome: Conclusion) -> Self {
        StepEnd {
            outcome,
            outputs: Vec::new(),
        }
    }

    pub(super) fn failure() -> Self {
        StepEnd::of(Conclusion::Failure)
    }
}

impl<'r> JobRun<'r> {
    /// Runs a step of the job, reporting it as a step of its own.
    pub(super) async fn run_step(&mut self, index: usize, step: &Step, control: &JobControl) {
        self.run_step_as(index, step, control, None).await;
    }

    /// Runs a step; inside a composite action (`parent` set) its lines are logged under the
    /// step that uses the action, and it has no start or end event of its own.
    pub(super) fn run_step_as<'a>(
        &'a mut self,
        index: usize,
        step: &'a Step,
        control: &'a JobControl,
        parent: Option<&'a StepLabel>,
    ) -> Pin<Box<dyn Future<Output = ()> + 'a>> {
        Box::pin(async move {
            self.check_cancelled(control);
            let started = Instant::now();
            let env = env_object(&self.state.current_env());
            let contexts = self.state.step_contexts(&env);
            let workspace = self.workspace.clone();
            let described = match &workspace {
                None if mentions_hash_files(step) => self.described_workspace().await,
                _ => None,
            };
            let files: Option<&dyn WorkspaceFiles> = match (&workspace, &described) {
                (Some(on_disk), _) => Some(on_disk.as_ref()),
                (None, Some(described)) => Some(described),
                (None, None) => None,
            };
            let file = self.state.frame().file.clone();
            let scope = self.scope(&file, &contexts, files);
            let own = StepLabel {
                index,
                id: step.id.as_ref().map(|id| id.value.clone()),
                name: self.display_name(step, &scope),
            };
            let label = parent.unwrap_or(&own);

            // A skipped step has no start, only its end, as a skipped job.
            let should_run = scope.condition(step.condition.as_ref());
            if should_run != Ok(false) {
                match parent {
                    None => self.sink.event(&Event::StepStarted {
                        job: self.label,
                        step: &own,
                    }),
                    Some(parent) => self.step_log(parent, LogLine::Info(&own.name)),
                }
            }
            let (end, continue_on_error) = match should_run {
                Ok(false) => (StepEnd::of(Conclusion::Skipped), false),
                Err(e) => {
                    let message =
                        format!("The step failed because evaluating its 'if' failed: {e}");
                    self.step_log(label, LogLine::Error(&message));
                    (StepEnd::failure(), false)
                }
                Ok(true) => self.run_body(label, step, &scope, control).await,
            };
            let conclusion = self.record_step(step, &end, continue_on_error);
            if parent.is_none() {
                self.sink.event(&Event::StepFinished {
                    job: self.label,
                    step: &own,
                    outcome: end.outcome,
                    conclusion,
                    duration: started.elapsed(),
                });
                self.sink.flush();
            }
        })
    }

    pub(super) fn scope<'s>(
        &self,
        file: &'s str,
        contexts: &'s Object,
        files: Option<&'s dyn WorkspaceFiles>,
    ) -> Scope<'s> {
        Scope {
            file,
            contexts,
            status: self.state.status(),
            files,
        }
    }

    /// The workspace as the backend describes it (its files' digests), for `hashFiles` in a
    /// job whose folders the engine cannot read (a container in a remote daemon); `None`, with
    /// a warning when the backend failed, where it cannot (`hashFiles` then says so).
    async fn described_workspace(&self) -> Option<DigestWorkspace> {
        let workspace = self.runtime.paths().workspace.clone();
        match self.runtime.file_digests(&workspace).await {
            Ok(Some(files)) => Some(DigestWorkspace::new(workspace.as_str(), files)),
            Ok(None) => None,
            Err(e) => {
                let message = format!("Cannot list the workspace's files for hashFiles: {e}");
                self.log(LogLine::Warning(&message));
                None
            }
        }
    }

    /// GitHub's display name: `name:` evaluated, else `Run <first line of the script>` or
    /// `Run <action>`.
    pub(super) fn display_name(&self, step: &Step, scope: &Scope<'_>) -> String {
        if let Some(name) = &step.name {
            if let Ok(name) = scope.string(name) {
                if !name.trim().is_empty() {
                    return self.masker_text(&name);
                }
            }
        }
        let name = default_step_name(step);
        self.masker_text(&name)
    }

    /// A runner message of the step, masked (see [`super::log`]).
    pub(super) fn step_log(&self, step: &StepLabel, line: LogLine<'_>) {
        super::log(self.sink, self.label, Some(step), &self.masker, line);
    }

    /// Runs a step whose `if:` held; also says whether `continue-on-error` was on.
    async fn run_body(
        &mut self,
        label: &StepLabel,
        step: &Step,
        scope: &Scope<'_>,
        control: &JobControl,
    ) -> (StepEnd, bool) {
        // The step's own env goes over the job's, and its other expressions see it.
        let step_env = match scope.env(step.env.as_ref()) {
            Ok(env) => env,
            Err(e) => {
                self.step_log(label, LogLine::Error(&e.to_string()));
                return (StepEnd::failure(), false);
            }
        };
        let mut env = self.state.current_env();
        env.extend(step_env);
        let contexts = self.state.step_contexts(&env_object(&env));
        let scope = Scope {
            contexts: &contexts,
            ..*scope
        };
        let end = match &step.kind {
            StepKind::Run {
                run,
                shell,
                working_directory,
            } => {
                let script = Script {
                    run,
                    shell: shell.as_ref(),
                    working_directory: working_directory.as_ref(),
                };
                self.run_script(label, step, &script, &env, &scope, control)
                    .await
            }
            StepKind::Uses { uses, with }
                if self.request.repository.is_some()
                    && is_own_checkout(&uses.value, with.as_ref()) =>
            {
                // As act does: the workspace already is a copy of the local repository. (A
                // job without one, as from a forge, must really check out.)
                self.step_log(
                    label,
                    LogLine::Info(
                        "the workspace already holds the repository; nothing to check out",
                    ),
                );
                StepEnd::of(Conclusion::Success)
            }
            StepKind::Uses { uses, with } => {
                self.run_action(label, step, uses, with.as_ref(), &env, &scope, control)
                    .await
            }
            _ => {
                self.step_log(
                    label,
                    LogLine::Error("this kind of step (wait, cancel, parallel) is not supported"),
                );
                StepEnd::failure()
            }
        };
        // As GitHub's runner: asked only once the step failed; an expression that fails is
        // said, and the step stays failed.
        let continue_on_error = end.outcome == Conclusion::Failure
            && match scope.flag(step.continue_on_error.as_ref()) {
                Ok(flag) => flag,
                Err(e) => {
                    self.step_log(
                        label,
                        LogLine::Error(
                            "The step failed and an error occurred when attempting to determine \
                             whether to continue on error.",
                        ),
                    );
                    self.step_log(label, LogLine::Error(&e.to_string()));
                    false
                }
            };
        (end, continue_on_error)
    }

    /// Applies a step's end to the job (or composite action) status and to `steps.<id>`;
    /// returns its conclusion.
    fn record_step(&mut self, step: &Step, end: &StepEnd, continue_on_error: bool) -> Conclusion {
        let id = step.id.as_ref().map(|id| id.value.as_str());
        self.state
            .record_step(id, end.outcome, &end.outputs, continue_on_error)
    }

    /// `GITHUB_ACTION`: the step's id, else `__run` numbered on repeats (`__run_2`), as GitHub.
    fn action_id(&mut self, step: &Step) -> String {
        if let Some(id) = &step.id {
            return id.value.clone();
        }
        let base = match &step.kind {
            StepKind::Uses { uses, .. } => {
                let name: String = uses
                    .value
                    .split('@')
                    .next()
                    .unwrap_or_default()
                    .chars()
                    .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                    .collect();
                format!("__{name}")
            }
            _ => "__run".to_owned(),
        };
        self.state.action_id(base)
    }

    async fn run_script(
        &mut self,
        label: &StepLabel,
        step: &Step,
        script: &Script<'_>,
        env: &BTreeMap<String, String>,
        scope: &Scope<'_>,
        control: &JobControl,
    ) -> StepEnd {
        match self.prepare_script(step, script, env, scope).await {
            Ok(prepared) => {
                let (end, _state) = self
                    .exec_prepared(label, step, prepared, env, scope, control)
                    .await;
                end
            }
            Err(e) => {
                self.step_log(label, LogLine::Error(&e.to_string()));
                StepEnd::failure()
            }
        }
    }

    /// Creates the step's files and works out its process environment: the base, the step's
    /// env (and `extra`, e.g. `INPUT_*`), PATH with `GITHUB_PATH` in front, then the
    /// `GITHUB_*`/`RUNNER_*` variables, which a workflow cannot override; `action_path` sets
    /// `GITHUB_ACTION_PATH`'s source for an action's `post` (which runs as a step of the job).
    /// Returns the files, the environment and the PATH.
    pub(super) async fn step_process(
        &mut self,
        step: &Step,
        env: &BTreeMap<String, String>,
        extra: &[(String, String)],
        action_path: Option<&str>,
    ) -> Result<(StepFiles, BTreeMap<String, String>, String), StepError> {
        self.step_environment(step, env, extra, action_path, true)
            .await
    }

    /// [`Self::step_process`]'s work; without `in_job` (a step in a container of its own) the
    /// runtime's base environment and PATH are left out: the step's image has its own.
    pub(super) async fn step_environment(
        &mut self,
        step: &Step,
        env: &BTreeMap<String, String>,
        extra: &[(String, String)],
        action_path: Option<&str>,
        in_job: bool,
    ) -> Result<(StepFiles, BTreeMap<String, String>, String), StepError> {
        self.counter += 1;
        self.files
            .reset(self.runtime.as_ref())
            .await
            .map_err(|source| StepError::Backend {
                what: "empty the step's files in the job's temp folder",
                source,
            })?;
        let files = self.files.clone();
        let mut process_env: BTreeMap<String, String> = match in_job {
            true => self.runtime.base_env().iter().cloned().collect(),
            false => BTreeMap::new(),
        };
        process_env.extend(self.runner_env.iter().cloned());
        process_env.extend(env.iter().map(|(k, v)| (k.clone(), v.clone())));
        process_env.extend(extra.iter().cloned());
        let path = match in_job {
            true => self
                .state
                .path
                .prepend_to(process_env.get("PATH").map_or("", String::as_str), ':'),
            false => String::new(),
        };
        if !path.is_empty() {
            process_env.insert("PATH".to_owned(), path.clone());
        }
        let mut github = self.state.github();
        github.insert("action", Value::string(self.action_id(step)));
        if let Some(action_path) = action_path {
            github.insert("action_path", Value::string(action_path));
        }
        for (key, path) in files.context_entries() {
            github.insert(key, Value::string(path));
        }
        let runner = self.state.runner();
        process_env.extend(step_variables(&github, &runner));
        Ok((files, process_env, path))
    }

    /// Writes the script and works out its command line, environment and folder.
    async fn prepare_script(
        &mut self,
        step: &Step,
        script: &Script<'_>,
        env: &BTreeMap<String, String>,
        scope: &Scope<'_>,
    ) -> Result<Prepared, StepError> {
        let run = scope.string(script.run)?;
        let defaults = self.run_defaults();
        let shell = match script.shell {
            Some(text) => Some(scope.string(text)?),
            None => defaults.shell,
        };
        let paths = self.runtime.paths().clone();
        let working_directory = match script.working_directory {
            Some(text) => Some(scope.string(text)?),
            None => defaults.working_directory,
        };
        let working_directory = match working_directory {
            Some(folder) => paths.workspace.join(&folder),
            None => paths.workspace.clone(),
        };
        let (files, process_env, path) = self.step_process(step, env, &[], None).await?;

        let runtime = &self.runtime;
        // A runtime that cannot look (a container) answers `None`, taken as "not there": the
        // default shell is then `sh`, as `Shell::resolve` without a lookup picks. Asking only
        // when needed spares a search of PATH per step.
        let find = |program: &str| runtime.has_program(program, &path).unwrap_or(false);
        let shell = Shell::resolve(shell.as_deref(), Some(&find))?;
        let script_name = format!("step_{}{}", self.counter, shell.extension());
        let argv = shell.argv(paths.temp.join(&script_name).as_str())?;
        let script_path = self
            .scripts
            .write(
                self.runtime.as_ref(),
                &script_name,
                shell.script(&run).as_bytes(),
            )
            .await
            .map_err(|source| StepError::Backend {
                what: "write the step's script",
                source,
            })?;

        Ok(Prepared {
            files,
            launch: Launch::Process {
                argv,
                env: process_env.into_iter().collect(),
                working_directory,
            },
            script_path: Some(script_path),
        })
    }

    /// `defaults.run` (evaluated when the job started); none inside an action.
    fn run_defaults(&self) -> super::RunDefaults {
        if self.state.frame().action_path.is_some() {
            return super::RunDefaults::default();
        }
        self.run_defaults.clone()
    }

    /// Runs a prepared process to its end and applies what it left: outputs, env, path and
    /// the step summary. Returns the step's end and the state it saved (`GITHUB_STATE`,
    /// `save-state`), for the action's later stages.
    pub(super) async fn exec_prepared(
        &mut self,
        label: &StepLabel,
        step: &Step,
        prepared: Prepared,
        env: &BTreeMap<String, String>,
        scope: &Scope<'_>,
        control: &JobControl,
    ) -> (StepEnd, Vec<(String, String)>) {
        let step_timeout = match scope.minutes(step.timeout_minutes.as_ref()) {
            Ok(minutes) => minutes.map(super::minutes),
            Err(e) => {
                self.step_log(label, LogLine::Error(&e.to_string()));
                return (StepEnd::failure(), Vec::new());
            }
        };
        // After cancellation, steps that still run get `cancel-timeout-minutes` and stop only
        // on the force token; before it, the job's own deadline bounds them.
        let clock = self.state.clock();
        let (limit, cancel) = if self.state.is_cancelled() {
            (clock.cancel_timeout, &control.force)
        } else {
            (
                clock.deadline.saturating_duration_since(Instant::now()),
                &control.cancel,
            )
        };
        let job_limited = step_timeout.is_none_or(|t| limit < t);
        let timeout = if job_limited {
            limit
        } else {
            step_timeout.unwrap_or(limit)
        };

        let enabled = |name: &str| env.get(name).is_some_and(|v| convert_to_boolean(v));
        let parser = CommandParser::new(ParserOptions {
            echo: self.step_debug,
            allow_unsecure_commands: enabled(ALLOW_UNSECURE_COMMANDS),
            allow_unsecure_stop_tokens: enabled(ALLOW_UNSECURE_STOP_COMMAND_TOKENS),
        });
        let sink = self.sink;
        let job = self.label;
        let debug = self.step_debug;
        let runtime = self.runtime.as_ref();
        let matching = StepMatching {
            job: &mut self.matchers,
            workspace: runtime.paths().workspace.as_str(),
        };
        let output = StepOutput::new(sink, job, label, &mut self.masker, parser, debug, matching);
        let (run, in_container) = match prepared.launch {
            Launch::Process {
                argv,
                env,
                working_directory,
            } => {
                let spec = ExecSpec {
                    argv,
                    env,
                    working_dir: working_directory,
                    timeout: Some(timeout),
                };
                (StepRun::Exec(spec), false)
            }
            Launch::Container(mut run) => {
                run.timeout = Some(timeout);
                (StepRun::Container(run), true)
            }
        };
        let (ended, mut output) = exec_with_output(runtime, run, output, cancel).await;
        let ended = ended.map_err(|e| match e.kind() {
            // Said as what the step needs, not only what the backend lacks.
            ErrorKind::Unsupported if in_container => BackendError::Unsupported(format!(
                "this step runs in a container of its own (a Docker action or a `docker://` \
                 image): {e}"
            )),
            _ => e,
        });
        let effects = std::mem::take(&mut output.effects);
        drop(output);
        if let Some(script) = prepared.script_path {
            self.scripts.done(script);
        }

        let mut outcome = match ended {
            Ok(ExecEnd::Exited(0)) => Conclusion::Success,
            Ok(ExecEnd::Exited(code)) => {
                self.step_log(
                    label,
                    LogLine::Error(&format!("Process completed with exit code {code}.")),
                );
                Conclusion::Failure
            }
            Ok(ExecEnd::Signalled(signal)) => {
                self.step_log(
                    label,
                    LogLine::Error(&format!("Process was killed by signal {signal}.")),
                );
                Conclusion::Failure
            }
            Ok(ExecEnd::TimedOut) if job_limited && !self.state.is_cancelled() => {
                self.time_out();
                Conclusion::Cancelled
            }
            Ok(ExecEnd::TimedOut) => {
                self.step_log(label, LogLine::Error("The action has timed out."));
                Conclusion::Failure
            }
            Ok(ExecEnd::Cancelled) => {
                self.step_log(label, LogLine::Error("The operation was canceled."));
                Conclusion::Cancelled
            }
            Err(e) => {
                self.step_log(label, LogLine::Error(&e.to_string()));
                Conclusion::Failure
            }
        };
        if effects.failed && outcome == Conclusion::Success {
            outcome = Conclusion::Failure;
        }
        let mut outputs = effects.outputs;
        let mut state = effects.state;
        for (name, value) in effects.env {
            self.state.env.insert(name, value);
        }
        for path in &effects.paths {
            self.state.path.add(path);
        }
        if !self
            .apply_files(label, &prepared.files, &mut outputs, &mut state)
            .await
            && outcome == Conclusion::Success
        {
            outcome = Conclusion::Failure;
        }
        (StepEnd { outcome, outputs }, state)
    }

    /// Applies what the step wrote to its files; `false` when one was malformed (the step
    /// then fails, as on GitHub, after the entries before the error were applied).
    async fn apply_files(
        &mut self,
        label: &StepLabel,
        files: &StepFiles,
        outputs: &mut Vec<(String, String)>,
        state: &mut Vec<(String, String)>,
    ) -> bool {
        let mut ok = true;
        let mut fail = |this: &Self, kind: FileCommand, message: String| {
            this.step_log(label, LogLine::Error(&kind.unable_to_process()));
            this.step_log(label, LogLine::Error(&message));
            ok = false;
        };

        match files.read(self.runtime.as_ref(), FileCommand::Env).await {
            Ok(bytes) => {
                let updates = env_files::parse_env(&env_files::decode(&bytes), Newlines::Lf);
                for pair in updates.set {
                    self.state.env.insert(pair.name, pair.value);
                }
                for blocked in updates.blocked {
                    self.step_log(label, LogLine::Error(&blocked.to_string()));
                }
                if let Some(error) = updates.error {
                    fail(self, FileCommand::Env, error.to_string());
                }
            }
            Err(e) => fail(self, FileCommand::Env, e.to_string()),
        }
        match files.read(self.runtime.as_ref(), FileCommand::Path).await {
            Ok(bytes) => self.state.path.add_file(&env_files::decode(&bytes)),
            Err(e) => fail(self, FileCommand::Path, e.to_string()),
        }
        match files.read(self.runtime.as_ref(), FileCommand::Output).await {
            Ok(bytes) => {
                let values = env_files::parse_key_values(&env_files::decode(&bytes), Newlines::Lf);
                outputs.extend(values.pairs.into_iter().map(|p| (p.name, p.value)));
                if let Some(error) = values.error {
                    fail(self, FileCommand::Output, error.to_string());
                }
            }
            Err(e) => fail(self, FileCommand::Output, e.to_string()),
        }
        match files.read(self.runtime.as_ref(), FileCommand::State).await {
            Ok(bytes) => {
                let values = env_files::parse_key_values(&env_files::decode(&bytes), Newlines::Lf);
                state.extend(values.pairs.into_iter().map(|p| (p.name, p.value)));
                if let Some(error) = values.error {
                    fail(self, FileCommand::State, error.to_string());
                }
            }
            Err(e) => fail(self, FileCommand::State, e.to_string()),
        }
        self.step_summary(label, files).await;
        ok
    }

    /// Sends the step summary, masked, when there is one and it is within GitHub's limit.
    async fn step_summary(&self, label: &StepLabel, files: &StepFiles) {
        let bytes = match files
            .read(self.runtime.as_ref(), FileCommand::StepSummary)
            .await
        {
            Ok(bytes) => bytes,
            // Larger than the engine reads at all: over GitHub's limit in any case.
            Err(BackendError::FileTooLarge { limit, .. }) => {
                let too_large = env_files::StepSummaryTooLarge { size: limit + 1 };
                self.step_log(label, LogLine::Error(&too_large.to_string()));
                return;
            }
            Err(e) => {
                let message = format!("cannot read the step summary: {e}");
                self.step_log(label, LogLine::Error(&self.masker_text(&message)));
                return;
            }
        };
        match env_files::check_step_summary(bytes.len() as u64) {
            Ok(env_files::StepSummary::Empty) => {}
            Ok(env_files::StepSummary::Upload) => {
                let markdown = self.masker_text(&env_files::decode(&bytes));
                self.sink.event(&Event::StepSummary {
                    job: self.label,
                    step: label,
                    markdown: &markdown,
                });
            }
            Err(too_large) => self.step_log(label, LogLine::Error(&too_large.to_string())),
        }
    }
}

/// A `run:` step's parts.
struct Script<'a> {
    run: &'a Text,
    shell: Option<&'a Text>,
    working_directory: Option<&'a Text>,
}

/// A process ready to run.
pub(super) struct Prepared {
    pub files: StepFiles,
    pub launch: Launch,
    /// A script file written for it, handed back to the job's scripts afterwards.
    pub script_path: Option<JobPath>,
}

/// How a prepared step runs.
pub(super) enum Launch {
    /// A process in the job, through the runtime's `exec` (its timeout set when it starts).
    Process {
        argv: Vec<String>,
        env: Vec<(String, String)>,
        working_directory: JobPath,
    },
    /// A container of its own, through the runtime's `run_container`.
    Container(ContainerRun),
}

/// `actions/checkout` (also by a full URL, `https://host/actions/checkout@v4`) of the
/// repository itself (no `repository:` input), which a job whose workspace was made from the
/// repository (`hearth exec`) skips as act does.
pub(super) fn is_own_checkout(uses: &str, with: Option<&hearth_workflow::model::Env>) -> bool {
    let checkout = hearth_workflow::model::RemoteActionRef::parse(uses).is_ok_and(|action| {
        action.owner.eq_ignore_ascii_case("actions")
            && action.repo.eq_ignore_ascii_case("checkout")
            && action.path.is_empty()
    });
    let other_repository = match with {
        Some(OrExpr::Value(map)) => map.get("repository").is_some(),
        Some(OrExpr::Expr(_)) => true,
        None => false,
    };
    checkout && !other_repository
}

/// A step's name when it has no `name:`, as GitHub shows it: `Run <first line of the script>`
/// or `Run <action>`.
pub fn default_step_name(step: &Step) -> String {
    match &step.kind {
        StepKind::Run { run, .. } => {
            let first = run.value.lines().map(str::trim).find(|l| !l.is_empty());
            format!("Run {}", first.unwrap_or_default())
        }
        StepKind::Uses { uses, .. } => format!("Run {}", uses.value),
        StepKind::Wait { .. } => "Wait".to_owned(),
        StepKind::WaitAll => "Wait for all".to_owned(),
        StepKind::Cancel { .. } => "Cancel".to_owned(),
        StepKind::Parallel { .. } => "Parallel".to_owned(),
    }
}

/// Whether any of the step's texts calls `hashFiles` (function names are case-insensitive), so
/// that a backend whose workspace the engine cannot read is asked for its files only then.
/// Matching a mention that is not a call (in a script's text) costs one listing, no more.
fn mentions_hash_files(step: &Step) -> bool {
    format!("{step:?}")
        .to_ascii_lowercase()
        .contains("hashfiles")
}
