use std::time::{Duration, Instant};

use hearth_fake_forge::{Fault, Method};
use hearth_forge::proto::ping::{PingRequest, PingResponse};
use hearth_forge::proto::runner::{
    FetchTaskRequest, FetchTaskResponse, Result as ProtoResult, TaskState, UpdateTaskRequest,
    UpdateTaskResponse,
};

use crate::client::Client;
use crate::{fetch, gitea, running_task, update_log};

async fn ping(client: &Client) -> Result<PingResponse, crate::client::WireError> {
    client
        .call(Method::Ping, &PingRequest { data: "x".into() })
        .await
}

#[tokio::test]
async fn failures_hit_the_chosen_method_only_as_many_times_as_asked() {
    let forge = gitea().await;
    let (client, _, _) = running_task(&forge).await;
    forge.fail_next(Fault::http(503).times(2).only(Method::FetchTask));
    assert!(ping(&client).await.is_ok());
    for _ in 0..2 {
        let err = client
            .call::<_, FetchTaskResponse>(Method::FetchTask, &FetchTaskRequest::default())
            .await
            .unwrap_err();
        assert_eq!((err.http_status, err.code.as_str()), (503, ""));
    }
    fetch(&client, 0).await;
    assert_eq!(forge.request_count(Method::FetchTask), 4);
}

#[tokio::test]
async fn a_failure_after_handling_loses_only_the_answer() {
    let forge = gitea().await;
    let (client, job, task) = running_task(&forge).await;
    forge.fail_next(Fault::http(500).only(Method::UpdateLog).after_handling());
    let err = update_log(&client, task.id, 0, &["a", "b"], false)
        .await
        .unwrap_err();
    assert_eq!(err.http_status, 500);
    // The retry is acknowledged without duplicating rows.
    assert_eq!(
        update_log(&client, task.id, 0, &["a", "b", "c"], false).await,
        Ok(3)
    );
    assert_eq!(forge.log_lines(job), ["a", "b", "c"]);
}

#[tokio::test]
async fn responses_can_be_delayed_per_method() {
    let forge = gitea().await;
    let client = Client::new(&forge);
    forge.set_response_delay(Some(Method::Ping), Duration::from_millis(200));
    let start = Instant::now();
    ping(&client).await.unwrap();
    assert!(start.elapsed() >= Duration::from_millis(200));
    forge.set_response_delay(Some(Method::Ping), Duration::ZERO);
    let start = Instant::now();
    ping(&client).await.unwrap();
    assert!(start.elapsed() < Duration::from_millis(200));
}

#[tokio::test]
async fn down_refuses_connections_and_up_keeps_the_state() {
    let forge = gitea().await;
    let (client, job, task) = running_task(&forge).await;
    update_log(&client, task.id, 0, &["a"], false)
        .await
        .unwrap();
    let port = forge.addr().port();

    forge.go_down().await;
    assert!(!forge.is_up());
    let err = ping(&client).await.unwrap_err();
    assert_eq!(err.code, "transport");
    // A fresh connection is refused outright.
    assert!(tokio::net::TcpStream::connect(forge.addr()).await.is_err());

    forge.come_up().await.unwrap();
    assert_eq!(forge.addr().port(), port);
    assert_eq!(update_log(&client, task.id, 1, &["b"], false).await, Ok(2));
    assert_eq!(forge.log_lines(job), ["a", "b"]);
}

#[tokio::test]
async fn wait_for_task_done_wakes_on_the_final_report() {
    let forge = gitea().await;
    let (client, job, task) = running_task(&forge).await;
    assert!(forge
        .wait_for_task_done(job, Duration::from_millis(50))
        .await
        .is_err());
    let report = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        client
            .call::<_, UpdateTaskResponse>(
                Method::UpdateTask,
                &UpdateTaskRequest {
                    state: Some(TaskState {
                        id: task.id,
                        result: ProtoResult::Success as i32,
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
    };
    let (done, ()) = tokio::join!(
        forge.wait_for_task_done(job, Duration::from_secs(10)),
        report
    );
    assert_eq!(
        done.unwrap().final_result_reported,
        Some(ProtoResult::Success as i32)
    );
}

#[tokio::test]
async fn stats_are_served_as_json() {
    let forge = gitea().await;
    let (client, _, task) = running_task(&forge).await;
    update_log(&client, task.id, 0, &["a"], true).await.unwrap();
    let body = reqwest::get(format!("{}/_fake/stats", forge.url()))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let stats: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(stats["requests"]["Register"], 1);
    assert_eq!(stats["requests"]["FetchTask"], 1);
    assert_eq!(stats["jobs"][0]["log_rows"], 1);
    assert_eq!(stats["jobs"][0]["log_archived"], true);
    assert_eq!(stats, forge.stats_json());
}

#[tokio::test]
async fn a_200000_row_log_fits() {
    let forge = gitea().await;
    let (client, job, task) = running_task(&forge).await;
    let batch: Vec<String> = (0..20_000).map(|i| format!("line {i}")).collect();
    let batch: Vec<&str> = batch.iter().map(String::as_str).collect();
    let mut ack = 0;
    for _ in 0..10 {
        ack = update_log(&client, task.id, ack, &batch, false)
            .await
            .unwrap();
    }
    assert_eq!(ack, 200_000);
    assert_eq!(forge.task(job).unwrap().log_length, 200_000);
}
