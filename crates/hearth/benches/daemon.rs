//! Issue 6's daemon benchmarks: the release `hearth daemon` against the fake forge, as an
//! operator runs it (default config but for the jobs' folder). See bench/README.md.
//!
//! - idle: RSS and CPU over 60 s, requests per minute, then the median time from queueing a
//!   job to the runner picking it up (11 jobs queued at spread-out moments);
//! - queue: 20 one-step jobs queued at once, capacity 4, until the last is reported done;
//! - log: one job printing 200,000 lines of ~80 characters, until the forge holds every row
//!   (archived), rows per second and the daemon's peak RSS.
//!
//! - journal (only when named): one job printing 100,000 lines, with the task journal (the
//!   default) and without it, five times each, alternating; the ratio of the medians.
//!
//! `cargo bench -p hearth --bench daemon [-- idle|queue|log|journal]`; `IDLE_SECONDS=` shortens the idle
//! window for a quick look (the target needs the full 60). Prints one line per figure and
//! exits 1 when a target is missed.

use std::process::Stdio;
use std::time::{Duration, Instant};

use hearth_fake_forge::{FakeForge, JobId, Method, Options, TaskSpec};
use tokio::process::{Child, Command};

const TOKEN: &str = "bench-registration-token";

fn payload(steps: &str) -> String {
    format!("name: bench\non: push\njobs:\n  job:\n    runs-on: linux\n    steps:\n{steps}")
}

struct Runner {
    forge: FakeForge,
    dir: tempfile::TempDir,
}

impl Runner {
    async fn new(config: &str) -> Runner {
        let forge = FakeForge::start(Options::gitea().with_registration_token(TOKEN))
            .await
            .expect("fake forge");
        let dir = tempfile::tempdir().expect("temp dir");
        let work = dir.path().join("work");
        std::fs::write(
            dir.path().join("config.yaml"),
            format!("{config}host:\n  workdir_parent: {}\n", work.display()),
        )
        .expect("config");
        let runner = Runner { forge, dir };
        let url = runner.forge.url();
        let status = runner
            .hearth(&[
                "register",
                "--no-interactive",
                "--instance",
                &url,
                "--token",
                TOKEN,
                "--labels",
                "linux:host",
            ])
            .stdout(Stdio::null())
            .status()
            .await
            .expect("register runs");
        assert!(status.success(), "register failed");
        runner
    }

    fn hearth(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_hearth"));
        command
            .current_dir(self.dir.path())
            .arg("-c")
            .arg(self.dir.path().join("config.yaml"))
            .args(args)
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        command
    }

    fn daemon(&self) -> Child {
        self.hearth(&["daemon"]).spawn().expect("daemon starts")
    }

    async fn done(&self, job: JobId) {
        self.forge
            .wait_for_task_done(job, Duration::from_secs(300))
            .await
            .expect("the job ends");
    }
}

/// (VmRSS, VmHWM) in KiB.
fn memory(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// CPU time (user + system) the process used so far.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at ")".
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of stat; here indices 11 and 12.
    let total = ticks(11) + ticks(12);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Duration::from_millis(total * 1000 / hz)
}

struct Verdict {
    missed: bool,
}

impl Verdict {
    fn check(&mut self, what: &str, value: f64, unit: &str, holds: bool, target: &str) {
        let mark = if holds { "ok" } else { "MISSED" };
        println!("{what:<44} {value:>10.3} {unit:<8} target {target:<12} {mark}");
        self.missed |= !holds;
    }
}

async fn idle(verdict: &mut Verdict) {
    let seconds: u64 = std::env::var("IDLE_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let runner = Runner::new("").await;
    let mut daemon = runner.daemon();
    let pid = daemon.id().expect("pid");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let window_start = Instant::now();
    let cpu_start = cpu_time(pid);
    let mut peak_rss = 0;
    while window_start.elapsed() < Duration::from_secs(seconds) {
        peak_rss = peak_rss.max(memory(pid).0);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let window = window_start.elapsed();
    let cpu = cpu_time(pid) - cpu_start;
    let requests = runner
        .forge
        .requests()
        .iter()
        .filter(|r| r.at >= window_start)
        .count();
    let per_minute = requests as f64 * 60.0 / window.as_secs_f64();
    let cpu_percent = cpu.as_secs_f64() * 100.0 / window.as_secs_f64();
    let rss_mb = peak_rss as f64 / 1024.0;
    verdict.check(
        "idle: RSS (largest VmRSS)",
        rss_mb,
        "MiB",
        rss_mb <= 8.0,
        "<= 8",
    );
    verdict.check("idle: CPU", cpu_percent, "%", cpu_percent <= 0.2, "<= 0.2");
    verdict.check(
        "idle: requests to the forge",
        per_minute,
        "/min",
        per_minute <= 30.0,
        "<= 30",
    );

    // Pick-up: jobs queued at moments that fall anywhere in the polling cycle (3 to 9 s
    // after the last job, spread evenly, so the runner has settled into idle waits).
    let mut latencies = Vec::new();
    for i in 0..11u64 {
        tokio::time::sleep(Duration::from_millis(3000 + (i * 2371) % 6000)).await;
        let queued = Instant::now();
        let job = runner
            .forge
            .queue_task(TaskSpec::new(payload("      - run: true\n")));
        runner
            .forge
            .wait_for_task_picked(job, Duration::from_secs(60))
            .await
            .expect("picked");
        latencies.push(queued.elapsed().as_secs_f64());
        runner.done(job).await;
    }
    latencies.sort_by(f64::total_cmp);
    let median = latencies[latencies.len() / 2];
    verdict.check(
        "idle: job pick-up (median of 11)",
        median,
        "s",
        median <= 2.0,
        "<= 2",
    );
    let _ = daemon.kill().await;
}

async fn queue(verdict: &mut Verdict) {
    let runner = Runner::new("runner:\n  capacity: 4\n").await;
    let jobs: Vec<JobId> = (0..20)
        .map(|_| {
            runner
                .forge
                .queue_task(TaskSpec::new(payload("      - run: true\n")))
        })
        .collect();
    let started = Instant::now();
    let mut daemon = runner.daemon();
    for job in &jobs {
        runner.done(*job).await;
    }
    let took = started.elapsed().as_secs_f64();
    verdict.check(
        "queue: 20 jobs at capacity 4",
        took,
        "s",
        took <= 6.0,
        "<= 6",
    );
    let _ = daemon.kill().await;
}

async fn log(verdict: &mut Verdict) {
    let runner = Runner::new("").await;
    // 200,000 lines of 80 characters, printed by awk (fast, so the runner is what is measured).
    let step = "      - run: awk 'BEGIN { for (i = 0; i < 200000; i++) printf \"line %07d %s\\n\", i, \"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefghij\" }'\n";
    let job = runner.forge.queue_task(TaskSpec::new(payload(step)));
    let mut daemon = runner.daemon();
    let pid = daemon.id().expect("pid");
    runner
        .forge
        .wait_for_task_picked(job, Duration::from_secs(60))
        .await
        .expect("picked");
    let picked_at = Instant::now();
    let mut peak = 0;
    let done = runner
        .forge
        .wait_for_task_done(job, Duration::from_secs(300));
    tokio::pin!(done);
    loop {
        tokio::select! {
            result = &mut done => { result.expect("the job ends"); break; }
            _ = tokio::time::sleep(Duration::from_millis(20)) => {
                peak = peak.max(memory(pid).1);
            }
        }
    }
    let took = picked_at.elapsed().as_secs_f64();
    peak = peak.max(memory(pid).1);
    let lines = runner.forge.log_lines(job);
    let rows: Vec<&String> = lines.iter().filter(|l| l.starts_with("line ")).collect();
    let in_order = rows.len() == 200_000
        && rows
            .iter()
            .enumerate()
            .all(|(i, l)| l.get(5..12) == Some(format!("{i:07}").as_str()));
    verdict.check(
        "log: all 200,000 rows, in order",
        rows.len() as f64,
        "rows",
        in_order,
        "200000",
    );
    let rate = 200_000.0 / took;
    verdict.check(
        "log: rows delivered per second",
        rate,
        "rows/s",
        rate >= 50_000.0,
        ">= 50000",
    );
    let peak_mb = peak as f64 / 1024.0;
    verdict.check(
        "log: daemon peak RSS (VmHWM)",
        peak_mb,
        "MiB",
        peak_mb <= 20.0,
        "<= 20",
    );
    println!(
        "log: UpdateLog requests {}, UpdateTask requests {}",
        runner.forge.request_count(Method::UpdateLog),
        runner.forge.request_count(Method::UpdateTask)
    );
    let _ = daemon.kill().await;
}

/// What the task journal costs a job that prints: 100,000 lines of 80 characters, from the
/// runner holding the task until the forge has its final state, with the journal (the default)
/// and without it (a spool folder that cannot be made: the reporter then runs without a
/// journal, saying so), five runs each, alternating, medians compared.
async fn journal(verdict: &mut Verdict) {
    let step = "      - run: awk 'BEGIN { for (i = 0; i < 100000; i++) printf \"line %07d %s\\n\", i, \"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefghij\" }'\n";
    let mut with = Vec::new();
    let mut without = Vec::new();
    for _ in 0..5 {
        for journaled in [true, false] {
            let config = if journaled {
                String::new()
            } else {
                "runner:\n  log_spill_dir: /proc/hearth-bench-no-journal\n".to_owned()
            };
            let runner = Runner::new(&config).await;
            let job = runner.forge.queue_task(TaskSpec::new(payload(step)));
            let mut daemon = runner.daemon();
            runner
                .forge
                .wait_for_task_picked(job, Duration::from_secs(60))
                .await
                .expect("picked");
            let picked_at = Instant::now();
            runner.done(job).await;
            let took = picked_at.elapsed().as_secs_f64();
            let rows = runner
                .forge
                .log_lines(job)
                .iter()
                .filter(|l| l.starts_with("line "))
                .count();
            assert_eq!(rows, 100_000, "every row arrived");
            let _ = daemon.kill().await;
            if journaled {
                with.push(took);
            } else {
                without.push(took);
            }
        }
    }
    let median = |times: &mut Vec<f64>| {
        times.sort_by(f64::total_cmp);
        times[times.len() / 2]
    };
    let (with, without) = (median(&mut with), median(&mut without));
    println!("journal: 100,000-line job {with:.3} s with the journal, {without:.3} s without (medians of 5)");
    let ratio = with / without;
    verdict.check(
        "journal: time with / without",
        ratio,
        "x",
        ratio <= 1.2,
        "<= 1.2",
    );
}

fn main() {
    let which: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let wanted = |name: &str| which.is_empty() || which.iter().any(|w| w == name);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut verdict = Verdict { missed: false };
    println!(
        "hearth daemon against the fake forge; {} cores; load average {}",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    runtime.block_on(async {
        if wanted("queue") {
            queue(&mut verdict).await;
        }
        if wanted("log") {
            log(&mut verdict).await;
        }
        if wanted("idle") {
            idle(&mut verdict).await;
        }
        // Ten jobs: only when asked for by name.
        if which.iter().any(|w| w == "journal") {
            journal(&mut verdict).await;
        }
    });
    if verdict.missed {
        std::process::exit(1);
    }
}
