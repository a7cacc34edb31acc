//! `hearth exec` stopped by a signal, as Ctrl-C (SIGINT) or a service manager (SIGTERM) stops
//! it: the running step's whole process tree is gone within 2 s, `always()` steps still run,
//! other steps are skipped, and hearth exits non-zero.

use std::fs;
use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

/// How long the step may take to start and record its processes.
const START_LIMIT: Duration = Duration::from_secs(5);
/// The promise under test: the step's processes are gone this soon after the signal.
const GONE_LIMIT: Duration = Duration::from_secs(2);
/// How long hearth may take to exit after the signal (the `always()` step, the clean-up).
const EXIT_LIMIT: Duration = Duration::from_secs(5);

/// The step that is interrupted: a `sleep 300` started in the background and waited for (as a
/// long foreground command, but with a PID to record), a background subshell with a child of
/// its own, and a `sleep 300` that left the step's process group with `setsid` (only the
/// job's `RUNNER_TRACKING_ID` finds it). The PIDs, the shell's own and the tracking id are
/// written to a file that appears whole (renamed into place) once all are running.
fn workflow(pids: &Path, marker: &Path) -> String {
    let pids = pids.display();
    let marker = marker.display();
    format!(
        r#"on: push
jobs:
  stop:
    runs-on: self-hosted
    steps:
      - name: long
        run: |
          sleep 300 &
          long=$!
          ( sleep 300 & wait ) &
          sub=$!
          setsid sleep 300 &
          escaped=$!
          # Wait until the subshell has started its own sleep, to record that one too.
          for _ in $(seq 100); do
            child=$(cat /proc/$sub/task/$sub/children 2>/dev/null | tr -d ' ')
            [ -n "$child" ] && break
            sleep 0.02
          done
          printf '%s\n' $$ "$long" "$sub" "$child" "$escaped" > '{pids}.tmp'
          echo "$RUNNER_TRACKING_ID" > '{pids}.id'
          mv '{pids}.tmp' '{pids}'
          wait
      - name: always
        if: always()
        run: echo done > '{marker}'
      - name: plain
        run: echo should not run
"#
    )
}

fn run_git(dir: &Path, args: &[&str]) {
    let status = Command::new("git")
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("git runs");
    assert!(status.success(), "git {args:?} failed");
}

/// Whether process `pid` is still alive: present in /proc and not a zombie (a zombie is dead,
/// only waiting for its parent, or init, to reap it).
fn alive(pid: i32) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat
        .rfind(')')
        .and_then(|end| stat[end + 1..].split_whitespace().next())
        .unwrap_or("");
    !matches!(state, "Z" | "X" | "x")
}

/// Living processes whose environment holds `RUNNER_TRACKING_ID=<id>`.
fn tracked(id: &str) -> Vec<i32> {
    let needle = format!("RUNNER_TRACKING_ID={id}");
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc").expect("/proc is readable").flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        let Ok(environ) = fs::read(format!("/proc/{pid}/environ")) else {
            continue;
        };
        if environ.split(|b| *b == 0).any(|e| e == needle.as_bytes()) && alive(pid) {
            found.push(pid);
        }
    }
    found
}

/// Polls `done` every 10 ms until it holds or `limit` has passed; whether it held.
fn wait_for(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + limit;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= until {
            return false;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// Kills hearth and whatever the step left if the test fails half-way, so that no `sleep 300`
/// outlives a failed run.
struct Cleanup {
    hearth: Child,
    pids: Vec<i32>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = self.hearth.kill();
        let _ = self.hearth.wait();
        for pid in &self.pids {
            // SAFETY: kill(2) with plain integers; the PIDs are the step's, recorded moments ago.
            unsafe { libc::kill(*pid, libc::SIGKILL) };
        }
    }
}

/// What a cancelled run did.
struct Outcome {
    status: ExitStatus,
    events: Vec<Value>,
    /// Processes of the step still alive 2 s after the signal.
    survivors: Vec<i32>,
    /// Processes with the job's tracking id after hearth exited.
    tracked_after: Vec<i32>,
    /// What the `always()` step wrote, if it wrote anything.
    marker: Option<String>,
}

fn cancel_with(signal: libc::c_int) -> Outcome {
    let dir = tempfile::tempdir().expect("temp dir");
    let repo = dir.path().join("repo");
    fs::create_dir(&repo).unwrap();
    run_git(&repo, &["init", "-q"]);
    let pids_file = dir.path().join("pids");
    let marker = dir.path().join("marker");
    let workflow_file = dir.path().join("stop.yml");
    fs::write(&workflow_file, workflow(&pids_file, &marker)).unwrap();

    let hearth = Command::new(assert_cmd::cargo::cargo_bin("hearth"))
        .arg("exec")
        .arg("--json")
        .arg("-W")
        .arg(&workflow_file)
        .arg("-C")
        .arg(&repo)
        .env("TMPDIR", dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("hearth starts");
    let mut cleanup = Cleanup {
        hearth,
        pids: Vec::new(),
    };
    // Read the pipes as hearth writes, so that it never blocks on a full one.
    let mut stdout = cleanup.hearth.stdout.take().unwrap();
    let mut stderr = cleanup.hearth.stderr.take().unwrap();
    let out_reader = thread::spawn(move || {
        let mut text = String::new();
        stdout.read_to_string(&mut text).map(|_| text)
    });
    let err_reader = thread::spawn(move || {
        let mut text = String::new();
        stderr.read_to_string(&mut text).map(|_| text)
    });

    let started = wait_for(START_LIMIT, || pids_file.exists());
    if !started {
        let _ = cleanup.hearth.kill();
        let err = err_reader.join().unwrap().unwrap_or_default();
        let out = out_reader.join().unwrap().unwrap_or_default();
        panic!("the step did not record its processes in time\nstdout:\n{out}\nstderr:\n{err}");
    }
    let pids: Vec<i32> = fs::read_to_string(&pids_file)
        .unwrap()
        .lines()
        .map(|l| l.trim().parse().expect("a PID"))
        .collect();
    cleanup.pids.clone_from(&pids);
    let tracking_id = fs::read_to_string(dir.path().join("pids.id")).unwrap();
    let tracking_id = tracking_id.trim().to_owned();
    assert_eq!(pids.len(), 5, "{pids:?}");
    assert!(!tracking_id.is_empty());
    assert!(
        pids.iter().all(|&p| alive(p)),
        "the step's processes run before the signal: {pids:?}"
    );
    // The `mv` that put the file in place carries the id too until it has exited: wait for it.
    let mut recorded = pids.clone();
    recorded.sort_unstable();
    let settled = wait_for(START_LIMIT, || {
        let mut found = tracked(&tracking_id);
        found.sort_unstable();
        found == recorded
    });
    assert!(
        settled,
        "each recorded process, and no other, carries the tracking id: {:?} vs {recorded:?}",
        tracked(&tracking_id)
    );

    let hearth_pid = i32::try_from(cleanup.hearth.id()).unwrap();
    let signalled = Instant::now();
    // SAFETY: kill(2) with plain integers, to our own child.
    assert_eq!(unsafe { libc::kill(hearth_pid, signal) }, 0);

    wait_for(GONE_LIMIT, || pids.iter().all(|&p| !alive(p)));
    let survivors: Vec<i32> = pids.iter().copied().filter(|&p| alive(p)).collect();

    let mut status = None;
    wait_for(EXIT_LIMIT.saturating_sub(signalled.elapsed()), || {
        status = cleanup.hearth.try_wait().expect("waiting for hearth");
        status.is_some()
    });
    let Some(status) = status else {
        panic!("hearth did not exit within {EXIT_LIMIT:?} of the signal");
    };
    let out = out_reader.join().unwrap().expect("stdout is UTF-8");
    let err = err_reader.join().unwrap().expect("stderr is UTF-8");
    let events: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}\nstderr:\n{err}")))
        .collect();
    Outcome {
        status,
        events,
        survivors,
        tracked_after: tracked(&tracking_id),
        marker: fs::read_to_string(&marker).ok(),
    }
}

/// The `step_finished` event of step `index`.
fn step_finished(events: &[Value], index: u64) -> &Value {
    events
        .iter()
        .find(|e| e["event"] == "step_finished" && e["step"] == index)
        .unwrap_or_else(|| panic!("no step_finished for step {index} in {events:#?}"))
}

fn check(outcome: &Outcome) {
    let events = &outcome.events;
    assert!(
        outcome.survivors.is_empty(),
        "still alive 2 s after the signal: {:?}",
        outcome.survivors
    );
    assert!(
        outcome.tracked_after.is_empty(),
        "processes with the job's RUNNER_TRACKING_ID after hearth exited: {:?}",
        outcome.tracked_after
    );
    assert!(!outcome.status.success(), "{:?}", outcome.status);
    assert_eq!(outcome.status.code(), Some(1), "{:?}", outcome.status);

    let long = step_finished(events, 0);
    assert_eq!(long["step_name"], "long");
    assert_eq!(long["conclusion"], "cancelled", "{long}");

    let always = step_finished(events, 1);
    assert_eq!(always["step_name"], "always");
    assert_eq!(always["conclusion"], "success", "{always}");
    assert_eq!(
        outcome.marker.as_deref(),
        Some("done\n"),
        "the always() step writes its marker"
    );

    let plain = step_finished(events, 2);
    assert_eq!(plain["step_name"], "plain");
    assert_eq!(plain["conclusion"], "skipped", "{plain}");
    assert!(
        !events
            .iter()
            .any(|e| e["event"] == "log" && e["text"] == "should not run"),
        "the plain step ran"
    );

    let job = events
        .iter()
        .find(|e| e["event"] == "job_finished")
        .expect("a job_finished event");
    assert_eq!(job["result"], "cancelled", "{job}");
}

#[test]
fn sigint_stops_the_step_tree_runs_always_steps_and_skips_the_rest() {
    check(&cancel_with(libc::SIGINT));
}

#[test]
fn sigterm_does_the_same() {
    check(&cancel_with(libc::SIGTERM));
}
