//! The host backend against real processes.
//!
//! Timing: only the promised "< 2 s" bounds are checked tightly; "the process is gone" is
//! polled generously, so that a loaded two-core machine does not make the tests flaky.

use std::collections::HashSet;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hearth_backend::{
    BackendError, CancellationToken, ExecEnd, ExecSpec, HostPath, JobRuntime, JobSpec, Stream,
};
use hearth_host::{HostBackend, HostJob};

const PATH: &str = "/usr/local/bin:/usr/bin:/bin";
/// How long to wait for something that should happen soon.
const PATIENCE: Duration = Duration::from_secs(15);

/// What a process wrote.
#[derive(Default)]
struct Output {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    chunks: usize,
}

impl Output {
    fn out(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    fn err(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
    /// The numbers printed on stdout, one a line.
    fn pids(&self) -> Vec<i32> {
        self.out()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }
}

fn backend(root: &Path) -> HostBackend {
    HostBackend::new(root.to_path_buf())
}

async fn job(root: &Path) -> HostJob {
    backend(root)
        .start_job(
            JobSpec {
                name: "test job".into(),
                repository: None,
                ..Default::default()
            },
            &CancellationToken::new(),
        )
        .await
        .expect("start")
}

/// A `sh -c script` spec in the workspace with a minimal environment.
fn sh(job: &HostJob, script: &str) -> ExecSpec {
    ExecSpec {
        argv: vec!["/bin/sh".into(), "-c".into(), script.into()],
        env: vec![
            ("PATH".into(), PATH.into()),
            ("RUNNER_TEMP".into(), job.paths().temp.to_string()),
        ],
        working_dir: job.paths().workspace.clone(),
        timeout: None,
    }
}

async fn run(job: &HostJob, spec: ExecSpec) -> (Result<ExecEnd, BackendError>, Output) {
    run_with(job, spec, &CancellationToken::new()).await
}

async fn run_with(
    job: &HostJob,
    spec: ExecSpec,
    cancel: &CancellationToken,
) -> (Result<ExecEnd, BackendError>, Output) {
    let mut output = Output::default();
    let mut sink = |stream: Stream, chunk: &[u8]| {
        output.chunks += 1;
        match stream {
            Stream::Stdout => output.stdout.extend_from_slice(chunk),
            Stream::Stderr => output.stderr.extend_from_slice(chunk),
        }
    };
    let end = job.run(spec, &mut sink, cancel).await;
    (end, output)
}

/// `(state, pgid, session)` of a process, from `/proc/<pid>/stat`.
fn stat(pid: i32) -> Option<(char, i32, i32)> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some((
        f.first()?.chars().next()?,
        f.get(2)?.parse().ok()?,
        f.get(3)?.parse().ok()?,
    ))
}

/// Alive: exists and is not a zombie waiting to be reaped.
fn alive(pid: i32) -> bool {
    matches!(stat(pid), Some((state, _, _)) if state != 'Z' && state != 'X')
}

/// The living members of a process group.
fn group_members(pgid: i32) -> Vec<i32> {
    let mut members = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        if let Some((state, group, _)) = stat(pid) {
            if group == pgid && state != 'Z' && state != 'X' {
                members.push(pid);
            }
        }
    }
    members
}

/// Polls `done` until it holds or [`PATIENCE`] runs out.
async fn eventually(mut done: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + PATIENCE;
    while Instant::now() < until {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    done()
}

async fn assert_group_gone(pgid: i32) {
    assert!(
        eventually(|| group_members(pgid).is_empty()).await,
        "group {pgid} still has {:?}",
        group_members(pgid)
    );
}

async fn assert_gone(pid: i32) {
    assert!(eventually(|| !alive(pid)).await, "{pid} is still alive");
}

/// Reads a pid a process wrote to `file`, waiting for it to appear.
async fn pid_in(file: &Path) -> i32 {
    let mut pid = None;
    let found = eventually(|| {
        pid = fs::read_to_string(file)
            .ok()
            .and_then(|s| s.trim().parse().ok());
        pid.is_some()
    })
    .await;
    assert!(found, "no pid in {}", file.display());
    pid.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn env_is_exactly_what_was_given_plus_the_tracking_id() {
    let root = tempfile::tempdir().unwrap();
    let job = job(root.path()).await;
    let other = self::job(root.path()).await;
    assert_ne!(job.tracking_id(), other.tracking_id());

    let spec = ExecSpec {
        argv: vec!["/usr/bin/env".into()],
        env: vec![
            ("A".into(), "1".into()),
            ("WITH_SPACES".into(), "x y  z".into()),
            ("EMPTY".into(), String::new()),
            ("RUNNER_TRACKING_ID".into(), "spoofed".into()),
        ],
        working_dir: job.paths().workspace.clone(),
        timeout: None,
    };
    let (end, out) = run(&job, spec).await;
    assert_eq!(end.unwrap(), ExecEnd::Exited(0));
    let got: HashSet<String> = out.out().lines().map(str::to_owned).collect();
    let want: HashSet<String> = [
        "A=1".to_owned(),
        "WITH_SPACES=x y  z".to_owned(),
        "EMPTY=".to_owned(),
        format!("RUNNER_TRACKING_ID={}", job.tracking_id()),
    ]
    .into();
    assert_eq!(got, want);
    job.finish_job().await.unwrap();
    other.finish_job().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_in_the_working_dir() {
    let root = tempfile::tempdir().unwrap();
    let job = job(root.path()).await;
    let sub = job.paths().workspace.join("sub dir");
    fs::create_dir(sub.as_str()).unwrap();
    for dir in [job.paths().workspace.clone(), sub, job.paths().temp.clone()] {
        let mut spec = sh(&job, "pwd -P");
        spec.working_dir = dir.clone();
        let (end, out) = run(&job, spec).await;
        assert_eq!(end.unwrap(), ExecEnd::Exited(0));
        assert_eq!(
            out.out().trim_end(),
            Path::new(dir.as_str())
                .canonicalize()
                .unwrap()
                .to_str()
                .unwrap()
        );
    }
    job.finish_job().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes_signals_and_start_failures() {
    let root = tempfile::tempdir().unwrap();
    let job = job(root.path()).await;
    for (script, want) in [
        ("exit 0", ExecEnd::Exited(0)),
        ("exit 3", ExecEnd::Exited(3)),
        ("exit 255", ExecEnd::Exited(255)),
        ("kill -TERM $$", ExecEnd::Signalled(15)),
        ("kill -KILL $$", ExecEnd::Signalled(9)),
    ] {
        let (end, _) = run(&job, sh(&job, script)).await;
        assert_eq!(end.unwrap(), want, "{script}");
    }
    assert!(ExecEnd::Exited(0).success());

    let mut empty = sh(&job, "");
    empty.argv.clear();
    assert!(matches!(
        run(&job, empty).await.0,
        Err(BackendError::EmptyCommand)
    ));

    let mut missing = sh(&job, "");
    missing.argv = vec!["/nonexistent/program".into()];
    assert!(matches!(
        run(&job, missing).await.0,
        Err(BackendError::Spawn { .. })
    ));

    let mut bad_dir = sh(&job, "true");
    bad_dir.working_dir = job.paths().workspace.join("missing");
    let error = run(&job, bad_dir).await.0.unwrap_err();
    assert!(
        matches!(error, BackendError::WorkingDirectory(_)),
        "{error}"
    );
    assert!(
        error.to_string().contains("missing does not exist"),
        "{error}"
    );
    job.finish_job().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_of_both_streams_arrives() {
    let root = tempfile::tempdir().unwrap();
    let job = job(root.path()).await;
    let (end, out) = run(
        &job,
        sh(&job, "echo out; echo err >&2; printf abc; printf def >&2"),
    )
    .await;
    assert_eq!(end.unwrap(), ExecEnd::Exited(0));
    assert_eq!(out.out(), "out\nabc");
    assert_eq!(out.err(), "err\ndef");
    job.finish_job().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_streams_while_the_process_runs() {
    let root = tempfile::tempdir().unwrap();
    let job = job(root.path()).await;
    let started = Instant::now();
    let mut first: Option<Duration> = None;
    let mut sink = |_: Stream, _: &[u8]| {
        first.get_or_insert_with(|| started.elapsed());
    };
    // No newline: a partial line must still come through before the process ends.
    let spec = sh(&job, "printf partial-line; sleep 3; echo done");
    let end = job.run(spec, &mut sink, &CancellationToken::new()).await;
    let total = started.elapsed();
    assert_eq!(end.unwrap(), ExecEnd::Exited(0));
    let first = first.expect("no output");
    assert!(
        first + Duration::from_millis(1500) < total,
        "first chunk at {first:?}, end at {total:?}"
    );
    job.finish_job().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_output_completes() {
    let root = tempfile::tempdir().unwrap();
    let job = job(root.path()).await;
    let script = "head -c 10000000 /dev/zero >&2 & head -c 10000000 /dev/zero; wait";
    let (end, out) = run(&job, sh(&job, script)).await;
    assert_eq!(end.unwrap(), ExecEnd::Exited(0));
    assert_eq!(out.stdout.len(), 10_000_000);
    assert_eq!(out.stderr.len(), 10_000_000);
    assert!(out.chunks > 2);
    job.finish_job().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_stops_the_group_within_two_seconds() {
    let root = tempfile::tempdir().unwrap();
    let job = job(root.path()).await;
    let mut spec = sh(&job, "echo $$; sleep 30 & sleep 30");
    spec.timeout = Some(Duration::from_millis(500));
    let started = Instant::now();
    let (end, out) = run(&job, spec).await;
    let took = started.elapsed();
    assert_eq!(end.unwrap(), ExecEnd::TimedOut);
    assert!(took < Duration::from_secs(2), "took {took:?}");
    let pgid = out.pids()[0];
    assert_group_gone(pgid).await;
    job.finish_job().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_kills_what_ignores_interrupts() {
    let root = tempfile::tempdir().unwrap();
    let job = job(root.path()).await;
    let mut spec = sh(&job, "trap '' INT TERM; echo $$; sleep 300");
    spec.timeout = Some(Duration::from_millis(300));
    let started = Instant::now();
    let (end, out) = run(&job, spec).await;
    let took = started.elapsed();
    assert_eq!(end.unwrap(), ExecEnd::TimedOut);
    assert!(took < Duration::from_secs(2), "took {took:?}");
    assert_group_gone(out.pids()[0]).await;
    job.finish_job().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancellation_stops_the_group_within_two_seconds() {
    let root = tempfile::tempdir().unwrap();
    let job = job(root.path()).await;
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    let cancelled_at = Arc::new(Mutex::new(None));
    let at = cancelled_at.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        *at.lock().unwrap() = Some(Instant::now());
        trigger.cancel();
    });
    let (end, out) = run_with(&job, sh(&job, "echo $$; sleep 30 & sleep 30"), &cancel).await;
    let returned = Instant::now();
    assert_eq!(end.unwrap(), ExecEnd::Cancelled);
    let cancelled_at = cancelled_at.lock().unwrap().expect("cancelled");
    let took = returned - cancelled_at;
    assert!(took < Duration::from_secs(2), "took {took:?}");
    assert_group_gone(out.pids()[0]).await;

    // An already cancelled token starts nothing.
    let marker = job.temp_dir().join("ran");
    let script = format!("touch '{}'", marker.display());
    let (end, _) = run_with(&job, sh(&job, &script), &cancel).await;
    assert_eq!(end.unwrap(), ExecEnd::Cancelled);
    assert!(!marker.exists());
    job.finish_job().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_processes_live_until_finish() {
    let root = tempfile::tempdir().unwrap();
    let job = job(root.path()).await;
    let started = Instant::now();
    // The background sleep inherits the pipes and holds them open.
    let (end, out) = run(&job, sh(&job, "sleep 300 & echo $!")).await;
    let took = started.elapsed();
    assert_eq!(end.unwrap(), ExecEnd::Exited(0));
    assert!(took < Duration::from_secs(2), "took {took:?}");
    let sleeper = out.pids()[0];
    assert!(alive(sleeper));

    // Another step runs fine, and the background process survives it.
    let (end, out) = run(&job, sh(&job, "echo next")).await;
    assert_eq!(end.unwrap(), ExecEnd::Exited(0));
    assert_eq!(out.out(), "next\n");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(alive(sleeper));

    job.finish_job().await.unwrap();
    assert_gone(sleeper).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_output_after_the_step_does_not_kill_the_writer() {
    let root = tempfile::tempdir().unwrap();
    let job = job(root.path()).await;
    // Keeps writing to the inherited stdout long after the step ended; with the pipe's read
    // end closed it would die of SIGPIPE.
    let script = "(while :; do echo tick || exit 1; sleep 0.1; done) & echo $!";
    let (end, out) = run(&job, sh(&job, script)).await;
    assert_eq!(end.unwrap(), ExecEnd::Exited(0));
    let writer = out.pids()[0];
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(alive(writer), "the background writer died");
    job.finish_job().await.unwrap();
    assert_gone(writer).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finish_kills_escaped_and_stubborn_processes() {
    let root = tempfile::tempdir().unwrap();
    let job = job(root.path()).await;
    let temp = job.temp_dir();
    let script = r#"
        echo $$
        # Leaves the process group (new session), keeps the environment.
        setsid sh -c 'echo $$ > "$RUNNER_TEMP/escaped"; exec sleep 300' >/dev/null 2>&1 &
        # Leaves the group and ignores polite signals.
        setsid sh -c 'trap "" INT TERM HUP; echo $$ > "$RUNNER_TEMP/stubborn"; sleep 300; :' >/dev/null 2>&1 &
        # Stays in the group but drops the environment (and the tracking id with it).
        env -i sh -c 'echo $$ > "$0/anonymous"; exec sleep 300' "$RUNNER_TEMP" >/dev/null 2>&1 &
    "#;
    let (end, out) = run(&job, sh(&job, script)).await;
    assert_eq!(end.unwrap(), ExecEnd::Exited(0));
    let step_group = out.pids()[0];

    let escaped = pid_in(&temp.join("escaped")).await;
    let stubborn = pid_in(&temp.join("stubborn")).await;
    let anonymous = pid_in(&temp.join("anonymous")).await;
    for pid in [escaped, stubborn] {
        let (_, pgid, sid) = stat(pid).expect("escaped process alive");
        assert_ne!(pgid, step_group, "{pid} did not leave the group");
        assert_eq!(sid, pid, "{pid} is not a session leader");
    }
    let env = fs::read(format!("/proc/{anonymous}/environ")).unwrap();
    assert!(!String::from_utf8_lossy(&env).contains("RUNNER_TRACKING_ID"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    for pid in [escaped, stubborn, anonymous] {
        assert!(alive(pid), "{pid} died before finish");
    }

    job.finish_job().await.unwrap();
    for pid in [escaped, stubborn, anonymous] {
        assert_gone(pid).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_exec_kills_its_group() {
    let root = tempfile::tempdir().unwrap();
    let job = job(root.path()).await;
    let seen = Arc::new(Mutex::new(Vec::<u8>::new()));
    let into = seen.clone();
    let mut sink = move |_: Stream, chunk: &[u8]| into.lock().unwrap().extend_from_slice(chunk);
    let cancel = CancellationToken::new();
    let mut exec = Box::pin(job.run(
        sh(&job, "echo $$; sleep 300 & sleep 300"),
        &mut sink,
        &cancel,
    ));
    let pgid = loop {
        tokio::select! {
            end = &mut exec => panic!("ended early: {end:?}"),
            () = tokio::time::sleep(Duration::from_millis(50)) => {
                let text = String::from_utf8_lossy(&seen.lock().unwrap()).into_owned();
                if let Some(pid) = text.lines().next().and_then(|l| l.trim().parse::<i32>().ok()) {
                    break pid;
                }
            }
        }
    };
    assert!(
        eventually(|| group_members(pgid).len() == 3).await,
        "expected sh and two sleeps in {:?}",
        group_members(pgid)
    );
    drop(exec);
    assert_group_gone(pgid).await;
    job.finish_job().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finish_removes_folders_but_keeps_the_tool_cache() {
    let root = tempfile::tempdir().unwrap();
    let job = job(root.path()).await;
    let paths = job.paths().clone();
    let job_dir = job.job_dir().to_path_buf();
    let seen = |p: PathBuf| hearth_backend::JobPath::new(p.to_string_lossy().into_owned());
    assert_eq!(paths.workspace, seen(job_dir.join("workspace")));
    assert_eq!(paths.temp, seen(job_dir.join("temp")));
    assert_eq!(job.workspace_dir(), job_dir.join("workspace"));
    assert_eq!(job.tool_cache_dir(), root.path().join("tool-cache"));
    let tool_cache = job.tool_cache_dir().to_path_buf();
    assert!(job_dir.starts_with(root.path()));
    assert!(job_dir
        .file_name()
        .unwrap()
        .to_string_lossy()
        .starts_with("test_job-"));

    let script = r#"
        set -e
        for d in "$PWD" "$RUNNER_TEMP"; do
            mkdir -p "$d/ro/inner"
            echo x > "$d/ro/inner/file"
            echo y > "$d/ro/file"
            chmod 0444 "$d/ro/inner/file" "$d/ro/file"
            chmod 0555 "$d/ro/inner" "$d/ro"
        done
        echo cached > "$TOOLS/tool"
    "#;
    let mut spec = sh(&job, script);
    spec.env
        .push(("TOOLS".into(), paths.tool_cache.to_string()));
    let (end, out) = run(&job, spec).await;
    assert_eq!(end.unwrap(), ExecEnd::Exited(0), "{}", out.err());

    job.finish_job().await.unwrap();
    assert!(!job_dir.exists());
    assert_eq!(
        fs::read_to_string(tool_cache.join("tool")).unwrap(),
        "cached\n"
    );

    // The next job gets the same tool cache and a different folder.
    let next = self::job(root.path()).await;
    assert_eq!(next.paths().tool_cache, paths.tool_cache);
    assert_ne!(next.job_dir(), job_dir);
    assert!(next.tool_cache_dir().join("tool").exists());
    next.finish_job().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configured_tool_cache_is_used_and_kept() {
    let root = tempfile::tempdir().unwrap();
    let shared = tempfile::tempdir().unwrap();
    let tools = shared.path().join("tools");
    let job = backend(root.path())
        .with_tool_cache(tools.clone())
        .start_job(JobSpec::default(), &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(job.tool_cache_dir(), tools);
    assert!(tools.is_dir());
    assert!(!root.path().join("tool-cache").exists());
    job.finish_job().await.unwrap();
    assert!(tools.is_dir());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_job_without_finish_still_cleans_up() {
    let root = tempfile::tempdir().unwrap();
    let job = job(root.path()).await;
    let job_dir = job.job_dir().to_path_buf();
    let (end, out) = run(&job, sh(&job, "sleep 300 & echo $!")).await;
    assert_eq!(end.unwrap(), ExecEnd::Exited(0));
    let sleeper = out.pids()[0];
    // Dropped on an async thread: the removal goes to the blocking pool, not done in place.
    drop(job);
    assert!(eventually(|| !job_dir.exists()).await);
    assert_gone(sleeper).await;
}

/// Runs git in `dir`, panicking on failure (test setup only).
fn git(dir: &Path, args: &[&str]) {
    let status = std::process::Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.invalid"])
        .args(args)
        .current_dir(dir)
        .status()
        .expect("git runs");
    assert!(status.success(), "git {args:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_workspace_is_a_copy_of_the_repository() {
    let root = tempfile::tempdir().unwrap();
    let repo_dir = tempfile::tempdir().unwrap();
    let repo: PathBuf = repo_dir.path().to_path_buf();
    git(&repo, &["init", "-q"]);
    fs::create_dir_all(repo.join("src/nested")).unwrap();
    fs::write(repo.join("src/nested/tracked.txt"), "tracked\n").unwrap();
    fs::write(repo.join("build.sh"), "#!/bin/sh\necho built\n").unwrap();
    fs::set_permissions(repo.join("build.sh"), fs::Permissions::from_mode(0o755)).unwrap();
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "initial"]);
    // Dirty: a modified tracked file, an untracked file, links.
    fs::write(repo.join("src/nested/tracked.txt"), "modified\n").unwrap();
    fs::write(repo.join("untracked.txt"), "untracked\n").unwrap();
    std::os::unix::fs::symlink("src/nested/tracked.txt", repo.join("link")).unwrap();
    std::os::unix::fs::symlink("src", repo.join("dirlink")).unwrap();
    std::os::unix::fs::symlink("nowhere", repo.join("dangling")).unwrap();

    let job = backend(root.path())
        .start_job(
            JobSpec {
                name: "copy".into(),
                repository: Some(HostPath::new(repo.clone())),
                ..Default::default()
            },
            &CancellationToken::new(),
        )
        .await
        .unwrap();
    let ws = job.workspace_dir();
    assert_eq!(
        fs::read_to_string(ws.join("src/nested/tracked.txt")).unwrap(),
        "modified\n"
    );
    assert_eq!(
        fs::read_to_string(ws.join("untracked.txt")).unwrap(),
        "untracked\n"
    );
    assert!(ws.join(".git").is_dir());
    assert!(ws.join(".git/HEAD").is_file());
    for (link, target) in [
        ("link", "src/nested/tracked.txt"),
        ("dirlink", "src"),
        ("dangling", "nowhere"),
    ] {
        let meta = fs::symlink_metadata(ws.join(link)).unwrap();
        assert!(meta.file_type().is_symlink(), "{link}");
        assert_eq!(fs::read_link(ws.join(link)).unwrap(), Path::new(target));
    }
    let mode = fs::metadata(ws.join("build.sh"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o111, 0o111);
    let mode = fs::metadata(ws.join("untracked.txt"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o111, 0);

    // Steps can use git and the scripts in the copy.
    let (end, out) = run(
        &job,
        sh(
            &job,
            "./build.sh && git status --porcelain --untracked-files=all",
        ),
    )
    .await;
    assert_eq!(end.unwrap(), ExecEnd::Exited(0), "{}", out.err());
    let text = out.out();
    assert!(text.starts_with("built\n"), "{text}");
    assert!(text.contains(" M src/nested/tracked.txt"), "{text}");
    assert!(text.contains("?? untracked.txt"), "{text}");
    assert!(text.contains("?? link"), "{text}");

    // Changes in the workspace do not reach the repository.
    fs::write(ws.join("untracked.txt"), "changed in the job\n").unwrap();
    job.finish_job().await.unwrap();
    assert_eq!(
        fs::read_to_string(repo.join("untracked.txt")).unwrap(),
        "untracked\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_repository_fails_start_and_leaves_nothing() {
    let root = tempfile::tempdir().unwrap();
    let err = backend(root.path())
        .start_job(
            JobSpec {
                name: "missing".into(),
                repository: Some(HostPath::new(root.path().join("no-such-repo"))),
                ..Default::default()
            },
            &CancellationToken::new(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, BackendError::Prepare { .. }), "{err}");
    let left: Vec<_> = fs::read_dir(root.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(left, vec![std::ffi::OsString::from("tool-cache")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reused_folder_is_as_fresh_as_a_new_one() {
    let root = tempfile::tempdir().unwrap();
    let repo = tempfile::tempdir().unwrap();
    fs::create_dir_all(repo.path().join("src")).unwrap();
    fs::write(repo.path().join("src/main.c"), "int main;\n").unwrap();
    fs::write(repo.path().join("README"), "read me\n").unwrap();
    let backend = backend(root.path()).with_folder_reuse();
    let spec = |name: &str| JobSpec {
        name: name.into(),
        repository: Some(HostPath::new(repo.path())),
        ..Default::default()
    };

    let first = backend
        .start_job(spec("first"), &CancellationToken::new())
        .await
        .unwrap();
    let first_dir = first.job_dir().to_path_buf();
    let script = r#"
        set -e
        echo changed > src/main.c
        rm README
        mkdir -p build/ro && echo x > build/ro/out && chmod 0555 build/ro
        echo left > "$RUNNER_TEMP/left"
    "#;
    let (end, out) = run(&first, sh(&first, script)).await;
    assert_eq!(end.unwrap(), ExecEnd::Exited(0), "{}", out.err());
    first.finish_job().await.unwrap();
    assert!(!first_dir.exists());

    let second = backend
        .start_job(spec("second"), &CancellationToken::new())
        .await
        .unwrap();
    let (workspace, temp) = (second.workspace_dir(), second.temp_dir());
    assert!(second
        .job_dir()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .starts_with("second-"));
    let mut names: Vec<_> = fs::read_dir(&workspace)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    names.sort();
    assert_eq!(names, ["README", "src"]);
    assert_eq!(
        fs::read_to_string(workspace.join("src/main.c")).unwrap(),
        "int main;\n"
    );
    assert_eq!(fs::read_dir(&temp).unwrap().count(), 0);
    second.finish_job().await.unwrap();

    // What is still set aside goes with the backend.
    drop(backend);
    let left: Vec<_> = fs::read_dir(root.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(left, vec![std::ffi::OsString::from("tool-cache")]);
}

/// Removing a job's tree can take seconds: a job dropped without `finish` (its future
/// cancelled) must not make the daemon's async thread wait for it. The folder is still there
/// when `drop` returns (the removal went to the blocking pool), and goes soon after.
#[tokio::test(flavor = "current_thread")]
async fn dropping_a_job_does_not_remove_its_tree_on_the_async_thread() {
    let root = tempfile::tempdir().unwrap();
    let job = job(root.path()).await;
    let job_dir = job.job_dir().to_path_buf();
    // Thousands of files: removing them takes far longer than returning from `drop`.
    let many = job.workspace_dir().join("many");
    fs::create_dir(&many).unwrap();
    for i in 0..4000 {
        fs::write(many.join(format!("f{i}")), b"x").unwrap();
    }
    drop(job);
    assert!(
        job_dir.exists(),
        "drop removed the tree in place, on the async thread"
    );
    assert!(eventually(|| !job_dir.exists()).await);
}

/// Owner labels as the daemon gives them.
fn owner(runner: &str) -> Vec<(String, String)> {
    vec![
        ("hearth.runner".into(), runner.into()),
        ("hearth.task".into(), "7".into()),
    ]
}

/// Starts a job of `runner` on `backend`, starts `sleep 300` in its background, and leaves the
/// job as a runner killed with SIGKILL does: neither finished nor dropped. Returns its folder
/// and the sleeper's pid.
async fn leave_behind(backend: &HostBackend, runner: &str) -> (PathBuf, i32) {
    let job = backend
        .start_job(
            JobSpec {
                name: "left".into(),
                owner: owner(runner),
                ..Default::default()
            },
            &CancellationToken::new(),
        )
        .await
        .unwrap();
    let (end, out) = run(&job, sh(&job, "sleep 300 & echo $!")).await;
    assert_eq!(end.unwrap(), ExecEnd::Exited(0));
    let dir = job.job_dir().to_path_buf();
    std::mem::forget(job);
    (dir, out.pids()[0])
}

/// When process `pid` started, in clock ticks since boot (field 22 of its stat line).
fn started_at(pid: i32) -> u64 {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = &text[text.rfind(')').unwrap() + 1..];
    rest.split_whitespace().nth(19).unwrap().parse().unwrap()
}

/// Rewrites the job folder's record as if process `pid`, started at `started`, had run the job.
fn record_runner(job_dir: &Path, pid: i32, started: u64) {
    let path = job_dir.join(".hearth-job");
    let text = fs::read_to_string(&path).unwrap();
    assert!(text.contains("runner-pid "), "{text}");
    let text: String = text
        .lines()
        .map(|line| match line.split_once(' ') {
            Some(("runner-pid", _)) => format!("runner-pid {pid}\n"),
            Some(("runner-started", _)) => format!("runner-started {started}\n"),
            _ => format!("{line}\n"),
        })
        .collect();
    fs::write(&path, text).unwrap();
}

fn reap_owner(runner: &str) -> Vec<(String, String)> {
    vec![("hearth.runner".into(), runner.into())]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reap_removes_what_a_dead_runner_left_and_nothing_else() {
    let root = tempfile::tempdir().unwrap();
    let old = backend(root.path());
    // Left by a runner process that has died since.
    let (dead_dir, dead_sleeper) = leave_behind(&old, "r1").await;
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    let gone_pid = i32::try_from(gone.id()).unwrap();
    gone.wait().unwrap();
    record_runner(&dead_dir, gone_pid, 1);
    // Left by a backend of this process that is gone (a forgotten job).
    let (forgotten_dir, forgotten_sleeper) = leave_behind(&old, "r1").await;
    // Another runner's.
    let (other_dir, other_sleeper) = leave_behind(&old, "r2").await;
    // A runner of the same name that still runs, sharing the folder.
    let (running_dir, running_sleeper) = leave_behind(&old, "r1").await;
    let mut running = std::process::Command::new("sleep")
        .arg("300")
        .spawn()
        .unwrap();
    let running_pid = i32::try_from(running.id()).unwrap();
    record_runner(&running_dir, running_pid, started_at(running_pid));
    drop(old);
    // Made by an older Hearth: no record.
    let older = root.path().join("older-0123456789abcdef");
    fs::create_dir_all(older.join("workspace")).unwrap();

    // The new runner's backend, with a job of its own running.
    let new = backend(root.path());
    let mine = new
        .start_job(
            JobSpec {
                name: "mine".into(),
                owner: owner("r1"),
                ..Default::default()
            },
            &CancellationToken::new(),
        )
        .await
        .unwrap();
    let (end, out) = run(&mine, sh(&mine, "sleep 300 & echo $!")).await;
    assert_eq!(end.unwrap(), ExecEnd::Exited(0));
    let my_sleeper = out.pids()[0];

    let reaped = new.reap_leftovers(&reap_owner("r1")).await.unwrap();
    assert!(!dead_dir.exists() && !forgotten_dir.exists());
    assert_gone(dead_sleeper).await;
    assert_gone(forgotten_sleeper).await;
    let mut removed = reaped.removed.clone();
    removed.sort();
    let mut expected = vec![
        format!("folder {}", dead_dir.display()),
        format!("folder {}", forgotten_dir.display()),
        format!("processes {dead_sleeper} of folder {}", dead_dir.display()),
        format!(
            "processes {forgotten_sleeper} of folder {}",
            forgotten_dir.display()
        ),
    ];
    expected.sort();
    assert_eq!(removed, expected);
    for kept in [&other_dir, &running_dir, &older, mine.job_dir()] {
        assert!(kept.is_dir(), "{} was removed", kept.display());
    }
    assert!(root.path().join("tool-cache").is_dir());
    for pid in [other_sleeper, running_sleeper, my_sleeper] {
        assert!(alive(pid), "{pid} was killed");
    }

    // A clone holds the same jobs; another runner's leftovers go with its name.
    let again = new.clone().reap_leftovers(&reap_owner("r1")).await.unwrap();
    assert_eq!(again.removed, Vec::<String>::new());
    new.reap_leftovers(&reap_owner("r2")).await.unwrap();
    assert!(!other_dir.exists());
    assert_gone(other_sleeper).await;
    // Once the other runner is gone, its leftovers are too.
    running.kill().unwrap();
    running.wait().unwrap();
    new.reap_leftovers(&reap_owner("r1")).await.unwrap();
    assert!(!running_dir.exists());
    assert_gone(running_sleeper).await;

    assert!(mine.job_dir().is_dir() && alive(my_sleeper));
    mine.finish_job().await.unwrap();
    assert_gone(my_sleeper).await;
    assert!(older.is_dir());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reap_leaves_a_backends_folders_set_aside_until_it_is_gone() {
    let root = tempfile::tempdir().unwrap();
    let old = backend(root.path()).with_folder_reuse();
    let job = old
        .start_job(
            JobSpec {
                owner: owner("r1"),
                ..Default::default()
            },
            &CancellationToken::new(),
        )
        .await
        .unwrap();
    job.finish_job().await.unwrap();
    let spares = || -> Vec<PathBuf> {
        fs::read_dir(root.path())
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("spare-")
            })
            .collect()
    };
    assert_eq!(spares().len(), 1);
    let reaped = old.reap_leftovers(&reap_owner("r1")).await.unwrap();
    assert_eq!(reaped.removed, Vec::<String>::new());
    assert_eq!(spares().len(), 1);

    // As after SIGKILL: the backend is never dropped, its folder set aside never removed.
    std::mem::forget(old);
    let new = backend(root.path());
    let reaped = new.reap_leftovers(&reap_owner("r1")).await.unwrap();
    assert_eq!(reaped.removed.len(), 1, "{:?}", reaped.removed);
    assert!(spares().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reap_never_leaves_the_root() {
    let base = tempfile::tempdir().unwrap();
    let root = base.path().join("root");
    // A missing root holds nothing to reap.
    let reaped = backend(&root).reap_leftovers(&reap_owner("r1")).await;
    assert_eq!(reaped.unwrap().removed, Vec::<String>::new());

    // A job folder elsewhere, with a record that matches, reached through a symlink.
    let elsewhere = base.path().join("elsewhere");
    fs::create_dir(&elsewhere).unwrap();
    let outside = backend(&elsewhere);
    let (outside_dir, outside_sleeper) = leave_behind(&outside, "r1").await;
    drop(outside);
    fs::create_dir(&root).unwrap();
    std::os::unix::fs::symlink(&outside_dir, root.join("link")).unwrap();
    // A folder whose record is a symlink to that record.
    fs::create_dir(root.join("linked-record")).unwrap();
    std::os::unix::fs::symlink(
        outside_dir.join(".hearth-job"),
        root.join("linked-record/.hearth-job"),
    )
    .unwrap();
    let reaped = backend(&root)
        .reap_leftovers(&reap_owner("r1"))
        .await
        .unwrap();
    assert_eq!(reaped.removed, Vec::<String>::new());
    assert!(outside_dir.is_dir() && root.join("linked-record").is_dir());
    assert!(alive(outside_sleeper));

    backend(&elsewhere)
        .reap_leftovers(&reap_owner("r1"))
        .await
        .unwrap();
    assert!(!outside_dir.exists());
    assert_gone(outside_sleeper).await;
}

/// A job that binds the repository works in it: no copy is made, what the job writes is in
/// the repository, and neither `finish` (folder set aside and reused), nor a job dropped
/// without `finish`, nor the backend going removes it or anything in it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bound_repository_is_the_workspace_and_outlives_every_cleanup() {
    let root = tempfile::tempdir().unwrap();
    let repo = tempfile::tempdir().unwrap();
    fs::write(repo.path().join("README"), "read me\n").unwrap();
    let backend = backend(root.path()).with_folder_reuse();
    let spec = |name: &str| JobSpec {
        name: name.into(),
        repository: Some(HostPath::new(repo.path())),
        bind_repository: true,
        ..Default::default()
    };

    let first = backend
        .start_job(spec("first"), &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(first.workspace_dir(), repo.path());
    assert_eq!(
        first.paths().workspace.as_str(),
        repo.path().to_str().unwrap()
    );
    // The job folder's own workspace holds no copy.
    assert_eq!(
        fs::read_dir(first.job_dir().join("workspace"))
            .unwrap()
            .count(),
        0
    );
    let (end, out) = run(&first, sh(&first, "pwd && cat README && echo made > made")).await;
    assert_eq!(end.unwrap(), ExecEnd::Exited(0), "{}", out.err());
    assert_eq!(out.out(), format!("{}\nread me\n", repo.path().display()));
    let first_dir = first.job_dir().to_path_buf();
    first.finish_job().await.unwrap();
    assert!(!first_dir.exists());

    // The folder set aside is revived for the next job; the repository is not refreshed.
    let second = backend
        .start_job(spec("second"), &CancellationToken::new())
        .await
        .unwrap();
    let (end, out) = run(&second, sh(&second, "cat made")).await;
    assert_eq!(end.unwrap(), ExecEnd::Exited(0), "{}", out.err());
    assert_eq!(out.out(), "made\n");
    let second_dir = second.job_dir().to_path_buf();
    drop(second);
    assert!(eventually(|| !second_dir.exists()).await);
    drop(backend);

    let mut names: Vec<_> = fs::read_dir(repo.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    names.sort();
    assert_eq!(names, ["README", "made"]);
    let left: Vec<_> = fs::read_dir(root.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(left, vec![std::ffi::OsString::from("tool-cache")]);
}

/// A bound repository that is not a folder is an error at start, and leaves nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bound_repository_must_be_a_folder() {
    let root = tempfile::tempdir().unwrap();
    let missing = root.path().join("no-such-repository");
    let error = backend(root.path())
        .start_job(
            JobSpec {
                name: "bound".into(),
                repository: Some(HostPath::new(&missing)),
                bind_repository: true,
                ..Default::default()
            },
            &CancellationToken::new(),
        )
        .await
        .expect_err("a missing repository was bound");
    assert!(error.to_string().contains("no-such-repository"), "{error}");
    assert_eq!(fs::read_dir(root.path()).unwrap().count(), 0);
}
