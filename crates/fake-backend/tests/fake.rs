//! The fake backend catches what it is there to catch: host paths given to a job, job paths
//! opened on the host; and it translates paths both ways.

use std::path::Path;

use hearth_backend::{
    Backend, BackendError, CancellationToken, ExecEnd, ExecSpec, HostPath, JobPath, JobSpec,
    NoSetupLog, Stream,
};
use hearth_fake_backend::{FakeBackend, JOB_ROOT};

fn sh(script: &str, working_dir: JobPath) -> ExecSpec {
    ExecSpec {
        argv: vec!["sh".into(), "-c".into(), script.into()],
        env: vec![("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into())],
        working_dir,
        timeout: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_paths_are_not_host_paths_and_host_paths_are_refused() {
    let root = tempfile::tempdir().unwrap();
    let backend = FakeBackend::new(root.path().to_owned());
    let cancel = CancellationToken::new();
    let job = backend
        .start(JobSpec::default(), &mut NoSetupLog, &cancel)
        .await
        .unwrap();
    let workspace = job.paths().workspace.clone();
    assert!(workspace.as_str().starts_with(JOB_ROOT));
    // A job path means nothing on the host: an engine that opened one directly would fail.
    assert!(!Path::new(workspace.as_str()).exists());
    let on_host = job.host_view(&workspace).unwrap();
    assert!(on_host.as_path().is_dir());

    // The job sees its own paths: what it prints comes back as job paths.
    let mut out = Vec::new();
    let mut sink = |stream: Stream, chunk: &[u8]| {
        if stream == Stream::Stdout {
            out.extend_from_slice(chunk)
        }
    };
    let end = job
        .exec(sh("pwd -P", workspace.clone()), &mut sink, &cancel)
        .await
        .unwrap();
    assert_eq!(end, ExecEnd::Exited(0));
    assert_eq!(String::from_utf8(out).unwrap().trim(), workspace.as_str());

    // A host path where a job path belongs is refused, in each place it could hide.
    let host = JobPath::new(on_host.as_path().to_string_lossy().into_owned());
    let mut ignore = |_: Stream, _: &[u8]| {};
    let refused = job
        .exec(sh("true", host.clone()), &mut ignore, &cancel)
        .await;
    assert!(
        matches!(refused, Err(BackendError::NotInJob(_))),
        "{refused:?}"
    );
    let in_argv = sh(&format!("ls {host}"), workspace.clone());
    let refused = job.exec(in_argv, &mut ignore, &cancel).await;
    assert!(
        matches!(refused, Err(BackendError::NotInJob(_))),
        "{refused:?}"
    );
    let mut in_env = sh("true", workspace.clone());
    in_env.env.push(("DIR".into(), host.to_string()));
    let refused = job.exec(in_env, &mut ignore, &cancel).await;
    assert!(
        matches!(refused, Err(BackendError::NotInJob(_))),
        "{refused:?}"
    );

    // Files: reached by job path, contents translated.
    let file = job.paths().temp.join("out");
    job.write_file(&file, format!("at={workspace}").as_bytes(), None)
        .await
        .unwrap();
    let raw = std::fs::read_to_string(job.host_view(&file).unwrap().as_path()).unwrap();
    assert_eq!(raw, format!("at={}", on_host));
    let read = job.read_file(&file, 1024).await.unwrap().unwrap();
    assert_eq!(String::from_utf8(read).unwrap(), format!("at={workspace}"));
    assert!(matches!(
        job.read_file(&host, 1024).await,
        Err(BackendError::NotInJob(_))
    ));
    job.finish().await.unwrap();
    assert!(!on_host.as_path().exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exposed_folders_are_copies_the_job_sees_under_its_own_root() {
    let root = tempfile::tempdir().unwrap();
    let action = tempfile::tempdir().unwrap();
    std::fs::write(action.path().join("action.yml"), "name: a\n").unwrap();
    let backend = FakeBackend::new(root.path().to_owned());
    let cancel = CancellationToken::new();
    let job = backend
        .start(JobSpec::default(), &mut NoSetupLog, &cancel)
        .await
        .unwrap();
    let seen = job.expose(&HostPath::new(action.path())).await.unwrap();
    assert!(seen.as_str().starts_with(JOB_ROOT), "{seen}");
    assert_ne!(Path::new(seen.as_str()), action.path());
    let text = job
        .read_file(&seen.join("action.yml"), 1024)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(text, b"name: a\n");
    // Exposed once per folder.
    assert_eq!(
        job.expose(&HostPath::new(action.path())).await.unwrap(),
        seen
    );
    job.finish().await.unwrap();
}
