use hearth_fake_forge::{Method, Status, TaskSpec};
use hearth_forge::proto::runner::{
    FetchTaskRequest, FetchTaskResponse, RegisterRequest, RegisterResponse, Result as ProtoResult,
    TaskState, UpdateTaskRequest, UpdateTaskResponse,
};
use prost_types::value::Kind;

use crate::client::Client;
use crate::{fetch, forgejo, gitea, PAYLOAD, REG_TOKEN};

fn context_str(task: &hearth_forge::proto::runner::Task, key: &str) -> String {
    let fields = &task.context.as_ref().unwrap().fields;
    match &fields
        .get(key)
        .unwrap_or_else(|| panic!("{key} missing: {:?}", fields.keys()))
        .kind
    {
        Some(Kind::StringValue(s)) => s.clone(),
        other => panic!("{key}: {other:?}"),
    }
}

#[tokio::test]
async fn the_same_version_skips_the_queue() {
    let forge = gitea().await;
    let (client, _) = Client::registered(&forge, REG_TOKEN, &["ubuntu-latest"]).await;
    assert_eq!(forge.tasks_version(), 1);

    let reply = fetch(&client, 0).await;
    assert!(reply.task.is_none());
    assert_eq!(reply.tasks_version, 1);
    assert_eq!(forge.queue_lookups(), 1);

    let reply = fetch(&client, 1).await;
    assert!(reply.task.is_none());
    assert_eq!(forge.queue_lookups(), 1, "same version: no look-up");

    let job = forge.queue_task(TaskSpec::new(PAYLOAD));
    assert_eq!(forge.tasks_version(), 2);
    let reply = fetch(&client, 1).await;
    assert_eq!(reply.tasks_version, 2);
    let task = reply.task.expect("task");
    assert_eq!(forge.queue_lookups(), 2);

    let view = forge.task(job).unwrap();
    assert_eq!(view.id, task.id);
    assert_eq!(view.status, Status::Running);
    assert_eq!(view.steps.len(), 3);
    assert!(view.steps.iter().all(|s| s.status == Status::Waiting));
    assert_eq!(task.workflow_payload.as_deref(), Some(PAYLOAD.as_bytes()));
    assert_eq!(task.secrets["GITHUB_TOKEN"], view.token);
    assert_eq!(task.secrets["GITEA_TOKEN"], view.token);
    assert!(!task.secrets.contains_key("FORGEJO_TOKEN"));
    assert_eq!(context_str(&task, "token"), view.token);
    assert_eq!(
        context_str(&task, "gitea_runtime_token"),
        view.runtime_token
    );
    assert_eq!(context_str(&task, "job"), "build");
    assert_eq!(
        context_str(&task, "server_url"),
        format!("{}/", forge.url())
    );
    assert_eq!(
        context_str(&task, "run_id"),
        forge.job(job).unwrap().run_id.to_string()
    );

    // Nothing else waits: a re-poll at version 0 looks up and finds nothing.
    assert!(fetch(&client, 0).await.task.is_none());
}

#[tokio::test]
async fn picks_oldest_job_whose_labels_match() {
    let forge = forgejo().await;
    let (client, _) = Client::registered(&forge, REG_TOKEN, &["ubuntu-latest", "docker"]).await;
    let gpu = forge.queue_task(TaskSpec::new(PAYLOAD).with_runs_on(["gpu"]));
    let first = forge.queue_task(TaskSpec::new(PAYLOAD).with_runs_on(["docker", "ubuntu-latest"]));
    let second = forge.queue_task(
        TaskSpec::new(PAYLOAD)
            .with_var("V", "1")
            .with_secret("S", "x")
            .with_need("prep", ProtoResult::Success, [("out", "v")])
            .with_context(serde_json::json!({ "event_name": "workflow_dispatch" })),
    );

    let task = fetch(&client, 0).await.task.unwrap();
    assert_eq!(forge.task(first).unwrap().id, task.id);
    assert!(task.secrets.contains_key("FORGEJO_TOKEN"));
    let task = fetch(&client, 0).await.task.unwrap();
    assert_eq!(forge.task(second).unwrap().id, task.id);
    assert_eq!(task.vars["V"], "1");
    assert_eq!(task.secrets["S"], "x");
    assert_eq!(task.needs["prep"].outputs["out"], "v");
    assert_eq!(task.needs["prep"].result, ProtoResult::Success as i32);
    assert_eq!(context_str(&task, "event_name"), "workflow_dispatch");
    assert!(fetch(&client, 0).await.task.is_none());
    assert_eq!(forge.job(gpu).unwrap().status, Status::Waiting);
}

#[tokio::test]
async fn an_ephemeral_runner_gets_one_task_then_is_removed() {
    let forge = gitea().await;
    let client = Client::new(&forge);
    let runner = client
        .call::<_, RegisterResponse>(
            Method::Register,
            &RegisterRequest {
                name: "eph".into(),
                token: REG_TOKEN.into(),
                labels: vec!["ubuntu-latest".into()],
                ephemeral: true,
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .runner
        .unwrap();
    assert!(runner.ephemeral);
    let client = client.with_credentials(&runner);
    let first = forge.queue_task(TaskSpec::new(PAYLOAD));
    forge.queue_task(TaskSpec::new(PAYLOAD));
    assert!(fetch(&client, 0).await.task.is_some());
    assert!(fetch(&client, 0).await.task.is_none(), "busy: nothing more");

    // Ended server-side, the next look-up removes the runner.
    forge.cancel_task(first);
    let err = client
        .call::<_, FetchTaskResponse>(Method::FetchTask, &FetchTaskRequest { tasks_version: 0 })
        .await
        .unwrap_err();
    assert_eq!(
        err.message,
        "rpc error: code = Internal desc = pick task: runner has been removed"
    );
    assert!(forge.runners().is_empty());
}

#[tokio::test]
async fn an_ephemeral_runner_is_deleted_by_its_final_state() {
    let forge = gitea().await;
    let client = Client::new(&forge);
    let runner = client
        .call::<_, RegisterResponse>(
            Method::Register,
            &RegisterRequest {
                name: "eph".into(),
                token: REG_TOKEN.into(),
                ephemeral: true,
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .runner
        .unwrap();
    let client = client.with_credentials(&runner);
    forge.queue_task(TaskSpec::new(PAYLOAD).with_runs_on(Vec::<String>::new()));
    let task = fetch(&client, 0).await.task.unwrap();
    let final_state = UpdateTaskRequest {
        state: Some(TaskState {
            id: task.id,
            result: ProtoResult::Success as i32,
            ..Default::default()
        }),
        ..Default::default()
    };
    client
        .call::<_, UpdateTaskResponse>(Method::UpdateTask, &final_state)
        .await
        .unwrap();
    assert!(forge.runners().is_empty());
    let err = client
        .call::<_, UpdateTaskResponse>(Method::UpdateTask, &final_state)
        .await
        .unwrap_err();
    assert!(err.message.contains("unregistered runner"));
}
