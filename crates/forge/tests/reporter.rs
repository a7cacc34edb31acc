//! The task reporter against the fake forge: what reaches the forge, in which order, and how
//! the final report ends.

use std::time::Duration;

use hearth_events::{Conclusion, Event, EventSink, JobLabel, LogLine, StepLabel};
use hearth_fake_forge::{FakeForge, JobId, Status};
use hearth_forge::proto::runner::Result as TaskResult;
use hearth_forge::{Client, ReporterOptions, TaskReporter};

const WAIT: Duration = Duration::from_secs(20);

/// A forge with one registered runner holding one task of `steps` steps.
async fn task_in_hand(steps: usize) -> (FakeForge, Client, JobId, i64) {
    let held = hearth_fake_forge::runner::task_in_hand(steps).await;
    (held.forge, held.client, held.job, held.task_id)
}

fn options(spool: &std::path::Path) -> ReporterOptions {
    ReporterOptions {
        report_interval: Duration::from_millis(100),
        spill_dir: spool.to_owned(),
        ..ReporterOptions::default()
    }
}

fn log(reporter: &TaskReporter, job: &JobLabel, step: &StepLabel, text: &str) {
    reporter.event(&Event::Log {
        job,
        step: Some(step),
        line: LogLine::Output(text),
    });
}

#[tokio::test]
async fn the_log_is_archived_even_when_every_row_was_sent_before_the_end() {
    let spool = tempfile::tempdir().expect("dir");
    let (forge, client, job, task_id) = task_in_hand(1).await;
    let reporter = TaskReporter::start(client, task_id, 1, options(spool.path()));
    let label = JobLabel {
        id: "j".into(),
        name: "j".into(),
    };
    let step = StepLabel {
        index: 0,
        id: None,
        name: "Run true".into(),
    };
    reporter.event(&Event::StepStarted {
        job: &label,
        step: &step,
    });
    for i in 0..3 {
        log(&reporter, &label, &step, &format!("line {i}"));
    }
    reporter.event(&Event::StepFinished {
        job: &label,
        step: &step,
        outcome: Conclusion::Success,
        conclusion: Conclusion::Success,
        duration: Duration::ZERO,
    });
    // Wait until the periodic sender has delivered every row.
    forge
        .wait_until(WAIT, || (forge.log_lines(job).len() == 3).then_some(()))
        .await
        .expect("rows delivered");
    reporter
        .finish(TaskResult::Success, vec![("k".into(), "v".into())])
        .await
        .expect("final report");
    let task = forge.task(job).expect("task");
    assert!(
        task.log_archived,
        "a final request that adds a row archives the log"
    );
    assert_eq!(task.status, Status::Success);
    assert_eq!(task.output_map().get("k").map(String::as_str), Some("v"));
    assert_eq!(task.steps[0].log_index, 0);
    assert_eq!(task.steps[0].log_length, 3);
}

#[tokio::test]
async fn long_lines_become_several_rows_and_oversized_outputs_are_dropped_with_a_warning() {
    let spool = tempfile::tempdir().expect("dir");
    let (forge, client, job, task_id) = task_in_hand(1).await;
    let reporter = TaskReporter::start(client, task_id, 1, options(spool.path()));
    let label = JobLabel {
        id: "j".into(),
        name: "j".into(),
    };
    let step = StepLabel {
        index: 0,
        id: None,
        name: "s".into(),
    };
    let long = "x".repeat(150 * 1024);
    log(&reporter, &label, &step, &long);
    reporter
        .finish(
            TaskResult::Failure,
            vec![("k".repeat(300), "v".into()), ("ok".into(), "1".into())],
        )
        .await
        .expect("final report");
    let lines = forge.log_lines(job);
    assert_eq!(lines[..3].concat(), long);
    assert!(lines[..3].iter().all(|l| l.len() <= 64 * 1024));
    assert!(
        lines.iter().any(|l| l.starts_with("##[warning]The output")),
        "{lines:?}"
    );
    let task = forge.task(job).expect("task");
    assert_eq!(task.outputs.len(), 1);
    // The step never ended: it is cancelled in the final state.
    assert_eq!(task.steps[0].status, Status::Cancelled);
    assert_eq!(task.status, Status::Failure);
}

#[tokio::test]
async fn a_cancel_from_the_forge_is_noticed() {
    let spool = tempfile::tempdir().expect("dir");
    let (forge, client, job, task_id) = task_in_hand(1).await;
    let reporter = TaskReporter::start(client, task_id, 1, options(spool.path()));
    let ended = reporter.ended_by_forge();
    assert!(forge.cancel_task(job));
    tokio::time::timeout(Duration::from_secs(2), ended.cancelled())
        .await
        .expect("the next heartbeat carries the cancel");
    assert_eq!(reporter.forge_result(), Some(TaskResult::Cancelled));
    reporter
        .finish(TaskResult::Cancelled, Vec::new())
        .await
        .expect("final report");
}
