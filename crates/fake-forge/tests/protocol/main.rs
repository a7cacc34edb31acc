//! The fake forge driven over plain HTTP (and HTTPS in `tls`), as a runner would.

mod client;
mod faults;
mod fetch_task;
mod register;
mod tls;
mod update_log;
mod update_task;

use client::Client;
use hearth_fake_forge::{FakeForge, JobId, Method, Options, TaskSpec};
use hearth_forge::proto::runner::{
    FetchTaskRequest, FetchTaskResponse, LogRow, Task, UpdateLogRequest, UpdateLogResponse,
};

pub const REG_TOKEN: &str = "registration-token-1";

pub const PAYLOAD: &str = "name: test
on: push
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - run: echo one
      - run: echo two
      - run: echo three
";

pub async fn gitea() -> FakeForge {
    FakeForge::start(Options::gitea().with_registration_token(REG_TOKEN))
        .await
        .expect("start")
}

pub async fn forgejo() -> FakeForge {
    FakeForge::start(Options::forgejo().with_registration_token(REG_TOKEN))
        .await
        .expect("start")
}

/// A forge with one registered `ubuntu-latest` runner that has picked one queued task.
pub async fn running_task(forge: &FakeForge) -> (Client, JobId, Task) {
    let (client, _) = Client::registered(forge, REG_TOKEN, &["ubuntu-latest"]).await;
    let job = forge.queue_task(TaskSpec::new(PAYLOAD));
    let task = fetch(&client, 0).await.task.expect("a task");
    (client, job, task)
}

pub async fn fetch(client: &Client, tasks_version: i64) -> FetchTaskResponse {
    client
        .call(Method::FetchTask, &FetchTaskRequest { tasks_version })
        .await
        .expect("fetch")
}

pub fn rows(contents: &[&str]) -> Vec<LogRow> {
    contents
        .iter()
        .map(|c| LogRow {
            time: Some(prost_types::Timestamp {
                seconds: 1_700_000_000,
                nanos: 0,
            }),
            content: c.to_string(),
        })
        .collect()
}

pub async fn update_log(
    client: &Client,
    task_id: i64,
    index: i64,
    contents: &[&str],
    no_more: bool,
) -> Result<i64, client::WireError> {
    client
        .call::<_, UpdateLogResponse>(
            Method::UpdateLog,
            &UpdateLogRequest {
                task_id,
                index,
                rows: rows(contents),
                no_more,
            },
        )
        .await
        .map(|r| r.ack_index)
}
