//! `hearth exec` end to end: every workflow in `tests/data/exec/` is run by the real binary in
//! a fresh git repository, and the expectations written in its leading comment lines are
//! checked against the JSON events (or the plain output) it printed.
//!
//! # Case files
//!
//! `tests/data/exec/<case>.yml` is a workflow; the folder `tests/data/exec/<case>/`, when it
//! exists, holds files copied into the repository the case runs in. The repository gets one
//! commit, branch `main`, and the remote `origin` at `https://example.com/owner/repo.git`.
//! `hearth exec --json -W <case.yml> -C <repository> <args>` runs in the repository's folder,
//! with the environment variable `CASE_DIR` naming that folder (steps see it too).
//!
//! The comment lines at the top of the file, up to the first other line, are directives:
//!
//! | directive | meaning |
//! | --- | --- |
//! | `# args: ...` | more arguments, split as a shell would (quotes, backslashes) |
//! | `# env: NAME=VALUE` | an environment variable for the `hearth` process |
//! | `# no-json` | do not pass `--json` (check the output with `stdout:`) |
//! | `# no-w` | do not pass `-W <case.yml>` (the workflows come from the case folder) |
//! | `# docker` | a host job's steps need the Docker daemon (Docker actions): not run on the fake backend |
//! | `# exit: N` | the exit code (always checked: 0 when not given) |
//! | `# jobs: N` | the number of `job_finished` events |
//! | `# job <job name>: <result>` | a job's result |
//! | `# reason <job name>: <text>` | a job's `reason` contains the text |
//! | `# step <job name> / <step name>: <outcome>[ <conclusion>]` | a step's outcome and conclusion |
//! | `# output <job name> / <output>: <value>` | a job output's value (`\n` for a newline) |
//! | `# no-output <job name> / <output>` | the job has no such output |
//! | `# log: <text>` | some log event's text contains the text |
//! | `# line: <text>` | some `output` log line is exactly the text |
//! | `# no-line: <text>` | no `output` log line is exactly the text |
//! | `# kind <kind>: <text>` | some log event of that kind contains the text |
//! | `# no-kind <kind>: <text>` | no log event of that kind contains the text |
//! | `# annotation <kind>: <text> \| <field>=<value> ...` | an annotation with that text and those fields |
//! | `# summary: <text>` | some step summary contains the text |
//! | `# never: <text>` | the text is nowhere: raw stdout, stderr, decoded JSON strings |
//! | `# stdout: <text>` | stdout contains the text |
//! | `# stderr: <text>` | stderr contains the text |
//! | `# file <path>: <text>` | after the run, the repository's file `<path>` contains the text |
//!
//! Names are display names (`name` and `step_name` in the events); a called workflow's job is
//! named `caller / job`, as GitHub shows it. Lines starting with `##`
//! are prose. A case without any expectation is an error, and so is an unknown directive.
//! `HEARTH_CASE=<name>[,<name>...]` runs only those cases and prints what they printed.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

/// How long one case may run.
const CASE_TIMEOUT: Duration = Duration::from_secs(60);
/// The remote `github.repository` is read from.
const ORIGIN: &str = "https://example.com/owner/repo.git";

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/exec")
}

/// Every case, run by the real binary on the host backend.
#[test]
fn exec_cases() {
    run_cases(Runner::Binary);
}

/// Every case that reads only the JSON events, run in-process on the fake backend, whose jobs
/// see their folders under paths that do not exist on the host (as in a container): the
/// engine's contract tests. Any mix-up of a job path and a host path fails a case.
#[test]
fn exec_cases_on_a_backend_with_other_paths() {
    run_cases(Runner::FakeBackend);
}

/// How a case is run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Runner {
    /// `hearth exec --json ...` in a child process.
    Binary,
    /// `hearth::cmd::exec_run` in this process, on `hearth-fake-backend`.
    FakeBackend,
}

fn run_cases(runner: Runner) {
    let only: Option<Vec<String>> = std::env::var("HEARTH_CASE")
        .ok()
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.split(',').map(|c| c.trim().to_owned()).collect());
    let mut cases: Vec<PathBuf> = fs::read_dir(data_dir())
        .expect("tests/data/exec exists")
        .map(|entry| entry.expect("readable folder").path())
        .filter(|path| path.extension().is_some_and(|e| e == "yml"))
        .collect();
    cases.sort();
    let names: Vec<String> = cases.iter().map(|p| case_name(p)).collect();
    // A folder of files belongs to a case: one left behind by a renamed case is a mistake.
    for entry in fs::read_dir(data_dir()).expect("tests/data/exec exists") {
        let path = entry.expect("readable folder").path();
        if path.is_dir() {
            assert!(
                path.with_extension("yml").is_file(),
                "{} has no case file beside it",
                path.display()
            );
        }
    }
    if let Some(only) = &only {
        for wanted in only {
            assert!(names.contains(wanted), "no case named {wanted:?}");
        }
        cases.retain(|p| only.contains(&case_name(p)));
    }
    assert!(!cases.is_empty(), "no cases found in tests/data/exec");

    let verbose = only.is_some();
    let started = Instant::now();
    let queue = Mutex::new(cases.iter());
    let failures: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let workers = std::thread::available_parallelism().map_or(2, |n| (n.get() * 2).clamp(2, 8));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                let Some(path) = queue.lock().unwrap().next() else {
                    break;
                };
                let name = case_name(path);
                let case_started = Instant::now();
                let problems = match run_case(path, verbose, runner) {
                    Ok(problems) => problems,
                    Err(error) => vec![error],
                };
                if verbose {
                    eprintln!("{name}: {:.2?}", case_started.elapsed());
                }
                if !problems.is_empty() {
                    let mut text = format!("{name}:");
                    for problem in problems {
                        text.push_str("\n    ");
                        text.push_str(&problem.replace('\n', "\n      "));
                    }
                    failures.lock().unwrap().push(text);
                }
            });
        }
    });
    let mut failures = failures.into_inner().unwrap();
    failures.sort();
    eprintln!(
        "exec cases ({runner:?}): {} ran, {} failed, in {:.1?}",
        cases.len(),
        failures.len(),
        started.elapsed()
    );
    assert!(
        failures.is_empty(),
        "{} of {} exec cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

fn case_name(path: &Path) -> String {
    path.file_stem()
        .expect("a file name")
        .to_string_lossy()
        .into_owned()
}

/// What one case says about how it runs and what must come out.
#[derive(Default, Debug)]
struct Case {
    args: Vec<String>,
    env: Vec<(String, String)>,
    json: bool,
    pass_workflow: bool,
    /// A host job runs containers through Docker (`# docker`).
    docker: bool,
    /// Checked always; `exit_given` when the case said it.
    exit: i32,
    exit_given: bool,
    expectations: Vec<Expect>,
}

impl Case {
    /// Whether some act-style `-P NAME=IMAGE` names an image (a Docker label) rather than
    /// `-self-hosted`.
    fn platform_image(&self) -> bool {
        self.args
            .windows(2)
            .filter(|pair| pair[0] == "-P" || pair[0] == "--platform")
            .filter_map(|pair| pair[1].split_once('='))
            .any(|(_, image)| image != "-self-hosted")
    }

    /// Whether the case reads only what the JSON events say (and the exit code), so that it
    /// can run in-process: not the plain log, not stderr, not `-l`'s listing, no Docker.
    fn in_process(&self) -> bool {
        self.json
            && !self.args.iter().any(|a| a == "-l" || a == "--list")
            // Docker labels need the Docker backend, which the fake backend stands for only on
            // the host's side.
            && !self.args.iter().any(|a| a.contains("docker://"))
            && !self.platform_image()
            && !self.docker
            // The fake backend translates one job folder; it refuses a bound repository.
            && !self.args.iter().any(|a| a == "--bind")
            && !self
                .expectations
                .iter()
                .any(|e| matches!(e, Expect::Stdout(_) | Expect::Stderr(_)))
    }
}

#[derive(Debug)]
enum Expect {
    Jobs(usize),
    Job {
        job: String,
        result: String,
    },
    Reason {
        job: String,
        text: String,
    },
    Step {
        job: String,
        step: String,
        outcome: String,
        conclusion: String,
    },
    Output {
        job: String,
        name: String,
        value: String,
    },
    NoOutput {
        job: String,
        name: String,
    },
    Log(String),
    Line(String),
    NoLine(String),
    Kind {
        kind: String,
        text: String,
    },
    NoKind {
        kind: String,
        text: String,
    },
    Annotation {
        kind: String,
        text: String,
        fields: Vec<(String, String)>,
    },
    Summary(String),
    Never(String),
    Stdout(String),
    Stderr(String),
    File {
        path: String,
        text: String,
    },
}

const KINDS: &[&str] = &[
    "output",
    "echo",
    "group",
    "endgroup",
    "error",
    "warning",
    "notice",
    "debug",
    "info",
    "runner_warning",
    "runner_error",
];
const RESULTS: &[&str] = &["success", "failure", "cancelled", "skipped"];

fn parse_case(text: &str) -> Result<Case, String> {
    let mut case = Case {
        json: true,
        pass_workflow: true,
        ..Case::default()
    };
    for (index, line) in text.lines().enumerate() {
        let n = index + 1;
        let Some(comment) = line.strip_prefix('#') else {
            break;
        };
        if comment.starts_with('#') || comment.trim().is_empty() {
            continue;
        }
        let directive = comment.strip_prefix(' ').unwrap_or(comment);
        parse_directive(directive, &mut case).map_err(|e| format!("line {n}: {e}: {line:?}"))?;
    }
    if case.expectations.is_empty() && !case.exit_given {
        return Err("the case has no expectation (exit, job, step, log, ...)".to_owned());
    }
    Ok(case)
}

fn parse_directive(directive: &str, case: &mut Case) -> Result<(), String> {
    match directive {
        "no-json" => {
            case.json = false;
            return Ok(());
        }
        "docker" => {
            case.docker = true;
            return Ok(());
        }
        "no-w" => {
            case.pass_workflow = false;
            return Ok(());
        }
        _ => {}
    }
    if let Some(rest) = directive.strip_prefix("no-output ") {
        let (job, name) = split_job(rest)?;
        case.expectations.push(Expect::NoOutput { job, name });
        return Ok(());
    }
    let (head, value) = match directive.split_once(": ") {
        Some((head, value)) => (head, value.to_owned()),
        None => match directive.strip_suffix(':') {
            Some(head) => (head, String::new()),
            None => return Err("expected `<directive>: <value>`".to_owned()),
        },
    };
    let (word, subject) = match head.split_once(' ') {
        Some((word, subject)) => (word, Some(subject.trim())),
        None => (head, None),
    };
    let expect = match (word, subject) {
        ("args", None) => {
            case.args
                .extend(shell_words::split(&value).map_err(|e| e.to_string())?);
            return Ok(());
        }
        ("env", None) => {
            let (name, value) = value.split_once('=').ok_or("expected NAME=VALUE")?;
            case.env.push((name.to_owned(), value.to_owned()));
            return Ok(());
        }
        ("exit", None) => {
            case.exit = value.trim().parse().map_err(|_| "expected a number")?;
            case.exit_given = true;
            return Ok(());
        }
        ("jobs", None) => Expect::Jobs(value.trim().parse().map_err(|_| "expected a number")?),
        ("job", Some(job)) => {
            let result = value.trim().to_owned();
            if !RESULTS.contains(&result.as_str()) {
                return Err(format!("unknown result {result:?}"));
            }
            Expect::Job {
                job: job.to_owned(),
                result,
            }
        }
        ("reason", Some(job)) => Expect::Reason {
            job: job.to_owned(),
            text: value,
        },
        ("step", Some(subject)) => {
            let (job, step) = split_job(subject)?;
            let mut words = value.split_whitespace();
            let outcome = words.next().ok_or("expected an outcome")?.to_owned();
            let conclusion = words.next().map_or_else(|| outcome.clone(), str::to_owned);
            if words.next().is_some() {
                return Err("expected `<outcome>[ <conclusion>]`".to_owned());
            }
            for result in [&outcome, &conclusion] {
                if !RESULTS.contains(&result.as_str()) {
                    return Err(format!("unknown result {result:?}"));
                }
            }
            Expect::Step {
                job,
                step,
                outcome,
                conclusion,
            }
        }
        ("output", Some(subject)) => {
            let (job, name) = split_job(subject)?;
            let value = value.replace("\\n", "\n");
            Expect::Output { job, name, value }
        }
        ("log", None) => Expect::Log(value),
        ("line", None) => Expect::Line(value),
        ("no-line", None) => Expect::NoLine(value),
        ("kind", Some(kind)) => {
            if !KINDS.contains(&kind) {
                return Err(format!("unknown log kind {kind:?}"));
            }
            Expect::Kind {
                kind: kind.to_owned(),
                text: value,
            }
        }
        ("no-kind", Some(kind)) => {
            if !KINDS.contains(&kind) {
                return Err(format!("unknown log kind {kind:?}"));
            }
            Expect::NoKind {
                kind: kind.to_owned(),
                text: value,
            }
        }
        ("annotation", Some(kind)) => {
            if !["error", "warning", "notice"].contains(&kind) {
                return Err(format!("unknown annotation kind {kind:?}"));
            }
            let (text, fields) = value.split_once(" | ").unwrap_or((&value, ""));
            let fields = fields
                .split_whitespace()
                .map(|f| {
                    f.split_once('=')
                        .map(|(k, v)| (k.to_owned(), v.to_owned()))
                        .ok_or_else(|| format!("expected field=value, got {f:?}"))
                })
                .collect::<Result<_, _>>()?;
            Expect::Annotation {
                kind: kind.to_owned(),
                text: text.to_owned(),
                fields,
            }
        }
        ("summary", None) => Expect::Summary(value),
        ("never", None) => {
            if value.is_empty() {
                return Err("`never` needs a text".to_owned());
            }
            Expect::Never(value)
        }
        ("stdout", None) => Expect::Stdout(value),
        ("file", Some(path)) => Expect::File {
            path: path.to_owned(),
            text: value,
        },
        ("stderr", None) => Expect::Stderr(value),
        _ => return Err("unknown directive".to_owned()),
    };
    case.expectations.push(expect);
    Ok(())
}

/// `<job> / <rest>`, split at the last ` / `: the name of a called workflow's job has one of
/// its own (`caller / job`), a step or output name none.
fn split_job(subject: &str) -> Result<(String, String), String> {
    let (job, rest) = subject
        .rsplit_once(" / ")
        .ok_or("expected `<job name> / <name>`")?;
    Ok((job.trim().to_owned(), rest.trim().to_owned()))
}

/// Copies the files of `from` into `to`, keeping permissions (scripts stay executable).
fn copy_tree(from: &Path, to: &Path) -> Result<(), String> {
    for entry in fs::read_dir(from).map_err(|e| format!("reading {}: {e}", from.display()))? {
        let entry = entry.map_err(|e| e.to_string())?;
        let source = entry.path();
        let target = to.join(entry.file_name());
        let kind = entry.file_type().map_err(|e| e.to_string())?;
        if kind.is_dir() {
            fs::create_dir_all(&target).map_err(|e| e.to_string())?;
            copy_tree(&source, &target)?;
        } else {
            fs::copy(&source, &target).map_err(|e| format!("copying {}: {e}", source.display()))?;
        }
    }
    Ok(())
}

fn git(dir: &Path, args: &[&str]) -> Result<(), String> {
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "user.name=Hearth Tests",
            "-c",
            "user.email=tests@example.com",
            "-c",
            "commit.gpgsign=false",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .output()
        .map_err(|e| format!("running git: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "git {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(())
}

/// A repository holding the case's files, with one commit on `main` and `origin` set.
fn make_repository(dir: &Path, files: &Path) -> Result<(), String> {
    if files.is_dir() {
        copy_tree(files, dir)?;
    }
    git(dir, &["init", "-q", "-b", "main"])?;
    git(dir, &["add", "-A"])?;
    git(dir, &["commit", "-q", "--allow-empty", "-m", "case"])?;
    git(dir, &["remote", "add", "origin", ORIGIN])
}

/// What one run printed, and where it ran.
struct Run {
    /// The repository the case ran in.
    repo: PathBuf,
    code: Option<i32>,
    stdout: String,
    stderr: String,
    events: Vec<Value>,
}

/// Runs the case with the binary; its exit code and what it printed.
fn run_binary(
    path: &Path,
    case: &Case,
    repo: &Path,
) -> Result<(Option<i32>, String, String), String> {
    let mut command = assert_cmd::Command::new(assert_cmd::cargo::cargo_bin("hearth"));
    command.current_dir(repo).arg("exec");
    if case.json {
        command.arg("--json");
    }
    if case.pass_workflow {
        command.arg("-W").arg(path);
    }
    command.arg("-C").arg(repo).args(&case.args);
    // Only what the case sets: nothing from a CI machine or a runner around the tests.
    for (name, _) in std::env::vars() {
        if name == "CI"
            || ["GITHUB_", "RUNNER_", "ACTIONS_", "INPUT_", "STATE_"]
                .iter()
                .any(|p| name.starts_with(p))
        {
            command.env_remove(name);
        }
    }
    command.env("CASE_DIR", repo);
    for (name, value) in &case.env {
        command.env(name, value);
    }
    command.timeout(CASE_TIMEOUT);
    let started = Instant::now();
    let output = command
        .output()
        .map_err(|e| format!("running hearth: {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    if output.status.code().is_none() && started.elapsed() >= CASE_TIMEOUT {
        return Err(format!("timed out after {CASE_TIMEOUT:?}"));
    }
    Ok((output.status.code(), stdout, stderr))
}

/// The environment a case's `hearth` runs with: this process's without what a CI machine or a
/// runner around the tests sets, then `CASE_DIR` and the case's own variables.
fn case_environment(case: &Case, repo: &Path) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = std::env::vars()
        .filter(|(name, _)| {
            name != "CI"
                && !["GITHUB_", "RUNNER_", "ACTIONS_", "INPUT_", "STATE_"]
                    .iter()
                    .any(|p| name.starts_with(p))
        })
        .collect();
    env.push(("CASE_DIR".to_owned(), repo.to_string_lossy().into_owned()));
    env.extend(case.env.iter().cloned());
    env
}

/// Runs the case in this process on the fake backend; an exit code as the binary would give
/// (2 for a usage error, whose message is the "stderr"), and the JSON events as "stdout".
fn run_in_process(path: &Path, case: &Case, repo: &Path) -> (Option<i32>, String, String) {
    use clap::Parser as _;
    use hearth::cmd::exec::ExecArgs;
    use hearth_runner::exec::local;

    let mut argv: Vec<String> = vec!["exec".into(), "--json".into()];
    if case.pass_workflow {
        argv.extend(["-W".into(), path.to_string_lossy().into_owned()]);
    }
    argv.extend(["-C".into(), repo.to_string_lossy().into_owned()]);
    argv.extend(case.args.iter().cloned());
    let usage = |e: String| (Some(2), String::new(), e);
    /// `hearth exec`'s flags alone.
    #[derive(clap::Parser)]
    struct Exec {
        #[command(flatten)]
        args: ExecArgs,
    }
    let args = match Exec::try_parse_from(&argv) {
        Ok(exec) => exec.args,
        Err(e) => return usage(e.to_string()),
    };
    let (mut options, labels) = match hearth::cmd::exec_run::local_options(&args) {
        Ok(parsed) => parsed,
        Err(e) => return usage(format!("{e:#}")),
    };
    // The binary runs in the repository: relative paths are relative to it.
    if let Some(event_path) = &options.event_path {
        options.event_path = Some(repo.join(event_path));
    }
    for workflow in &mut options.workflows {
        *workflow = repo.join(&*workflow);
    }
    let env = case_environment(case, repo);
    options.environment = Some(env.iter().cloned().collect());
    let loaded = match local::load(&options) {
        Ok(loaded) => loaded,
        Err(e) => return usage(e.to_string()),
    };
    let Ok(jobs_root) = tempfile::tempdir() else {
        return usage("cannot make a temporary folder".into());
    };
    let backend =
        hearth_fake_backend::FakeBackend::new(jobs_root.path().to_owned()).with_base_env(env);
    let backends =
        hearth_runner::route::Backends::new(labels).with_host(std::sync::Arc::new(backend));
    let actions = std::sync::Arc::new(hearth_runner::actions::GitActions::new(
        &args.default_actions_url,
        jobs_root.path().join("actions-cache"),
    ));
    let out = SharedBuffer::default();
    let sink = hearth_runner::exec::json::JsonLines::new(out.clone());
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return usage("cannot start a runtime".into());
    };
    let control = hearth_engine::job::JobControl::default();
    let outcome = runtime.block_on(local::run(
        &options, loaded, backends, actions, None, &sink, &control,
    ));
    drop(sink);
    let stdout = String::from_utf8_lossy(&out.0.lock().unwrap()).into_owned();
    (Some(i32::from(outcome.failed())), stdout, String::new())
}

/// A writer whose bytes the test reads afterwards.
#[derive(Clone, Default)]
struct SharedBuffer(std::sync::Arc<Mutex<Vec<u8>>>);

impl std::io::Write for SharedBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn run_case(path: &Path, verbose: bool, runner: Runner) -> Result<Vec<String>, String> {
    let text = fs::read_to_string(path).map_err(|e| format!("reading the case: {e}"))?;
    let case = parse_case(&text)?;
    if runner == Runner::FakeBackend && !case.in_process() {
        return Ok(Vec::new());
    }
    let repo = tempfile::tempdir().map_err(|e| format!("making a temporary folder: {e}"))?;
    make_repository(repo.path(), &path.with_extension(""))?;
    let (code, stdout, stderr) = match runner {
        Runner::Binary => run_binary(path, &case, repo.path())?,
        Runner::FakeBackend => run_in_process(path, &case, repo.path()),
    };
    if verbose {
        eprintln!(
            "--- {} stdout\n{stdout}--- stderr\n{stderr}---",
            case_name(path)
        );
    }
    let mut events = Vec::new();
    if case.json {
        for line in stdout.lines() {
            let event: Value = serde_json::from_str(line)
                .map_err(|e| format!("stdout line is not JSON ({e}): {line:?}"))?;
            events.push(event);
        }
    }
    let run = Run {
        repo: repo.path().to_owned(),
        code,
        stdout,
        stderr,
        events,
    };
    let mut problems: Vec<String> = Vec::new();
    if run.code != Some(case.exit) {
        problems.push(format!(
            "exit code: expected {}, got {:?}",
            case.exit, run.code
        ));
    }
    problems.extend(
        case.expectations
            .iter()
            .filter_map(|expect| check(expect, &run).err()),
    );
    if !problems.is_empty() && !run.stderr.trim().is_empty() {
        problems.push(format!("stderr: {}", truncate(run.stderr.trim(), 800)));
    }
    Ok(problems)
}

fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

fn field<'a>(event: &'a Value, name: &str) -> &'a str {
    event.get(name).and_then(Value::as_str).unwrap_or_default()
}

impl Run {
    fn of_kind<'a>(&'a self, event: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
        self.events
            .iter()
            .filter(move |e| field(e, "event") == event)
    }

    fn logs(&self) -> impl Iterator<Item = &Value> + '_ {
        self.of_kind("log")
    }

    fn job_finished(&self, job: &str) -> Result<&Value, String> {
        let mut found = self
            .of_kind("job_finished")
            .filter(|e| field(e, "name") == job);
        let first = found.next();
        match first {
            Some(event) if found.next().is_none() => Ok(event),
            Some(_) => Err(format!("job {job:?} finished more than once")),
            None => Err(format!(
                "no job_finished for job {job:?}; jobs: {:?}",
                self.of_kind("job_finished")
                    .map(|e| format!("{} = {}", field(e, "name"), field(e, "result")))
                    .collect::<Vec<_>>()
            )),
        }
    }

    /// Every log line, shortly, for messages.
    fn log_digest(&self, kind: Option<&str>) -> String {
        let lines: Vec<String> = self
            .logs()
            .filter(|e| kind.is_none_or(|k| field(e, "kind") == k))
            .map(|e| format!("{}: {:?}", field(e, "kind"), field(e, "text")))
            .collect();
        truncate(&lines.join("\n"), 1500)
    }
}

fn check(expect: &Expect, run: &Run) -> Result<(), String> {
    match expect {
        Expect::Jobs(n) => {
            let got = run.of_kind("job_finished").count();
            if got != *n {
                return Err(format!("expected {n} finished jobs, got {got}"));
            }
        }
        Expect::Job { job, result } => {
            let event = run.job_finished(job)?;
            let got = field(event, "result");
            if got != result {
                return Err(format!(
                    "job {job:?}: expected {result}, got {got} (reason {})",
                    event.get("reason").unwrap_or(&Value::Null)
                ));
            }
        }
        Expect::Reason { job, text } => {
            let event = run.job_finished(job)?;
            let reason = field(event, "reason");
            if !reason.contains(text.as_str()) {
                return Err(format!(
                    "job {job:?}: reason {reason:?} does not contain {text:?}"
                ));
            }
        }
        Expect::Step {
            job,
            step,
            outcome,
            conclusion,
        } => {
            let found: Vec<&Value> = run
                .of_kind("step_finished")
                .filter(|e| field(e, "name") == job && field(e, "step_name") == step)
                .collect();
            let [event] = found.as_slice() else {
                let steps: Vec<String> = run
                    .of_kind("step_finished")
                    .filter(|e| field(e, "name") == job)
                    .map(|e| field(e, "step_name").to_owned())
                    .collect();
                return Err(format!(
                    "expected one step {step:?} in job {job:?}, found {}; steps: {steps:?}",
                    found.len()
                ));
            };
            let got = (field(event, "outcome"), field(event, "conclusion"));
            if got != (outcome.as_str(), conclusion.as_str()) {
                return Err(format!(
                    "step {job:?} / {step:?}: expected {outcome}/{conclusion}, got {}/{}",
                    got.0, got.1
                ));
            }
        }
        Expect::Output { job, name, value } => {
            let event = run.job_finished(job)?;
            let outputs = event.get("outputs").cloned().unwrap_or(Value::Null);
            match outputs.get(name).and_then(Value::as_str) {
                Some(got) if got == value => {}
                _ => {
                    return Err(format!(
                        "job {job:?}: expected output {name} = {value:?}, outputs are {outputs}"
                    ))
                }
            }
        }
        Expect::NoOutput { job, name } => {
            let event = run.job_finished(job)?;
            let outputs = event.get("outputs").cloned().unwrap_or(Value::Null);
            if outputs.get(name).is_some() {
                return Err(format!(
                    "job {job:?}: expected no output {name}, outputs are {outputs}"
                ));
            }
        }
        Expect::Log(text) => {
            if !run.logs().any(|e| field(e, "text").contains(text.as_str())) {
                return Err(format!(
                    "no log line contains {text:?}; the log:\n{}",
                    run.log_digest(None)
                ));
            }
        }
        Expect::Line(text) => {
            if !run
                .logs()
                .any(|e| field(e, "kind") == "output" && field(e, "text") == text)
            {
                return Err(format!(
                    "no output line is {text:?}; the output:\n{}",
                    run.log_digest(Some("output"))
                ));
            }
        }
        Expect::NoLine(text) => {
            if run
                .logs()
                .any(|e| field(e, "kind") == "output" && field(e, "text") == text)
            {
                return Err(format!("an output line is {text:?}"));
            }
        }
        Expect::Kind { kind, text } => {
            if !run
                .logs()
                .any(|e| field(e, "kind") == kind && field(e, "text").contains(text.as_str()))
            {
                return Err(format!(
                    "no {kind} line contains {text:?}; the log:\n{}",
                    run.log_digest(None)
                ));
            }
        }
        Expect::NoKind { kind, text } => {
            if let Some(event) = run
                .logs()
                .find(|e| field(e, "kind") == kind && field(e, "text").contains(text.as_str()))
            {
                return Err(format!("a {kind} line contains {text:?}: {event}"));
            }
        }
        Expect::Annotation { kind, text, fields } => {
            let matches = |e: &&Value| {
                field(e, "kind") == kind
                    && field(e, "text") == text
                    && fields
                        .iter()
                        .all(|(name, want)| scalar_text(e.get(name)) == *want)
            };
            if !run.logs().any(|e| matches(&e)) {
                let candidates: Vec<String> = run
                    .logs()
                    .filter(|e| field(e, "kind") == kind)
                    .map(Value::to_string)
                    .collect();
                return Err(format!(
                    "no {kind} annotation {text:?} with {fields:?}; {kind} lines: {candidates:#?}"
                ));
            }
        }
        Expect::Summary(text) => {
            if !run
                .of_kind("step_summary")
                .any(|e| field(e, "markdown").contains(text.as_str()))
            {
                let summaries: Vec<&str> = run
                    .of_kind("step_summary")
                    .map(|e| field(e, "markdown"))
                    .collect();
                return Err(format!(
                    "no step summary contains {text:?}; summaries: {summaries:?}"
                ));
            }
        }
        Expect::Never(text) => {
            let mut found = Vec::new();
            if run.stdout.contains(text.as_str()) {
                found.push("stdout");
            }
            if run.stderr.contains(text.as_str()) {
                found.push("stderr");
            }
            if run.events.iter().any(|e| json_contains(e, text)) {
                found.push("a decoded JSON string");
            }
            if !found.is_empty() {
                let lines: Vec<&str> = run
                    .stdout
                    .lines()
                    .chain(run.stderr.lines())
                    .filter(|l| l.contains(text.as_str()))
                    .take(3)
                    .collect();
                return Err(format!(
                    "{text:?} appears in {}: {lines:?}",
                    found.join(", ")
                ));
            }
        }
        Expect::Stdout(text) => {
            if !run.stdout.contains(text.as_str()) {
                return Err(format!(
                    "stdout does not contain {text:?}; stdout:\n{}",
                    truncate(&run.stdout, 1500)
                ));
            }
        }
        Expect::Stderr(text) => {
            if !run.stderr.contains(text.as_str()) {
                return Err(format!(
                    "stderr does not contain {text:?}; stderr:\n{}",
                    truncate(&run.stderr, 1500)
                ));
            }
        }
        Expect::File { path, text } => {
            let file = run.repo.join(path);
            match fs::read_to_string(&file) {
                Ok(got) if got.contains(text.as_str()) => {}
                Ok(got) => {
                    return Err(format!(
                        "the repository's {path} does not contain {text:?}: {}",
                        truncate(&got, 300)
                    ))
                }
                Err(e) => return Err(format!("the repository's {path}: {e}")),
            }
        }
    }
    Ok(())
}

/// A JSON field as a directive writes it: a string as is, anything else (`null`, numbers) as
/// JSON.
fn scalar_text(value: Option<&Value>) -> String {
    match value {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => "null".to_owned(),
    }
}

/// Whether some string in `value` (keys included) contains `text`.
fn json_contains(value: &Value, text: &str) -> bool {
    match value {
        Value::String(s) => s.contains(text),
        Value::Array(items) => items.iter().any(|v| json_contains(v, text)),
        Value::Object(map) => map
            .iter()
            .any(|(k, v)| k.contains(text) || json_contains(v, text)),
        _ => false,
    }
}

#[test]
fn a_case_without_expectations_is_an_error() {
    assert!(parse_case("# args: -j x\non: push\n").is_err());
    assert!(parse_case("# bogus: 1\n# exit: 0\non: push\n").is_err());
    let case = parse_case("## prose\n# job b (x): success\n# exit: 1\n").unwrap();
    assert_eq!(case.exit, 1);
    assert_eq!(case.expectations.len(), 1);
    assert!(parse_case("# exit: 2\n").unwrap().exit_given);
}
