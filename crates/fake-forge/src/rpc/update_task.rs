//! UpdateTask (spec §3.5): heartbeats, final states, outputs, and the cancellation channel.

use hearth_forge::proto::runner::{
    Result as ProtoResult, TaskState, UpdateTaskRequest, UpdateTaskResponse,
};

use crate::error::{Code, RpcError};
use crate::state::State;
use crate::status::Status;
use crate::view::StepView;

/// Gitea drops (with a server log line only) outputs over these sizes.
const MAX_OUTPUT_KEY_BYTES: usize = 255;
const MAX_OUTPUT_VALUE_BYTES: usize = 1024 * 1024;

pub(super) fn update_task(
    state: &mut State,
    runner_id: i64,
    req: UpdateTaskRequest,
) -> Result<UpdateTaskResponse, RpcError> {
    // Gitea dereferences `state` unchecked; a missing one is a server error there too.
    let Some(reported) = req.state else {
        return Err(RpcError::status(
            Code::Internal,
            "update task: missing state",
        ));
    };
    let ephemeral = state.runners.get(&runner_id).is_some_and(|r| r.ephemeral);
    let Some(job) = state.job_of_task_mut(reported.id) else {
        return Err(RpcError::status(
            Code::Internal,
            "update task: resource does not exist",
        ));
    };
    let job_status = &mut job.status;
    let Some(task) = job.task.as_mut() else {
        return Err(RpcError::status(
            Code::Internal,
            "update task: resource does not exist",
        ));
    };
    if task.runner_id != runner_id {
        return Err(RpcError::status(
            Code::Internal,
            "update task: invalid runner for task",
        ));
    }
    task.update_task_count += 1;
    let is_final = reported.result != ProtoResult::Unspecified as i32;
    if is_final && task.final_result_reported.is_none() {
        task.final_result_reported = Some(reported.result);
    }

    let mut delete_runner = false;
    // A task the forge has already ended (cancelled, reaped, or finished) is not written.
    if !task.status.is_done() {
        if is_final {
            let status = Status::from_result(reported.result);
            task.status = status;
            *job_status = status;
            // A missing stopped_at is stored as the Unix epoch.
            task.stopped_at = Some(reported.stopped_at.unwrap_or_default());
            delete_runner = ephemeral;
        }
        copy_steps(&mut task.steps, &reported);
    }

    for (key, value) in req.outputs {
        if key.len() > MAX_OUTPUT_KEY_BYTES || value.len() > MAX_OUTPUT_VALUE_BYTES {
            continue;
        }
        // Insert-if-not-exists: the first value stored for a key wins.
        if !task.outputs.iter().any(|(k, _)| *k == key) {
            task.outputs.push((key, value));
        }
    }
    let response = UpdateTaskResponse {
        state: Some(TaskState {
            id: reported.id,
            result: task.status.as_result() as i32,
            ..TaskState::default()
        }),
        sent_outputs: task.outputs.iter().map(|(k, _)| k.clone()).collect(),
    };
    if delete_runner {
        state.runners.remove(&runner_id);
    }
    Ok(response)
}

/// Gitea's step loop: each server step whose index the report names takes the reported
/// values; status = result if set, else running once started.
fn copy_steps(steps: &mut [StepView], reported: &TaskState) {
    for step in steps.iter_mut() {
        let Some(r) = reported.steps.iter().find(|s| s.id == step.index as i64) else {
            continue;
        };
        step.log_index = r.log_index;
        step.log_length = r.log_length;
        step.started_at = r.started_at;
        step.stopped_at = r.stopped_at;
        if r.result != ProtoResult::Unspecified as i32 {
            step.status = Status::from_result(r.result);
        } else if r.started_at.is_some() {
            step.status = Status::Running;
        }
    }
}
