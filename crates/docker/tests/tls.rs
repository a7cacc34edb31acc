//! The Docker backend over TCP with TLS: a second `dockerd` on 127.0.0.1 (`hearth-test-dockerd`,
//! its certificates made on the spot), reached as `DOCKER_HOST=tcp://…` with
//! `DOCKER_TLS_VERIFY` and `DOCKER_CERT_PATH` would reach it; a job runs in it. Without a
//! Docker installation the test fails, saying so.

use std::time::Duration;

use hearth_backend::{
    Backend, CancellationToken, ContainerSpec, ExecEnd, ExecSpec, JobSpec, NoSetupLog,
};
use hearth_docker::connect::DockerSettings;
use hearth_docker::DockerBackend;
use hearth_test_dockerd::TlsDockerd;

mod common;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_runs_in_a_docker_daemon_reached_over_tcp_with_tls() {
    let dockerd = TlsDockerd::start();
    let docker = common::connect_tls(&dockerd).await;

    // Without the client certificate the daemon refuses the connection.
    let anonymous = DockerSettings {
        host: Some(dockerd.address.clone()),
        ..Default::default()
    };
    assert!(anonymous.connect(Duration::ZERO, |_| {}).await.is_err());

    dockerd.load("hearth-test/busybox:1");
    let jobs = tempfile::tempdir().unwrap();
    let backend = DockerBackend::with_client(docker, jobs.path().to_owned());
    let spec = JobSpec {
        name: "tls".into(),
        container: Some(ContainerSpec {
            image: "hearth-test/busybox:1".into(),
            ..Default::default()
        }),
        owner: vec![("hearth.runner".into(), "docker-tests-tls".into())],
        ..Default::default()
    };
    let cancel = CancellationToken::new();
    let job = backend
        .start(spec, &mut NoSetupLog, &cancel)
        .await
        .expect("started");
    let mut out = Vec::new();
    let mut sink = |_: hearth_backend::Stream, chunk: &[u8]| out.extend_from_slice(chunk);
    let exec = ExecSpec {
        argv: vec!["sh".into(), "-c".into(), "echo over tls".into()],
        env: job.base_env().to_vec(),
        working_dir: job.paths().workspace.clone(),
        timeout: None,
    };
    let end = job.exec(exec, &mut sink, &cancel).await.expect("exec");
    assert_eq!(end, ExecEnd::Exited(0));
    assert_eq!(String::from_utf8_lossy(&out).trim(), "over tls");
    job.finish().await.expect("finished");
}
