//! The Docker backend's copy mode (`container.bind_workdir: false`) against a real Docker
//! Engine: the job's folder is a volume in the daemon, nothing of the runner's machine is
//! mounted, and the job's files, the repository and actions go through the Engine API. Last, a
//! job runs so in a second daemon reached over TCP with TLS. Without a daemon these tests fail,
//! saying so: they never skip silently.

use std::time::Duration;

use hearth_backend::{
    Backend, BackendError, CancellationToken, ContainerSpec, ExecEnd, ExecSpec, HostPath, JobPath,
    JobRuntime, JobSpec, NoSetupLog, Stream,
};
use hearth_docker::{ContainerSettings, DockerBackend, Workdir};
use hearth_test_dockerd::TlsDockerd;
use sha2::{Digest, Sha256};

mod common;
use common::IMAGE;

fn copy_settings() -> ContainerSettings {
    ContainerSettings {
        workdir: Workdir::Copy,
        ..Default::default()
    }
}

fn spec(task: &str, repository: Option<&std::path::Path>) -> JobSpec {
    JobSpec {
        name: "copy test".into(),
        repository: repository.map(HostPath::new),
        container: Some(ContainerSpec {
            image: IMAGE.into(),
            ..Default::default()
        }),
        owner: vec![
            ("hearth.runner".into(), format!("docker-tests-{task}")),
            ("hearth.task".into(), task.into()),
        ],
        ..Default::default()
    }
}

async fn run(job: &dyn JobRuntime, script: &str, dir: &JobPath) -> (ExecEnd, String) {
    let mut out = Vec::new();
    let mut sink = |_: Stream, chunk: &[u8]| out.extend_from_slice(chunk);
    let spec = ExecSpec {
        argv: vec!["sh".into(), "-c".into(), script.into()],
        env: job.base_env().to_vec(),
        working_dir: dir.clone(),
        timeout: None,
    };
    let end = job
        .exec(spec, &mut sink, &CancellationToken::new())
        .await
        .expect("exec");
    (end, String::from_utf8_lossy(&out).into_owned())
}

/// The repository a job gets: files in folders, an executable, a link.
fn repository() -> tempfile::TempDir {
    let repo = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(repo.path().join("src/deep")).unwrap();
    std::fs::write(repo.path().join("README.md"), "hello from the repository\n").unwrap();
    std::fs::write(repo.path().join("src/a.rs"), "fn a() {}\n").unwrap();
    std::fs::write(repo.path().join("src/deep/b.rs"), "fn b() {}\n").unwrap();
    std::os::unix::fs::symlink("a.rs", repo.path().join("src/link.rs")).unwrap();
    repo
}

/// How many containers, networks and volumes carry this task's labels, in `docker`.
async fn labelled(docker: &bollard::Docker, task: &str) -> (usize, usize, usize) {
    common::labelled_with_volumes(docker, "docker-tests", task).await
}

async fn local_docker() -> bollard::Docker {
    bollard::Docker::connect_with_local_defaults()
        .expect("docker")
        .negotiate_version()
        .await
        .unwrap_or_else(|e| {
            panic!("the Docker tests need a Docker daemon (run scripts/docker-test-env): {e}")
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copied_job_folder_holds_the_repository_the_files_and_the_actions() {
    let docker = local_docker().await;
    let root = tempfile::tempdir().unwrap();
    let backend = DockerBackend::with_client(docker.clone(), root.path().to_owned())
        .with_settings(copy_settings());
    let owner = [("hearth.runner".to_owned(), "docker-tests-copy".to_owned())];
    backend.reap(&owner).await.expect("reaped");
    let repo = repository();
    let cancel = CancellationToken::new();
    let job = backend
        .start(spec("copy", Some(repo.path())), &mut NoSetupLog, &cancel)
        .await
        .expect("started");
    let paths = job.paths().clone();

    // Nothing of this machine's is mounted: only volumes, the job's labelled one at /__w.
    let id = job.containers().container.expect("a job container").id;
    let inspected = docker
        .inspect_container(&id, None)
        .await
        .expect("inspected");
    let mounts = inspected.mounts.unwrap_or_default();
    assert!(!mounts.is_empty());
    for mount in &mounts {
        assert_eq!(mount.typ.as_deref(), Some("volume"), "{mount:?}");
    }
    assert_eq!(labelled(&docker, "copy").await, (1, 1, 1));
    assert!(job.host_view(&paths.workspace).is_none());

    // The repository is in the workspace, the step's working directory.
    let (end, out) = run(
        &*job,
        "cat README.md && cat src/link.rs && pwd",
        &paths.workspace,
    )
    .await;
    assert_eq!(end, ExecEnd::Exited(0));
    assert_eq!(
        out,
        "hello from the repository\nfn a() {}\n/__w/workspace\n"
    );

    // What the engine writes, steps read; what steps write, the engine reads, bounded.
    let commands = paths.temp.join("_runner_file_commands/set_output_1");
    job.write_file(&commands, b"from the engine\n", None)
        .await
        .expect("written");
    let (end, out) = run(
        &*job,
        &format!("cat {commands}; echo 'x=1' >> {commands}"),
        &paths.workspace,
    )
    .await;
    assert_eq!(
        (end, out.as_str()),
        (ExecEnd::Exited(0), "from the engine\n")
    );
    let read = job.read_file(&commands, 1024).await.expect("read");
    assert_eq!(read.as_deref(), Some(&b"from the engine\nx=1\n"[..]));
    match job.read_file(&commands, 10).await {
        Err(BackendError::FileTooLarge { limit: 10, path }) => assert_eq!(path, commands),
        other => panic!("expected FileTooLarge, got {other:?}"),
    }
    let big = paths.temp.join("big");
    let (end, _) = run(
        &*job,
        &format!("head -c 3000000 /dev/zero > {big}"),
        &paths.workspace,
    )
    .await;
    assert_eq!(end, ExecEnd::Exited(0));
    assert!(matches!(
        job.read_file(&big, 1_000_000).await,
        Err(BackendError::FileTooLarge { .. })
    ));
    assert_eq!(
        job.read_file(&paths.temp.join("none"), 1024)
            .await
            .expect("read"),
        None
    );
    let outside = JobPath::new("/etc/passwd");
    assert!(matches!(
        job.read_file(&outside, 1024).await,
        Err(BackendError::NotInJob(_))
    ));

    // Emptied files exist and are empty, whatever they held.
    let env_file = paths.temp.join("_runner_file_commands/set_env_1");
    job.empty_files(&[commands.clone(), env_file.clone()])
        .await
        .expect("emptied");
    let (end, out) = run(
        &*job,
        &format!("wc -c < {commands}; wc -c < {env_file}"),
        &paths.workspace,
    )
    .await;
    assert_eq!(end, ExecEnd::Exited(0));
    assert_eq!(out.split_whitespace().collect::<Vec<_>>(), ["0", "0"]);

    // An action's checkout on this machine is uploaded and runs there; once per folder.
    let action = tempfile::tempdir().unwrap();
    std::fs::write(
        action.path().join("action.sh"),
        "echo action ran in \"$PWD\"\n",
    )
    .unwrap();
    let exposed = job
        .expose(&HostPath::new(action.path()))
        .await
        .expect("exposed");
    assert_eq!(exposed.as_str(), "/__w/_actions/0");
    let again = job
        .expose(&HostPath::new(action.path()))
        .await
        .expect("exposed");
    assert_eq!(again, exposed);
    let (end, out) = run(&*job, "sh action.sh", &exposed).await;
    assert_eq!(
        (end, out.as_str()),
        (ExecEnd::Exited(0), "action ran in /__w/_actions/0\n")
    );

    // `hashFiles`' view of the workspace: every file with its digest, the link as its target.
    let (end, _) = run(&*job, "echo made > made-by-step.txt", &paths.workspace).await;
    assert_eq!(end, ExecEnd::Exited(0));
    let mut digests = job
        .file_digests(&paths.workspace)
        .await
        .expect("digests")
        .expect("the copy mode lists files");
    digests.sort_by(|a, b| a.path.cmp(&b.path));
    let listed: Vec<(&str, [u8; 32])> = digests
        .iter()
        .map(|d| (d.path.as_str(), d.sha256))
        .collect();
    let sha = |text: &str| -> [u8; 32] { Sha256::digest(text.as_bytes()).into() };
    assert_eq!(
        listed,
        [
            ("README.md", sha("hello from the repository\n")),
            ("made-by-step.txt", sha("made\n")),
            ("src/a.rs", sha("fn a() {}\n")),
            ("src/deep/b.rs", sha("fn b() {}\n")),
            ("src/link.rs", sha("fn a() {}\n")),
        ]
    );

    // A working directory that is not there is said so.
    let mut sink = |_: Stream, _: &[u8]| {};
    let missing = ExecSpec {
        argv: vec!["true".into()],
        env: Vec::new(),
        working_dir: paths.workspace.join("no-such-folder"),
        timeout: None,
    };
    let ended = job.exec(missing, &mut sink, &cancel).await;
    assert!(
        matches!(ended, Err(BackendError::WorkingDirectory(_))),
        "{ended:?}"
    );

    // Nothing the job wrote reached this machine's job folders.
    let mut found = Vec::new();
    for entry in walk(root.path()) {
        if entry.ends_with("made-by-step.txt") || entry.ends_with("README.md") {
            found.push(entry);
        }
    }
    assert!(found.is_empty(), "{found:?}");

    job.finish().await.expect("finished");
    assert_eq!(labelled(&docker, "copy").await, (0, 0, 0));
}

/// A timed-out step in copy mode is stopped (its pid file is read inside the container).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copied_job_stops_a_step_past_its_timeout() {
    let docker = local_docker().await;
    let root = tempfile::tempdir().unwrap();
    let backend = DockerBackend::with_client(docker.clone(), root.path().to_owned())
        .with_settings(copy_settings());
    let owner = [(
        "hearth.runner".to_owned(),
        "docker-tests-copy-timeout".to_owned(),
    )];
    backend.reap(&owner).await.expect("reaped");
    let cancel = CancellationToken::new();
    let job = backend
        .start(spec("copy-timeout", None), &mut NoSetupLog, &cancel)
        .await
        .expect("started");
    let mut sink = |_: Stream, _: &[u8]| {};
    let started = std::time::Instant::now();
    let spec = ExecSpec {
        argv: vec!["sh".into(), "-c".into(), "sleep 60 & sleep 60".into()],
        env: job.base_env().to_vec(),
        working_dir: job.paths().workspace.clone(),
        timeout: Some(Duration::from_millis(500)),
    };
    let end = job.exec(spec, &mut sink, &cancel).await.expect("exec");
    assert_eq!(end, ExecEnd::TimedOut);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    // `[s]` keeps the search's own command line from matching.
    let (end, out) = run(
        &*job,
        "ps | grep -c '[s]leep 60' || true",
        &job.paths().workspace.clone(),
    )
    .await;
    assert_eq!(end, ExecEnd::Exited(0));
    assert_eq!(out.trim(), "0", "the step's processes are gone");
    job.finish().await.expect("finished");
    assert_eq!(labelled(&docker, "copy-timeout").await, (0, 0, 0));
}

/// Leftovers of a runner that died (a job dropped, its removal never run) are reaped by label,
/// the volume included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reap_removes_a_dead_runners_job_volume() {
    let docker = local_docker().await;
    let root = tempfile::tempdir().unwrap();
    let backend = DockerBackend::with_client(docker.clone(), root.path().to_owned())
        .with_settings(copy_settings());
    let cancel = CancellationToken::new();
    let job = backend
        .start(spec("copy-reap", None), &mut NoSetupLog, &cancel)
        .await
        .expect("started");
    assert_eq!(labelled(&docker, "copy-reap").await, (1, 1, 1));
    // What a killed runner leaves: nothing removed it.
    std::mem::forget(job);
    // Another backend (a new runner process) with the same registration.
    let other_root = tempfile::tempdir().unwrap();
    let other = DockerBackend::with_client(docker.clone(), other_root.path().to_owned());
    let owner = [(
        "hearth.runner".to_owned(),
        "docker-tests-copy-reap".to_owned(),
    )];
    let reaped = other.reap(&owner).await.expect("reaped");
    assert!(
        reaped.removed.iter().any(|r| r.starts_with("volume ")),
        "{:?}",
        reaped.removed
    );
    assert_eq!(labelled(&docker, "copy-reap").await, (0, 0, 0));
}

/// A daemon that shares no folder with the runner: a second dockerd over TCP with TLS, where
/// the job, its repository and an action come only through the API.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_runs_in_copy_mode_on_a_remote_daemon() {
    let dockerd = TlsDockerd::start();
    let docker = common::connect_tls(&dockerd).await;
    dockerd.load(IMAGE);
    let jobs = tempfile::tempdir().unwrap();
    let backend = DockerBackend::with_client(docker.clone(), jobs.path().to_owned())
        .with_settings(copy_settings());
    let repo = repository();
    let cancel = CancellationToken::new();
    let job = backend
        .start(
            spec("copy-remote", Some(repo.path())),
            &mut NoSetupLog,
            &cancel,
        )
        .await
        .expect("started");
    let (end, out) = run(
        &*job,
        "cat README.md src/deep/b.rs",
        &job.paths().workspace.clone(),
    )
    .await;
    assert_eq!(end, ExecEnd::Exited(0), "{out}");
    assert_eq!(out, "hello from the repository\nfn b() {}\n");
    let output = job.paths().temp.join("out");
    run(
        &*job,
        &format!("echo remote=yes > {output}"),
        &job.paths().workspace.clone(),
    )
    .await;
    let read = job.read_file(&output, 1024).await.expect("read");
    assert_eq!(read.as_deref(), Some(&b"remote=yes\n"[..]));
    job.finish().await.expect("finished");
    assert_eq!(labelled(&docker, "copy-remote").await, (0, 0, 0));
}

fn walk(root: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path.clone());
            }
            found.push(path);
        }
    }
    found
}

/// In copy mode nothing of this machine is mounted, the lent node included: an image without
/// node gets it copied into the job when an action first asks for it, and it runs there.
#[tokio::test]
async fn a_copied_job_is_lent_a_node_through_the_api() {
    let docker = local_docker().await;
    let root = tempfile::tempdir().unwrap();
    let externals = tempfile::tempdir().unwrap();
    let backend = DockerBackend::with_client(docker.clone(), root.path().to_path_buf())
        .with_settings(copy_settings())
        .with_node_lending(externals.path().to_path_buf());
    let job = backend
        .start(
            spec("copy-node", None),
            &mut NoSetupLog,
            &CancellationToken::new(),
        )
        .await
        .expect("started");
    let node = job.node(20).await.expect("a node is lent");
    assert!(node.argv[0].starts_with("/__w/_actions/"), "{node:?}");
    let script = job.paths().temp.join("version.js");
    job.write_file(
        &script,
        b"console.log(`node ${process.versions.node}`)",
        None,
    )
    .await
    .expect("script written");
    let mut out = Vec::new();
    let mut sink = |_: Stream, chunk: &[u8]| out.extend_from_slice(chunk);
    let spec = ExecSpec {
        argv: node
            .argv
            .iter()
            .cloned()
            .chain([script.as_str().to_owned()])
            .collect(),
        env: job.base_env().to_vec(),
        working_dir: job.paths().workspace.clone(),
        timeout: None,
    };
    let end = job
        .exec(spec, &mut sink, &CancellationToken::new())
        .await
        .expect("exec");
    let said = String::from_utf8_lossy(&out);
    assert_eq!(end, ExecEnd::Exited(0), "{said}");
    assert!(said.starts_with("node "), "{said}");
    // Asked again, it is not copied again.
    assert_eq!(job.node(20).await.expect("again").argv, node.argv);
    job.finish().await.expect("finished");
    assert_eq!(labelled(&docker, "copy-node").await, (0, 0, 0));
}
