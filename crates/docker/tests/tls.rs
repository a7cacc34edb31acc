//! The Docker backend over TCP with TLS: a second `dockerd` on 127.0.0.1, its certificates
//! made here (a CA, a server certificate for 127.0.0.1, a client certificate), reached as
//! `DOCKER_HOST=tcp://…` with `DOCKER_TLS_VERIFY` and `DOCKER_CERT_PATH` would reach it; a job
//! runs in it. Without a Docker installation the test fails, saying so.

use std::net::{IpAddr, Ipv4Addr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use hearth_backend::{
    Backend, CancellationToken, ContainerSpec, ExecEnd, ExecSpec, JobSpec, NoSetupLog,
};
use hearth_docker::connect::DockerSettings;
use hearth_docker::DockerBackend;
use rcgen::{
    BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, SanType,
};

/// The second daemon, stopped (and its folders removed with the test's) when dropped.
struct Daemon(Child);

/// The second daemon's default bridge, made for it and deleted when dropped. A daemon started
/// with `--bridge none` deletes `docker0` as it starts, the first daemon's: `docker run`
/// without `--network` then fails until that daemon restarts (the Docker benchmark's floor,
/// other tests running side by side). A bridge of another name is left alone.
struct Bridge(String);

impl Bridge {
    fn new() -> Self {
        // Interface names have at most 15 characters.
        let name = format!("hth{}", std::process::id() % 1_000_000);
        let made = Command::new("ip")
            .args(["link", "add", &name, "type", "bridge"])
            .status()
            .unwrap_or_else(|e| panic!("this test needs `ip` (iproute2): {e}"));
        assert!(made.success(), "cannot make the bridge {name}");
        Bridge(name)
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "delete", &self.0])
            .status();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).expect("written");
}

/// `ca.pem`, `cert.pem`, `key.pem` (the client's) in `client`; the server's in `server`.
fn certificates(client: &Path, server: &Path) {
    let ca_key = KeyPair::generate().expect("key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).expect("ca");
    let issuer = Issuer::new(ca_params, ca_key);

    let server_key = KeyPair::generate().expect("key");
    let mut server_params = CertificateParams::new(vec!["localhost".to_owned()]).expect("params");
    server_params
        .subject_alt_names
        .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_cert = server_params
        .signed_by(&server_key, &issuer)
        .expect("server");

    let client_key = KeyPair::generate().expect("key");
    let mut client_params = CertificateParams::new(Vec::<String>::new()).expect("params");
    client_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client_cert = client_params
        .signed_by(&client_key, &issuer)
        .expect("client");

    for dir in [client, server] {
        write(dir, "ca.pem", &ca.pem());
    }
    write(server, "cert.pem", &server_cert.pem());
    write(server, "key.pem", &server_key.serialize_pem());
    write(client, "cert.pem", &client_cert.pem());
    write(client, "key.pem", &client_key.serialize_pem());
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_runs_in_a_docker_daemon_reached_over_tcp_with_tls() {
    let dir = tempfile::tempdir().unwrap();
    let (client, server, data) = (
        dir.path().join("client"),
        dir.path().join("server"),
        dir.path().join("d"),
    );
    for folder in [&client, &server, &data] {
        std::fs::create_dir_all(folder).unwrap();
    }
    certificates(&client, &server);
    let port = free_port();
    let address = format!("tcp://127.0.0.1:{port}");
    let log = std::fs::File::create(dir.path().join("dockerd.log")).unwrap();
    // Dropped after the daemon.
    let bridge = Bridge::new();
    let _daemon = Daemon(
        Command::new("dockerd")
            .args([
                "--tlsverify",
                "-H",
                &address,
                "--bridge",
                &bridge.0,
                "--iptables=false",
            ])
            .arg("--tlscacert")
            .arg(server.join("ca.pem"))
            .arg("--tlscert")
            .arg(server.join("cert.pem"))
            .arg("--tlskey")
            .arg(server.join("key.pem"))
            .arg("--data-root")
            .arg(data.join("data"))
            .arg("--exec-root")
            .arg(data.join("exec"))
            .arg("--pidfile")
            .arg(data.join("pid"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("this test needs dockerd (scripts/docker-test-env): {e}")),
    );

    let settings = DockerSettings {
        host: Some(address.clone()),
        tls_verify: true,
        cert_path: Some(client.clone()),
    };
    // The daemon is still starting: waited for, as a sidecar would be.
    let docker = settings
        .connect(Duration::from_secs(60), |_| {})
        .await
        .unwrap_or_else(|e| {
            let log = std::fs::read_to_string(dir.path().join("dockerd.log")).unwrap_or_default();
            panic!("{e}\n{log}")
        });

    // Without the client certificate the daemon refuses the connection.
    let anonymous = DockerSettings {
        host: Some(address.clone()),
        ..Default::default()
    };
    assert!(anonymous.connect(Duration::ZERO, |_| {}).await.is_err());

    // The test image, loaded into the second daemon through the CLI with the same settings.
    let saved = Command::new("docker")
        .args(["save", "hearth-test/busybox:1"])
        .output()
        .expect("docker save");
    assert!(saved.status.success(), "run scripts/docker-test-env first");
    let mut load = Command::new("docker")
        .args(["--tlsverify", "-H", &address, "load"])
        .env("DOCKER_CERT_PATH", &client)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("docker load");
    {
        use std::io::Write as _;
        load.stdin.take().unwrap().write_all(&saved.stdout).unwrap();
    }
    assert!(load.wait().unwrap().success());

    let backend = DockerBackend::with_client(docker, dir.path().join("jobs"));
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
