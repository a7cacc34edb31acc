//! `uses: ./path` and `uses: owner/repo@ref` (fetched through the job's `ActionSource`):
//! composite actions (their steps run under the
//! using step, nested as deep as they go), JavaScript actions (`nodeNN`, run with the
//! machine's `node`, with `pre`, `main` and `post` sharing state) and Docker actions (run in
//! a container of their own, `container_step.rs`, with `pre-entrypoint`, the main
//! entrypoint and `post-entrypoint` as JavaScript actions' stages); and `uses: docker://`.
//!
//! As on GitHub, a remote JavaScript action's `pre` runs when the job starts, before the first
//! step, under `pre-if` (default `always()`), and what it saves reaches `main` and `post`; a
//! local action's `pre` does not run (the action is not there when the job starts; GitHub's
//! runner warns and skips it); `post` runs when the job's steps are done, in reverse order of
//! registration, under `post-if` (default `always()`). `required`
//! inputs are not enforced — GitHub's runner does not either (`@actions/core` does, inside the
//! action).

use std::collections::BTreeMap;
use std::time::Instant;

use hearth_backend::{JobPath, NodeCommand};
use hearth_expr::{Object, Value};
use hearth_workflow::model::{Action, Env, Runs, Step, StepKind, Text};

use super::container_step::{docker_stage, ContainerStep, DockerStage, Stage};
use super::error::ActionError;
use super::eval::Scope;
use super::load::Loaded;
use super::remote::RemoteAction;
use super::state::{env_object, Frame};
use super::step::{Launch, Prepared, StepEnd};
use super::{JobControl, JobRun};
use hearth_events::{Conclusion, Event, LogLine, StepLabel};

/// How deep composite actions may nest before Hearth stops (an action using itself).
const MAX_DEPTH: usize = 10;

/// A JavaScript or Docker action's `post`, waiting for the job's steps to end.
pub(super) struct PostStep {
    /// `Post <step name>`.
    name: String,
    /// The step that used the action (for its id and `timeout-minutes`).
    step: Step,
    /// `post-if`; none means `always()`.
    condition: Option<Text>,
    /// The action file, for errors in `post-if`.
    file: String,
    run: PostRun,
    /// The step's env when `main` ran.
    env: BTreeMap<String, String>,
    /// `INPUT_*`, `STATE_*` and `GITHUB_ACTION_PATH` (a Docker action's env instead of the
    /// last).
    extra: Vec<(String, String)>,
}

/// What a `post` runs.
enum PostRun {
    /// `node <script>`, with the action's folder as `GITHUB_ACTION_PATH`.
    Node {
        argv: Vec<String>,
        action_path: String,
    },
    /// A Docker action's `post-entrypoint`.
    Container(ContainerStep),
}

/// The `pre` an action has.
enum Pre<'a> {
    Node(&'a str),
    Container,
}

impl JobRun<'_> {
    /// Runs the `pre` of each JavaScript action from another repository that the job's steps
    /// use, before the first step, as GitHub's runner does while it sets the job up (under
    /// `pre-if`, default `always()`; what it saves goes to the action's `main` and `post`).
    /// They are numbered from `index`; returns the next free number.
    pub(super) async fn run_pres(&mut self, mut index: usize, control: &JobControl) -> usize {
        let request = self.request;
        for (place, step) in request.job.steps.iter().enumerate() {
            let StepKind::Uses { uses, with } = &step.kind else {
                continue;
            };
            let skipped_checkout = request.repository.is_some()
                && super::step::is_own_checkout(&uses.value, with.as_ref());
            if RemoteAction::parse(&uses.value).is_none() || skipped_checkout {
                continue;
            }
            // An action that cannot be had fails its own step, with the reason.
            let Ok(loaded) = self.load_action(&uses.value, control).await else {
                continue;
            };
            let (pre, pre_if) = match &loaded.action.runs {
                Runs::Node {
                    pre: Some(pre),
                    pre_if,
                    ..
                } => (Pre::Node(&pre.value), pre_if),
                Runs::Docker {
                    pre_entrypoint: Some(_),
                    pre_if,
                    ..
                } => (Pre::Container, pre_if),
                _ => continue,
            };
            self.check_cancelled(control);
            let started = Instant::now();
            let job_contexts = self
                .state
                .step_contexts(&env_object(&self.state.current_env()));
            let file = self.state.frame().file.clone();
            let job_scope = self.scope(&file, &job_contexts, None);
            let label = StepLabel {
                index,
                id: None,
                name: format!("Pre {}", self.display_name(step, &job_scope)),
            };
            index += 1;
            let action_scope = self.scope(&loaded.file, &job_contexts, None);
            let runs = match pre_if {
                Some(condition) => action_scope.condition(Some(condition)),
                None => Ok(true),
            };
            let outcome = match self.begin_aside_step(&label, &runs) {
                Some(outcome) => outcome,
                None => {
                    self.run_pre(
                        &label,
                        place,
                        step,
                        with.as_ref(),
                        &loaded,
                        pre,
                        &job_scope,
                        control,
                    )
                    .await
                }
            };
            self.end_aside_step(&label, outcome, started);
        }
        index
    }

    /// Runs one `pre` script with the step's env and inputs as they are when the job starts.
    #[allow(clippy::too_many_arguments)]
    async fn run_pre(
        &mut self,
        label: &StepLabel,
        place: usize,
        step: &Step,
        with: Option<&Env>,
        loaded: &Loaded,
        pre: Pre<'_>,
        scope: &Scope<'_>,
        control: &JobControl,
    ) -> Conclusion {
        let mut env = self.state.current_env();
        match scope.env(step.env.as_ref()) {
            Ok(step_env) => env.extend(step_env),
            Err(e) => {
                self.step_log(label, LogLine::Error(&e.to_string()));
                return Conclusion::Failure;
            }
        }
        let inputs = match self.action_inputs(label, &loaded.action, with, scope) {
            Ok(inputs) => inputs,
            Err(e) => {
                self.step_log(label, LogLine::Error(&e.to_string()));
                return Conclusion::Failure;
            }
        };
        let script = match pre {
            Pre::Node(script) => script,
            Pre::Container => {
                let stage = docker_stage(loaded, &inputs, scope, Stage::Pre);
                let (end, saved) = match stage {
                    Ok(Some(DockerStage { container, extra })) => {
                        self.run_container_step(
                            label, step, &container, &env, &extra, scope, control,
                        )
                        .await
                    }
                    Ok(None) => (StepEnd::failure(), Vec::new()),
                    Err(e) => {
                        self.step_log(label, LogLine::Error(&e.to_string()));
                        (StepEnd::failure(), Vec::new())
                    }
                };
                self.pre_states.insert(place, saved);
                return end.outcome;
            }
        };
        let Runs::Node { version, .. } = &loaded.action.runs else {
            return Conclusion::Failure;
        };
        let Some(node) = self.node_for(label, *version).await else {
            return Conclusion::Failure;
        };
        let mut extra: Vec<(String, String)> = inputs
            .iter()
            .map(|(name, value)| (input_variable(name), value.to_display_string()))
            .collect();
        extra.push((
            "GITHUB_ACTION_PATH".to_owned(),
            loaded.dir.as_str().to_owned(),
        ));
        let (end, saved) = self
            .run_node_script(
                label,
                step,
                &node,
                &loaded.dir,
                script,
                &env,
                &extra,
                scope,
                control,
            )
            .await;
        self.pre_states.insert(place, saved);
        end.outcome
    }

    /// Runs the action a `uses:` step names.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn run_action(
        &mut self,
        label: &StepLabel,
        step: &Step,
        uses: &Text,
        with: Option<&Env>,
        env: &BTreeMap<String, String>,
        scope: &Scope<'_>,
        control: &JobControl,
    ) -> StepEnd {
        if let Some(image) = uses.value.strip_prefix("docker://") {
            return self
                .run_image_step(label, step, image, with, env, scope, control)
                .await;
        }
        let loaded = match self.load_action(&uses.value, control).await {
            Ok(loaded) => loaded,
            Err(e) => {
                self.step_log(label, LogLine::Error(&e.to_string()));
                return StepEnd::failure();
            }
        };
        let inputs = match self.action_inputs(label, &loaded.action, with, scope) {
            Ok(inputs) => inputs,
            Err(e) => {
                self.step_log(label, LogLine::Error(&e.to_string()));
                return StepEnd::failure();
            }
        };
        match &loaded.action.runs {
            Runs::Composite { steps } => {
                self.run_composite(label, &loaded, steps, inputs, env, control)
                    .await
            }
            Runs::Node { .. } => {
                self.run_node(label, step, &loaded, &inputs, env, scope, control)
                    .await
            }
            Runs::Docker { .. } => {
                self.run_docker_action(label, step, &loaded, &inputs, env, scope, control)
                    .await
            }
        }
    }

    /// Loads the action `uses` names (see `load.rs`), fetching a remote one at most once per
    /// job; stopped as a step is: by the cancel token, or once the job is cancelled, by the
    /// force token.
    async fn load_action(
        &mut self,
        uses: &str,
        control: &JobControl,
    ) -> Result<Loaded, ActionError> {
        let cancel = if self.state.is_cancelled() {
            &control.force
        } else {
            &control.cancel
        };
        self.actions
            .load(
                uses,
                self.runtime.as_ref(),
                self.request.actions.as_deref(),
                cancel,
            )
            .await
    }

    /// The `inputs` context: `with:` values, else the input's default, with GitHub's warnings
    /// for unexpected and deprecated inputs.
    fn action_inputs(
        &self,
        label: &StepLabel,
        action: &Action,
        with: Option<&Env>,
        scope: &Scope<'_>,
    ) -> Result<Object, ActionError> {
        let given = scope.env(with)?;
        // A Docker action takes `entrypoint` and `args` besides its inputs.
        let docker = matches!(action.runs, Runs::Docker { .. });
        let declared = |name: &str| {
            action
                .inputs
                .iter()
                .any(|i| i.name.value.eq_ignore_ascii_case(name))
                || (docker
                    && (name.eq_ignore_ascii_case("entrypoint")
                        || name.eq_ignore_ascii_case("args")))
        };
        let unexpected: Vec<&str> = given
            .iter()
            .map(|(k, _)| k.as_str())
            .filter(|k| !declared(k))
            .collect();
        if !unexpected.is_empty() {
            let valid: Vec<String> = action
                .inputs
                .iter()
                .map(|i| format!("'{}'", i.name.value))
                .collect();
            self.step_log(
                label,
                LogLine::Warning(&format!(
                    "Unexpected input(s) '{}', valid inputs are [{}]",
                    unexpected.join("', '"),
                    valid.join(", ")
                )),
            );
        }
        let mut inputs = Object::with_capacity(action.inputs.len() + unexpected.len());
        for input in &action.inputs {
            let name = input.name.value.as_str();
            let value = match given.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)) {
                Some((_, value)) => {
                    if let Some(message) = &input.deprecation_message {
                        self.step_log(
                            label,
                            LogLine::Warning(&format!(
                                "Input '{name}' has been deprecated with message: {}",
                                message.value
                            )),
                        );
                    }
                    value.clone()
                }
                None => match &input.default {
                    Some(default) => scope.string(default)?,
                    None => String::new(),
                },
            };
            inputs.insert(name, Value::string(value));
        }
        // Undeclared inputs still reach the action, as on GitHub.
        for (name, value) in &given {
            if !declared(name) {
                inputs.insert(name.as_str(), Value::string(value.as_str()));
            }
        }
        Ok(inputs)
    }

    /// Runs a composite action's steps under the using step, then evaluates its outputs.
    async fn run_composite(
        &mut self,
        label: &StepLabel,
        loaded: &Loaded,
        steps: &[Step],
        inputs: Object,
        env: &BTreeMap<String, String>,
        control: &JobControl,
    ) -> StepEnd {
        if self.state.depth() >= MAX_DEPTH {
            let message = format!(
                "composite actions nest more than {MAX_DEPTH} deep at {}; does an action use itself?",
                loaded.file
            );
            self.step_log(label, LogLine::Error(&message));
            return StepEnd::failure();
        }
        self.state.enter(Frame::action(
            loaded.file.clone(),
            env.clone(),
            loaded.dir.as_str().to_owned(),
            inputs,
        ));
        for (index, step) in steps.iter().enumerate() {
            self.run_step_as(index, step, control, Some(label)).await;
        }
        // The action's outputs read its own `steps`, so they are evaluated before it ends.
        let outputs = self.composite_outputs(label, &loaded.action);
        let failed = self.state.leave().failed;
        let outcome = if failed {
            Conclusion::Failure
        } else if self.state.is_cancelled() {
            Conclusion::Cancelled
        } else {
            Conclusion::Success
        };
        StepEnd { outcome, outputs }
    }

    /// A composite action's `outputs`, evaluated against its steps.
    fn composite_outputs(&self, label: &StepLabel, action: &Action) -> Vec<(String, String)> {
        let contexts = self
            .state
            .step_contexts(&env_object(&self.state.current_env()));
        let file = self.state.frame().file.clone();
        let scope = self.scope(&file, &contexts, None);
        let mut outputs = Vec::with_capacity(action.outputs.len());
        for output in &action.outputs {
            let Some(value) = &output.value else {
                continue;
            };
            match scope.string(value) {
                Ok(value) => outputs.push((output.name.value.clone(), value)),
                Err(e) => self.step_log(label, LogLine::Error(&e.to_string())),
            }
        }
        outputs
    }

    /// Runs a JavaScript action's `pre` (under `pre-if`) and `main`, and registers its `post`.
    #[allow(clippy::too_many_arguments)]
    async fn run_node(
        &mut self,
        label: &StepLabel,
        step: &Step,
        loaded: &Loaded,
        inputs: &Object,
        env: &BTreeMap<String, String>,
        scope: &Scope<'_>,
        control: &JobControl,
    ) -> StepEnd {
        let Runs::Node {
            version,
            main,
            pre,
            post,
            post_if,
            ..
        } = &loaded.action.runs
        else {
            return StepEnd::failure();
        };
        let Some(node) = self.node_for(label, *version).await else {
            return StepEnd::failure();
        };
        let action_path = loaded.dir.as_str().to_owned();
        let mut extra: Vec<(String, String)> = inputs
            .iter()
            .map(|(name, value)| (input_variable(name), value.to_display_string()))
            .collect();
        extra.push(("GITHUB_ACTION_PATH".to_owned(), action_path.clone()));
        // A remote action's `pre` ran when the job started (`run_pres`); its state carries on.
        let pre_state = match loaded.remote {
            true => self.pre_states.remove(&label.index),
            false => None,
        };
        if pre.is_some() && pre_state.is_none() {
            let message = if loaded.remote {
                // Used inside a composite action: GitHub runs those `pre`s, Hearth not yet.
                format!(
                    "`pre` of the action {} is not run inside a composite action",
                    loaded.file
                )
            } else {
                format!(
                    "`pre` execution is not supported for local action from '{}'",
                    loaded.dir
                )
            };
            self.step_log(label, LogLine::Warning(&message));
        }
        let mut state = pre_state.unwrap_or_default();
        let with_state = |state: &[(String, String)]| {
            let mut all = extra.clone();
            all.extend(state.iter().map(|(k, v)| (format!("STATE_{k}"), v.clone())));
            all
        };
        let (end, saved) = self
            .run_node_script(
                label,
                step,
                &node,
                &loaded.dir,
                &main.value,
                env,
                &with_state(&state),
                scope,
                control,
            )
            .await;
        state.extend(saved);
        if let Some(post) = post {
            let dir = loaded.dir.join(&post.value);
            self.posts.push(PostStep {
                name: format!("Post {}", label.name),
                step: step.clone(),
                condition: post_if.clone(),
                file: loaded.file.clone(),
                run: PostRun::Node {
                    argv: node
                        .argv
                        .iter()
                        .cloned()
                        .chain([dir.as_str().to_owned()])
                        .collect(),
                    action_path,
                },
                env: env.clone(),
                extra: with_state(&state),
            });
        }
        end
    }

    /// Runs a Docker action's main stage in its container (after its `pre-entrypoint`, run
    /// when the job started for a remote action), and registers its `post-entrypoint`.
    #[allow(clippy::too_many_arguments)]
    async fn run_docker_action(
        &mut self,
        label: &StepLabel,
        step: &Step,
        loaded: &Loaded,
        inputs: &Object,
        env: &BTreeMap<String, String>,
        scope: &Scope<'_>,
        control: &JobControl,
    ) -> StepEnd {
        let Runs::Docker {
            pre_entrypoint,
            post_if,
            ..
        } = &loaded.action.runs
        else {
            return StepEnd::failure();
        };
        let pre_state = match loaded.remote {
            true => self.pre_states.remove(&label.index),
            false => None,
        };
        if pre_entrypoint.is_some() && pre_state.is_none() {
            let message = format!(
                "`pre-entrypoint` of the action {} is not run: {}",
                loaded.file,
                match loaded.remote {
                    true => "it is used inside a composite action",
                    false => "it is a local action, not there yet when the job started",
                }
            );
            self.step_log(label, LogLine::Warning(&message));
        }
        let stages = docker_stage(loaded, inputs, scope, Stage::Main).and_then(|main| {
            let post = docker_stage(loaded, inputs, scope, Stage::Post)?;
            Ok((main, post))
        });
        let (main, post) = match stages {
            Ok((Some(main), post)) => (main, post),
            Ok((None, _)) => return StepEnd::failure(),
            Err(e) => {
                self.step_log(label, LogLine::Error(&e.to_string()));
                return StepEnd::failure();
            }
        };
        let mut state = pre_state.unwrap_or_default();
        let with_state = |extra: &[(String, String)], state: &[(String, String)]| {
            let mut all = extra.to_vec();
            all.extend(state.iter().map(|(k, v)| (format!("STATE_{k}"), v.clone())));
            all
        };
        let DockerStage { container, extra } = main;
        let (end, saved) = self
            .run_container_step(
                label,
                step,
                &container,
                env,
                &with_state(&extra, &state),
                scope,
                control,
            )
            .await;
        state.extend(saved);
        if let Some(DockerStage { container, extra }) = post {
            self.posts.push(PostStep {
                name: format!("Post {}", label.name),
                step: step.clone(),
                condition: post_if.clone(),
                file: loaded.file.clone(),
                run: PostRun::Container(container),
                env: env.clone(),
                extra: with_state(&extra, &state),
            });
        }
        end
    }

    /// The `node` the job runs a `node{major}` action with (see `JobRuntime::node`), its
    /// notice logged as a warning; `None`, with the reason logged, when there is none.
    async fn node_for(&mut self, label: &StepLabel, major: u32) -> Option<NodeCommand> {
        match self.runtime.node(major).await {
            Ok(node) => {
                if let Some(notice) = &node.notice {
                    self.step_log(label, LogLine::Warning(notice));
                }
                Some(node)
            }
            Err(e) => {
                let message = format!("no node to run a node{major} action with: {e}");
                self.step_log(label, LogLine::Error(&message));
                None
            }
        }
    }

    /// Runs `node <script>` from the action's folder.
    #[allow(clippy::too_many_arguments)]
    async fn run_node_script(
        &mut self,
        label: &StepLabel,
        step: &Step,
        node: &NodeCommand,
        dir: &JobPath,
        script: &str,
        env: &BTreeMap<String, String>,
        extra: &[(String, String)],
        scope: &Scope<'_>,
        control: &JobControl,
    ) -> (StepEnd, Vec<(String, String)>) {
        let (files, process_env, _) = match self.step_process(step, env, extra, None).await {
            Ok(prepared) => prepared,
            Err(e) => {
                self.step_log(label, LogLine::Error(&e.to_string()));
                return (StepEnd::failure(), Vec::new());
            }
        };
        let prepared = Prepared {
            files,
            launch: Launch::Process {
                argv: node
                    .argv
                    .iter()
                    .cloned()
                    .chain([dir.join(script).as_str().to_owned()])
                    .collect(),
                env: process_env.into_iter().collect(),
                working_directory: self.runtime.paths().workspace.clone(),
            },
            script_path: None,
        };
        self.exec_prepared(label, step, prepared, env, scope, control)
            .await
    }

    /// Runs a registered `post` as a step of its own, after the job's steps.
    pub(super) async fn run_post(&mut self, index: usize, post: PostStep, control: &JobControl) {
        self.check_cancelled(control);
        let started = Instant::now();
        let label = StepLabel {
            index,
            id: None,
            name: post.name.clone(),
        };
        let contexts = self.state.step_contexts(&env_object(&post.env));
        let scope = self.scope(&post.file, &contexts, None);
        let runs = match &post.condition {
            Some(condition) => scope.condition(Some(condition)),
            None => Ok(true),
        };
        let outcome = match self.begin_aside_step(&label, &runs) {
            Some(outcome) => outcome,
            None => self.exec_post(&label, &post, &scope, control).await,
        };
        self.end_aside_step(&label, outcome, started);
    }

    /// Starts a pre or post step whose condition (`pre-if`/`post-if`) evaluated to `runs`:
    /// the outcome when it is settled already (skipped, or failed evaluating), else `None` and
    /// the caller runs it.
    fn begin_aside_step(
        &self,
        label: &StepLabel,
        runs: &Result<bool, super::eval::EvalError>,
    ) -> Option<Conclusion> {
        if *runs == Ok(false) {
            return Some(Conclusion::Skipped);
        }
        self.sink.event(&Event::StepStarted {
            job: self.label,
            step: label,
        });
        match runs {
            Err(e) => {
                self.step_log(label, LogLine::Error(&e.to_string()));
                Some(Conclusion::Failure)
            }
            Ok(_) => None,
        }
    }

    /// Ends a pre or post step: a failure fails the job.
    fn end_aside_step(&mut self, label: &StepLabel, outcome: Conclusion, started: Instant) {
        if outcome == Conclusion::Failure {
            self.state.fail();
        }
        self.sink.event(&Event::StepFinished {
            job: self.label,
            step: label,
            outcome,
            conclusion: outcome,
            duration: started.elapsed(),
        });
        self.sink.flush();
    }

    async fn exec_post(
        &mut self,
        label: &StepLabel,
        post: &PostStep,
        scope: &Scope<'_>,
        control: &JobControl,
    ) -> Conclusion {
        let (argv, action_path) = match &post.run {
            PostRun::Node { argv, action_path } => (argv, action_path),
            PostRun::Container(container) => {
                let (end, _) = self
                    .run_container_step(
                        label,
                        &post.step,
                        container,
                        &post.env,
                        &post.extra,
                        scope,
                        control,
                    )
                    .await;
                return end.outcome;
            }
        };
        let prepared = self
            .step_process(&post.step, &post.env, &post.extra, Some(action_path))
            .await;
        let (files, process_env, _) = match prepared {
            Ok(prepared) => prepared,
            Err(e) => {
                self.step_log(label, LogLine::Error(&e.to_string()));
                return Conclusion::Failure;
            }
        };
        let prepared = Prepared {
            files,
            launch: Launch::Process {
                argv: argv.clone(),
                env: process_env.into_iter().collect(),
                working_directory: self.runtime.paths().workspace.clone(),
            },
            script_path: None,
        };
        let (end, _) = self
            .exec_prepared(label, &post.step, prepared, &post.env, scope, control)
            .await;
        end.outcome
    }
}

/// `INPUT_<NAME>`: upper case, spaces as underscores, as GitHub's runner names them.
pub(super) fn input_variable(name: &str) -> String {
    format!("INPUT_{}", name.replace(' ', "_").to_uppercase())
}
