//! The forge's counters and task results as JSON, for `GET /_fake/stats` and the binary's
//! `--stats-file`.

use serde_json::{json, Map, Value};

use crate::method::Method;
use crate::state::State;

pub(crate) fn stats_json(state: &State) -> Value {
    let requests: Map<String, Value> = Method::ALL
        .iter()
        .map(|m| {
            (
                m.name().to_string(),
                state.request_counts.get(m).copied().unwrap_or(0).into(),
            )
        })
        .collect();
    let jobs: Vec<Value> = state
        .jobs
        .values()
        .map(|job| {
            let task = job.task.as_ref();
            json!({
                "job_id": job.id,
                "status": job.status.name(),
                "task_id": task.map(|t| t.id),
                "runner_id": task.map(|t| t.runner_id),
                "final_result_reported": task.and_then(|t| t.final_result_reported),
                "log_rows": task.map_or(0, |t| t.log.len()),
                "log_archived": task.is_some_and(|t| t.log_archived),
                "outputs": task.map_or(0, |t| t.outputs.len()),
            })
        })
        .collect();
    let done = state
        .jobs
        .values()
        .filter(|job| {
            job.task
                .as_ref()
                .is_some_and(|t| t.final_result_reported.is_some())
        })
        .count();
    json!({
        "tasks_version": state.tasks_version,
        "queue_lookups": state.queue_lookups,
        "runners": state.runners.len(),
        "requests": requests,
        "jobs_total": state.jobs.len(),
        "jobs_done": done,
        "jobs": jobs,
    })
}
