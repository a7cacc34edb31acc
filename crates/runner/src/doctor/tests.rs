//! The doctor in-process: the fake forge, and the fake backend standing for Docker (its
//! `with_unreachable` says what a job network cannot reach, as the Docker backend would).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use hearth_backend::{Backend, BoxFuture};
use hearth_fake_backend::FakeBackend;
use hearth_fake_forge::{FakeForge, Options, Tls};
use hearth_forge::{Client, ClientOptions, Secret};

use super::*;
use crate::labels::Labels;
use crate::register::{register, RegisterInput};

const TOKEN: &str = "doctor-registration-token";

/// A Docker daemon that has every image, and jobs on the fake backend.
struct FakeDocker {
    backend: Arc<FakeBackend>,
}

impl DockerProbe for FakeDocker {
    fn address(&self) -> String {
        "fake://docker".into()
    }

    fn facts(&self) -> BoxFuture<'_, Result<DockerFacts, String>> {
        Box::pin(async {
            Ok(DockerFacts {
                version: "0.0-fake".into(),
                api_version: "1.41".into(),
                data_root: None,
            })
        })
    }

    fn image(&self, _: &str) -> BoxFuture<'_, ImageState> {
        Box::pin(async { ImageState::Local })
    }

    fn is_local(&self) -> bool {
        false
    }

    fn backend(&self) -> Arc<dyn Backend> {
        self.backend.clone()
    }
}

/// A runner registered with `forge` (labels `specs`) in `dir`, its config `yaml` plus its
/// folders; returns the config's path.
async fn registered(forge: &FakeForge, dir: &Path, yaml: &str, specs: &[&str]) -> PathBuf {
    let config = dir.join("config.yaml");
    write_config(&config, dir, yaml, "");
    register_in(forge, dir, specs, None).await;
    config
}

/// `config.yaml`: `yaml`, then `runner:` with `runner_keys` (indented lines) and the
/// registration file, and the work folder, all in `dir`.
fn write_config(config: &Path, dir: &Path, yaml: &str, runner_keys: &str) {
    let text = format!(
        "{yaml}runner:\n{runner_keys}  file: {}\nhost:\n  workdir_parent: {}\n",
        dir.join(".runner").display(),
        dir.join("work").display()
    );
    std::fs::write(config, text).unwrap();
}

/// Registers with `forge`, trusting `ca_file`, and writes `dir/.runner`.
async fn register_in(forge: &FakeForge, dir: &Path, specs: &[&str], ca_file: Option<PathBuf>) {
    let file = dir.join(".runner");
    let client = Client::new(&ClientOptions {
        address: forge.url(),
        insecure: false,
        ca_file,
        request_timeout: std::time::Duration::from_secs(10),
        version: "test".into(),
    })
    .unwrap();
    let specs: Vec<String> = specs.iter().map(|s| (*s).to_owned()).collect();
    let labels = Labels::parse(&specs).unwrap();
    let token = Secret::from(TOKEN);
    let input = RegisterInput {
        instance: &forge.url(),
        token: &token,
        name: "doctor-test",
        labels: &labels,
        ephemeral: false,
        version: "test",
    };
    let done = register(&client, &input, |_| {}).await.unwrap();
    done.registration.save(&file).unwrap();
}

fn options(config: PathBuf, docker: Option<FakeBackend>) -> DoctorOptions {
    DoctorOptions {
        config: Some(config),
        labels: None,
        version: "test".into(),
        connect_docker: Box::new(move |_, _| {
            Box::pin(async move {
                let backend = docker.ok_or("no Docker here")?;
                let probe: Box<dyn DockerProbe> = Box::new(FakeDocker {
                    backend: Arc::new(backend),
                });
                Ok(probe)
            })
        }),
        connect_kubernetes: Box::new(|_| Box::pin(async { Err("no cluster here".to_owned()) })),
        min_free: Some(1),
    }
}

fn cluster_facts(missing: &[&str]) -> KubernetesFacts {
    KubernetesFacts {
        version: "v1.20.15".into(),
        address: "https://127.0.0.1:6443".into(),
        namespace: "ci".into(),
        missing: missing.iter().map(|m| (*m).to_owned()).collect(),
    }
}

/// A `kubernetes://` label brings the cluster's check: a failure when it cannot be reached or
/// a right is missing (named, with the Role that has them), a pass otherwise; without such a
/// label there is no check.
#[tokio::test]
async fn a_kubernetes_label_checks_the_cluster_and_the_runners_rights() {
    let forge = forge().await;
    let dir = tempfile::tempdir().unwrap();
    let config = registered(&forge, dir.path(), "", &["pods:kubernetes://busybox"]).await;
    let check = |report: &Report| {
        report
            .checks
            .iter()
            .find(|c| c.name == "kubernetes")
            .cloned()
            .unwrap_or_else(|| panic!("no kubernetes check: {report:#?}"))
    };

    let unreachable = run(options(config.clone(), None)).await;
    assert_eq!(check(&unreachable).status, Status::Fail);
    assert!(check(&unreachable).detail.contains("no cluster here"));
    assert_eq!(status(&unreachable, "docker"), Status::Skip);

    let mut lacking = options(config.clone(), None);
    lacking.connect_kubernetes = Box::new(|_| {
        Box::pin(async { Ok(cluster_facts(&["create or get pods/exec", "get pods/log"])) })
    });
    let lacking = run(lacking).await;
    let failed = check(&lacking);
    assert_eq!(failed.status, Status::Fail);
    assert!(
        failed
            .detail
            .contains("may not create or get pods/exec, get pods/log there"),
        "{failed:?}"
    );
    assert!(
        failed
            .advice
            .as_deref()
            .is_some_and(|a| a.contains("role.yaml")),
        "{failed:?}"
    );
    assert!(!lacking.ok());

    let mut allowed = options(config, None);
    allowed.connect_kubernetes = Box::new(|_| Box::pin(async { Ok(cluster_facts(&[])) }));
    let allowed = run(allowed).await;
    assert_eq!(check(&allowed).status, Status::Pass);
    assert!(check(&allowed)
        .detail
        .contains("Kubernetes v1.20.15 at https://127.0.0.1:6443, namespace ci"));

    let plain = registered(&forge, dir.path(), "", &["linux:host"]).await;
    let report = run(options(plain, None)).await;
    assert!(
        report.checks.iter().all(|c| c.name != "kubernetes"),
        "{report:#?}"
    );
}

fn status(report: &Report, name: &str) -> Status {
    report
        .checks
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no check {name}: {report:#?}"))
        .status
}

async fn forge() -> FakeForge {
    FakeForge::start(Options::gitea().with_registration_token(TOKEN))
        .await
        .unwrap()
}

/// A cache the job network cannot reach is a warning (jobs run without it), which does not
/// fail the run; a forge it cannot reach is a failure naming `container.network`.
#[tokio::test]
async fn the_job_network_fails_for_the_forge_and_warns_for_the_cache() {
    let forge = forge().await;
    let dir = tempfile::tempdir().unwrap();
    let cache = "cache:\n  external_server: http://cache.invalid:9000/\n";
    let config = registered(&forge, dir.path(), cache, &["box:docker://busybox"]).await;

    let backend = FakeBackend::new(dir.path().join("jobs"));
    let report = run(options(config.clone(), Some(backend))).await;
    assert_eq!(status(&report, "job-network"), Status::Pass, "{report:#?}");
    assert!(report.ok());

    let backend =
        FakeBackend::new(dir.path().join("jobs")).with_unreachable(&["http://cache.invalid:9000"]);
    let report = run(options(config.clone(), Some(backend))).await;
    let network = report
        .checks
        .iter()
        .find(|c| c.name == "job-network")
        .unwrap();
    assert_eq!(network.status, Status::Warn, "{report:#?}");
    assert!(network.detail.contains("cache.invalid"), "{network:?}");
    assert!(network.advice.as_deref().unwrap().contains("cache.host"));
    assert!(report.ok(), "a warning does not fail the run: {report:#?}");

    let backend = FakeBackend::new(dir.path().join("jobs")).with_unreachable(&[&forge.url()]);
    let report = run(options(config, Some(backend))).await;
    let network = report
        .checks
        .iter()
        .find(|c| c.name == "job-network")
        .unwrap();
    assert_eq!(network.status, Status::Fail, "{report:#?}");
    assert!(network
        .advice
        .as_deref()
        .unwrap()
        .contains("container.network"));
    assert!(!report.ok());
}

/// A host-only runner needs no Docker: its checks are skipped, saying why.
#[tokio::test]
async fn a_host_only_runner_skips_docker() {
    let forge = forge().await;
    let dir = tempfile::tempdir().unwrap();
    let config = registered(&forge, dir.path(), "", &["linux:host"]).await;
    let report = run(options(config, None)).await;
    assert_eq!(status(&report, "docker"), Status::Skip);
    assert!(report.checks.iter().all(|c| c.name != "job-network"));
    assert!(report.ok(), "{report:#?}");
}

/// Config warnings are shown and do not fail; a config that cannot be read fails and skips
/// everything else.
#[tokio::test]
async fn config_warnings_warn_and_a_broken_config_skips_the_rest() {
    let forge = forge().await;
    let dir = tempfile::tempdir().unwrap();
    let config = registered(
        &forge,
        dir.path(),
        "runnr:\n  capacity: 2\n",
        &["linux:host"],
    )
    .await;
    let report = run(options(config.clone(), None)).await;
    let check = &report.checks[0];
    assert_eq!(check.status, Status::Warn, "{report:#?}");
    assert!(check.detail.contains("runnr"), "{check:?}");
    assert!(report.ok());

    std::fs::write(&config, "runner:\n  capacity: many\n").unwrap();
    let report = run(options(config, None)).await;
    assert_eq!(report.checks[0].status, Status::Fail, "{report:#?}");
    assert!(report.checks[1..].iter().all(|c| c.status == Status::Skip));
}

/// A forge without Declare cannot have the token checked: a warning, not a failure.
#[tokio::test]
async fn a_forge_without_declare_is_a_warning() {
    let forge = forge().await;
    forge.set_declare_unimplemented(true);
    let dir = tempfile::tempdir().unwrap();
    let config = registered(&forge, dir.path(), "", &["linux:host"]).await;
    let report = run(options(config, None)).await;
    assert_eq!(status(&report, "token"), Status::Warn, "{report:#?}");
    assert_eq!(status(&report, "clock"), Status::Pass, "{report:#?}");
    assert!(report.ok());
}

/// A forge whose certificate this machine does not trust fails, naming `runner.ca_file`; with
/// the CA there (or `runner.insecure`) it passes, saying how TLS went (pain point #12).
#[tokio::test]
async fn a_certificate_not_trusted_names_runner_ca_file() {
    let forge = FakeForge::start(
        Options::gitea()
            .with_registration_token(TOKEN)
            .with_tls(Tls::SelfSigned),
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, forge.certificate_pem().unwrap()).unwrap();
    register_in(&forge, dir.path(), &["linux:host"], Some(ca.clone())).await;
    let config = dir.path().join("config.yaml");
    // What the forge check says, and its advice, for the runner keys given.
    let cases = [
        ("", Status::Fail, "Ping to", Some("runner.ca_file")),
        (
            &format!("  ca_file: {}\n", ca.display())[..],
            Status::Pass,
            "TLS certificate verified",
            None,
        ),
        (
            "  insecure: true\n",
            Status::Pass,
            "without certificate checks",
            None,
        ),
    ];
    for (keys, expected, detail, advice) in cases {
        write_config(&config, dir.path(), "", keys);
        let report = run(options(config.clone(), None)).await;
        let forge_check = report.checks.iter().find(|c| c.name == "forge").unwrap();
        assert_eq!(forge_check.status, expected, "{keys}: {report:#?}");
        assert!(
            forge_check.detail.contains(detail),
            "{keys}: {forge_check:?}"
        );
        match advice {
            Some(advice) => assert!(
                forge_check.advice.as_deref().unwrap().contains(advice),
                "{forge_check:?}"
            ),
            None => assert_eq!(status(&report, "token"), Status::Pass, "{report:#?}"),
        }
    }
}

/// A fixed `cache.port` that a running daemon's cache holds: the doctor checks that cache
/// rather than failing to start its own.
#[tokio::test]
async fn a_cache_port_in_use_is_checked_where_it_is() {
    let forge = forge().await;
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let cache = format!(
        "cache:\n  host: 127.0.0.1\n  port: {port}\n  dir: {}\n",
        dir.path().join("cache").display()
    );
    let config = registered(&forge, dir.path(), &cache, &["box:docker://busybox"]).await;
    let address = format!("http://127.0.0.1:{port}");
    let backend = FakeBackend::new(dir.path().join("jobs")).with_unreachable(&[&address]);
    let report = run(options(config, Some(backend))).await;
    let network = report
        .checks
        .iter()
        .find(|c| c.name == "job-network")
        .unwrap();
    assert_eq!(network.status, Status::Warn, "{report:#?}");
    assert!(network.detail.contains("is taken"), "{network:?}");
    assert!(network.detail.contains(&address), "{network:?}");
}
