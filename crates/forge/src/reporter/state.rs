//! The task's state as the forge sees it: when it started, each step's result and log range,
//! the job's outputs and which of them the forge has stored.

use std::collections::{BTreeMap, BTreeSet};
use std::time::SystemTime;

use hearth_events::Conclusion;
use prost_types::Timestamp;

use crate::proto::runner::{self, StepState, TaskState};

/// The forge drops output keys longer than this (bytes)...
pub(crate) const MAX_OUTPUT_KEY: usize = 255;
/// ... and values longer than this, silently; the reporter drops them itself, with a message.
pub(crate) const MAX_OUTPUT_VALUE: usize = 1024 * 1024;

pub(crate) struct TaskStateModel {
    state: TaskState,
    /// The main step that is running: rows belong to it.
    current_step: Option<usize>,
    outputs: BTreeMap<String, String>,
    sent_outputs: BTreeSet<String>,
}

impl TaskStateModel {
    pub(crate) fn new(task_id: i64, step_count: usize) -> TaskStateModel {
        let steps = (0..step_count)
            .map(|index| StepState {
                id: index as i64,
                ..StepState::default()
            })
            .collect();
        TaskStateModel {
            state: TaskState {
                id: task_id,
                steps,
                ..TaskState::default()
            },
            current_step: None,
            outputs: BTreeMap::new(),
            sent_outputs: BTreeSet::new(),
        }
    }

    /// When the job started, once it has.
    pub(crate) fn started_at(&self) -> Option<prost_types::Timestamp> {
        self.state.started_at
    }

    /// Step `index`'s state, if the forge's job has it.
    pub(crate) fn step(&self, index: usize) -> Option<&StepState> {
        self.state.steps.get(index)
    }

    pub(crate) fn job_started(&mut self) {
        if self.state.started_at.is_none() {
            self.state.started_at = Some(now());
        }
    }

    /// A step starts; `log_index` is the index its first row will have. Steps past the
    /// forge's list (post steps) are not the forge's: their rows show as the job's end.
    pub(crate) fn step_started(&mut self, index: usize, log_index: u64) {
        self.job_started();
        self.current_step = None;
        if let Some(step) = self.state.steps.get_mut(index) {
            step.started_at = Some(now());
            step.log_index = log_index as i64;
            step.log_length = 0;
            self.current_step = Some(index);
        }
    }

    /// `rows` rows were added to the log.
    pub(crate) fn rows_added(&mut self, rows: u64) {
        self.job_started();
        if let Some(step) = self.current_step.and_then(|i| self.state.steps.get_mut(i)) {
            step.log_length += rows as i64;
        }
    }

    pub(crate) fn step_finished(&mut self, index: usize, conclusion: Conclusion, log_end: u64) {
        if self.current_step == Some(index) {
            self.current_step = None;
        }
        if let Some(step) = self.state.steps.get_mut(index) {
            if step.started_at.is_none() {
                // A skipped step: an empty range where it would have been.
                step.log_index = log_end as i64;
                step.log_length = 0;
            }
            step.result = result_of(conclusion) as i32;
            step.stopped_at = Some(now());
        }
    }

    /// The job ended: steps that never ended are cancelled (skipped when the whole job was).
    pub(crate) fn finish(&mut self, result: runner::Result, log_end: u64) {
        self.job_started();
        let now = now();
        let unfinished = if result == runner::Result::Skipped {
            runner::Result::Skipped
        } else {
            runner::Result::Cancelled
        };
        for step in &mut self.state.steps {
            if step.result == runner::Result::Unspecified as i32 {
                step.result = unfinished as i32;
                if step.started_at.is_none() {
                    step.log_index = log_end as i64;
                }
                step.stopped_at = Some(now);
            }
        }
        self.current_step = None;
        self.state.result = result as i32;
        self.state.stopped_at = Some(now);
    }

    /// Sets the job's outputs; returns a message for each one the forge would drop.
    pub(crate) fn set_outputs(&mut self, outputs: Vec<(String, String)>) -> Vec<String> {
        let mut dropped = Vec::new();
        for (key, value) in outputs {
            if key.len() > MAX_OUTPUT_KEY {
                dropped.push(format!(
                    "The output {key:?} is left out: its name is longer than {MAX_OUTPUT_KEY} bytes."
                ));
            } else if value.len() > MAX_OUTPUT_VALUE {
                dropped.push(format!(
                    "The output {key:?} is left out: its value is longer than 1 MiB."
                ));
            } else {
                self.outputs.insert(key, value);
            }
        }
        dropped
    }

    /// The state to send now, with the outputs the forge has not stored yet.
    pub(crate) fn snapshot(&self) -> (TaskState, std::collections::HashMap<String, String>) {
        let outputs = self
            .outputs
            .iter()
            .filter(|(key, _)| !self.sent_outputs.contains(*key))
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect();
        (self.state.clone(), outputs)
    }

    pub(crate) fn outputs_sent(&mut self, keys: Vec<String>) {
        self.sent_outputs.extend(keys);
    }

    pub(crate) fn all_outputs_sent(&self) -> bool {
        self.outputs
            .keys()
            .all(|key| self.sent_outputs.contains(key))
    }
}

pub(crate) fn result_of(conclusion: Conclusion) -> runner::Result {
    match conclusion {
        Conclusion::Success => runner::Result::Success,
        Conclusion::Failure => runner::Result::Failure,
        Conclusion::Cancelled => runner::Result::Cancelled,
        Conclusion::Skipped => runner::Result::Skipped,
    }
}

pub(crate) fn now() -> Timestamp {
    Timestamp::from(SystemTime::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_get_their_log_ranges() {
        let mut model = TaskStateModel::new(7, 3);
        model.step_started(0, 2);
        model.rows_added(5);
        model.step_finished(0, Conclusion::Success, 7);
        model.rows_added(1); // between steps: nobody's
        model.step_finished(1, Conclusion::Skipped, 8);
        model.step_started(2, 8);
        model.rows_added(2);
        model.step_finished(2, Conclusion::Failure, 10);
        let (state, _) = model.snapshot();
        let ranges: Vec<(i64, i64, i32)> = state
            .steps
            .iter()
            .map(|s| (s.log_index, s.log_length, s.result))
            .collect();
        assert_eq!(ranges, vec![(2, 5, 1), (8, 0, 4), (8, 2, 2)]);
        assert!(state.started_at.is_some());
    }

    #[test]
    fn unfinished_steps_are_cancelled_at_the_end() {
        let mut model = TaskStateModel::new(7, 2);
        model.step_started(0, 0);
        model.finish(runner::Result::Cancelled, 3);
        let (state, _) = model.snapshot();
        assert_eq!(state.result, runner::Result::Cancelled as i32);
        assert!(state.stopped_at.is_some());
        assert!(state
            .steps
            .iter()
            .all(|s| s.result == runner::Result::Cancelled as i32));
        assert_eq!(state.steps[1].log_index, 3);
    }

    #[test]
    fn outputs_are_resent_until_stored() {
        let mut model = TaskStateModel::new(1, 0);
        let dropped = model.set_outputs(vec![
            ("a".into(), "1".into()),
            ("b".into(), "2".into()),
            ("k".repeat(256), "x".into()),
        ]);
        assert_eq!(dropped.len(), 1);
        assert_eq!(model.snapshot().1.len(), 2);
        model.outputs_sent(vec!["a".into()]);
        assert!(!model.all_outputs_sent());
        assert_eq!(model.snapshot().1.keys().collect::<Vec<_>>(), vec!["b"]);
        model.outputs_sent(vec!["b".into()]);
        assert!(model.all_outputs_sent());
    }
}
