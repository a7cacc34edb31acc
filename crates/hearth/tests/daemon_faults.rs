//! The fault matrix (issue 17): the runner killed mid-job (host and container jobs), the forge
//! down for a minute, the Docker daemon restarted, the work disk full. Each test counts the
//! numbered rows the job printed against those the fake forge holds, and what is left behind
//! (containers, networks and volumes labelled with the runner's uuid, job folders, processes
//! carrying the job's `RUNNER_TRACKING_ID`), prints `rows lost: L, rows duplicated: D,
//! leaked: K` and wants all three zero.

#[path = "daemon/harness.rs"]
#[allow(dead_code)]
mod harness;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use harness::{docker_leftovers_in, Harness, FAST};
use hearth_fake_forge::{Options, Status, TaskSpec};

const LONG: Duration = Duration::from_secs(90);

fn job(runs_on: &str, steps: &str) -> String {
    format!("name: ci\non: push\njobs:\n  build:\n    runs-on: {runs_on}\n    steps:\n{steps}")
}

/// Rows `line 1` .. `line n` the job printed that the forge lacks, and those it holds more
/// than once.
fn tally(lines: &[String], printed: u32) -> (usize, usize) {
    let mut seen = vec![0usize; printed as usize + 1];
    for line in lines {
        if let Some(n) = line
            .strip_prefix("line ")
            .and_then(|n| n.parse::<usize>().ok())
        {
            if n <= printed as usize {
                seen[n] += 1;
            }
        }
    }
    let lost = seen[1..].iter().filter(|&&c| c == 0).count();
    let duplicated = seen[1..].iter().map(|&c| c.saturating_sub(1)).sum();
    (lost, duplicated)
}

/// What the runner `uuid` left: Docker containers, networks and volumes (through `docker`),
/// job folders under `work` (those holding a `.hearth-job` record), processes carrying
/// `tracking` in their environment.
fn leftovers(docker: &dyn Fn() -> Command, uuid: &str, work: &Path, tracking: &str) -> Vec<String> {
    let mut left = docker_leftovers_in(docker, uuid);
    left.extend(
        job_folders(work)
            .into_iter()
            .map(|p| format!("folder {}", p.display())),
    );
    if !tracking.is_empty() {
        left.extend(
            tracked_processes(tracking)
                .into_iter()
                .map(|pid| format!("process {pid}")),
        );
    }
    left
}

/// Folders at most two levels under `work` that hold a job's record.
fn job_folders(work: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let children = |dir: &Path| -> Vec<PathBuf> {
        std::fs::read_dir(dir)
            .map(|d| {
                d.flatten()
                    .map(|e| e.path())
                    .filter(|p| p.is_dir())
                    .collect()
            })
            .unwrap_or_default()
    };
    for first in children(work) {
        if first.join(".hearth-job").exists() {
            found.push(first.clone());
        }
        for second in children(&first) {
            if second.join(".hearth-job").exists() {
                found.push(second);
            }
        }
    }
    found
}

fn tracked_processes(tracking: &str) -> Vec<i32> {
    let needle = format!("RUNNER_TRACKING_ID={tracking}");
    std::fs::read_dir("/proc")
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
                .filter(|pid| {
                    std::fs::read(format!("/proc/{pid}/environ"))
                        .is_ok_and(|env| env.split(|&b| b == 0).any(|var| var == needle.as_bytes()))
                })
                .filter(|pid| {
                    // A zombie holds nothing.
                    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
                        let state = stat
                            .rfind(')')
                            .and_then(|at| stat[at + 1..].trim().chars().next());
                        !matches!(state, Some('Z' | 'X'))
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Waits until nothing is left (the daemon reaps at start, after finalizing), then says and
/// checks the tally.
async fn report(
    name: &str,
    lost: usize,
    duplicated: usize,
    leftovers: impl Fn() -> Vec<String>,
    context: &str,
) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut left = leftovers();
    while !left.is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        left = leftovers();
    }
    println!(
        "{name}: rows lost: {lost}, rows duplicated: {duplicated}, leaked: {}",
        left.len()
    );
    assert_eq!(
        (lost, duplicated, left.len()),
        (0, 0, 0),
        "{left:#?}\n{context}"
    );
}

/// The journals left in the runner's spool folder (`.hearth-spool/journal`).
fn journals(h: &Harness) -> Vec<PathBuf> {
    std::fs::read_dir(h.path(".hearth-spool/journal"))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

/// Waits until the journal of the only running task holds `row`.
async fn journaled(h: &Harness, row: &str) {
    let deadline = Instant::now() + LONG;
    loop {
        let held = journals(h).iter().any(|dir| {
            hearth_forge::reporter::journal::read_journal(dir)
                .is_ok_and(|j| j.rows.iter().any(|r| r.content == row))
        });
        if held {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{row:?} never reached the journal"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A file the job writes, found under `root` (a container job's folder is the runner's to
/// name).
async fn find_file(root: &Path, name: &str) -> PathBuf {
    let deadline = Instant::now() + LONG;
    loop {
        let mut stack = vec![root.to_owned()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.file_name().is_some_and(|n| n == name) {
                    return path;
                }
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    stack.push(path);
                }
            }
        }
        assert!(Instant::now() < deadline, "the job never wrote {name}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Step 0 prints lines 1-100 and ends; step 1 prints 101-`PRINTED` once the test lets it,
/// then sleeps; step 2 never runs. The job writes its tracking id and waits for `go` in its
/// workspace.
const PRINTED: u32 = 600;

fn killed_job(runs_on: &str) -> String {
    job(
        runs_on,
        &format!(
            "      - run: |\n          echo \"$RUNNER_TRACKING_ID\" > tracking\n          \
             for i in $(seq 1 100); do echo \"line $i\"; done\n      - run: |\n          \
             touch ready\n          while [ ! -e go ]; do sleep 0.05; done\n          \
             for i in $(seq 101 {PRINTED}); do echo \"line $i\"; done\n          sleep 300\n      \
             - run: echo never\n"
        ),
    )
}

/// The runner is killed (SIGKILL) while its job runs and the forge has not taken the last
/// 500 rows (it is down); started again, the runner finalizes the task from its journal: every
/// row once, the steps that ended, a failure saying it stopped; and reaps what the job left.
async fn killed_mid_job(labels: &str, runs_on: &str, docker_job: bool) {
    let h = Harness::start(Options::gitea()).await;
    h.config(&format!("{FAST}  labels: [{labels}]\n"));
    h.registered().await;
    let uuid = h.runner_uuid();
    let id = h.forge.queue_task(TaskSpec::new(killed_job(runs_on)));
    let daemon = h.daemon(&[]);
    h.row_appears(id, "line 100", LONG).await;
    let ready = find_file(&h.path("work"), "ready").await;
    let workspace = ready.parent().expect("the workspace").to_owned();
    let tracking = if docker_job {
        String::new()
    } else {
        std::fs::read_to_string(workspace.join("tracking"))
            .expect("the job wrote its tracking id")
            .trim()
            .to_owned()
    };
    // The rows from here on reach the runner's journal, not the forge.
    h.forge.go_down().await;
    std::fs::write(workspace.join("go"), "").expect("go");
    journaled(&h, &format!("line {PRINTED}")).await;
    // What a crash, the OOM killer or `kill -9` does: no cleanup, no report.
    daemon.signal(libc::SIGKILL);
    let (_, first_log) = daemon.exit(Duration::from_secs(15)).await;
    assert_eq!(journals(&h).len(), 1, "{first_log}");
    h.forge.come_up().await.expect("the forge comes back");

    let started = Instant::now();
    let daemon = h.daemon(&[]);
    let task = h.done(id, LONG).await;
    let finalized_in = started.elapsed();
    let docker = || Command::new("docker");
    let work = h.path("work");
    let left = || leftovers(&docker, &uuid, &work, &tracking);
    let lines = h.forge.log_lines(id);
    let (lost, duplicated) = tally(&lines, PRINTED);
    // Report before stopping: the reap runs at start, before the first fetch.
    report(
        if docker_job {
            "killed mid container job"
        } else {
            "killed mid host job"
        },
        lost,
        duplicated,
        left,
        &format!("{lines:#?}"),
    )
    .await;
    let log = daemon.stop().await;
    println!("finalized {finalized_in:?} after the restart");

    assert_eq!(task.status, Status::Failure, "{log}");
    assert!(task.log_archived, "{log}");
    let last = lines
        .iter()
        .rev()
        .find(|l| !l.trim().is_empty())
        .expect("rows");
    assert!(
        last.contains(hearth_forge::reporter::recover::STOPPED_ROW),
        "{last}\n{log}"
    );
    let results: Vec<Status> = task.steps.iter().map(|s| s.status).collect();
    assert_eq!(
        results,
        [Status::Success, Status::Failure, Status::Cancelled],
        "{log}"
    );
    // The running step's range holds its rows, the stopped row after it.
    let step_rows = h.step_rows(id, 1);
    assert_eq!(
        step_rows.first().map(String::as_str),
        Some("line 101"),
        "{step_rows:?}"
    );
    assert_eq!(
        step_rows.last().map(String::as_str),
        Some(format!("line {PRINTED}").as_str())
    );
    assert!(journals(&h).is_empty(), "{:?}", journals(&h));
}

#[tokio::test]
async fn a_host_job_killed_with_its_runner_is_finalized_with_every_row_when_it_restarts() {
    killed_mid_job("\"linux:host\"", "linux", false).await;
}

#[tokio::test]
async fn a_container_job_killed_with_its_runner_is_finalized_with_every_row_when_it_restarts() {
    killed_mid_job("\"linux:docker://hearth-test/busybox:1\"", "linux", true).await;
}

/// The forge is down for a minute while a job prints: every row arrives once, the journal
/// held the rows it had not taken, and it is gone once the task is reported.
#[tokio::test]
async fn every_row_arrives_once_after_the_forge_was_down_for_60_seconds() {
    let h = Harness::ready(Options::gitea(), FAST).await;
    let uuid = h.runner_uuid();
    let printed = 800;
    let payload = job(
        "linux",
        &format!(
            "      - run: |\n          echo \"$RUNNER_TRACKING_ID\" > \"$RUNNER_TEMP/../tracking\"\n          \
             for i in $(seq 1 {printed}); do echo \"line $i\"; sleep 0.1; done\n"
        ),
    );
    let id = h.forge.queue_task(TaskSpec::new(payload));
    let daemon = h.daemon(&[]);
    h.row_appears(id, "line 20", LONG).await;
    let tracking_file = find_file(&h.path("work"), "tracking").await;
    let tracking = std::fs::read_to_string(&tracking_file)
        .expect("tracking id")
        .trim()
        .to_owned();
    h.forge.go_down().await;
    // The fault itself lasts a minute; the rows of that minute wait in the journal.
    let down = Instant::now();
    journaled(&h, "line 100").await;
    tokio::time::sleep(Duration::from_secs(60).saturating_sub(down.elapsed())).await;
    h.forge.come_up().await.expect("the forge comes back");
    let task = h.done(id, Duration::from_secs(180)).await;
    let lines = h.forge.log_lines(id);
    let (lost, duplicated) = tally(&lines, printed);
    let docker = || Command::new("docker");
    let work = h.path("work");
    report(
        "forge down 60 s",
        lost,
        duplicated,
        || leftovers(&docker, &uuid, &work, &tracking),
        "",
    )
    .await;
    let log = daemon.stop().await;
    assert_eq!(task.status, Status::Success, "{log}");
    assert!(
        task.log_archived,
        "{log}\n{:?}\n{:#?}",
        h.forge.request_counts(),
        &lines[lines.len().saturating_sub(3)..]
    );
    assert!(journals(&h).is_empty(), "{:?}", journals(&h));
}

/// The runner's Docker daemon (a second one, over TCP and TLS, so the machine's own daemon
/// and the tests using it are left alone) is restarted while a container job runs: the job
/// fails saying so, nothing is left, and the runner runs the next job.
#[tokio::test]
async fn a_docker_restart_mid_job_fails_the_job_cleanly_and_the_next_job_runs() {
    let mut dockerd = hearth_test_dockerd::TlsDockerd::start();
    let h = Harness::start(Options::gitea()).await;
    h.env("DOCKER_TLS_VERIFY", "1");
    h.env(
        "DOCKER_CERT_PATH",
        &dockerd.client_certs.display().to_string(),
    );
    h.config(&format!(
        "{FAST}  labels: [\"linux:docker://hearth-test/busybox:1\"]\ncontainer:\n  docker_host: {}\n",
        dockerd.address
    ));
    h.registered().await;
    wait_for_docker(&dockerd).await;
    dockerd.load("hearth-test/busybox:1");
    let uuid = h.runner_uuid();
    let printed = 50;
    let payload = job(
        "linux",
        &format!(
            "      - run: |\n          for i in $(seq 1 {printed}); do echo \"line $i\"; done\n          \
             sleep 300\n"
        ),
    );
    let id = h.forge.queue_task(TaskSpec::new(payload));
    let daemon = h.daemon(&[]);
    h.row_appears(id, &format!("line {printed}"), LONG).await;
    dockerd.restart();
    let task = h.done(id, LONG).await;
    wait_for_docker(&dockerd).await;
    let lines = h.forge.log_lines(id);
    assert_eq!(task.status, Status::Failure, "{lines:#?}");
    let (lost, duplicated) = tally(&lines, printed);

    // The runner goes on: the next job runs on the daemon once it is back.
    let next = h.forge.queue_task(TaskSpec::new(job(
        "linux",
        "      - run: echo next job ran\n",
    )));
    let next_task = h.done(next, LONG).await;
    let cli = || dockerd.cli();
    let work = h.path("work");
    // Docker was away when the failed job's cleanup ran: the runner removes its container,
    // network and volume once Docker is back (no restart, no wait for the 15-minute reap).
    report(
        "docker restarted",
        lost,
        duplicated,
        || leftovers(&cli, &uuid, &work, ""),
        &format!("{lines:#?}\n{}", dockerd.log()),
    )
    .await;
    let log = daemon.stop().await;
    assert!(
        log.contains("removed what a job left while Docker was away"),
        "{log}"
    );
    assert_eq!(
        next_task.status,
        Status::Success,
        "{:#?}\n{log}",
        h.forge.log_lines(next)
    );
    let next_lines = h.forge.log_lines(next);
    assert!(
        next_lines.iter().any(|l| l == "next job ran"),
        "{next_lines:#?}\n{log}"
    );
    // The failed job's log says what happened.
    assert!(
        lines.iter().any(|l| l.starts_with("##[error]")
            && l.contains("the Docker daemon stopped answering while it ran")),
        "{lines:#?}"
    );
}

async fn wait_for_docker(dockerd: &hearth_test_dockerd::TlsDockerd) {
    let deadline = Instant::now() + LONG;
    while !dockerd
        .cli()
        .arg("info")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        assert!(
            Instant::now() < deadline,
            "dockerd never answered: {}",
            dockerd.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A 20 MiB tmpfs mounted over `dir`, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path) -> Tmpfs {
        std::fs::create_dir_all(dir).expect("mount point");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=20m", "tmpfs"])
            .arg(dir)
            .status()
            .expect("mount runs");
        assert!(status.success(), "this test mounts a tmpfs: it needs root");
        Tmpfs(dir.to_owned())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// The jobs' disk (a 20 MiB tmpfs holding the job folders and the runner's spool folder,
/// journals included) fills up mid-job: the job fails, every row it printed arrives (the
/// ones printed while the disk was full included), nothing is left, and once the job's
/// folder is gone the runner runs the next job.
#[tokio::test]
async fn a_full_work_disk_fails_the_job_cleanly_and_the_next_job_runs() {
    let h = Harness::start(Options::gitea()).await;
    let work = h.path("work");
    let _disk = Tmpfs::mount(&work);
    let spool = work.join("spool");
    // The disk guard off: its default minimum (1 GiB) is more than this whole disk, and the
    // test is of a disk that fills up while a job runs (the guard has its own test).
    h.config(&format!(
        "{FAST}  log_spill_dir: {}\nhealth_check:\n  min_free_disk_space_mb: 0\n",
        spool.display()
    ));
    h.registered().await;
    let uuid = h.runner_uuid();
    let printed = 250;
    let payload = job(
        "linux",
        &format!(
            "      - run: |\n          for i in $(seq 1 50); do echo \"line $i\"; done\n          \
             dd if=/dev/zero of=fill bs=1M count=64\n      - if: always()\n        run: |\n          \
             df -k . | tail -1\n          for i in $(seq 51 {printed}); do echo \"line $i\"; done\n"
        ),
    );
    let id = h.forge.queue_task(TaskSpec::new(payload));
    let daemon = h.daemon(&[]);
    let task = h.done(id, LONG).await;
    let lines = h.forge.log_lines(id);
    assert_eq!(task.status, Status::Failure, "{lines:#?}");
    assert!(
        lines.iter().any(|l| l.contains("No space left on device")),
        "{lines:#?}"
    );
    let (lost, duplicated) = tally(&lines, printed);

    let next = h.forge.queue_task(TaskSpec::new(job(
        "linux",
        "      - run: |\n          head -c 1048576 /dev/zero > one-mib\n          echo next job ran\n",
    )));
    let next_task = h.done(next, LONG).await;
    let docker = || Command::new("docker");
    report(
        "work disk full",
        lost,
        duplicated,
        || leftovers(&docker, &uuid, &work, ""),
        &format!("{lines:#?}"),
    )
    .await;
    let log = daemon.stop().await;
    assert_eq!(
        next_task.status,
        Status::Success,
        "{:#?}\n{log}",
        h.forge.log_lines(next)
    );
    // The journal's segment was allocated before the disk filled: it went on writing, and
    // nothing met the full disk through a mapping (which would be a SIGBUS).
    assert!(!log.contains("panicked"), "{log}");
    assert!(journals_in(&spool).is_empty());
}

fn journals_in(spool: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(spool.join("journal"))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}
