//! UpdateLog (spec §3.7): the ack rules, archiving, and the partial-ack fault.

use hearth_forge::proto::runner::{UpdateLogRequest, UpdateLogResponse};

use crate::error::{Code, RpcError};
use crate::options::LogRules;
use crate::rpc::register::truncate_bytes;
use crate::state::State;
use crate::view::LogRecord;

/// Gitea's `MaxLineSize`: longer row contents are cut.
const MAX_LINE_BYTES: usize = 64 * 1024;

pub(super) fn update_log(
    state: &mut State,
    runner_id: i64,
    req: UpdateLogRequest,
) -> Result<UpdateLogResponse, RpcError> {
    let rules = state.log_rules;
    let ack_limit = state.log_ack_limit;
    let task = state
        .job_of_task_mut(req.task_id)
        .and_then(|job| job.task.as_mut())
        .ok_or_else(|| {
            RpcError::status(
                Code::Internal,
                format!(
                    "get task: task with id {}: resource does not exist",
                    req.task_id
                ),
            )
        })?;
    if task.runner_id != runner_id {
        return Err(RpcError::status(Code::Internal, "invalid runner for task"));
    }
    task.update_log_count += 1;

    let ack = task.log.len() as i64;
    let count = req.rows.len() as i64;
    let brings_new_rows = count > 0 && req.index <= ack && req.index.saturating_add(count) > ack;
    if !brings_new_rows {
        // ≤ 1.26.1: nothing happens, even with no_more (a final empty request never
        // archives). ≥ 1.26.2: no_more seals the log when the runner is not ahead of it.
        if rules == LogRules::Gitea1262 && req.no_more && req.index <= ack {
            task.log_archived = true;
        }
        return Ok(UpdateLogResponse { ack_index: ack });
    }
    if task.log_archived {
        return Err(RpcError::status(
            Code::AlreadyExists,
            "log file has been archived",
        ));
    }

    let already_held = (ack - req.index) as usize;
    let new_rows = req.rows.into_iter().skip(already_held);
    let offered = (count - (ack - req.index)) as usize;
    let take = ack_limit.map_or(offered, |limit| limit.min(offered));
    task.log.extend(new_rows.take(take).map(|row| LogRecord {
        time: row.time,
        content: truncate_bytes(&row.content, MAX_LINE_BYTES).to_string(),
    }));
    // Under the partial-ack fault the log is only sealed once it holds every row offered.
    if req.no_more && take == offered {
        task.log_archived = true;
    }
    Ok(UpdateLogResponse {
        ack_index: task.log.len() as i64,
    })
}
