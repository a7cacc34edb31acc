use hearth_fake_forge::{FakeForge, LogRules, Method, Options};
use hearth_forge::proto::runner::{UpdateLogRequest, UpdateLogResponse};

use crate::{forgejo, gitea, running_task, update_log, REG_TOKEN};

#[tokio::test]
async fn rows_append_once_and_in_order() {
    let forge = gitea().await;
    let (client, job, task) = running_task(&forge).await;
    assert_eq!(
        update_log(&client, task.id, 0, &["a", "b"], false).await,
        Ok(2)
    );
    // A resend overlapping what the forge holds appends only the new part.
    assert_eq!(
        update_log(&client, task.id, 1, &["b", "c", "d"], false).await,
        Ok(4)
    );
    // Entirely old rows, a gap, and an empty request leave the ack alone.
    assert_eq!(
        update_log(&client, task.id, 0, &["a", "b"], false).await,
        Ok(4)
    );
    assert_eq!(update_log(&client, task.id, 6, &["x"], false).await, Ok(4));
    assert_eq!(update_log(&client, task.id, 4, &[], false).await, Ok(4));
    assert_eq!(forge.log_lines(job), ["a", "b", "c", "d"]);
    assert!(forge.log_rows(job)[0].time.is_some());
    assert_eq!(forge.task(job).unwrap().log_length, 4);
}

#[tokio::test]
async fn an_empty_no_more_does_not_archive_then_archived_is_already_exists() {
    let forge = gitea().await;
    let (client, job, task) = running_task(&forge).await;
    update_log(&client, task.id, 0, &["a"], false)
        .await
        .unwrap();
    assert_eq!(update_log(&client, task.id, 1, &[], true).await, Ok(1));
    assert!(!forge.task(job).unwrap().log_archived);
    assert_eq!(update_log(&client, task.id, 1, &["b"], true).await, Ok(2));
    assert!(forge.task(job).unwrap().log_archived);
    // Old rows are still just acknowledged; new rows fail.
    assert_eq!(
        update_log(&client, task.id, 0, &["a", "b"], true).await,
        Ok(2)
    );
    let err = update_log(&client, task.id, 2, &["c"], false)
        .await
        .unwrap_err();
    assert_eq!((err.http_status, err.code.as_str()), (500, "unknown"));
    assert_eq!(
        err.message,
        "rpc error: code = AlreadyExists desc = log file has been archived"
    );

    let forge = forgejo().await;
    let (client, _, task) = running_task(&forge).await;
    update_log(&client, task.id, 0, &["a"], true).await.unwrap();
    let err = update_log(&client, task.id, 1, &["b"], false)
        .await
        .unwrap_err();
    assert_eq!(
        (err.http_status, err.code.as_str()),
        (409, "already_exists")
    );
    assert_eq!(err.message, "log file has been archived");
}

#[tokio::test]
async fn newer_gitea_seals_on_an_empty_no_more() {
    let forge = FakeForge::start(Options {
        log_rules: LogRules::Gitea1262,
        ..Options::gitea().with_registration_token(REG_TOKEN)
    })
    .await
    .unwrap();
    let (client, job, task) = running_task(&forge).await;
    update_log(&client, task.id, 0, &["a"], false)
        .await
        .unwrap();
    assert_eq!(update_log(&client, task.id, 1, &[], true).await, Ok(1));
    assert!(forge.task(job).unwrap().log_archived);
    assert_eq!(update_log(&client, task.id, 1, &[], true).await, Ok(1));
    assert!(update_log(&client, task.id, 1, &["b"], false)
        .await
        .is_err());
}

#[tokio::test]
async fn long_rows_are_cut_at_64_kib() {
    let forge = gitea().await;
    let (client, job, task) = running_task(&forge).await;
    let long = "é".repeat(40 * 1024); // 80 KiB of two-byte characters
    update_log(&client, task.id, 0, &[long.as_str()], false)
        .await
        .unwrap();
    let stored = &forge.log_lines(job)[0];
    assert_eq!(stored.len(), 64 * 1024);
    assert!(long.starts_with(stored.as_str()));
}

#[tokio::test]
async fn partial_acks_take_only_part_of_a_batch() {
    let forge = gitea().await;
    let (client, job, task) = running_task(&forge).await;
    forge.set_log_ack_limit(Some(2));
    assert_eq!(
        update_log(&client, task.id, 0, &["a", "b", "c"], true).await,
        Ok(2)
    );
    assert!(!forge.task(job).unwrap().log_archived);
    assert_eq!(update_log(&client, task.id, 2, &["c"], true).await, Ok(3));
    assert!(forge.task(job).unwrap().log_archived);
    assert_eq!(forge.log_lines(job), ["a", "b", "c"]);
}

#[tokio::test]
async fn an_all_default_reply_is_an_empty_body() {
    let forge = gitea().await;
    let (client, _, task) = running_task(&forge).await;
    let reply = client
        .call_full::<_, UpdateLogResponse>(
            Method::UpdateLog,
            &UpdateLogRequest {
                task_id: task.id,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(reply.body_len, 0);
    assert_eq!(reply.message.ack_index, 0);
}
