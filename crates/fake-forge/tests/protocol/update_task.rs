use std::collections::HashMap;

use hearth_fake_forge::{Method, Status};
use hearth_forge::proto::runner::{
    Result as ProtoResult, StepState, TaskState, UpdateTaskRequest, UpdateTaskResponse,
};
use prost_types::Timestamp;

use crate::client::Client;
use crate::{gitea, running_task, REG_TOKEN};

fn ts(seconds: i64) -> Option<Timestamp> {
    Some(Timestamp { seconds, nanos: 0 })
}

fn request(task_id: i64, result: ProtoResult, steps: Vec<StepState>) -> UpdateTaskRequest {
    UpdateTaskRequest {
        state: Some(TaskState {
            id: task_id,
            result: result as i32,
            started_at: ts(100),
            stopped_at: if result == ProtoResult::Unspecified {
                None
            } else {
                ts(200)
            },
            steps,
        }),
        outputs: HashMap::new(),
    }
}

async fn update(client: &Client, req: &UpdateTaskRequest) -> UpdateTaskResponse {
    client
        .call(Method::UpdateTask, req)
        .await
        .expect("update task")
}

#[tokio::test]
async fn heartbeat_copies_steps_and_final_state_ends_the_task() {
    let forge = gitea().await;
    let (client, job, task) = running_task(&forge).await;

    let steps = vec![
        StepState {
            id: 0,
            result: ProtoResult::Success as i32,
            started_at: ts(101),
            stopped_at: ts(102),
            log_index: 0,
            log_length: 4,
        },
        StepState {
            id: 1,
            started_at: ts(103),
            log_index: 4,
            log_length: 2,
            ..Default::default()
        },
        // Unknown ids are ignored.
        StepState {
            id: 9,
            result: ProtoResult::Failure as i32,
            ..Default::default()
        },
    ];
    let reply = update(&client, &request(task.id, ProtoResult::Unspecified, steps)).await;
    let state = reply.state.unwrap();
    assert_eq!(
        (state.id, state.result),
        (task.id, ProtoResult::Unspecified as i32)
    );
    let view = forge.task(job).unwrap();
    assert_eq!(view.status, Status::Running);
    assert_eq!(view.steps[0].status, Status::Success);
    assert_eq!(view.steps[0].log_length, 4);
    assert_eq!(view.steps[1].status, Status::Running);
    assert_eq!(view.steps[1].log_index, 4);
    assert_eq!(view.steps[2].status, Status::Waiting);

    let reply = update(&client, &request(task.id, ProtoResult::Failure, vec![])).await;
    assert_eq!(reply.state.unwrap().result, ProtoResult::Failure as i32);
    let view = forge.task(job).unwrap();
    assert_eq!(view.status, Status::Failure);
    assert_eq!(view.stopped_at, ts(200));
    assert_eq!(
        view.final_result_reported,
        Some(ProtoResult::Failure as i32)
    );
    assert_eq!(forge.job(job).unwrap().status, Status::Failure);

    // A finished task is not written again.
    update(&client, &request(task.id, ProtoResult::Success, vec![])).await;
    assert_eq!(forge.task(job).unwrap().status, Status::Failure);
    assert_eq!(forge.task(job).unwrap().update_task_count, 3);
}

#[tokio::test]
async fn outputs_are_insert_if_not_exists_within_limits() {
    let forge = gitea().await;
    let (client, job, task) = running_task(&forge).await;
    let mut req = request(task.id, ProtoResult::Unspecified, vec![]);
    req.outputs.insert("a".into(), "1".into());
    req.outputs.insert("k".repeat(256), "too long key".into());
    req.outputs
        .insert("big".into(), "v".repeat(1024 * 1024 + 1));
    let reply = update(&client, &req).await;
    assert_eq!(reply.sent_outputs, ["a"]);

    req.outputs.clear();
    req.outputs.insert("a".into(), "2".into());
    req.outputs.insert("b".into(), "3".into());
    let mut sent = update(&client, &req).await.sent_outputs;
    sent.sort();
    assert_eq!(sent, ["a", "b"]);
    let outputs = forge.task(job).unwrap().output_map();
    assert_eq!(outputs["a"], "1", "first value wins");
    assert_eq!(outputs["b"], "3");
}

#[tokio::test]
async fn cancel_and_zombie_show_in_the_next_reply() {
    let forge = gitea().await;
    let (client, job, task) = running_task(&forge).await;
    assert!(forge.cancel_task(job));
    let reply = update(&client, &request(task.id, ProtoResult::Unspecified, vec![])).await;
    assert_eq!(reply.state.unwrap().result, ProtoResult::Cancelled as i32);
    let view = forge.task(job).unwrap();
    assert!(view.steps.iter().all(|s| s.status == Status::Cancelled));
    // The runner's own final report is recorded as seen but does not change the status.
    update(&client, &request(task.id, ProtoResult::Success, vec![])).await;
    let view = forge.task(job).unwrap();
    assert_eq!(view.status, Status::Cancelled);
    assert_eq!(
        view.final_result_reported,
        Some(ProtoResult::Success as i32)
    );

    let (client, job, task) = running_task(&forge).await;
    assert!(forge.fail_as_zombie(job));
    let reply = update(&client, &request(task.id, ProtoResult::Unspecified, vec![])).await;
    assert_eq!(reply.state.unwrap().result, ProtoResult::Failure as i32);
}

#[tokio::test]
async fn a_task_belongs_to_its_runner() {
    let forge = gitea().await;
    let (_, _, task) = running_task(&forge).await;
    let (other, _) = Client::registered(&forge, REG_TOKEN, &[]).await;
    let err = other
        .call::<_, UpdateTaskResponse>(
            Method::UpdateTask,
            &request(task.id, ProtoResult::Unspecified, vec![]),
        )
        .await
        .unwrap_err();
    assert_eq!(err.http_status, 500);
    assert_eq!(
        err.message,
        "rpc error: code = Internal desc = update task: invalid runner for task"
    );
    let err = other
        .call::<_, UpdateTaskResponse>(
            Method::UpdateTask,
            &request(999_999, ProtoResult::Unspecified, vec![]),
        )
        .await
        .unwrap_err();
    assert!(err.message.contains("resource does not exist"));
}
