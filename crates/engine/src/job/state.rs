//! The job's state as its expressions and status functions see it: the contexts, the `env`
//! between steps, `GITHUB_PATH`, the status, the clock, and a stack of frames — the job's own
//! steps at the bottom, one frame per composite action being run above it. Pure (no I/O, no
//! backend, no sink), so its rules are unit-tested here.
//!
//! A composite action's steps have their own `steps` context, their own status (a failure
//! inside fails the action's step, not the job directly), their own `inputs` and the using
//! step's env under theirs: entering the action pushes a [`Frame`], leaving it pops the frame
//! and gives it back, and nothing of the job's own frame is touched meanwhile.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use hearth_events::Conclusion;
use hearth_expr::{Object, Status, Value};

use crate::env_files::PrependPath;

/// Where steps are running: the job itself, or a composite action.
#[derive(Clone, Debug, Default)]
pub(crate) struct Frame {
    /// The file expressions come from (the workflow, or the `action.yml`).
    pub file: String,
    /// The env of the step that uses the action, under its steps' own env.
    pub overlay_env: BTreeMap<String, String>,
    /// `github.action_path` inside an action, as the job sees it.
    pub action_path: Option<String>,
    /// The `inputs` context.
    pub inputs: Value,
    /// The `steps` context.
    pub steps: Object,
    /// A step of this frame failed (after `continue-on-error`).
    pub failed: bool,
}

impl Frame {
    /// A composite action's frame: its file, the using step's env, its folder and inputs.
    pub fn action(
        file: String,
        overlay_env: BTreeMap<String, String>,
        action_path: String,
        inputs: Object,
    ) -> Frame {
        Frame {
            file,
            overlay_env,
            action_path: Some(action_path),
            inputs: Value::object(inputs),
            steps: Object::new(),
            failed: false,
        }
    }
}

/// How long a job may run, and for how long steps may still run once it is cancelled.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Clock {
    pub deadline: Instant,
    pub timeout_minutes: f64,
    pub cancel_timeout: Duration,
}

/// The job's state; see the module documentation.
#[derive(Debug)]
pub(crate) struct JobState {
    /// `github`, `vars`, `secrets`, `needs`, `matrix`, `strategy`, `runner` (the frame adds
    /// `inputs` and `steps`, each step `env` and `job`).
    contexts: Object,
    /// The `env` context between steps: workflow, then job, then `GITHUB_ENV` writes.
    pub env: BTreeMap<String, String>,
    /// `GITHUB_PATH` / `add-path` entries.
    pub path: PrependPath,
    /// The `job` context's fixed part (`container`, `services`).
    job_context: Object,
    /// The job was cancelled or ran out of time.
    cancelled: bool,
    timed_out: bool,
    clock: Clock,
    /// `GITHUB_ACTION` values given so far, to number repeats as GitHub does.
    action_ids: BTreeMap<String, usize>,
    /// Never empty: the job's own frame first.
    frames: Vec<Frame>,
}

impl JobState {
    /// A job about to run its first step. `contexts` holds `inputs`, which becomes the job
    /// frame's.
    pub fn new(
        mut contexts: Object,
        env: BTreeMap<String, String>,
        job_context: Object,
        file: &str,
        clock: Clock,
    ) -> JobState {
        let inputs = contexts.remove("inputs").unwrap_or_default();
        JobState {
            contexts,
            env,
            path: PrependPath::new(),
            job_context,
            cancelled: false,
            timed_out: false,
            clock,
            action_ids: BTreeMap::new(),
            frames: vec![Frame {
                file: file.to_owned(),
                inputs,
                ..Frame::default()
            }],
        }
    }

    /// The frame steps run in now.
    pub fn frame(&self) -> &Frame {
        self.frames.last().unwrap_or(&self.frames[0])
    }

    fn frame_mut(&mut self) -> &mut Frame {
        let last = self.frames.len() - 1;
        &mut self.frames[last]
    }

    /// How many composite actions deep the steps run.
    pub fn depth(&self) -> usize {
        self.frames.len() - 1
    }

    /// A composite action starts running its steps.
    pub fn enter(&mut self, frame: Frame) {
        self.frames.push(frame);
    }

    /// The composite action's steps are done: its frame, with their status and `steps`.
    pub fn leave(&mut self) -> Frame {
        if self.frames.len() > 1 {
            self.frames.pop().unwrap_or_default()
        } else {
            Frame::default()
        }
    }

    /// The status the status functions see: cancelled over failed (of this frame) over success.
    pub fn status(&self) -> Status {
        if self.cancelled {
            Status::Cancelled
        } else if self.frame().failed {
            Status::Failure
        } else {
            Status::Success
        }
    }

    /// `job.status`.
    pub fn job_status(&self) -> Conclusion {
        match self.status() {
            Status::Cancelled => Conclusion::Cancelled,
            Status::Failure => Conclusion::Failure,
            _ => Conclusion::Success,
        }
    }

    /// The job's result (`needs.<id>.result`): a job that ran out of time failed.
    pub fn result(&self) -> Conclusion {
        if self.timed_out {
            Conclusion::Failure
        } else {
            self.job_status()
        }
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancelled
    }

    pub fn clock(&self) -> Clock {
        self.clock
    }

    /// The job is cancelled; `true` if it was not already.
    pub fn cancel(&mut self) -> bool {
        !std::mem::replace(&mut self.cancelled, true)
    }

    /// The job ran out of time (which cancels it); `true` if it had not already.
    pub fn time_out(&mut self) -> bool {
        self.cancelled = true;
        !std::mem::replace(&mut self.timed_out, true)
    }

    /// GitHub's message for a job that ran out of time.
    pub fn timed_out_message(&self) -> String {
        format!(
            "The job has exceeded the maximum execution time of {}m.",
            hearth_expr::format_number(self.clock.timeout_minutes)
        )
    }

    /// Applies a step's end to the frame's status and to `steps.<id>`; returns its conclusion
    /// (a failure under `continue-on-error` concludes as a success).
    pub fn record_step(
        &mut self,
        id: Option<&str>,
        outcome: Conclusion,
        outputs: &[(String, String)],
        continue_on_error: bool,
    ) -> Conclusion {
        let conclusion = match outcome {
            Conclusion::Failure if continue_on_error => Conclusion::Success,
            other => other,
        };
        match conclusion {
            Conclusion::Failure => self.frame_mut().failed = true,
            Conclusion::Cancelled => self.cancelled = true,
            _ => {}
        }
        if let Some(id) = id {
            let mut entry = Object::with_capacity(3);
            let mut values = Object::with_capacity(outputs.len());
            for (name, value) in outputs {
                values.insert(name.as_str(), Value::string(value.as_str()));
            }
            entry.insert("outputs", Value::object(values));
            entry.insert("outcome", Value::string(outcome.as_str()));
            entry.insert("conclusion", Value::string(conclusion.as_str()));
            self.frame_mut().steps.insert(id, Value::object(entry));
        }
        conclusion
    }

    /// A step of this frame failed outside `record_step` (an action's `post`).
    pub fn fail(&mut self) {
        self.frame_mut().failed = true;
    }

    /// `GITHUB_ACTION` for a step without an id: `base` numbered on repeats (`__run_2`), as
    /// GitHub numbers them, across the whole job.
    pub fn action_id(&mut self, base: String) -> String {
        let seen = self.action_ids.entry(base.clone()).or_insert(0);
        *seen += 1;
        match *seen {
            1 => base,
            n => format!("{base}_{n}"),
        }
    }

    /// The env of a step before its own `env:`: the job's, `GITHUB_ENV`'s, and inside a
    /// composite action the using step's.
    pub fn current_env(&self) -> BTreeMap<String, String> {
        let mut env = self.env.clone();
        env.extend(
            self.frame()
                .overlay_env
                .iter()
                .map(|(k, v)| (k.clone(), v.clone())),
        );
        env
    }

    /// The `github` context, with `action_path` inside an action.
    pub fn github(&self) -> Object {
        let mut github = self
            .contexts
            .get("github")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        if let Some(action_path) = &self.frame().action_path {
            github.insert("action_path", Value::string(action_path.as_str()));
        }
        github
    }

    /// The `runner` context.
    pub fn runner(&self) -> Object {
        self.contexts
            .get("runner")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default()
    }

    /// The contexts a step's expressions read, with `env` as given.
    pub fn step_contexts(&self, env: &Object) -> Object {
        let mut contexts = self.contexts.clone();
        if self.frame().action_path.is_some() {
            contexts.insert("github", Value::object(self.github()));
        }
        contexts.insert("inputs", self.frame().inputs.clone());
        contexts.insert("env", Value::object(env.clone()));
        contexts.insert("steps", Value::object(self.frame().steps.clone()));
        let mut job = self.job_context.clone();
        job.insert("status", Value::string(self.job_status().as_str()));
        contexts.insert("job", Value::object(job));
        contexts
    }
}

/// An env map as an `env` context object.
pub(crate) fn env_object(env: &BTreeMap<String, String>) -> Object {
    let mut object = Object::with_capacity(env.len());
    for (k, v) in env {
        object.insert(k.as_str(), Value::string(v.as_str()));
    }
    object
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> JobState {
        let mut contexts = Object::new();
        let mut github = Object::new();
        github.insert("repository", Value::string("o/r"));
        contexts.insert("github", Value::object(github));
        let mut inputs = Object::new();
        inputs.insert("who", Value::string("job"));
        contexts.insert("inputs", Value::object(inputs));
        let env = BTreeMap::from([("A".to_owned(), "job".to_owned())]);
        let clock = Clock {
            deadline: Instant::now() + Duration::from_secs(60),
            timeout_minutes: 1.0,
            cancel_timeout: Duration::from_secs(300),
        };
        JobState::new(contexts, env, Object::new(), "ci.yml", clock)
    }

    /// The value at `path`, as a string.
    fn get(object: &Object, path: &[&str]) -> Option<String> {
        let (first, rest) = path.split_first()?;
        let value = object.get(first)?;
        if rest.is_empty() {
            Some(value.to_display_string())
        } else {
            get(value.as_object()?, rest)
        }
    }

    #[test]
    fn a_composite_action_has_its_own_steps_status_inputs_and_env() {
        let mut state = state();
        state.record_step(Some("first"), Conclusion::Success, &[], false);
        let mut inputs = Object::new();
        inputs.insert("who", Value::string("action"));
        let overlay = BTreeMap::from([("A".to_owned(), "using step".to_owned())]);
        state.enter(Frame::action(
            "a/action.yml".into(),
            overlay,
            "/a".into(),
            inputs,
        ));
        assert_eq!(state.depth(), 1);
        let contexts = state.step_contexts(&env_object(&state.current_env()));
        assert!(
            get(&contexts, &["steps", "first"]).is_none(),
            "the job's steps are not seen"
        );
        assert_eq!(
            get(&contexts, &["inputs", "who"]),
            Some("action".to_owned())
        );
        assert_eq!(get(&contexts, &["env", "A"]), Some("using step".to_owned()));
        assert_eq!(
            get(&contexts, &["github", "action_path"]),
            Some("/a".to_owned())
        );
        assert_eq!(
            get(&contexts, &["github", "repository"]),
            Some("o/r".to_owned())
        );

        state.record_step(Some("inner"), Conclusion::Failure, &[], false);
        assert_eq!(state.status(), Status::Failure);
        let frame = state.leave();
        assert!(frame.failed);
        assert!(frame.steps.get("inner").is_some());
        // Back in the job: its own status, steps and inputs, untouched.
        assert_eq!(state.depth(), 0);
        assert_eq!(state.status(), Status::Success);
        let contexts = state.step_contexts(&env_object(&state.current_env()));
        assert!(get(&contexts, &["steps", "first"]).is_some());
        assert!(get(&contexts, &["steps", "inner"]).is_none());
        assert_eq!(get(&contexts, &["inputs", "who"]), Some("job".to_owned()));
        assert!(get(&contexts, &["github", "action_path"]).is_none());
    }

    #[test]
    fn continue_on_error_concludes_a_failure_as_success() {
        let mut state = state();
        let conclusion = state.record_step(Some("s"), Conclusion::Failure, &[], true);
        assert_eq!(conclusion, Conclusion::Success);
        assert_eq!(state.status(), Status::Success);
        let contexts = state.step_contexts(&Object::new());
        assert_eq!(
            get(&contexts, &["steps", "s", "outcome"]),
            Some("failure".to_owned())
        );
        assert_eq!(
            get(&contexts, &["steps", "s", "conclusion"]),
            Some("success".to_owned())
        );
    }

    #[test]
    fn a_timed_out_job_is_cancelled_for_its_steps_and_failed_as_a_result() {
        let mut state = state();
        assert!(state.time_out());
        assert!(!state.time_out(), "reported once");
        assert_eq!(state.status(), Status::Cancelled);
        assert_eq!(state.job_status(), Conclusion::Cancelled);
        assert_eq!(state.result(), Conclusion::Failure);
        assert_eq!(
            state.timed_out_message(),
            "The job has exceeded the maximum execution time of 1m."
        );
        let mut cancelled = self::state();
        assert!(cancelled.cancel());
        assert!(!cancelled.cancel());
        assert_eq!(cancelled.result(), Conclusion::Cancelled);
    }

    #[test]
    fn action_ids_are_numbered_on_repeats_across_the_job() {
        let mut state = state();
        assert_eq!(state.action_id("__run".into()), "__run");
        assert_eq!(state.action_id("__run".into()), "__run_2");
        assert_eq!(
            state.action_id("__actions_checkout".into()),
            "__actions_checkout"
        );
        assert_eq!(state.action_id("__run".into()), "__run_3");
    }
}
