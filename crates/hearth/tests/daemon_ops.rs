//! The daemon as an operator runs it for months: its metrics scraped over HTTP while and after
//! jobs run, `/healthz` and `/readyz` (unready before the declaration and from the first
//! SIGTERM), the disk guard pausing on a nearly full work disk (a small tmpfs) and resuming,
//! and 200 jobs in a row with random cancels leaving nothing behind.

#[allow(dead_code)] // not every helper of the daemon's harness is used here
#[path = "daemon/harness.rs"]
mod harness;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use harness::{docker_leftovers, Harness, FAST};
use hearth_fake_forge::{Fault, Method, Options, Status, TaskSpec};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const LONG: Duration = Duration::from_secs(60);

fn job(runs_on: &str, steps: &str) -> String {
    format!("name: ci\non: push\njobs:\n  build:\n    runs-on: {runs_on}\n    steps:\n{steps}")
}

/// A loopback port nothing listens on now.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address").port()
}

fn metrics_config(port: u16) -> String {
    format!("metrics:\n  enabled: true\n  addr: 127.0.0.1:{port}\n")
}

/// `GET path` on the daemon's metrics address: the status code and the body; `None` while
/// nothing listens yet.
async fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: hearth\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.ok()?;
    let status = answer.split(' ').nth(1)?.parse().ok()?;
    let body = answer.split_once("\r\n\r\n")?.1.to_owned();
    Some((status, body))
}

/// Polls `path` until `check` holds for its answer; panics with the last answer otherwise.
async fn answer_until(
    port: u16,
    path: &str,
    what: &str,
    check: impl Fn(u16, &str) -> bool,
) -> (u16, String) {
    let deadline = Instant::now() + LONG;
    let mut last = None;
    while Instant::now() < deadline {
        if let Some((status, body)) = get(port, path).await {
            if check(status, &body) {
                return (status, body);
            }
            last = Some((status, body));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{path} never showed {what}; last answer: {last:?}");
}

/// The value of the sample named exactly `sample` (name and labels) in an exposition.
fn value(text: &str, sample: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(sample)?.strip_prefix(' '))
        .and_then(|v| v.split(' ').next()?.parse().ok())
}

fn metric(text: &str, sample: &str) -> f64 {
    value(text, sample).unwrap_or_else(|| panic!("no sample {sample}:\n{text}"))
}

/// A step that prints `waiting`, then waits until the file `go` exists.
fn wait_for(go: &Path) -> String {
    format!(
        "      - run: echo first\n      - run: |\n          echo waiting\n          \
         while [ ! -e {} ]; do sleep 0.05; done\n          echo went\n",
        go.display()
    )
}

#[tokio::test]
async fn metrics_count_jobs_requests_and_rows_and_the_probes_answer() {
    let port = free_port();
    let h = Harness::ready(Options::gitea(), &format!("{FAST}{}", metrics_config(port))).await;
    let go = h.path("go");
    let first = h
        .forge
        .queue_task(TaskSpec::new(job("linux", &wait_for(&go))));
    let daemon = h.daemon(&[]);
    h.row_appears(first, "waiting", LONG).await;

    let (_, during) = answer_until(port, "/metrics", "a running job", |status, body| {
        status == 200 && value(body, "hearth_running_jobs") == Some(1.0)
    })
    .await;
    assert_eq!(metric(&during, "hearth_capacity"), 1.0);
    assert_eq!(metric(&during, "hearth_queue_wait_seconds_count"), 1.0);
    assert_eq!(get(port, "/healthz").await.map(|a| a.0), Some(200));
    assert_eq!(get(port, "/readyz").await.map(|a| a.0), Some(200));

    // A fetch the forge fails (a proxy's 503) is counted by method and code.
    h.forge.fail_next(Fault::http(503).only(Method::FetchTask));
    std::fs::write(&go, "").expect("go");
    let task = h.done(first, LONG).await;
    assert_eq!(task.status, Status::Success);
    let second = h
        .forge
        .queue_task(TaskSpec::new(job("linux", "      - run: exit 3\n")));
    assert_eq!(h.done(second, LONG).await.status, Status::Failure);

    // The task journal's folder (beside `.runner`, in the spill folder) is measured at each
    // scrape, whatever is in it.
    let journal = h.path(".hearth-spool/journal/planted");
    std::fs::create_dir_all(&journal).expect("journal folder");
    std::fs::write(journal.join("rows"), [7u8; 1234]).expect("a journal file");
    let (_, after) = answer_until(port, "/metrics", "both jobs counted", |_, body| {
        value(body, "hearth_jobs_total{result=\"failure\"}") == Some(1.0)
            && value(body, "hearth_running_jobs") == Some(0.0)
    })
    .await;
    let log = daemon.stop().await;
    println!("{after}");
    assert_eq!(metric(&after, "hearth_jobs_total{result=\"success\"}"), 1.0);
    assert_eq!(metric(&after, "hearth_job_duration_seconds_count"), 2.0);
    assert!(
        metric(&after, "hearth_job_duration_seconds_sum") > 0.0,
        "{log}"
    );
    // Two steps of the first job, one of the second.
    assert_eq!(metric(&after, "hearth_step_duration_seconds_count"), 3.0);
    assert_eq!(metric(&after, "hearth_queue_wait_seconds_count"), 2.0);
    let sent = metric(&after, "hearth_log_rows_sent_total");
    let held = (h.forge.task(first).expect("task").log_length
        + h.forge.task(second).expect("task").log_length) as f64;
    assert_eq!(sent, held, "every row the forge holds, counted once");
    assert_eq!(metric(&after, "hearth_log_rows_pending"), 0.0);
    let fetches = metric(
        &after,
        "hearth_forge_request_duration_seconds_count{method=\"FetchTask\"}",
    );
    assert!(fetches >= 2.0, "{after}");
    assert!(
        fetches <= h.forge.request_count(Method::FetchTask) as f64,
        "no more fetches counted than the forge saw"
    );
    for method in ["UpdateLog", "UpdateTask", "Declare"] {
        let sample = format!("hearth_forge_request_duration_seconds_count{{method=\"{method}\"}}");
        assert!(metric(&after, &sample) >= 1.0, "{sample}\n{after}");
    }
    let errors = "hearth_forge_request_errors_total{method=\"FetchTask\",code=\"unavailable\"}";
    assert_eq!(metric(&after, errors), 1.0, "{after}");
    assert!(
        metric(&after, "hearth_journal_size_bytes") >= 1234.0,
        "{after}"
    );
    assert_eq!(metric(&after, "hearth_disk_guard_paused"), 0.0);
    assert!(metric(&after, "hearth_disk_free_bytes{disk=\"work\"}") > 0.0);
}

#[tokio::test]
async fn readyz_waits_for_the_declaration_and_turns_unready_at_the_first_sigterm() {
    let port = free_port();
    let config = FAST.replace("shutdown_timeout: 1s", "shutdown_timeout: 60s");
    let h = Harness::ready(
        Options::gitea(),
        &format!("{config}{}", metrics_config(port)),
    )
    .await;
    // The forge is slow to take the declaration: meanwhile the runner is alive, not ready.
    h.forge
        .set_response_delay(Some(Method::Declare), Duration::from_secs(2));
    let go = h.path("go");
    let id = h
        .forge
        .queue_task(TaskSpec::new(job("linux", &wait_for(&go))));
    let daemon = h.daemon(&[]);
    let (_, why) = answer_until(port, "/readyz", "503 before the declaration", |s, _| {
        s == 503
    })
    .await;
    assert!(why.contains("not declared"), "{why}");
    assert_eq!(get(port, "/healthz").await.map(|a| a.0), Some(200));
    h.row_appears(id, "waiting", LONG).await;
    answer_until(port, "/readyz", "200 once declared", |s, _| s == 200).await;

    daemon.signal(libc::SIGTERM);
    let (_, why) = answer_until(port, "/readyz", "503 while draining", |s, _| s == 503).await;
    assert!(why.contains("shutting down"), "{why}");
    // Still alive, still counting the job that drains.
    assert_eq!(get(port, "/healthz").await.map(|a| a.0), Some(200));
    let (_, text) = get(port, "/metrics").await.expect("metrics while draining");
    assert_eq!(metric(&text, "hearth_running_jobs"), 1.0);

    std::fs::write(&go, "").expect("go");
    let (code, log) = daemon.exit(LONG).await;
    assert_eq!(code, Some(0), "{log}");
    assert_eq!(
        h.forge.task(id).expect("task").status,
        Status::Success,
        "{log}"
    );
}

/// A container job's lookups in the runner's cache are counted: one that finds nothing is a
/// miss (hits go the same way, from the activity the cache server records per job).
#[tokio::test]
async fn cache_lookups_of_jobs_are_counted() {
    let port = free_port();
    let h = Harness::ready(
        Options::gitea(),
        &format!(
            "{FAST}  labels: [\"linux:docker://hearth-test/busybox:1\"]\n{}",
            metrics_config(port)
        ),
    )
    .await;
    let probe = job(
        "linux",
        "      - run: wget -q -O /dev/null \"${ACTIONS_CACHE_URL}_apis/artifactcache/cache?keys=none&version=v\"\n",
    );
    let id = h.forge.queue_task(TaskSpec::new(probe));
    let daemon = h.daemon(&[]);
    let task = h.done(id, LONG).await;
    let (_, text) = answer_until(port, "/metrics", "the job counted", |_, body| {
        value(body, "hearth_jobs_total{result=\"success\"}") == Some(1.0)
    })
    .await;
    let log = daemon.stop().await;
    let lines = h.forge.log_lines(id);
    assert_eq!(task.status, Status::Success, "{lines:#?}\n{log}");
    assert!(
        lines.iter().any(|l| l == "Cache: missed none"),
        "{lines:#?}"
    );
    assert_eq!(metric(&text, "hearth_cache_misses_total"), 1.0, "{text}");
    assert_eq!(metric(&text, "hearth_cache_hits_total"), 0.0, "{text}");
}

/// A tmpfs mounted for the test, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, megabytes: u64) -> Tmpfs {
        std::fs::create_dir_all(at).expect("mount point");
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"])
            .arg(at)
            .status()
            .expect("mount runs");
        assert!(
            status.success(),
            "cannot mount a tmpfs at {} (the disk guard's test needs root)",
            at.display()
        );
        Tmpfs(at.to_owned())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

#[tokio::test]
async fn the_disk_guard_pauses_on_a_nearly_full_work_disk_and_resumes() {
    let port = free_port();
    let h = Harness::start(Options::gitea()).await;
    h.config(&format!(
        "{FAST}{}health_check:\n  min_free_disk_space_mb: 32\n  resume_free_disk_space_mb: 48\n",
        metrics_config(port)
    ));
    h.registered().await;
    let work = h.path("work");
    let _tmpfs = Tmpfs::mount(&work, 64);
    // The user's files in the work folder are not the runner's to remove.
    let ballast = work.join("ballast");
    std::fs::write(&ballast, vec![1u8; 40 << 20]).expect("40 MB written");
    std::fs::write(work.join("keep-me"), "mine").expect("a file of the user's");

    let id = h
        .forge
        .queue_task(TaskSpec::new(job("linux", "      - run: echo ran\n")));
    let daemon = h.daemon(&[]);
    let (_, paused) = answer_until(port, "/metrics", "the guard paused", |_, body| {
        value(body, "hearth_disk_guard_paused") == Some(1.0)
    })
    .await;
    let free = metric(&paused, "hearth_disk_free_bytes{disk=\"work\"}");
    assert!(free < (32 << 20) as f64, "{free}");
    let (_, why) = get(port, "/readyz").await.expect("readyz");
    assert!(why.contains("disk"), "{why}");
    assert_eq!(get(port, "/healthz").await.map(|a| a.0), Some(200));
    // Paused for a while (two guard rounds): the job is not taken.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(h.forge.job(id).expect("job").status, Status::Waiting);

    std::fs::remove_file(&ballast).expect("space freed");
    let task = h.done(id, LONG).await;
    assert_eq!(task.status, Status::Success);
    let (_, resumed) = answer_until(port, "/metrics", "the guard resumed", |_, body| {
        value(body, "hearth_disk_guard_paused") == Some(0.0)
    })
    .await;
    assert!(metric(&resumed, "hearth_disk_free_bytes{disk=\"work\"}") >= (48 << 20) as f64);
    assert_eq!(get(port, "/readyz").await.map(|a| a.0), Some(200));
    let log = daemon.stop().await;

    let warning = format!(
        "disk nearly full: {} has {} MB free, below health_check.min_free_disk_space_mb (32 MB)",
        work.display(),
        free as u64 >> 20
    );
    assert_eq!(log.matches("disk nearly full").count(), 1, "{log}");
    assert!(log.contains(&warning), "{warning}\n{log}");
    assert_eq!(log.matches("taking jobs again").count(), 1, "{log}");
    assert!(work.join("keep-me").exists(), "the user's file is kept");
}

/// A runner with host labels only has no Docker backend of its own; the step containers its
/// host jobs ran (a `docker://` step) and a crash left are still its leftovers, reaped at the
/// next start.
#[tokio::test]
async fn a_host_only_runner_reaps_the_step_containers_its_killed_host_job_left() {
    let h = Harness::ready(Options::gitea(), FAST).await;
    let uuid = h.runner_uuid();
    let payload = job(
        "linux",
        "      - run: echo started\n      - uses: docker://hearth-test/busybox:1\n        \
         with:\n          entrypoint: sleep\n          args: '60'\n",
    );
    let id = h.forge.queue_task(TaskSpec::new(payload));
    let daemon = h.daemon(&[]);
    h.row_appears(id, "started", LONG).await;
    let deadline = Instant::now() + LONG;
    while docker_leftovers(&uuid).is_empty() {
        assert!(
            Instant::now() < deadline,
            "the step's container never started"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // No cleanup at all, as after `kill -9` or the OOM killer.
    daemon.signal(libc::SIGKILL);
    daemon.exit(Duration::from_secs(15)).await;
    assert!(!docker_leftovers(&uuid).is_empty());

    // The daemon reaps before its first fetch: once it fetches, the reap is over.
    let fetches = h.forge.request_count(Method::FetchTask);
    let daemon = h.daemon(&[]);
    while h.forge.request_count(Method::FetchTask) == fetches {
        assert!(Instant::now() < deadline + LONG, "the daemon never fetched");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let log = daemon.stop().await;
    assert_eq!(docker_leftovers(&uuid), Vec::<String>::new(), "{log}");
    assert!(
        log.contains("removed what an earlier run left: container"),
        "{log}"
    );
}

/// A small seeded generator (SplitMix64): the run can be repeated with `HEARTH_TEST_SEED`.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Job folders (`<name>-<16 hex digits>`) under the host's and Docker's roots.
fn job_folders(work: &Path) -> Vec<String> {
    let mut left = Vec::new();
    for root in [work.to_owned(), work.join("docker")] {
        for entry in std::fs::read_dir(&root).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let unique = name.rsplit_once('-').map(|(_, hex)| hex);
            if unique
                .is_some_and(|hex| hex.len() == 16 && hex.chars().all(|c| c.is_ascii_hexdigit()))
            {
                left.push(format!("folder {}", entry.path().display()));
            }
        }
    }
    left
}

/// Processes of this test's host jobs still running: a job's tracking id in their
/// environment, and the test's folder.
fn job_processes(dir: &Path) -> Vec<String> {
    let needle = dir.display().to_string();
    let mut left = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        let environ = String::from_utf8_lossy(&environ);
        if environ.contains("RUNNER_TRACKING_ID=hearth_") && environ.contains(&needle) {
            left.push(format!("process {}", entry.file_name().to_string_lossy()));
        }
    }
    left
}

#[tokio::test]
async fn two_hundred_jobs_with_random_cancels_leave_nothing_behind() {
    const JOBS: usize = 200;
    let seed = std::env::var("HEARTH_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    println!("seed: {seed} (HEARTH_TEST_SEED={seed} repeats this run)");
    let mut rng = Rng(seed);
    let port = free_port();
    let h = Harness::ready(
        Options::gitea(),
        &format!(
            "{FAST}  capacity: 6\n  labels: [\"linux:docker://hearth-test/busybox:1\", \
             \"hostjob:host\"]\n{}",
            metrics_config(port)
        ),
    )
    .await;
    let uuid = h.runner_uuid();

    // Mostly container jobs; some on the host with a process left in the background (the
    // backend must stop it); some with a service container (a network and two containers).
    // A third are cancelled at a random moment after they were picked, a few while queued.
    let mut jobs = Vec::with_capacity(JOBS);
    for _ in 0..JOBS {
        let pause = format!("0.{}", rng.below(4));
        let kind = rng.below(10);
        // Every job prints `start`; all but the service jobs print `end` too.
        let ends = kind < 9;
        let payload = match kind {
            0..=6 => job(
                "linux",
                &format!("      - run: |\n          echo start\n          sleep {pause}\n          echo end\n"),
            ),
            7 | 8 => job(
                "hostjob",
                &format!(
                    "      - run: |\n          sleep 300 &\n          echo start\n          \
                     sleep {pause}\n          echo end\n"
                ),
            ),
            _ => format!(
                "name: ci\non: push\njobs:\n  build:\n    runs-on: linux\n    services:\n      \
                 idle:\n        image: hearth-test/busybox:1\n        entrypoint: sleep\n        \
                 command: '300'\n    steps:\n      - run: |\n          echo start\n          \
                 sleep {pause}\n"
            ),
        };
        let cancel = match rng.below(20) {
            0 => Some(Duration::ZERO),
            1..=6 => Some(Duration::from_millis(rng.below(1500))),
            _ => None,
        };
        let id = h.forge.queue_task(TaskSpec::new(payload));
        jobs.push((id, cancel, None::<Instant>, ends));
    }
    let started = Instant::now();
    let daemon = h.daemon(&[]);
    let deadline = started + Duration::from_secs(240);
    let mut cancelled = 0;
    loop {
        let mut all_done = true;
        for (id, cancel, picked, _) in jobs.iter_mut() {
            let view = h.forge.job(*id).expect("a queued job");
            let reported = view
                .task
                .as_ref()
                .is_none_or(|t| t.final_result_reported.is_some());
            if !(view.status.is_done() && reported) {
                all_done = false;
            }
            if view.status.is_done() {
                *cancel = None;
                continue;
            }
            if view.task.is_some() && picked.is_none() {
                *picked = Some(Instant::now());
            }
            let due = match (*cancel, *picked) {
                (Some(Duration::ZERO), _) => true,
                (Some(after), Some(at)) => at.elapsed() >= after,
                _ => false,
            };
            if due && h.forge.cancel_task(*id) {
                cancelled += 1;
                *cancel = None;
            }
        }
        if all_done {
            break;
        }
        assert!(Instant::now() < deadline, "the jobs did not end in time");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let took = started.elapsed();
    let views: Vec<_> = jobs
        .iter()
        .map(|(id, _, _, _)| h.forge.job(*id).expect("job"))
        .collect();
    // The daemon counts a task once the forge has taken its final report: a moment after.
    let picked = views.iter().filter(|v| v.task.is_some()).count() as f64;
    let counted = |text: &str| -> f64 {
        ["success", "failure", "cancelled", "skipped"]
            .iter()
            .filter_map(|r| value(text, &format!("hearth_jobs_total{{result=\"{r}\"}}")))
            .sum()
    };
    let (_, text) = answer_until(port, "/metrics", "every task taken counted", |_, body| {
        counted(body) == picked && value(body, "hearth_running_jobs") == Some(0.0)
    })
    .await;
    let log = daemon.stop().await;

    let count = |status| views.iter().filter(|v| v.status == status).count();
    let (succeeded, ended_cancelled) = (count(Status::Success), count(Status::Cancelled));
    println!(
        "{JOBS} jobs in {took:?}: {succeeded} succeeded, {ended_cancelled} cancelled \
         ({cancelled} cancels sent)"
    );
    assert_eq!(
        succeeded + ended_cancelled,
        JOBS,
        "every job succeeded or was cancelled\n{log}"
    );
    // Docker's data root is on this machine: the disk guard watches it too.
    assert!(
        metric(&text, "hearth_disk_free_bytes{disk=\"docker\"}") > 0.0,
        "{text}"
    );

    // Rows: a job that succeeded has each of its rows once; a cancelled one none twice.
    let (mut lost, mut duplicated) = (0, 0);
    for ((id, _, _, ends), view) in jobs.iter().zip(&views) {
        let lines = h.forge.log_lines(*id);
        let times = |row: &str| lines.iter().filter(|l| l.as_str() == row).count();
        let expected: &[&str] = if *ends { &["start", "end"] } else { &["start"] };
        for row in expected {
            let n = times(row);
            duplicated += n.saturating_sub(1);
            if view.status == Status::Success && n == 0 {
                lost += 1;
            }
        }
    }
    println!("rows lost: {lost}, rows duplicated: {duplicated}");
    assert_eq!((lost, duplicated), (0, 0), "{log}");

    let mut leaked = docker_leftovers(&uuid);
    leaked.extend(job_folders(&h.path("work")));
    leaked.extend(job_processes(h.dir.path()));
    println!("leaked: {}", leaked.len());
    for thing in &leaked {
        println!("  {thing}");
    }
    assert!(leaked.is_empty(), "{leaked:#?}\n{log}");
}
