//! FetchTask with Gitea's tasks_version algorithm (spec §3.4.1).

use std::collections::HashMap;

use hearth_forge::proto::runner::{FetchTaskRequest, FetchTaskResponse, Task, TaskNeed};

use crate::context;
use crate::error::{Code, RpcError};
use crate::options::Flavour;
use crate::state::{now, random_hex, State, TaskRecord};
use crate::status::Status;
use crate::view::StepView;

pub(super) fn fetch_task(
    state: &mut State,
    runner_id: i64,
    req: FetchTaskRequest,
) -> Result<FetchTaskResponse, RpcError> {
    let latest = state.tasks_version;
    // Same version: nothing was queued since the runner last looked, so no DB look-up.
    let task = if req.tasks_version != latest {
        pick_task(state, runner_id)?
    } else {
        None
    };
    Ok(FetchTaskResponse {
        task,
        tasks_version: latest,
    })
}

/// Gitea's `CreateTaskForRunner`: claims the oldest waiting job this runner can run.
fn pick_task(state: &mut State, runner_id: i64) -> Result<Option<Task>, RpcError> {
    state.queue_lookups += 1;
    let Some(runner) = state.runners.get(&runner_id) else {
        return Ok(None);
    };
    if runner.ephemeral {
        // An ephemeral runner gets one task: while it runs, nothing more; once it is done,
        // the runner is deleted (spec §3.4.1 point 5).
        let own_task = state
            .jobs
            .values()
            .filter_map(|job| job.task.as_ref())
            .find(|task| task.runner_id == runner_id);
        if let Some(task) = own_task {
            if !task.status.is_done() {
                return Ok(None);
            }
            state.runners.remove(&runner_id);
            return Err(RpcError::status(
                Code::Internal,
                "pick task: runner has been removed",
            ));
        }
    }
    let Some(job_id) = state
        .jobs
        .values()
        .find(|job| {
            job.status == Status::Waiting && job.task.is_none() && runner.can_run(&job.runs_on)
        })
        .map(|job| job.id)
    else {
        return Ok(None);
    };

    let task_id = state.new_task_id();
    let flavour = state.flavour;
    let token = random_hex(20);
    let Some(job) = state.jobs.get_mut(&job_id) else {
        return Ok(None);
    };
    let mut ctx = job.context.clone();
    let mut runtime_token = String::new();
    if let Some(object) = ctx.as_object_mut() {
        object.insert("token".into(), token.clone().into());
        // Only servers that have the key (≥ 1.22) send a runtime token.
        if object.contains_key("gitea_runtime_token") {
            runtime_token = format!("fake-runtime-token.{}", random_hex(20));
            object.insert("gitea_runtime_token".into(), runtime_token.clone().into());
        }
    }
    let mut secrets: HashMap<String, String> = job.secrets.clone().into_iter().collect();
    secrets.insert("GITHUB_TOKEN".into(), token.clone());
    secrets.insert("GITEA_TOKEN".into(), token.clone());
    if flavour == Flavour::Forgejo {
        secrets.insert("FORGEJO_TOKEN".into(), token.clone());
    }
    let task = Task {
        id: task_id,
        workflow_payload: Some(job.payload.clone()),
        context: Some(context::to_struct(&ctx)),
        secrets,
        needs: job
            .needs
            .iter()
            .map(|(k, need)| {
                let need = TaskNeed {
                    outputs: need.outputs.clone().into_iter().collect(),
                    result: need.result,
                };
                (k.clone(), need)
            })
            .collect(),
        vars: job.vars.clone().into_iter().collect(),
        ..Task::default()
    };
    job.status = Status::Running;
    job.task = Some(TaskRecord {
        id: task_id,
        runner_id,
        token,
        runtime_token,
        status: Status::Running,
        picked_at: now(),
        stopped_at: None,
        steps: (0..job.step_count)
            .map(|index| StepView {
                index,
                status: Status::Waiting,
                log_index: 0,
                log_length: 0,
                started_at: None,
                stopped_at: None,
            })
            .collect(),
        log: Vec::new(),
        log_archived: false,
        outputs: Vec::new(),
        final_result_reported: None,
        update_task_count: 0,
        update_log_count: 0,
    });
    state.task_to_job.insert(task_id, job_id);
    Ok(Some(task))
}
