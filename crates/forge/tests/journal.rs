//! The task journal against the fake forge: it is there while the task runs and gone once the
//! forge has everything; a reporter that never finished (its runner was killed) is finalized
//! from it, every row once; a task the forge ended needs nothing; a damaged journal is
//! finalized with what it holds and set aside.

use std::path::{Path, PathBuf};
use std::time::Duration;

use hearth_events::{Conclusion, Event, EventSink, JobLabel, LogLine, StepLabel};
use hearth_fake_forge::{FakeForge, Fault, JobId, Method, Status};
use hearth_forge::proto::runner::Result as TaskResult;
use hearth_forge::reporter::recover::STOPPED_ROW;
use hearth_forge::{finalize_journals, Client, Finalized, ReporterOptions, TaskReporter};
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(20);

async fn task_in_hand(steps: usize) -> (FakeForge, Client, JobId, i64) {
    let held = hearth_fake_forge::runner::task_in_hand(steps).await;
    (held.forge, held.client, held.job, held.task_id)
}

fn options(spool: &Path, interval: Duration) -> ReporterOptions {
    ReporterOptions {
        report_interval: interval,
        spill_dir: spool.to_owned(),
        journal: Some(spool.join("journal")),
        ..ReporterOptions::default()
    }
}

fn label() -> JobLabel {
    JobLabel {
        id: "j".into(),
        name: "j".into(),
    }
}

fn step(index: usize) -> StepLabel {
    StepLabel {
        index,
        id: None,
        name: format!("step {index}"),
    }
}

fn lines(reporter: &TaskReporter, step: &StepLabel, range: std::ops::Range<u32>) {
    let job = label();
    for i in range {
        reporter.event(&Event::Log {
            job: &job,
            step: Some(step),
            line: LogLine::Output(&format!("line {i}")),
        });
    }
}

fn journals(spool: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(spool.join("journal"))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

/// Counts of `line N` rows for N in `0..printed`: (missing, extra).
fn tally(rows: &[String], printed: u32) -> (usize, usize) {
    let mut seen = vec![0usize; printed as usize];
    for row in rows {
        if let Some(n) = row
            .strip_prefix("line ")
            .and_then(|n| n.parse::<usize>().ok())
        {
            seen[n] += 1;
        }
    }
    (
        seen.iter().filter(|&&c| c == 0).count(),
        seen.iter().map(|&c| c.saturating_sub(1)).sum(),
    )
}

#[tokio::test]
async fn the_journal_is_there_while_the_task_runs_and_gone_once_the_forge_has_everything() {
    let spool = tempfile::tempdir().expect("dir");
    let (forge, client, job, task_id) = task_in_hand(1).await;
    let reporter = TaskReporter::start(
        client,
        task_id,
        1,
        options(spool.path(), Duration::from_millis(100)),
    );
    lines(&reporter, &step(0), 0..10);
    assert_eq!(
        journals(spool.path()),
        vec![spool.path().join("journal").join(task_id.to_string())]
    );
    reporter
        .finish(TaskResult::Success, Vec::new())
        .await
        .expect("final report");
    assert!(journals(spool.path()).is_empty());
    assert_eq!(forge.task(job).expect("task").status, Status::Success);
}

/// The forge stores rows but its answer is lost, and the job ends before the retry: the final
/// request must still bring a row it does not have, or Gitea before 1.26.2 never archives.
#[tokio::test]
async fn the_log_is_archived_when_the_answer_to_the_last_rows_was_lost() {
    let spool = tempfile::tempdir().expect("dir");
    let (forge, client, job, task_id) = task_in_hand(1).await;
    forge.fail_next(Fault::http(502).only(Method::UpdateLog).after_handling());
    let reporter = TaskReporter::start(
        client,
        task_id,
        1,
        options(spool.path(), Duration::from_secs(1)),
    );
    lines(&reporter, &step(0), 0..3);
    forge
        .wait_until(WAIT, || (forge.log_lines(job).len() == 3).then_some(()))
        .await
        .expect("rows stored");
    // Ends within the retry's wait (a report interval).
    reporter
        .finish(TaskResult::Success, Vec::new())
        .await
        .expect("final report");
    let task = forge.task(job).expect("task");
    assert!(task.log_archived, "{:?}", forge.log_lines(job));
    assert_eq!(tally(&forge.log_lines(job), 3), (0, 0));
}

/// A reporter dropped without `finish` (what a killed runner leaves) with rows the forge has
/// not taken: finalizing its journal delivers each row once, the finished step, and a failure.
#[tokio::test]
async fn a_task_left_running_is_finalized_from_its_journal_every_row_once() {
    let spool = tempfile::tempdir().expect("dir");
    let (forge, client, job, task_id) = task_in_hand(2).await;
    let reporter = TaskReporter::start(
        client.clone(),
        task_id,
        2,
        options(spool.path(), Duration::from_millis(50)),
    );
    let job_label = label();
    reporter.event(&Event::StepStarted {
        job: &job_label,
        step: &step(0),
    });
    lines(&reporter, &step(0), 0..100);
    reporter.event(&Event::StepFinished {
        job: &job_label,
        step: &step(0),
        outcome: Conclusion::Success,
        conclusion: Conclusion::Success,
        duration: Duration::ZERO,
    });
    forge
        .wait_until(WAIT, || (forge.log_lines(job).len() == 100).then_some(()))
        .await
        .expect("the first rows delivered");
    // The forge takes nothing more; the runner goes on, then dies.
    forge.go_down().await;
    reporter.event(&Event::StepStarted {
        job: &job_label,
        step: &step(1),
    });
    lines(&reporter, &step(1), 100..5000);
    drop(reporter);
    assert_eq!(journals(spool.path()).len(), 1);
    forge.come_up().await.expect("up");

    let done = finalize_journals(
        &client,
        &spool.path().join("journal"),
        &CancellationToken::new(),
    )
    .await;
    assert!(
        matches!(done.as_slice(), [Finalized::Reported { task_id: id, damaged: false, .. }] if *id == task_id),
        "{done:?}"
    );
    let rows = forge.log_lines(job);
    assert_eq!(tally(&rows, 5000), (0, 0), "rows lost and doubled");
    assert!(
        rows.last().is_some_and(|r| r.contains(STOPPED_ROW)),
        "{:?}",
        rows.last()
    );
    let task = forge.task(job).expect("task");
    assert!(task.log_archived);
    assert_eq!(task.status, Status::Failure);
    let steps: Vec<Status> = task.steps.iter().map(|s| s.status).collect();
    assert_eq!(steps, [Status::Success, Status::Failure]);
    assert_eq!(
        (task.steps[1].log_index, task.steps[1].log_length),
        (100, 4900)
    );
    assert!(journals(spool.path()).is_empty());
}

#[tokio::test]
async fn a_task_the_forge_ended_meanwhile_just_loses_its_journal() {
    let spool = tempfile::tempdir().expect("dir");
    let (forge, client, job, task_id) = task_in_hand(1).await;
    let reporter = TaskReporter::start(
        client.clone(),
        task_id,
        1,
        options(spool.path(), Duration::from_millis(50)),
    );
    lines(&reporter, &step(0), 0..5);
    drop(reporter);
    assert!(forge.cancel_task(job));
    let done = finalize_journals(
        &client,
        &spool.path().join("journal"),
        &CancellationToken::new(),
    )
    .await;
    assert_eq!(done, vec![Finalized::EndedByForge { task_id }]);
    assert!(journals(spool.path()).is_empty());
    assert_eq!(forge.task(job).expect("task").status, Status::Cancelled);
}

#[tokio::test]
async fn a_damaged_journal_is_finalized_with_what_it_holds_and_set_aside() {
    let spool = tempfile::tempdir().expect("dir");
    let (forge, client, job, task_id) = task_in_hand(1).await;
    forge.go_down().await;
    let reporter = TaskReporter::start(
        client.clone(),
        task_id,
        1,
        options(spool.path(), Duration::from_millis(50)),
    );
    lines(&reporter, &step(0), 0..50);
    drop(reporter);
    forge.come_up().await.expect("up");
    let dir = journals(spool.path()).remove(0);
    let segment = std::fs::read_dir(&dir)
        .expect("dir")
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "seg"))
        .expect("a segment");
    let mut bytes = std::fs::read(&segment).expect("read");
    // A byte in the middle of the rows (well before the end of what was written).
    let written = bytes.iter().rposition(|&b| b != 0).expect("written");
    bytes[written / 2] ^= 0x5a;
    std::fs::write(&segment, &bytes).expect("write");

    let done = finalize_journals(
        &client,
        &spool.path().join("journal"),
        &CancellationToken::new(),
    )
    .await;
    assert!(
        matches!(done.as_slice(), [Finalized::Reported { damaged: true, .. }]),
        "{done:?}"
    );
    let rows = forge.log_lines(job);
    let (missing, doubled) = tally(&rows, 50);
    assert!(
        missing > 0 && missing < 50,
        "rows after the damage are lost: {missing}"
    );
    assert_eq!(doubled, 0);
    assert!(rows
        .iter()
        .any(|r| r.contains("journal of this task was damaged")));
    assert_eq!(forge.task(job).expect("task").status, Status::Failure);
    assert!(journals(spool.path()).is_empty());
    let aside = std::fs::read_dir(spool.path().join("journal-damaged"))
        .expect("set aside")
        .count();
    assert_eq!(aside, 1);
}

/// The same runner started twice (its folder shared): the second leaves the first one's
/// running task alone.
#[tokio::test]
async fn a_journal_a_live_reporter_holds_is_left_alone() {
    let spool = tempfile::tempdir().expect("dir");
    let (forge, client, job, task_id) = task_in_hand(1).await;
    let reporter = TaskReporter::start(
        client.clone(),
        task_id,
        1,
        options(spool.path(), Duration::from_millis(50)),
    );
    lines(&reporter, &step(0), 0..5);
    let done = finalize_journals(
        &client,
        &spool.path().join("journal"),
        &CancellationToken::new(),
    )
    .await;
    assert!(done.is_empty(), "{done:?}");
    assert_eq!(journals(spool.path()).len(), 1);
    assert_eq!(forge.task(job).expect("task").status, Status::Running);
    reporter
        .finish(TaskResult::Success, Vec::new())
        .await
        .expect("final report");
    assert_eq!(forge.task(job).expect("task").status, Status::Success);
}
